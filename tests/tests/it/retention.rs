//! Retention (issue #19 item 4), on moto: the integration's `retention_days`, the
//! `expires_at` TTL written on resolved incidents, their records and deliveries,
//! and reads that treat an expired incident as gone (moto, like DynamoDB for days,
//! keeps the item).

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::{TestStack, alert_body};
use serde_json::{Value, json};
use shared::Clock;
use shared::clock::FixedClock;
use shared::services::incident_actions::{Action, ActionError};

const DAY_MS: i64 = 86_400_000;

async fn stack_at(clock: &FixedClock) -> TestStack {
    TestStack::start_with_clock(Arc::new(clock.clone())).await
}

/// The `expires_at` attributes of the items in an incident's partition, by sort key.
async fn expiries(stack: &TestStack, incident_id: &str) -> Vec<(String, Option<i64>)> {
    let out = stack
        .dynamodb
        .query()
        .table_name(stack.services.store.table())
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("INC#{incident_id}")))
        .send()
        .await
        .expect("query");
    out.items()
        .iter()
        .map(|item| {
            let sk = item["sk"].as_s().expect("sk").clone();
            let at = item
                .get("expires_at")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok());
            (sk, at)
        })
        .collect()
}

/// The keys of an incident list, sorted.
fn listed(list: &Value) -> Vec<String> {
    let mut keys: Vec<String> = list
        .as_array()
        .expect("a list")
        .iter()
        .map(|i| i["key"].as_str().expect("key").to_string())
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn retention_days_defaults_to_180_and_is_validated_at_create_and_patch() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let (status, view) = stack
        .admin("GET", &format!("/api/integrations/{id}"), None)
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["retention_days"], 180);

    let mut body = stack.create_payload();
    body["retention_days"] = json!(30);
    let (status, created) = stack.admin("POST", "/api/integrations", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["retention_days"], 30);

    let path = format!("/api/integrations/{id}");
    let (status, patched) = stack
        .admin("PATCH", &path, Some(json!({"retention_days": 3650})))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["retention_days"], 3650);

    for bad in [
        json!(0),
        json!(3651),
        json!(-1),
        json!(1.5),
        json!("30"),
        json!(null),
    ] {
        let (status, err) = stack
            .admin("PATCH", &path, Some(json!({"retention_days": bad})))
            .await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert_eq!(err["error"]["code"], "validation_failed");
        assert_eq!(err["error"]["field"], "retention_days", "{err}");
        let mut body = stack.create_payload();
        body["retention_days"] = bad.clone();
        let (status, err) = stack.admin("POST", "/api/integrations", Some(body)).await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert_eq!(err["error"]["field"], "retention_days", "{err}");
    }
    let (_, view) = stack.admin("GET", &path, None).await;
    assert_eq!(view["retention_days"], 3650, "nothing written by a refusal");
}

/// The TTL: the resolved incident at its last update + 7 days, its records at
/// their own time + 7 days; the open incident carries none.
async fn incident_items_expire(
    stack: &TestStack,
    (resolved_id, open_id): (&str, &str),
    start: i64,
    resolved_secs: i64,
) {
    let items = expiries(stack, resolved_id).await;
    for prefix in ["INCIDENT", "REC#", "DELIVERY#"] {
        assert!(
            items.iter().any(|(sk, _)| sk.starts_with(prefix)),
            "{prefix}: {items:?}"
        );
    }
    for (sk, expires_at) in items {
        let expires_at = expires_at.unwrap_or_else(|| panic!("{sk} has no expires_at"));
        if sk == "INCIDENT" {
            assert_eq!(expires_at, resolved_secs + 7 * 86_400, "{sk}");
        } else {
            let week_from_start = (start - 60_000) / 1000 + 7 * 86_400;
            assert!(
                (week_from_start..=resolved_secs + 7 * 86_400 + 60).contains(&expires_at),
                "{sk}: {expires_at}"
            );
        }
    }
    let open_items = expiries(stack, open_id).await;
    assert!(
        open_items.contains(&("INCIDENT".to_string(), None)),
        "{open_items:?}"
    );
    // The alert keys' pointers: the resolved one expires with its incident, the open
    // one never.
}

