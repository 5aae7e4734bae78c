//! Filter pieces shared by every entity: date ranges, text matching and id parsing.
use chrono::{NaiveDate, TimeZone, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LikeExpr};
use uuid::Uuid;

use crate::error::{Error, FieldFailure, Result};
use crate::time::Timestamp;

/// Range of instants (seed 003's `updated_at` on/gt/lt, seed 004's date ranges). All given
/// bounds apply together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DateTimeFilter {
    /// On this calendar day (UTC).
    pub on: Option<NaiveDate>,
    /// Strictly after.
    pub gt: Option<Timestamp>,
    /// At or after.
    pub gte: Option<Timestamp>,
    /// Strictly before.
    pub lt: Option<Timestamp>,
    /// At or before.
    pub lte: Option<Timestamp>,
}

impl DateTimeFilter {
    /// The condition on `column` (a millisecond timestamp). A bound with digits below the
    /// millisecond is rounded the way that keeps its meaning against stored milliseconds:
    /// `gte`/`lt` up, `gt`/`lte` down (`gte: …00.0001Z` excludes `…00.000Z`).
    pub fn condition(&self, column: Expr) -> Condition {
        let mut cond = Condition::all();
        if let Some(day) = self.on {
            let start = day_start_millis(day);
            cond = cond
                .add(column.clone().gte(start))
                .add(column.clone().lt(start + 86_400_000));
        }
        if let Some(t) = self.gt {
            cond = cond.add(column.clone().gt(t.millis()));
        }
        if let Some(t) = self.gte {
            cond = cond.add(column.clone().gte(t.ceil_millis()));
        }
        if let Some(t) = self.lt {
            cond = cond.add(column.clone().lt(t.ceil_millis()));
        }
        if let Some(t) = self.lte {
            cond = cond.add(column.lte(t.millis()));
        }
        cond
    }
}

fn day_start_millis(day: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&day.and_time(chrono::NaiveTime::MIN))
        .timestamp_millis()
}

/// Longest `search` string accepted (seed 002).
pub const MAX_SEARCH_LEN: usize = 255;

/// Checks a search string's length, collecting a failure for `field`.
pub fn check_search(field: &str, search: &str, failures: &mut Vec<FieldFailure>) {
    if search.chars().count() > MAX_SEARCH_LEN {
        failures.push(FieldFailure::new(
            field,
            format!("must be at most {MAX_SEARCH_LEN} characters"),
        ));
    }
}

/// A LIKE pattern matching `text` anywhere, with `%`, `_` and `\` taken literally.
pub fn contains_pattern(text: &str) -> LikeExpr {
    LikeExpr::new(contains_pattern_text(text)).escape('\\')
}

/// The text of [`contains_pattern`]: `text` between `%`s, its `%`, `_` and `\` escaped with
/// `\` (the pattern's `ESCAPE` character).
pub fn contains_pattern_text(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 2);
    escaped.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

/// Case-insensitive substring match of `text` in `folded`, a column that holds its text
/// case-folded by [`entity::fold`] (`name_folded`); the needle is folded the same way.
pub fn folded_contains(folded: Expr, text: &str) -> Expr {
    folded.like(contains_pattern(&entity::fold(text)))
}

/// Parses an id (a UUID's text); a malformed id is a validation failure of `field`.
pub fn parse_id(field: &str, id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::invalid(field, "not a valid id (a UUID)"))
}

/// Like [`parse_id`], collecting the failure instead of returning it.
pub fn collect_id(field: &str, id: &str, failures: &mut Vec<FieldFailure>) -> Option<Uuid> {
    match parse_id(field, id) {
        Ok(id) => Some(id),
        Err(_) => {
            failures.push(FieldFailure::new(field, "not a valid id (a UUID)"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::sea_query::{Alias, Query, SqliteQueryBuilder};

    #[test]
    fn like_pattern_escapes_wildcards() {
        let sql = Query::select()
            .column(Alias::new("a"))
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("a")).like(contains_pattern("50%_a\\b")))
            .to_string(SqliteQueryBuilder);
        assert!(sql.contains(r"LIKE '%50\%\_a\\b%' ESCAPE '\'"), "{sql}");
    }
}
