//! Seed 002, `GET /api/v1/businesses/{businessId}/contacts`: `{ data: [...], pagination }`,
//! paged with `page` (from 1) and `limit` (1..100); contacts carry their tags.
use serde_json::Value;
use serde_json::value::RawValue;

use super::mapping::RecordMapper;
use super::{Connector, MapContext, MappedRecord, PAGE_SIZE, PagePosition, VendorRef, VendorTag};

/// The `business-contacts` connector.
pub struct BusinessContacts;

impl Connector for BusinessContacts {
    fn records(&self, payload: Value) -> Result<Vec<Value>, String> {
        match payload {
            Value::Object(mut body) => match body.remove("data") {
                Some(Value::Array(records)) => Ok(records),
                _ => Err("expected `data` to be a list of contacts".to_string()),
            },
            _ => Err("expected an object `{ data: [...], pagination }`".to_string()),
        }
    }

    fn raw_records(&self, payload: &[u8]) -> Option<Vec<Box<RawValue>>> {
        #[derive(serde::Deserialize)]
        struct Page {
            data: Vec<Box<RawValue>>,
        }
        serde_json::from_slice::<Page>(payload).ok().map(|p| p.data)
    }

    fn id_field(&self) -> &'static str {
        "id"
    }

    fn map(&self, record: &Value, context: &MapContext) -> Result<MappedRecord, String> {
        let mut m = RecordMapper::new(record, self.id_field())?;
        let has_parts = m.raw("firstName").is_some() || m.raw("lastName").is_some();
        m.copy_text("firstName", "firstName");
        m.copy_text("lastName", "lastName");
        if !has_parts {
            // `name` is the full name; only used when the parts are missing.
            m.copy_text("name", "name");
        }
        m.copy_text("email", "email");
        m.copy_text("phone", "phone");
        m.copy_text("company", "companyName");
        m.copy_text("website", "website");
        m.copy_text("address", "address.street");
        m.copy_text("city", "address.city");
        m.copy_text("state", "address.state");
        m.copy_text("country", "address.country");
        m.copy_text("zipCode", "address.postalCode");
        m.copy_text("ianaTimezone", "timezone");
        m.copy_text("source", "source");
        m.copy_text("note", "notes");
        m.copy_bool("emailDND", "dnd.email");
        m.copy_bool("smsDND", "dnd.sms");
        m.copy_bool("callDND", "dnd.call");
        m.copy_bool("whatsappDND", "dnd.whatsapp");
        m.copy_list("secondaryEmails", "secondaryEmails");
        m.copy_list("secondaryPhones", "secondaryPhones");
        m.copy_bool("isTestContact", "isTestContact");
        let business = m
            .text("businessId")
            .flatten()
            .or_else(|| context.business.clone());
        let tags = match m.raw("tags") {
            Some(Value::Array(list)) => Some(
                list.iter()
                    .filter_map(|tag| {
                        let id = tag.get("id")?.as_str()?.to_string();
                        let name = tag.get("name")?.as_str()?.trim().to_string();
                        let order = tag.get("displayOrder").and_then(Value::as_i64).unwrap_or(0);
                        (!name.is_empty()).then(|| VendorTag {
                            external_id: id,
                            name,
                            display_order: i32::try_from(order).unwrap_or(0),
                        })
                    })
                    .collect(),
            ),
            _ => None,
        };
        let mut mapped = m.finish("createdAt", "updatedAt");
        mapped.business = business.map(|id| VendorRef {
            name: format!("Business {id}"),
            external_id: id,
        });
        mapped.tags = tags;
        Ok(mapped)
    }

    fn page_query(&self, position: &PagePosition) -> Vec<(String, String)> {
        vec![
            ("page".into(), position.page.to_string()),
            ("limit".into(), PAGE_SIZE.to_string()),
            ("include".into(), "tags".into()),
            ("sort".into(), "createdAt".into()),
        ]
    }

    fn next_page(
        &self,
        position: &PagePosition,
        payload: &Value,
        items: usize,
    ) -> Option<PagePosition> {
        let pagination = payload.get("pagination");
        let total_pages = pagination
            .and_then(|p| p.get("totalPages").or_else(|| p.get("pages")))
            .and_then(Value::as_u64);
        let more = match total_pages {
            Some(pages) => position.page < pages,
            None => items >= PAGE_SIZE,
        };
        more.then(|| position.after(items))
    }
}
