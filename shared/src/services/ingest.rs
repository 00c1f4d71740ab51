//! Ingest (`POST /api/integrations/{id}/alerts`): Alertmanager webhook v4, Grafana
//! alerting webhooks and the alert event v1 become alert events on the queue.
//!
//! Alertmanager and Grafana payloads map **one group (groupKey) to one incident**:
//! the group's alerts are listed in one message that updates as alerts join or
//! resolve, instead of one message per alert (storms stay one message). The event
//! time is the newest `startsAt`/`endsAt` in the group, so repeated notifications
//! change nothing and older payloads never move an incident backwards.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::info;

use crate::domain::ValidationError;
use crate::domain::incident::{Alert, AlertEvent, AlertStatus, Link, Severity};
use crate::domain::integration::{Integration, Targets, is_email};
use crate::http::ApiError;
use crate::infra::queue::JobQueue;
use crate::store::Store;

/// Largest ingest body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Alerts listed in one incident description; the rest are counted.
const LISTED_ALERTS: usize = 20;

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// Splits a `dingtalk_chat` / `dingtalk_member` label value.
fn split_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split([',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
}

/// Targets named by labels (`dingtalk_chat`: openConversationIds or exact group titles;
/// `dingtalk_member`: emails).
pub(crate) fn targets_from_labels<'a>(
    label_sets: impl Iterator<Item = &'a Value>,
) -> Result<Targets, ValidationError> {
    let mut targets = Targets::default();
    for labels in label_sets {
        for (label, list) in [
            ("dingtalk_chat", &mut targets.chats),
            ("dingtalk_member", &mut targets.members),
        ] {
            if let Some(value) = labels.get(label).and_then(Value::as_str) {
                for entry in split_list(value) {
                    if !list.contains(&entry) {
                        list.push(entry);
                    }
                }
            }
        }
    }
    if let Some(bad) = targets.members.iter().find(|m| !is_email(m)) {
        return Err(ValidationError::new(
            "labels.dingtalk_member",
            format!("{bad:?} is not an email address"),
        ));
    }
    Ok(targets)
}

fn ms_of(rfc3339: Option<&str>) -> Option<i64> {
    let t = chrono::DateTime::parse_from_rfc3339(rfc3339?)
        .ok()?
        .timestamp_millis();
    // Alertmanager's "no end" is 0001-01-01.
    (t > 0).then_some(t)
}

/// The group's status: the body's, else resolved when every alert is.
fn group_status(body: &Value, alerts: &[Value]) -> AlertStatus {
    match text(body, "/status") {
        Some("resolved") => AlertStatus::Resolved,
        Some("firing") => AlertStatus::Firing,
        _ if alerts
            .iter()
            .all(|a| text(a, "/status") == Some("resolved")) =>
        {
            AlertStatus::Resolved
        }
        _ => AlertStatus::Firing,
    }
}

/// The markdown list of the group's alerts (the first [`LISTED_ALERTS`]).
fn describe_alerts(body: &Value, alerts: &[Value], alertname: &str) -> String {
    let mut description = String::new();
    for alert in alerts.iter().take(LISTED_ALERTS) {
        let icon = if text(alert, "/status") == Some("resolved") {
            "✅"
        } else {
            "🔴"
        };
        let name = text(alert, "/labels/alertname").unwrap_or(alertname);
        let what = text(alert, "/annotations/summary")
            .or_else(|| text(alert, "/annotations/description"))
            .unwrap_or("");
        let instance = text(alert, "/labels/instance")
            .map(|i| format!(" `{i}`"))
            .unwrap_or_default();
        description.push_str(&format!("- {icon} **{name}**{instance} {what}\n"));
    }
    let truncated = body
        .get("truncatedAlerts")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let unlisted = alerts.len().saturating_sub(LISTED_ALERTS) as u64 + truncated;
    if unlisted > 0 {
        description.push_str(&format!("- … and {unlisted} more\n"));
    }
    match text(body, "/commonAnnotations/description") {
        Some(common) => format!("{common}\n\n{description}"),
        None => description,
    }
}

/// The group's common labels, without our routing labels (`dingtalk_*`).
fn common_labels(body: &Value) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if let Some(common) = body.get("commonLabels").and_then(Value::as_object) {
        for (k, v) in common {
            if let (false, Some(v)) = (k.starts_with("dingtalk_"), v.as_str()) {
                labels.insert(k.clone(), v.to_string());
            }
        }
    }
    labels
}

/// Runbook, source, dashboard, silence and Alertmanager/Grafana links, http(s) only.
fn links_of(body: &Value, first: Option<&Value>, source: &str) -> Vec<Link> {
    let mut links = Vec::new();
    let mut link = |title: &str, url: Option<&str>| {
        if let Some(url) = url.filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            && !links.iter().any(|l: &Link| l.url == url)
        {
            links.push(Link {
                title: title.into(),
                url: url.into(),
            });
        }
    };
    link(
        "Runbook",
        text(body, "/commonAnnotations/runbook_url")
            .or_else(|| first.and_then(|a| text(a, "/annotations/runbook_url"))),
    );
    link("Source", first.and_then(|a| text(a, "/generatorURL")));
    link("Dashboard", first.and_then(|a| text(a, "/dashboardURL")));
    link("Silence", first.and_then(|a| text(a, "/silenceURL")));
    let external = if source == "grafana" {
        "Grafana"
    } else {
        "Alertmanager"
    };
    link(external, text(body, "/externalURL"));
    links
}

