//! Acceptance of the notifier: alerts on SQS become DingTalk messages for group chats
//! and people, none lost, none doubled (moto + the DingTalk sandbox).

use integration_tests::{TestStack, alert_body, record_of};
use local_stack::sandbox::{Fault, MessageTarget};
use serde_json::{Value, json};

const CID: &str = "cidPayments000000000001==";
const GROUP: &str = "支付告警群";
const SEND: &str = "/v1.0/robot/groupMessages/send";
const BATCH: &str = "/v1.0/robot/oToMessages/batchSend";

async fn setup() -> (TestStack, String) {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    stack.install_chat(&id, CID, GROUP).await;
    stack
        .add_member(&id, "alice@example.com", "Alice", Some("alice0001"))
        .await;
    (stack, id)
}

fn group_messages(stack: &TestStack) -> Vec<local_stack::sandbox::RobotMessage> {
    stack
        .sandbox
        .messages()
        .into_iter()
        .filter(|m| m.target == MessageTarget::Group(CID.into()))
        .collect()
}

fn user_messages(stack: &TestStack, user: &str) -> Vec<local_stack::sandbox::RobotMessage> {
    stack
        .sandbox
        .messages()
        .into_iter()
        .filter(|m| m.target == MessageTarget::User(user.into()))
        .collect()
}

fn kinds(detail: &Value) -> Vec<String> {
    detail["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["kind"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn alert_reaches_the_group_and_the_bound_person() {
    let (stack, id) = setup().await;
    let body = alert_body(
        &id,
        "payments-latency",
        "firing",
        "2026-11-24T01:02:03Z",
        json!({"chats": [CID], "members": ["alice@example.com"]}),
    );
    assert!(stack.deliver(&[("m1", body)]).await.is_empty());

    let group = group_messages(&stack);
    assert_eq!(group.len(), 1);
    assert_eq!(group[0].msg_key, "sampleActionCard4");
    let text = group[0].msg_param["text"].as_str().expect("text");
    assert!(
        text.contains("FIRING")
            && text.contains("payments-latency is failing")
            && text.contains("@Alice"),
        "{text}"
    );
    assert!(
        text.contains("2026-11-24 09:02 CST"),
        "times in Asia/Shanghai: {text}"
    );
    assert!(
        group[0].msg_param["actionURL1"]
            .as_str()
            .expect("url")
            .starts_with("dingtalk://dingtalkclient/page/link?url=")
    );
    assert_eq!(user_messages(&stack, "alice0001").len(), 1);

    let detail = stack.incident_by_key(&id, "payments-latency").await;
    assert_eq!(detail["status"], "triggered");
    assert_eq!(kinds(&detail), ["opened", "sent", "sent"]);
}

#[tokio::test]
async fn unbound_members_and_missing_groups_get_records_not_messages() {
    let (stack, id) = setup().await;
    stack.add_member(&id, "bob@example.com", "Bob", None).await;
    let targets = json!({"chats": ["cidNotInstalled==", GROUP], "members": ["bob@example.com", "nobody@example.com"]});
    assert!(
        stack
            .deliver(&[(
                "m1",
                alert_body(&id, "k1", "firing", "2026-11-24T01:00:00Z", targets)
            )])
            .await
            .is_empty()
    );
    assert_eq!(
        group_messages(&stack).len(),
        1,
        "the group named by its exact title gets the alert"
    );
    assert_eq!(
        stack.sandbox.call_count(BATCH),
        0,
        "nobody bound: no 1:1 call"
    );
    let detail = stack.incident_by_key(&id, "k1").await;
    let find = |kind: &str| record_of(&detail, kind);
    assert!(
        find("not_associated")["detail"]
            .as_str()
            .expect("detail")
            .contains("open the app once in DingTalk")
    );
    assert_eq!(find("not_associated")["target"], "bob@example.com");
    assert!(
        find("not_installed")["detail"]
            .as_str()
            .expect("detail")
            .contains("cool app not installed in this group")
    );
    assert_eq!(find("unknown_target")["target"], "nobody@example.com");
}

#[tokio::test]
async fn the_same_message_twice_sends_once() {
    let (stack, id) = setup().await;
    let body = alert_body(
        &id,
        "dup",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"chats": [CID], "members": ["alice@example.com"]}),
    );
    assert!(stack.deliver(&[("m1", body.clone())]).await.is_empty());
    assert!(
        stack.deliver(&[("m1", body.clone())]).await.is_empty(),
        "SQS redelivery"
    );
    assert!(
        stack.deliver(&[("m2", body)]).await.is_empty(),
        "the producer sent the event twice"
    );
    assert_eq!(group_messages(&stack).len(), 1);
    assert_eq!(user_messages(&stack, "alice0001").len(), 1);
    assert_eq!(
        kinds(&stack.incident_by_key(&id, "dup").await),
        ["opened", "sent", "sent"]
    );
}

