//! `search`: a case-insensitive substring of a contact's `search_text` (see
//! [`super::search_text`]), and how each database finds the contacts that contain it.
//!
//! Two ways to find them, each fast where the other is slow (issue 19, target 6):
//! - through the trigram index, at a cost that grows with the number of matching contacts:
//!   right for strings few contacts contain ("zzq": well under a millisecond at a million);
//! - walking the contacts in the page's order and testing each one's text until the page is
//!   full, at a cost that grows with how far apart the matches are: right for strings many
//!   contacts contain ("mueller", one contact in 18: some 400 contacts tested for a page of
//!   20, where the index reads 52,000 matches to sort them).
//!
//! PostgreSQL's planner picks between the two from its statistics of `search_text`. SQLite's
//! cannot (it knows nothing of how many rows an FTS5 phrase matches), so before a page it asks
//! the index for at most [`PROBE_MATCHES`] matches ([`probe`]) and [`plan`] decides.
//! Strings of 1–2 characters have no trigram: they are always walked. On SQLite the walk's
//! index carries the text (migration 18: `idx_contacts_created` ends in `search_text`), so
//! the walk reads no contact row it does not return; a string no contact contains still walks
//! the whole order (at a million contacts, 0.15–0.5 s on a 2-core VM; PostgreSQL, which reads
//! each row, 0.35–0.8 s), and so does its count ([`count_hint`]).
//!
//! On PostgreSQL the pattern is a literal of the statement ([`condition`]), so that each
//! string is planned for what it matches.
use entity::contact::Column;
use entity::prelude::Contact;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult, Statement};

use super::filter::{ContactFilter, FilterTarget};
use crate::error::Result;
use crate::filter::{contains_pattern, contains_pattern_text};

/// How a search finds its contacts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SearchPlan {
    /// Through the trigram index: on SQLite the FTS5 table `contact_search` gives the row ids
    /// of the matches, which are then sorted; on PostgreSQL a `LIKE` that pg_trgm's GIN index
    /// serves when the planner thinks it best.
    #[default]
    Index,
    /// A `LIKE` tested on each contact in the page's order, stopping when the page is full.
    Walk,
}

/// The most matches [`probe`] asks the index for. A string with this many matches anywhere in
/// the index is common enough that walking finds a page of 20 quickly: at a million contacts
/// a walk tests on average at most 20 × 1,000,000 / 1,000 = 20,000 index entries (a few
/// milliseconds), while reading the matches through the index costs about as much as they are
/// many (52,000 matches: 30–50 ms here).
pub const PROBE_MATCHES: i64 = 1_000;

/// The part of `idx_contacts_live`'s condition a search states (see migration 18).
const LIVE_INDEX_CONDITION: &str = "length(\"contacts\".\"search_text\") >= 0";

/// Characters a string needs for the trigram index to serve it.
const TRIGRAM: usize = 3;

/// The plan for a search string, from how many matches (at most [`PROBE_MATCHES`]) the index
/// gave the probe; `None` when no probe ran (strings too short for the trigram index are
/// walked; without a probe, the index is used).
pub fn plan(needle: &str, probed: Option<i64>) -> SearchPlan {
    if needle.chars().count() < TRIGRAM {
        return SearchPlan::Walk;
    }
    match probed {
        Some(matches) if matches >= PROBE_MATCHES => SearchPlan::Walk,
        _ => SearchPlan::Index,
    }
}

/// The plan for the top-level `search` of `filter` on `db` (nested filters' searches use the
/// index), `None` without one: on SQLite one probe statement of the trigram index for strings
/// of 3 or more characters; none otherwise.
pub async fn choose(db: &DatabaseConnection, filter: &ContactFilter) -> Result<Option<SearchPlan>> {
    let needle = match filter.search.as_deref() {
        None | Some("") => return Ok(None),
        Some(search) => entity::fold(search),
    };
    if db.get_database_backend() != DbBackend::Sqlite || needle.chars().count() < TRIGRAM {
        return Ok(Some(plan(&needle, None)));
    }
    Ok(Some(plan(&needle, Some(probe(db, &needle).await?))))
}

/// How many contacts, of any tenant and up to [`PROBE_MATCHES`], the SQLite trigram index
/// says contain `needle` (already folded): one statement that stops at the limit.
async fn probe(db: &DatabaseConnection, needle: &str) -> Result<i64> {
    #[derive(FromQueryResult)]
    struct Probed {
        matches: i64,
    }
    let statement = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        "SELECT count(*) AS matches FROM \
         (SELECT 1 FROM contact_search WHERE contact_search MATCH ? LIMIT ?)",
        [phrase(needle).into(), PROBE_MATCHES.into()],
    );
    Ok(Probed::find_by_statement(statement)
        .one(db)
        .await?
        .map_or(0, |p| p.matches))
}

/// An FTS5 phrase of one string: with the trigram tokenizer it matches the string as a
/// substring; quotes are doubled, nothing else is special inside a phrase.
fn phrase(needle: &str) -> String {
    format!("\"{}\"", needle.replace('"', "\"\""))
}

