//! Store work per delivered alert, counted by an SDK interceptor on the real
//! DynamoDB client (moto), not estimated: at most 5 per delivered alert.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use integration_tests::{TestStack, alert_body};
use serde_json::json;
use shared::infra::store_requests::StoreRequestCounter;
use shared::services::notifier::NotifierSettings;
use shared::{Services, SystemClock};

const CID: &str = "cidStoreWork0000000000001==";

#[tokio::test]
async fn store_requests_per_delivered_alert_are_counted() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    // Every alert delivered as a card (storm control would fold most of them), under
    // a per-second limit the test does not reach (waits would add slot requests).
    let (status, body) = stack
        .admin(
            "PATCH",
            &format!("/api/integrations/{id}"),
            Some(json!({"storm_threshold": 1000, "qps_limit": 60, "card_template_id": "tpl-incident.schema"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    stack.install_chat(&id, CID, "Ops").await;
    let counter = StoreRequestCounter::default();
    let notifier = Services::counted(
        stack.services.config.clone(),
        &stack.sdk,
        Arc::new(SystemClock),
        counter.clone(),
    )
    .notifier(NotifierSettings::default());
    let batch = |from: usize| {
        let mut event = SqsEvent::default();
        for i in from..from + 10 {
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some(alert_body(
                &id,
                &format!("work{i}"),
                "firing",
                "2026-11-24T01:00:00Z",
                json!({"chats": [CID]}),
            ));
            event.records.push(record);
        }
        event
    };
    let deadline = || tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    // The first batch warms the token cache; the next three are measured.
    assert!(
        notifier
            .handle_batch(batch(0), deadline())
            .await
            .batch_item_failures
            .is_empty()
    );
    counter.reset();
    for from in [10, 20, 30] {
        let answer = notifier.handle_batch(batch(from), deadline()).await;
        assert!(answer.batch_item_failures.is_empty());
    }
    let per_alert = counter.total() as f64 / 30.0;
    println!(
        "store requests per delivered alert: {per_alert:.2} {:?}\n{:#?}",
        counter.by_operation(),
        counter.by_item_kind()
    );
    // Was about 15 (GetItem 3, PutItem 5, UpdateItem 6, Query 0.8); the goal is at
    // most 5: one transaction opens the incident, two writes claim and settle the
    // delivery, one counts the group's storm window, and the rest is shared by the
    // batch (reads, per-second slots, month counters, records).
    assert!(per_alert <= 5.0, "{per_alert} {:?}", counter.by_operation());
}
