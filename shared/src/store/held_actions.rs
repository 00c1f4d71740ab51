//! Actions held for people who are not associated yet (ARCHITECTURE.md §11, replay
//! after association): `HELD#<userId>` under the integration's partition, one per
//! DingTalk user (a newer click replaces an older one), dropped by the table's TTL
//! (`expires_at`) some time after the hold ends. Readers check the hold window
//! themselves: DynamoDB's TTL deletes late.

use aws_sdk_dynamodb::types::ReturnValue;
use serde::{Deserialize, Serialize};

use super::{Store, StoreError, from_typed, partition, s, typed_item};

fn held_key(user_id: &str) -> String {
    format!("HELD#{user_id}")
}

/// An action clicked by someone not associated yet, kept until they associate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldAction {
    /// The DingTalk userId of the person who clicked.
    pub user_id: String,
    /// The incident the action is for.
    pub incident: String,
    /// `ack`, `resolve`, `snooze`, `escalate` or `reassign`.
    pub action: String,
    /// A snooze's duration (`30m`, `2h` or `24h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// A reassign's member (email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Where it was clicked: `card` (a card button) or `app` (an H5 action link).
    pub source: String,
    /// When it was held (Unix ms).
    pub held_at_ms: i64,
    /// When the hold ends (Unix seconds): the table's TTL attribute.
    pub expires_at: i64,
}

impl Store {
    /// Keeps `held` for its person, replacing any action they held before.
    pub async fn hold_action(
        &self,
        integration_id: &str,
        held: &HeldAction,
    ) -> Result<(), StoreError> {
        let item = typed_item(held, partition(integration_id), held_key(&held.user_id))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The action a DingTalk user holds, if any (expired or not: see `expires_at`).
    pub async fn held_action(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Option<HeldAction>, StoreError> {
        self.get_item(&partition(integration_id), &held_key(user_id))
            .await?
            .map(from_typed)
            .transpose()
    }

    /// Takes a DingTalk user's held action: deletes it on the condition that it is
    /// there and returns what was deleted, so of two callers at once only one gets it.
    pub async fn take_held_action(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Option<HeldAction>, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(held_key(user_id)))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result.map_err(StoreError::from_sdk) {
            Ok(out) => out.attributes.map(from_typed).transpose(),
            Err(StoreError::Conflict) => Ok(None),
            Err(err) => Err(err),
        }
    }
}
