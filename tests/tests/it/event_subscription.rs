//! Acceptance: the event subscription end to end through the real handlers,
//! a moto DynamoDB and the DingTalk sandbox.

use integration_tests::{APP, TestStack, now_ms};
use local_stack::sandbox::SandboxGroup;
use local_stack::sandbox::events::{check_url, cool_app_event, title_event};
use serde_json::Value;
use shared::infra::crypto::CallbackCrypto;

const CID: &str = "cidPay0123456789abcdefg==";
const COOL_APP: &str = "COOLAPP-1-10189CA5D6A1212DF0ED000B";

fn add_group(stack: &TestStack, cid: &str, title: &str) {
    stack.sandbox.add_group(SandboxGroup {
        open_conversation_id: cid.into(),
        title: title.into(),
        owner_user_id: "owner01".into(),
        cool_app_code: Some(COOL_APP.into()),
        disbanded: false,
    });
}

fn install(cid: &str, at: i64) -> Value {
    cool_app_event(
        true,
        APP.corp_id,
        cid,
        COOL_APP,
        APP.client_id,
        "user001",
        at,
    )
}

fn uninstall(cid: &str, at: i64) -> Value {
    cool_app_event(
        false,
        APP.corp_id,
        cid,
        COOL_APP,
        APP.client_id,
        "user001",
        at,
    )
}

async fn chats(stack: &TestStack, id: &str) -> Vec<Value> {
    let (status, body) = stack
        .admin("GET", &format!("/api/integrations/{id}/chats"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("array").clone()
}

/// Checks a reply like DingTalk does: signature over our timeStamp/nonce, then decrypt.
fn assert_success_reply(reply: &Value, receiver: &str) {
    let crypto = CallbackCrypto::new(APP.token, APP.aes_key).expect("crypto");
    let field = |name: &str| {
        reply[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {reply}"))
    };
    crypto
        .verify_signature(
            field("msg_signature"),
            field("timeStamp"),
            field("nonce"),
            field("encrypt"),
        )
        .expect("reply signature verifies");
    let plain = crypto
        .decrypt(field("encrypt"), &[receiver])
        .expect("reply decrypts");
    assert_eq!(plain.message, "success");
}

#[tokio::test]
async fn check_url_answers_encrypted_success() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let (status, reply) = stack.post_event(&id, &stack.sign(&check_url())).await;
    assert_eq!(status, 200, "{reply}");
    assert_success_reply(&reply, APP.client_id);
}

#[tokio::test]
async fn legacy_corp_id_receiver_is_accepted_and_echoed() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let event = stack.sign_for(&check_url(), APP.corp_id, now_ms());
    let (status, reply) = stack.post_event(&id, &event).await;
    assert_eq!(status, 200, "{reply}");
    assert_success_reply(&reply, APP.corp_id);
}

#[tokio::test]
async fn install_rename_uninstall_maintain_the_group_chat_list() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    add_group(&stack, CID, "支付告警群");
    let t0 = now_ms() - 5_000;

    let (status, reply) = stack.post_event(&id, &stack.sign(&install(CID, t0))).await;
    assert_eq!(status, 200, "{reply}");
    assert_success_reply(&reply, APP.client_id);
    let list = chats(&stack, &id).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["open_conversation_id"], CID);
    assert_eq!(list[0]["title"], "支付告警群");
    assert_eq!(list[0]["status"], "installed");
    assert!(list[0]["installed_at"].is_string());

    stack.sandbox.rename_group(CID, "支付-生产告警");
    let rename = title_event(APP.corp_id, CID, "支付-生产告警", "user002", t0 + 1_000);
    assert_eq!(stack.post_event(&id, &stack.sign(&rename)).await.0, 200);
    assert_eq!(chats(&stack, &id).await[0]["title"], "支付-生产告警");

    assert_eq!(
        stack
            .post_event(&id, &stack.sign(&uninstall(CID, t0 + 2_000)))
            .await
            .0,
        200
    );
    let list = chats(&stack, &id).await;
    assert_eq!(list.len(), 1, "uninstalled groups are kept");
    assert_eq!(list[0]["status"], "uninstalled");
    assert_eq!(list[0]["title"], "支付-生产告警");
    assert!(list[0]["uninstalled_at"].is_string());
}

