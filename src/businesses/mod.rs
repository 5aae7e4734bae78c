//! Businesses: the organisations of a tenant that own contacts and tags (seed 002). Their
//! lists, filters and writes are shared with accounts in [`crate::organisations`]; deleting
//! one deletes its tags, and is refused while it still has contacts.

crate::organisations::organisation!(business, "Business", owns_tags: true, contacts_by: BusinessId);
