//! Inserting many rows: multi-row VALUES lists on SQLite, one `unnest` of column arrays per
//! statement on PostgreSQL.
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DbBackend, EntityTrait, IdenStatic, IntoActiveModel,
    Iterable, QueryTrait, Statement,
};

use crate::error::Error;

/// Rows per INSERT on PostgreSQL, where a statement carries one array per column whatever
/// its number of rows (see [`unnest_insert`]).
const ROWS_PER_UNNEST: usize = 5_000;

/// How many rows go to one statement on `backend`: `per_statement` for a multi-row VALUES
/// list (SQLite), [`ROWS_PER_UNNEST`] on PostgreSQL.
fn rows_per_statement(backend: DbBackend, per_statement: usize) -> usize {
    match backend {
        DbBackend::Postgres => ROWS_PER_UNNEST,
        _ => per_statement,
    }
}

/// INSERT statements for `rows`, built one at a time as they are taken: on SQLite
/// `per_statement` rows to a multi-row VALUES list, on PostgreSQL one `unnest` of column
/// arrays per [`ROWS_PER_UNNEST`] rows. Without RETURNING: nothing is read back (on SQLite a
/// RETURNING clause makes the statement collect every inserted key).
pub fn insert_statements<E: EntityTrait>(
    backend: DbBackend,
    rows: Vec<E::Model>,
    per_statement: usize,
) -> impl Iterator<Item = Statement>
where
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    build_inserts::<E>(backend, rows, per_statement, Existing::Fail)
}

/// What an INSERT does with a row whose key (or another unique index) exists already.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    /// The statement fails.
    Fail,
    /// The row is skipped (`ON CONFLICT DO NOTHING`).
    Skip,
}

fn build_inserts<E: EntityTrait>(
    backend: DbBackend,
    rows: Vec<E::Model>,
    per_statement: usize,
    existing: Existing,
) -> impl Iterator<Item = Statement>
where
    E::Model: IntoActiveModel<E::ActiveModel>,
{
    let per_statement = rows_per_statement(backend, per_statement);
    let mut rows = rows
        .into_iter()
        .map(IntoActiveModel::into_active_model)
        .peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        let chunk = rows.by_ref().take(per_statement);
        Some(match (backend, existing) {
            (DbBackend::Postgres, _) => unnest_insert::<E>(chunk.collect(), existing),
            (_, Existing::Fail) => E::insert_many(chunk).build(backend),
            (_, Existing::Skip) => E::insert_many(chunk)
                .on_conflict_do_nothing()
                .build(backend),
        })
    })
}

/// The PostgreSQL array type of a column whose values look like `value`, and its SQL name.
fn pg_array_type(value: &Value) -> Option<(ArrayType, &'static str)> {
    Some(match value {
        Value::Bool(_) => (ArrayType::Bool, "bool"),
        Value::Int(_) => (ArrayType::Int, "int4"),
        Value::BigInt(_) => (ArrayType::BigInt, "int8"),
        Value::String(_) => (ArrayType::String, "text"),
        Value::Uuid(_) => (ArrayType::Uuid, "uuid"),
        Value::Json(_) => (ArrayType::Json, "jsonb"),
        _ => return None,
    })
}

/// One PostgreSQL `INSERT INTO t (c1, …) SELECT unnest($1::uuid[]), …` for `rows`: each
/// column's values travel as one binary array parameter. The statement's text does not
/// depend on the number of rows, so it is prepared once per connection, and the server plans
/// and initialises one projection instead of one expression per value of a VALUES list.
/// `unnest` stands in the select list: in FROM it would first copy every row into a
/// tuplestore. Falls back to a VALUES list for a column type without an array mapping here.
fn unnest_insert<E: EntityTrait>(mut rows: Vec<E::ActiveModel>, existing: Existing) -> Statement {
    let columns: Vec<E::Column> = E::Column::iter().collect();
    let types: Option<Vec<(ArrayType, &str)>> = match rows.first() {
        Some(first) => columns
            .iter()
            .map(|col| {
                first
                    .get(*col)
                    .into_value()
                    .as_ref()
                    .and_then(pg_array_type)
            })
            .collect(),
        None => None,
    };
    let Some(types) = types else {
        return match existing {
            Existing::Fail => E::insert_many(rows).build(DbBackend::Postgres),
            Existing::Skip => E::insert_many(rows)
                .on_conflict_do_nothing()
                .build(DbBackend::Postgres),
        };
    };
    let mut names = Vec::with_capacity(columns.len());
    let mut arrays = Vec::with_capacity(columns.len());
    let mut params = Vec::with_capacity(columns.len());
    for (i, (col, (array_type, sql_type))) in columns.iter().zip(types).enumerate() {
        let values: Vec<Value> = rows
            .iter_mut()
            .map(|row| row.take(*col).into_value().unwrap_or(Value::Bool(None)))
            .collect();
        names.push(format!("\"{}\"", col.as_str()));
        params.push(format!("unnest(${}::{sql_type}[])", i + 1));
        arrays.push(Value::Array(array_type, Some(Box::new(values))));
    }
    let sql = format!(
        "INSERT INTO \"{}\" ({}) SELECT {}{}",
        E::default().table_name(),
        names.join(", "),
        params.join(", "),
        match existing {
            Existing::Fail => "",
            Existing::Skip => " ON CONFLICT DO NOTHING",
        }
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, arrays)
}

