//! Replay after association (ARCHITECTURE.md §11): an action clicked by someone not
//! associated yet (a card button, or an H5 action link) is held for
//! [`HOLD_MS`]; once they associate in the H5 app (link code, or profile email at
//! login), or an admin binds them, [`HeldReplay`] applies it under their member
//! through [`IncidentActions`] (same licence rules, its own record, cards updated by
//! the queued `incident_changed`), with a `replayed` record. One that no longer applies is dropped with the reason;
//! an expired one is ignored. Taking a held action deletes it conditionally, so it
//! is used at most once.

use std::sync::Arc;

use serde::Serialize;
use tracing::{info, warn};

use crate::clock::{Clock, rfc3339};
use crate::domain::incident::{Incident, IncidentStatus, OperationRecord, RecordKind};
use crate::domain::locale::Locale;
use crate::domain::member::Member;
use crate::domain::refusal::Refusal;
use crate::infra::session::Session;
use crate::services::h5_app::{H5App, H5Error};
use crate::services::incident_actions::{Action, ActionError, IncidentActions};
use crate::store::{HeldAction, Store, StoreError};

/// How long a held action waits for its person to associate.
pub const HOLD_MS: i64 = 15 * 60 * 1000;

/// Longest incident id the hold call looks up.
const MAX_INCIDENT_ID: usize = 128;

/// Where a held action was clicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldSource {
    /// A card button.
    Card,
    /// An H5 action link (`?incident=…&action=…`).
    App,
}

impl HoldSource {
    fn tag(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::App => "app",
        }
    }
}

/// Who clicked and where: the DingTalk user, and the incident of the click.
#[derive(Debug, Clone, Copy)]
pub struct Click<'a> {
    /// The integration.
    pub integration_id: &'a str,
    /// The DingTalk userId of the person who clicked.
    pub user_id: &'a str,
    /// The incident.
    pub incident_id: &'a str,
    /// Where.
    pub source: HoldSource,
}

/// An action as held: `(action, duration, member)`.
fn params(action: &Action) -> (&'static str, Option<String>, Option<String>) {
    match action {
        Action::Acknowledge => ("ack", None, None),
        Action::Resolve => ("resolve", None, None),
        Action::Escalate => ("escalate", None, None),
        Action::Reassign(member) => ("reassign", None, Some(member.clone())),
        Action::Silence(duration) => ("silence", Some(duration.tag().to_string()), None),
        Action::Unsilence => ("unsilence", None, None),
        Action::Snooze(duration) => {
            let duration = match duration.as_secs() / 60 {
                120 => "2h",
                1440 => "24h",
                _ => "30m",
            };
            ("snooze", Some(duration.to_string()), None)
        }
    }
}

/// A held action's name in records ("Acknowledge", "Snooze 2h", "Reassign to x").
fn action_name(held: &HeldAction) -> String {
    match held.action.as_str() {
        "ack" => "Acknowledge".into(),
        "resolve" => "Resolve".into(),
        "escalate" => "Escalate".into(),
        "snooze" => format!("Snooze {}", held.duration.as_deref().unwrap_or("30m")),
        "reassign" => format!("Reassign to {}", held.member.as_deref().unwrap_or("?")),
        "silence" => format!("Silence {}", held.duration.as_deref().unwrap_or("?")),
        "unsilence" => "Unsilence".into(),
        other => other.to_string(),
    }
}

/// Holds `action` for the person of `click` until [`HOLD_MS`] from `now_ms`,
/// replacing any action they held before.
pub async fn hold(
    store: &Store,
    click: Click<'_>,
    action: &Action,
    now_ms: i64,
) -> Result<HeldAction, StoreError> {
    let (name, duration, member) = params(action);
    let held = HeldAction {
        user_id: click.user_id.to_string(),
        incident: click.incident_id.to_string(),
        action: name.to_string(),
        duration,
        member,
        source: click.source.tag().to_string(),
        held_at_ms: now_ms,
        expires_at: (now_ms + HOLD_MS).div_euclid(1000),
    };
    store.hold_action(click.integration_id, &held).await?;
    info!(
        integration_id = click.integration_id,
        incident_id = click.incident_id,
        action = name,
        source = click.source.tag(),
        "action held until its person associates"
    );
    Ok(held)
}

