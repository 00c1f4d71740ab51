//! The notifier's CloudWatch metrics that the template's alarms and dashboard read
//! (moto + the DingTalk sandbox): `Deliveries` per delivered message, `Escalations`
//! per escalated layer, `SweepFailures` per failed sweep.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use integration_tests::{TestStack, alert_body};
use serde_json::json;
use shared::clock::FixedClock;
use shared::infra::metrics::RecordedMetrics;
use shared::services::notifier::{Notifier, NotifierParts, NotifierSettings, NotifierStores};
use shared::store::Store;

const GROUP_A: &str = "cidMetricsA0000000000001==";
const GROUP_B: &str = "cidMetricsB0000000000002==";

/// A notifier of `stack` on `store`, reporting to `metrics`.
fn notifier_on(stack: &TestStack, store: Store, metrics: Arc<RecordedMetrics>) -> Notifier {
    let services = &stack.services;
    let parts = NotifierParts {
        dingtalk: services.dingtalk.clone(),
        clock: services.clock.clone(),
        metrics,
        public_base_url: None,
        jobs: Some(services.job_queue()),
        outbound: services.outbound_policy(),
    };
    Notifier::new(
        NotifierStores::on(store),
        parts,
        NotifierSettings::default(),
    )
}

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(30)
}

#[tokio::test]
async fn deliveries_escalations_and_sweep_failures_are_counted() {
    // On a whole second: the governor starts no call in a second's last 100 ms.
    let clock = FixedClock::at_ms(integration_tests::now_ms() / 1000 * 1000);
    let stack = TestStack::start_with_clock(Arc::new(clock.clone())).await;
    let id = stack.create_integration().await;
    stack.install_chat(&id, GROUP_A, "Payments L1").await;
    stack.install_chat(&id, GROUP_B, "Payments L2").await;
    let (status, policy) = stack
        .admin(
            "POST",
            &format!("/api/integrations/{id}/escalation-policies"),
            Some(json!({"name": "payments", "layers": [
                {"targets": {"chats": [GROUP_A]}, "escalate_after_secs": 60},
                {"targets": {"chats": [GROUP_B]}, "escalate_after_secs": 120}]})),
        )
        .await;
    assert_eq!(status, 201, "{policy}");
    let (status, routes) = stack
        .admin(
            "PUT",
            &format!("/api/integrations/{id}/routes"),
            Some(json!([{"name": "payments", "matchers": ["service=payments"], "policy": "payments"}])),
        )
        .await;
    assert_eq!(status, 200, "{routes}");

    let metrics = Arc::new(RecordedMetrics::default());
    let notifier = notifier_on(&stack, stack.services.store.clone(), metrics.clone());
    let mut record = SqsMessage::default();
    record.message_id = Some("m1".into());
    record.body = Some(alert_body(
        &id,
        "payments-latency",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({}),
    ));
    let mut batch = SqsEvent::default();
    batch.records.push(record);
    let answer = notifier.handle_batch(batch, deadline()).await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(metrics.total("Deliveries"), 1.0, "{:?}", metrics.all());
    assert_eq!(metrics.total("Escalations"), 0.0);

    // Nobody acknowledged within 60 s: the sweep escalates to layer 2 (group B).
    clock.advance_ms(61_000);
    let report = notifier.sweep(deadline()).await.expect("sweep");
    assert_eq!(report.failed, 0);
    assert_eq!(metrics.total("Escalations"), 1.0, "{:?}", metrics.all());
    assert_eq!(metrics.total("Deliveries"), 2.0, "{:?}", metrics.all());
    assert!(
        metrics
            .all()
            .iter()
            .filter(|m| m.name != "SweepFailures")
            .all(|m| m.integration_id == id)
    );
    assert_eq!(metrics.total("SweepFailures"), 0.0);

    // A sweep that cannot read its table fails as a whole: one failure, of no
    // integration (only the aggregate metric).
    let failures = Arc::new(RecordedMetrics::default());
    let broken = Store::new(stack.dynamodb.clone(), "no-such-table");
    let broken = notifier_on(&stack, broken, failures.clone());
    assert!(broken.sweep(deadline()).await.is_err());
    let failed: Vec<_> = failures
        .all()
        .into_iter()
        .filter(|m| m.name == "SweepFailures")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].integration_id, "");
}
