//! Lambda entry point of the notifier: SQS batches of alert events → DingTalk
//! (ReportBatchItemFailures: only failed records are retried), and the
//! once-a-minute escalation sweep (`{"sweep": "escalation"}` from EventBridge).

// The release build's optimised layout of `handle`'s future nests deeper than the
// default limit of 128 ("queries overflow the depth limit").
#![recursion_limit = "256"]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};
use shared::Services;
use shared::services::notifier::{Notifier, NotifierSettings};

/// Time left in this invocation, as a tokio deadline.
fn deadline_of(context: &lambda_runtime::Context) -> tokio::time::Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let left = u64::try_from(u128::from(context.deadline).saturating_sub(now_ms)).unwrap_or(0);
    tokio::time::Instant::now() + Duration::from_millis(left)
}

async fn handle(notifier: &Notifier, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let deadline = deadline_of(&event.context);
    if event.payload.get("sweep").is_some() {
        // A failed sweep fails the invocation (the alarm sees it); the next one retries.
        let report = notifier.sweep(deadline).await?;
        return Ok(json!({"due": report.due, "failed": report.failed}));
    }
    let batch: SqsEvent = serde_json::from_value(event.payload)?;
    let response: SqsBatchResponse = notifier.handle_batch(batch, deadline).await;
    Ok(serde_json::to_value(response)?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let services = Services::from_env().await?;
    let mut settings = NotifierSettings::default();
    if let Some(concurrency) = std::env::var("NOTIFIER_CONCURRENCY")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| (1..=100).contains(n))
    {
        settings.concurrency = concurrency;
    }
    let notifier = services.notifier(settings);
    let notifier = &notifier;
    run(service_fn(move |event| handle(notifier, event))).await
}
