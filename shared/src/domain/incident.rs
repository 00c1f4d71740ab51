//! Alerts (the SQS contract, ARCHITECTURE.md §6.3), incidents and their operation records.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::ValidationError;
use crate::domain::integration::Targets;

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// The condition holds.
    Firing,
    /// The condition cleared at the source.
    Resolved,
}

/// Alert severity, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Wake someone up.
    Critical,
    /// Look at it today.
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// Maps the severity words monitoring tools use (`page`, `error`, `P1`, …).
    pub fn from_label(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "page" | "fatal" | "error" | "high" | "p0" | "p1"
            | "disaster" => Some(Self::Critical),
            "warning" | "warn" | "medium" | "average" | "p2" | "p3" => Some(Self::Warning),
            "info" | "informational" | "low" | "notice" | "none" | "ok" | "p4" | "p5" => {
                Some(Self::Info)
            }
            _ => None,
        }
    }

    /// The word shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Self::Critical => "Critical",
            Self::Warning => "Warning",
            Self::Info => "Info",
        }
    }
}

/// A link shown with an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// Text.
    pub title: String,
    /// Target.
    pub url: String,
}

/// The alert of an alert event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Dedup key: the same key while open updates the same incident.
    pub key: String,
    /// firing / resolved.
    pub status: AlertStatus,
    /// critical / warning / info.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// Markdown.
    #[serde(default)]
    pub description: String,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Links.
    #[serde(default)]
    pub links: Vec<Link>,
    /// Producing system.
    #[serde(default)]
    pub source: Option<String>,
    /// When it happened at the source (RFC 3339).
    #[serde(default)]
    pub occurred_at: Option<String>,
}

/// The alert event on SQS, version 1 (ARCHITECTURE.md §6.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// Contract version (1).
    pub version: u32,
    /// Target integration (optional on ingest, where the URL names it).
    #[serde(default)]
    pub integration_id: String,
    /// The alert.
    pub alert: Alert,
    /// Where it goes (else the integration's default targets).
    #[serde(default)]
    pub targets: Targets,
    /// What was cut to the bounds before the event was queued (set by ingest; a
    /// producer writing to the queue leaves it out, and the notifier bounds again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
    /// Mobiles the alert @mentions (robot-compatible ingest's `atMobiles`): the
    /// notifier looks each up in DingTalk and adds the person to the targets. Never
    /// stored with the incident.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mention_mobiles: Vec<String>,
}

/// Whether a mention looks like a mobile DingTalk can look up: digits, with an
/// optional leading `+` and `-` separators (`+86-13800000000`), 6 to 20 characters.
pub fn is_mobile(text: &str) -> bool {
    let body = text.strip_prefix('+').unwrap_or(text);
    (6..=20).contains(&text.len())
        && body.bytes().filter(u8::is_ascii_digit).count() >= 6
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

/// `138****0001`: a mobile with the middle hidden.
pub fn masked_mobile(mobile: &str) -> String {
    let chars: Vec<char> = mobile.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Longest alert key (a longer one is refused: keys are identities, not text).
pub const MAX_KEY_CHARS: usize = 255;

impl AlertEvent {
    /// Checks an event before it is queued or applied.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.version != 1 {
            return Err(ValidationError::new(
                "version",
                format!(
                    "unsupported version {}; this notifier reads version 1",
                    self.version
                ),
            ));
        }
        if self.integration_id.trim().is_empty() {
            return Err(ValidationError::new("integration_id", "is required"));
        }
        let alert = &self.alert;
        if alert.key.trim().is_empty() || alert.key.chars().count() > MAX_KEY_CHARS {
            return Err(ValidationError::new(
                "alert.key",
                "must be 1 to 255 characters",
            ));
        }
        if alert.title.trim().is_empty() {
            return Err(ValidationError::new("alert.title", "must not be empty"));
        }
        if let Some(at) = &alert.occurred_at
            && chrono::DateTime::parse_from_rfc3339(at).is_err()
        {
            return Err(ValidationError::new(
                "alert.occurred_at",
                "must be an RFC 3339 time",
            ));
        }
        if let Some(bad) = self.mention_mobiles.iter().find(|m| !is_mobile(m)) {
            return Err(ValidationError::new(
                "mention_mobiles",
                format!(
                    "{bad:?} is not a mobile number (digits, an optional leading + and - separators)"
                ),
            ));
        }
        if let Some(bad) = alert
            .links
            .iter()
            .find(|l| !(l.url.starts_with("https://") || l.url.starts_with("http://")))
        {
            return Err(ValidationError::new(
                "alert.links",
                format!("{:?} is not an http(s) URL", bad.url),
            ));
        }
        Ok(())
    }

    /// The event time in Unix ms (`occurred_at`, else `fallback_ms`).
    pub fn occurred_ms(&self, fallback_ms: i64) -> i64 {
        self.alert
            .occurred_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(fallback_ms, |t| t.timestamp_millis())
    }
}

