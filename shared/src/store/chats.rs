//! Group chat items. Every write carries the DingTalk event time it reflects and
//! only applies when it is not older than what is stored, so retried or
//! reordered events never move a chat backwards.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Store, StoreError, n, partition, s};
use crate::domain::{ChatStatus, GroupChat};

/// What an install or uninstall event says about a group chat.
#[derive(Debug, Clone)]
pub struct ChatInstall {
    /// Owning integration.
    pub integration_id: String,
    /// openConversationId.
    pub open_conversation_id: String,
    /// New status.
    pub status: ChatStatus,
    /// coolAppCode of the event.
    pub cool_app_code: Option<String>,
    /// robotCode of the event.
    pub robot_code: Option<String>,
    /// userId of the operator.
    pub operator: Option<String>,
    /// DingTalk event time (ms).
    pub event_ms: i64,
    /// RFC 3339 "now".
    pub now: String,
}

/// Outcome of a conditional chat write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatWrite {
    /// The write changed the chat.
    Applied,
    /// The stored state is newer; nothing changed.
    Stale,
    /// The chat is not in the list; nothing changed.
    UnknownChat,
}

fn chat_key(open_conversation_id: &str) -> String {
    format!("CHAT#{open_conversation_id}")
}

fn attr_str(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn attr_i64(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<GroupChat, StoreError> {
    let status = match attr_str(item, "status").as_deref() {
        Some("installed") => ChatStatus::Installed,
        Some("uninstalled") => ChatStatus::Uninstalled,
        other => return Err(StoreError::Corrupt(format!("chat status {other:?}"))),
    };
    Ok(GroupChat {
        integration_id: attr_str(item, "integration_id").unwrap_or_default(),
        open_conversation_id: attr_str(item, "open_conversation_id").unwrap_or_default(),
        title: attr_str(item, "title"),
        status,
        cool_app_code: attr_str(item, "cool_app_code"),
        robot_code: attr_str(item, "robot_code"),
        operator: attr_str(item, "operator"),
        installed_at: attr_str(item, "installed_at"),
        uninstalled_at: attr_str(item, "uninstalled_at"),
        updated_at: attr_str(item, "updated_at").unwrap_or_default(),
        status_event_ms: attr_i64(item, "status_event_ms"),
        title_event_ms: attr_i64(item, "title_event_ms"),
        problem: attr_str(item, "problem"),
    })
}

impl Store {
    /// Records an install or uninstall unless a newer status is stored.
    pub async fn record_chat_status(&self, change: &ChatInstall) -> Result<ChatWrite, StoreError> {
        let (status, at_field) = match change.status {
            ChatStatus::Installed => ("installed", "installed_at"),
            ChatStatus::Uninstalled => ("uninstalled", "uninstalled_at"),
        };
        let mut removes = "";
        if change.status == ChatStatus::Installed {
            removes = " REMOVE problem";
        }
        let mut sets = vec![
            "integration_id = :iid".to_string(),
            "open_conversation_id = :cid".to_string(),
            "#status = :status".to_string(),
            format!("{at_field} = :now"),
            "updated_at = :now".to_string(),
            "status_event_ms = :ems".to_string(),
        ];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(partition(&change.integration_id)))
            .key("sk", s(chat_key(&change.open_conversation_id)))
            .condition_expression("attribute_not_exists(pk) OR status_event_ms <= :ems")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":iid", s(&change.integration_id))
            .expression_attribute_values(":cid", s(&change.open_conversation_id))
            .expression_attribute_values(":status", s(status))
            .expression_attribute_values(":now", s(&change.now))
            .expression_attribute_values(":ems", n(change.event_ms));
        for (field, value) in [
            ("cool_app_code", &change.cool_app_code),
            ("robot_code", &change.robot_code),
            ("operator", &change.operator),
        ] {
            if let Some(value) = value {
                sets.push(format!("#{field} = :{field}"));
                request = request
                    .expression_attribute_names(format!("#{field}"), field)
                    .expression_attribute_values(format!(":{field}"), s(value));
            }
        }
        let result = request
            .update_expression(format!("SET {}{removes}", sets.join(", ")))
            .send()
            .await;
        match result.map_err(StoreError::from_sdk) {
            Ok(_) => Ok(ChatWrite::Applied),
            Err(StoreError::Conflict) => Ok(ChatWrite::Stale),
            Err(err) => Err(err),
        }
    }

    /// Sets a chat's title as of `as_of_ms` (a rename event's time, or the time of a
    /// lookup) unless a newer title is stored or the chat is not in the list.
    pub async fn record_chat_title(
        &self,
        integration_id: &str,
        open_conversation_id: &str,
        title: &str,
        as_of_ms: i64,
        now: &str,
    ) -> Result<ChatWrite, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(chat_key(open_conversation_id)))
            .update_expression("SET title = :title, title_event_ms = :t, updated_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(title_event_ms) OR title_event_ms <= :t)",
            )
            .expression_attribute_values(":title", s(title))
            .expression_attribute_values(":t", n(as_of_ms))
            .expression_attribute_values(":now", s(now))
            .send()
            .await;
        match result.map_err(StoreError::from_sdk) {
            Ok(_) => Ok(ChatWrite::Applied),
            Err(StoreError::Conflict) => {
                match self.get_chat(integration_id, open_conversation_id).await? {
                    Some(_) => Ok(ChatWrite::Stale),
                    None => Ok(ChatWrite::UnknownChat),
                }
            }
            Err(err) => Err(err),
        }
    }

    /// Marks a chat with the delivery problem DingTalk reported (kept until the next install).
    pub async fn mark_chat_problem(
        &self,
        integration_id: &str,
        open_conversation_id: &str,
        problem: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(chat_key(open_conversation_id)))
            .update_expression("SET problem = :p, updated_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":p", s(problem))
            .expression_attribute_values(":now", s(now))
            .send()
            .await;
        match result.map_err(StoreError::from_sdk) {
            Ok(_) | Err(StoreError::Conflict) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Reads one chat.
    pub async fn get_chat(
        &self,
        integration_id: &str,
        open_conversation_id: &str,
    ) -> Result<Option<GroupChat>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(chat_key(open_conversation_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.item.as_ref().map(from_item).transpose()
    }

    /// The openConversationIds of the chats that still have the cool app (what
    /// policies and schedules may name).
    pub async fn live_chat_ids(
        &self,
        integration_id: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Ok(self
            .list_chats(integration_id)
            .await?
            .into_iter()
            .filter(|c| c.status != crate::domain::chat::ChatStatus::Uninstalled)
            .map(|c| c.open_conversation_id)
            .collect())
    }

    /// The integration's group chat list (one Query).
    pub async fn list_chats(&self, integration_id: &str) -> Result<Vec<GroupChat>, StoreError> {
        self.query_prefix(integration_id, "CHAT#")
            .await?
            .iter()
            .map(from_item)
            .collect()
    }
}
