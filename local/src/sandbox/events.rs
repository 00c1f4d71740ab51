//! Acting as DingTalk towards our event callback: build the encrypted, signed
//! requests DingTalk sends (ARCHITECTURE.md §2.2, §7.1).

use serde_json::{Value, json};
use shared::infra::crypto::{CallbackCrypto, CryptoError, random_nonce};

/// An event request as DingTalk would send it.
#[derive(Debug, Clone)]
pub struct SignedEvent {
    /// `signature`.
    pub signature: String,
    /// `timestamp` (ms).
    pub timestamp: String,
    /// `nonce`.
    pub nonce: String,
    /// Body `{"encrypt": ...}`.
    pub body: Value,
}

impl SignedEvent {
    /// Path and query for `POST` to our callback.
    pub fn path_and_query(&self, integration_id: &str) -> String {
        format!(
            "/dingtalk/{integration_id}/events?signature={}&timestamp={}&nonce={}",
            self.signature, self.timestamp, self.nonce
        )
    }
}

/// Encrypts and signs `event` for an app's event subscription.
pub fn sign_event(
    token: &str,
    aes_key: &str,
    receiver: &str,
    event: &Value,
    timestamp_ms: i64,
) -> Result<SignedEvent, CryptoError> {
    let crypto = CallbackCrypto::new(token, aes_key)?;
    let encrypt = crypto.encrypt(&event.to_string(), receiver)?;
    let timestamp = timestamp_ms.to_string();
    let nonce = random_nonce(8);
    Ok(SignedEvent {
        signature: crypto.signature(&timestamp, &nonce, &encrypt),
        timestamp,
        nonce,
        body: json!({ "encrypt": encrypt }),
    })
}

/// `check_url`.
pub fn check_url() -> Value {
    json!({"EventType": "check_url"})
}

/// `im_cool_app_install` (or `_uninstall` with `installed = false`).
pub fn cool_app_event(
    installed: bool,
    corp_id: &str,
    open_conversation_id: &str,
    cool_app_code: &str,
    robot_code: &str,
    operator: &str,
    event_ms: i64,
) -> Value {
    let event_type = if installed {
        "im_cool_app_install"
    } else {
        "im_cool_app_uninstall"
    };
    json!({
        "EventType": event_type,
        "EventTime": event_ms,
        "CorpId": corp_id,
        "BizId": uuid::Uuid::new_v4().simple().to_string(),
        "eventId": uuid::Uuid::new_v4().simple().to_string(),
        "coolAppCode": cool_app_code,
        "operateTime": event_ms.to_string(),
        "openConversationCorpId": corp_id,
        "robotCode": robot_code,
        "openConversationId": open_conversation_id,
        "operator": operator,
    })
}

/// `chat_update_title`.
pub fn title_event(
    corp_id: &str,
    open_conversation_id: &str,
    title: &str,
    operator: &str,
    event_ms: i64,
) -> Value {
    json!({
        "EventType": "chat_update_title",
        "EventTime": event_ms,
        "CorpId": corp_id,
        "BizId": uuid::Uuid::new_v4().simple().to_string(),
        "eventId": uuid::Uuid::new_v4().simple().to_string(),
        "timeStamp": event_ms,
        "chatId": format!("chat{}", uuid::Uuid::new_v4().simple()),
        "corpId": corp_id,
        "operatorUnionId": format!("union-{operator}"),
        "title": title,
        "openConversationId": open_conversation_id,
        "operator": operator,
    })
}

impl super::Sandbox {
    /// Pushes `event` to `app_key`'s event subscription like DingTalk: encrypted for
    /// the app's Client ID, signed, POSTed; the answer must be the encrypted `success`.
    pub async fn push_event(
        &self,
        app_key: &str,
        event: &Value,
        subject: &str,
    ) -> super::EventDelivery {
        let event_type = event
            .get("EventType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut delivery = super::EventDelivery {
            event_type,
            subject: subject.to_string(),
            status: 0,
            acknowledged: false,
            detail: String::new(),
            at_ms: super::now_ms(),
        };
        match self.subscription(app_key) {
            None => delivery.detail = "the app has no event subscription URL".into(),
            Some(subscription) => match deliver(&subscription, app_key, event).await {
                Ok((status, acknowledged, detail)) => {
                    delivery.status = status;
                    delivery.acknowledged = acknowledged;
                    delivery.detail = detail;
                }
                Err(detail) => delivery.detail = detail,
            },
        }
        self.record_delivery(delivery.clone());
        delivery
    }
}

