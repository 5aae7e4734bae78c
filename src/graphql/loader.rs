//! DataLoaders: every parent-to-children lookup is batched into one statement per kind,
//! whatever the number of parents. A request gets its own loaders, built for its tenant, so
//! every key is implicitly (tenant, id) and nothing is cached across requests.
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{contact, tag};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::contacts::{self, ContactParent, ContactQuery, Preload, Related};
use crate::error::Error;
use crate::paging::{Page, PageArgs};
use crate::tags::{self, TagQuery};
use crate::tenancy::{TenantEntity, TenantId, find_by_ids};

/// Loads rows of `E` by id.
pub struct ById<E> {
    db: DatabaseConnection,
    tenant: TenantId,
    entity: PhantomData<E>,
}

impl<E> ById<E> {
    fn new(db: &DatabaseConnection, tenant: TenantId) -> Self {
        Self {
            db: db.clone(),
            tenant,
            entity: PhantomData,
        }
    }
}

impl<E> Loader<Uuid> for ById<E>
where
    E: TenantEntity + Send + Sync + 'static,
    E::Model: Clone + Send + Sync + 'static,
{
    type Value = E::Model;
    type Error = Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, E::Model>, Error> {
        find_by_ids::<E>(&self.db, self.tenant, keys).await
    }
}

/// Loads the tags of contacts.
pub struct ContactTags {
    db: DatabaseConnection,
    tenant: TenantId,
}

impl Loader<Uuid> for ContactTags {
    type Value = Vec<Arc<tag::Model>>;
    type Error = Error;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Vec<Arc<tag::Model>>>, Error> {
        contacts::tags_of(&self.db, self.tenant, keys).await
    }
}

/// Loads the vendor records behind contacts.
pub struct ContactSources {
    db: DatabaseConnection,
    tenant: TenantId,
}

impl Loader<Uuid> for ContactSources {
    type Value = Vec<entity::contact_source::Model>;
    type Error = Error;

    async fn load(
        &self,
        keys: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<entity::contact_source::Model>>, Error> {
        crate::sources::records_of(&self.db, self.tenant, keys).await
    }
}

/// Loads the write-back changes queued for contacts.
pub struct ContactWriteBacks {
    db: DatabaseConnection,
    tenant: TenantId,
}

impl Loader<Uuid> for ContactWriteBacks {
    type Value = Vec<entity::write_back::Model>;
    type Error = Error;

    async fn load(
        &self,
        keys: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<entity::write_back::Model>>, Error> {
        let mut by_contact: HashMap<Uuid, Vec<entity::write_back::Model>> = HashMap::new();
        for change in crate::write_back::queue::of_contacts(&self.db, self.tenant, keys).await? {
            by_contact
                .entry(change.contact_id)
                .or_default()
                .push(change);
        }
        Ok(by_contact)
    }
}

/// A page of a nested list: the parent, and the list arguments shared by its siblings.
///
/// The DataLoader hashes a key several times (queued, batched, looked up), and its filter
/// can hold dozens of fields: so the part siblings share, [`ListKey`], is hashed once, when
/// it is made, and a key hashes as its parent id and that hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NestedPageKey<P, Q> {
    /// The parent's id.
    pub parent_id: Uuid,
    /// Everything but the parent's id.
    pub list: Arc<ListKey<P, Q>>,
}

/// The part of a [`NestedPageKey`] its siblings share: one statement per distinct one. Its
/// parts are read-only once made, so that its hash stays theirs.
#[derive(Debug, PartialEq, Eq)]
pub struct ListKey<P, Q> {
    /// Of `parent`, `query`, `args` and `with_totals` (it comes first, so that the derived
    /// `==` tells unequal keys apart at once).
    hash: u64,
    /// What kind of parent (and, for contacts, which relations to load with the page and
    /// which columns to read).
    parent: P,
    /// Filter and order.
    query: Q,
    /// The page asked for.
    args: PageArgs,
    /// Whether `totalCount` is selected.
    with_totals: bool,
}

impl<P: std::hash::Hash, Q: std::hash::Hash> NestedPageKey<P, Q> {
    /// The key of `parent_id`'s page of the list that `ctx`'s field asks for (its
    /// `totalCount` read from the field's selection), the shared part hashed once.
    pub fn new(ctx: &Context<'_>, parent_id: Uuid, parent: P, query: Q, args: PageArgs) -> Self {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let with_totals = ctx.look_ahead().field("totalCount").exists();
        // A fixed hasher: this hash is only hashed again by the loader's own (seeded) maps.
        let hash = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one((&parent, &query, &args, with_totals));
        Self {
            parent_id,
            list: Arc::new(ListKey {
                hash,
                parent,
                query,
                args,
                with_totals,
            }),
        }
    }
}

impl<P, Q> std::hash::Hash for NestedPageKey<P, Q> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parent_id.hash(state);
        self.list.hash.hash(state);
    }
}

