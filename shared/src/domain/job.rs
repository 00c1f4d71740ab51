//! The queue contract (ARCHITECTURE.md §6.4): one SQS queue carries alert events
//! (version 1, no `type` field) and internal jobs (a `type` field). Both are parsed
//! here, once; a body that is neither is refused with the reason, and moves to the
//! DLQ after the redrive count.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::incident::AlertEvent;

/// Attempts of the upstream webhook before it is given up.
pub const WEBHOOK_ATTEMPTS: u32 = 8;

/// An internal job, tagged by `type` on the wire.
///
/// A new variant is a new `type`, and an old consumer refuses it (to the DLQ)
/// instead of misreading it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Job {
    /// Someone acted on an incident: update its cards in place (and once resolved,
    /// send the follow-ups). `version` lets older, coalesced jobs stand down.
    IncidentChanged {
        /// The incident's integration.
        integration_id: String,
        /// The incident.
        incident_id: String,
        /// The incident version the job was queued for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u64>,
    },
    /// Tell the upstream system about an action (signed POST to `webhook_url`).
    Webhook {
        /// The incident's integration.
        integration_id: String,
        /// The incident the event is about.
        incident_id: String,
        /// This attempt's number, from 1 (0 is read as 1).
        #[serde(default = "first_attempt")]
        attempt: u32,
        /// The event body sent upstream.
        event: Value,
    },
    /// A 1:1 message asking a DingTalk user to associate their account.
    LinkPrompt {
        /// The integration whose app sends it.
        integration_id: String,
        /// The DingTalk userId.
        user_id: String,
    },
    /// Bring a group's storm digest up to date (or send it, when `create`).
    DigestRefresh {
        /// The integration.
        integration_id: String,
        /// openConversationId of the group.
        chat: String,
        /// The storm window (seconds since the epoch / window length).
        window: i64,
        /// The first digest send failed: send it now.
        #[serde(default)]
        create: bool,
    },
    /// An escalation step falls due (ARCHITECTURE.md §9): a no-op unless the
    /// incident is still at `epoch`. Waits longer than SQS's 15 minutes hop.
    EscalationTimer {
        /// The incident's integration.
        integration_id: String,
        /// The incident.
        incident_id: String,
        /// The escalation epoch the timer was set for.
        epoch: u64,
        /// When the step is due (Unix ms).
        due_ms: i64,
    },
    /// A schedule's handoff message falls due (ARCHITECTURE.md §8): the notice
    /// before a shift, or "now on call" at it. Sent once whatever the duplicates.
    HandoffTimer {
        /// The schedule's integration.
        integration_id: String,
        /// The schedule.
        schedule_id: String,
        /// When the message is due (Unix ms).
        due_ms: i64,
    },
}

fn first_attempt() -> u32 {
    1
}

impl Job {
    /// The job's wire name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::IncidentChanged { .. } => "incident_changed",
            Self::Webhook { .. } => "webhook",
            Self::LinkPrompt { .. } => "link_prompt",
            Self::DigestRefresh { .. } => "digest_refresh",
            Self::EscalationTimer { .. } => "escalation_timer",
            Self::HandoffTimer { .. } => "handoff_timer",
        }
    }

    /// The integration the job belongs to.
    pub fn integration_id(&self) -> &str {
        match self {
            Self::IncidentChanged { integration_id, .. }
            | Self::Webhook { integration_id, .. }
            | Self::LinkPrompt { integration_id, .. }
            | Self::DigestRefresh { integration_id, .. }
            | Self::EscalationTimer { integration_id, .. }
            | Self::HandoffTimer { integration_id, .. } => integration_id,
        }
    }

    /// The incident the job is about, if any.
    pub fn incident_id(&self) -> Option<&str> {
        match self {
            Self::IncidentChanged { incident_id, .. }
            | Self::Webhook { incident_id, .. }
            | Self::EscalationTimer { incident_id, .. } => Some(incident_id),
            Self::LinkPrompt { .. } | Self::DigestRefresh { .. } | Self::HandoffTimer { .. } => {
                None
            }
        }
    }
}

/// Seconds to wait before webhook attempt `failed + 1`, after attempt `failed`
/// failed: 5 s doubling, at most 900 s (SQS's longest delay). Attempt 0 counts as 1.
pub fn webhook_retry_delay_secs(failed: u32) -> u32 {
    let exponent = failed.clamp(1, 9) - 1;
    (5_u32 << exponent).min(900)
}

/// One message of the queue.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueMessage {
    /// An alert event (contract version 1).
    Alert(Box<AlertEvent>),
    /// An internal job.
    Job(Job),
}

/// Why a queue message can never be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Not JSON at all.
    #[error("body is not JSON: {0}")]
    NotJson(String),
    /// A `type` this version does not know.
    #[error("unknown job type {0:?}")]
    UnknownJob(String),
    /// A known job with missing or wrong fields.
    #[error("malformed {kind} job: {reason}")]
    MalformedJob {
        /// The job's `type`.
        kind: String,
        /// What is wrong.
        reason: String,
    },
    /// An alert event of another contract version.
    #[error("unsupported alert event version {0}")]
    UnsupportedVersion(u64),
    /// Not an alert event of version 1.
    #[error("not an alert event: {0}")]
    NotAnAlert(String),
    /// An alert event whose fields are invalid.
    #[error("invalid alert event: {0}")]
    InvalidAlert(String),
}

