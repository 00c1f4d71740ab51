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

/// A message held on the dead-letter queue while it is read (peek or redrive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldMessage {
    /// SQS message id (kept when SQS moved it from the alert queue).
    pub message_id: String,
    /// Handle to release or delete it with.
    pub receipt_handle: String,
    /// `ApproximateReceiveCount`, this read included.
    pub receive_count: u32,
    /// `SentTimestamp` (ms), when it was first sent.
    pub sent_ms: Option<i64>,
    /// The body.
    pub body: String,
}

/// Seconds a read message stays hidden if it is never released (a crash mid-read).
const HOLD_SECS: i32 = 30;

/// Most messages one peek or redrive reads.
pub const MAX_HELD: usize = 500;

/// The dead-letter queue of the alert queue: read without consuming, and send back.
#[derive(Clone, Debug)]
pub struct DeadLetterQueue {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl DeadLetterQueue {
    /// The DLQ at `queue_url`.
    pub fn new(sqs: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            sqs,
            queue_url: queue_url.into(),
        }
    }

    /// `ApproximateNumberOfMessages` (visible messages) of the DLQ.
    pub async fn approximate_depth(&self) -> Result<u64, QueueError> {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(out
            .attributes()
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or(0))
    }

    /// Receives every visible message (at most [`MAX_HELD`]), hiding each for a
    /// short while; the caller releases or deletes every one it got.
    pub async fn hold_all(&self) -> Result<Vec<HeldMessage>, QueueError> {
        use aws_sdk_sqs::types::MessageSystemAttributeName as Attr;
        let mut held: Vec<HeldMessage> = Vec::new();
        while held.len() < MAX_HELD {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .visibility_timeout(HOLD_SECS)
                .wait_time_seconds(0)
                .message_system_attribute_names(Attr::ApproximateReceiveCount)
                .message_system_attribute_names(Attr::SentTimestamp)
                .send()
                .await;
            let out = match out {
                Ok(out) => out,
                Err(err) => {
                    // Give back what we hold before failing.
                    self.release(&held).await;
                    return Err(sqs_error(err));
                }
            };
            let batch = out.messages();
            if batch.is_empty() {
                break;
            }
            for message in batch {
                let attribute = |name: &Attr| message.attributes().and_then(|a| a.get(name));
                held.push(HeldMessage {
                    message_id: message.message_id().unwrap_or_default().to_string(),
                    receipt_handle: message.receipt_handle().unwrap_or_default().to_string(),
                    receive_count: attribute(&Attr::ApproximateReceiveCount)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                    sent_ms: attribute(&Attr::SentTimestamp).and_then(|n| n.parse().ok()),
                    body: message.body().unwrap_or_default().to_string(),
                });
            }
        }
        Ok(held)
    }

    /// Makes held messages visible again at once (`ChangeMessageVisibility` 0). A
    /// release that fails is logged: the message comes back on its own in seconds.
    pub async fn release(&self, held: &[HeldMessage]) {
        for message in held {
            let released = self
                .sqs
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(&message.receipt_handle)
                .visibility_timeout(0)
                .send()
                .await;
            if let Err(err) = released {
                tracing::warn!(message_id = %message.message_id, error = %sqs_error(err), "could not release a dead-letter message; it reappears within 30 s");
            }
        }
    }

    /// Deletes a held message (after it was sent back).
    pub async fn delete(&self, message: &HeldMessage) -> Result<(), QueueError> {
        self.sqs
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&message.receipt_handle)
            .send()
            .await
            .map_err(sqs_error)?;
        Ok(())
    }
}

impl JobQueue {
    /// Sends a body as it is (a dead-letter message sent back), at once.
    pub async fn send_raw(&self, body: &str) -> Result<(), QueueError> {
        self.send(body.to_string(), Duration::ZERO).await
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
