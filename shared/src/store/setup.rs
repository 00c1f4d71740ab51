//! The `SETUP` item of an integration: what the setup checklist can only learn by
//! watching (DingTalk's `check_url`, the first event of each subscribed type, the
//! first successful or refused group lookup). Written best effort.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Store, StoreError, partition, s};

/// Sort key of the marker.
const SETUP_KEY: &str = "SETUP";

/// What the marker holds: field name → value (times are RFC 3339).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupMarks(pub BTreeMap<String, String>);

impl SetupMarks {
    /// The value of `field`, if noted.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
}

/// Field names are ours, but keep them to a safe alphabet for expression names.
fn field_ok(field: &str) -> bool {
    !field.is_empty()
        && field.len() <= 64
        && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Store {
    /// Notes `field = value` on the integration's marker; with `first_only` an
    /// existing value is kept (first seen).
    pub async fn note_setup(
        &self,
        integration_id: &str,
        field: &str,
        value: &str,
        first_only: bool,
    ) -> Result<(), StoreError> {
        if !field_ok(field) {
            return Err(StoreError::Corrupt(format!("bad setup field {field}")));
        }
        let expression = if first_only {
            "SET #f = if_not_exists(#f, :v)"
        } else {
            "SET #f = :v"
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(SETUP_KEY))
            .update_expression(expression)
            .expression_attribute_names("#f", format!("setup_{field}"))
            .expression_attribute_values(":v", s(value))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The integration's marker (empty when nothing was noted).
    pub async fn setup_marks(&self, integration_id: &str) -> Result<SetupMarks, StoreError> {
        let item = self
            .get_item(&partition(integration_id), SETUP_KEY)
            .await?
            .unwrap_or_default();
        Ok(SetupMarks(
            item.into_iter()
                .filter_map(|(k, v)| match (k.strip_prefix("setup_"), v) {
                    (Some(field), AttributeValue::S(value)) => Some((field.to_string(), value)),
                    _ => None,
                })
                .collect(),
        ))
    }
}
