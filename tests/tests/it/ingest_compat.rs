//! The compatible ways in (ARCHITECTURE.md §11): the DingTalk custom-robot route
//! (`/robot/send?access_token=`) and the PagerDuty Events API v2 route
//! (`/pagerduty/v2/enqueue`). Accepted messages become incidents like any alert
//! (repeats update one incident, resolves resolve it, a PagerDuty acknowledge
//! acknowledges); refused ones answer in DingTalk's or PagerDuty's shape and queue
//! nothing. Also keeps the two sample events in `events/` current and working
//! (regenerate with `UPDATE_EVENTS=1`).

use std::path::PathBuf;
use std::sync::Arc;

use integration_tests::{TestStack, now_ms, read, record_of, request};
use serde_json::{Value, json};
use shared::FixedClock;
use shared::domain::integration::IntegrationChanges;
use shared::services::ingest_robot::robot_sign;

/// `+`, `/` and `=` of a base64 sign, percent-encoded for a query string.
fn encode(sign: &str) -> String {
    sign.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

async fn robot(stack: &TestStack, id: &str, query: &str, body: Vec<u8>) -> (u16, Value) {
    let headers = [("content-type", "application/json".to_string())];
    let path = format!("/api/integrations/{id}/robot/send?{query}");
    read(
        stack
            .ingest
            .handle(request("POST", &path, &headers, Some(body)))
            .await,
    )
}

/// Sends a robot message (JSON) with `query`.
async fn send(stack: &TestStack, id: &str, query: &str, message: &Value) -> (u16, Value) {
    robot(stack, id, query, message.to_string().into_bytes()).await
}

/// DingTalk's success answer.
fn ok() -> Value {
    json!({"errcode": 0, "errmsg": "ok"})
}

/// A signed robot send's query, as a DingTalk custom robot with 加签 is called.
fn signed(token: &str, at_ms: i64) -> String {
    let timestamp = at_ms.to_string();
    let sign = encode(&robot_sign(token, &timestamp));
    format!("access_token={token}&timestamp={timestamp}&sign={sign}")
}

async fn pagerduty(stack: &TestStack, id: &str, body: Vec<u8>) -> (u16, Value) {
    let headers = [("content-type", "application/json".to_string())];
    let path = format!("/api/integrations/{id}/pagerduty/v2/enqueue");
    read(
        stack
            .ingest
            .handle(request("POST", &path, &headers, Some(body)))
            .await,
    )
}

/// Posts a PagerDuty event (JSON).
async fn enqueue(stack: &TestStack, id: &str, event: &Value) -> (u16, Value) {
    pagerduty(stack, id, event.to_string().into_bytes()).await
}

/// Receives and deletes what is visible on the queue now.
async fn drain(stack: &TestStack) -> Vec<String> {
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    let out = sqs
        .receive_message()
        .queue_url(&stack.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let messages = out.messages.unwrap_or_default();
    for m in &messages {
        sqs.delete_message()
            .queue_url(&stack.queue_url)
            .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
            .send()
            .await
            .expect("delete");
    }
    messages.into_iter().filter_map(|m| m.body).collect()
}

/// Drains the queue and hands every message to the notifier, one at a time.
async fn deliver_all(stack: &TestStack) -> Vec<Value> {
    let bodies = drain(stack).await;
    for (n, body) in bodies.iter().enumerate() {
        let failed = stack.deliver(&[(&format!("m{n}"), body.clone())]).await;
        assert!(failed.is_empty(), "{body}");
    }
    bodies
        .iter()
        .map(|b| serde_json::from_str(b).expect("queued JSON"))
        .collect()
}

async fn incidents(stack: &TestStack, id: &str) -> Vec<Value> {
    let (status, list) = stack
        .admin("GET", &format!("/api/integrations/{id}/incidents"), None)
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

/// Creates an integration; returns its id and ingest token.
async fn integration(stack: &TestStack, payload: Value) -> (String, String) {
    let (status, created) = stack
        .admin("POST", "/api/integrations", Some(payload))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    let token = created["ingest_token"].as_str().expect("token").to_string();
    (id, token)
}

/// An integration whose alerts go to the installed group 运维告警群 by default;
/// returns its id and ingest token.
async fn ops_integration(stack: &TestStack) -> (String, String) {
    let mut payload = stack.create_payload();
    payload["default_targets"] = json!({"chats": ["运维告警群"]});
    let (id, token) = integration(stack, payload).await;
    stack.install_chat(&id, "cidOps==", "运维告警群").await;
    (id, token)
}

/// Nothing was queued and no incident opened.
async fn nothing_happened(stack: &TestStack, id: &str) {
    assert!(drain(stack).await.is_empty(), "nothing queued");
    assert!(incidents(stack, id).await.is_empty(), "no incident");
}

#[tokio::test]
async fn robot_messages_open_update_and_resolve_one_incident() {
    let stack = TestStack::start().await;
    let (id, token) = ops_integration(&stack).await;
    let alice = "alice@example.com";
    stack
        .add_member(&id, alice, "Alice", Some("user-alice"))
        .await;

    let firing = json!({"msgtype": "markdown",
        "markdown": {"title": "【告警】CPU high on db-1", "text": "#### CPU 98% 严重\n\n@13800000001 请处理"},
        "at": {"atUserIds": ["user-alice", "user-ghost"], "atMobiles": ["13800000001"], "isAtAll": false}});
    let answer = send(&stack, &id, &signed(&token, now_ms()), &firing).await;
    assert_eq!(answer, (200, ok()));
    let queued = deliver_all(&stack).await;
    let alert = &queued[0]["alert"];
    let key = alert["key"].as_str().expect("key").to_string();
    assert!(key.starts_with("robot-"), "{alert}");
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["source"], "dingtalk-robot");
    assert_eq!(alert["labels"]["at_mobiles"], "138****0001");
    // The mention adds Alice (bound) to where the alert goes anyway; the unbound user
    // is kept by userId, so the notifier records that they are not associated.
    assert_eq!(
        queued[0]["targets"],
        json!({"chats": ["运维告警群"], "members": [alice], "dingtalk_user_ids": ["user-ghost"]})
    );
    assert!(!stack.sandbox.messages().is_empty(), "delivered");

    // A repeat (a text message, same first line) updates the same incident.
    let repeat =
        json!({"msgtype": "text", "text": {"content": "【告警】CPU high on db-1\nload 9"}});
    let answer = send(&stack, &id, &format!("access_token={token}"), &repeat).await;
    assert_eq!(answer, (200, ok()));
    deliver_all(&stack).await;
    let detail = stack.incident_by_key(&id, &key).await;
    let unknown: Vec<&Value> = detail["records"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["kind"] == "unknown_target")
        .map(|r| &r["target"])
        .collect();
    // Nobody in the sandbox's organisation has the mentioned mobile.
    assert_eq!(unknown, [&json!("138****0001"), &json!("user-ghost")]);
    let list = incidents(&stack, &id).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["key"], key.as_str());
    assert_eq!(list[0]["event_count"], 2);
    assert_eq!(list[0]["status"], "triggered");
    assert_eq!(list[0]["assignees"], json!([alice]));

    // The recovery message resolves it.
    let resolved =
        json!({"msgtype": "text", "text": {"content": "【恢复】CPU high on db-1\n已恢复"}});
    let answer = send(&stack, &id, &signed(&token, now_ms()), &resolved).await;
    assert_eq!(answer, (200, ok()));
    let queued = deliver_all(&stack).await;
    assert_eq!(queued[0]["alert"]["status"], "resolved");
    let list = incidents(&stack, &id).await;
    assert_eq!((list.len(), &list[0]["status"]), (1, &json!("resolved")));
}

#[tokio::test]
async fn robot_query_parameters_name_key_severity_and_status() {
    let stack = TestStack::start().await;
    let (id, token) = integration(&stack, stack.create_payload()).await;
    let deploy = json!({"msgtype": "actionCard", "actionCard": {"title": "发布失败 checkout",
        "text": "构建 #42 失败 (P1)", "singleTitle": "查看", "singleURL": "https://ci.example.com/42"}});
    let query = format!("access_token={token}&key=deploy-checkout&severity=warning");
    assert_eq!(send(&stack, &id, &query, &deploy).await, (200, ok()));
    deliver_all(&stack).await;
    let detail = stack.incident_by_key(&id, "deploy-checkout").await;
    assert_eq!(detail["severity"], "warning", "the parameter beats P1");
    assert_eq!(detail["title"], "发布失败 checkout");
    assert_eq!(detail["links"][0]["url"], "https://ci.example.com/42");

    let fixed = json!({"msgtype": "link", "link": {"title": "构建 #43 成功", "text": "checkout",
        "messageUrl": "https://ci.example.com/43"}});
    let query = format!("access_token={token}&key=deploy-checkout&status=resolved");
    assert_eq!(send(&stack, &id, &query, &fixed).await, (200, ok()));
    deliver_all(&stack).await;
    let detail = stack.incident_by_key(&id, "deploy-checkout").await;
    assert_eq!(detail["status"], "resolved");
}

/// A text message nothing is wrong with.
const GOOD: &[u8] = r#"{"msgtype":"text","text":{"content":"磁盘告警"}}"#.as_bytes();

/// Checks DingTalk's answer shape: HTTP 200, `errcode`, `errmsg` starting so, no token.
fn refused(name: &str, (status, answer): (u16, Value), errcode: i64, errmsg: &str, token: &str) {
    assert_eq!(status, 200, "{name}: {answer}");
    assert_eq!(answer["errcode"], errcode, "{name}: {answer}");
    let text = answer["errmsg"].as_str().expect("errmsg");
    assert!(text.starts_with(errmsg), "{name}: {answer}");
    assert!(!text.contains(token), "{name}: the token is never returned");
}

#[tokio::test]
async fn robot_sends_with_a_wrong_token_or_sign_are_refused_and_queue_nothing() {
    let stack = TestStack::start().await;
    let (id, token) = integration(&stack, stack.create_payload()).await;
    let now = now_ms();
    let other = encode(&robot_sign("not-the-token", &now.to_string()));
    let wrong_sign = format!("access_token={token}&timestamp={now}&sign={other}");
    let unsigned = format!("access_token={token}&timestamp={now}");
    let cases = [
        ("no token", String::new(), 40035, "缺少参数 access_token"),
        (
            "wrong token",
            "access_token=dti_wrong".into(),
            300_001,
            "token is not exist",
        ),
        ("wrong sign", wrong_sign, 310_000, "sign not match"),
        (
            "stale",
            signed(&token, now - 7_200_000),
            310_000,
            "invalid timestamp",
        ),
        (
            "future",
            signed(&token, now + 3_700_000),
            310_000,
            "invalid timestamp",
        ),
        (
            "timestamp without sign",
            unsigned,
            310_000,
            "sign not match",
        ),
    ];
    for (name, query, errcode, errmsg) in cases {
        let answer = robot(&stack, &id, &query, GOOD.to_vec()).await;
        refused(name, answer, errcode, errmsg, &token);
    }
    let answer = robot(&stack, "nosuch", &signed(&token, now), GOOD.to_vec()).await;
    refused(
        "unknown integration",
        answer,
        300_001,
        "token is not exist",
        &token,
    );
    nothing_happened(&stack, &id).await;
}

#[tokio::test]
async fn bad_robot_messages_are_refused_like_dingtalk_and_queue_nothing() {
    let stack = TestStack::start().await;
    let (id, token) = integration(&stack, stack.create_payload()).await;
    let image = br#"{"msgtype":"image","image":{"picURL":"https://x/1.png"}}"#;
    let blank = br#"{"msgtype":"text","text":{"content":" "}}"#;
    let long_key = format!("&key={}", "k".repeat(300));
    let (param, bad) = ("param error", 300_001);
    let cases: [(&str, &str, &[u8], i64, &str); 7] = [
        ("malformed JSON", "", b"{\"msgtype\":", bad, param),
        ("empty body", "", b"", 40035, "缺少参数 json"),
        (
            "unknown msgtype",
            "",
            image,
            bad,
            "message msgtype not support",
        ),
        ("empty content", "", blank, bad, param),
        ("bad severity", "&severity=loud", GOOD, bad, param),
        ("bad status", "&status=maybe", GOOD, bad, param),
        ("key too long", &long_key, GOOD, bad, param),
    ];
    for (name, extra, body, errcode, errmsg) in cases {
        let query = format!("access_token={token}{extra}");
        let answer = robot(&stack, &id, &query, body.to_vec()).await;
        refused(name, answer, errcode, errmsg, &token);
    }
    nothing_happened(&stack, &id).await;
}

fn pd_trigger(token: &str, dedup_key: Option<&str>, summary: &str) -> Value {
    let mut event = json!({"routing_key": token, "event_action": "trigger",
        "payload": {"summary": summary, "source": "db-1", "severity": "error", "component": "postgres",
                    "custom_details": {"free": "5%", "firing": "Labels:\n - alertname = DiskFull"}},
        "links": [{"href": "https://grafana.example.com/d/db", "text": "Dashboard"}],
        "client": "Alertmanager", "client_url": "https://am.example.com"});
    if let Some(key) = dedup_key {
        event["dedup_key"] = key.into();
    }
    event
}

#[tokio::test]
async fn pagerduty_events_trigger_acknowledge_and_resolve() {
    let stack = TestStack::start().await;
    let (id, token) = integration(&stack, stack.create_payload()).await;
    let processed =
        json!({"status": "success", "message": "Event processed", "dedup_key": "db-1-disk"});
    for summary in ["Disk 95% on db-1", "Disk 97% on db-1"] {
        let trigger = pd_trigger(&token, Some("db-1-disk"), summary);
        assert_eq!(
            enqueue(&stack, &id, &trigger).await,
            (202, processed.clone())
        );
    }
    assert_eq!(deliver_all(&stack).await.len(), 2);
    let detail = stack.incident_by_key(&id, "db-1-disk").await;
    assert_eq!(detail["event_count"], 2, "repeats update one incident");
    assert_eq!(detail["severity"], "critical", "error pages like critical");
    assert_eq!(detail["title"], "Disk 97% on db-1");
    assert_eq!(detail["labels"]["component"], "postgres");
    let description = detail["description"].as_str().unwrap_or_default();
    assert!(description.contains("- **free**: 5%"), "{description}");

    // Without a dedup_key one is made up and returned.
    let (status, answer) = enqueue(&stack, &id, &pd_trigger(&token, None, "Lag")).await;
    assert_eq!(status, 202);
    let made = answer["dedup_key"].as_str().expect("dedup_key").to_string();
    assert_eq!(made.len(), 32);
    deliver_all(&stack).await;
    stack.incident_by_key(&id, &made).await;

    // acknowledge acts on the open incident at once, as "PagerDuty API".
    let ack =
        json!({"routing_key": token, "event_action": "acknowledge", "dedup_key": "db-1-disk"});
    assert_eq!(enqueue(&stack, &id, &ack).await, (202, processed.clone()));
    let detail = stack.incident_by_key(&id, "db-1-disk").await;
    assert_eq!(detail["status"], "acknowledged");
    assert_eq!(detail["acked_by"], "PagerDuty API");
    let actor = record_of(&detail, "acknowledged")["actor"].clone();
    assert!(
        actor
            .as_str()
            .is_some_and(|a| a.starts_with("PagerDuty API")),
        "{actor}"
    );

    // resolve resolves it through the queue.
    let resolve =
        json!({"routing_key": token, "event_action": "resolve", "dedup_key": "db-1-disk"});
    assert_eq!(enqueue(&stack, &id, &resolve).await, (202, processed));
    stack.run_jobs().await;
    let detail = stack.incident_by_key(&id, "db-1-disk").await;
    assert_eq!(detail["status"], "resolved");
    assert_eq!(incidents(&stack, &id).await.len(), 2);

    // An acknowledge for a key with nothing open is accepted and changes nothing.
    let ack = json!({"routing_key": token, "event_action": "acknowledge", "dedup_key": "never"});
    assert_eq!(enqueue(&stack, &id, &ack).await.0, 202);
    assert_eq!(incidents(&stack, &id).await.len(), 2);
}

#[tokio::test]
async fn pagerduty_severities_and_links_reach_the_incident() {
    let stack = TestStack::start().await;
    let (id, token) = integration(&stack, stack.create_payload()).await;
    for (severity, shown) in [
        ("info", "info"),
        ("warning", "warning"),
        ("error", "critical"),
        ("critical", "critical"),
    ] {
        let key = format!("sev-{severity}");
        let trigger = with(
            &pd_trigger(&token, Some(&key), "Replication lag"),
            &["payload", "severity"],
            severity.into(),
        );
        assert_eq!(enqueue(&stack, &id, &trigger).await.0, 202, "{severity}");
        deliver_all(&stack).await;
        let detail = stack.incident_by_key(&id, &key).await;
        assert_eq!(detail["severity"], shown, "{severity}");
        let links: Vec<(&Value, &Value)> = detail["links"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| (&l["title"], &l["url"]))
            .collect();
        assert!(
            links.contains(&(
                &json!("Dashboard"),
                &json!("https://grafana.example.com/d/db")
            )),
            "{links:?}"
        );
        assert!(
            links
                .iter()
                .any(|(_, url)| *url == "https://am.example.com"),
            "client_url: {links:?}"
        );
    }
}

/// Sets `value` at `path` (object keys) in `body`.
fn with(body: &Value, path: &[&str], value: Value) -> Value {
    let mut body = body.clone();
    let mut at = &mut body;
    for name in path {
        at = &mut at[*name];
    }
    *at = value;
    body
}

/// Checks PagerDuty's answer shape: 400 `invalid event`, an error naming `needle`.
fn invalid(name: &str, (status, answer): (u16, Value), needle: &str, token: &str) {
    assert_eq!(status, 400, "{name}: {answer}");
    assert_eq!(answer["status"], "invalid event", "{name}: {answer}");
    assert_eq!(answer["message"], "Event object is invalid", "{name}");
    let errors = answer["errors"].as_array().expect("errors");
    let named = errors
        .iter()
        .any(|e| e.as_str().is_some_and(|e| e.contains(needle)));
    assert!(named, "{name}: {answer}");
    assert!(!answer.to_string().contains(token), "{name}: token echoed");
}

#[tokio::test]
async fn bad_pagerduty_events_are_400_invalid_event_and_queue_nothing() {
    let stack = TestStack::start().await;
    let (id, token) = integration(&stack, stack.create_payload()).await;
    let valid = pd_trigger(&token, Some("k1"), "Disk full");
    let cases = [
        (
            "no routing_key",
            &["routing_key"][..],
            Value::Null,
            "'routing_key' is missing",
        ),
        (
            "wrong routing_key",
            &["routing_key"],
            "dti_wrong".into(),
            "Invalid routing key",
        ),
        (
            "unknown event_action",
            &["event_action"],
            "snooze".into(),
            "'event_action'",
        ),
        (
            "bad severity",
            &["payload", "severity"],
            "page".into(),
            "'payload.severity'",
        ),
        (
            "no summary",
            &["payload", "summary"],
            Value::Null,
            "'payload.summary'",
        ),
        (
            "no source",
            &["payload", "source"],
            "".into(),
            "'payload.source'",
        ),
        ("no payload", &["payload"], Value::Null, "'payload'"),
        (
            "long dedup_key",
            &["dedup_key"],
            "k".repeat(256).into(),
            "'dedup_key'",
        ),
    ];
    for (name, path, value, needle) in cases {
        let event = with(&valid, path, value);
        invalid(name, enqueue(&stack, &id, &event).await, needle, &token);
    }
    let ack = json!({"routing_key": token, "event_action": "acknowledge"});
    let answer = enqueue(&stack, &id, &ack).await;
    invalid("ack without dedup_key", answer, "'dedup_key'", &token);
    for (name, body, needle) in [
        ("bad JSON", &b"{\"routing_key\":"[..], "not valid JSON"),
        ("not an object", b"[1]", "routing_key"),
    ] {
        invalid(
            name,
            pagerduty(&stack, &id, body.to_vec()).await,
            needle,
            &token,
        );
    }
    let answer = enqueue(&stack, "nosuch", &valid).await;
    invalid("unknown integration", answer, "Invalid routing key", &token);
    nothing_happened(&stack, &id).await;
}

/// The local stack (`make dev`) serves both routes over HTTP.
#[tokio::test]
async fn the_local_stack_serves_both_routes() {
    let table = format!("dev-{}", uuid::Uuid::new_v4().simple());
    let queue = format!("q-{}", uuid::Uuid::new_v4().simple());
    let settings = local_stack::stack::DevSettings::from_lookup(|name| match name {
        "PORT" => Some("0".into()),
        "TABLE_NAME" => Some(table.clone()),
        "QUEUE_URL" => Some(format!("http://ignored/123456789012/{queue}")),
        "ADMIN_API_KEY" => Some("local-stack-test-key-0123456789".into()),
        "AWS_ENDPOINT_URL" => std::env::var("AWS_ENDPOINT_URL").ok(),
        _ => None,
    })
    .expect("settings");
    let stack = local_stack::stack::start(settings).await.expect("stack");
    let demo = stack.demo.clone().expect("demo integration");
    let token = demo.ingest_token.expect("fresh demo has its token");
    let base = format!("http://{}/api/integrations/{}", stack.addr, demo.id);
    let client = reqwest::Client::new();

    let response = client
        .post(format!("{base}/robot/send?{}", signed(&token, now_ms())))
        .json(&json!({"msgtype": "text", "text": {"content": "Jenkins: build #7 of checkout failed"}}))
        .send()
        .await
        .expect("robot send");
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer, json!({"errcode": 0, "errmsg": "ok"}));

    let response = client
        .post(format!("{base}/pagerduty/v2/enqueue"))
        .json(&pd_trigger(&token, Some("local-1"), "Disk full"))
        .send()
        .await
        .expect("enqueue");
    assert_eq!(response.status().as_u16(), 202);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["dedup_key"], "local-1");
}

