//! What the Lambda SQS event source mapping does, for the local stack: long-poll the
//! queue, hand batches of up to 10 messages to a handler as an `SqsEvent`, delete
//! what succeeded and leave reported failures (ReportBatchItemFailures) for
//! redelivery; SQS's own redrive policy moves a message that keeps failing to the DLQ.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use tracing::{info, warn};

/// A function invoked with SQS batches. `Err` is a function error: the whole batch
/// is retried after the visibility timeout, as with Lambda.
pub type BatchHandler = Arc<
    dyn Fn(SqsEvent) -> Pin<Box<dyn Future<Output = Result<SqsBatchResponse, String>> + Send>>
        + Send
        + Sync,
>;

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Messages received.
    pub received: usize,
    /// Messages deleted after success.
    pub succeeded: usize,
    /// Messages left for redelivery.
    pub failed: usize,
}

/// An SQS event source for one queue.
#[derive(Clone)]
pub struct SqsEventSource {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    queue_arn: String,
    /// Messages per batch (1–10).
    pub batch_size: i32,
    /// Long-poll wait in seconds (0–20).
    pub wait_seconds: i32,
    /// Batches handled at once, each by its own poller (Lambda's SQS poller runs
    /// several; default 5).
    pub pollers: usize,
}

impl SqsEventSource {
    /// An event source on `queue_url` (its ARN is looked up once).
    pub async fn new(sqs: aws_sdk_sqs::Client, queue_url: &str) -> Result<Self, String> {
        let queue_arn = sqs
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .unwrap_or_default();
        Ok(Self {
            sqs,
            queue_url: queue_url.to_string(),
            queue_arn,
            batch_size: 10,
            wait_seconds: 5,
            pollers: 5,
        })
    }

    /// Receives one batch (long poll), invokes the handler, deletes the successes.
    pub async fn poll_once(&self, handler: &BatchHandler) -> Result<PollOutcome, String> {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size.clamp(1, 10))
            .wait_time_seconds(self.wait_seconds.clamp(0, 20))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(PollOutcome::default());
        }
        let (event, receipts) = self.event_of(messages);
        let total = receipts.len();
        let whole_batch_failed = PollOutcome {
            received: total,
            succeeded: 0,
            failed: total,
        };
        let failed: Vec<String> = match handler(event).await {
            Ok(response) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(err) => {
                warn!(error = %err, "handler failed; the whole batch is retried");
                return Ok(whole_batch_failed);
            }
        };
        // Like Lambda: a failure id that is not in the batch fails the whole batch.
        if failed.iter().any(|id| !receipts.contains_key(id)) {
            warn!("handler reported an unknown message id; the whole batch is retried");
            return Ok(whole_batch_failed);
        }
        let succeeded = self.delete_succeeded(&receipts, &failed).await?;
        if !failed.is_empty() {
            info!(
                failed = failed.len(),
                "batch item failures left for redelivery"
            );
        }
        Ok(PollOutcome {
            received: total,
            succeeded,
            failed: failed.len(),
        })
    }

    /// The Lambda event of received messages, and their receipt handles by id.
    fn event_of(
        &self,
        messages: Vec<aws_sdk_sqs::types::Message>,
    ) -> (SqsEvent, HashMap<String, String>) {
        let mut receipts = HashMap::new();
        let mut event = SqsEvent::default();
        for message in messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body.clone();
            record.md5_of_body = message.md5_of_body.clone();
            record.attributes = message
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k.as_str().to_string(), v))
                .collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(self.queue_arn.clone());
            record.aws_region = Some("us-east-1".into());
            if let (Some(id), Some(receipt)) = (message.message_id, message.receipt_handle) {
                receipts.insert(id, receipt);
            }
            event.records.push(record);
        }
        (event, receipts)
    }

    /// Deletes the messages that did not fail; returns how many.
    async fn delete_succeeded(
        &self,
        receipts: &HashMap<String, String>,
        failed: &[String],
    ) -> Result<usize, String> {
        let entries: Vec<DeleteMessageBatchRequestEntry> = receipts
            .iter()
            .filter(|(id, _)| !failed.contains(id))
            .enumerate()
            .filter_map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            })
            .collect();
        let succeeded = entries.len();
        if !entries.is_empty() {
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        }
        Ok(succeeded)
    }

    /// Polls forever in the background with `pollers` concurrent pollers, each
    /// handing its batches to `handler` (aborting the handle stops them all).
    pub fn spawn(self, handler: BatchHandler) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut pollers = tokio::task::JoinSet::new();
            for _ in 0..self.pollers.max(1) {
                let source = self.clone();
                let handler = handler.clone();
                pollers.spawn(async move {
                    loop {
                        if let Err(err) = source.poll_once(&handler).await {
                            warn!(error = %err, "SQS poll failed; retrying in 1 s");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                });
            }
            while pollers.join_next().await.is_some() {}
        })
    }
}
