//! PagerDuty Events API v2 compatible ingest (ARCHITECTURE.md §11):
//! `POST /api/integrations/{id}/pagerduty/v2/enqueue` with `routing_key` = the
//! integration's ingest token, as Alertmanager's `pagerduty_configs` (with `url:`) and
//! other PagerDuty senders post it.
//!
//! - `trigger` queues a firing alert event (key = `dedup_key`, generated when absent
//!   and returned); `resolve` queues a resolved event for the key; both go through the
//!   queue like every ingest route, so routing, escalation, budget and storms apply.
//! - `acknowledge` acknowledges the key's open incident here and now, as the actor
//!   "PagerDuty API" (the incident action of the H5 app and the card buttons). No open
//!   incident (yet) → answered 202 and nothing happens, as PagerDuty does.
//! - Severity: `critical` and `error` → critical (PagerDuty pages high urgency for
//!   both), `warning` → warning, `info` → info.
//! - Events are ordered by their receipt time (a `resolve` carries no timestamp), the
//!   payload's `timestamp` is kept as a label.
//!
//! Answers are PagerDuty's: `202 {"status": "success", "message": "Event processed",
//! "dedup_key"}`; `400 {"status": "invalid event", "message": "Event object is
//! invalid", "errors": [..]}` for bad JSON, missing or bad fields and a wrong
//! `routing_key`; our own failures 503 (the sender retries).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tracing::{error, info};

use crate::clock::{Clock, rfc3339};
use crate::domain::incident::{Alert, AlertEvent, AlertStatus, IncidentStatus, Link, Severity};
use crate::domain::member::Member;
use crate::infra::queue::JobQueue;
use crate::services::incident_actions::{Action, ActionError, IncidentActions};
use crate::services::ingest::{bound_and_queue, targets_from_labels, token_matches};
use crate::store::{Store, StoreError};

/// `source` of the alerts this route makes.
pub const PAGERDUTY_SOURCE: &str = "pagerduty";
/// The name acknowledgements are recorded under.
pub const ACTOR_NAME: &str = "PagerDuty API";
/// The actor's id in operation records (`PagerDuty API <pagerduty-events-api>`).
const ACTOR_ID: &str = "pagerduty-events-api";
/// Longest `dedup_key` (PagerDuty's limit, and our alert keys').
pub const MAX_DEDUP_KEY_CHARS: usize = 255;
/// Waits before looking again for the incident an `acknowledge` names (its
/// `trigger` may still be on the queue).
const ACK_RETRIES: [Duration; 2] = [Duration::from_millis(400), Duration::from_millis(1000)];

/// Why an event was not processed, in PagerDuty's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagerDutyError {
    /// 400 `invalid event` with the reasons.
    #[error("Event object is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Our own failure (503): the sender should retry.
    #[error("{0}")]
    Unavailable(String),
}

impl PagerDutyError {
    fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid(vec![reason.into()])
    }

    /// The HTTP status: 400, or 503 for our own failures.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Invalid(_) => 400,
            Self::Unavailable(_) => 503,
        }
    }

    /// The answer body.
    pub fn body(&self) -> Value {
        match self {
            Self::Invalid(errors) => {
                json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors})
            }
            Self::Unavailable(message) => json!({"status": "error", "message": message}),
        }
    }
}

/// The success answer (HTTP 202).
pub fn accepted_body(dedup_key: &str) -> Value {
    json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})
}

/// `event_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventAction {
    /// Open or update the incident of the key.
    Trigger,
    /// Acknowledge the key's open incident.
    Acknowledge,
    /// Resolve the key's incident.
    Resolve,
}

