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
use crate::infra::outbound::OutboundError;
use crate::render::webhook_payload;

/// Why a webhook attempt failed, as a class: never the remote's answer, so the
/// timeline cannot be used to probe other hosts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WebhookFailure {
    /// The URL is not allowed (checked again at send time on the resolved address).
    #[error("blocked by the outbound policy ({0})")]
    Blocked(OutboundError),
    /// No connection, a timeout or a broken answer.
    #[error("unreachable")]
    Unreachable,
    /// The receiver answered with a redirect, which is not followed.
    #[error("redirect not followed")]
    Redirect,
    /// The receiver answered with an error status.
    #[error("refused by the receiver")]
    Refused,
}

impl Notifier {
    /// One signed POST of `event` to `url`, through the outbound policy.
    async fn post_webhook(
        &self,
        url: &str,
        secret: &str,
        event: &Value,
    ) -> Result<(), WebhookFailure> {
        let url = self
            .outbound
            .check_url(url)
            .map_err(WebhookFailure::Blocked)?;
        let addr = self
            .outbound
            .resolve(&url)
            .await
            .map_err(WebhookFailure::Blocked)?;
        let client = self
            .outbound
            .client(&url, addr, Duration::from_secs(5))
            .map_err(WebhookFailure::Blocked)?;
        let body = event.to_string();
        let timestamp = self.clock.now_secs().to_string();
        let signature = webhook_payload::signature(secret, &timestamp, &body);
        let answer = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-incident-timestamp", &timestamp)
            .header("x-incident-signature", &signature)
            .body(body)
            .send()
            .await
            .map_err(|_| WebhookFailure::Unreachable)?;
        match answer.status() {
            status if status.is_success() => Ok(()),
            status if status.is_redirection() => Err(WebhookFailure::Redirect),
            _ => Err(WebhookFailure::Refused),
        }
    }

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
        let (ok, retryable, detail) = match self.post_webhook(url, secret.expose(), &event).await {
            Ok(()) => (
                true,
                false,
                format!("webhook delivered (attempt {attempt})"),
            ),
            Err(WebhookFailure::Blocked(err)) if err.is_permanent() => (
                false,
                false,
                format!(
                    "webhook not sent: {}; fix webhook_url",
                    WebhookFailure::Blocked(err)
                ),
            ),
            Err(class) => (
                false,
                true,
                format!("webhook attempt {attempt} failed: {class}"),
            ),
        };
        self.record(incident_id, RecordKind::Webhook, None, detail.clone())
            .await;
        if ok {
            return Ok(());
        }
        if attempt >= WEBHOOK_ATTEMPTS || !retryable {
            error!(attempt, "webhook given up");
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