/// Incident state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Open, nobody has taken it.
    Triggered,
    /// Someone took it.
    Acknowledged,
    /// Over.
    Resolved,
}

/// An incident: the state of one alert key while it is open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// Our id.
    pub id: String,
    /// Owning integration.
    pub integration_id: String,
    /// Alert key.
    pub key: String,
    /// State.
    pub status: IncidentStatus,
    /// Severity (of the latest firing event).
    pub severity: Severity,
    /// Title.
    pub title: String,
    /// Markdown description.
    pub description: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Links.
    pub links: Vec<Link>,
    /// Producing system.
    pub source: Option<String>,
    /// Everyone this incident was sent to (union over its events).
    pub targets: Targets,
    /// When it opened here (RFC 3339).
    pub opened_at: String,
    /// When its first event happened at the source (RFC 3339).
    #[serde(default)]
    pub started_at: Option<String>,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// When it resolved.
    pub resolved_at: Option<String>,
    /// Who acknowledged it (member email or name).
    pub acked_by: Option<String>,
    /// Who resolved it (`source` when the alert cleared).
    pub resolved_by: Option<String>,
    /// Snoozed until (RFC 3339).
    pub snoozed_until: Option<String>,
    /// Source time (ms) of the newest event applied.
    pub last_event_ms: i64,
    /// Firing events received.
    pub event_count: u32,
    /// Optimistic-concurrency version.
    pub version: u64,
    /// Who is expected to respond (member emails): the layer's members, or whom it
    /// was reassigned to.
    #[serde(default)]
    pub assignees: Vec<String>,
    /// Escalation and timers (ARCHITECTURE.md §9).
    #[serde(default)]
    pub escalation: Option<super::escalation_state::Escalation>,
    /// The Alertmanager silence made from the chat, until Unsilence (ARCHITECTURE.md §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence: Option<super::silence::ActiveSilence>,
}