/// Sends one event; returns (status, acknowledged, detail).
pub(super) async fn deliver(
    subscription: &super::Subscription,
    receiver: &str,
    event: &Value,
) -> Result<(u16, bool, String), String> {
    let signed = sign_event(
        &subscription.token,
        &subscription.aes_key,
        receiver,
        event,
        super::now_ms(),
    )
    .map_err(|e| format!("cannot encrypt: {e}"))?;
    let url = format!(
        "{}?signature={}&timestamp={}&nonce={}",
        subscription.url, signed.signature, signed.timestamp, signed.nonce
    );
    let response = reqwest::Client::new()
        .post(url)
        .timeout(std::time::Duration::from_millis(1500))
        .json(&signed.body)
        .send()
        .await
        .map_err(|e| {
            format!(
                "callback unreachable or over DingTalk's 1.5 s: {}",
                e.without_url()
            )
        })?;
    let status = response.status().as_u16();
    let reply: Value = response.json().await.unwrap_or(Value::Null);
    if status != 200 {
        let detail = reply
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("callback refused the event")
            .to_string();
        return Ok((status, false, detail));
    }
    let crypto = CallbackCrypto::new(&subscription.token, &subscription.aes_key)
        .map_err(|e| format!("bad keys: {e}"))?;
    let field = |name: &str| reply.get(name).and_then(Value::as_str).unwrap_or_default();
    let verified = crypto
        .verify_signature(
            field("msg_signature"),
            field("timeStamp"),
            field("nonce"),
            field("encrypt"),
        )
        .and_then(|()| crypto.decrypt(field("encrypt"), &[receiver]));
    Ok(match verified {
        Ok(plain) if plain.message == "success" => (status, true, "success".into()),
        Ok(plain) => (
            status,
            false,
            format!("reply decrypted to {:?}", plain.message),
        ),
        Err(e) => (status, false, format!("reply did not verify: {e}")),
    })
}

impl super::Sandbox {
    /// A person presses a button on a card, like in DingTalk: the signed callback
    /// goes to the URL registered for the card's route key, and the answer's
    /// `cardData` / `userPrivateData` are applied to the card. Returns the answer.
    pub async fn click_card(
        &self,
        out_track_id: &str,
        user_id: &str,
        params: &Value,
    ) -> Result<Value, String> {
        let card = self
            .cards()
            .into_iter()
            .find(|c| c.out_track_id == out_track_id)
            .ok_or("no such card")?;
        let route_key = card
            .callback_route_key
            .clone()
            .ok_or("the card has no callback route key")?;
        let route = self
            .callback_routes()
            .get(&route_key)
            .cloned()
            .ok_or("no callback registered for the card's route key")?;
        let corp_id = self
            .apps()
            .first()
            .map(|a| a.corp_id.clone())
            .unwrap_or_default();
        let content =
            json!({"cardPrivateData": {"actionIds": ["action"], "params": params}}).to_string();
        let (space_type, space_id) = card
            .spaces
            .first()
            .and_then(|s| s.trim_start_matches("dtv1.card//").split_once('.'))
            .map(|(t, i)| (t.to_string(), i.to_string()))
            .unwrap_or_default();
        let body = json!({"type": "actionCallback", "outTrackId": out_track_id, "corpId": corp_id, "userId": user_id,
                          "content": content, "value": content, "extension": "{}", "spaceType": space_type,
                          "spaceId": space_id, "userIdType": 1});
        let timestamp = super::now_ms().to_string();
        let signature =
            shared::infra::crypto::card_callback_signature(&route.api_secret, &timestamp);
        let response = reqwest::Client::new()
            .post(&route.url)
            .timeout(std::time::Duration::from_secs(2))
            .header("x-ddpaas-signature-timestamp", &timestamp)
            .header("x-ddpaas-signature", &signature)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "callback unreachable or over DingTalk's 2 s: {}",
                    e.without_url()
                )
            })?;
        let status = response.status().as_u16();
        let answer: Value = response
            .json()
            .await
            .map_err(|e| format!("answer is not JSON: {e}"))?;
        if status != 200 {
            return Err(format!("callback answered HTTP {status}: {answer}"));
        }
        self.apply_card_answer(out_track_id, user_id, &answer);
        Ok(answer)
    }
}