#[tokio::test]
async fn resolved_sends_one_follow_up_and_older_events_do_not_reopen() {
    let (stack, id) = setup().await;
    let targets = json!({"chats": [CID], "members": ["alice@example.com"]});
    let firing = alert_body(&id, "r", "firing", "2026-11-24T01:00:00Z", targets.clone());
    let resolved = alert_body(
        &id,
        "r",
        "resolved",
        "2026-11-24T01:10:00Z",
        targets.clone(),
    );
    assert!(stack.deliver(&[("f", firing.clone())]).await.is_empty());
    assert!(stack.deliver(&[("r", resolved.clone())]).await.is_empty());
    assert!(
        stack.deliver(&[("r", resolved)]).await.is_empty(),
        "redelivered resolve"
    );
    assert!(
        stack.deliver(&[("f", firing)]).await.is_empty(),
        "an older firing arriving late"
    );
    let late_update = alert_body(&id, "r", "firing", "2026-11-24T01:05:00Z", targets);
    assert!(stack.deliver(&[("f2", late_update)]).await.is_empty());

    let group = group_messages(&stack);
    assert_eq!(group.len(), 2, "alert + one resolved follow-up");
    assert_eq!(group[1].msg_key, "sampleMarkdown");
    assert!(
        group[1].msg_param["text"]
            .as_str()
            .expect("text")
            .contains("RESOLVED")
    );
    assert_eq!(user_messages(&stack, "alice0001").len(), 2);
    let detail = stack.incident_by_key(&id, "r").await;
    assert_eq!(detail["status"], "resolved");
    assert_eq!(detail["resolved_by"], "source");
    let (_, all) = stack
        .admin(
            "GET",
            &format!("/api/integrations/{id}/incidents?key=r"),
            None,
        )
        .await;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "nothing reopened");

    // A firing event newer than the resolution opens a new incident.
    let again = alert_body(
        &id,
        "r",
        "firing",
        "2026-11-24T02:00:00Z",
        json!({"chats": [CID]}),
    );
    assert!(stack.deliver(&[("f3", again)]).await.is_empty());
    let (_, all) = stack
        .admin(
            "GET",
            &format!("/api/integrations/{id}/incidents?key=r&status=triggered"),
            None,
        )
        .await;
    assert_eq!(all.as_array().map(Vec::len), Some(1));
    assert_eq!(group_messages(&stack).len(), 3);
}

#[tokio::test]
async fn an_invalid_token_mid_run_is_refreshed_and_delivery_goes_on() {
    let (stack, id) = setup().await;
    let targets = json!({"chats": [CID]});
    assert!(
        stack
            .deliver(&[(
                "a",
                alert_body(&id, "t1", "firing", "2026-11-24T01:00:00Z", targets.clone())
            )])
            .await
            .is_empty()
    );
    stack.sandbox.revoke_tokens();
    assert!(
        stack
            .deliver(&[(
                "b",
                alert_body(&id, "t2", "firing", "2026-11-24T01:00:00Z", targets)
            )])
            .await
            .is_empty()
    );
    assert_eq!(group_messages(&stack).len(), 2);
    assert_eq!(stack.sandbox.call_count("/v1.0/oauth2/accessToken"), 2);
}

#[tokio::test]
async fn qps_limited_answers_are_waited_out_and_everything_is_delivered() {
    let (stack, id) = setup().await;
    for _ in 0..2 {
        stack.sandbox.inject(Fault::qps_limited(SEND));
    }
    let body = alert_body(
        &id,
        "q",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"chats": [CID]}),
    );
    assert!(
        stack.deliver(&[("q", body)]).await.is_empty(),
        "waited within the budget"
    );
    assert_eq!(group_messages(&stack).len(), 1);

    // Over the time budget: the record fails and a later delivery sends it.
    for _ in 0..20 {
        stack.sandbox.inject(Fault::qps_limited(SEND));
    }
    let body = alert_body(
        &id,
        "q2",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"chats": [CID]}),
    );
    let failed = stack
        .deliver_with_budget(
            &[("q2", body.clone())],
            std::time::Duration::from_millis(800),
        )
        .await;
    assert_eq!(failed.batch_item_failures.len(), 1);
    assert_eq!(group_messages(&stack).len(), 1);
    while stack.sandbox.calls().len() < 1_000
        && stack.deliver(&[("q2", body.clone())]).await.len() == 1
    {}
    assert_eq!(
        group_messages(&stack).len(),
        2,
        "delivered after the throttling passed"
    );
}

