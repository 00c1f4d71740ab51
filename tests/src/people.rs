//! What people do in DingTalk, as the test stack sees it: a signed card button
//! click and calls to the H5 app's API.

use serde_json::{Value, json};
use shared::infra::crypto::card_callback_signature;

use crate::{APP, TestStack, read, request};

impl TestStack {
    /// Creates an integration with the card template and `extra` fields, runs verify
    /// (so card callbacks are registered with the sandbox); returns its id.
    pub async fn create_card_integration(&self, extra: Value) -> String {
        let mut payload = self.create_payload();
        payload["card_template_id"] = json!("tpl-incident.schema");
        for (field, value) in extra.as_object().into_iter().flatten() {
            payload[field] = value.clone();
        }
        let (status, created) = self.admin("POST", "/api/integrations", Some(payload)).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        let (status, verified) = self
            .admin("POST", &format!("/api/integrations/{id}/verify"), None)
            .await;
        assert_eq!(status, 200, "{verified}");
        id
    }

    /// The incident id of alert `key` and the outTrackId of its (first) card.
    pub async fn incident_and_card(&self, id: &str, key: &str) -> (String, String) {
        let incident = self.incident_by_key(id, key).await;
        let incident_id = incident["id"].as_str().expect("incident").to_string();
        let card = self
            .sandbox
            .cards()
            .into_iter()
            .find(|c| c.card_data.get("incident").and_then(Value::as_str) == Some(&incident_id))
            .expect("card");
        (incident_id, card.out_track_id)
    }

    /// DingTalk user `user` presses a button with `params` on card `out_track_id` of
    /// integration `id`: the callback DingTalk sends, signed with the apiSecret the
    /// sandbox holds since verify, at `timestamp_ms`.
    pub async fn click_card(
        &self,
        id: &str,
        (out_track_id, user): (&str, &str),
        params: Value,
        timestamp_ms: i64,
    ) -> (u16, Value) {
        let secret = self.sandbox.callback_routes()[&format!("dtinc-{id}")]
            .api_secret
            .clone();
        let content =
            json!({"cardPrivateData": {"actionIds": ["a"], "params": params}}).to_string();
        let body = json!({"type": "actionCallback", "outTrackId": out_track_id, "corpId": APP.corp_id,
                          "userId": user, "content": content, "spaceType": "IM_GROUP", "userIdType": 1});
        let timestamp = timestamp_ms.to_string();
        let headers = [
            ("content-type", "application/json".to_string()),
            ("x-ddpaas-signature-timestamp", timestamp.clone()),
            (
                "x-ddpaas-signature",
                card_callback_signature(&secret, &timestamp),
            ),
        ];
        let path = format!("/dingtalk/{id}/cards");
        read(
            self.callback
                .handle(request(
                    "POST",
                    &path,
                    &headers,
                    Some(body.to_string().into_bytes()),
                ))
                .await,
        )
    }

    /// Calls the H5 app's API of integration `id` (`path` under `/app/api`).
    pub async fn h5_call(
        &self,
        id: &str,
        (method, path): (&str, &str),
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(token) = token {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        let path = format!("/dingtalk/{id}/app/api{path}");
        read(
            self.h5
                .handle(request(
                    method,
                    &path,
                    &headers,
                    body.map(|b| b.to_string().into_bytes()),
                ))
                .await,
        )
    }

    /// Logs DingTalk user `user` into the H5 app of integration `id`; returns the
    /// session token and the login answer.
    pub async fn h5_login(&self, id: &str, user: &str) -> (String, Value) {
        let code = self.sandbox.issue_auth_code(user);
        let (status, body) = self
            .h5_call(id, ("POST", "/login"), None, Some(json!({"code": code})))
            .await;
        assert_eq!(status, 200, "{body}");
        (body["session"].as_str().expect("session").to_string(), body)
    }
}