impl<P, Q> NestedPageKey<P, Q>
where
    Self: Clone + Eq + std::hash::Hash,
{
    /// Files the page of each of `ids` in `out`, under this key with that parent, as
    /// `value` makes it (a parent missing from `pages` gets an empty page).
    fn file<M, V>(
        &self,
        ids: Vec<Uuid>,
        mut pages: HashMap<Uuid, Page<M>>,
        out: &mut HashMap<Self, V>,
        value: impl Fn(Page<M>) -> V,
    ) {
        for id in ids {
            let page = pages
                .remove(&id)
                .unwrap_or_else(|| Page::none(&self.list.args));
            out.insert(
                NestedPageKey {
                    parent_id: id,
                    list: self.list.clone(),
                },
                value(page),
            );
        }
    }
}

/// Groups nested page keys by everything but the parent id: each group is one statement.
fn group_by_query<P, Q>(keys: &[NestedPageKey<P, Q>]) -> Vec<(&NestedPageKey<P, Q>, Vec<Uuid>)>
where
    P: PartialEq,
    Q: PartialEq,
{
    let mut groups: Vec<(&NestedPageKey<P, Q>, Vec<Uuid>)> = Vec::new();
    for key in keys {
        match groups.iter_mut().find(|(k, _)| k.list == key.list) {
            Some((_, ids)) => ids.push(key.parent_id),
            None => groups.push((key, vec![key.parent_id])),
        }
    }
    groups
}

/// Loads pages of contacts under accounts, businesses or tags, and with them, for all the
/// pages of a batch at once, the relations the query selects (see [`Preload`]): the number
/// of statements does not depend on how the executor interleaves the children.
pub struct ContactPages {
    db: DatabaseConnection,
    tenant: TenantId,
}

/// Key of [`ContactPages`].
/// Its parent part: the kind of parent, the relations to load with the page and the
/// columns its selection reads.
pub type ContactPageKey = NestedPageKey<(ContactParent, Preload, contact::Columns), ContactQuery>;

/// A page of contacts with the relations loaded for it, shared: the DataLoader hands out
/// (and caches) the same page without copying its rows.
pub type ContactPage = Arc<(Page<Arc<contact::Model>>, Arc<Related>)>;

impl Loader<ContactPageKey> for ContactPages {
    type Value = ContactPage;
    type Error = Error;

    async fn load(
        &self,
        keys: &[ContactPageKey],
    ) -> Result<HashMap<ContactPageKey, ContactPage>, Error> {
        let mut out = HashMap::new();
        for (key, ids) in group_by_query(keys) {
            let (parent, preload, columns) = key.list.parent;
            let pages = contacts::pages_by_parent(
                &self.db,
                self.tenant,
                parent,
                &ids,
                &key.list.query,
                &key.list.args,
                key.list.with_totals,
                columns,
            )
            .await?;
            let rows = pages.values().flat_map(|p| p.rows.iter());
            let related =
                Arc::new(contacts::load_related(&self.db, self.tenant, rows, preload).await?);
            key.file(ids, pages, &mut out, |page| {
                Arc::new((page.map(Arc::new), related.clone()))
            });
        }
        Ok(out)
    }
}

/// Loads pages of tags under businesses.
pub struct TagPages {
    db: DatabaseConnection,
    tenant: TenantId,
}

/// Key of [`TagPages`]; the parent is always a business.
pub type TagPageKey = NestedPageKey<(), TagQuery>;

impl Loader<TagPageKey> for TagPages {
    type Value = Page<tag::Model>;
    type Error = Error;

    async fn load(
        &self,
        keys: &[TagPageKey],
    ) -> Result<HashMap<TagPageKey, Page<tag::Model>>, Error> {
        let mut out = HashMap::new();
        for (key, ids) in group_by_query(keys) {
            let pages = tags::pages_by_business(
                &self.db,
                self.tenant,
                &ids,
                &key.list.query,
                &key.list.args,
                key.list.with_totals,
            )
            .await?;
            key.file(ids, pages, &mut out, |page| page);
        }
        Ok(out)
    }
}

