//! Acceptance of presentation (ARCHITECTURE.md §11) on moto and the DingTalk
//! sandbox: messages and cards in the integration's language (zh-CN for new
//! integrations), user templates refused when they do not compile and falling back
//! with a `template_failed` record when they fail, and the preview with warnings.

use integration_tests::{TestStack, alert_body};
use local_stack::sandbox::MessageTarget;
use serde_json::{Value, json};

const GROUP: &str = "cidPresentation000000001==";

async fn start() -> (TestStack, String) {
    let stack = TestStack::start().await;
    let mut payload = stack.create_payload();
    payload.as_object_mut().map(|p| p.remove("locale"));
    let (status, created) = stack
        .admin("POST", "/api/integrations", Some(payload))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    stack.install_chat(&id, GROUP, "值班群").await;
    (stack, id)
}

async fn fire(stack: &TestStack, id: &str, key: &str, status: &str) {
    let body = alert_body(
        id,
        key,
        status,
        "2026-11-28T01:00:00Z",
        json!({"chats": [GROUP]}),
    );
    assert!(stack.deliver(&[(key, body)]).await.is_empty());
    stack.run_ready_jobs().await;
}

fn group_messages(stack: &TestStack) -> Vec<Value> {
    stack
        .sandbox
        .messages()
        .into_iter()
        .filter(|m| m.target == MessageTarget::Group(GROUP.into()))
        .map(|m| m.msg_param)
        .collect()
}

async fn patch(stack: &TestStack, id: &str, body: Value) -> (u16, Value) {
    stack
        .admin("PATCH", &format!("/api/integrations/{id}"), Some(body))
        .await
}

#[tokio::test]
async fn new_integrations_speak_chinese_and_en_us_is_unchanged() {
    let (stack, id) = start().await;
    let (_, view) = stack
        .admin("GET", &format!("/api/integrations/{id}"), None)
        .await;
    assert_eq!(view["locale"], "zh-CN");
    fire(&stack, &id, "db-down", "firing").await;
    let firing = group_messages(&stack);
    let text = firing[0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("告警中") && text.contains("严重"), "{text}");
    assert_eq!(firing[0]["actionTitle1"], "✋ 认领");
    assert!(
        firing[0]["title"]
            .as_str()
            .unwrap_or_default()
            .starts_with("[严重]")
    );
    fire(&stack, &id, "db-down", "resolved").await;
    let resolved = group_messages(&stack);
    let last = resolved.last().expect("follow-up");
    assert!(
        last["text"].as_str().unwrap_or_default().contains("已恢复"),
        "{last}"
    );

    let (status, _) = patch(&stack, &id, json!({"locale": "en-US"})).await;
    assert_eq!(status, 200);
    fire(&stack, &id, "api-slow", "firing").await;
    let english = group_messages(&stack);
    let text = english
        .last()
        .and_then(|m| m["text"].as_str())
        .unwrap_or_default();
    assert!(text.contains("FIRING · critical"), "{text}");
    let (status, answer) = patch(&stack, &id, json!({"locale": "fr-FR"})).await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (400, json!("locale"))
    );
}