#[tokio::test]
async fn quota_exhausted_is_recorded_without_a_retry_storm() {
    let (stack, id) = setup().await;
    stack.sandbox.inject(Fault::quota_exhausted(SEND));
    let body = alert_body(
        &id,
        "quota",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"chats": [CID]}),
    );
    assert!(
        stack.deliver(&[("m", body.clone())]).await.is_empty(),
        "not retried by SQS"
    );
    assert!(stack.deliver(&[("m", body)]).await.is_empty());
    assert_eq!(stack.sandbox.call_count(SEND), 1, "one attempt, no storm");
    assert!(group_messages(&stack).is_empty());
    let detail = stack.incident_by_key(&id, "quota").await;
    let record = record_of(&detail, "quota_exhausted");
    assert!(
        record["detail"]
            .as_str()
            .expect("detail")
            .contains("resumes on the 1st")
    );
}

#[tokio::test]
async fn a_disbanded_group_is_recorded_and_marked() {
    let (stack, id) = setup().await;
    stack
        .sandbox
        .inject(Fault::new_api(SEND, 400, "group.disbanded", "群已解散"));
    let body = alert_body(
        &id,
        "gone",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"chats": [CID]}),
    );
    assert!(stack.deliver(&[("m", body)]).await.is_empty());
    let (_, chats) = stack
        .admin("GET", &format!("/api/integrations/{id}/chats"), None)
        .await;
    assert!(
        chats[0]["problem"]
            .as_str()
            .is_some_and(|p| p.contains("group.disbanded")),
        "{chats}"
    );
    assert!(kinds(&stack.incident_by_key(&id, "gone").await).contains(&"failed".to_string()));
}

#[tokio::test]
async fn a_poison_message_fails_only_itself() {
    let (stack, id) = setup().await;
    let good = alert_body(
        &id,
        "fine",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"chats": [CID]}),
    );
    let v2 = good.replace("\"version\":1", "\"version\":2");
    let unknown = alert_body(
        "no-such-integration",
        "x",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({}),
    );
    let failed = stack
        .deliver(&[
            ("bad-json", "{not json".into()),
            ("good", good),
            ("v2", v2),
            ("unknown", unknown),
            ("empty", String::new()),
        ])
        .await;
    assert_eq!(failed, ["bad-json", "v2", "unknown", "empty"]);
    assert_eq!(group_messages(&stack).len(), 1);
}

#[tokio::test]
async fn interactive_cards_are_delivered_and_updated_in_place() {
    let (stack, id) = setup().await;
    let (status, _) = stack
        .admin(
            "PATCH",
            &format!("/api/integrations/{id}"),
            Some(json!({"card_template_id": "tpl-incident.schema"})),
        )
        .await;
    assert_eq!(status, 200);
    let targets = json!({"chats": [CID], "members": ["alice@example.com"]});
    assert!(
        stack
            .deliver(&[(
                "f",
                alert_body(
                    &id,
                    "card",
                    "firing",
                    "2026-11-24T01:00:00Z",
                    targets.clone()
                )
            )])
            .await
            .is_empty()
    );
    let cards = stack.sandbox.cards();
    assert_eq!(
        cards.len(),
        2,
        "one card in the group, one in Alice's 1:1 chat"
    );
    assert!(
        cards
            .iter()
            .any(|c| c.spaces == [format!("dtv1.card//IM_GROUP.{CID}")])
    );
    assert!(
        cards
            .iter()
            .any(|c| c.spaces == ["dtv1.card//IM_ROBOT.alice0001"])
    );
    assert_eq!(cards[0].card_data["status"], "firing");
    assert!(
        cards
            .iter()
            .all(|c| c.callback_route_key.as_deref() == Some(format!("dtinc-{id}").as_str()))
    );

    assert!(
        stack
            .deliver(&[(
                "r",
                alert_body(
                    &id,
                    "card",
                    "resolved",
                    "2026-11-24T01:30:00Z",
                    targets.clone()
                )
            )])
            .await
            .is_empty()
    );
    assert!(
        stack
            .deliver(&[(
                "r",
                alert_body(&id, "card", "resolved", "2026-11-24T01:30:00Z", targets)
            )])
            .await
            .is_empty()
    );
    let cards = stack.sandbox.cards();
    assert!(
        cards
            .iter()
            .all(|c| c.card_data["status"] == "resolved" && c.updates == 1),
        "each card updated once: {cards:?}"
    );
    assert!(
        stack.sandbox.messages().is_empty(),
        "cards replace robot messages"
    );
}