/// Loads the delivery logs of webhooks, a page each, for many webhooks in one statement.
pub struct WebhookDeliveryPages {
    db: DatabaseConnection,
    tenant: TenantId,
}

/// Key of [`WebhookDeliveryPages`]; the parent is always a webhook, the log unfiltered.
pub type WebhookDeliveryPageKey = NestedPageKey<(), ()>;

impl Loader<WebhookDeliveryPageKey> for WebhookDeliveryPages {
    type Value = Page<entity::webhook_delivery::Model>;
    type Error = Error;

    async fn load(
        &self,
        keys: &[WebhookDeliveryPageKey],
    ) -> Result<HashMap<WebhookDeliveryPageKey, Self::Value>, Error> {
        let mut out = HashMap::new();
        for (key, ids) in group_by_query(keys) {
            let pages = crate::webhooks::delivery::logs(
                &self.db,
                self.tenant,
                &ids,
                &key.list.args,
                key.list.with_totals,
            )
            .await?;
            key.file(ids, pages, &mut out, |page| page);
        }
        Ok(out)
    }
}

/// The loaders of one request.
pub struct Loaders {
    /// Contacts by id.
    pub contacts: DataLoader<ById<entity::prelude::Contact>, HashMapCache>,
    /// Accounts by id.
    pub accounts: DataLoader<ById<entity::prelude::Account>, HashMapCache>,
    /// Businesses by id.
    pub businesses: DataLoader<ById<entity::prelude::Business>, HashMapCache>,
    /// Tags by id.
    pub tags: DataLoader<ById<entity::prelude::Tag>, HashMapCache>,
    /// Tags of each contact.
    pub contact_tags: DataLoader<ContactTags, HashMapCache>,
    /// Vendor records of each contact.
    pub contact_sources: DataLoader<ContactSources, HashMapCache>,
    /// Write-back changes of each contact.
    pub contact_write_backs: DataLoader<ContactWriteBacks, HashMapCache>,
    /// Pages of contacts under a parent.
    pub contact_pages: DataLoader<ContactPages, HashMapCache>,
    /// Pages of tags under a business.
    pub tag_pages: DataLoader<TagPages, HashMapCache>,
    /// Pages of webhooks' delivery logs.
    pub webhook_delivery_pages: DataLoader<WebhookDeliveryPages, HashMapCache>,
}

fn loader<T>(inner: T) -> DataLoader<T, HashMapCache> {
    DataLoader::with_cache(inner, tokio::spawn, HashMapCache::default())
}

impl Loaders {
    /// Loaders for a long-lived connection (WebSocket) of `tenant`: they batch but keep
    /// nothing, so each event reads current rows and memory does not grow with the
    /// connection's age.
    pub fn uncached(db: &DatabaseConnection, tenant: TenantId) -> Self {
        let loaders = Self::new(db, tenant);
        {
            let enable = false;
            loaders.contacts.enable_all_cache(enable);
            loaders.accounts.enable_all_cache(enable);
            loaders.businesses.enable_all_cache(enable);
            loaders.tags.enable_all_cache(enable);
            loaders.contact_tags.enable_all_cache(enable);
            loaders.contact_sources.enable_all_cache(enable);
            loaders.contact_write_backs.enable_all_cache(enable);
            loaders.contact_pages.enable_all_cache(enable);
            loaders.tag_pages.enable_all_cache(enable);
            loaders.webhook_delivery_pages.enable_all_cache(enable);
        }
        loaders
    }

    /// Fresh loaders for one request of `tenant`.
    pub fn new(db: &DatabaseConnection, tenant: TenantId) -> Self {
        Self {
            contacts: loader(ById::new(db, tenant)),
            accounts: loader(ById::new(db, tenant)),
            businesses: loader(ById::new(db, tenant)),
            tags: loader(ById::new(db, tenant)),
            contact_tags: loader(ContactTags {
                db: db.clone(),
                tenant,
            }),
            contact_sources: loader(ContactSources {
                db: db.clone(),
                tenant,
            }),
            contact_write_backs: loader(ContactWriteBacks {
                db: db.clone(),
                tenant,
            }),
            contact_pages: loader(ContactPages {
                db: db.clone(),
                tenant,
            }),
            tag_pages: loader(TagPages {
                db: db.clone(),
                tenant,
            }),
            webhook_delivery_pages: loader(WebhookDeliveryPages {
                db: db.clone(),
                tenant,
            }),
        }
    }
}
