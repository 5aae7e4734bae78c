//! Seed 004, `GET /api/contacts`: `{ success, data: { contacts, total, page, size } }`,
//! Mongo-style `_id`, paged with `page` (from 1) and `size`.
use serde_json::Value;
use serde_json::value::RawValue;

use super::mapping::RecordMapper;
use super::{Connector, MapContext, MappedRecord, PAGE_SIZE, PagePosition, VendorRef};

/// The `pipeline-contacts` connector.
pub struct PipelineContacts;

impl Connector for PipelineContacts {
    fn records(&self, payload: Value) -> Result<Vec<Value>, String> {
        if payload.get("success") == Some(&Value::Bool(false)) {
            return Err("the API answered `success: false`".to_string());
        }
        match payload {
            Value::Object(mut body) => match body.remove("data") {
                Some(Value::Object(mut data)) => match data.remove("contacts") {
                    Some(Value::Array(records)) => Ok(records),
                    _ => Err("expected `data.contacts` to be a list".to_string()),
                },
                _ => Err("expected `data` to be an object with `contacts`".to_string()),
            },
            _ => Err("expected an object `{ success, data: { contacts, ... } }`".to_string()),
        }
    }

    fn raw_records(&self, payload: &[u8]) -> Option<Vec<Box<RawValue>>> {
        #[derive(serde::Deserialize)]
        struct Response {
            success: Option<Value>,
            data: Data,
        }
        #[derive(serde::Deserialize)]
        struct Data {
            contacts: Vec<Box<RawValue>>,
        }
        let response: Response = serde_json::from_slice(payload).ok()?;
        (response.success != Some(Value::Bool(false))).then_some(response.data.contacts)
    }

    fn id_field(&self) -> &'static str {
        "_id"
    }

    fn map(&self, record: &Value, _context: &MapContext) -> Result<MappedRecord, String> {
        let mut m = RecordMapper::new(record, self.id_field())?;
        m.copy_text("firstName", "firstName");
        m.copy_text("lastName", "lastName");
        m.copy_text("phoneNumber", "phone");
        m.copy_text("email", "email");
        m.copy_text("status", "status");
        m.copy_text("pipelineId", "pipelineId");
        m.copy_text("pipelineStage", "pipelineStage");
        m.copy_text("userId", "owner");
        m.copy_text("createdBy", "createdBy");
        m.copy_list("assignees", "assignees");
        // Fields the API filters on, mapped when a record carries them.
        m.copy_text("source", "source");
        m.copy_text("leadSource", "leadSource");
        m.copy_text("messageStatus", "messageStatus");
        m.copy_time("lastMessageAt", "lastMessageAt");
        let organization = m.text("organizationId").flatten();
        let mut mapped = m.finish("createdAt", "updatedAt");
        mapped.account = organization.map(|id| VendorRef {
            name: format!("Organization {id}"),
            external_id: id,
        });
        Ok(mapped)
    }

    fn page_query(&self, position: &PagePosition) -> Vec<(String, String)> {
        vec![
            ("page".into(), position.page.to_string()),
            ("size".into(), PAGE_SIZE.to_string()),
        ]
    }

    fn next_page(
        &self,
        position: &PagePosition,
        payload: &Value,
        items: usize,
    ) -> Option<PagePosition> {
        let data = payload.get("data");
        let total = data.and_then(|d| d.get("total")).and_then(Value::as_u64);
        let more = match total {
            Some(total) => position.offset + (items as u64) < total && items > 0,
            None => items >= PAGE_SIZE,
        };
        more.then(|| position.after(items))
    }
}
