//! Mentions in robot messages (ARCHITECTURE.md §12): `atMobiles` and `@<mobile>` are
//! looked up in DingTalk (the sandbox's `getbymobile`) and page the people they
//! belong to; misses and refusals are recorded, and the alert goes out regardless.

use super::*;
use local_stack::sandbox::{Fault, MessageTarget, SandboxUser};

/// DingTalk's lookup of a person by mobile.
const LOOKUPS: &str = "/topapi/v2/user/getbymobile";

/// Gives a sandbox person a mobile (and so a DingTalk account `getbymobile` finds).
fn with_mobile(stack: &TestStack, user_id: &str, name: &str, mobile: &str) {
    stack.sandbox.add_user(SandboxUser {
        user_id: user_id.into(),
        union_id: format!("union-{user_id}"),
        name: name.into(),
        email: None,
        mobile: Some(mobile.into()),
    });
}

#[tokio::test]
async fn robot_mobiles_reach_the_people_they_belong_to() {
    let stack = TestStack::start().await;
    let (id, token) = ops_integration(&stack).await;
    let bob = "bob@example.com";
    stack.add_member(&id, bob, "Bob", Some("user-bob")).await;
    with_mobile(&stack, "user-bob", "Bob", "13800000002");
    with_mobile(&stack, "user-erin", "Erin", "13800000005");

    // Bob (bound), Erin (in the organisation, not bound), and a stranger's mobile.
    let firing = json!({"msgtype": "text", "text": {"content": "【告警】磁盘满 db-2 @13800000002"},
        "at": {"atMobiles": ["13800000005", "13900000009"]}});
    assert_eq!(
        send(&stack, &id, &signed(&token, now_ms()), &firing).await,
        (200, ok())
    );
    let queued = deliver_all(&stack).await;
    assert_eq!(
        queued[0]["mention_mobiles"],
        json!(["13800000005", "13900000009", "13800000002"])
    );
    let key = queued[0]["alert"]["key"].as_str().expect("key").to_string();
    let detail = stack.incident_by_key(&id, &key).await;
    assert_eq!(detail["assignees"], json!([bob]), "{detail}");
    let records = detail["records"].as_array().expect("records");
    let unknown = |target: &str| {
        records
            .iter()
            .any(|r| r["kind"] == "unknown_target" && r["target"] == target)
    };
    assert!(unknown("139****0009"), "nobody has it: {records:?}");
    assert!(
        unknown("user-erin"),
        "found but not associated: {records:?}"
    );
    let to_bob = stack
        .sandbox
        .messages()
        .into_iter()
        .filter(|m| m.target == MessageTarget::User("user-bob".into()));
    assert_eq!(to_bob.count(), 1, "Bob is paged 1:1");
    let stored = detail.to_string();
    assert!(!stored.contains("mention_mobiles"), "not stored");
    assert!(
        !stored.contains("13800000002") && stored.contains("@138****0002"),
        "the text keeps the mention masked: {stored}"
    );
    assert_eq!(stack.sandbox.call_count(LOOKUPS), 3);

    // A repeat is answered from the cache.
    assert_eq!(
        send(&stack, &id, &signed(&token, now_ms()), &firing).await,
        (200, ok())
    );
    deliver_all(&stack).await;
    assert_eq!(stack.sandbox.call_count(LOOKUPS), 3, "cached");
}

#[tokio::test]
async fn a_refused_mobile_lookup_is_recorded_and_the_alert_still_goes_out() {
    let stack = TestStack::start().await;
    let (id, token) = ops_integration(&stack).await;
    // DingTalk refuses: the app lacks the permission.
    stack.sandbox.inject(Fault {
        path: LOOKUPS.into(),
        status: 200,
        body: json!({"errcode": 60011, "errmsg": "应用尚未开通所需的权限：[qyapi_get_member_by_mobile]"}),
    });
    let other = json!({"msgtype": "text", "text": {"content": "【告警】网关 502 @13800000007"}});
    assert_eq!(
        send(&stack, &id, &signed(&token, now_ms()), &other).await,
        (200, ok())
    );
    let queued = deliver_all(&stack).await;
    let key = queued[0]["alert"]["key"].as_str().expect("key").to_string();
    let detail = stack.incident_by_key(&id, &key).await;
    let failed = record_of(&detail, "failed");
    assert_eq!(failed["target"], "138****0007");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("qyapi_get_member_by_mobile")),
        "{failed}"
    );
    assert_eq!(
        record_of(&detail, "sent")["target"],
        "运维告警群",
        "{detail}"
    );
}

/// Not mentions, but the compatible routes' other refusal: a method other than POST
/// (API Gateway routes only POST here; the handler answers in the peer's shape anyway).
#[tokio::test]
async fn other_methods_are_refused_in_the_peers_shape() {
    let stack = TestStack::start().await;
    let (id, _) = integration(&stack, stack.create_payload()).await;
    let get = |path: String| {
        let ingest = &stack.ingest;
        async move { read(ingest.handle(request("GET", &path, &[], None)).await) }
    };
    let (status, robot) = get(format!("/api/integrations/{id}/robot/send")).await;
    assert_eq!(
        (status, &robot["errcode"]),
        (405, &json!(300_001)),
        "{robot}"
    );
    let (status, pd) = get(format!("/api/integrations/{id}/pagerduty/v2/enqueue")).await;
    assert_eq!(
        (status, &pd["status"]),
        (405, &json!("invalid event")),
        "{pd}"
    );
    nothing_happened(&stack, &id).await;
}
