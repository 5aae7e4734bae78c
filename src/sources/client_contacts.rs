//! Seed 003, `GET /api/contacts`: a JSON array with integer `id`s and `client_id`, paged
//! with `limit` (at most 100) and `offset`; `updated_at=gt:...` lists only what changed.
use serde_json::Value;
use serde_json::value::RawValue;

use super::mapping::RecordMapper;
use super::{Connector, MapContext, MappedRecord, PAGE_SIZE, PagePosition, VendorRef};

/// The `client-contacts` connector.
pub struct ClientContacts;

impl Connector for ClientContacts {
    fn records(&self, payload: Value) -> Result<Vec<Value>, String> {
        match payload {
            Value::Array(records) => Ok(records),
            _ => Err("expected a JSON array of contacts".to_string()),
        }
    }

    fn raw_records(&self, payload: &[u8]) -> Option<Vec<Box<RawValue>>> {
        serde_json::from_slice(payload).ok()
    }

    fn id_field(&self) -> &'static str {
        "id"
    }

    fn map(&self, record: &Value, _context: &MapContext) -> Result<MappedRecord, String> {
        let mut m = RecordMapper::new(record, self.id_field())?;
        m.copy_text("email", "email");
        m.copy_text("name", "firstName");
        m.copy_text("surname", "lastName");
        m.copy_text("role", "role");
        m.copy_text("notes", "notes");
        m.copy_text("linkedin", "linkedin");
        m.copy_text("description", "description");
        m.copy_text("telephone", "phone");
        let client = m.text("client_id").flatten();
        let mut mapped = m.finish("created_at", "updated_at");
        mapped.account = client.map(|id| VendorRef {
            name: format!("Client {id}"),
            external_id: id,
        });
        Ok(mapped)
    }

    fn page_query(&self, position: &PagePosition) -> Vec<(String, String)> {
        vec![
            ("limit".into(), PAGE_SIZE.to_string()),
            ("offset".into(), position.offset.to_string()),
        ]
    }

    fn next_page(
        &self,
        position: &PagePosition,
        _payload: &Value,
        items: usize,
    ) -> Option<PagePosition> {
        (items >= PAGE_SIZE).then(|| position.after(items))
    }

    fn since_query(&self, watermark: &str) -> Option<(String, String)> {
        Some(("updated_at".into(), format!("gt:{watermark}")))
    }
}
