//! The API Gateway v2 sample events in `events/` (for `sam local invoke -e` and
//! `cargo lambda invoke --data-file`): generated here deterministically, checked to
//! be current, and fed to the real handlers.
//!
//! Regenerate with `UPDATE_EVENTS=1 make test` (or this test alone).

use std::path::PathBuf;
use std::sync::Arc;

use integration_tests::{ADMIN_KEY, APP, TestStack, read};
use local_stack::sandbox::SandboxGroup;
use serde_json::{Value, json};
use shared::FixedClock;
use shared::crypto::CallbackCrypto;
use shared::integration::IntegrationChanges;

/// The integration id every sample event is addressed to.
const SAMPLE_ID: &str = "7f3c2a1e9b8d4c6f8a0b1c2d3e4f5a6b";
/// 2026-11-18T20:13:20Z: the moment the samples were signed.
const SIGNED_AT_MS: i64 = 1_795_000_400_000;
const CID: &str = "cidSampleOps0123456789ab==";
const COOL_APP: &str = "COOLAPP-1-10189CA5D6A1212DF0ED000B";
const DOMAIN: &str = "abc123xyz.execute-api.us-east-1.amazonaws.com";

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

fn apigw_event(
    method: &str,
    route_key: &str,
    path: &str,
    query: &[(&str, String)],
    headers: Value,
    body: Option<String>,
    path_parameters: Value,
) -> Value {
    let raw_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut params = serde_json::Map::new();
    for (k, v) in query {
        params.insert((*k).into(), Value::from(v.clone()));
    }
    let mut headers = headers;
    headers["host"] = DOMAIN.into();
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "queryStringParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
        "pathParameters": path_parameters,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123xyz",
            "domainName": DOMAIN,
            "domainPrefix": "abc123xyz",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.119.10.20", "userAgent": "DingTalk-Callback"},
            "requestId": "sample-request-id",
            "routeKey": route_key,
            "stage": "$default",
            "time": "18/Nov/2026:20:13:20 +0000",
            "timeEpoch": SIGNED_AT_MS
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// A DingTalk event request, encrypted with a fixed random prefix and nonce.
fn callback_event(event: Value, random: &[u8; 16], nonce: &str) -> Value {
    let crypto = CallbackCrypto::new(APP.token, APP.aes_key).expect("crypto");
    let encrypt = crypto
        .encrypt_with_random(random, &event.to_string(), APP.client_id)
        .expect("encrypt");
    let timestamp = SIGNED_AT_MS.to_string();
    let signature = crypto.signature(&timestamp, nonce, &encrypt);
    apigw_event(
        "POST",
        "POST /dingtalk/{id}/events",
        &format!("/dingtalk/{SAMPLE_ID}/events"),
        &[
            ("signature", signature),
            ("timestamp", timestamp),
            ("nonce", nonce.into()),
        ],
        json!({"content-type": "application/json"}),
        Some(json!({ "encrypt": encrypt }).to_string()),
        json!({"id": SAMPLE_ID}),
    )
}

fn cool_app(event_type: &str, event_id: &str, at: i64) -> Value {
    json!({"EventType": event_type, "EventTime": at, "CorpId": APP.corp_id, "BizId": format!("biz-{event_id}"),
           "eventId": event_id, "coolAppCode": COOL_APP, "operateTime": at.to_string(),
           "openConversationCorpId": APP.corp_id, "robotCode": APP.client_id,
           "openConversationId": CID, "operator": "0213454512345678"})
}

fn admin_event(method: &str, route_key: &str, path: &str, body: Option<Value>) -> Value {
    let mut headers = json!({"authorization": format!("Bearer {ADMIN_KEY}")});
    if body.is_some() {
        headers["content-type"] = "application/json".into();
    }
    let proxy = path
        .strip_prefix("/api/integrations/")
        .map(|p| json!({"proxy": p}))
        .unwrap_or(Value::Null);
    apigw_event(
        method,
        route_key,
        path,
        &[],
        headers,
        body.map(|b| b.to_string()),
        proxy,
    )
}

/// (file name, event, expected status) in the order they are replayed.
fn samples(create_payload: Value) -> Vec<(&'static str, Value, u16)> {
    vec![
        (
            "admin-create-integration.json",
            admin_event(
                "POST",
                "ANY /api/integrations",
                "/api/integrations",
                Some(create_payload),
            ),
            201,
        ),
        (
            "event-callback-check-url.json",
            callback_event(
                json!({"EventType": "check_url"}),
                b"check_url_random",
                "nonceChk",
            ),
            200,
        ),
        (
            "event-callback-cool-app-install.json",
            callback_event(
                cool_app(
                    "im_cool_app_install",
                    "evt-install-0001",
                    SIGNED_AT_MS - 3_000,
                ),
                b"install_random16",
                "nonceIns",
            ),
            200,
        ),
        (
            "event-callback-chat-update-title.json",
            callback_event(
                json!({
            "EventType": "chat_update_title", "EventTime": SIGNED_AT_MS - 2_000, "CorpId": APP.corp_id,
            "BizId": "biz-evt-title-0001", "eventId": "evt-title-0001", "timeStamp": SIGNED_AT_MS - 2_000,
            "chatId": "chat676e2bcbd7ca4d2a0b3b4a7fd5c0a1b2", "corpId": APP.corp_id, "operatorUnionId": "unionSample",
            "title": "支付-生产告警", "openConversationId": CID, "operator": "0213454512345678"}),
                b"title_random_016",
                "nonceTtl",
            ),
            200,
        ),
        (
            "admin-list-chats.json",
            admin_event(
                "GET",
                "ANY /api/integrations/{proxy+}",
                &format!("/api/integrations/{SAMPLE_ID}/chats"),
                None,
            ),
            200,
        ),
        (
            "event-callback-cool-app-uninstall.json",
            callback_event(
                cool_app(
                    "im_cool_app_uninstall",
                    "evt-uninstall-01",
                    SIGNED_AT_MS - 1_000,
                ),
                b"uninstall_rand16",
                "nonceUni",
            ),
            200,
        ),
    ]
}

#[tokio::test]
async fn sample_events_are_current_and_work() {
    let clock = FixedClock::at_ms(SIGNED_AT_MS + 2_000);
    let stack = TestStack::start_with_clock(Arc::new(clock)).await;
    stack.sandbox.add_group(SandboxGroup {
        open_conversation_id: CID.into(),
        title: "支付告警群".into(),
        owner_user_id: "owner".into(),
        cool_app_code: Some(COOL_APP.into()),
        disbanded: false,
    });
    // The samples address a fixed integration id, so it is stored directly.
    let integration = IntegrationChanges::for_create(&stack.create_payload())
        .and_then(|c| c.create(SAMPLE_ID.into(), "0".repeat(64), "2026-11-18T20:00:00.000Z"))
        .expect("integration");
    stack
        .services
        .store
        .insert_integration(&integration)
        .await
        .expect("insert");

    let update = std::env::var("UPDATE_EVENTS").is_ok_and(|v| v == "1");
    for (file, event, expected) in samples(stack.create_payload()) {
        let path = events_dir().join(file);
        let pretty = serde_json::to_string_pretty(&event).expect("json") + "\n";
        if update {
            std::fs::write(&path, &pretty).expect("write sample");
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{file} missing: run UPDATE_EVENTS=1 make test"));
        let on_disk_json: Value = serde_json::from_str(&on_disk).expect("sample is JSON");
        assert_eq!(
            on_disk_json, event,
            "{file} is out of date: run UPDATE_EVENTS=1 make test"
        );

        let request = lambda_http::request::from_str(&on_disk).expect("API Gateway v2 event");
        let response = if file.starts_with("admin") {
            stack.admin.handle(request).await
        } else {
            stack.callback.handle(request).await
        };
        let (status, body) = read(response);
        assert_eq!(status, expected, "{file}: {body}");
        if file == "admin-create-integration.json" {
            // Without PUBLIC_BASE_URL the URLs would come from the request's domain;
            // the test stack sets it, so they use the configured base.
            assert!(
                body["urls"]["event_subscription"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("/events"))
            );
        }
        if file == "admin-list-chats.json" {
            assert_eq!(body[0]["title"], "支付-生产告警", "{body}");
            assert_eq!(body[0]["status"], "installed");
        }
    }
    let chat = stack
        .services
        .store
        .get_chat(SAMPLE_ID, CID)
        .await
        .expect("get")
        .expect("chat");
    assert_eq!(chat.status, shared::integration::ChatStatus::Uninstalled);
}
