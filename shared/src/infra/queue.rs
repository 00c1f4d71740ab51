//! The one way onto the queue: alert events and typed jobs (ARCHITECTURE.md §6.4)
//! are serialised and sent here, and nowhere else.

use std::time::Duration;

use crate::domain::escalation_state;
use crate::domain::incident::{AlertEvent, Incident};
use crate::domain::job::Job;

/// Longest delay SQS allows on a message.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// Exponential backoff for records that failed with something that may pass
/// (throttling, DingTalk or network trouble): `base` doubling per receive, at most
/// `max`, plus up to `base` of jitter so retries of a burst spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBackoff {
    /// Wait after the first failure.
    pub base: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Default for RetryBackoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

impl RetryBackoff {
    /// The wait after receive number `receive_count` failed; `jitter` in [0, 1).
    pub fn delay(&self, receive_count: u32, jitter: f64) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(16);
        let exponential = self.base.saturating_mul(1 << doublings).min(self.max);
        let jitter = self.base.mul_f64(jitter.clamp(0.0, 0.999));
        (exponential + jitter).min(self.max + self.base)
    }
}

/// Why a message could not be queued (ours: callers answer 5xx or retry).
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// SQS refused the send or could not be reached.
    #[error("SQS send failed: {0}")]
    Send(String),
    /// The message could not be serialised.
    #[error("could not serialise the message: {0}")]
    Serialise(#[from] serde_json::Error),
}

/// The alert queue.
#[derive(Clone, Debug)]
pub struct JobQueue {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl JobQueue {
    /// The queue at `queue_url`.
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            sqs,
            queue_url: queue_url.into(),
        }
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.queue_url
    }

    /// Queues `job`, delivered after `delay` (capped at SQS's 900 s).
    pub async fn send_job(&self, job: &Job, delay: Duration) -> Result<(), QueueError> {
        self.send(serde_json::to_string(job)?, delay).await
    }

    /// Queues an alert event for the notifier.
    pub async fn send_alert(&self, event: &AlertEvent) -> Result<(), QueueError> {
        self.send(serde_json::to_string(event)?, Duration::ZERO)
            .await
    }

    /// Arms an incident's escalation timers (ARCHITECTURE.md §9): one message for
    /// what is owed now, one for the step due next (a hop when over 15 minutes).
    /// The sweep fires anything a lost message would have, so this is the fast path.
    pub async fn arm_escalation(&self, incident: &Incident, now_ms: i64) -> Result<(), QueueError> {
        let Some(esc) = incident.escalation.as_ref() else {
            return Ok(());
        };
        for due_ms in escalation_state::timers(incident) {
            let job = Job::EscalationTimer {
                integration_id: incident.integration_id.clone(),
                incident_id: incident.id.clone(),
                epoch: esc.epoch,
                due_ms,
            };
            self.send_timer(&job, due_ms, now_ms).await?;
        }
        Ok(())
    }

    /// Queues a timer job to arrive when `due_ms` is reached (SQS waits at most
    /// 900 s; the job re-queues itself for the rest). Whole seconds, rounded up: a
    /// timer never fires before its step is due.
    pub async fn send_timer(&self, job: &Job, due_ms: i64, now_ms: i64) -> Result<(), QueueError> {
        let wait = u64::try_from(due_ms.saturating_sub(now_ms)).unwrap_or(0);
        self.send_job(job, Duration::from_secs(wait.div_ceil(1000)))
            .await
    }

    /// Makes a received message visible again after `delay` (a short retry instead
    /// of the queue's whole visibility timeout). The receive count still grows, so a
    /// poison message still reaches the DLQ after the redrive count.
    pub async fn retry_after(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let secs = i32::try_from(delay.as_secs())
            .unwrap_or(i32::MAX)
            .clamp(0, 43_200);
        self.sqs
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }

    async fn send(&self, body: String, delay: Duration) -> Result<(), QueueError> {
        let delay = i32::try_from(delay.min(MAX_DELAY).as_secs()).unwrap_or(900);
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }
}

/// An SQS call's failure, with the SDK's full context.
fn sqs_error(err: impl std::error::Error) -> QueueError {
    QueueError::Send(aws_sdk_sqs::error::DisplayErrorContext(err).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_come_back_in_seconds_doubling_to_a_minute() {
        let backoff = RetryBackoff::default();
        let secs = |n, j| backoff.delay(n, j).as_secs_f64();
        assert_eq!(secs(1, 0.0), 2.0);
        assert_eq!(secs(2, 0.0), 4.0);
        assert_eq!(secs(3, 0.0), 8.0);
        assert_eq!(secs(6, 0.0), 60.0);
        assert_eq!(secs(u32::MAX, 0.0), 60.0);
        assert_eq!(
            secs(0, 0.0),
            2.0,
            "a missing count reads as the first receive"
        );
        assert!((secs(1, 0.5) - 3.0).abs() < 1e-9);
        assert!(secs(50, 5.0) <= 62.0, "jitter is bounded");
    }
}
