//! Step 1, reading: a payload's records, in the order they are imported.
//!
//! When a vendor id occurs more than once, the last record with it takes the place of the
//! first and the others are left out (a warning each). Finding that out reads only the ids,
//! so that a file's records can be parsed and mapped batch by batch while earlier batches
//! are written.
use std::collections::HashMap;

use serde_json::Value;
use serde_json::value::RawValue;

use super::Notice;
use super::map::Mapped;
use crate::error::{Error, Result};
use crate::sources::{Connector, Format, MapContext, mapping, payload};

/// A record of a payload: parsed, or still its raw JSON text.
pub(super) enum Record {
    Parsed(Value),
    Raw(Box<RawValue>),
}

impl Record {
    /// Its vendor id, or why it has none.
    fn id(&self, id_field: &str) -> std::result::Result<String, String> {
        match self {
            Record::Parsed(value) => mapping::record_id(value, id_field),
            Record::Raw(raw) => mapping::raw_record_id(raw, id_field),
        }
    }

    fn into_value(self) -> std::result::Result<Value, String> {
        match self {
            Record::Parsed(value) => Ok(value),
            Record::Raw(raw) => serde_json::from_str(raw.get())
                .map_err(|err| format!("the record is not valid JSON: {err}")),
        }
    }
}

/// Reads a payload of `format`: JSON, then the format's envelope.
pub fn parse_payload(format: Format, payload: &[u8]) -> Result<Vec<Value>> {
    let value: Value = serde_json::from_slice(&payload::normalise(payload))
        .map_err(|err| Error::BadPayload(format!("not valid JSON: {err}")))?;
    format
        .connector()
        .records(value)
        .map_err(|err| Error::BadPayload(format!("not a {} payload: {err}", format.name())))
}

/// The records of a whole payload: their raw texts when it is exactly of its format (each
/// is parsed when its batch is mapped, while earlier batches are written), else parsed here
/// by [`parse_payload`], which also says why a payload is not of its format.
pub(super) fn read_records(format: Format, payload: &[u8]) -> Result<Vec<Record>> {
    if let Some(raw) = format.connector().raw_records(&payload::normalise(payload)) {
        return Ok(raw.into_iter().map(Record::Raw).collect());
    }
    Ok(parse_payload(format, payload)?
        .into_iter()
        .map(Record::Parsed)
        .collect())
}

/// The import order of records by their vendor ids (`Err` for a record without a usable
/// one): positions in the input, the last record of each id in the place of its first, and
/// the ids that occur more than once (once per record left out). A record without an id
/// keeps its place, to be rejected when it is mapped.
fn import_order(
    ids: impl IntoIterator<Item = std::result::Result<String, String>>,
) -> (Vec<usize>, Vec<String>) {
    let ids = ids.into_iter();
    let mut order: Vec<usize> = Vec::with_capacity(ids.size_hint().0);
    let mut slot_of: HashMap<String, usize> = HashMap::with_capacity(ids.size_hint().0);
    let mut repeated = Vec::new();
    for (position, id) in ids.enumerate() {
        let Ok(id) = id else {
            order.push(position);
            continue;
        };
        if let Some(&slot) = slot_of.get(&id) {
            order[slot] = position;
            repeated.push(id);
        } else {
            slot_of.insert(id, order.len());
            order.push(position);
        }
    }
    (order, repeated)
}

/// The records of a payload in the order they are imported, mapped a batch at a time.
pub(super) struct RecordQueue<'c> {
    connector: &'c dyn Connector,
    /// The records; each is taken when it is mapped.
    records: Vec<Option<Record>>,
    /// Positions in `records`, in import order.
    order: std::vec::IntoIter<usize>,
}