// ---- sample events (events/ingest-robot-send.json, events/ingest-pagerduty-enqueue.json)

/// The integration id, ingest token, domain and signing time of every sample event
/// (as `tests/sample_events.rs`).
const SAMPLE_ID: &str = "7f3c2a1e9b8d4c6f8a0b1c2d3e4f5a6b";
const SAMPLE_INGEST_TOKEN: &str = "dti_sample_ingest_token_for_events_only";
const SIGNED_AT_MS: i64 = 1_795_000_400_000;
const DOMAIN: &str = "abc123xyz.execute-api.us-east-1.amazonaws.com";

/// An API Gateway (HTTP API, payload v2) event for the ingest function.
fn apigw_event(route: &str, path: &str, query: &[(&str, String)], body: &Value) -> Value {
    let raw_query = query
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let params: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| ((*k).to_string(), Value::from(v.clone())))
        .collect();
    let route_key = format!("POST {route}");
    json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {"content-type": "application/json", "host": DOMAIN},
        "queryStringParameters": if params.is_empty() { Value::Null } else { Value::Object(params) },
        "pathParameters": {"id": SAMPLE_ID},
        "requestContext": {
            "accountId": "123456789012", "apiId": "abc123xyz", "domainName": DOMAIN, "domainPrefix": "abc123xyz",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1", "sourceIp": "198.51.100.20", "userAgent": "sample"},
            "requestId": "sample-request-id", "routeKey": route_key, "stage": "$default",
            "time": "18/Nov/2026:20:13:20 +0000", "timeEpoch": SIGNED_AT_MS
        },
        "body": body.to_string(),
        "isBase64Encoded": false
    })
}

