//! The event subscription flow (`POST /dingtalk/{id}/events`): verify, decrypt,
//! de-duplicate and apply DingTalk's events to the group chat list, then answer
//! the encrypted `success` (ARCHITECTURE.md §2.2, §7.1).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha1::{Digest, Sha1};
use tracing::{Instrument, info, info_span, warn};

use crate::clock::{Clock, rfc3339};
use crate::dingtalk::{AppCredentials, DingTalkClient};
use crate::domain::ChatStatus;
use crate::domain::integration::Integration;
use crate::http::ApiError;
use crate::infra::crypto::{CallbackCrypto, CryptoError, EncryptedReply, random_nonce};
use crate::store::{ChatInstall, ChatWrite, Store, StoreError};

/// Largest callback body we read (DingTalk's events are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Tunables of the callback flow.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// How far the request timestamp may be from our clock (replay window).
    pub max_skew: Duration,
    /// Time allowed for looking a group's title up inside the request.
    pub title_lookup_budget: Duration,
    /// How long an event id is remembered for de-duplication.
    pub dedupe_ttl: Duration,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        Self {
            max_skew: Duration::from_secs(15 * 60),
            title_lookup_budget: Duration::from_millis(600),
            dedupe_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The query parameters of a callback request.
#[derive(Debug, Clone)]
pub struct CallbackQuery {
    /// `signature` (or `msg_signature`).
    pub signature: String,
    /// `timestamp` (or `timeStamp`), ms or s.
    pub timestamp: String,
    /// `nonce`.
    pub nonce: String,
}

impl CallbackQuery {
    /// Reads the parameters through `get`, accepting both spellings DingTalk uses.
    pub fn from_params(get: impl Fn(&str) -> Option<String>) -> Result<Self, CallbackError> {
        let first = |names: &[&'static str]| {
            names
                .iter()
                .find_map(|n| get(n).filter(|v| !v.is_empty()))
                .ok_or(CallbackError::MissingParameter(names[0]))
        };
        Ok(Self {
            signature: first(&["msg_signature", "signature"])?,
            timestamp: first(&["timestamp", "timeStamp"])?,
            nonce: first(&["nonce"])?,
        })
    }
}

/// Why a callback was refused (4xx) or failed (5xx).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// A required query parameter is missing.
    #[error("query parameter `{0}` is missing")]
    MissingParameter(&'static str),
    /// The body is not JSON with a string `encrypt`.
    #[error("body must be JSON of the form {{\"encrypt\": \"...\"}}")]
    MalformedBody,
    /// No such integration.
    #[error("unknown integration")]
    UnknownIntegration,
    /// The timestamp is not a number.
    #[error("timestamp is not a number")]
    BadTimestamp,
    /// The timestamp is outside the replay window.
    #[error("timestamp is too far from the current time (replayed or stale request)")]
    StaleTimestamp,
    /// The signature, decryption or receiver check failed.
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    /// The decrypted message is not a JSON event.
    #[error("decrypted message is not a JSON event with EventType")]
    MalformedEvent,
    /// The stored integration cannot build its crypto (bad stored key).
    #[error("integration's stored callback keys are unusable")]
    MisconfiguredIntegration,
    /// Our store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CallbackError> for ApiError {
    fn from(err: CallbackError) -> Self {
        let message = err.to_string();
        match err {
            CallbackError::MissingParameter(_) => ApiError::new(400, "missing_parameter", message),
            CallbackError::MalformedBody => ApiError::new(400, "malformed_body", message),
            CallbackError::UnknownIntegration => ApiError::not_found("integration"),
            CallbackError::BadTimestamp => ApiError::new(400, "bad_timestamp", message),
            CallbackError::StaleTimestamp => ApiError::new(403, "stale_timestamp", message),
            CallbackError::Crypto(CryptoError::SignatureMismatch) => {
                ApiError::new(403, "bad_signature", "signature does not match")
            }
            CallbackError::Crypto(CryptoError::ReceiverMismatch) => ApiError::new(
                403,
                "wrong_receiver",
                "message was encrypted for another app (receiver is neither the Client ID nor the CorpId)",
            ),
            CallbackError::Crypto(CryptoError::InvalidBase64) => {
                ApiError::new(400, "bad_base64", "encrypt is not valid base64")
            }
            CallbackError::Crypto(CryptoError::InvalidPadding) => {
                ApiError::new(400, "bad_padding", "decrypted message has invalid padding")
            }
            CallbackError::Crypto(
                CryptoError::InvalidLength | CryptoError::InvalidCiphertextLength,
            ) => ApiError::new(400, "bad_length", "encrypted message has an invalid length"),
            CallbackError::Crypto(_) => ApiError::new(400, "bad_ciphertext", message),
            CallbackError::MalformedEvent => ApiError::new(400, "malformed_event", message),
            CallbackError::MisconfiguredIntegration => ApiError::internal(&message),
            CallbackError::Store(err) => ApiError::internal(&err),
        }
    }
}

/// A decrypted DingTalk event we act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DingTalkEvent {
    /// URL verification on saving the subscription.
    CheckUrl,
    /// The cool app was installed (or uninstalled) in a group.
    CoolApp {
        /// Installed or uninstalled.
        status: ChatStatus,
        /// openConversationId.
        open_conversation_id: String,
        /// coolAppCode.
        cool_app_code: Option<String>,
        /// robotCode.
        robot_code: Option<String>,
        /// Operator userId.
        operator: Option<String>,
    },
    /// A group was renamed.
    TitleChanged {
        /// openConversationId.
        open_conversation_id: String,
        /// New name.
        title: String,
    },
    /// Anything else: acknowledged and logged.
    Other(String),
}