/// The `expires_at` of alert key `key`'s pointer, if any.
async fn pointer_expiry(stack: &TestStack, id: &str, key: &str) -> Option<i64> {
    let item = stack
        .dynamodb
        .get_item()
        .table_name(stack.services.store.table())
        .key("pk", AttributeValue::S(format!("INT#{id}")))
        .key("sk", AttributeValue::S(format!("ALERTKEY#{key}")))
        .send()
        .await
        .expect("get pointer");
    item.item()
        .expect("pointer")
        .get("expires_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
}

/// Nobody acts on a gone incident or writes to it any more (a note would be a record
/// of a gone incident): the actions answer "not found", as the reads do.
async fn nobody_acts_on_a_gone_incident(stack: &TestStack, id: &str, gone: &str, now: &str) {
    let actions = stack.services.incident_actions();
    let member = shared::domain::member::Member {
        email: "alice@example.com".into(),
        name: "Alice".into(),
        licensed: true,
        created_at: now.into(),
        updated_at: now.into(),
    };
    let noted = actions.add_note(id, gone, &member, "too late").await;
    assert!(matches!(noted, Err(ActionError::NotFound)), "{noted:?}");
    let acted = actions
        .apply(id, gone, &member, Action::Resolve, None)
        .await;
    assert!(matches!(acted, Err(ActionError::NotFound)), "{acted:?}");
}

#[tokio::test]
async fn a_resolved_incident_expires_with_its_records_and_an_open_one_never() {
    let start = integration_tests::now_ms() / 1000 * 1000;
    let clock = FixedClock::at_ms(start);
    let stack = stack_at(&clock).await;
    let id = stack.create_integration().await;
    let path = format!("/api/integrations/{id}");
    let (status, body) = stack
        .admin("PATCH", &path, Some(json!({"retention_days": 7})))
        .await;
    assert_eq!(status, 200, "{body}");

    let cid = "cidRetention0000000001==";
    stack.install_chat(&id, cid, "保留群").await;
    let at = |ms: i64| shared::clock::rfc3339(ms);
    let none = json!({"chats": [cid]});
    stack
        .deliver(&[
            (
                "m1",
                alert_body(
                    &id,
                    "disk-full",
                    "firing",
                    &at(start - 60_000),
                    none.clone(),
                ),
            ),
            (
                "m2",
                alert_body(&id, "db-down", "firing", &at(start - 60_000), none.clone()),
            ),
        ])
        .await;
    clock.advance_ms(DAY_MS);
    let failed = stack
        .deliver(&[(
            "m3",
            alert_body(&id, "db-down", "resolved", &at(start), none.clone()),
        )])
        .await;
    assert!(failed.is_empty(), "{failed:?}");
    let resolved = stack.incident_by_key(&id, "db-down").await;
    let open = stack.incident_by_key(&id, "disk-full").await;
    let resolved_id = resolved["id"].as_str().expect("id").to_string();
    let open_id = open["id"].as_str().expect("id").to_string();
    assert_eq!(resolved["status"], "resolved");

    let resolved_secs = (start + DAY_MS) / 1000;
    incident_items_expire(&stack, (&resolved_id, &open_id), start, resolved_secs).await;
    assert_eq!(
        pointer_expiry(&stack, &id, "db-down").await,
        Some(resolved_secs + 7 * 86_400)
    );
    assert_eq!(pointer_expiry(&stack, &id, "disk-full").await, None);

    let list_path = format!("{path}/incidents");
    let (_, list) = stack.admin("GET", &list_path, None).await;
    assert_eq!(listed(&list), ["db-down", "disk-full"]);

    // Eight days after it resolved, the resolved incident is gone (moto keeps the
    // item, as DynamoDB would for a while); the open one stays.
    clock.advance_ms(8 * DAY_MS);
    let (status, list) = stack.admin("GET", &list_path, None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(listed(&list), ["disk-full"]);
    let (status, _) = stack
        .admin("GET", &format!("{list_path}?status=resolved"), None)
        .await;
    assert_eq!(status, 200);
    let (status, err) = stack
        .admin("GET", &format!("/api/incidents/{resolved_id}"), None)
        .await;
    assert_eq!(status, 404, "{err}");
    let (status, detail) = stack
        .admin("GET", &format!("/api/incidents/{open_id}"), None)
        .await;
    assert_eq!(status, 200, "{detail}");
    assert!(
        !expiries(&stack, &resolved_id).await.is_empty(),
        "the item is still there until DynamoDB deletes it"
    );

    nobody_acts_on_a_gone_incident(&stack, &id, &resolved_id, &at(start)).await;
}

#[tokio::test]
async fn an_item_written_with_a_past_expires_at_reads_as_gone() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let now = shared::clock::rfc3339(integration_tests::now_ms());
    stack
        .deliver(&[("m1", alert_body(&id, "old", "firing", &now, json!({})))])
        .await;
    let incident = stack.incident_by_key(&id, "old").await;
    let incident_id = incident["id"].as_str().expect("id");
    stack
        .dynamodb
        .update_item()
        .table_name(stack.services.store.table())
        .key("pk", AttributeValue::S(format!("INC#{incident_id}")))
        .key("sk", AttributeValue::S("INCIDENT".into()))
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(":past", AttributeValue::N("1000".into()))
        .send()
        .await
        .expect("update");
    let (_, list) = stack
        .admin("GET", &format!("/api/integrations/{id}/incidents"), None)
        .await;
    assert_eq!(list, json!([]));
    let (status, _) = stack
        .admin("GET", &format!("/api/incidents/{incident_id}"), None)
        .await;
    assert_eq!(status, 404);
}

/// A button on the card of an incident past its retention keeps the card and says so
/// privately, in the integration's language; nothing changes.
#[tokio::test]
async fn a_click_on_the_card_of_an_expired_incident_is_told_it_is_gone() {
    let start = integration_tests::now_ms() / 1000 * 1000;
    let clock = FixedClock::at_ms(start);
    let stack = stack_at(&clock).await;
    let id = stack
        .create_card_integration(json!({"retention_days": 1, "locale": "zh-CN"}))
        .await;
    let cid = "cidRetentionCard00000001==";
    stack.install_chat(&id, cid, "保留群").await;
    stack
        .add_member(&id, "alice@example.com", "Alice", Some("alice0001"))
        .await;
    let at = shared::clock::rfc3339(start);
    let targets = json!({"chats": [cid]});
    let firing = alert_body(&id, "gone", "firing", &at, targets.clone());
    assert!(stack.deliver(&[("g1", firing)]).await.is_empty());
    let (_, card) = stack.incident_and_card(&id, "gone").await;
    let resolved = alert_body(&id, "gone", "resolved", &at, targets);
    assert!(stack.deliver(&[("g2", resolved)]).await.is_empty());

    clock.advance_ms(2 * DAY_MS);
    let (status, answer) = stack
        .click_card(
            &id,
            (&card, "alice0001"),
            json!({"action": "ack"}),
            clock.now_ms(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["userPrivateData"]["cardParamMap"]["notice"],
        "该事件已超过保留期，不复存在"
    );
    assert_eq!(answer["cardData"]["cardParamMap"]["status"], "resolved");
}