/// Maps an Alertmanager v4 or Grafana alerting webhook to one alert event.
fn from_alertmanager(
    body: &Value,
    integration_id: &str,
    source: &str,
) -> Result<AlertEvent, ValidationError> {
    let alerts = body
        .get("alerts")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ValidationError::new("alerts", "must be a non-empty array"))?;
    let group_key = text(body, "/groupKey")
        .map(String::from)
        .unwrap_or_else(|| {
            body.get("groupLabels")
                .map(Value::to_string)
                .unwrap_or_default()
        });
    let digest = hex::encode(Sha256::digest(group_key.as_bytes()));
    let firing: Vec<&Value> = alerts
        .iter()
        .filter(|a| text(a, "/status") != Some("resolved"))
        .collect();
    let considered = if firing.is_empty() {
        alerts.iter().collect()
    } else {
        firing.clone()
    };
    let severity = considered
        .iter()
        .filter_map(|a| text(a, "/labels/severity").and_then(Severity::from_label))
        .chain(text(body, "/commonLabels/severity").and_then(Severity::from_label))
        .min()
        .unwrap_or(Severity::Warning);
    let alertname = text(body, "/commonLabels/alertname")
        .or_else(|| text(body, "/groupLabels/alertname"))
        .or_else(|| alerts.first().and_then(|a| text(a, "/labels/alertname")))
        .unwrap_or("Alert");
    let summary = text(body, "/commonAnnotations/summary").unwrap_or(alertname);
    let title = if firing.len() > 1 {
        format!("{summary} ({} firing)", firing.len())
    } else {
        summary.to_string()
    };
    let event_ms = alerts
        .iter()
        .flat_map(|a| [ms_of(text(a, "/startsAt")), ms_of(text(a, "/endsAt"))])
        .flatten()
        .max();
    let targets = targets_from_labels(
        body.get("commonLabels")
            .into_iter()
            .chain(alerts.iter().filter_map(|a| a.get("labels"))),
    )?;
    Ok(AlertEvent {
        version: 1,
        integration_id: integration_id.to_string(),
        alert: Alert {
            key: format!("{source}-{}", &digest[..32]),
            status: group_status(body, alerts),
            severity,
            title,
            description: describe_alerts(body, alerts, alertname),
            labels: common_labels(body),
            links: links_of(body, considered.first().copied(), source),
            source: Some(source.to_string()),
            occurred_at: event_ms
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|t| t.to_rfc3339()),
        },
        targets,
        truncated: Vec::new(),
        mention_mobiles: Vec::new(),
    })
}

/// Parses an ingest body into alert events for `integration_id`.
pub fn parse_payload(
    body: &Value,
    integration_id: &str,
) -> Result<Vec<AlertEvent>, ValidationError> {
    if body.get("alert").is_some() {
        let mut event: AlertEvent = serde_json::from_value(body.clone())
            .map_err(|e| ValidationError::new("body", format!("not a valid alert event: {e}")))?;
        if event.integration_id.is_empty() {
            event.integration_id = integration_id.to_string();
        }
        if event.integration_id != integration_id {
            return Err(ValidationError::new(
                "integration_id",
                "does not match the integration in the URL",
            ));
        }
        event.validate()?;
        return Ok(vec![event]);
    }
    if body.get("alerts").is_some() {
        super::ingest_shape::check_alertmanager_shape(body)?;
        let source = if body.get("orgId").is_some() || text(body, "/version") == Some("1") {
            "grafana"
        } else {
            "alertmanager"
        };
        let event = from_alertmanager(body, integration_id, source)?;
        event.validate()?;
        return Ok(vec![event]);
    }
    Err(ValidationError::new(
        "body",
        "unrecognised payload: send an Alertmanager webhook (v4), a Grafana alerting webhook or an alert event (version 1)",
    ))
}

/// The ingest service.
#[derive(Clone)]
pub struct Ingest {
    store: Store,
    queue: JobQueue,
}

impl Ingest {
    /// Ingest onto `queue`.
    pub fn new(store: Store, queue: JobQueue) -> Self {
        Self { store, queue }
    }