/// Inserts `rows`, `per_statement` rows to a statement on SQLite (see [`insert_statements`]
/// for PostgreSQL). More than one statement's worth is built on a blocking thread while the
/// statements before run.
pub async fn insert_all<E: EntityTrait>(
    db: &impl ConnectionTrait,
    rows: Vec<E::Model>,
    per_statement: usize,
) -> crate::Result<()>
where
    E::Model: IntoActiveModel<E::ActiveModel> + Send + 'static,
{
    insert::<E>(db, rows, per_statement, Existing::Fail).await
}

/// As [`insert_all`], skipping the rows whose key (or another unique index) exists already
/// (`ON CONFLICT DO NOTHING`).
pub async fn insert_all_skipping_existing<E: EntityTrait>(
    db: &impl ConnectionTrait,
    rows: Vec<E::Model>,
    per_statement: usize,
) -> crate::Result<()>
where
    E::Model: IntoActiveModel<E::ActiveModel> + Send + 'static,
{
    insert::<E>(db, rows, per_statement, Existing::Skip).await
}

async fn insert<E: EntityTrait>(
    db: &impl ConnectionTrait,
    rows: Vec<E::Model>,
    per_statement: usize,
    existing: Existing,
) -> crate::Result<()>
where
    E::Model: IntoActiveModel<E::ActiveModel> + Send + 'static,
{
    let backend = db.get_database_backend();
    if rows.len() <= rows_per_statement(backend, per_statement) {
        for statement in build_inserts::<E>(backend, rows, per_statement, existing) {
            db.execute_raw(statement).await?;
        }
        return Ok(());
    }
    let (sender, mut statements) = tokio::sync::mpsc::channel::<Statement>(4);
    let builder = tokio::task::spawn_blocking(move || {
        for statement in build_inserts::<E>(backend, rows, per_statement, existing) {
            if sender.blocking_send(statement).is_err() {
                return;
            }
        }
    });
    while let Some(statement) = statements.recv().await {
        db.execute_raw(statement).await?;
    }
    builder
        .await
        .map_err(|err| Error::Internal(format!("building INSERT statements failed: {err}")))
}

#[cfg(test)]
mod tests {
    use entity::contact_tag;
    use entity::prelude::ContactTag;
    use uuid::Uuid;

    use super::*;

    fn links(n: u128) -> Vec<contact_tag::Model> {
        (0..n)
            .map(|i| contact_tag::Model {
                tenant_id: Uuid::from_u128(1),
                contact_id: Uuid::from_u128(10 + i),
                tag_id: Uuid::from_u128(20),
                created_at: 0,
            })
            .collect()
    }

    #[test]
    fn postgres_inserts_are_one_unnest_per_statement_and_may_skip_existing_rows() {
        let fail: Vec<Statement> =
            build_inserts::<ContactTag>(DbBackend::Postgres, links(3), 2, Existing::Fail).collect();
        assert_eq!(fail.len(), 1, "PostgreSQL ignores the VALUES list size");
        assert_eq!(
            fail[0].sql,
            r#"INSERT INTO "contact_tags" ("tenant_id", "contact_id", "tag_id", "created_at") SELECT unnest($1::uuid[]), unnest($2::uuid[]), unnest($3::uuid[]), unnest($4::int8[])"#
        );
        let skip: Vec<Statement> =
            build_inserts::<ContactTag>(DbBackend::Postgres, links(3), 2, Existing::Skip).collect();
        assert!(
            skip[0].sql.ends_with(" ON CONFLICT DO NOTHING"),
            "{}",
            skip[0].sql
        );
    }

    #[test]
    fn sqlite_inserts_are_values_lists_of_the_size_asked_and_may_skip_existing_rows() {
        let skip: Vec<Statement> =
            build_inserts::<ContactTag>(DbBackend::Sqlite, links(3), 2, Existing::Skip).collect();
        assert_eq!(skip.len(), 2);
        assert_eq!(
            skip[0].sql,
            r#"INSERT INTO "contact_tags" ("tenant_id", "contact_id", "tag_id", "created_at") VALUES (?, ?, ?, ?), (?, ?, ?, ?) ON CONFLICT ("tenant_id", "contact_id", "tag_id") DO NOTHING"#
        );
        let fail: Vec<Statement> =
            build_inserts::<ContactTag>(DbBackend::Sqlite, links(1), 2, Existing::Fail).collect();
        assert!(!fail[0].sql.contains("ON CONFLICT"), "{}", fail[0].sql);
    }
}
