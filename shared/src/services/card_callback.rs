//! Interactive card button callbacks (`POST /dingtalk/{id}/cards`): verify DingTalk's
//! signature and the card, act as the clicker's bound and licensed member through the
//! same service the H5 app uses, and answer the updated card within 2 s. Every other
//! copy of the card is updated by the queued `incident_changed` job, never here. A
//! click by someone not associated yet is held and replayed once they associate
//! (see [`super::replay`]).

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tracing::{info, warn};

use crate::clock::Clock;
use crate::domain::delivery::{Channel, DeliveryKey};
use crate::domain::incident::Incident;
use crate::domain::integration::Integration;
use crate::domain::locale::Locale;
use crate::domain::member::Member;
use crate::domain::refusal::Refusal;
use crate::http::ApiError;
use crate::infra::crypto::verify_card_callback_signature;
use crate::render::strings::{Strings, fill};
use crate::render::{self, RenderContext};
use crate::services::incident_actions::{Action, ActionError, IncidentActions};
use crate::services::replay;
use crate::store::{Store, StoreError};
use sha2::{Digest, Sha256};

/// How far the signature timestamp may be from our clock.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;
/// Largest callback body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How long after a click our answer still counts as shown (DingTalk waits 2 s);
/// a later answer leaves the clicked copy to the card fan-out job.
pub const ANSWER_BUDGET: std::time::Duration = std::time::Duration::from_millis(1800);

/// Why a card callback was refused.
#[derive(Debug, thiserror::Error)]
pub enum CardCallbackError {
    /// No such integration.
    #[error("unknown integration")]
    UnknownIntegration,
    /// The card callback route was never registered (run verify).
    #[error(
        "card callbacks are not registered for this integration: run POST /api/integrations/{{id}}/verify"
    )]
    NotRegistered,
    /// Missing or wrong `x-ddpaas-signature`.
    #[error("card callback signature missing or wrong")]
    BadSignature,
    /// The timestamp is outside the replay window.
    #[error("card callback timestamp is stale")]
    Stale,
    /// This (timestamp, signature) pair was used already: DingTalk signs only the
    /// timestamp, so a second use could carry another body.
    #[error("card callback signature already used")]
    Replayed,
    /// The body is not a card callback.
    #[error("{0}")]
    Malformed(String),
    /// The outTrackId is not a card we issued for this integration.
    #[error("unknown card")]
    UnknownCard,
    /// Our store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CardCallbackError> for ApiError {
    fn from(err: CardCallbackError) -> Self {
        let message = err.to_string();
        match err {
            CardCallbackError::UnknownIntegration => ApiError::not_found("integration"),
            CardCallbackError::NotRegistered => ApiError::new(403, "not_registered", message),
            CardCallbackError::BadSignature => ApiError::new(403, "bad_signature", message),
            CardCallbackError::Stale => ApiError::new(403, "stale_timestamp", message),
            CardCallbackError::Replayed => ApiError::new(403, "signature_reused", message),
            CardCallbackError::Malformed(_) => ApiError::new(400, "malformed_callback", message),
            CardCallbackError::UnknownCard => ApiError::new(404, "unknown_card", message),
            CardCallbackError::Store(e) => ApiError::internal(&e),
        }
    }
}

/// What a card click says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Click {
    out_track_id: String,
    user_id: String,
    action: String,
    duration: Option<String>,
    /// The member a Reassign button names.
    member: Option<String>,
    /// The incident the button names, if it names one.
    incident: Option<String>,
}

