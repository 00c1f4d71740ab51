//! The incident store on moto: one open incident per alert key without transactions,
//! out-of-order events, and repair of a pair of writes that stopped half-way.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{TestStack, alert_body};
use serde_json::json;
use shared::domain::incident::{AlertEvent, IncidentStatus};
use shared::store::AlertApplied;

const NOW: &str = "2026-11-24T08:00:00Z";

fn event(integration_id: &str, key: &str, status: &str, at: &str) -> (AlertEvent, i64) {
    let body = alert_body(integration_id, key, status, at, json!({}));
    let event: AlertEvent = serde_json::from_str(&body).expect("alert event");
    let ms = event.occurred_ms(0);
    (event, ms)
}

async fn apply(stack: &TestStack, event: &(AlertEvent, i64)) -> AlertApplied {
    stack
        .services
        .store
        .apply_alert(
            &event.0,
            event.1,
            NOW,
            || uuid::Uuid::new_v4().simple().to_string(),
            None,
        )
        .await
        .expect("apply_alert")
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.into())
}

#[tokio::test]
async fn a_resolve_seen_first_keeps_an_older_firing_event_stale() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let resolved = event(&id, "disk", "resolved", "2026-11-24T07:10:00Z");
    assert_eq!(apply(&stack, &resolved).await, AlertApplied::NothingOpen);
    assert_eq!(apply(&stack, &resolved).await, AlertApplied::NothingOpen);
    let older = event(&id, "disk", "firing", "2026-11-24T07:00:00Z");
    assert_eq!(apply(&stack, &older).await, AlertApplied::Stale);
    let newer = event(&id, "disk", "firing", "2026-11-24T07:20:00Z");
    assert!(matches!(
        apply(&stack, &newer).await,
        AlertApplied::Opened(_)
    ));
}

#[tokio::test]
async fn concurrent_firing_events_open_one_incident() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let events: Vec<_> = (0..6)
        .map(|i| event(&id, "cpu", "firing", &format!("2026-11-24T07:00:0{i}Z")))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for (event, ms) in events {
        let store = stack.services.store.clone();
        tasks.spawn(async move {
            store
                .apply_alert(
                    &event,
                    ms,
                    NOW,
                    || uuid::Uuid::new_v4().simple().to_string(),
                    None,
                )
                .await
                .expect("apply_alert")
        });
    }
    let results = tasks.join_all().await;
    let opened = results
        .iter()
        .filter(|r| matches!(r, AlertApplied::Opened(_)))
        .count();
    assert_eq!(opened, 1, "{results:?}");
    let incidents = stack
        .services
        .store
        .list_incidents(&id)
        .await
        .expect("list");
    assert_eq!(incidents.len(), 1);
}

#[tokio::test]
async fn an_open_pointer_without_its_incident_is_repaired_by_the_next_event() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    // An opener stopped after the pointer and before the incident.
    stack
        .dynamodb
        .put_item()
        .table_name(stack.services.store.table())
        .item("pk", s(&format!("INT#{id}")))
        .item("sk", s("ALERTKEY#mem"))
        .item("incident_id", s("halfopened0001"))
        .item("state", s("open"))
        .item("event_ms", AttributeValue::N("1795503600000".into()))
        .send()
        .await
        .expect("pointer");
    let firing = event(&id, "mem", "firing", "2026-11-24T07:00:00Z");
    let AlertApplied::Opened(incident) = apply(&stack, &firing).await else {
        panic!("the repaired incident should count as opened (so it is delivered)");
    };
    assert_eq!(incident.id, "halfopened0001");
    let resolved = event(&id, "mem", "resolved", "2026-11-24T07:05:00Z");
    assert!(
        matches!(apply(&stack, &resolved).await, AlertApplied::Resolved(i) if i.id == "halfopened0001")
    );
}

#[tokio::test]
async fn a_resolve_stopped_before_its_pointer_moved_is_finished_by_the_next_event() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let firing = event(&id, "net", "firing", "2026-11-24T07:00:00Z");
    let AlertApplied::Opened(open) = apply(&stack, &firing).await else {
        panic!("not opened");
    };
    // The incident was written resolved, the pointer still says open.
    let mut done = open.clone();
    done.status = IncidentStatus::Resolved;
    done.version += 1;
    stack
        .services
        .store
        .replace_incident(&done, open.version)
        .await
        .expect("resolve the incident only");
    let again = event(&id, "net", "resolved", "2026-11-24T07:05:00Z");
    assert!(
        matches!(apply(&stack, &again).await, AlertApplied::AlreadyResolved(i) if i.id == open.id)
    );
    let refire = event(&id, "net", "firing", "2026-11-24T07:10:00Z");
    let AlertApplied::Opened(next) = apply(&stack, &refire).await else {
        panic!("a newer firing event opens a new incident");
    };
    assert_ne!(next.id, open.id);
}
