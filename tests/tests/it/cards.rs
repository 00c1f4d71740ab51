//! Acceptance of interactive card buttons: a signed click acts as the bound member,
//! the answer carries the new state, every other copy is updated once by the queued
//! job, the upstream webhook gets one signed event, and repeated clicks change nothing.

use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use integration_tests::{TestStack, alert_body, read, request};
use serde_json::{Value, json};
use sha2::Sha256;
use shared::infra::crypto::card_callback_signature;

const GROUP_A: &str = "cidGroupA000000000000001==";
const GROUP_B: &str = "cidGroupB000000000000002==";

type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, String)>>>;

/// A webhook receiver on loopback that records what it gets.
async fn webhook_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                store.lock().expect("lock").push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

struct Cards {
    stack: TestStack,
    id: String,
    webhook_secret: String,
    received: Received,
}

impl Cards {
    /// The version of the newest incident.
    async fn incident_version(&self) -> u64 {
        self.stack
            .services
            .store
            .list_incidents(&self.id)
            .await
            .expect("list")[0]
            .version
    }

    async fn start() -> Self {
        let stack = TestStack::start().await;
        let (hook, received) = webhook_receiver().await;
        let mut payload = stack.create_payload();
        payload["card_template_id"] = json!("tpl-incident.schema");
        payload["webhook_url"] = json!(hook);
        let (status, created) = stack
            .admin("POST", "/api/integrations", Some(payload))
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        let webhook_secret = created["webhook_secret"]
            .as_str()
            .expect("webhook secret")
            .to_string();
        let (status, verified) = stack
            .admin("POST", &format!("/api/integrations/{id}/verify"), None)
            .await;
        assert_eq!(status, 200, "{verified}");
        assert_eq!(verified["checks"][1]["check"], "card_callback");
        assert_eq!(verified["checks"][1]["ok"], true, "{verified}");
        stack.install_chat(&id, GROUP_A, "Group A").await;
        stack.install_chat(&id, GROUP_B, "Group B").await;
        stack
            .add_member(&id, "alice@example.com", "Alice", Some("alice0001"))
            .await;
        Self {
            stack,
            id,
            webhook_secret,
            received,
        }
    }

    /// What DingTalk holds after verify: the apiSecret of our route.
    fn api_secret(&self) -> String {
        self.stack.sandbox.callback_routes()[&format!("dtinc-{}", self.id)]
            .api_secret
            .clone()
    }

    async fn click(
        &self,
        out_track_id: &str,
        user: &str,
        action: &str,
        secret: &str,
        timestamp_ms: i64,
    ) -> (u16, Value) {
        let content =
            json!({"cardPrivateData": {"actionIds": ["a"], "params": {"action": action}}})
                .to_string();
        let body = json!({"type": "actionCallback", "outTrackId": out_track_id, "corpId": integration_tests::APP.corp_id,
                          "userId": user, "content": content, "value": content, "spaceType": "IM_GROUP", "userIdType": 1});
        let timestamp = timestamp_ms.to_string();
        let headers = [
            ("content-type", "application/json".to_string()),
            ("x-ddpaas-signature-timestamp", timestamp.clone()),
            (
                "x-ddpaas-signature",
                card_callback_signature(secret, &timestamp),
            ),
        ];
        let path = format!("/dingtalk/{}/cards", self.id);
        read(
            self.stack
                .callback
                .handle(request(
                    "POST",
                    &path,
                    &headers,
                    Some(body.to_string().into_bytes()),
                ))
                .await,
        )
    }

    fn card_in(&self, space: &str) -> local_stack::sandbox::CardInstance {
        self.stack
            .sandbox
            .cards()
            .into_iter()
            .find(|c| c.spaces.iter().any(|s| s.ends_with(space)))
            .expect("card")
    }

    async fn alert(&self, key: &str) -> String {
        let body = alert_body(
            &self.id,
            key,
            "firing",
            "2026-11-24T01:00:00Z",
            json!({"chats": [GROUP_A, GROUP_B], "members": ["alice@example.com"]}),
        );
        assert!(self.stack.deliver(&[(key, body)]).await.is_empty());
        assert_eq!(
            self.stack.sandbox.cards().len(),
            3,
            "two groups and one person"
        );
        self.card_in(GROUP_A).out_track_id
    }
}

fn now_ms() -> i64 {
    integration_tests::now_ms()
}