/// (file, event, expected status, expected answer).
fn samples() -> Vec<(&'static str, Value, u16, Value)> {
    let timestamp = SIGNED_AT_MS.to_string();
    let sign = robot_sign(SAMPLE_INGEST_TOKEN, &timestamp);
    let robot = json!({"msgtype": "markdown",
        "markdown": {"title": "【告警】支付服务 CPU 使用率过高",
                     "text": "### 【告警】支付服务 CPU 使用率过高\n- 主机: pay-1\n- 当前值: 97%\n- 级别: 严重\n\n@13800000001"},
        "at": {"atMobiles": ["13800000001"], "atUserIds": [], "isAtAll": false}});
    let pd = json!({"routing_key": SAMPLE_INGEST_TOKEN, "event_action": "trigger",
        "dedup_key": "5b4a2f9c1e7d3a8b6c0f2e4d1a3b5c7d",
        "payload": {"summary": "Payment error rate above 5%", "source": "alertmanager", "severity": "critical",
                    "component": "payments", "group": "prod", "class": "HighErrorRate",
                    "custom_details": {"firing": "Labels:\n - alertname = HighErrorRate\n - instance = pay-1\nAnnotations:\n - summary = 5.8% of requests fail\n",
                                       "num_firing": "1", "num_resolved": "0", "resolved": ""}},
        "client": "Alertmanager", "client_url": "https://alertmanager.example.com",
        "links": [{"href": "https://runbooks.example.com/errors", "text": "Runbook"}]});
    vec![
        (
            "ingest-robot-send.json",
            apigw_event(
                "/api/integrations/{id}/robot/send",
                &format!("/api/integrations/{SAMPLE_ID}/robot/send"),
                &[
                    ("access_token", SAMPLE_INGEST_TOKEN.to_string()),
                    ("timestamp", timestamp),
                    ("sign", sign),
                ],
                &robot,
            ),
            200,
            json!({"errcode": 0, "errmsg": "ok"}),
        ),
        (
            "ingest-pagerduty-enqueue.json",
            apigw_event(
                "/api/integrations/{id}/pagerduty/v2/enqueue",
                &format!("/api/integrations/{SAMPLE_ID}/pagerduty/v2/enqueue"),
                &[],
                &pd,
            ),
            202,
            json!({"status": "success", "message": "Event processed", "dedup_key": "5b4a2f9c1e7d3a8b6c0f2e4d1a3b5c7d"}),
        ),
    ]
}

#[tokio::test]
async fn sample_events_are_current_and_work() {
    let stack =
        TestStack::start_with_clock(Arc::new(FixedClock::at_ms(SIGNED_AT_MS + 2_000))).await;
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
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events");
    for (file, event, expected, answer) in samples() {
        let path = dir.join(file);
        if update {
            let pretty = serde_json::to_string_pretty(&event).expect("json") + "\n";
            integration_tests::write_sample(&path, &pretty);
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{file} missing: run UPDATE_EVENTS=1 make test"));
        let on_disk_json: Value = serde_json::from_str(&on_disk).expect("sample is JSON");
        assert_eq!(
            on_disk_json, event,
            "{file} is out of date: run UPDATE_EVENTS=1 make test"
        );
        let request = lambda_http::request::from_str(&on_disk).expect("API Gateway v2 event");
        let (status, body) = read(stack.ingest.handle(request).await);
        assert_eq!((status, body), (expected, answer), "{file}");
    }
    let queued = drain(&stack).await;
    assert_eq!(queued.len(), 2, "both samples queue one alert each");
}

#[path = "ingest_compat_mentions.rs"]
mod mentions;