#[tokio::test]
async fn templates_that_do_not_compile_are_refused_and_failing_ones_fall_back() {
    let (stack, id) = start().await;
    let (status, answer) = patch(
        &stack,
        &id,
        json!({"templates": {"title": "{{ alert.title }}", "body": "ok\n{% if alert.severity %}\nno end"}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "template_invalid");
    assert_eq!(answer["error"]["field"], "templates.body");
    assert_eq!(answer["error"]["line"], 2);
    let (_, view) = stack
        .admin("GET", &format!("/api/integrations/{id}"), None)
        .await;
    assert_eq!(view["templates"], json!({}), "nothing saved");

    let (status, _) = patch(
        &stack,
        &id,
        json!({"templates": {"title": "🔥 {{ alert.title }}（{{ labels.service }}）",
                             "body": "**服务**：{{ labels.service }}\n\n开始：{{ incident.started_at | localtime }}"}}),
    )
    .await;
    assert_eq!(status, 200);
    fire(&stack, &id, "db-down", "firing").await;
    let sent = group_messages(&stack);
    assert_eq!(sent[0]["title"], "🔥 db-down is failing（payments）");
    assert!(
        sent[0]["text"]
            .as_str()
            .unwrap_or_default()
            .starts_with("**服务**：payments\n\n开始：2026-11-28 09:00"),
        "{}",
        sent[0]
    );

    // Fails when sending (division by zero): the built-in text, and a record saying why.
    let (status, _) = patch(&stack, &id, json!({"templates": {"title": "{{ 1 / 0 }}"}})).await;
    assert_eq!(status, 200);
    fire(&stack, &id, "cache-cold", "firing").await;
    let built_in = group_messages(&stack);
    let last = built_in.last().expect("message");
    assert!(
        last["title"]
            .as_str()
            .unwrap_or_default()
            .starts_with("[严重]"),
        "{last}"
    );
    let detail = stack.incident_by_key(&id, "cache-cold").await;
    let failed = detail["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["kind"] == "template_failed")
        .cloned()
        .expect("template_failed record");
    assert!(
        failed["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("templates.title"),
        "{failed}"
    );
}

#[tokio::test]
async fn the_preview_renders_given_payloads_and_recent_alerts_with_warnings() {
    let (stack, id) = start().await;
    let path = format!("/api/integrations/{id}/templates/preview");
    let alertmanager = json!({"version": "4", "status": "firing", "receiver": "dingtalk", "groupKey": "{}:{alertname=\"HighLatency\"}",
        "commonLabels": {"alertname": "HighLatency", "severity": "critical"}, "commonAnnotations": {"summary": "p99 above 2s"},
        "alerts": [{"status": "firing", "labels": {"alertname": "HighLatency", "severity": "critical", "service": "payments"},
                    "annotations": {"summary": "p99 above 2s"}, "startsAt": "2026-11-28T01:00:00Z", "fingerprint": "abc"}]});
    let (status, answer) = stack
        .admin("POST", &path, Some(json!({
            "templates": {"body": "负责人 @alice\n| a | b |\n|---|---|\n开始 {{ incident.started_at }}"},
            "alert": alertmanager})))
        .await;
    assert_eq!(status, 200, "{answer}");
    let preview = &answer["previews"][0];
    assert_eq!(preview["source"], "given");
    assert!(preview["bytes"].as_u64().unwrap_or(0) > 0);
    let warnings = preview["warnings"].to_string();
    for expected in ["@alice", "tables", "UTC"] {
        assert!(warnings.contains(expected), "{expected}: {warnings}");
    }
    // Without a payload: the integration's recent alerts.
    fire(&stack, &id, "db-down", "firing").await;
    let (status, answer) = stack.admin("POST", &path, Some(json!({}))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["previews"].as_array().map(Vec::len), Some(1));
    assert!(
        answer["previews"][0]["body"]
            .as_str()
            .unwrap_or_default()
            .contains("告警中")
    );
    // Bad input: an invalid template, an unknown field, a payload that is no alert.
    for (body, field) in [
        (json!({"templates": {"title": "{{ x"}}), "templates.title"),
        (json!({"nope": 1}), "nope"),
        (json!({"alert": {"hello": "world"}}), "alert.body"),
    ] {
        let (status, answer) = stack.admin("POST", &path, Some(body)).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
}

/// A refusal reads in the person's language: the card's private notice in the
/// integration's (zh-CN), the H5 app's in the page's, English once chosen there.
#[tokio::test]
async fn refusals_read_in_the_integration_and_page_language() {
    let stack = TestStack::start().await;
    let id = stack
        .create_card_integration(json!({"locale": "zh-CN"}))
        .await;
    stack.install_chat(&id, GROUP, "值班群").await;
    stack
        .add_member(&id, "alice@example.com", "Alice", Some("alice0001"))
        .await;
    fire(&stack, &id, "disk-full", "firing").await;
    let (incident_id, card) = stack.incident_and_card(&id, "disk-full").await;
    fire(&stack, &id, "disk-full", "resolved").await;

    let (status, answer) = stack
        .click_card(
            &id,
            (&card, "alice0001"),
            json!({"action": "escalate"}),
            integration_tests::now_ms(),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["userPrivateData"]["cardParamMap"]["notice"],
        "该事件已解决"
    );

    let (token, _) = stack.h5_login(&id, "alice0001").await;
    let act = format!("/incidents/{incident_id}/actions");
    let body = json!({"action": "escalate"});
    let (status, refused) = stack
        .h5_call(&id, ("POST", &act), Some(&token), Some(body.clone()))
        .await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["message"], "该事件已解决");
    let (status, _) = stack
        .h5_call(
            &id,
            ("POST", "/locale"),
            Some(&token),
            Some(json!({"locale": "en-US"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, refused) = stack
        .h5_call(&id, ("POST", &act), Some(&token), Some(body))
        .await;
    assert_eq!(
        refused["error"]["message"],
        "the incident is already resolved"
    );

    // Someone not associated reads the refusal in the integration's language.
    stack.sandbox.add_user(local_stack::sandbox::SandboxUser {
        user_id: "bob0002".into(),
        union_id: "union-bob0002".into(),
        name: "Bob".into(),
        email: None,
        mobile: None,
    });
    let (stranger, _) = stack.h5_login(&id, "bob0002").await;
    let (status, refused) = stack
        .h5_call(&id, ("GET", "/incidents"), Some(&stranger), None)
        .await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "你的钉钉账号还没有关联：请输入管理员给你的关联码"
    );
}