#[tokio::test]
async fn a_click_updates_every_copy_once_and_tells_upstream() {
    let cards = Cards::start().await;
    let clicked = cards.alert("card-flow").await;
    let secret = cards.api_secret();

    let (status, answer) = cards
        .click(&clicked, "alice0001", "ack", &secret, now_ms())
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["cardData"]["cardParamMap"]["status"], "acknowledged");
    assert_eq!(answer["cardData"]["cardParamMap"]["acked_by"], "Alice");
    assert_eq!(answer["cardData"]["cardParamMap"]["show_ack"], "false");
    assert_eq!(answer["cardUpdateOptions"]["updateCardDataByKey"], true);

    cards.stack.run_jobs().await;
    assert_eq!(cards.card_in(GROUP_B).updates, 1, "group B updated once");
    assert_eq!(
        cards.card_in("IM_ROBOT.alice0001").updates,
        1,
        "the 1:1 card updated once"
    );
    assert_eq!(
        cards.card_in(GROUP_A).updates,
        0,
        "the clicked card was updated by the answer"
    );
    assert_eq!(cards.card_in(GROUP_B).card_data["status"], "acknowledged");

    let received = cards.received.lock().expect("lock").clone();
    assert_eq!(received.len(), 1, "one webhook event");
    let (headers, body) = &received[0];
    let timestamp = headers["x-incident-timestamp"].to_str().expect("ts");
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(cards.webhook_secret.as_bytes()).expect("key");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    assert_eq!(
        headers["x-incident-signature"].to_str().expect("sig"),
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let event: Value = serde_json::from_str(body).expect("json");
    assert_eq!(event["type"], "incident.acknowledged");
    assert_eq!(event["incident"]["status"], "acknowledged");

    // A second click changes nothing.
    let version = cards.incident_version().await;
    let (status, again) = cards
        .click(&clicked, "alice0001", "ack", &secret, now_ms())
        .await;
    assert_eq!(
        (status, again["cardData"]["cardParamMap"]["status"].as_str()),
        (200, Some("acknowledged"))
    );
    cards.stack.run_jobs().await;
    assert_eq!(cards.incident_version().await, version);
    assert_eq!(cards.received.lock().expect("lock").len(), 1);
    assert_eq!(cards.card_in(GROUP_B).updates, 1);
}

#[tokio::test]
async fn bad_clicks_change_nothing() {
    let cards = Cards::start().await;
    let clicked = cards.alert("bad-clicks").await;
    let secret = cards.api_secret();
    let version = || cards.incident_version();
    let before = version().await;

    let (status, body) = cards
        .click(&clicked, "alice0001", "ack", "forged-secret", now_ms())
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("bad_signature"))
    );
    let (status, body) = cards
        .click(&clicked, "alice0001", "ack", &secret, now_ms() - 3_600_000)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("stale_timestamp"))
    );
    let (status, body) = cards
        .click("someoneelse-0000", "alice0001", "ack", &secret, now_ms())
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("unknown_card"))
    );

    // Unbound user: a private notice, and a 1:1 message with the app link.
    cards
        .stack
        .sandbox
        .add_user(local_stack::sandbox::SandboxUser {
            user_id: "eve0005".into(),
            union_id: "u5".into(),
            name: "Eve".into(),
            email: None,
            mobile: None,
        });
    let (status, body) = cards
        .click(&clicked, "eve0005", "ack", &secret, now_ms())
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["userPrivateData"]["cardParamMap"]["notice"]
            .as_str()
            .expect("notice")
            .contains("not associated")
    );
    cards.stack.run_jobs().await;
    let prompts: Vec<_> = cards
        .stack
        .sandbox
        .messages()
        .into_iter()
        .filter(|m| m.target == local_stack::sandbox::MessageTarget::User("eve0005".into()))
        .collect();
    assert_eq!(prompts.len(), 1);
    assert!(
        prompts[0].msg_param["singleURL"]
            .as_str()
            .expect("url")
            .starts_with("dingtalk://dingtalkclient/page/link?url=")
    );

    // Unlicensed member: a private notice.
    let (status, _) = cards
        .stack
        .admin(
            "POST",
            &format!("/api/integrations/{}/members", cards.id),
            Some(json!({"email": "alice@example.com", "name": "Alice", "licensed": false})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = cards
        .click(&clicked, "alice0001", "resolve", &secret, now_ms())
        .await;
    assert_eq!(status, 200);
    assert!(
        body["userPrivateData"]["cardParamMap"]["notice"]
            .as_str()
            .expect("notice")
            .contains("no licence")
    );
    assert_eq!(body["cardData"]["cardParamMap"]["status"], "firing");

    assert_eq!(version().await, before, "nothing changed");
    assert!(
        cards.received.lock().expect("lock").is_empty(),
        "no webhook"
    );
}

#[tokio::test]
async fn a_card_signature_is_used_once() {
    let cards = Cards::start().await;
    let clicked = cards.alert("signature-reuse").await;
    let secret = cards.api_secret();
    let at = now_ms();
    let (status, body) = cards.click(&clicked, "alice0001", "ack", &secret, at).await;
    assert_eq!(status, 200, "{body}");
    let before = cards.incident_version().await;
    // The same (timestamp, signature) with another body: DingTalk signs only the timestamp.
    let (status, body) = cards
        .click(&clicked, "alice0001", "resolve", &secret, at)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("signature_reused"))
    );
    assert_eq!(cards.incident_version().await, before, "nothing changed");
}