const JOB_TYPES: [&str; 6] = [
    "incident_changed",
    "webhook",
    "link_prompt",
    "digest_refresh",
    "escalation_timer",
    "handoff_timer",
];

impl QueueMessage {
    /// Parses and checks one message body.
    pub fn parse(body: &str) -> Result<Self, MessageError> {
        let value: Value =
            serde_json::from_str(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
        let envelope: Envelope = serde_json::from_value(value.clone()).unwrap_or_default();
        if let Some(kind) = envelope.kind {
            let kind = kind.as_str().unwrap_or_default().to_string();
            if !JOB_TYPES.contains(&kind.as_str()) {
                return Err(MessageError::UnknownJob(kind));
            }
            return serde_json::from_value(value).map(Self::Job).map_err(|e| {
                MessageError::MalformedJob {
                    kind,
                    reason: e.to_string(),
                }
            });
        }
        if let Some(version) = envelope.version.as_ref().and_then(Value::as_u64)
            && version != 1
        {
            return Err(MessageError::UnsupportedVersion(version));
        }
        let event: AlertEvent =
            serde_json::from_value(value).map_err(|e| MessageError::NotAnAlert(e.to_string()))?;
        event
            .validate()
            .map_err(|e| MessageError::InvalidAlert(e.to_string()))?;
        Ok(Self::Alert(Box::new(event)))
    }
}

/// What tells a job from an alert event: a `type` (jobs) or a `version` (alerts).
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(rename = "type", default)]
    kind: Option<Value>,
    #[serde(default)]
    version: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jobs_round_trip_with_their_wire_names() {
        let jobs = [
            Job::IncidentChanged {
                integration_id: "i".into(),
                incident_id: "n".into(),
                version: Some(3),
            },
            Job::Webhook {
                integration_id: "i".into(),
                incident_id: "n".into(),
                attempt: 2,
                event: json!({"type": "incident.acknowledged"}),
            },
            Job::LinkPrompt {
                integration_id: "i".into(),
                user_id: "u".into(),
            },
            Job::DigestRefresh {
                integration_id: "i".into(),
                chat: "cid".into(),
                window: 7,
                create: true,
            },
            Job::EscalationTimer {
                integration_id: "i".into(),
                incident_id: "n".into(),
                epoch: 3,
                due_ms: 1_000,
            },
            Job::HandoffTimer {
                integration_id: "i".into(),
                schedule_id: "s".into(),
                due_ms: 2_000,
            },
        ];
        for job in jobs {
            let text = serde_json::to_string(&job).expect("json");
            let value: Value = serde_json::from_str(&text).expect("value");
            assert_eq!(value["type"], job.kind());
            assert_eq!(
                QueueMessage::parse(&text).expect("parses"),
                QueueMessage::Job(job)
            );
        }
    }

    #[test]
    fn today_producers_bodies_parse() {
        let body = r#"{"type":"webhook","integration_id":"i","incident_id":"n","attempt":1,"event":{"a":1}}"#;
        assert!(matches!(
            QueueMessage::parse(body),
            Ok(QueueMessage::Job(Job::Webhook { attempt: 1, .. }))
        ));
        let body =
            r#"{"type":"incident_changed","integration_id":"i","incident_id":"n","version":4}"#;
        assert!(matches!(
            QueueMessage::parse(body),
            Ok(QueueMessage::Job(Job::IncidentChanged {
                version: Some(4),
                ..
            }))
        ));
    }

    #[test]
    fn bad_bodies_say_why() {
        type Check = fn(&MessageError) -> bool;
        let cases: [(&str, Check); 6] = [
            ("not json", |e| matches!(e, MessageError::NotJson(_))),
            (
                r#"{"type":"explode"}"#,
                |e| matches!(e, MessageError::UnknownJob(k) if k == "explode"),
            ),
            (r#"{"type":7}"#, |e| {
                matches!(e, MessageError::UnknownJob(_))
            }),
            (
                r#"{"type":"webhook","integration_id":"i"}"#,
                |e| matches!(e, MessageError::MalformedJob { kind, .. } if kind == "webhook"),
            ),
            (r#"{"version":2}"#, |e| {
                matches!(e, MessageError::UnsupportedVersion(2))
            }),
            (r#"{"version":1,"integration_id":"i"}"#, |e| {
                matches!(e, MessageError::NotAnAlert(_))
            }),
        ];
        for (body, expected) in cases {
            let err = QueueMessage::parse(body).expect_err(body);
            assert!(expected(&err), "{body}: {err}");
        }
    }

    #[test]
    fn webhook_delay_never_underflows() {
        assert_eq!(webhook_retry_delay_secs(0), 5);
        assert_eq!(webhook_retry_delay_secs(1), 5);
        assert_eq!(webhook_retry_delay_secs(2), 10);
        assert_eq!(webhook_retry_delay_secs(8), 640);
        assert_eq!(webhook_retry_delay_secs(9), 900);
        assert_eq!(webhook_retry_delay_secs(u32::MAX), 900);
        let zero: Job = serde_json::from_value(
            json!({"type": "webhook", "integration_id": "i", "incident_id": "n", "attempt": 0, "event": {}}),
        )
        .expect("parses");
        assert!(matches!(zero, Job::Webhook { attempt: 0, .. }));
    }
}
