//! Keyset pagination, shared by every connection.
//!
//! A page is asked for Relay-style (`first`/`after` or `last`/`before`) and validated into
//! [`PageArgs`]. An [`Ordering`] lists the sort keys (SQL expression, direction, and how to read
//! the key from a row), always ending with the id so that the order is total. Cursors are
//! opaque: base64url of a small versioned JSON document holding the order they were made
//! for, the key values and the id of the row. Pages are read with `WHERE (keys, id) > cursor
//! ORDER BY keys, id LIMIT n + 1`, never with OFFSET, so a page deep in the data costs the
//! same as the first.
use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::sea_query::{
    Alias, Asterisk, Condition, Expr, ExprTrait, Func, Order, PostgresQueryBuilder, Query,
    SelectStatement, SqliteQueryBuilder, Value,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryResult,
    QuerySelect, QueryTrait, Select, Statement,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, FieldFailure, Result};

/// Page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE_SIZE: i32 = 20;
/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: i32 = 100;

/// Direction of a sort key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

impl Direction {
    fn order(self, reversed: bool) -> Order {
        match (self, reversed) {
            (Direction::Asc, false) | (Direction::Desc, true) => Order::Asc,
            _ => Order::Desc,
        }
    }
}

/// The value of one sort key in a cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    /// An integer key (timestamps, display order).
    Int(i64),
    /// A text key (names, emails).
    Text(String),
}

impl From<KeyValue> for Value {
    fn from(value: KeyValue) -> Self {
        match value {
            KeyValue::Int(i) => i.into(),
            KeyValue::Text(s) => s.into(),
        }
    }
}

/// One key of an [`Ordering`].
pub struct SortKey<M> {
    /// Name of the key, part of the order's fingerprint (e.g. `CREATED_AT`).
    pub name: &'static str,
    /// SQL expression sorted on; never NULL (wrap nullable columns in COALESCE).
    pub expr: Expr,
    /// Direction of the key.
    pub direction: Direction,
    /// Reads the key's value from a row, for the row's cursor.
    pub value: fn(&M) -> KeyValue,
    /// Whether the key is text (else an integer): a cursor's value must be of this kind.
    pub text: bool,
}

/// A total order over rows of `M`: the keys, then the id.
pub struct Ordering<M> {
    keys: Vec<SortKey<M>>,
    id_expr: Expr,
    id_of: fn(&M) -> Uuid,
}

impl<M> Ordering<M> {
    /// An order by `keys`, ties broken by `id_expr` (read from rows with `id_of`).
    pub fn new(keys: Vec<SortKey<M>>, id_expr: Expr, id_of: fn(&M) -> Uuid) -> Self {
        Self {
            keys,
            id_expr,
            id_of,
        }
    }

    /// An order by the given keys, each name counted once (where first given), ties broken
    /// by id; `default` when `keys` is empty.
    pub fn dedup(
        keys: impl IntoIterator<Item = SortKey<M>>,
        default: SortKey<M>,
        id_expr: Expr,
        id_of: fn(&M) -> Uuid,
    ) -> Self {
        let mut unique: Vec<SortKey<M>> = Vec::new();
        for key in keys {
            if unique.iter().all(|k| k.name != key.name) {
                unique.push(key);
            }
        }
        if unique.is_empty() {
            unique.push(default);
        }
        Self::new(unique, id_expr, id_of)
    }