/// A parsed event with its envelope.
#[derive(Debug, Clone)]
pub struct EventEnvelope {
    /// EventType as sent.
    pub event_type: String,
    /// De-duplication key (eventId, BizId, or a digest of the message).
    pub dedupe_key: String,
    /// Event time in ms (EventTime, else the event's own time, else now).
    pub event_ms: i64,
    /// The event.
    pub event: DingTalkEvent,
}

/// First non-empty string among `names` (DingTalk mixes camelCase and PascalCase).
fn text_field(event: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match event.get(*name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

fn time_field(event: &Value, names: &[&str]) -> Option<i64> {
    text_field(event, names)
        .and_then(|t| t.parse::<i64>().ok())
        .map(to_ms)
}

/// Seconds or milliseconds to milliseconds (any i64: `abs` of `i64::MIN` would overflow).
fn to_ms(value: i64) -> i64 {
    if value.unsigned_abs() < 100_000_000_000 {
        value.saturating_mul(1000)
    } else {
        value
    }
}

/// Parses a decrypted event message.
pub fn parse_event(message: &str, now_ms: i64) -> Result<EventEnvelope, CallbackError> {
    let value: Value = serde_json::from_str(message).map_err(|_| CallbackError::MalformedEvent)?;
    let event_type =
        text_field(&value, &["EventType", "eventType"]).ok_or(CallbackError::MalformedEvent)?;
    let dedupe_key = text_field(&value, &["eventId", "EventId", "BizId", "bizId"])
        .unwrap_or_else(|| hex::encode(Sha1::digest(message.as_bytes())));
    let cid = || {
        text_field(&value, &["openConversationId", "OpenConversationId"])
            .ok_or(CallbackError::MalformedEvent)
    };
    let (event, own_time) = match event_type.as_str() {
        "check_url" => (DingTalkEvent::CheckUrl, None),
        "im_cool_app_install" | "im_cool_app_uninstall" => (
            DingTalkEvent::CoolApp {
                status: if event_type == "im_cool_app_install" {
                    ChatStatus::Installed
                } else {
                    ChatStatus::Uninstalled
                },
                open_conversation_id: cid()?,
                cool_app_code: text_field(&value, &["coolAppCode", "CoolAppCode"]),
                robot_code: text_field(&value, &["robotCode", "RobotCode"]),
                operator: text_field(&value, &["operator", "Operator"]),
            },
            time_field(&value, &["operateTime", "OperateTime"]),
        ),
        "chat_update_title" => (
            DingTalkEvent::TitleChanged {
                open_conversation_id: cid()?,
                title: text_field(&value, &["title", "Title"])
                    .ok_or(CallbackError::MalformedEvent)?,
            },
            time_field(&value, &["timeStamp", "TimeStamp"]),
        ),
        other => (DingTalkEvent::Other(other.to_string()), None),
    };
    let event_ms = time_field(&value, &["EventTime", "eventTime"])
        .or(own_time)
        .unwrap_or(now_ms);
    Ok(EventEnvelope {
        event_type,
        dedupe_key,
        event_ms,
        event,
    })
}

/// The event subscription service.
#[derive(Clone)]
pub struct EventSubscription {
    store: Store,
    dingtalk: DingTalkClient,
    clock: Arc<dyn Clock>,
    settings: CallbackSettings,
}

/// The `encrypt` string of a callback body (`{"encrypt": "…"}`); anything else is
/// [`CallbackError::MalformedBody`].
///
/// # Errors
/// The body is not JSON, not an object, or has no string `encrypt`.
pub fn encrypted_field(body: &[u8]) -> Result<String, CallbackError> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("encrypt").and_then(Value::as_str).map(String::from))
        .ok_or(CallbackError::MalformedBody)
}

