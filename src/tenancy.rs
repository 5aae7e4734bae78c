//! Tenant scoping in one place: every read starts from [`scoped`], which filters by the
//! caller's tenant, so a query that forgets the tenant cannot be written by accident.
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};
use uuid::Uuid;

/// The tenant a request acts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TenantId(pub Uuid);

/// An entity whose rows belong to a tenant and have a UUID id.
pub trait TenantEntity: EntityTrait {
    /// The `tenant_id` column.
    fn tenant_column() -> Self::Column;
    /// The `id` column.
    fn id_column() -> Self::Column;
    /// The id of a row.
    fn id_of(model: &Self::Model) -> Uuid;
}

/// `SELECT ... FROM E WHERE tenant_id = tenant`.
pub fn scoped<E: TenantEntity>(tenant: TenantId) -> Select<E> {
    E::find().filter(E::tenant_column().eq(tenant.0))
}

macro_rules! tenant_entity {
    ($($module:ident),*) => {$(
        impl TenantEntity for entity::$module::Entity {
            fn tenant_column() -> Self::Column {
                entity::$module::Column::TenantId
            }
            fn id_column() -> Self::Column {
                entity::$module::Column::Id
            }
            fn id_of(model: &Self::Model) -> Uuid {
                model.id
            }
        }
    )*};
}

tenant_entity!(
    contact,
    account,
    business,
    tag,
    source,
    webhook,
    webhook_delivery
);

/// The tenant's rows of `E` with the given ids, in one statement; ids of other tenants
/// and unknown ids are simply absent.
pub async fn find_by_ids<E>(
    db: &impl sea_orm::ConnectionTrait,
    tenant: TenantId,
    ids: &[Uuid],
) -> crate::Result<std::collections::HashMap<Uuid, E::Model>>
where
    E: TenantEntity,
{
    let mut select = scoped::<E>(tenant);
    crate::db::walk_ids(
        sea_orm::QuerySelect::query(&mut select),
        E::default().table_ref(),
        Expr::col((E::default(), E::id_column())),
        ids,
        db.get_database_backend(),
    );
    let rows = select.all(db).await?;
    Ok(rows.into_iter().map(|m| (E::id_of(&m), m)).collect())
}