    /// Identifies the order; a cursor made for another order is rejected.
    fn fingerprint(&self) -> String {
        self.keys
            .iter()
            .map(|k| format!("{}:{:?}", k.name, k.direction))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Direction of the id tie-breaker: that of the last key, so that an order whose keys all
    /// run one way compares as one row value (which indexes serve directly).
    fn id_direction(&self) -> Direction {
        self.keys.last().map_or(Direction::Asc, |k| k.direction)
    }

    /// Compares two rows in this order (reversed when reading backwards), as the database
    /// does: integers numerically, text by bytes (SQLite's BINARY, PostgreSQL's "C").
    fn compare(&self, a: &M, b: &M, reversed: bool) -> std::cmp::Ordering {
        let directed = |ord: std::cmp::Ordering, dir: Direction| {
            if (dir == Direction::Desc) != reversed {
                ord.reverse()
            } else {
                ord
            }
        };
        for key in &self.keys {
            let ord = match ((key.value)(a), (key.value)(b)) {
                (KeyValue::Int(x), KeyValue::Int(y)) => x.cmp(&y),
                (KeyValue::Text(x), KeyValue::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
                (KeyValue::Int(_), KeyValue::Text(_)) => std::cmp::Ordering::Less,
                (KeyValue::Text(_), KeyValue::Int(_)) => std::cmp::Ordering::Greater,
            };
            let ord = directed(ord, key.direction);
            if ord.is_ne() {
                return ord;
            }
        }
        directed((self.id_of)(a).cmp(&(self.id_of)(b)), self.id_direction())
    }

    /// The cursor of `row` in this order.
    pub fn cursor_of(&self, row: &M) -> String {
        let cursor = CursorData {
            v: 1,
            o: self.fingerprint(),
            k: self.keys.iter().map(|k| (k.value)(row)).collect(),
            id: (self.id_of)(row),
        };
        let json = serde_json::to_vec(&cursor).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// `ORDER BY` terms, reversed when reading backwards.
    fn order_terms(&self, reversed: bool) -> Vec<(Expr, Order)> {
        let mut terms: Vec<(Expr, Order)> = self
            .keys
            .iter()
            .map(|k| (k.expr.clone(), k.direction.order(reversed)))
            .collect();
        terms.push((self.id_expr.clone(), self.id_direction().order(reversed)));
        terms
    }

    /// The rows that come after `cursor` when reading in the given direction.
    fn after_condition(&self, cursor: &CursorData, reversed: bool) -> Expr {
        let mut parts: Vec<(Expr, Direction, Value)> = self
            .keys
            .iter()
            .zip(cursor.k.iter())
            .map(|(k, v)| (k.expr.clone(), k.direction, Value::from(v.clone())))
            .collect();
        parts.push((self.id_expr.clone(), self.id_direction(), cursor.id.into()));
        let greater = |dir: Direction| (dir == Direction::Asc) != reversed;

        let first_dir = parts[0].1;
        if parts.iter().all(|p| p.1 == first_dir) {
            // One row-value comparison: (a, b, id) > (x, y, z).
            let (exprs, values): (Vec<Expr>, Vec<Expr>) =
                parts.into_iter().map(|(e, _, v)| (e, Expr::val(v))).unzip();
            let (lhs, rhs) = (Expr::tuple(exprs), Expr::tuple(values));
            return if greater(first_dir) {
                lhs.gt(rhs)
            } else {
                lhs.lt(rhs)
            };
        }
        // Mixed directions: (a > x) OR (a = x AND b < y) OR ...
        let mut any = Condition::any();
        for i in 0..parts.len() {
            let mut all = Condition::all();
            for (expr, _, value) in &parts[..i] {
                all = all.add(expr.clone().eq(Expr::val(value.clone())));
            }
            let (expr, dir, value) = &parts[i];
            let cmp = if greater(*dir) {
                expr.clone().gt(Expr::val(value.clone()))
            } else {
                expr.clone().lt(Expr::val(value.clone()))
            };
            any = any.add(all.add(cmp));
        }
        any.into()
    }
}

#[derive(Serialize, Deserialize)]
struct CursorData {
    v: u8,
    o: String,
    k: Vec<KeyValue>,
    id: Uuid,
}

/// A validated Relay page request.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PageArgs {
    /// Rows to return.
    pub size: u64,
    /// `last`/`before`: read backwards from the cursor (or the end).
    pub backward: bool,
    /// The raw cursor (`after` or `before`), validated against the order when used.
    pub cursor: Option<String>,
}

impl PageArgs {
    /// Validates Relay arguments. Sizes must be 0..=100; `first` and `last` together, or a
    /// cursor that is not one of ours, are rejected (never silently clamped or ignored).
    pub fn from_relay(
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Self> {
        let mut failures = Vec::new();
        for (name, value) in [("first", first), ("last", last)] {
            match value {
                Some(n) if n < 0 => {
                    failures.push(FieldFailure::new(name, "must not be negative"));
                }
                Some(n) if n > MAX_PAGE_SIZE => failures.push(FieldFailure::new(
                    name,
                    format!("must be at most {MAX_PAGE_SIZE}"),
                )),
                _ => {}
            }
        }
        if first.is_some() && last.is_some() {
            failures.push(FieldFailure::new(
                "last",
                "give either first (with after) or last (with before), not both",
            ));
        }
        if after.is_some() && before.is_some() {
            failures.push(FieldFailure::new(
                "before",
                "give either after or before, not both",
            ));
        }
        if after.is_some() && last.is_some() {
            failures.push(FieldFailure::new("after", "after goes with first"));
        }
        if before.is_some() && first.is_some() {
            failures.push(FieldFailure::new("before", "before goes with last"));
        }
        for (name, cursor) in [("after", &after), ("before", &before)] {
            if let Some(c) = cursor
                && decode_cursor(c).is_none()
            {
                failures.push(FieldFailure::new(name, "not a valid cursor"));
            }
        }
        if !failures.is_empty() {
            return Err(Error::Validation(failures));
        }
        let backward = last.is_some() || before.is_some();
        let size = if backward { last } else { first }.unwrap_or(DEFAULT_PAGE_SIZE);
        Ok(Self {
            size: size as u64,
            backward,
            cursor: if backward { before } else { after },
        })
    }

    fn cursor_for<M>(&self, ordering: &Ordering<M>) -> Result<Option<CursorData>> {
        let field = if self.backward { "before" } else { "after" };
        let Some(raw) = &self.cursor else {
            return Ok(None);
        };
        let cursor =
            decode_cursor(raw).ok_or_else(|| Error::invalid(field, "not a valid cursor"))?;
        let kinds_match = cursor
            .k
            .iter()
            .zip(&ordering.keys)
            .all(|(v, k)| matches!(v, KeyValue::Text(_)) == k.text);
        if cursor.o != ordering.fingerprint()
            || cursor.k.len() != ordering.keys.len()
            || !kinds_match
        {
            return Err(Error::invalid(
                field,
                "this cursor belongs to another order; page with the orderBy it was made with",
            ));
        }
        Ok(Some(cursor))
    }
}

fn decode_cursor(raw: &str) -> Option<CursorData> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    let cursor: CursorData = serde_json::from_slice(&bytes).ok()?;
    // No stored key holds a NUL, and PostgreSQL refuses one in a parameter.
    let nul = cursor
        .k
        .iter()
        .any(|k| matches!(k, KeyValue::Text(text) if text.contains('\0')));
    (cursor.v == 1 && !nul).then_some(cursor)
}

/// One page of rows and where it stands.
#[derive(Clone, Debug)]
pub struct Page<M> {
    /// The rows, in the requested order.
    pub rows: Vec<M>,
    /// More rows follow the last one.
    pub has_next: bool,
    /// More rows precede the first one.
    pub has_previous: bool,
    /// Rows matching the filter in all pages, when it came with the page.
    pub total: Option<i64>,
}

impl<M> Page<M> {
    /// The page of a parent that has no matching rows at all.
    pub fn none(args: &PageArgs) -> Self {
        Self::empty(Some(0), args)
    }

    /// An empty page.
    fn empty(total: Option<i64>, args: &PageArgs) -> Self {
        Self {
            rows: Vec::new(),
            has_next: args.backward && args.cursor.is_some(),
            has_previous: !args.backward && args.cursor.is_some(),
            total,
        }
    }

    /// How many rows match in all pages, when this page holds them all: it was read without
    /// a cursor and nothing follows it (`hasNextPage` and `hasPreviousPage` are both false
    /// exactly then, [`Page::from_probe`]). `None` otherwise: the rows must be counted.
    pub fn whole_total(&self) -> Option<i64> {
        (!self.has_next && !self.has_previous).then_some(self.rows.len() as i64)
    }

    /// The same page with each row made by `f` (say, shared behind an `Arc`).
    pub fn map<N>(self, f: impl FnMut(M) -> N) -> Page<N> {
        Page {
            rows: self.rows.into_iter().map(f).collect(),
            has_next: self.has_next,
            has_previous: self.has_previous,
            total: self.total,
        }
    }

    /// Trims the extra probe row, restores the order when read backwards, and fills in the
    /// page info. `hasPreviousPage` when reading forwards (and `hasNextPage` backwards) is
    /// true exactly when a cursor was given, as the Relay spec allows.
    fn from_probe(mut rows: Vec<M>, args: &PageArgs, total: Option<i64>) -> Self {
        let more = rows.len() as u64 > args.size;
        rows.truncate(args.size as usize);
        if args.backward {
            rows.reverse();
            Self {
                rows,
                has_next: args.cursor.is_some(),
                has_previous: more,
                total,
            }
        } else {
            Self {
                rows,
                has_next: more,
                has_previous: args.cursor.is_some(),
                total,
            }
        }
    }
}

/// Reads one page of `select` (already filtered and scoped) in `ordering`.
pub async fn fetch_page<E>(
    db: &DatabaseConnection,
    select: Select<E>,
    ordering: &Ordering<E::Model>,
    args: &PageArgs,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
{
    fetch_page_read(db, select, ordering, args, PageRead::InOrder).await
}

/// How [`fetch_page_read`] gets to its page; both give the same rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageRead {
    /// `ORDER BY` the ordering's keys: the database may walk an index in that order and stop
    /// once the page is full.
    InOrder,
    /// `ORDER BY` expressions no index serves (the no-op unary `+`), so the database finds
    /// the matching rows first, through the filter's most selective index (a search index),
    /// and sorts them; for filters few rows match.
    SortMatches,
}

/// Reads one page of `select` (already filtered and scoped) in `ordering`, as `read` says.
pub async fn fetch_page_read<E>(
    db: &DatabaseConnection,
    mut select: Select<E>,
    ordering: &Ordering<E::Model>,
    args: &PageArgs,
    read: PageRead,
) -> Result<Page<E::Model>>
where
    E: EntityTrait,
{
    // `first: 0` still reads one probe row: clients ask for an empty page to learn
    // `totalCount` and whether there is a next page.
    if let Some(cursor) = args.cursor_for(ordering)? {
        select = select.filter(ordering.after_condition(&cursor, args.backward));
    }
    let terms = ordering.order_terms(args.backward);
    // The builders' placeholder for an expression: SQLite's `?`, PostgreSQL's `$1`.
    let unary_plus = match db.get_database_backend() {
        DbBackend::Postgres => "+$1",
        _ => "+?",
    };
    for (expr, order) in terms {
        let expr = match read {
            PageRead::InOrder => expr,
            PageRead::SortMatches => Expr::cust_with_expr(unary_plus, expr),
        };
        QuerySelect::query(&mut select).order_by_expr(expr, order);
    }
    let rows = select.limit(args.size + 1).all(db).await?;
    Ok(Page::from_probe(rows, args, None))
}

/// Reads the same page of children for many parents.
///
/// `select` must already be scoped and filtered; `parent` is the expression naming each
/// row's parent. Each parent's page is a `WHERE parent = … ORDER BY … LIMIT n + 1` top-N
/// scan of an index, all in one statement whose text does not depend on the number of
/// parents (they are one parameter), so each connection prepares it once:
/// - on PostgreSQL, `unnest($n::uuid[]) CROSS JOIN LATERAL (…)` (a `UNION ALL` of 50
///   branches took 70–90 ms to plan, ten times its execution);
/// - on SQLite, which has no `LATERAL`, `json_each(?)` and the rows whose `rowid` is among
///   the correlated subquery's `LIMIT n + 1` (SQLite runs that subquery once per parent).
///
/// With `with_totals`, one grouped `COUNT(*)` statement counts every parent's rows
/// (ignoring the cursor), its parents one parameter too ([`crate::db::expr_one_of`]).
///
/// `decode` makes a row of what `select` selects (which may be a projection): `columns`, all
/// of `E`'s. `E`'s table must have a `rowid` on SQLite (not `WITHOUT ROWID`).
#[allow(clippy::too_many_arguments)]
pub async fn fetch_pages_by_parent<E, M>(
    db: &DatabaseConnection,
    select: Select<E>,
    columns: impl IntoIterator<Item = E::Column>,
    parent: Expr,
    parents: &[Uuid],
    ordering: &Ordering<M>,
    args: &PageArgs,
    with_totals: bool,
    decode: impl Fn(&QueryResult) -> std::result::Result<M, DbErr>,
) -> Result<HashMap<Uuid, Page<M>>>
where
    E: EntityTrait,
{
    let cursor = args.cursor_for(ordering)?;
    let backend = db.get_database_backend();
    let mut totals: HashMap<Uuid, i64> = HashMap::new();
    if with_totals {
        let mut count: SelectStatement = select.clone().into_query();
        count
            .clear_selects()
            .expr_as(parent.clone(), Alias::new("cg_parent"))
            .expr_as(Func::count(Expr::col(Asterisk)), Alias::new("cg_total"))
            .and_where(crate::db::expr_one_of(parent.clone(), parents, backend))
            .add_group_by([parent.clone()]);
        for row in db.query_all(&count).await? {
            totals.insert(row.try_get("", "cg_parent")?, row.try_get("", "cg_total")?);
        }
    }
    let mut rows_by_parent: HashMap<Uuid, Vec<M>> = HashMap::new();
    if !parents.is_empty() {
        let page = PagesOfParents {
            select,
            columns: columns.into_iter().collect(),
            parent,
            ordering,
            args,
            cursor: cursor.as_ref(),
        };
        let statement = match backend {
            DbBackend::Postgres => page.on_postgres(parents),
            _ => page.on_sqlite(parents),
        };
        for row in db.query_all_raw(statement).await? {
            let parent_id: Uuid = row.try_get("", "cg_parent")?;
            rows_by_parent
                .entry(parent_id)
                .or_default()
                .push(decode(&row)?);
        }
    }
    let mut pages = HashMap::new();
    for parent_id in parents {
        let mut rows = rows_by_parent.remove(parent_id).unwrap_or_default();
        // Neither statement has an outer ORDER BY (SQLite returns its rows in rowid order):
        // each page is put in order here.
        rows.sort_by(|a, b| ordering.compare(a, b, args.backward));
        let total = with_totals.then(|| totals.get(parent_id).copied().unwrap_or(0));
        pages.insert(*parent_id, Page::from_probe(rows, args, total));
    }
    Ok(pages)
}

/// The statement of [`fetch_pages_by_parent`]: one page of `select` per parent.
struct PagesOfParents<'a, E: EntityTrait, M> {
    select: Select<E>,
    /// What `select` selects: the SQLite statement reads them by rowid, outside `select`.
    columns: Vec<E::Column>,
    parent: Expr,
    ordering: &'a Ordering<M>,
    args: &'a PageArgs,
    cursor: Option<&'a CursorData>,
}

impl<E: EntityTrait, M> PagesOfParents<'_, E, M> {
    /// One parent's page: `select` where the parent is `parent_id`, after the cursor, in
    /// order, `LIMIT n + 1`.
    fn branch(&self, parent_id: Expr) -> SelectStatement {
        let mut branch: SelectStatement = self.select.clone().into_query();
        branch
            .and_where(self.parent.clone().eq(parent_id))
            .limit(self.args.size + 1);
        if let Some(cursor) = self.cursor {
            branch.and_where(self.ordering.after_condition(cursor, self.args.backward));
        }
        for (expr, order) in self.ordering.order_terms(self.args.backward) {
            branch.order_by_expr(expr, order);
        }
        branch
    }

