//! Seed 000, `GET /api/accounts/{id}/contacts`: a JSON array of one account's contacts
//! (uuid `id`, `externalRef`, `resolutionStatus`, E.164 `phone`, `companyName`). The account
//! is not in the records: the caller names it (the `{accountId}` of the URL, or
//! `import --account`).
use serde_json::Value;
use serde_json::value::RawValue;

use super::mapping::RecordMapper;
use super::{Connector, MapContext, MappedRecord, PagePosition, VendorRef};

/// The `account-contacts` connector.
pub struct AccountContacts;

impl Connector for AccountContacts {
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

    fn map(&self, record: &Value, context: &MapContext) -> Result<MappedRecord, String> {
        let mut m = RecordMapper::new(record, self.id_field())?;
        m.copy_text("externalRef", "externalRef");
        m.copy_text("resolutionStatus", "resolutionStatus");
        m.copy_text("firstName", "firstName");
        m.copy_text("lastName", "lastName");
        m.copy_text("email", "email");
        m.copy_text("phone", "phone");
        m.copy_text("companyName", "companyName");
        // `tenantId` is the vendor's own tenant: kept in the source record only.
        let mut mapped = m.finish("createdAt", "updatedAt");
        mapped.account = context.account.as_ref().map(|account| VendorRef {
            external_id: account.clone(),
            name: account.clone(),
        });
        Ok(mapped)
    }

    fn page_query(&self, _position: &PagePosition) -> Vec<(String, String)> {
        Vec::new()
    }

    fn next_page(&self, _: &PagePosition, _: &Value, _: usize) -> Option<PagePosition> {
        // The endpoint returns every contact of the account in one response.
        None
    }
}
