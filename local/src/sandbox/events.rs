//! Acting as DingTalk towards our event callback: build the encrypted, signed
//! requests DingTalk sends (protocol reference §1, §2).

use serde_json::{Value, json};
use shared::crypto::{CallbackCrypto, CryptoError, random_nonce};

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
