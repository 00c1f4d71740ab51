//! The dead-letter queue through the admin API (issue #19 item 3), on moto:
//! `GET /api/dlq` shows what sits there with the notifier's first error and
//! consumes nothing; `POST /api/dlq/redrive` sends all or named messages back.

use std::collections::BTreeSet;

use admin_api::AdminApi;
use integration_tests::{ADMIN_KEY, TestStack, alert_body, read, request};
use serde_json::{Value, json};
use shared::Services;

/// A test stack whose admin API also has a fresh DLQ.
struct DlqStack {
    stack: TestStack,
    admin: AdminApi,
    sqs: aws_sdk_sqs::Client,
    dlq_url: String,
}

impl DlqStack {
    async fn start() -> Self {
        let stack = TestStack::start().await;
        let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("alerts-dlq-{}", uuid::Uuid::new_v4().simple()))
            .send()
            .await
            .expect("create dlq")
            .queue_url
            .expect("dlq url");
        let mut config = stack.services.config.clone();
        config.dead_letter_queue_url = dlq_url.clone();
        let services = Services::new(config, &stack.sdk, stack.services.clock.clone());
        Self {
            admin: AdminApi::new(&services),
            stack,
            sqs,
            dlq_url,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut headers = vec![("authorization", format!("Bearer {ADMIN_KEY}"))];
        if body.is_some() {
            headers.push(("content-type", "application/json".into()));
        }
        let body = body.map(|b| b.to_string().into_bytes());
        read(
            self.admin
                .handle(request(method, path, &headers, body))
                .await,
        )
    }

    /// Puts `body` on the DLQ and has the notifier fail it once under the same
    /// message id (as if it had failed on the alert queue); returns the id.
    async fn dead_letter(&self, body: &str) -> String {
        let id = self
            .sqs
            .send_message()
            .queue_url(&self.dlq_url)
            .message_body(body)
            .send()
            .await
            .expect("send to dlq")
            .message_id
            .expect("message id");
        let failed = self.stack.deliver(&[(id.as_str(), body.to_string())]).await;
        assert_eq!(failed, vec![id.clone()], "the notifier fails it");
        id
    }

