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
use shared::domain::integration::IntegrationChanges;
use shared::infra::crypto::CallbackCrypto;

/// The integration id every sample event is addressed to.
const SAMPLE_ID: &str = "7f3c2a1e9b8d4c6f8a0b1c2d3e4f5a6b";
/// 2026-11-18T20:13:20Z: the moment the samples were signed.
const SIGNED_AT_MS: i64 = 1_795_000_400_000;
const CID: &str = "cidSampleOps0123456789ab==";
const COOL_APP: &str = "COOLAPP-1-10189CA5D6A1212DF0ED000B";
const DOMAIN: &str = "abc123xyz.execute-api.us-east-1.amazonaws.com";
/// The ingest token of the sample integration (samples only).
const SAMPLE_INGEST_TOKEN: &str = "dti_sample_ingest_token_for_events_only";

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

fn ingest_event(body: Value) -> Value {
    apigw_event(
        "POST",
        "POST /api/integrations/{id}/alerts",
        &format!("/api/integrations/{SAMPLE_ID}/alerts"),
        &[],
        json!({"authorization": format!("Bearer {SAMPLE_INGEST_TOKEN}"), "content-type": "application/json"}),
        Some(body.to_string()),
        json!({"id": SAMPLE_ID}),
    )
}

fn alert_event(key: &str) -> Value {
    json!({"version": 1, "integration_id": SAMPLE_ID,
           "alert": {"key": key, "status": "firing", "severity": "critical", "title": "p99 latency above 2s",
                     "description": "Checkout p99 is **2.4 s** (SLO 800 ms).", "labels": {"service": "payments", "env": "prod"},
                     "links": [{"title": "Runbook", "url": "https://runbooks.example.com/payments-latency"}],
                     "source": "alertmanager", "occurred_at": "2026-11-18T20:10:00Z"},
           "targets": {"chats": [CID], "members": [], "dingtalk_user_ids": []}})
}

/// An SQS event as the notifier's event source mapping delivers it.
fn sqs_batch() -> Value {
    json!({"Records": [{
        "messageId": "6f1c2a34-0b7e-4b8e-9a51-1d2e3f4a5b6c",
        "receiptHandle": "AQEBsample-receipt-handle",
        "body": alert_event("payments-latency").to_string(),
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": SIGNED_AT_MS.to_string(),
                       "SenderId": "AIDASAMPLE", "ApproximateFirstReceiveTimestamp": SIGNED_AT_MS.to_string()},
        "messageAttributes": {}, "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:dingtalk-alerts",
        "awsRegion": "us-east-1"}]})
}

fn alertmanager_payload(source_is_grafana: bool) -> Value {
    let mut body = json!({"version": "4", "groupKey": "{}/{service=\"payments\"}:{alertname=\"HighErrorRate\"}",
        "truncatedAlerts": 0, "status": "firing", "receiver": "dingtalk",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "service": "payments", "severity": "critical", "dingtalk_chat": "支付-生产告警"},
        "commonAnnotations": {"summary": "Payment error rate above 5%", "runbook_url": "https://runbooks.example.com/errors"},
        "externalURL": "http://alertmanager.example.com:9093",
        "alerts": [{"status": "firing", "labels": {"alertname": "HighErrorRate", "instance": "pay-1", "severity": "critical"},
                    "annotations": {"summary": "5.8% of requests fail"}, "startsAt": "2026-11-18T20:05:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus.example.com/graph?g0.expr=errors",
                    "fingerprint": "4f1c9a7e2b3d5c6a"}]});
    if source_is_grafana {
        body["version"] = "1".into();
        body["orgId"] = 1.into();
        body["title"] = "[FIRING:1] HighErrorRate payments".into();
        body["state"] = "alerting".into();
        body["message"] = "Payment error rate above 5%".into();
        body["groupKey"] =
            "{}/{__grafana_autogenerated__=\"true\"}:{alertname=\"HighErrorRate\"}".into();
        body["alerts"][0]["silenceURL"] = "https://grafana.example.com/alerting/silence/new".into();
        body["alerts"][0]["dashboardURL"] = "https://grafana.example.com/d/payments".into();
        body["alerts"][0]["values"] = json!({"A": 5.8});
    }
    body
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
        ("notifier-sqs-batch.json", sqs_batch(), 0),
        (
            "ingest-alertmanager.json",
            ingest_event(alertmanager_payload(false)),
            202,
        ),
        (
            "ingest-grafana.json",
            ingest_event(alertmanager_payload(true)),
            202,
        ),
        (
            "ingest-alert-event.json",
            ingest_event(alert_event("disk-full-db-1")),
            202,
        ),
        (
            "notifier-escalation-sweep.json",
            json!({"sweep": "escalation"}),
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

/// Sends one sample (as read from `events/`) to its handler and checks the answer.
async fn replay_sample(stack: &TestStack, file: &str, on_disk: &str, expected: u16) {
    if file == "notifier-escalation-sweep.json" {
        // EventBridge's once-a-minute input (template.yaml): nothing is due here.
        let report = stack
            .notifier
            .sweep(tokio::time::Instant::now() + std::time::Duration::from_secs(30))
            .await
            .expect("sweep");
        assert_eq!(report.failed, 0, "{file}");
        return;
    }
    if file.starts_with("notifier") {
        let batch: aws_lambda_events::event::sqs::SqsEvent =
            serde_json::from_str(on_disk).expect("SQS event");
        let answer = stack
            .notifier
            .handle_batch(
                batch,
                tokio::time::Instant::now() + std::time::Duration::from_secs(30),
            )
            .await;
        assert!(answer.batch_item_failures.is_empty(), "{file}");
        assert_eq!(
            stack.sandbox.messages().len(),
            1,
            "{file} delivered to the group"
        );
        return;
    }
    let request = lambda_http::request::from_str(on_disk).expect("API Gateway v2 event");
    let response = if file.starts_with("admin") {
        stack.admin.handle(request).await
    } else if file.starts_with("ingest") {
        stack.ingest.handle(request).await
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
        .and_then(|c| {
            c.create(
                SAMPLE_ID.into(),
                shared::domain::integration::ingest_token_digest(SAMPLE_INGEST_TOKEN),
                "2026-11-18T20:00:00.000Z",
            )
        })
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
            integration_tests::write_sample(&path, &pretty);
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{file} missing: run UPDATE_EVENTS=1 make test"));
        let on_disk_json: Value = serde_json::from_str(&on_disk).expect("sample is JSON");
        assert_eq!(
            on_disk_json, event,
            "{file} is out of date: run UPDATE_EVENTS=1 make test"
        );

        replay_sample(&stack, file, &on_disk, expected).await;
    }
    let chat = stack
        .services
        .store
        .get_chat(SAMPLE_ID, CID)
        .await
        .expect("get")
        .expect("chat");
    assert_eq!(chat.status, shared::domain::ChatStatus::Uninstalled);
}
