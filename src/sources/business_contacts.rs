//! Seed 002, `GET /api/v1/businesses/{businessId}/contacts`: `{ data: [...], pagination }`,
//! paged with `page` (from 1) and `limit` (1..100); contacts carry their tags.
use serde_json::Value;
use serde_json::value::RawValue;

use super::mapping::RecordMapper;
use super::{Connector, MapContext, MappedRecord, PAGE_SIZE, PagePosition, VendorRef, VendorTag};
use crate::error::FieldFailure;

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
        let mut warnings = Vec::new();
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
            Some(Value::Array(list)) => Some(vendor_tags(list, &mut warnings)),
            _ => None,
        };
        let mut mapped = m.finish("createdAt", "updatedAt");
        mapped.warnings.append(&mut warnings);
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

/// The tags of a record (seed 002: `{ id, name, displayOrder }`); a tag without an id (text
/// or number) or without a name is not stored, and a warning says so.
fn vendor_tags(list: &[Value], warnings: &mut Vec<FieldFailure>) -> Vec<VendorTag> {
    let mut tags = Vec::with_capacity(list.len());
    for (i, tag) in list.iter().enumerate() {
        let field = format!("tags[{i}]");
        let id = match tag.get("id") {
            Some(Value::String(id)) if !id.trim().is_empty() => id.trim().to_string(),
            Some(Value::Number(id)) => id.to_string(),
            _ => {
                warnings.push(FieldFailure::new(field, "the tag has no `id`; not stored"));
                continue;
            }
        };
        let name = match tag.get("name") {
            Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_string(),
            _ => {
                warnings.push(FieldFailure::new(
                    field,
                    "the tag has no `name`; not stored",
                ));
                continue;
            }
        };
        let order = tag.get("displayOrder").and_then(Value::as_i64).unwrap_or(0);
        tags.push(VendorTag {
            external_id: id,
            name,
            display_order: i32::try_from(order).unwrap_or(0),
        });
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_without_an_id_or_a_name_are_warned_about() {
        let list = json!([
            { "id": "t1", "name": "VIP", "displayOrder": 2 },
            { "id": "t2", "name": null },
            { "name": "NoId" },
            { "id": 7, "name": "Numeric id" },
        ]);
        let mut warnings = Vec::new();
        let tags = vendor_tags(list.as_array().map_or(&[], |l| l), &mut warnings);
        let stored: Vec<_> = tags
            .iter()
            .map(|t| (t.external_id.as_str(), t.name.as_str()))
            .collect();
        assert_eq!(stored, [("t1", "VIP"), ("7", "Numeric id")]);
        let warned: Vec<_> = warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(warned, ["tags[1]", "tags[2]"]);
    }
}
