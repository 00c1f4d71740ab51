//! The `webhook` job: tell the upstream system about an action taken in DingTalk
//! (ARCHITECTURE.md §6.7). Signed; failures are re-queued with exponential delay
//! until [`WEBHOOK_ATTEMPTS`], each attempt recorded on the incident.

use std::time::Duration;

use serde_json::Value;
use tracing::{error, info, instrument};

use super::{JobError, Notifier};
use crate::domain::incident::RecordKind;
use crate::domain::integration::Integration;
use crate::domain::job::{Job, WEBHOOK_ATTEMPTS, webhook_retry_delay_secs};
use crate::render::webhook_payload;

impl Notifier {
    /// Runs attempt `attempt` (0 counts as 1) of a webhook for incident `incident_id`.
    #[instrument(skip_all, fields(integration_id = %integration.id, incident_id = %incident_id, attempt))]
    pub(super) async fn webhook(
        &self,
        integration: &Integration,
        incident_id: &str,
        attempt: u32,
        event: Value,
    ) -> Result<(), JobError> {
        let (Some(url), Some(secret)) = (&integration.webhook_url, &integration.webhook_secret)
        else {
            info!("no webhook configured; dropped");
            return Ok(());
        };
        let attempt = attempt.max(1);
        let body = event.to_string();
        let timestamp = self.clock.now_secs().to_string();
        let signature = webhook_payload::signature(secret.expose(), &timestamp, &body);
        let outcome = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-incident-timestamp", &timestamp)
            .header("x-incident-signature", &signature)
            .body(body)
            .send()
            .await;
        let (ok, detail) = match outcome {
            Ok(r) if r.status().is_success() => (
                true,
                format!(
                    "webhook delivered (attempt {attempt}, HTTP {})",
                    r.status().as_u16()
                ),
            ),
            Ok(r) => (
                false,
                format!("webhook attempt {attempt} got HTTP {}", r.status().as_u16()),
            ),
            Err(e) => (
                false,
                format!("webhook attempt {attempt} failed: {}", e.without_url()),
            ),
        };
        self.record(incident_id, RecordKind::Webhook, None, detail.clone())
            .await;
        if ok {
            return Ok(());
        }
        if attempt >= WEBHOOK_ATTEMPTS {
            error!("webhook given up after {WEBHOOK_ATTEMPTS} attempts");
            return Ok(());
        }
        let Some(jobs) = &self.jobs else {
            return Err(JobError::Retry(detail));
        };
        let next = Job::Webhook {
            integration_id: integration.id.clone(),
            incident_id: incident_id.to_string(),
            attempt: attempt + 1,
            event,
        };
        let delay = Duration::from_secs(u64::from(webhook_retry_delay_secs(attempt)));
        jobs.send_job(&next, delay)
            .await
            .map_err(|e| JobError::Retry(format!("could not re-queue the webhook: {e}")))
    }
}
