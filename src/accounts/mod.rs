//! Accounts: the customer companies contacts belong to (seed 000's accounts, seed 003's
//! clients, seed 004's organisations). Their lists, filters and writes are shared with
//! businesses in [`crate::organisations`]; deleting one that still has contacts is refused.

crate::organisations::organisation!(account, "Account", owns_tags: false, contacts_by: AccountId);
