//! The upstream webhook (ARCHITECTURE.md §6.7): the event body sent when someone
//! acts on an incident in DingTalk, and its signature
//! `X-Incident-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::domain::incident::Incident;

/// The event body for `incident.<kind>` (`acknowledged`, `resolved`, `snoozed`).
pub fn incident_event(incident: &Incident, kind: &str, actor: &str, event_id: &str) -> Value {
    json!({
        "event_id": event_id,
        "type": format!("incident.{kind}"),
        "occurred_at": incident.updated_at,
        "actor": actor,
        "integration_id": incident.integration_id,
        "incident": {"id": incident.id, "key": incident.key, "status": incident.status, "severity": incident.severity,
                     "title": incident.title, "acked_by": incident.acked_by, "resolved_by": incident.resolved_by,
                     "snoozed_until": incident.snoozed_until, "updated_at": incident.updated_at, "version": incident.version},
    })
}

/// The first attempt of the upstream webhook job for `incident.<kind>` by `actor`
/// (a fresh event id).
pub fn webhook_job(incident: &Incident, kind: &str, actor: &str) -> crate::domain::job::Job {
    let event_id = uuid::Uuid::new_v4().to_string();
    crate::domain::job::Job::Webhook {
        integration_id: incident.integration_id.clone(),
        incident_id: incident.id.clone(),
        attempt: 1,
        event: incident_event(incident, kind, actor, &event_id),
    }
}

/// The `X-Incident-Signature` value of `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: &str, body: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::incident;

    #[test]
    fn events_name_the_action_and_the_incident() {
        let event = incident_event(&incident("x"), "acknowledged", "alice@example.com", "e1");
        assert_eq!(event["type"], "incident.acknowledged");
        assert_eq!(event["incident"]["id"], "inc1");
        assert_eq!(event["actor"], "alice@example.com");
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        let sig = signature("s3cret", "1700000000", "{}");
        assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64);
        assert_ne!(sig, signature("s3cret", "1700000001", "{}"));
    }
}