/// What an operation record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// The incident opened.
    Opened,
    /// A firing event updated it.
    Updated,
    /// It resolved.
    Resolved,
    /// A message or card reached a target.
    Sent,
    /// A card was updated in place.
    CardUpdated,
    /// Delivery to a target failed.
    Failed,
    /// A member has no DingTalk binding.
    NotAssociated,
    /// A group has not installed the cool app.
    NotInstalled,
    /// A target names nobody we know.
    UnknownTarget,
    /// The monthly quota is used up.
    QuotaExhausted,
    /// Nothing was sent on purpose.
    Skipped,
    /// Someone acknowledged it.
    Acknowledged,
    /// Someone snoozed it.
    Snoozed,
    /// A DingTalk account was associated with a member, or unlinked.
    Binding,
    /// An upstream webhook attempt.
    Webhook,
    /// Not sent: the quota reserve keeps the rest of the month for critical alerts.
    Suppressed,
    /// Folded into the group's storm digest instead of a message of its own.
    Folded,
    /// Oversized alert fields were cut to the bounds (ARCHITECTURE.md §5.8).
    Truncated,
    /// The event's time was in the future and was replaced by the time of receipt.
    ClockSkew,
    /// The next layer of the escalation policy was notified.
    Escalated,
    /// A DING was sent.
    DingSent,
    /// A DING was recalled.
    DingRecalled,
    /// A DING could not be sent (or fell back to an in-app DING).
    DingFailed,
    /// Someone reassigned the incident.
    Reassigned,
    /// The acknowledgement timed out: the incident is triggered again.
    AckTimeout,
    /// A snooze ended: the incident is triggered again.
    SnoozeEnded,
    /// A schedule's handoff message was sent, or could not be (audit log).
    Handoff,
    /// The daily pre-flight report was sent (audit log).
    Preflight,
    /// The integration's template failed; the built-in text was sent instead.
    TemplateFailed,
    /// Someone added a note (H5 app); the detail is the note's text.
    Note,
    /// An action clicked before its person was associated was applied (or dropped)
    /// once they associated; the detail says which action was held when.
    Replayed,
    /// Someone silenced the incident's alerts in Alertmanager; the target is the
    /// silence id, the detail its end and matchers.
    Silenced,
    /// Someone expired the incident's silence in Alertmanager.
    Unsilenced,
}

/// One line of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRecord {
    /// When (RFC 3339).
    pub at: String,
    /// What.
    pub kind: RecordKind,
    /// Whom it concerns (group title / cid, member email, userId).
    #[serde(default)]
    pub target: Option<String>,
    /// Details and what to do.
    pub detail: String,
    /// Who did it (for actions).
    #[serde(default)]
    pub actor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_the_contract_example() {
        let event: AlertEvent = serde_json::from_value(json!({"version": 1, "integration_id": "i",
            "alert": {"key": "payments-latency", "status": "firing", "severity": "critical",
                      "title": "p99 latency above 2s", "description": "markdown",
                      "labels": {"service": "payments"}, "links": [{"title": "Runbook", "url": "https://x"}],
                      "source": "alertmanager", "occurred_at": "2026-11-24T01:02:03Z"},
            "targets": {"chats": ["cid=="], "members": ["alice@example.com"], "dingtalk_user_ids": ["0123"]}}))
        .expect("contract");
        assert!(event.validate().is_ok());
        assert_eq!(event.occurred_ms(0), 1_795_482_123_000);
        let mut v2 = event.clone();
        v2.version = 2;
        assert_eq!(v2.validate().expect_err("v2").field, "version");
        let mut mentions = event.clone();
        mentions.mention_mobiles = vec!["+86-13800000001".into()];
        assert!(mentions.validate().is_ok());
        assert!(
            !serde_json::to_string(&event)
                .expect("json")
                .contains("mention_mobiles")
        );
        mentions.mention_mobiles.push("alice".into());
        assert_eq!(
            mentions.validate().expect_err("not a mobile").field,
            "mention_mobiles"
        );
    }

    #[test]
    fn mobiles_are_digits_with_a_plus_and_dashes() {
        for text in [
            "13800000001",
            "+8613800000001",
            "1380-0000-001",
            "+86-138-0000-0001",
        ] {
            assert!(is_mobile(text), "{text}");
        }
        let long = "1".repeat(21);
        for text in [
            "12345",
            "+-------",
            "138 0000 0001",
            "１３８００００００01",
            "+86+138000000",
            &long,
        ] {
            assert!(!is_mobile(text), "{text}");
        }
    }

    #[test]
    fn severity_words() {
        assert_eq!(Severity::from_label("P1"), Some(Severity::Critical));
        assert_eq!(Severity::from_label("warn"), Some(Severity::Warning));
        assert_eq!(Severity::from_label("??"), None);
        assert!(Severity::Critical < Severity::Info);
    }
}
