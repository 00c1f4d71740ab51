//! The integration center through the admin API handler, on moto.

use integration_tests::{APP, BASE_URL, TestStack, now_ms};
use local_stack::sandbox::SandboxGroup;
use local_stack::sandbox::events::cool_app_event;
use serde_json::json;

const SECRETS: [&str; 3] = [APP.client_secret, APP.aes_key, APP.token];

fn assert_no_secrets(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "a secret leaked into: {text}");
    }
}

#[tokio::test]
async fn create_answers_the_contract_and_never_shows_secrets() {
    let stack = TestStack::start().await;
    let mut payload = stack.create_payload();
    payload["edition"] = json!("professional");
    payload["default_targets"] = json!({"chats": ["cidA=="], "members": ["alice@example.com"]});
    let (status, created) = stack
        .admin("POST", "/api/integrations", Some(payload))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    for field in ["name", "corp_id", "agent_id", "client_id", "edition"] {
        assert!(created[field].is_string(), "{field} in {created}");
    }
    assert_eq!(created["qps_limit"], 40);
    assert_eq!(created["monthly_quota"], 500_000);
    assert_eq!(created["timezone"], "Asia/Shanghai");
    let root = format!("{BASE_URL}/dingtalk/{id}");
    assert_eq!(
        created["urls"]["event_subscription"],
        format!("{root}/events")
    );
    assert_eq!(created["urls"]["h5_home"], format!("{root}/app"));
    assert_eq!(created["urls"]["pc_home"], format!("{root}/app"));
    assert_eq!(
        created["urls"]["cool_app"],
        format!("{root}/app?view=group")
    );
    assert_eq!(created["urls"]["card_callback"], format!("{root}/cards"));
    assert_eq!(
        created["outbound_ips"],
        json!(["203.0.113.7", "203.0.113.8"])
    );
    let ingest_token = created["ingest_token"].as_str().expect("ingest token");
    assert!(ingest_token.starts_with("dti_") && ingest_token.len() > 40);
    assert_no_secrets(&created.to_string());

    let (status, got) = stack
        .admin("GET", &format!("/api/integrations/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(
        got.get("ingest_token").is_none(),
        "the ingest token is shown once"
    );
    assert_eq!(got["urls"], created["urls"]);
    assert_no_secrets(&got.to_string());

    let (status, list) = stack.admin("GET", "/api/integrations", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_no_secrets(&list.to_string());
}

#[tokio::test]
async fn patch_changes_fields_validates_and_drops_a_stale_token() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let path = format!("/api/integrations/{id}");

    let (status, updated) = stack
        .admin(
            "PATCH",
            &path,
            Some(json!({"name": "Renamed", "qps_limit": 5, "timezone": "Europe/Berlin"})),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"], "Renamed");
    assert_eq!(updated["qps_limit"], 5);
    assert_eq!(updated["timezone"], "Europe/Berlin");

    let (status, err) = stack
        .admin("PATCH", &path, Some(json!({"token": "x"})))
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (400, Some("token"))
    );
    let (status, _) = stack.admin("PATCH", &path, Some(json!({}))).await;
    assert_eq!(status, 400);
    let (status, _) = stack
        .admin(
            "PATCH",
            "/api/integrations/nosuch",
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, 404);

    // A token cached for the old secret is dropped when the credentials change.
    let integration = stack
        .services
        .store
        .get_integration(&id)
        .await
        .expect("get")
        .expect("some");
    stack
        .services
        .dingtalk
        .access_token((&integration).into())
        .await
        .expect("token");
    assert!(
        stack
            .services
            .store
            .get_cached_token(&id)
            .await
            .expect("read")
            .is_some()
    );
    let (status, _) = stack
        .admin(
            "PATCH",
            &path,
            Some(json!({"client_secret": "rotated-secret-0002"})),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        stack
            .services
            .store
            .get_cached_token(&id)
            .await
            .expect("read")
            .is_none()
    );
    let stored = stack
        .services
        .store
        .get_integration(&id)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(stored.client_secret.expose(), "rotated-secret-0002");
    assert_eq!(stored.version, 3);
}

#[tokio::test]
async fn delete_removes_the_integration_and_everything_under_it() {
    let stack = TestStack::start().await;
    let keep = stack.create_integration().await;
    let id = stack.create_integration().await;
    stack.sandbox.add_group(SandboxGroup {
        open_conversation_id: "cidDel==".into(),
        title: "Doomed".into(),
        owner_user_id: "o".into(),
        cool_app_code: Some("COOLAPP-1".into()),
        disbanded: false,
    });
    let install = cool_app_event(
        true,
        APP.corp_id,
        "cidDel==",
        "COOLAPP-1",
        APP.client_id,
        "u",
        now_ms(),
    );
    assert_eq!(stack.post_event(&id, &stack.sign(&install)).await.0, 200);
    let (status, _) = stack
        .admin("DELETE", &format!("/api/integrations/{id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        stack
            .admin("GET", &format!("/api/integrations/{id}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        stack
            .admin("GET", &format!("/api/integrations/{id}/chats"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        stack
            .admin("DELETE", &format!("/api/integrations/{id}"), None)
            .await
            .0,
        404
    );
    assert!(
        stack
            .services
            .store
            .list_chats(&id)
            .await
            .expect("list")
            .is_empty()
    );
    let (_, list) = stack.admin("GET", "/api/integrations", None).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["id"], keep.as_str());
    // Events for a deleted integration are refused.
    let (status, _) = stack.post_event(&id, &stack.sign(&install)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let stack = TestStack::start().await;
    assert_eq!(stack.admin("GET", "/api/nothing", None).await.0, 404);
    assert_eq!(stack.admin("PUT", "/api/integrations", None).await.0, 405);
    assert_eq!(
        stack
            .admin("POST", "/api/integrations/x/chats", None)
            .await
            .0,
        405
    );
}