    /// Authenticates `bearer` for the integration, parses `body` and queues the events.
    /// Our own failures are 5xx so senders retry; only bad input is 4xx.
    pub async fn accept(
        &self,
        integration_id: &str,
        bearer: Option<&str>,
        body: &[u8],
    ) -> Result<Value, ApiError> {
        let integration: Integration = self
            .store
            .get_integration(integration_id)
            .await
            .map_err(|e| {
                ApiError::new(503, "unavailable", format!("store unavailable, retry: {e}"))
            })?
            .ok_or_else(|| ApiError::not_found("integration"))?;
        if !bearer.is_some_and(|b| token_matches(&integration, b)) {
            return Err(ApiError::new(
                401,
                "unauthorized",
                "missing or wrong ingest token (Authorization: Bearer <ingest_token>)",
            ));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(400, "invalid_json", format!("body is not valid JSON: {e}"))
        })?;
        let mut events = parse_payload(&value, integration_id)
            .map_err(|v| ApiError::invalid_field(v.field.clone(), v.to_string()))?;
        let received_ms = chrono::Utc::now().timestamp_millis();
        let keys = bound_and_queue(&self.queue, &mut events, received_ms)
            .await
            .map_err(|_| ApiError::new(503, "unavailable", "could not queue the alert; retry"))?;
        info!(integration_id, queued = keys.len(), "alerts queued");
        Ok(json!({"queued": keys.len(), "keys": keys}))
    }
}

/// Whether `presented` is the integration's ingest token: its SHA-256 digest is
/// compared in constant time with the stored one (an empty token never matches).
pub(crate) fn token_matches(integration: &Integration, presented: &str) -> bool {
    let presented = presented.trim();
    let digest = hex::encode(Sha256::digest(presented.as_bytes()));
    let same: bool = digest
        .as_bytes()
        .ct_eq(integration.ingest_token_sha256.as_bytes())
        .into();
    !presented.is_empty() && same
}

/// Re-dates (more than 5 minutes ahead → `received_ms`) and bounds the events, then
/// queues them in order; returns their keys. A queue failure is logged and returned
/// (callers answer 5xx so the sender retries).
pub(crate) async fn bound_and_queue(
    queue: &JobQueue,
    events: &mut [AlertEvent],
    received_ms: i64,
) -> Result<Vec<String>, crate::infra::queue::QueueError> {
    let mut keys = Vec::with_capacity(events.len());
    for event in events.iter_mut() {
        crate::domain::bounds::redate(event, received_ms);
        crate::domain::bounds::bound(event);
    }
    for event in events.iter() {
        queue.send_alert(event).await.inspect_err(|e| {
            tracing::error!(error = %e, "queue send failed");
        })?;
        keys.push(event.alert.key.clone());
    }
    Ok(keys)
}

/// Shared handle type for the local stack.
pub type SharedIngest = Arc<Ingest>;

#[cfg(test)]
mod tests {
    use super::*;

    fn alertmanager(status: &str, alerts: Value) -> Value {
        json!({"version": "4", "groupKey": "{}:{alertname=\"HighLatency\"}", "truncatedAlerts": 0,
               "status": status, "receiver": "dingtalk", "groupLabels": {"alertname": "HighLatency"},
               "commonLabels": {"alertname": "HighLatency", "severity": "critical", "dingtalk_chat": "支付告警群, cidX=="},
               "commonAnnotations": {"summary": "p99 latency above 2s"}, "externalURL": "http://am:9093", "alerts": alerts})
    }

    #[test]
    fn alertmanager_group_is_one_incident() {
        let alerts = json!([
            {"status": "firing", "labels": {"alertname": "HighLatency", "instance": "a", "dingtalk_member": "alice@example.com"}, "annotations": {}, "startsAt": "2026-11-24T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "1"},
            {"status": "firing", "labels": {"alertname": "HighLatency", "instance": "b"}, "annotations": {}, "startsAt": "2026-11-24T01:01:00Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "2"}
        ]);
        let events =
            parse_payload(&alertmanager("firing", alerts.clone()), "int1").expect("parsed");
        let event = &events[0];
        assert_eq!(event.alert.status, AlertStatus::Firing);
        assert_eq!(event.alert.severity, Severity::Critical);
        assert_eq!(event.alert.title, "p99 latency above 2s (2 firing)");
        assert_eq!(event.targets.chats, ["支付告警群", "cidX=="]);
        assert_eq!(event.targets.members, ["alice@example.com"]);
        assert_eq!(
            event.alert.occurred_at.as_deref(),
            Some("2026-11-24T01:01:00+00:00")
        );
        assert!(!event.alert.labels.contains_key("dingtalk_chat"));
        let resolved = parse_payload(&alertmanager("resolved", alerts), "int1").expect("parsed");
        assert_eq!(
            resolved[0].alert.key, event.alert.key,
            "same group, same incident"
        );
    }

    #[test]
    fn native_events_and_garbage() {
        let native = json!({"version": 1, "integration_id": "int1", "alert": {"key": "k", "status": "firing", "severity": "info", "title": "t"}});
        assert_eq!(parse_payload(&native, "int1").expect("native").len(), 1);
        assert_eq!(
            parse_payload(&native, "other").expect_err("mismatch").field,
            "integration_id"
        );
        assert_eq!(
            parse_payload(&json!({"hello": 1}), "int1")
                .expect_err("garbage")
                .field,
            "body"
        );
        assert_eq!(
            parse_payload(&json!({"alerts": []}), "int1")
                .expect_err("empty")
                .field,
            "alerts"
        );
    }
}