impl EventSubscription {
    /// A service on `store`, using `dingtalk` for group lookups.
    pub fn new(
        store: Store,
        dingtalk: DingTalkClient,
        clock: Arc<dyn Clock>,
        settings: CallbackSettings,
    ) -> Self {
        Self {
            store,
            dingtalk,
            clock,
            settings,
        }
    }

    /// Handles one callback request and returns the encrypted `success` reply.
    /// Nothing is written unless the request verifies.
    pub async fn handle(
        &self,
        integration_id: &str,
        query: &CallbackQuery,
        body: &[u8],
    ) -> Result<EncryptedReply, CallbackError> {
        let encrypt = encrypted_field(body)?;
        let integration = self
            .store
            .get_integration(integration_id)
            .await?
            .ok_or(CallbackError::UnknownIntegration)?;
        let crypto = CallbackCrypto::new(integration.token.expose(), integration.aes_key.expose())
            .map_err(|_| CallbackError::MisconfiguredIntegration)?;
        crypto.verify_signature(&query.signature, &query.timestamp, &query.nonce, &encrypt)?;
        let sent_ms = query
            .timestamp
            .trim()
            .parse::<i64>()
            .map(to_ms)
            .map_err(|_| CallbackError::BadTimestamp)?;
        let now_ms = self.clock.now_ms();
        let max_skew_ms = i64::try_from(self.settings.max_skew.as_millis()).unwrap_or(i64::MAX);
        if now_ms.saturating_sub(sent_ms).abs() > max_skew_ms {
            return Err(CallbackError::StaleTimestamp);
        }
        let decrypted = crypto.decrypt(
            &encrypt,
            &[integration.client_id.as_str(), integration.corp_id.as_str()],
        )?;
        let envelope = parse_event(&decrypted.message, now_ms)?;
        let span = info_span!(
            "dingtalk_event",
            integration_id = %integration.id,
            event_type = %envelope.event_type,
            event_key = %envelope.dedupe_key
        );
        self.apply(&integration, envelope).instrument(span).await?;
        Ok(crypto.reply(
            "success",
            &decrypted.receiver,
            &now_ms.to_string(),
            &random_nonce(16),
        )?)
    }