/// Whether a held action is still within its hold at `now_ms`.
fn current(held: &HeldAction, now_ms: i64) -> bool {
    now_ms - held.held_at_ms <= HOLD_MS
}

/// A held action as the page shows it (`me.held`, and the answer to `POST …/held`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldView {
    /// The incident.
    pub incident: String,
    /// `ack`, `resolve`, `snooze`, `escalate`, `reassign`, `silence` or `unsilence`.
    pub action: String,
    /// A snooze's or a silence's duration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// A reassign's member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// When it was held (RFC 3339).
    pub held_at: String,
    /// When the hold ends (RFC 3339): associate before then.
    pub until: String,
}

impl From<&HeldAction> for HeldView {
    fn from(held: &HeldAction) -> Self {
        Self {
            incident: held.incident.clone(),
            action: held.action.clone(),
            duration: held.duration.clone(),
            member: held.member.clone(),
            held_at: rfc3339(held.held_at_ms),
            until: rfc3339(held.held_at_ms + HOLD_MS),
        }
    }
}

/// What became of a held action once its person associated (`replayed` in the
/// answer to the association or login).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replayed {
    /// The held action.
    #[serde(flatten)]
    pub held: HeldView,
    /// The incident's title, when it still exists.
    pub title: Option<String>,
    /// Whether it was applied.
    pub applied: bool,
    /// Why not: `resolved`, `already_acknowledged`, `already_done`,
    /// `not_licensed`, `not_found`, `not_applicable`, `conflict` or `error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<&'static str>,
    /// Why not, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The outcome of applying a held action.
enum Outcome {
    Applied(Incident),
    Dropped {
        code: &'static str,
        /// In English (records, logs).
        reason: String,
        /// The refusal behind it, said in the person's language in the answer.
        refusal: Option<Refusal>,
        incident: Option<Incident>,
    },
}

fn dropped(code: &'static str, reason: impl Into<String>, incident: Option<Incident>) -> Outcome {
    Outcome::Dropped {
        code,
        reason: reason.into(),
        refusal: None,
        incident,
    }
}

fn refused(code: &'static str, refusal: Refusal, incident: Option<Incident>) -> Outcome {
    Outcome::Dropped {
        code,
        reason: refusal.to_string(),
        refusal: Some(refusal),
        incident,
    }
}

impl H5App {
    /// Holds an H5 action link's action for the session's person, who is not
    /// associated yet (`POST …/app/api/held`): 400 for an unknown action, 404 for an
    /// unknown incident, 409 when they are associated already (they act directly).
    pub async fn hold(
        &self,
        session: &Session,
        incident_id: &str,
        action: &str,
        (duration, member): (Option<&str>, Option<&str>),
    ) -> Result<HeldView, H5Error> {
        let action = Action::parse(action, duration, member).ok_or_else(|| {
            H5Error::Invalid(
                "action",
                "action must be ack, resolve, snooze (30m, 2h, 24h), escalate, reassign (with a member), silence (1h, 4h, 24h) or unsilence".into(),
            )
        })?;
        let incident_id = incident_id.trim();
        if incident_id.is_empty() {
            return Err(H5Error::Invalid("incident", "incident missing".into()));
        }
        if self
            .store
            .binding_of_user(&session.iid, &session.uid)
            .await?
            .is_some()
        {
            return Err(H5Error::AlreadyAssociated);
        }
        if incident_id.len() > MAX_INCIDENT_ID
            || self
                .store
                .get_incident(incident_id)
                .await?
                .is_none_or(|i| i.integration_id != session.iid)
        {
            return Err(H5Error::NotFound("incident"));
        }
        let click = Click {
            integration_id: &session.iid,
            user_id: &session.uid,
            incident_id,
            source: HoldSource::App,
        };
        let held = hold(&self.store, click, &action, self.clock.now_ms()).await?;
        Ok(HeldView::from(&held))
    }

