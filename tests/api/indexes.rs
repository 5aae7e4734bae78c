//! Filters on the columns most contacts leave empty are served by partial indexes
//! (`WHERE column IS NOT NULL`, and `WHERE is_test_contact`): the database's plan for the
//! statement the server runs names the index.
use contact_gateway::contacts::{ContactFilter, counted, filtered};
use contact_gateway::filter::DateTimeFilter;
use contact_gateway::tenancy::TenantId;
use contact_gateway::time::Timestamp;
use entity::prelude::Tenant;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, QueryTrait, Statement, TransactionTrait};

use crate::common::{TestApp, spawn_app};

/// The query plan of `statement`, one line per step. PostgreSQL is told not to scan the
/// table, so that on a small test database it shows whether an index can serve the query
/// at all rather than whether it is worth it.
async fn plan(db: &sea_orm::DatabaseConnection, statement: Statement) -> String {
    let backend = db.get_database_backend();
    let txn = db.begin().await.expect("begin");
    let (prefix, column) = match backend {
        DbBackend::Postgres => {
            txn.execute_unprepared("SET LOCAL enable_seqscan = off")
                .await
                .expect("set");
            ("EXPLAIN ", "QUERY PLAN")
        }
        _ => ("EXPLAIN QUERY PLAN ", "detail"),
    };
    let explain = Statement {
        sql: format!("{prefix}{}", statement.sql),
        ..statement
    };
    let rows = txn.query_all_raw(explain).await.expect("explain");
    txn.rollback().await.expect("rollback");
    rows.iter()
        .map(|r| r.try_get::<String>("", column).expect("plan line"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The demo tenant's id.
async fn demo_tenant(app: &TestApp) -> TenantId {
    let tenant = Tenant::find()
        .one(&app.db)
        .await
        .expect("tenant")
        .expect("the demo tenant");
    TenantId(tenant.id)
}

/// Sets one field of a filter.
type SetFilter = fn(&mut ContactFilter);

#[tokio::test]
async fn filters_on_sparse_columns_use_their_partial_indexes() {
    let app = spawn_app().await;
    let tenant = demo_tenant(&app).await;
    let cases: [(&str, SetFilter); 10] = [
        ("idx_contacts_business", |f| {
            f.business_id = Some(uuid::Uuid::now_v7().to_string())
        }),
        ("idx_contacts_status", |f| f.status = Some("x".into())),
        ("idx_contacts_test", |f| f.is_test_contact = Some(true)),
        ("idx_contacts_pipeline", |f| {
            f.pipeline_id = Some("x".into())
        }),
        ("idx_contacts_pipeline_stage", |f| {
            f.pipeline_stage = Some("x".into())
        }),
        ("idx_contacts_source", |f| f.source = Some("x".into())),
        ("idx_contacts_lead_source", |f| {
            f.lead_source = Some("x".into())
        }),
        ("idx_contacts_owner", |f| f.owner = Some("x".into())),
        ("idx_contacts_message_status", |f| {
            f.message_status = Some("x".into())
        }),
        ("idx_contacts_last_message", |f| {
            f.last_message_at = Some(DateTimeFilter {
                gte: Some(Timestamp::from_millis(4_102_444_800_000)),
                ..Default::default()
            })
        }),
    ];
    let backend = app.db.get_database_backend();
    for (index, set) in cases {
        let mut filter = ContactFilter::default();
        set(&mut filter);
        let statement = filtered(&app.db, tenant, &filter)
            .expect("a valid filter")
            .build(backend);
        let plan = plan(&app.db, statement).await;
        assert!(plan.contains(index), "{index} not used:\n{plan}");
    }
}

/// On SQLite a search's count is driven by the trigram index, each match's tenant and
/// liveness checked in `idx_contacts_live` (migration 18) rather than the contact's row, and
/// only a search's statement can use that index. (PostgreSQL's planner chooses from
/// statistics a small test database does not have.)
#[tokio::test]
async fn a_search_count_checks_its_matches_in_the_live_contacts_index() {
    let app = spawn_app().await;
    let tenant = demo_tenant(&app).await;
    let backend = app.db.get_database_backend();
    if backend != DbBackend::Sqlite {
        return;
    }
    let search = ContactFilter {
        search: Some("mueller".into()),
        ..Default::default()
    };
    let statement = filtered(&app.db, tenant, &search)
        .expect("a valid filter")
        .build(backend);
    let searched = plan(&app.db, statement).await;
    let index = "idx_contacts_live (tenant_id=? AND rowid=?)";
    assert!(searched.contains(index), "{index} not used:\n{searched}");

    // A string too short for the trigram index is counted along the walk's index, which
    // carries the text, not along one that reads every contact's row.
    let short = ContactFilter {
        search: Some("zz".into()),
        ..Default::default()
    };
    let statement = counted(&app.db, tenant, &short)
        .expect("a valid filter")
        .build(backend);
    let counted_plan = plan(&app.db, statement).await;
    let index = "idx_contacts_created (tenant_id=? AND created_at>?)";
    assert!(
        counted_plan.contains(index),
        "{index} not used:\n{counted_plan}"
    );

    let test_contacts = ContactFilter {
        is_test_contact: Some(true),
        ..Default::default()
    };
    let statement = filtered(&app.db, tenant, &test_contacts)
        .expect("a valid filter")
        .build(backend);
    let other = plan(&app.db, statement).await;
    assert!(!other.contains("idx_contacts_live"), "{other}");
}
