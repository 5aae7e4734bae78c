//! A contact: one person, with the union of the fields of the five vendor APIs.
use sea_orm::entity::prelude::*;

/// A row of `contacts`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub account_id: Option<Uuid>,
    pub business_id: Option<Uuid>,
    pub external_ref: Option<String>,
    /// `UNRESOLVED`, `CRM_RESOLVED` or `MANUALLY_RESOLVED`.
    pub resolution_status: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Stored lower-cased.
    pub email: Option<String>,
    /// JSON array of strings.
    pub secondary_emails: Json,
    /// E.164.
    pub phone: Option<String>,
    /// JSON array of strings.
    pub secondary_phones: Json,
    pub company_name: Option<String>,
    pub website: Option<String>,
    pub linkedin: Option<String>,
    pub role: Option<String>,
    pub description: Option<String>,
    pub notes: Option<String>,
    pub address_street: Option<String>,
    pub address_city: Option<String>,
    pub address_state: Option<String>,
    pub address_country: Option<String>,
    pub address_postal_code: Option<String>,
    /// IANA time zone name.
    pub timezone: Option<String>,
    pub source: Option<String>,
    pub lead_source: Option<String>,
    pub status: Option<String>,
    pub pipeline_id: Option<String>,
    pub pipeline_stage: Option<String>,
    pub message_status: Option<String>,
    pub owner: Option<String>,
    /// JSON array of strings; mirrored row by row in `contact_assignees`.
    pub assignees: Json,
    pub created_by: Option<String>,
    pub dnd_email: bool,
    pub dnd_sms: bool,
    pub dnd_call: bool,
    pub dnd_whatsapp: bool,
    pub is_test_contact: bool,
    pub last_message_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Lower-cased "first last": the key of the NAME order.
    pub sort_name: String,
    /// Lower-cased names, email, phone and company: what `search` looks in.
    pub search_text: String,
    /// When the contact was archived: every vendor record it came from was deleted at its
    /// source. Archived contacts are left out of lists and counts unless asked for.
    pub archived_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A set of `contacts` columns (a bit per [`Column`]): what a read selects and decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Columns(u64);

impl Columns {
    /// Every column.
    pub const ALL: Self = Self(u64::MAX);
    /// No column.
    pub const NONE: Self = Self(0);

    /// These columns and `column`.
    #[must_use]
    pub const fn with(self, column: Column) -> Self {
        Self(self.0 | 1 << column as u32)
    }

    /// These columns and `other`'s.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `column` is in the set.
    pub const fn has(self, column: Column) -> bool {
        self.0 & (1 << column as u32) != 0
    }

    /// The set as bits (a bit per [`Column`], by its position), to keep in an atomic.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// The set of `bits` ([`Columns::bits`]).
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// Whether every column of `other` is in the set.
    pub const fn covers(self, other: Self) -> bool {
        other.0 & !self.0 == 0
    }

    /// The columns of the set, in the table's order.
    pub fn iter(self) -> impl Iterator<Item = Column> {
        <Column as sea_orm::Iterable>::iter().filter(move |c| self.has(*c))
    }
}

impl Model {
    /// Decodes a row that holds only `columns` (by their names); the other fields take their
    /// empty values (`None`, `""`, `0`, `false`, JSON `null`, the nil id), so a reader must
    /// select every column it reads.
    ///
    /// # Errors
    /// A selected column missing from the row or of another type.
    pub fn from_partial(row: &sea_orm::QueryResult, columns: Columns) -> Result<Self, DbErr> {
        macro_rules! get {
            ($column:ident, $name:literal) => {
                if columns.has(Column::$column) {
                    row.try_get("", $name)?
                } else {
                    Default::default()
                }
            };
        }
        Ok(Self {
            id: get!(Id, "id"),
            tenant_id: get!(TenantId, "tenant_id"),
            account_id: get!(AccountId, "account_id"),
            business_id: get!(BusinessId, "business_id"),
            external_ref: get!(ExternalRef, "external_ref"),
            resolution_status: get!(ResolutionStatus, "resolution_status"),
            first_name: get!(FirstName, "first_name"),
            last_name: get!(LastName, "last_name"),
            email: get!(Email, "email"),
            secondary_emails: get!(SecondaryEmails, "secondary_emails"),
            phone: get!(Phone, "phone"),
            secondary_phones: get!(SecondaryPhones, "secondary_phones"),
            company_name: get!(CompanyName, "company_name"),
            website: get!(Website, "website"),
            linkedin: get!(Linkedin, "linkedin"),
            role: get!(Role, "role"),
            description: get!(Description, "description"),
            notes: get!(Notes, "notes"),
            address_street: get!(AddressStreet, "address_street"),
            address_city: get!(AddressCity, "address_city"),
            address_state: get!(AddressState, "address_state"),
            address_country: get!(AddressCountry, "address_country"),
            address_postal_code: get!(AddressPostalCode, "address_postal_code"),
            timezone: get!(Timezone, "timezone"),
            source: get!(Source, "source"),
            lead_source: get!(LeadSource, "lead_source"),
            status: get!(Status, "status"),
            pipeline_id: get!(PipelineId, "pipeline_id"),
            pipeline_stage: get!(PipelineStage, "pipeline_stage"),
            message_status: get!(MessageStatus, "message_status"),
            owner: get!(Owner, "owner"),
            assignees: get!(Assignees, "assignees"),
            created_by: get!(CreatedBy, "created_by"),
            dnd_email: get!(DndEmail, "dnd_email"),
            dnd_sms: get!(DndSms, "dnd_sms"),
            dnd_call: get!(DndCall, "dnd_call"),
            dnd_whatsapp: get!(DndWhatsapp, "dnd_whatsapp"),
            is_test_contact: get!(IsTestContact, "is_test_contact"),
            last_message_at: get!(LastMessageAt, "last_message_at"),
            created_at: get!(CreatedAt, "created_at"),
            updated_at: get!(UpdatedAt, "updated_at"),
            sort_name: get!(SortName, "sort_name"),
            search_text: get!(SearchText, "search_text"),
            archived_at: get!(ArchivedAt, "archived_at"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_holds_what_it_was_given_in_table_order() {
        let set = Columns::NONE.with(Column::Email).with(Column::Id);
        assert!(set.has(Column::Id) && set.has(Column::Email) && !set.has(Column::Phone));
        let listed: Vec<String> = set.iter().map(|c| format!("{c:?}")).collect();
        assert_eq!(listed, ["Id", "Email"]);
        assert_eq!(
            Columns::ALL.iter().count(),
            <Column as sea_orm::Iterable>::iter().count()
        );
        assert!(<Column as sea_orm::Iterable>::iter().count() <= 64);
    }
}
