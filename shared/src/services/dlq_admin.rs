//! The dead-letter queue, for admins (`GET /api/dlq`, `POST /api/dlq/redrive`):
//! what sits there and why, and sending it back to the alert queue.
//!
//! Reading never consumes: messages are received with a short visibility timeout
//! and released (`ChangeMessageVisibility` 0) once read. A redrive sends a message's
//! body to the alert queue, then deletes it from the DLQ (SQS's own
//! `StartMessageMoveTask` moves all or nothing, and moto lacks it). If the delete
//! fails after the send, the message may be handled twice, which the notifier's
//! per-step claims make harmless.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use crate::http::ApiError;
use crate::infra::queue::{DeadLetterQueue, HeldMessage, JobQueue, QueueError};
use crate::store::{Store, StoreError};

/// Why a dead-letter queue call failed.
#[derive(Debug, thiserror::Error)]
pub enum DlqError {
    /// The request body is not what the route takes (400 naming the field).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
    /// `DEAD_LETTER_QUEUE_URL` is not set for this function (503).
    #[error("the dead-letter queue is not configured (DEAD_LETTER_QUEUE_URL)")]
    NotConfigured,
    /// SQS failed (502).
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Our store failed (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DlqError> for ApiError {
    fn from(err: DlqError) -> Self {
        match err {
            DlqError::Invalid { field, message } => ApiError::invalid_field(field, message),
            DlqError::NotConfigured => ApiError::new(503, "dlq_not_configured", err.to_string()),
            DlqError::Queue(err) => {
                tracing::error!(error = %err, "dead-letter queue call failed");
                ApiError::new(
                    502,
                    "queue_unavailable",
                    "SQS could not be reached; the request can be retried",
                )
            }
            DlqError::Store(err) => ApiError::internal(&err),
        }
    }
}

/// One message on the dead-letter queue, as `GET /api/dlq` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// SQS message id (the one it had on the alert queue).
    pub message_id: String,
    /// SQS's `ApproximateReceiveCount` (every read counts, this one included).
    pub receive_count: u32,
    /// Why the notifier first failed it (null when nothing was kept).
    pub first_error: Option<String>,
    /// When that was (RFC 3339).
    pub first_error_at: Option<String>,
    /// The integration the message is for, when its body names one.
    pub integration_id: Option<String>,
    /// `alert` for an alert event, the job's `type`, or `unreadable`.
    pub kind: String,
    /// When it was first sent (RFC 3339).
    pub sent_at: Option<String>,
}

/// `GET /api/dlq`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DlqPeek {
    /// What was read (at most [`crate::infra::queue::MAX_HELD`]).
    pub messages: Vec<DeadLetter>,
    /// SQS's `ApproximateNumberOfMessages` before the read.
    pub approximate_depth: u64,
}

/// `POST /api/dlq/redrive`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redriven {
    /// How many messages went back to the alert queue.
    pub redriven: usize,
    /// Asked-for ids that are not on the DLQ (or are being read by someone else).
    pub missing: Vec<String>,
}

/// Reads and redrives the dead-letter queue.
#[derive(Clone)]
pub struct DlqAdmin {
    dlq: Option<DeadLetterQueue>,
    alerts: JobQueue,
    store: Store,
}

impl DlqAdmin {
    /// The DLQ (none: not configured), the alert queue it drains into and the store
    /// holding the first errors.
    pub fn new(dlq: Option<DeadLetterQueue>, alerts: JobQueue, store: Store) -> Self {
        Self { dlq, alerts, store }
    }

    fn dlq(&self) -> Result<&DeadLetterQueue, DlqError> {
        self.dlq.as_ref().ok_or(DlqError::NotConfigured)
    }

    /// What is on the DLQ, with each message's first error; nothing is consumed.
    pub async fn peek(&self) -> Result<DlqPeek, DlqError> {
        let dlq = self.dlq()?;
        let approximate_depth = dlq.approximate_depth().await?;
        let held = dlq.hold_all().await?;
        dlq.release(&held).await;
        let mut messages = Vec::with_capacity(held.len());
        for message in &held {
            messages.push(self.describe(message).await?);
        }
        messages.sort_by(|a, b| (&a.sent_at, &a.message_id).cmp(&(&b.sent_at, &b.message_id)));
        Ok(DlqPeek {
            messages,
            approximate_depth,
        })
    }