impl Click {
    /// Reads a callback body (`content`, or `value`, is a JSON string).
    fn parse(body: &[u8]) -> Result<Self, CardCallbackError> {
        let callback: Value = serde_json::from_slice(body)
            .map_err(|_| CardCallbackError::Malformed("body is not JSON".into()))?;
        let text = |name: &str| {
            callback
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let out_track_id = text("outTrackId")
            .ok_or_else(|| CardCallbackError::Malformed("outTrackId missing".into()))?;
        let user_id =
            text("userId").ok_or_else(|| CardCallbackError::Malformed("userId missing".into()))?;
        let content: Value = text("content")
            .or_else(|| text("value"))
            .and_then(|c| serde_json::from_str(c).ok())
            .ok_or_else(|| CardCallbackError::Malformed("content is not a JSON string".into()))?;
        let param = |name: &str| {
            content
                .pointer(&format!("/cardPrivateData/params/{name}"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Ok(Self {
            out_track_id: out_track_id.to_string(),
            user_id: user_id.to_string(),
            action: param("action").unwrap_or_default(),
            duration: param("duration"),
            member: param("member"),
            incident: param("incident"),
        })
    }
}

/// The card callback service.
#[derive(Clone)]
pub struct CardCallback {
    store: Store,
    clock: Arc<dyn Clock>,
    actions: IncidentActions,
    public_base_url: Option<String>,
}

/// The callback answer: the shared card data and the clicker's private data.
fn answer(card: Map<String, Value>, private: Map<String, Value>) -> Value {
    json!({
        "cardData": {"cardParamMap": card},
        "userPrivateData": {"cardParamMap": private},
        "cardUpdateOptions": {"updateCardDataByKey": true, "updatePrivateDataByKey": true},
    })
}

fn notice(text: &str) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("notice".into(), Value::from(text));
    map.insert("show_notice".into(), Value::from("true"));
    map
}

/// Whether a signature timestamp (s or ms) is within [`MAX_SKEW_MS`] of `now_ms`.
/// Any text is an answer: `abs` and `-` of extreme values would overflow.
fn fresh(timestamp: &str, now_ms: i64) -> bool {
    let Ok(sent) = timestamp.trim().parse::<i64>() else {
        return false;
    };
    let sent_ms = if sent.unsigned_abs() < 100_000_000_000 {
        sent.saturating_mul(1000)
    } else {
        sent
    };
    now_ms.abs_diff(sent_ms) <= MAX_SKEW_MS.unsigned_abs()
}

impl CardCallback {
    /// The service.
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        actions: IncidentActions,
        public_base_url: Option<String>,
    ) -> Self {
        Self {
            store,
            clock,
            actions,
            public_base_url,
        }
    }

    /// Checks the signature and its freshness, and uses the (timestamp, signature)
    /// pair up: a second callback with the same pair is refused.
    async fn authenticate(
        &self,
        integration_id: &str,
        secret: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<(), CardCallbackError> {
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
            return Err(CardCallbackError::BadSignature);
        };
        if !verify_card_callback_signature(secret, timestamp, signature) {
            return Err(CardCallbackError::BadSignature);
        }
        let now_ms = self.clock.now_ms();
        if !fresh(timestamp, now_ms) {
            return Err(CardCallbackError::Stale);
        }
        // The pair as verified (trimmed), so whitespace cannot make a second claim.
        let digest = hex::encode(Sha256::digest(
            format!("{}.{}", timestamp.trim(), signature.trim()).as_bytes(),
        ));
        let key = format!("CARDSIG#{}", &digest[..32]);
        // Kept for both sides of the freshness window, so it outlives the pair.
        let ttl_secs = 2 * MAX_SKEW_MS / 1000;
        if self
            .store
            .claim(integration_id, &key, now_ms / 1000, ttl_secs)
            .await?
        {
            Ok(())
        } else {
            Err(CardCallbackError::Replayed)
        }
    }

    /// Handles one callback; `timestamp` and `signature` are the `x-ddpaas-*` headers.
    pub async fn handle(
        &self,
        integration_id: &str,
        timestamp: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> Result<Value, CardCallbackError> {
        let started = tokio::time::Instant::now();
        let integration = self
            .store
            .get_integration(integration_id)
            .await?
            .ok_or(CardCallbackError::UnknownIntegration)?;
        let secret = integration
            .card_api_secret
            .clone()
            .ok_or(CardCallbackError::NotRegistered)?;
        self.authenticate(&integration.id, secret.expose(), timestamp, signature)
            .await?;
        let click = Click::parse(body)?;
        let incident = self.issued_card(&integration, &click.out_track_id).await?;
        if click
            .incident
            .as_deref()
            .is_some_and(|named| named != incident.id)
        {
            return Err(CardCallbackError::UnknownCard);
        }
        let ctx_base = self
            .public_base_url
            .clone()
            .or_else(|| integration.public_base_url.clone())
            .unwrap_or_default();
        let now_ms = self.clock.now_ms();
        let card_now = |i: &Incident| {
            let (ctx, _) = RenderContext::for_incident(&integration, &ctx_base, i, now_ms);
            render::card_params(i, &ctx)
        };
        let s = Strings::of(integration.locale);

        let Some(action) = Action::parse(
            &click.action,
            click.duration.as_deref(),
            click.member.as_deref(),
        ) else {
            return Ok(answer(card_now(&incident), notice(s.card_unknown_button)));
        };
        let member = match self
            .clicker(&integration, &click.user_id, &incident, &ctx_base, &action)
            .await?
        {
            Ok(member) => member,
            Err(private) => return Ok(answer(card_now(&incident), private)),
        };
        let result = self
            .actions
            .apply(&integration.id, &incident.id, &member, action, None)
            .await;
        let (updated, private) = outcome(result, &incident, integration.locale)?;
        let card = card_now(&updated);
        if started.elapsed() < ANSWER_BUDGET {
            self.remember_answered_card(&updated, &click.out_track_id, &card)
                .await?;
        } else {
            // DingTalk has likely given up on this answer: the fan-out job updates
            // the clicked copy like the others.
            warn!(incident_id = %updated.id, elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX), "card answer is late");
        }
        Ok(answer(card, private))
    }

    /// The member behind a clicking DingTalk user, or the private notice to show.
    /// An unassociated user's `action` is held for 15 minutes (replayed once they
    /// associate in the app) and a 1:1 link prompt is queued.
    async fn clicker(
        &self,
        integration: &Integration,
        user_id: &str,
        incident: &Incident,
        base_url: &str,
        action: &Action,
    ) -> Result<Result<Member, Map<String, Value>>, CardCallbackError> {
        let Some(binding) = self.store.binding_of_user(&integration.id, user_id).await? else {
            info!(integration_id = %integration.id, "card click by an unassociated user");
            let click = replay::Click {
                integration_id: &integration.id,
                user_id,
                incident_id: &incident.id,
                source: replay::HoldSource::Card,
            };
            let held = replay::hold(&self.store, click, action, self.clock.now_ms()).await;
            if let Err(err) = &held {
                warn!(integration_id = %integration.id, error = %err, "could not hold the click");
            }
            self.actions
                .queue_link_prompt(&integration.id, user_id)
                .await;
            let link = render::incident_url(base_url, incident, None);
            let s = Strings::of(integration.locale);
            let text = if held.is_ok() {
                s.card_held
            } else {
                s.card_not_associated
            };
            return Ok(Err(notice(&fill(text, &[("link", &link)]))));
        };
        match self
            .store
            .get_member(&integration.id, &binding.member)
            .await?
        {
            Some(member) => Ok(Ok(member)),
            None => Ok(Err(notice(
                Strings::of(integration.locale).card_member_gone,
            ))),
        }
    }

    /// The clicked copy is updated by our answer: remember its content, so the
    /// fan-out job skips it as unchanged.
    async fn remember_answered_card(
        &self,
        incident: &Incident,
        out_track_id: &str,
        card: &Map<String, Value>,
    ) -> Result<(), CardCallbackError> {
        let clicked = self
            .store
            .list_deliveries(&incident.id)
            .await?
            .into_iter()
            .find(|d| d.alert_ref.as_deref() == Some(out_track_id));
        if let Some(delivery) = clicked {
            let key = DeliveryKey {
                round: delivery.round,
                incident_id: &incident.id,
                kind: delivery.kind,
                target: &delivery.target,
            };
            if let Err(err) = self
                .store
                .set_card_hash(key, &render::content_hash(card))
                .await
            {
                warn!(error = %err, "could not remember the clicked card's state");
            }
        }
        Ok(())
    }

    /// The incident of a card we issued for this integration (outTrackId = `<incident>-<digest>`).
    async fn issued_card(
        &self,
        integration: &Integration,
        out_track_id: &str,
    ) -> Result<Incident, CardCallbackError> {
        let incident_id = out_track_id.split('-').next().unwrap_or_default();
        let incident = self
            .store
            .get_incident(incident_id)
            .await?
            .filter(|i| i.integration_id == integration.id)
            .ok_or(CardCallbackError::UnknownCard)?;
        let issued = self
            .store
            .list_deliveries(&incident.id)
            .await?
            .iter()
            .any(|d| {
                d.alert_ref.as_deref() == Some(out_track_id) && d.channel == Some(Channel::Card)
            });
        if issued {
            Ok(incident)
        } else {
            Err(CardCallbackError::UnknownCard)
        }
    }
}

/// The card to show after an action (the updated incident, or the unchanged one when
/// the action was refused) and the clicker's private notice in `locale`.
fn outcome(
    result: Result<Incident, ActionError>,
    incident: &Incident,
    locale: Locale,
) -> Result<(Incident, Map<String, Value>), CardCallbackError> {
    let s = Strings::of(locale);
    Ok(match result {
        Ok(updated) => (updated, notice("")),
        Err(ActionError::NotAllowed(why) | ActionError::NotApplicable(why)) => {
            (incident.clone(), notice(&why.text(locale)))
        }
        Err(ActionError::Conflict(now)) => (*now, notice(s.card_conflict)),
        Err(ActionError::Upstream(why)) => {
            let text = fill(s.card_silence_failed, &[("reason", &why.text(locale))]);
            (incident.clone(), notice(&text))
        }
        // Issued by us, but past its retention: the card stays, the click is told.
        Err(ActionError::NotFound) => (incident.clone(), notice(&Refusal::Gone.text(locale))),
        Err(ActionError::Store(e)) => return Err(e.into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_are_read_from_content_or_value() {
        let content = json!({"cardPrivateData": {"params": {"action": "snooze", "duration": "2h", "incident": "inc1"}}}).to_string();
        for field in ["content", "value"] {
            let body =
                json!({"outTrackId": "inc1-abc", "userId": "u1", field: content}).to_string();
            let click = Click::parse(body.as_bytes()).expect("parses");
            assert_eq!(click.action, "snooze");
            assert_eq!(click.duration.as_deref(), Some("2h"));
            assert_eq!(click.incident.as_deref(), Some("inc1"));
        }
    }

    #[test]
    fn broken_clicks_say_what_is_missing() {
        for (body, missing) in [
            ("not json", "body is not JSON"),
            (r#"{"userId":"u"}"#, "outTrackId missing"),
            (r#"{"outTrackId":"t"}"#, "userId missing"),
            (
                r#"{"outTrackId":"t","userId":"u","content":"{"}"#,
                "content is not a JSON string",
            ),
        ] {
            let err = Click::parse(body.as_bytes()).expect_err(body);
            assert_eq!(err.to_string(), missing);
        }
    }
}

#[cfg(test)]
#[path = "card_callback_props.rs"]
mod props;