/// The condition that a contact's `search_text` contains `search` (folded here), written
/// for `target`'s database and plan: the FTS5 table on SQLite when the plan is
/// [`SearchPlan::Index`] and the string has a trigram, else a `LIKE` (`%`, `_` and `\`
/// taken literally), which pg_trgm's index serves on PostgreSQL (where the pattern is a
/// literal of the statement, so that each string is planned for itself).
pub fn condition(target: FilterTarget, search: &str) -> Expr {
    let needle = entity::fold(search);
    if target.backend == DbBackend::Sqlite
        && target.search == SearchPlan::Index
        && needle.chars().count() >= TRIGRAM
    {
        Expr::cust_with_values(
            "\"contacts\".rowid IN (SELECT rowid FROM contact_search WHERE contact_search MATCH ?)",
            [phrase(&needle)],
        )
        // Always true; the condition of `idx_contacts_live` (migration 18), so that SQLite
        // checks each match's tenant and liveness in that index.
        .and(Expr::cust(LIVE_INDEX_CONDITION))
    } else if target.backend == DbBackend::Postgres {
        // The pattern is written into the statement, not bound: PostgreSQL plans a bound
        // `LIKE $1` generically after five runs of a statement on a connection, without
        // knowing how many contacts the string matches (its walk or its trigram index), and
        // a first page of "mueller" went from 3.4 to 157 ms. Each search string is then a
        // statement of its own in the connection's statement cache (sqlx keeps 100), and
        // the string appears in the statement's text (debug logs, PostgreSQL's error log).
        // `plan_cache_mode = force_custom_plan` would keep it bound but replan every
        // statement of every request.
        Expr::cust(format!(
            "\"contacts\".\"search_text\" LIKE {} ESCAPE E'\\\\'",
            postgres_literal(&contains_pattern_text(&needle))
        ))
    } else {
        Expr::col((Contact, Column::SearchText)).like(contains_pattern(&needle))
    }
}

/// `text` as a PostgreSQL string literal (`E'…'`): each backslash doubled, each quote
/// doubled, every other character as it is (NUL never reaches here: inputs holding it are
/// refused, `graphql/input_checks.rs`).
fn postgres_literal(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 4);
    literal.push_str("E'");
    for c in text.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '\'' => literal.push_str("''"),
            c => literal.push(c),
        }
    }
    literal.push('\'');
    literal
}

/// An always-true condition for a count of `filter` on `backend`, `None` when none helps: on
/// SQLite, a top-level `search` tested by `LIKE` (a string too short for the trigram index) is
/// counted along `idx_contacts_created`, whose entries carry the text, so that a contact row
/// is read only for a match. Without it SQLite counts along an index by tenant and reads every
/// row (at a million contacts, as statements: "q" 1.5 s → 0.17 s; "e", which nearly all
/// contain, 1.5 → 0.43 s). The condition, `created_at >= i64::MIN`, holds for every contact
/// and gives that index a range to search.
pub fn count_hint(backend: DbBackend, filter: &ContactFilter) -> Option<Expr> {
    let search = filter.search.as_deref().filter(|s| !s.is_empty())?;
    // Strings too short for the trigram index are the ones always walked.
    if backend != DbBackend::Sqlite || plan(&entity::fold(search), None) != SearchPlan::Walk {
        return None;
    }
    Some(Expr::col((Contact, Column::CreatedAt)).gte(i64::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_are_walked_whatever_the_probe() {
        assert_eq!(plan("zz", None), SearchPlan::Walk);
        assert_eq!(plan("ü", Some(0)), SearchPlan::Walk);
    }

    #[test]
    fn rare_strings_use_the_index_and_common_ones_are_walked() {
        assert_eq!(plan("zzq", Some(0)), SearchPlan::Index);
        assert_eq!(plan("zzq", Some(PROBE_MATCHES - 1)), SearchPlan::Index);
        assert_eq!(plan("mueller", Some(PROBE_MATCHES)), SearchPlan::Walk);
    }

    #[test]
    fn without_a_probe_a_trigram_string_uses_the_index() {
        assert_eq!(plan("mueller", None), SearchPlan::Index);
    }

    #[test]
    fn only_sqlite_counts_of_short_strings_get_a_hint() {
        let filter = |search: &str| ContactFilter {
            search: Some(search.to_string()),
            ..ContactFilter::default()
        };
        assert!(count_hint(DbBackend::Sqlite, &filter("zz")).is_some());
        assert!(count_hint(DbBackend::Sqlite, &filter("ß")).is_some());
        assert!(count_hint(DbBackend::Sqlite, &filter("zzq")).is_none());
        assert!(count_hint(DbBackend::Sqlite, &filter("")).is_none());
        assert!(count_hint(DbBackend::Sqlite, &ContactFilter::default()).is_none());
        assert!(count_hint(DbBackend::Postgres, &filter("zz")).is_none());
    }

    #[test]
    fn postgres_gets_the_pattern_as_a_literal_with_quotes_and_backslashes_escaped() {
        use sea_orm::sea_query::Query;
        let target = FilterTarget {
            tenant: crate::tenancy::TenantId(uuid::Uuid::nil()),
            backend: DbBackend::Postgres,
            search: SearchPlan::Index,
        };
        let (sql, values) = Query::select()
            .expr(Expr::val(1))
            .and_where(condition(target, "O'Brien_5%\\x\u{1a}"))
            .build(sea_orm::sea_query::PostgresQueryBuilder);
        assert!(
            sql.ends_with(
                "\"contacts\".\"search_text\" LIKE E'%o''brien\\\\_5\\\\%\\\\\\\\x\u{1a}%' ESCAPE E'\\\\'"
            ),
            "{sql}"
        );
        assert_eq!(
            values.0.len(),
            1,
            "only the selected 1 is bound: {values:?}"
        );
    }

    #[test]
    fn a_phrase_doubles_its_quotes() {
        assert_eq!(phrase("a\"b"), "\"a\"\"b\"");
    }
}