impl<'c> RecordQueue<'c> {
    /// Orders `records`; a warning for each vendor id that occurs more than once.
    pub(super) fn new(
        connector: &'c dyn Connector,
        records: Vec<Record>,
        warnings: &mut Vec<Notice>,
    ) -> Self {
        let (order, repeated) = import_order(records.iter().map(|r| r.id(connector.id_field())));
        warnings.extend(repeated.into_iter().map(|id| Notice {
            record: id,
            field: None,
            message: "the id occurs more than once; the last record was imported".into(),
        }));
        Self {
            connector,
            records: records.into_iter().map(Some).collect(),
            order: order.into_iter(),
        }
    }

    /// A queue of records already parsed (a page of a live API).
    pub(super) fn of_values(
        connector: &'c dyn Connector,
        records: Vec<Value>,
        warnings: &mut Vec<Notice>,
    ) -> Self {
        Self::new(
            connector,
            records.into_iter().map(Record::Parsed).collect(),
            warnings,
        )
    }

    /// How many records are still to be mapped.
    pub(super) fn remaining(&self) -> usize {
        self.order.len()
    }

    /// Maps up to `count` more records; those that cannot be mapped are rejected.
    pub(super) fn map_next(
        &mut self,
        count: usize,
        context: &MapContext,
        rejected: &mut Vec<Notice>,
    ) -> Vec<Mapped> {
        let mut out = Vec::with_capacity(count.min(self.remaining()));
        for position in self.order.by_ref().take(count) {
            let Some(record) = self.records[position].take() else {
                continue;
            };
            let reject = |reason| Notice {
                record: format!("#{}", position + 1),
                field: None,
                message: reason,
            };
            let record = match record.into_value() {
                Ok(record) => record,
                Err(reason) => {
                    rejected.push(reject(reason));
                    continue;
                }
            };
            match self.connector.map(&record, context) {
                Ok(mapped) => out.push(Mapped { record, mapped }),
                Err(reason) => rejected.push(reject(reason)),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[Option<&str>]) -> Vec<std::result::Result<String, String>> {
        list.iter()
            .map(|id| id.map(str::to_string).ok_or_else(|| "no id".to_string()))
            .collect()
    }

    #[test]
    fn distinct_ids_keep_their_order() {
        let (order, repeated) = import_order(ids(&[Some("a"), Some("b"), Some("c")]));
        assert_eq!(order, vec![0, 1, 2]);
        assert!(repeated.is_empty());
    }

    #[test]
    fn the_last_record_of_an_id_takes_the_place_of_the_first() {
        let (order, repeated) = import_order(ids(&[
            Some("a"),
            Some("b"),
            Some("a"),
            Some("c"),
            Some("a"),
        ]));
        assert_eq!(order, vec![4, 1, 3]);
        assert_eq!(repeated, vec!["a".to_string(), "a".to_string()]);
    }

    #[test]
    fn records_without_an_id_keep_their_place() {
        let (order, repeated) = import_order(ids(&[None, Some("a"), None, Some("a")]));
        assert_eq!(order, vec![0, 3, 2]);
        assert_eq!(repeated, vec!["a".to_string()]);
    }

    #[test]
    fn a_queue_maps_in_batches_and_rejects_what_cannot_be_mapped() {
        let connector = crate::sources::Format::ClientContacts.connector();
        let records = vec![
            serde_json::json!({ "id": 1, "email": "a@example.com" }),
            serde_json::json!({ "email": "no id" }),
            serde_json::json!({ "id": 2, "email": "b@example.com" }),
            serde_json::json!({ "id": 1, "email": "a2@example.com" }),
        ];
        let mut warnings = Vec::new();
        let mut queue = RecordQueue::of_values(connector, records, &mut warnings);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].record, "1");
        assert_eq!(queue.remaining(), 3);
        let mut rejected = Vec::new();
        let first = queue.map_next(2, &MapContext::default(), &mut rejected);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].mapped.external_id, "1");
        assert_eq!(first[0].record["email"], "a2@example.com");
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].record, "#2");
        let rest = queue.map_next(2, &MapContext::default(), &mut rejected);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].mapped.external_id, "2");
        assert_eq!(queue.remaining(), 0);
    }
}
