//! Typed queue jobs as producers may write them: a webhook job with `"attempt": 0`
//! (once a panic) is handled as attempt 1 and re-queued as attempt 2, and a job
//! with an unknown type or missing fields fails with a reason (to the DLQ).

use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::TestStack;
use serde_json::json;

/// A webhook receiver on loopback that always answers 500.
async fn failing_webhook() -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down") }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_webhook_job_with_attempt_zero_is_retried_not_a_panic() {
    let stack = TestStack::start().await;
    let mut payload = stack.create_payload();
    payload["webhook_url"] = json!(failing_webhook().await);
    let (status, created) = stack
        .admin("POST", "/api/integrations", Some(payload))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let job = json!({"type": "webhook", "integration_id": id, "incident_id": "inc-zero",
                     "attempt": 0, "event": {"type": "incident.acknowledged"}});
    let failed = stack.deliver(&[("m1", job.to_string())]).await;
    assert!(
        failed.is_empty(),
        "the failed attempt is re-queued, not retried by SQS"
    );
    let records = stack
        .services
        .store
        .list_records("inc-zero")
        .await
        .expect("records");
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].detail,
        "webhook attempt 1 failed: refused by the receiver"
    );
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let delayed = sqs
        .get_queue_attributes()
        .queue_url(&stack.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    assert_eq!(
        delayed
            .get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .map(String::as_str),
        Some("1"),
        "attempt 2 waits its delay"
    );
}

#[tokio::test]
async fn unknown_and_malformed_jobs_fail_with_a_reason() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let bodies = [
        ("unknown", json!({"type": "explode", "integration_id": id})),
        (
            "no-incident",
            json!({"type": "webhook", "integration_id": id, "event": {}}),
        ),
        ("not-a-string-type", json!({"type": 7})),
        (
            "unknown-integration",
            json!({"type": "link_prompt", "integration_id": "nope", "user_id": "u"}),
        ),
    ];
    for (name, body) in bodies {
        let failed = stack.deliver(&[(name, body.to_string())]).await;
        assert_eq!(
            failed,
            [name],
            "{name} fails (and reaches the DLQ after the redrive count)"
        );
    }
}

/// A record that failed with something that may pass (DingTalk unreachable) comes
/// back within seconds, although the queue's visibility timeout is 180 s.
#[tokio::test]
async fn a_transient_failure_is_retried_in_seconds_not_after_the_visibility_timeout() {
    use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    use shared::dingtalk::DingTalkClient;
    use std::time::Duration;

    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    stack.install_chat(&id, "cidRetry==", "Ops").await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    sqs.set_queue_attributes()
        .queue_url(&stack.queue_url)
        .attributes(QueueAttributeName::VisibilityTimeout, "180")
        .send()
        .await
        .expect("visibility");
    // The same services, but DingTalk cannot be reached.
    let mut down = stack.services.clone();
    down.dingtalk = DingTalkClient::new(
        DingTalkClient::http_client(),
        "http://127.0.0.1:1",
        "http://127.0.0.1:1",
        down.store.clone(),
        down.clock.clone(),
    );
    let mut settings = shared::services::notifier::NotifierSettings::default();
    settings.retry.base = Duration::from_secs(1);
    let notifier = down.notifier(settings);
    let body = integration_tests::alert_body(
        &id,
        "retry-soon",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"chats": ["cidRetry=="]}),
    );
    sqs.send_message()
        .queue_url(&stack.queue_url)
        .message_body(body)
        .send()
        .await
        .expect("send");
    let receive = || async {
        sqs.receive_message()
            .queue_url(&stack.queue_url)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    };
    let first = receive().await.pop().expect("the alert");
    let mut record = SqsMessage::default();
    record.message_id = first.message_id.clone();
    record.receipt_handle = first.receipt_handle.clone();
    record.body = first.body.clone();
    record
        .attributes
        .insert("ApproximateReceiveCount".into(), "1".into());
    let mut event = SqsEvent::default();
    event.records.push(record);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let failures = notifier
        .handle_batch(event, deadline)
        .await
        .batch_item_failures;
    assert_eq!(
        failures.len(),
        1,
        "DingTalk unreachable: the record fails for a retry"
    );
    let mut again = None;
    for _ in 0..8 {
        if let Some(message) = receive().await.pop() {
            again = Some(message);
            break;
        }
    }
    let again = again.expect("back within seconds, not after 180 s");
    assert_eq!(again.message_id, first.message_id);
}

/// Records of one key keep their order while other keys run concurrently: a firing
/// and then a resolved event with no source time (so only the order decides) end
/// resolved, and every other key of the batch is delivered.
#[tokio::test]
async fn order_within_a_key_is_kept_under_concurrency() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    stack.install_chat(&id, "cidOrder==", "Ops").await;
    let event = |key: &str, status: &str| {
        json!({"version": 1, "integration_id": id,
               "alert": {"key": key, "status": status, "severity": "warning", "title": format!("{key} down")},
               "targets": {"chats": ["cidOrder=="]}})
        .to_string()
    };
    let mut records = Vec::new();
    for n in 0..8 {
        records.push((format!("other-{n}"), event(&format!("other-{n}"), "firing")));
        if n == 2 {
            records.push(("ordered-1".to_string(), event("ordered", "firing")));
        }
        if n == 5 {
            records.push(("ordered-2".to_string(), event("ordered", "resolved")));
        }
    }
    let refs: Vec<(&str, String)> = records
        .iter()
        .map(|(i, b)| (i.as_str(), b.clone()))
        .collect();
    assert!(stack.deliver(&refs).await.is_empty());
    let detail = stack.incident_by_key(&id, "ordered").await;
    assert_eq!(detail["status"], "resolved", "{detail}");
    for n in 0..8 {
        let other = stack.incident_by_key(&id, &format!("other-{n}")).await;
        assert_eq!(other["status"], "triggered");
    }
}