    /// Applies an event once: duplicates (DingTalk retries) are acknowledged and skipped.
    async fn apply(
        &self,
        integration: &Integration,
        envelope: EventEnvelope,
    ) -> Result<(), CallbackError> {
        match &envelope.event {
            DingTalkEvent::CheckUrl => {
                info!("subscription URL verified");
                self.note_setup(&integration.id, "check_url_at", false)
                    .await;
                return Ok(());
            }
            DingTalkEvent::Other(kind) => {
                info!(event_type = %kind, "event type not used; acknowledged");
                return Ok(());
            }
            _ => {
                let field = format!("seen_{}", envelope.event_type);
                self.note_setup(&integration.id, &field, true).await;
            }
        }
        let claim = format!("event#{}", envelope.dedupe_key);
        let ttl = i64::try_from(self.settings.dedupe_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        if !self
            .store
            .claim(&integration.id, &claim, self.clock.now_secs(), ttl)
            .await?
        {
            info!("duplicate event; already applied");
            return Ok(());
        }
        if let Err(err) = self.apply_once(integration, &envelope).await {
            if let Err(release) = self.store.release(&integration.id, &claim).await {
                warn!(error = %release, "could not release event claim");
            }
            return Err(err);
        }
        Ok(())
    }

    async fn apply_once(
        &self,
        integration: &Integration,
        envelope: &EventEnvelope,
    ) -> Result<(), CallbackError> {
        let now = rfc3339(self.clock.now_ms());
        match &envelope.event {
            DingTalkEvent::CoolApp {
                status,
                open_conversation_id,
                cool_app_code,
                robot_code,
                operator,
            } => {
                let write = self
                    .store
                    .record_chat_status(&ChatInstall {
                        integration_id: integration.id.clone(),
                        open_conversation_id: open_conversation_id.clone(),
                        status: *status,
                        cool_app_code: cool_app_code.clone(),
                        robot_code: robot_code.clone(),
                        operator: operator.clone(),
                        event_ms: envelope.event_ms,
                        now,
                    })
                    .await?;
                info!(chat = %open_conversation_id, ?status, ?write, "cool app event");
                if write == ChatWrite::Applied && *status == ChatStatus::Installed {
                    self.lookup_title(
                        integration,
                        open_conversation_id,
                        cool_app_code.as_deref(),
                        envelope.event_ms,
                    )
                    .await;
                }
            }
            DingTalkEvent::TitleChanged {
                open_conversation_id,
                title,
            } => {
                let write = self
                    .store
                    .record_chat_title(
                        &integration.id,
                        open_conversation_id,
                        title,
                        envelope.event_ms,
                        &now,
                    )
                    .await?;
                info!(chat = %open_conversation_id, ?write, "group renamed");
            }
            DingTalkEvent::CheckUrl | DingTalkEvent::Other(_) => {}
        }
        Ok(())
    }

    /// Notes `field` = now on the integration's setup marker (first time only when
    /// `first_only`); best effort: a failure is logged, never the callback's.
    async fn note_setup(&self, integration_id: &str, field: &str, first_only: bool) {
        let now = rfc3339(self.clock.now_ms());
        if let Err(err) = self
            .store
            .note_setup(integration_id, field, &now, first_only)
            .await
        {
            warn!(error = %err, field, "could not note setup progress");
        }
    }

    /// Looks the group's title up within the time budget; on failure the chat keeps
    /// no title and the chat list fills it in later ([`refresh_missing_titles`]).
    /// The title is stamped with the install event's time, so any later rename
    /// event wins whatever the clocks say.
    async fn lookup_title(
        &self,
        integration: &Integration,
        open_conversation_id: &str,
        cool_app_code: Option<&str>,
        install_ms: i64,
    ) {
        let lookup = self.dingtalk.query_scene_group(
            AppCredentials::from(integration),
            open_conversation_id,
            cool_app_code,
        );
        let result = tokio::time::timeout(self.settings.title_lookup_budget, lookup).await;
        match &result {
            Ok(Ok(_)) => self.note_setup(&integration.id, "chat_ok_at", false).await,
            Ok(Err(err)) if err.kind() == "permission_denied" => {
                self.note_setup(&integration.id, "chat_denied_at", false)
                    .await;
            }
            _ => {}
        }
        match result {
            Ok(Ok(group)) if !group.title.is_empty() => {
                if let Err(err) = self
                    .store
                    .record_chat_title(
                        &integration.id,
                        open_conversation_id,
                        &group.title,
                        install_ms,
                        &rfc3339(self.clock.now_ms()),
                    )
                    .await
                {
                    warn!(error = %err, "could not store group title");
                }
            }
            Ok(Ok(_)) => warn!(chat = %open_conversation_id, "group query returned no title"),
            Ok(Err(err)) => {
                warn!(chat = %open_conversation_id, error = %err, kind = err.kind(), "group title lookup failed; will retry when the chat list is read")
            }
            Err(_) => {
                warn!(chat = %open_conversation_id, "group title lookup over budget; will retry when the chat list is read")
            }
        }
    }
}

/// Fills in missing titles of installed chats (at most `limit`, within `budget`),
/// for chats whose title lookup failed at install time. Returns how many were filled.
pub async fn refresh_missing_titles(
    store: &Store,
    dingtalk: &DingTalkClient,
    clock: &dyn Clock,
    integration: &Integration,
    chats: &mut [crate::domain::GroupChat],
    limit: usize,
    budget: Duration,
) -> usize {
    let deadline = tokio::time::Instant::now() + budget;
    let mut filled = 0;
    let missing = chats
        .iter_mut()
        .filter(|c| c.title.is_none() && c.status == ChatStatus::Installed)
        .take(limit);
    for chat in missing {
        let lookup = dingtalk.query_scene_group(
            AppCredentials::from(integration),
            &chat.open_conversation_id,
            chat.cool_app_code.as_deref(),
        );
        let Ok(Ok(group)) = tokio::time::timeout_at(deadline, lookup).await else {
            break;
        };
        if group.title.is_empty() {
            continue;
        }
        if store
            .record_chat_title(
                &integration.id,
                &chat.open_conversation_id,
                &group.title,
                chat.status_event_ms,
                &rfc3339(clock.now_ms()),
            )
            .await
            .is_ok()
        {
            chat.title = Some(group.title);
            filled += 1;
        }
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_documented_payloads() {
        let install = r#"{"EventType":"im_cool_app_install","EventTime":1641866135051,"CorpId":"ding1","BizId":"b1","eventId":"e1","coolAppCode":"COOLAPP-1","operateTime":"1641866135051","openConversationCorpId":"ding1","robotCode":"rb","openConversationId":"cid1","operator":"u1"}"#;
        let env = parse_event(install, 0).expect("install");
        assert_eq!(env.dedupe_key, "e1");
        assert_eq!(env.event_ms, 1_641_866_135_051);
        assert!(
            matches!(env.event, DingTalkEvent::CoolApp { status: ChatStatus::Installed, ref cool_app_code, .. } if cool_app_code.as_deref() == Some("COOLAPP-1"))
        );

        let legacy = r#"{"EventType":"chat_update_title","ChatId":"chat1","OpenConversationId":"cid==","Title":"告警群","TimeStamp":1700000001000}"#;
        let env = parse_event(legacy, 5).expect("legacy");
        assert_eq!(env.event_ms, 1_700_000_001_000);
        assert_eq!(
            env.event,
            DingTalkEvent::TitleChanged {
                open_conversation_id: "cid==".into(),
                title: "告警群".into()
            }
        );
        assert_eq!(env.dedupe_key.len(), 40);

        let other = parse_event(r#"{"EventType":"user_add_org","eventId":"x"}"#, 9).expect("other");
        assert_eq!(other.event, DingTalkEvent::Other("user_add_org".into()));
        assert_eq!(other.event_ms, 9);
    }

    #[test]
    fn rejects_events_missing_what_they_need() {
        for bad in [
            "not json",
            "{}",
            r#"{"EventType":"im_cool_app_install"}"#,
            r#"{"EventType":"chat_update_title","openConversationId":"c"}"#,
        ] {
            assert!(parse_event(bad, 0).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_accepts_both_spellings() {
        let q = CallbackQuery::from_params(|n| match n {
            "msg_signature" => Some("s".into()),
            "timeStamp" => Some("1".into()),
            "nonce" => Some("n".into()),
            _ => None,
        })
        .expect("query");
        assert_eq!((q.signature.as_str(), q.timestamp.as_str()), ("s", "1"));
        assert!(matches!(
            CallbackQuery::from_params(|n| (n == "nonce").then(|| "n".into())),
            Err(CallbackError::MissingParameter("msg_signature"))
        ));
    }
}