    /// The action an unassociated person holds, while its hold lasts.
    pub(super) async fn held_view(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Option<HeldView>, StoreError> {
        let now_ms = self.clock.now_ms();
        Ok(self
            .store
            .held_action(integration_id, user_id)
            .await?
            .filter(|held| current(held, now_ms))
            .map(|held| HeldView::from(&held)))
    }

    /// After `session`'s person was associated with `member` in the app: replays
    /// their held action ([`HeldReplay::replay`]).
    pub(super) async fn replay(&self, session: &Session, member: &Member) -> Option<Replayed> {
        // The language they chose stays with them across bindings.
        let chosen = self
            .store
            .binding_and_locale(&session.iid, &session.uid)
            .await
            .ok()
            .flatten()
            .and_then(|(_, chosen)| chosen);
        let who = Associated {
            integration_id: &session.iid,
            user_id: &session.uid,
            name: &session.name,
            locale: self.page_locale(session, chosen).await,
        };
        HeldReplay::new(self.store.clone(), self.clock.clone(), self.actions.clone())
            .replay(who, member)
            .await
    }
}

/// A DingTalk user just associated with a member (in the H5 app, or by an admin).
#[derive(Debug, Clone, Copy)]
pub struct Associated<'a> {
    /// The integration.
    pub integration_id: &'a str,
    /// Their DingTalk userId.
    pub user_id: &'a str,
    /// Their DingTalk display name (the userId when not known).
    pub name: &'a str,
    /// The language of the answer's `reason`.
    pub locale: Locale,
}

/// Applies the action a person held before they were associated.
#[derive(Clone)]
pub struct HeldReplay {
    store: Store,
    clock: Arc<dyn Clock>,
    actions: IncidentActions,
}

