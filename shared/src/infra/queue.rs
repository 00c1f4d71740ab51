//! The one way onto the queue: alert events and typed jobs (ARCHITECTURE.md §6.4)
//! are serialised and sent here, and nowhere else.

use std::time::Duration;

use crate::domain::incident::AlertEvent;
use crate::domain::job::Job;

/// Longest delay SQS allows on a message.
pub const MAX_DELAY: Duration = Duration::from_secs(900);

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

    async fn send(&self, body: String, delay: Duration) -> Result<(), QueueError> {
        let delay = i32::try_from(delay.min(MAX_DELAY).as_secs()).unwrap_or(900);
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| {
                QueueError::Send(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
            })?;
        Ok(())
    }
}