    /// Bodies waiting on `queue_url` (received and deleted).
    async fn drain(&self, queue_url: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive");
            if out.messages().is_empty() {
                return bodies;
            }
            for message in out.messages() {
                bodies.push(message.body().unwrap_or_default().to_string());
                self.sqs
                    .delete_message()
                    .queue_url(queue_url)
                    .receipt_handle(message.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

fn ids_of(peek: &Value) -> BTreeSet<String> {
    peek["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message_id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn peek_shows_messages_with_their_first_error_and_consumes_nothing() {
    let dlq = DlqStack::start().await;
    let unknown = alert_body(
        "no-such-integration",
        "db-down",
        "firing",
        "2026-11-28T01:00:00Z",
        json!({}),
    );
    let alert_id = dlq.dead_letter(&unknown).await;
    let garbage_id = dlq.dead_letter("{not json").await;
    // A second failure keeps the first reason.
    dlq.stack
        .deliver(&[(garbage_id.as_str(), "another body".to_string())])
        .await;

    for _ in 0..2 {
        let (status, peek) = dlq.call("GET", "/api/dlq", None).await;
        assert_eq!(status, 200, "{peek}");
        assert_eq!(
            ids_of(&peek),
            BTreeSet::from([alert_id.clone(), garbage_id.clone()])
        );
        assert_eq!(peek["approximate_depth"], 2, "{peek}");
        let find = |id: &str| {
            peek["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .find(|m| m["message_id"] == id)
                .cloned()
                .expect("listed")
        };
        let alert = find(&alert_id);
        assert_eq!(alert["integration_id"], "no-such-integration");
        assert_eq!(alert["kind"], "alert");
        let reason = alert["first_error"].as_str().expect("first error");
        assert!(reason.contains("unprocessable"), "{reason}");
        assert!(alert["receive_count"].as_u64().expect("count") >= 1);
        assert!(alert["sent_at"].as_str().is_some(), "{alert}");
        let garbage = find(&garbage_id);
        assert_eq!(garbage["kind"], "unreadable");
        assert_eq!(garbage["integration_id"], Value::Null);
        assert!(
            garbage["first_error"]
                .as_str()
                .expect("first error")
                .contains("unprocessable"),
            "{garbage}"
        );
    }
    // Released, not consumed: both are still there, visible at once.
    assert_eq!(dlq.drain(&dlq.dlq_url).await.len(), 2);
}

#[tokio::test]
async fn a_message_with_no_kept_error_shows_null() {
    let dlq = DlqStack::start().await;
    dlq.sqs
        .send_message()
        .queue_url(&dlq.dlq_url)
        .message_body(r#"{"type": "incident_changed", "integration_id": "i1"}"#)
        .send()
        .await
        .expect("send");
    let (status, peek) = dlq.call("GET", "/api/dlq", None).await;
    assert_eq!(status, 200, "{peek}");
    let message = &peek["messages"][0];
    assert_eq!(message["first_error"], Value::Null, "{peek}");
    assert_eq!(message["kind"], "incident_changed");
    assert_eq!(message["integration_id"], "i1");
}

#[tokio::test]
async fn redrive_by_id_sends_back_only_those_and_reports_unknown_ids() {
    let dlq = DlqStack::start().await;
    let bodies: Vec<String> = (0..3)
        .map(|n| {
            alert_body(
                "gone",
                &format!("key-{n}"),
                "firing",
                "2026-11-28T01:00:00Z",
                json!({}),
            )
        })
        .collect();
    let mut ids = Vec::new();
    for body in &bodies {
        ids.push(dlq.dead_letter(body).await);
    }
    let (status, answer) = dlq
        .call(
            "POST",
            "/api/dlq/redrive",
            Some(json!({"message_ids": [ids[1], "no-such-message"]})),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"redriven": 1, "missing": ["no-such-message"]})
    );
    assert_eq!(
        dlq.drain(&dlq.stack.queue_url).await,
        vec![bodies[1].clone()]
    );
    let (_, peek) = dlq.call("GET", "/api/dlq", None).await;
    assert_eq!(
        ids_of(&peek),
        BTreeSet::from([ids[0].clone(), ids[2].clone()])
    );
}

#[tokio::test]
async fn redrive_all_empties_the_dlq_into_the_alert_queue() {
    let dlq = DlqStack::start().await;
    let mut bodies = BTreeSet::new();
    for n in 0..12 {
        let body = alert_body(
            "gone",
            &format!("k{n}"),
            "firing",
            "2026-11-28T01:00:00Z",
            json!({}),
        );
        dlq.sqs
            .send_message()
            .queue_url(&dlq.dlq_url)
            .message_body(&body)
            .send()
            .await
            .expect("send");
        bodies.insert(body);
    }
    let (status, answer) = dlq.call("POST", "/api/dlq/redrive", Some(json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, json!({"redriven": 12, "missing": []}));
    let back: BTreeSet<String> = dlq.drain(&dlq.stack.queue_url).await.into_iter().collect();
    assert_eq!(back, bodies, "each once");
    let (_, peek) = dlq.call("GET", "/api/dlq", None).await;
    assert_eq!(peek["messages"], json!([]));
}

#[tokio::test]
async fn the_dlq_routes_are_admin_only_and_check_their_body() {
    let dlq = DlqStack::start().await;
    for (method, path) in [("GET", "/api/dlq"), ("POST", "/api/dlq/redrive")] {
        // No key, and a wrong one.
        for key in [None, Some("Bearer not-the-admin-key-0123456789")] {
            let mut headers = vec![("content-type", "application/json".to_string())];
            if let Some(key) = key {
                headers.push(("authorization", key.to_string()));
            }
            let response = dlq
                .admin
                .handle(request(method, path, &headers, Some(b"{}".to_vec())))
                .await;
            let (status, body) = read(response);
            assert_eq!(status, 401, "{method} {path} {key:?}: {body}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    for (bad, field) in [
        (json!({"message_ids": "abc"}), "message_ids"),
        (json!({"message_ids": [""]}), "message_ids"),
        (json!({"message_ids": [42]}), "message_ids"),
        (json!({"ids": ["a"]}), "body"),
        (json!(["a"]), "body"),
    ] {
        let (status, body) = dlq
            .call("POST", "/api/dlq/redrive", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "validation_failed", "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    let headers = [
        ("authorization", format!("Bearer {ADMIN_KEY}")),
        ("content-type", "application/json".to_string()),
    ];
    let response = dlq
        .admin
        .handle(request(
            "POST",
            "/api/dlq/redrive",
            &headers,
            Some(b"{oops".to_vec()),
        ))
        .await;
    let (status, body) = read(response);
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_json");
    let (status, body) = dlq
        .call("POST", "/api/dlq/redrive", Some(json!({"message_ids": []})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"redriven": 0, "missing": []}));
    let (status, body) = dlq.call("DELETE", "/api/dlq", None).await;
    assert_eq!(status, 405, "{body}");
    // Without DEAD_LETTER_QUEUE_URL the routes say so.
    let (status, body) = dlq.stack.admin("GET", "/api/dlq", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "dlq_not_configured");
}