    /// Sends messages back to the alert queue: every one (`{}`), or those named by
    /// `{"message_ids": [...]}`.
    pub async fn redrive(&self, body: &Value) -> Result<Redriven, DlqError> {
        let wanted = wanted_ids(body)?;
        let dlq = self.dlq()?;
        if wanted.as_ref().is_some_and(BTreeSet::is_empty) {
            return Ok(Redriven {
                redriven: 0,
                missing: Vec::new(),
            });
        }
        let held = dlq.hold_all().await?;
        let (chosen, others): (Vec<HeldMessage>, Vec<HeldMessage>) = held
            .into_iter()
            .partition(|m| wanted.as_ref().is_none_or(|w| w.contains(&m.message_id)));
        dlq.release(&others).await;
        let mut redriven = 0;
        let mut failure = None;
        for message in &chosen {
            if failure.is_some() {
                dlq.release(std::slice::from_ref(message)).await;
                continue;
            }
            match self.alerts.send_raw(&message.body).await {
                Ok(()) => {
                    redriven += 1;
                    if let Err(err) = dlq.delete(message).await {
                        tracing::warn!(message_id = %message.message_id, error = %err, "redriven but not deleted from the DLQ; it may be handled twice");
                    }
                }
                Err(err) => {
                    dlq.release(std::slice::from_ref(message)).await;
                    failure = Some(err);
                }
            }
        }
        if let Some(err) = failure {
            return Err(err.into());
        }
        let found: BTreeSet<&str> = chosen.iter().map(|m| m.message_id.as_str()).collect();
        let missing = wanted
            .unwrap_or_default()
            .into_iter()
            .filter(|id| !found.contains(id.as_str()))
            .collect();
        Ok(Redriven { redriven, missing })
    }

    async fn describe(&self, message: &HeldMessage) -> Result<DeadLetter, DlqError> {
        let first = self.store.first_error(&message.message_id).await?;
        let (integration_id, kind) = body_summary(&message.body);
        Ok(DeadLetter {
            message_id: message.message_id.clone(),
            receive_count: message.receive_count,
            first_error: first.as_ref().map(|f| f.reason.clone()),
            first_error_at: first.map(|f| crate::clock::rfc3339(f.at_ms)),
            integration_id,
            kind,
            sent_at: message.sent_ms.map(crate::clock::rfc3339),
        })
    }
}

/// The ids a redrive body names; `None` means all. Takes `{}` or
/// `{"message_ids": ["…", …]}` (at most 500 non-empty strings; none redrives nothing).
fn wanted_ids(body: &Value) -> Result<Option<BTreeSet<String>>, DlqError> {
    let invalid = |field, message| DlqError::Invalid { field, message };
    let object = body
        .as_object()
        .ok_or(invalid("body", "must be a JSON object"))?;
    if object.keys().any(|k| k != "message_ids") {
        return Err(invalid("body", "only message_ids may be given"));
    }
    let Some(ids) = object.get("message_ids") else {
        return Ok(None);
    };
    let ids = ids
        .as_array()
        .ok_or(invalid("message_ids", "must be an array of message ids"))?;
    if ids.len() > crate::infra::queue::MAX_HELD {
        return Err(invalid("message_ids", "must name at most 500 message ids"));
    }
    ids.iter()
        .map(|id| match id.as_str() {
            Some(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
            _ => Err(invalid("message_ids", "each id must be a non-empty string")),
        })
        .collect::<Result<BTreeSet<String>, DlqError>>()
        .map(Some)
}

/// The integration a body names and what kind of message it is.
fn body_summary(body: &str) -> (Option<String>, String) {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return (None, "unreadable".into());
    };
    let integration_id = value
        .get("integration_id")
        .and_then(Value::as_str)
        .map(String::from);
    let kind = match value.get("type").and_then(Value::as_str) {
        Some(kind) => kind.to_string(),
        None if value.get("alert").is_some() => "alert".into(),
        None => "unreadable".into(),
    };
    (integration_id, kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redrive_bodies_are_all_or_named_ids() {
        assert_eq!(wanted_ids(&json!({})).unwrap(), None);
        assert_eq!(
            wanted_ids(&json!({"message_ids": []})).unwrap(),
            Some(BTreeSet::new())
        );
        let named = wanted_ids(&json!({"message_ids": ["a", " b "]})).unwrap();
        assert_eq!(named, Some(BTreeSet::from(["a".into(), "b".into()])));
        for bad in [
            json!([]),
            json!({"message_ids": "a"}),
            json!({"message_ids": [1]}),
            json!({"message_ids": [""]}),
            json!({"ids": ["a"]}),
        ] {
            assert!(
                matches!(wanted_ids(&bad), Err(DlqError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn bodies_say_their_integration_and_kind() {
        let alert = json!({"version": 1, "integration_id": "i1", "alert": {}}).to_string();
        assert_eq!(body_summary(&alert), (Some("i1".into()), "alert".into()));
        let job = json!({"type": "incident_changed", "integration_id": "i2"}).to_string();
        assert_eq!(
            body_summary(&job),
            (Some("i2".into()), "incident_changed".into())
        );
        assert_eq!(body_summary("{oops"), (None, "unreadable".into()));
    }
}