#[tokio::test]
async fn replayed_event_changes_nothing() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    add_group(&stack, CID, "Ops");
    let t0 = now_ms() - 10_000;
    let first_install = stack.sign(&install(CID, t0));
    assert_eq!(stack.post_event(&id, &first_install).await.0, 200);
    assert_eq!(
        stack
            .post_event(&id, &stack.sign(&uninstall(CID, t0 + 1_000)))
            .await
            .0,
        200
    );
    let before = chats(&stack, &id).await;
    let items_before = stack.item_count().await;

    // DingTalk's retry: the very same request again, and the same event freshly signed.
    let (status, reply) = stack.post_event(&id, &first_install).await;
    assert_eq!(
        status, 200,
        "a retried event is still acknowledged: {reply}"
    );
    assert_success_reply(&reply, APP.client_id);
    let mut same_event = install(CID, t0);
    same_event["eventId"] = first_install_event_id(&stack, &first_install);
    assert_eq!(stack.post_event(&id, &stack.sign(&same_event)).await.0, 200);

    assert_eq!(chats(&stack, &id).await, before);
    assert_eq!(stack.item_count().await, items_before);
}

fn first_install_event_id(
    stack: &TestStack,
    signed: &local_stack::sandbox::events::SignedEvent,
) -> Value {
    let _ = stack;
    let crypto = CallbackCrypto::new(APP.token, APP.aes_key).expect("crypto");
    let plain = crypto
        .decrypt(signed.body["encrypt"].as_str().expect("encrypt"), &[])
        .expect("decrypt");
    let event: Value = serde_json::from_str(&plain.message).expect("json");
    event["eventId"].clone()
}

#[tokio::test]
async fn out_of_order_events_do_not_move_a_chat_backwards() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    add_group(&stack, CID, "Ops");
    let t0 = now_ms() - 60_000;
    // The uninstall (later) arrives before a delayed retry of the install (earlier).
    assert_eq!(
        stack
            .post_event(&id, &stack.sign(&install(CID, t0)))
            .await
            .0,
        200
    );
    assert_eq!(
        stack
            .post_event(&id, &stack.sign(&uninstall(CID, t0 + 20_000)))
            .await
            .0,
        200
    );
    let mut late_install = install(CID, t0 + 10_000);
    late_install["eventId"] = "late-retry-install".into();
    assert_eq!(
        stack.post_event(&id, &stack.sign(&late_install)).await.0,
        200
    );
    assert_eq!(chats(&stack, &id).await[0]["status"], "uninstalled");

    // A rename older than the title we hold does not win either.
    let newer = title_event(APP.corp_id, CID, "new name", "u", t0 + 30_000);
    let older = title_event(APP.corp_id, CID, "old name", "u", t0 + 25_000);
    assert_eq!(stack.post_event(&id, &stack.sign(&newer)).await.0, 200);
    assert_eq!(stack.post_event(&id, &stack.sign(&older)).await.0, 200);
    assert_eq!(chats(&stack, &id).await[0]["title"], "new name");
}

#[tokio::test]
async fn rename_of_a_group_not_in_the_list_is_ignored() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let rename = title_event(APP.corp_id, "cidSomebodyElse==", "private", "u", now_ms());
    assert_eq!(stack.post_event(&id, &stack.sign(&rename)).await.0, 200);
    assert!(chats(&stack, &id).await.is_empty());
}

#[tokio::test]
async fn failed_title_lookup_is_filled_in_when_the_list_is_read() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    add_group(&stack, CID, "Late title");
    stack
        .sandbox
        .inject(local_stack::sandbox::Fault::server_error(
            "/v1.0/im/sceneGroups/query",
        ));
    let (status, reply) = stack
        .post_event(&id, &stack.sign(&install(CID, now_ms())))
        .await;
    assert_eq!(
        status, 200,
        "DingTalk trouble never fails the callback: {reply}"
    );
    let stored = stack
        .services
        .store
        .get_chat(&id, CID)
        .await
        .expect("get")
        .expect("chat");
    assert_eq!(stored.title, None);
    assert_eq!(chats(&stack, &id).await[0]["title"], "Late title");
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let before = stack.item_count().await;
    let event =
        serde_json::json!({"EventType": "user_add_org", "eventId": "e-unknown", "UserId": ["u1"]});
    let (status, reply) = stack.post_event(&id, &stack.sign(&event)).await;
    assert_eq!(status, 200);
    assert_success_reply(&reply, APP.client_id);
    assert_eq!(stack.item_count().await, before);
}