/// A checked event (the `routing_key` is checked apart).
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDutyEvent {
    /// What to do.
    pub action: EventAction,
    /// `dedup_key`, when given.
    pub dedup_key: Option<String>,
    /// The alert of a `trigger` (key, status and time are set when it is queued).
    pub alert: Option<Alert>,
    /// Targets named by `custom_details.dingtalk_chat` / `dingtalk_member`.
    pub targets: crate::domain::integration::Targets,
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// PagerDuty severity → ours (`error` pages like `critical`).
pub fn severity_of(word: &str) -> Option<Severity> {
    match word {
        "critical" | "error" => Some(Severity::Critical),
        "warning" => Some(Severity::Warning),
        "info" => Some(Severity::Info),
        _ => None,
    }
}

/// Renders `custom_details` as markdown: scalars as a list, multi-line texts as
/// code blocks, anything else as JSON (`dingtalk_*` routing entries left out).
pub fn describe_details(details: &Value) -> String {
    let block = |body: &str| format!("```\n{}\n```\n", body.replace("```", "'''"));
    match details {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Object(map) => {
            let mut out = String::new();
            for (name, value) in map.iter().filter(|(k, _)| !k.starts_with("dingtalk_")) {
                match value {
                    Value::String(s) if s.contains('\n') => {
                        out.push_str(&format!("**{name}**:\n\n{}", block(s.trim_end())));
                    }
                    Value::String(s) => out.push_str(&format!("- **{name}**: {s}\n")),
                    Value::Null => {}
                    other => out.push_str(&format!("- **{name}**: `{other}`\n")),
                }
            }
            out
        }
        other => block(&serde_json::to_string_pretty(other).unwrap_or_default()),
    }
}

/// `links` (`href`, `text`), `images` (`href` else `src`, `alt`) and `client_url`,
/// http(s) only.
fn links_of(body: &Value) -> Vec<Link> {
    let mut links: Vec<Link> = Vec::new();
    let mut add = |title: Option<&str>, url: Option<&str>, fallback: &str| {
        if let Some(url) = url.filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            && !links.iter().any(|l| l.url == url)
        {
            links.push(Link {
                title: title.unwrap_or(fallback).to_string(),
                url: url.to_string(),
            });
        }
    };
    let entries = |name: &str| {
        body.get(name)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    for link in entries("links") {
        add(text(&link, "/text"), text(&link, "/href"), "Link");
    }
    for image in entries("images") {
        let url = text(&image, "/href").or_else(|| text(&image, "/src"));
        add(text(&image, "/alt"), url, "Image");
    }
    add(text(body, "/client"), text(body, "/client_url"), "Source");
    links
}

/// The alert of a `trigger`'s payload; reasons it is invalid otherwise.
fn trigger_alert(body: &Value, errors: &mut Vec<String>) -> Option<Alert> {
    let Some(payload) = body.get("payload").filter(|p| p.is_object()) else {
        errors.push("'payload' is missing or not an object".into());
        return None;
    };
    let mut field = |name: &str| {
        let found = text(payload, &format!("/{name}"));
        if found.is_none() {
            errors.push(format!("'payload.{name}' is missing or blank"));
        }
        found
    };
    let (summary, source, severity) = (field("summary"), field("source"), field("severity"));
    let severity = match severity.map(|s| (s, severity_of(s))) {
        Some((_, Some(severity))) => Some(severity),
        Some((word, None)) => {
            errors.push(format!(
                "'payload.severity' {word:?} is invalid (must be one of critical, error, warning, info)"
            ));
            None
        }
        None => None,
    };
    let (summary, source, severity) = (summary?, source?, severity?);
    let mut labels = BTreeMap::from([("source".to_string(), source.to_string())]);
    for name in ["component", "group", "class", "timestamp"] {
        if let Some(value) = text(payload, &format!("/{name}")) {
            labels.insert(name.to_string(), value.to_string());
        }
    }
    Some(Alert {
        key: String::new(),
        status: AlertStatus::Firing,
        severity,
        title: summary.to_string(),
        description: payload
            .get("custom_details")
            .map(describe_details)
            .unwrap_or_default(),
        labels,
        links: links_of(body),
        source: Some(PAGERDUTY_SOURCE.to_string()),
        occurred_at: None,
    })
}

/// Checks an event body (everything but `routing_key`); every reason it is invalid.
pub fn parse_event(body: &Value) -> Result<PagerDutyEvent, Vec<String>> {
    if !body.is_object() {
        return Err(vec!["Event object must be a JSON object".into()]);
    }
    let mut errors = Vec::new();
    let action = match text(body, "/event_action") {
        Some("trigger") => Some(EventAction::Trigger),
        Some("acknowledge") => Some(EventAction::Acknowledge),
        Some("resolve") => Some(EventAction::Resolve),
        Some(other) => {
            errors.push(format!(
                "'event_action' {other:?} is invalid (must be one of trigger, acknowledge, resolve)"
            ));
            None
        }
        None => {
            errors.push("'event_action' is missing or blank".into());
            None
        }
    };
    let dedup_key = match body.get("dedup_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if k.trim().is_empty() => None,
        Some(Value::String(k)) if k.chars().count() > MAX_DEDUP_KEY_CHARS => {
            errors.push(format!(
                "'dedup_key' is too long (at most {MAX_DEDUP_KEY_CHARS} characters)"
            ));
            None
        }
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => {
            errors.push("'dedup_key' must be a string".into());
            None
        }
    };
    if matches!(
        action,
        Some(EventAction::Acknowledge | EventAction::Resolve)
    ) && dedup_key.is_none()
        && errors.is_empty()
    {
        errors.push("'dedup_key' is missing or blank (required to acknowledge or resolve)".into());
    }
    let alert = match action {
        Some(EventAction::Trigger) => trigger_alert(body, &mut errors),
        _ => None,
    };
    let details = body.pointer("/payload/custom_details");
    let targets = match details.filter(|d| d.is_object()) {
        Some(details) => targets_from_labels(std::iter::once(details)).unwrap_or_else(|v| {
            errors.push(format!("'payload.custom_details.{}': {v}", v.field));
            Default::default()
        }),
        None => Default::default(),
    };
    match action {
        Some(action) if errors.is_empty() => Ok(PagerDutyEvent {
            action,
            dedup_key,
            alert,
            targets,
        }),
        _ => Err(errors),
    }
}

/// The actor acknowledgements are applied as (licensed: it may act).
fn actor() -> Member {
    Member {
        email: ACTOR_ID.to_string(),
        name: ACTOR_NAME.to_string(),
        licensed: true,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn unavailable(err: &StoreError) -> PagerDutyError {
    error!(error = %err, "store unavailable");
    PagerDutyError::Unavailable("store unavailable; retry".into())
}

/// The PagerDuty-compatible ingest service.
#[derive(Clone)]
pub struct PagerDutyIngest {
    store: Store,
    queue: JobQueue,
    clock: Arc<dyn Clock>,
    actions: IncidentActions,
}

impl PagerDutyIngest {
    /// PagerDuty ingest onto `queue`; acknowledgements through `actions`.
    pub fn new(
        store: Store,
        queue: JobQueue,
        clock: Arc<dyn Clock>,
        actions: IncidentActions,
    ) -> Self {
        Self {
            store,
            queue,
            clock,
            actions,
        }
    }

    /// Authenticates the `routing_key`, checks the event and carries it out; returns
    /// the `dedup_key` (generated for a `trigger` without one). Nothing is queued or
    /// changed on any error.
    pub async fn enqueue(
        &self,
        integration_id: &str,
        body: &[u8],
    ) -> Result<String, PagerDutyError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| PagerDutyError::invalid(format!("Event body is not valid JSON: {e}")))?;
        let routing_key = text(&value, "/routing_key")
            .ok_or_else(|| PagerDutyError::invalid("'routing_key' is missing or blank"))?;
        self.store
            .get_integration(integration_id)
            .await
            .map_err(|e| unavailable(&e))?
            .filter(|i| token_matches(i, routing_key))
            .ok_or_else(|| PagerDutyError::invalid("Invalid routing key"))?;
        let event = parse_event(&value).map_err(PagerDutyError::Invalid)?;
        let key = event
            .dedup_key
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        let now_ms = self.clock.now_ms();
        let status = match event.action {
            EventAction::Acknowledge => {
                self.acknowledge(integration_id, &key).await?;
                info!(integration_id, key = %key, "pagerduty acknowledge applied");
                return Ok(key);
            }
            EventAction::Trigger => AlertStatus::Firing,
            EventAction::Resolve => AlertStatus::Resolved,
        };
        let alert = event.alert.unwrap_or_else(|| Alert {
            key: String::new(),
            status,
            severity: Severity::Info,
            title: format!("resolved by {ACTOR_NAME}"),
            description: String::new(),
            labels: BTreeMap::new(),
            links: Vec::new(),
            source: Some(PAGERDUTY_SOURCE.to_string()),
            occurred_at: None,
        });
        let mut queued = [AlertEvent {
            version: 1,
            integration_id: integration_id.to_string(),
            alert: Alert {
                key: key.clone(),
                status,
                occurred_at: Some(rfc3339(now_ms)),
                ..alert
            },
            targets: event.targets,
            truncated: Vec::new(),
            mention_mobiles: Vec::new(),
        }];
        queued[0]
            .validate()
            .map_err(|v| PagerDutyError::invalid(v.to_string()))?;
        bound_and_queue(&self.queue, &mut queued, now_ms)
            .await
            .map_err(|_| PagerDutyError::Unavailable("could not queue the event; retry".into()))?;
        info!(integration_id, key = %key, ?status, "pagerduty event queued");
        Ok(key)
    }

    /// Acknowledges the open incident of `key` as [`ACTOR_NAME`]; looks again a
    /// couple of times when there is none (the `trigger` may still be queued) and
    /// retries a lost race. Nothing open, or already resolved: nothing to do.
    async fn acknowledge(&self, integration_id: &str, key: &str) -> Result<(), PagerDutyError> {
        let mut waits = ACK_RETRIES.iter();
        loop {
            let open = self
                .store
                .incident_of_key(integration_id, key)
                .await
                .map_err(|e| unavailable(&e))?
                .filter(|i| i.status != IncidentStatus::Resolved);
            let outcome = match &open {
                Some(incident) => {
                    self.actions
                        .apply(
                            integration_id,
                            &incident.id,
                            &actor(),
                            Action::Acknowledge,
                            None,
                        )
                        .await
                }
                None => Err(ActionError::NotFound),
            };
            match outcome {
                Ok(_) => return Ok(()),
                Err(ActionError::Store(err)) => return Err(unavailable(&err)),
                Err(ActionError::NotFound | ActionError::Conflict(_)) => {}
                Err(
                    ActionError::NotApplicable(_)
                    | ActionError::NotAllowed(_)
                    | ActionError::Upstream(_),
                ) => return Ok(()),
            }
            let Some(wait) = waits.next() else {
                info!(
                    integration_id,
                    key, "acknowledge: no open incident for the key"
                );
                return Ok(());
            };
            tokio::time::sleep(*wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger() -> Value {
        json!({"routing_key": "dti_x", "event_action": "trigger", "dedup_key": "db-1-disk",
               "payload": {"summary": "Disk 95% on db-1", "source": "db-1", "severity": "error",
                           "timestamp": "2026-11-24T01:02:03.000+0000", "component": "postgres",
                           "group": "storage", "class": "disk",
                           "custom_details": {"free": "5%", "firing": "Labels:\n - a = b", "n": 3, "dingtalk_chat": "DBA"}},
               "links": [{"href": "https://grafana/d/1", "text": "Dashboard"}, {"href": "ftp://x"}],
               "images": [{"src": "https://img/1.png", "alt": "graph"}],
               "client": "Alertmanager", "client_url": "http://am:9093"})
    }

    #[test]
    fn trigger_maps_payload_to_an_alert() {
        let event = parse_event(&trigger()).expect("valid");
        assert_eq!(event.action, EventAction::Trigger);
        assert_eq!(event.dedup_key.as_deref(), Some("db-1-disk"));
        let alert = event.alert.expect("alert");
        assert_eq!(
            alert.severity,
            Severity::Critical,
            "error pages like critical"
        );
        assert_eq!(alert.title, "Disk 95% on db-1");
        assert_eq!(alert.labels["component"], "postgres");
        assert_eq!(alert.labels["source"], "db-1");
        assert!(alert.description.contains("- **free**: 5%"));
        assert!(alert.description.contains("```\nLabels:\n - a = b\n```"));
        assert!(!alert.description.contains("dingtalk_chat"));
        let urls: Vec<&str> = alert.links.iter().map(|l| l.url.as_str()).collect();
        assert_eq!(
            urls,
            ["https://grafana/d/1", "https://img/1.png", "http://am:9093"]
        );
        assert_eq!(event.targets.chats, ["DBA"]);
    }

    #[test]
    fn invalid_events_list_every_reason() {
        let mut body = trigger();
        body["payload"]["severity"] = "page".into();
        body["payload"]["summary"] = "".into();
        let errors = parse_event(&body).expect_err("invalid");
        assert_eq!(errors.len(), 2, "{errors:?}");
        for (body, needle) in [
            (json!({"event_action": "snooze"}), "event_action"),
            (json!({"event_action": "resolve"}), "dedup_key"),
            (json!({"event_action": "trigger"}), "payload"),
            (
                json!({"event_action": "trigger", "dedup_key": 7}),
                "dedup_key",
            ),
            (
                json!({"event_action": "acknowledge", "dedup_key": "k".repeat(256)}),
                "too long",
            ),
            (json!("trigger"), "object"),
        ] {
            let errors = parse_event(&body).expect_err("invalid");
            assert!(
                errors.iter().any(|e| e.contains(needle)),
                "{body}: {errors:?}"
            );
        }
        let mut bad_member = trigger();
        bad_member["payload"]["custom_details"]["dingtalk_member"] = "not-an-email".into();
        assert!(parse_event(&bad_member).is_err());
        let resolve = json!({"event_action": "resolve", "dedup_key": "k"});
        assert_eq!(parse_event(&resolve).expect("valid").alert, None);
    }

    #[test]
    fn answers_have_pagerduty_shapes() {
        assert_eq!(
            PagerDutyError::invalid("Invalid routing key").body(),
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["Invalid routing key"]})
        );
        assert_eq!(PagerDutyError::Unavailable("x".into()).http_status(), 503);
        assert_eq!(accepted_body("k")["message"], "Event processed");
        assert_eq!(severity_of("warning"), Some(Severity::Warning));
        assert_eq!(severity_of("page"), None);
        assert_eq!(describe_details(&json!([1])), "```\n[\n  1\n]\n```\n");
    }
}
