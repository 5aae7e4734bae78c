//! Reading `ID` arguments: the domain takes UUIDs, a client sends text.
use async_graphql::ID;
use uuid::Uuid;

use crate::error::{Error, FieldFailure, Result};
use crate::filter::collect_id;

/// Parses the `ID` at `field` (its path in the request, e.g. `input.id`); a malformed one is
/// `VALIDATION_FAILED` for that field.
pub fn parse_id(field: &str, id: &ID) -> Result<Uuid> {
    crate::filter::parse_id(field, id)
}

/// Parses a list of `ID`s at `field`; every malformed one is a failure of `field[i]`, all
/// reported at once.
pub fn parse_ids(field: &str, ids: &[ID]) -> Result<Vec<Uuid>> {
    let mut failures = Vec::new();
    let parsed = collect_ids(field, ids, &mut failures);
    if failures.is_empty() {
        Ok(parsed)
    } else {
        Err(Error::Validation(failures))
    }
}

/// Like [`parse_ids`], adding each malformed id's failure to `failures`.
pub fn collect_ids(field: &str, ids: &[ID], failures: &mut Vec<FieldFailure>) -> Vec<Uuid> {
    ids.iter()
        .enumerate()
        .filter_map(|(i, id)| collect_id(&format!("{field}[{i}]"), id, failures))
        .collect()
}