impl HeldReplay {
    /// Replays through `actions`, with the holds of `store`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, actions: IncidentActions) -> Self {
        Self {
            store,
            clock,
            actions,
        }
    }

    /// After `who` was associated with `member`: takes their held action (at most
    /// once) and, within its hold, applies it under `member`, or drops it with the
    /// reason. Never fails the association: trouble is logged and answered as not
    /// applied.
    pub async fn replay(&self, who: Associated<'_>, member: &Member) -> Option<Replayed> {
        let held = match self
            .store
            .take_held_action(who.integration_id, who.user_id)
            .await
        {
            Ok(held) => held?,
            Err(err) => {
                warn!(integration_id = who.integration_id, error = %err, "could not take the held action");
                return None;
            }
        };
        if !current(&held, self.clock.now_ms()) {
            info!(integration_id = who.integration_id, incident_id = %held.incident, "held action expired; ignored");
            return None;
        }
        let outcome = self.apply_held(who.integration_id, &held, member).await;
        let (applied, code, reason, refusal, incident) = match outcome {
            Outcome::Applied(incident) => (true, None, None, None, Some(incident)),
            Outcome::Dropped {
                code,
                reason,
                refusal,
                incident,
            } => (false, Some(code), Some(reason), refusal, incident),
        };
        if let Some(incident) = &incident {
            self.record_replay(who, member, &held, incident, reason.as_deref())
                .await;
        }
        info!(integration_id = who.integration_id, incident_id = %held.incident, applied, reason = code.unwrap_or(""), "held action replayed");
        Some(Replayed {
            held: HeldView::from(&held),
            title: incident.map(|i| i.title),
            applied,
            reason_code: code,
            reason: refusal.map(|why| why.text(who.locale)).or(reason),
        })
    }

    /// Applies a held action as `member`, unless it no longer applies.
    async fn apply_held(
        &self,
        integration_id: &str,
        held: &HeldAction,
        member: &Member,
    ) -> Outcome {
        let Some(action) = Action::parse(
            &held.action,
            held.duration.as_deref(),
            held.member.as_deref(),
        ) else {
            return dropped("not_applicable", "the held action is not known", None);
        };
        let incident = match self.store.get_incident(&held.incident).await {
            Ok(Some(incident)) if incident.integration_id == integration_id => incident,
            Ok(_) => return dropped("not_found", "the incident no longer exists", None),
            Err(err) => return dropped("error", format!("it could not be applied: {err}"), None),
        };
        if incident.status == IncidentStatus::Resolved {
            return dropped(
                "resolved",
                "the incident was resolved meanwhile",
                Some(incident),
            );
        }
        if action == Action::Acknowledge && incident.status == IncidentStatus::Acknowledged {
            let by = incident.acked_by.clone().unwrap_or_default();
            return dropped(
                "already_acknowledged",
                format!("the incident was already acknowledged by {by}"),
                Some(incident),
            );
        }
        let result = self
            .actions
            .apply(integration_id, &incident.id, member, action, None)
            .await;
        match result {
            Ok(next) if next.version != incident.version => Outcome::Applied(next),
            Ok(next) => dropped("already_done", "it was already in effect", Some(next)),
            Err(ActionError::NotAllowed(why)) => refused("not_licensed", why, Some(incident)),
            Err(ActionError::NotApplicable(why)) => refused("not_applicable", why, Some(incident)),
            Err(ActionError::Upstream(why)) => refused("failed", why, Some(incident)),
            Err(ActionError::Conflict(now)) => dropped(
                "conflict",
                "someone acted on the incident at the same moment",
                Some(*now),
            ),
            Err(ActionError::NotFound) => {
                dropped("not_found", "the incident no longer exists", None)
            }
            Err(ActionError::Store(err)) => dropped(
                "error",
                format!("it could not be applied: {err}"),
                Some(incident),
            ),
        }
    }

    /// The incident's `replayed` record: which action was held when, and whether it
    /// is now applied or why it was dropped.
    async fn record_replay(
        &self,
        who: Associated<'_>,
        member: &Member,
        held: &HeldAction,
        incident: &Incident,
        dropped: Option<&str>,
    ) {
        let now_ms = self.clock.now_ms();
        let actor = format!("{} <{}>", member.name, member.email);
        let place = match held.source.as_str() {
            "card" => "on a card",
            _ => "in the app",
        };
        let outcome = match dropped {
            None => format!("now applied as {actor}"),
            Some(reason) => format!("dropped: {reason}"),
        };
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind: RecordKind::Replayed,
            target: None,
            detail: format!(
                "{} clicked {place} by DingTalk user {} ({}) at {}, before association; held, {outcome}",
                action_name(held),
                who.name,
                who.user_id,
                rfc3339(held.held_at_ms),
            ),
            actor: Some(actor),
        };
        if let Err(err) = self.store.add_record(&incident.id, now_ms, &record).await {
            warn!(incident_id = %incident.id, error = %err, "could not record the replay");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn actions_are_held_by_their_parameters() {
        for (action, duration, member) in [
            ("ack", None, None),
            ("resolve", None, None),
            ("escalate", None, None),
            ("snooze", Some("30m"), None),
            ("snooze", Some("2h"), None),
            ("snooze", Some("24h"), None),
            ("reassign", None, Some("carol@example.com")),
        ] {
            let parsed = Action::parse(action, duration, member).expect(action);
            let (name, d, m) = params(&parsed);
            assert_eq!(
                (name, d.as_deref(), m.as_deref()),
                (action, duration, member)
            );
            assert_eq!(
                Action::parse(name, d.as_deref(), m.as_deref()),
                Some(parsed)
            );
        }
        assert_eq!(
            params(&Action::Snooze(Duration::from_secs(1800)))
                .1
                .as_deref(),
            Some("30m")
        );
    }

    #[test]
    fn a_hold_lasts_fifteen_minutes() {
        let held = HeldAction {
            user_id: "u".into(),
            incident: "i".into(),
            action: "snooze".into(),
            duration: Some("2h".into()),
            member: None,
            source: "card".into(),
            held_at_ms: 1_000_000,
            expires_at: (1_000_000 + HOLD_MS) / 1000,
        };
        assert!(current(&held, 1_000_000 + HOLD_MS));
        assert!(!current(&held, 1_000_001 + HOLD_MS));
        assert_eq!(action_name(&held), "Snooze 2h");
        let view = HeldView::from(&held);
        assert_eq!(view.until, rfc3339(1_000_000 + HOLD_MS));
    }
}