    /// `SELECT cg_page.* FROM unnest($n::uuid[]) AS cg_parents(cg_parent_id) CROSS JOIN
    /// LATERAL (branch) AS cg_page`.
    fn on_postgres(&self, parents: &[Uuid]) -> Statement {
        let mut branch = self.branch(Expr::col((
            Alias::new("cg_parents"),
            Alias::new("cg_parent_id"),
        )));
        branch.expr_as(self.parent.clone(), Alias::new("cg_parent"));
        let (branch_sql, mut values) = branch.build(PostgresQueryBuilder);
        let sql = format!(
            "SELECT cg_page.* FROM unnest(${}::uuid[]) AS cg_parents(cg_parent_id) \
             CROSS JOIN LATERAL ({branch_sql}) AS cg_page",
            values.0.len() + 1
        );
        values.0.push(parents.to_vec().into());
        Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
    }

    /// `SELECT columns, unhex(cg_parents.value) AS cg_parent FROM json_each(?) AS cg_parents
    /// CROSS JOIN table NOT INDEXED WHERE table.rowid IN (SELECT table.rowid … branch)`:
    /// SQLite walks the parents (`CROSS JOIN` fixes the order), runs the correlated branch
    /// for each, and reads its rows by rowid. The outer query has nothing but the rowids to
    /// go by: no filter, no join (the branch has them, the tenant's scope included), and `NOT
    /// INDEXED`. Given any other way in, SQLite took it and ran the branch again for every
    /// row (a parent's whole index range: 50 accounts of 7,000 contacts took 450 ms against
    /// 0.2 ms; a tag's links, a search's matches would do the same).
    fn on_sqlite(&self, parents: &[Uuid]) -> Statement {
        let parent_id = || crate::db::json_id("cg_parents");
        let rowid = || Expr::col((E::default(), Alias::new("rowid")));
        let mut branch = self.branch(parent_id());
        branch.clear_selects().expr(rowid());
        let mut outer = Query::select();
        for column in &self.columns {
            outer.column((E::default(), *column));
        }
        outer
            .expr_as(parent_id(), Alias::new("cg_parent"))
            .from_function(crate::db::json_each_of(parents), Alias::new("cg_parents"))
            .from(E::default().table_ref())
            .and_where(rowid().in_subquery(branch));
        let (sql, values) = outer.build(SqliteQueryBuilder);
        // sea-query has no `NOT INDEXED`, and lists two `FROM`s with a comma.
        let table = E::default().table_name();
        let from = format!(r#"AS "cg_parents", "{table}""#);
        debug_assert!(sql.contains(&from), "{sql}");
        let sql = sql.replacen(
            &from,
            &format!(r#"AS "cg_parents" CROSS JOIN "{table}" NOT INDEXED"#),
            1,
        );
        Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Row {
        id: Uuid,
        name: String,
        rank: i64,
    }

    fn row() -> Row {
        Row {
            id: Uuid::from_u128(7),
            name: "Åsa \"O'Neil\"".into(),
            rank: -3,
        }
    }

    fn name(direction: Direction) -> SortKey<Row> {
        SortKey {
            name: "NAME",
            expr: Expr::col(Alias::new("name")),
            direction,
            value: |r| KeyValue::Text(r.name.clone()),
            text: true,
        }
    }

    fn rank(direction: Direction) -> SortKey<Row> {
        SortKey {
            name: "RANK",
            expr: Expr::col(Alias::new("rank")),
            direction,
            value: |r| KeyValue::Int(r.rank),
            text: false,
        }
    }

    fn ordering(keys: Vec<SortKey<Row>>) -> Ordering<Row> {
        Ordering::new(keys, Expr::col(Alias::new("id")), |r| r.id)
    }

    fn after(cursor: String) -> PageArgs {
        PageArgs::from_relay(Some(10), Some(cursor), None, None).expect("valid arguments")
    }

    fn encode(json: serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(json.to_string())
    }

    fn invalid_fields(result: Result<impl std::fmt::Debug>) -> Vec<(String, String)> {
        match result {
            Err(Error::Validation(failures)) => {
                failures.into_iter().map(|f| (f.field, f.message)).collect()
            }
            other => panic!("not a validation failure: {other:?}"),
        }
    }

    #[test]
    fn a_cursor_decodes_to_the_keys_and_id_of_its_row() {
        let order = ordering(vec![name(Direction::Asc), rank(Direction::Desc)]);
        let cursor = order.cursor_of(&row());
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "URL-safe, unpadded: {cursor}"
        );
        let data = decode_cursor(&cursor).expect("decodes");
        assert_eq!(data.v, 1);
        assert_eq!(data.o, "NAME:Asc,RANK:Desc");
        assert_eq!(
            data.k,
            vec![KeyValue::Text(row().name), KeyValue::Int(row().rank)]
        );
        assert_eq!(data.id, row().id);
        let used = after(cursor).cursor_for(&order).expect("accepted");
        assert_eq!(used.map(|c| c.id), Some(row().id));
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let id = Uuid::from_u128(7).to_string();
        for cursor in [
            String::new(),
            "not base64!".to_string(),
            URL_SAFE_NO_PAD.encode("not json"),
            encode(serde_json::json!([1, 2])),
            encode(serde_json::json!({ "v": 1, "o": "NAME:Asc", "k": ["x"] })),
            encode(serde_json::json!({ "v": 1, "o": "NAME:Asc", "k": ["x"], "id": "no uuid" })),
            encode(serde_json::json!({ "v": 2, "o": "NAME:Asc", "k": ["x"], "id": id })),
            encode(serde_json::json!({ "v": 1, "o": "NAME:Asc", "k": [1.5], "id": id })),
            encode(serde_json::json!({ "v": 1, "o": "NAME:Asc", "k": ["a\u{0}b"], "id": id })),
        ] {
            assert!(decode_cursor(&cursor).is_none(), "{cursor}");
            assert_eq!(
                invalid_fields(PageArgs::from_relay(Some(1), Some(cursor), None, None)),
                vec![("after".to_string(), "not a valid cursor".to_string())]
            );
        }
        let good = encode(serde_json::json!({ "v": 1, "o": "NAME:Asc", "k": ["x"], "id": id }));
        assert!(decode_cursor(&good).is_some());
        assert_eq!(
            invalid_fields(PageArgs::from_relay(None, None, Some(1), Some("%%".into()))),
            vec![("before".to_string(), "not a valid cursor".to_string())]
        );
    }

    #[test]
    fn a_cursor_of_another_order_is_refused() {
        let made_for = ordering(vec![name(Direction::Asc)]);
        let cursor = made_for.cursor_of(&row());
        let other_orders = [
            ordering(vec![name(Direction::Desc)]),
            ordering(vec![rank(Direction::Asc)]),
            ordering(vec![name(Direction::Asc), rank(Direction::Asc)]),
        ];
        for order in &other_orders {
            let refused = after(cursor.clone()).cursor_for(order).map(|c| c.is_some());
            assert_eq!(
                invalid_fields(refused),
                vec![(
                    "after".to_string(),
                    "this cursor belongs to another order; page with the orderBy it was made with"
                        .to_string()
                )]
            );
        }
        // The fingerprint matches but the key is an integer where text is sorted on.
        let id = Uuid::from_u128(7).to_string();
        let forged = encode(serde_json::json!({ "v": 1, "o": "NAME:Asc", "k": [5], "id": id }));
        assert!(after(forged).cursor_for(&made_for).is_err());
    }

    /// The SQL and values of the rows after `row`'s cursor in `order`.
    fn after_sql(order: &Ordering<Row>, reversed: bool) -> (String, Vec<Value>) {
        let cursor = decode_cursor(&order.cursor_of(&row())).expect("decodes");
        let (sql, values) = Query::select()
            .column(Asterisk)
            .from(Alias::new("t"))
            .and_where(order.after_condition(&cursor, reversed))
            .build(SqliteQueryBuilder);
        let prefix = r#"SELECT * FROM "t" WHERE "#;
        (
            sql.strip_prefix(prefix).expect(prefix).to_string(),
            values.0,
        )
    }

    #[test]
    fn one_key_pages_compare_one_row_value() {
        let text = || Value::from(row().name);
        let id = || Value::from(row().id);
        for (direction, reversed, op) in [
            (Direction::Asc, false, ">"),
            (Direction::Asc, true, "<"),
            (Direction::Desc, false, "<"),
            (Direction::Desc, true, ">"),
        ] {
            let order = ordering(vec![name(direction)]);
            assert_eq!(
                after_sql(&order, reversed),
                (format!(r#"("name", "id") {op} (?, ?)"#), vec![text(), id()]),
                "{direction:?}, reversed: {reversed}"
            );
        }
    }

    #[test]
    fn two_keys_of_one_direction_compare_one_row_value() {
        let values = || {
            vec![
                Value::from(row().name),
                Value::from(row().rank),
                Value::from(row().id),
            ]
        };
        for (direction, reversed, op) in [
            (Direction::Asc, false, ">"),
            (Direction::Asc, true, "<"),
            (Direction::Desc, false, "<"),
            (Direction::Desc, true, ">"),
        ] {
            let order = ordering(vec![name(direction), rank(direction)]);
            assert_eq!(
                after_sql(&order, reversed),
                (
                    format!(r#"("name", "rank", "id") {op} (?, ?, ?)"#),
                    values()
                ),
                "{direction:?}, reversed: {reversed}"
            );
        }
    }

    #[test]
    fn two_keys_of_mixed_directions_expand_into_alternatives() {
        let (name_v, rank_v, id_v) = (
            Value::from(row().name),
            Value::from(row().rank),
            Value::from(row().id),
        );
        // The id follows the direction of the last key.
        let order = ordering(vec![name(Direction::Asc), rank(Direction::Desc)]);
        let expected = |a: &str, b: &str| {
            (
                format!(
                    r#""name" {a} ? OR ("name" = ? AND "rank" {b} ?) OR ("name" = ? AND "rank" = ? AND "id" {b} ?)"#
                ),
                vec![
                    name_v.clone(),
                    name_v.clone(),
                    rank_v.clone(),
                    name_v.clone(),
                    rank_v.clone(),
                    id_v.clone(),
                ],
            )
        };
        assert_eq!(after_sql(&order, false), expected(">", "<"));
        assert_eq!(after_sql(&order, true), expected("<", ">"));
        let order = ordering(vec![name(Direction::Desc), rank(Direction::Asc)]);
        assert_eq!(after_sql(&order, false), expected("<", ">"));
        assert_eq!(after_sql(&order, true), expected(">", "<"));
    }

    #[test]
    fn pages_are_read_in_the_keys_order_then_by_id() {
        let order = ordering(vec![name(Direction::Desc), rank(Direction::Asc)]);
        let sql = |reversed| {
            let mut select = Query::select();
            select.column(Asterisk).from(Alias::new("t"));
            for (expr, direction) in order.order_terms(reversed) {
                select.order_by_expr(expr, direction);
            }
            select.to_string(SqliteQueryBuilder)
        };
        assert_eq!(
            sql(false),
            r#"SELECT * FROM "t" ORDER BY "name" DESC, "rank" ASC, "id" ASC"#
        );
        assert_eq!(
            sql(true),
            r#"SELECT * FROM "t" ORDER BY "name" ASC, "rank" DESC, "id" DESC"#
        );
    }

    /// The first 10 deliveries of each webhook, newest first: a page of many parents.
    fn deliveries_of_webhooks<'a>(
        ordering: &'a Ordering<entity::webhook_delivery::Model>,
        args: &'a PageArgs,
    ) -> PagesOfParents<'a, entity::prelude::WebhookDelivery, entity::webhook_delivery::Model> {
        use sea_orm::IntoSimpleExpr;
        PagesOfParents {
            select: crate::tenancy::scoped(crate::tenancy::TenantId(Uuid::now_v7())),
            columns: vec![
                entity::webhook_delivery::Column::Id,
                entity::webhook_delivery::Column::CreatedAt,
            ],
            parent: entity::webhook_delivery::Column::WebhookId.into_simple_expr(),
            ordering,
            args,
            cursor: None,
        }
    }

    const FIRST_10: PageArgs = PageArgs {
        size: 10,
        backward: false,
        cursor: None,
    };

    #[test]
    fn a_page_read_from_the_start_with_nothing_after_it_is_the_whole_list() {
        let args = |backward: bool, cursor: Option<&str>| PageArgs {
            size: 3,
            backward,
            cursor: cursor.map(str::to_string),
        };
        for backward in [false, true] {
            // Two rows of three: the whole list, forwards or backwards.
            let page = Page::from_probe(vec![1, 2], &args(backward, None), None);
            assert_eq!(page.whole_total(), Some(2));
            assert_eq!(
                Page::<i32>::from_probe(vec![], &args(backward, None), None).whole_total(),
                Some(0)
            );
            // A probe row beyond the page: more follow.
            let page = Page::from_probe(vec![1, 2, 3, 4], &args(backward, None), None);
            assert_eq!(page.whole_total(), None);
            // After (or before) a cursor: rows precede it.
            let page = Page::from_probe(vec![1], &args(backward, Some("c")), None);
            assert_eq!(page.whole_total(), None);
        }
    }

    #[test]
    fn pages_of_many_parents_are_one_statement_text_for_any_number_of_parents() {
        let ordering = crate::webhooks::delivery::ordering();
        let page = deliveries_of_webhooks(&ordering, &FIRST_10);
        let parents: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let statement = |n: usize| match backend {
                DbBackend::Postgres => page.on_postgres(&parents[..n]),
                _ => page.on_sqlite(&parents[..n]),
            };
            let (one, fifty) = (statement(1), statement(50));
            assert_eq!(one.sql, fifty.sql, "{backend:?}");
            let values = |s: &Statement| s.values.as_ref().map_or(0, |v| v.0.len());
            assert_eq!(values(&one), values(&fifty), "{backend:?}: {}", one.sql);
        }
        let sqlite = page.on_sqlite(&parents[..2]).sql;
        assert!(
            sqlite.contains(
                r#"FROM json_each(?) AS "cg_parents" CROSS JOIN "webhook_deliveries" NOT INDEXED"#
            ),
            "the parents come first, so that SQLite walks them: {sqlite}"
        );
        assert!(sqlite.contains("LIMIT ?)"), "{sqlite}");
        // Nothing but the rowids leads into the table: the filters (the tenant's scope
        // here) are the branch's.
        assert!(
            sqlite.contains(r#"NOT INDEXED WHERE "webhook_deliveries"."rowid" IN (SELECT"#),
            "{sqlite}"
        );
        assert!(sqlite.ends_with("LIMIT ?)"), "{sqlite}");
        assert!(sqlite.contains(r#"WHERE "webhook_deliveries"."tenant_id" = ?"#));
    }

    /// SQLite's plan for the pages of many parents walks the parents, then reads rows by
    /// rowid (a plan that walks a parent's index range instead ran the branch per row).
    #[tokio::test]
    async fn sqlite_walks_the_parents_and_reads_each_page_by_rowid() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("plan.db").display());
        let db = crate::db::connect(&url, None).await.expect("connect");
        crate::db::migrate(&db).await.expect("migrate");
        let ordering = crate::webhooks::delivery::ordering();
        let page = deliveries_of_webhooks(&ordering, &FIRST_10);
        let statement = page.on_sqlite(&[Uuid::now_v7(), Uuid::now_v7()]);
        let explain = Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", statement.sql),
            ..statement
        };
        let plan: Vec<String> = db
            .query_all_raw(explain)
            .await
            .expect("explain")
            .iter()
            .map(|row| row.try_get::<String>("", "detail").expect("detail"))
            .collect();
        assert!(plan[0].starts_with("SCAN cg_parents"), "{plan:#?}");
        assert!(
            plan[1].contains("USING INTEGER PRIMARY KEY (rowid=?)"),
            "{plan:#?}"
        );
        assert!(
            plan.iter().any(|l| l.contains("CORRELATED LIST SUBQUERY")),
            "{plan:#?}"
        );
    }
}
