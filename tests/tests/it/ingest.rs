//! Ingest: Alertmanager v4 / Grafana / alert event payloads are queued (202); bad
//! input is a 4xx that queues nothing; queued alerts reach the group their labels name.

use integration_tests::{TestStack, read, request};
use serde_json::{Value, json};

fn alertmanager(status: &str) -> Value {
    json!({
        "version": "4", "groupKey": "{}/{severity=\"critical\"}:{alertname=\"CheckoutErrors\"}",
        "truncatedAlerts": 0, "status": status, "receiver": "dingtalk",
        "groupLabels": {"alertname": "CheckoutErrors"},
        "commonLabels": {"alertname": "CheckoutErrors", "severity": "critical", "service": "checkout", "dingtalk_chat": "支付告警群"},
        "commonAnnotations": {"summary": "Checkout error rate above 5%", "runbook_url": "https://runbooks.example.com/checkout"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{"status": status, "labels": {"alertname": "CheckoutErrors", "instance": "pod-1", "severity": "critical"},
                    "annotations": {"summary": "5.3% errors"}, "startsAt": "2026-11-24T01:00:00Z",
                    "endsAt": if status == "resolved" { "2026-11-24T01:20:00Z" } else { "0001-01-01T00:00:00Z" },
                    "generatorURL": "http://prometheus:9090/graph", "fingerprint": "abc123"}]
    })
}

async fn post(stack: &TestStack, id: &str, token: &str, body: Vec<u8>) -> (u16, Value) {
    let headers = [
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".to_string()),
    ];
    read(
        stack
            .ingest
            .handle(request(
                "POST",
                &format!("/api/integrations/{id}/alerts"),
                &headers,
                Some(body),
            ))
            .await,
    )
}

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

#[tokio::test]
async fn alertmanager_alert_is_queued_and_reaches_the_labelled_group() {
    let stack = TestStack::start().await;
    let (status, created) = stack
        .admin("POST", "/api/integrations", Some(stack.create_payload()))
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().expect("id").to_string();
    let token = created["ingest_token"].as_str().expect("token").to_string();
    stack.install_chat(&id, "cidCheckout==", "支付告警群").await;

    let (status, answer) = post(
        &stack,
        &id,
        &token,
        alertmanager("firing").to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["queued"], 1);
    let queued = drain(&stack).await;
    assert_eq!(queued.len(), 1);
    assert!(stack.deliver(&[("m1", queued[0].clone())]).await.is_empty());
    let messages = stack.sandbox.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0].target,
        local_stack::sandbox::MessageTarget::Group("cidCheckout==".into())
    );
    assert!(
        messages[0].msg_param["text"]
            .as_str()
            .expect("text")
            .contains("Checkout error rate above 5%")
    );

    let (status, _) = post(
        &stack,
        &id,
        &token,
        alertmanager("resolved").to_string().into_bytes(),
    )
    .await;
    assert_eq!(status, 202);
    let queued = drain(&stack).await;
    assert!(stack.deliver(&[("m2", queued[0].clone())]).await.is_empty());
    assert_eq!(stack.sandbox.messages().len(), 2, "one resolved follow-up");
}

#[tokio::test]
async fn bad_ingest_requests_are_4xx_and_queue_nothing() {
    let stack = TestStack::start().await;
    let (_, created) = stack
        .admin("POST", "/api/integrations", Some(stack.create_payload()))
        .await;
    let id = created["id"].as_str().expect("id").to_string();
    let token = created["ingest_token"].as_str().expect("token").to_string();
    let good = alertmanager("firing").to_string().into_bytes();
    let cases: Vec<(&str, &str, &str, Vec<u8>, u16)> = vec![
        ("wrong token", id.as_str(), "dti_wrong", good.clone(), 401),
        ("empty token", id.as_str(), "", good.clone(), 401),
        ("unknown integration", "nosuchintegration", token.as_str(), good.clone(), 404),
        ("not JSON", id.as_str(), token.as_str(), b"alert!".to_vec(), 400),
        ("unknown shape", id.as_str(), token.as_str(), br#"{"hello":"world"}"#.to_vec(), 400),
        ("no alerts", id.as_str(), token.as_str(), br#"{"version":"4","alerts":[]}"#.to_vec(), 400),
        ("bad member label", id.as_str(), token.as_str(),
            alertmanager("firing").to_string().replace("支付告警群\"", "支付告警群\",\"dingtalk_member\":\"not-an-email\"").into_bytes(), 400),
        ("wrong version", id.as_str(), token.as_str(),
            json!({"version": 7, "alert": {"key": "k", "status": "firing", "severity": "info", "title": "t"}}).to_string().into_bytes(), 400),
        ("mention not a mobile", id.as_str(), token.as_str(),
            json!({"version": 1, "alert": {"key": "k", "status": "firing", "severity": "info", "title": "t"},
                   "mention_mobiles": ["alice"]}).to_string().into_bytes(), 400),
        ("oversized", id.as_str(), token.as_str(), vec![b' '; 1_100_000], 413),
    ];
    for (name, id, token, body, expected) in cases {
        let (status, answer) = post(&stack, id, token, body).await;
        assert_eq!(status, expected, "{name}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{name}: {answer}");
    }
    assert!(drain(&stack).await.is_empty());
}

#[tokio::test]
async fn rotated_ingest_token_and_webhook_secret_replace_the_old_ones() {
    let stack = TestStack::start().await;
    let (_, created) = stack
        .admin("POST", "/api/integrations", Some(stack.create_payload()))
        .await;
    let id = created["id"].as_str().expect("id").to_string();
    let old = created["ingest_token"].as_str().expect("token").to_string();
    let body = alertmanager("firing").to_string().into_bytes();

    let (status, rotated) = stack
        .admin(
            "POST",
            &format!("/api/integrations/{id}/ingest-token"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["ingest_token"]
        .as_str()
        .expect("new token")
        .to_string();
    assert!(new.starts_with("dti_") && new != old);
    assert_eq!(
        post(&stack, &id, &old, body.clone()).await.0,
        401,
        "the old token stops working"
    );
    assert_eq!(post(&stack, &id, &new, body).await.0, 202);
    assert_eq!(drain(&stack).await.len(), 1);

    let old_secret = created["webhook_secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let (status, rotated) = stack
        .admin(
            "POST",
            &format!("/api/integrations/{id}/webhook-secret"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let secret = rotated["webhook_secret"].as_str().expect("new secret");
    assert!(secret.starts_with("whs_") && secret != old_secret);
    let stored = stack
        .services
        .store
        .get_integration(&id)
        .await
        .expect("read")
        .expect("integration");
    assert_eq!(
        stored
            .webhook_secret
            .as_ref()
            .map(|s| s.expose().to_string()),
        Some(secret.to_string())
    );

    let (status, view) = stack
        .admin("GET", &format!("/api/integrations/{id}"), None)
        .await;
    assert_eq!(status, 200);
    let text = view.to_string();
    assert!(
        !text.contains(&new) && !text.contains(secret),
        "secrets are shown only once"
    );
    for (method, path, expected) in [
        ("GET", format!("/api/integrations/{id}/ingest-token"), 405),
        (
            "POST",
            "/api/integrations/nosuch/ingest-token".to_string(),
            404,
        ),
        (
            "POST",
            "/api/integrations/nosuch/webhook-secret".to_string(),
            404,
        ),
    ] {
        let (status, body) = stack.admin(method, &path, None).await;
        assert_eq!(status, expected, "{method} {path}: {body}");
    }
}
