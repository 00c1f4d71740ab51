//! Acting on incidents (Acknowledge / Resolve / Snooze / Escalate / Reassign) as a
//! bound, licensed member,
//! with optimistic concurrency; used by the H5 app and the card buttons. After a
//! change, a queued `incident_changed` job updates what the notifier sent.

use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use crate::clock::{Clock, rfc3339};
use crate::domain::escalation_state;
use crate::domain::incident::{Incident, IncidentStatus, OperationRecord, RecordKind};
use crate::domain::job::Job;
use crate::domain::member::Member;
use crate::domain::oncall_schedule::members_on_call;
use crate::domain::refusal::Refusal;
use crate::domain::silence::SilenceDuration;
use crate::infra::alertmanager::AlertmanagerClient;
use crate::infra::outbound::OutboundPolicy;
use crate::infra::queue::JobQueue;
use crate::store::{AlertApplied, Store, StoreError};

mod silence;

/// How long a card update job waits, so bursts of clicks coalesce.
pub const COALESCE_DELAY: Duration = Duration::from_secs(2);

/// Longest note on an incident, in characters (after trimming).
pub const MAX_NOTE_CHARS: usize = 2000;

/// An action on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Take it.
    Acknowledge,
    /// Close it.
    Resolve,
    /// Quiet it for a while.
    Snooze(Duration),
    /// Notify the escalation policy's next layer now.
    Escalate,
    /// Hand it to a member (by email).
    Reassign(String),
    /// Silence its alerts in Alertmanager for a while (ARCHITECTURE.md §11).
    Silence(SilenceDuration),
    /// Expire the silence made by [`Action::Silence`].
    Unsilence,
}

impl Action {
    /// Parses `ack` / `resolve` / `snooze` (with a duration of `30m`, `2h` or
    /// `24h`) / `escalate` / `reassign` (with the member's email) / `silence`
    /// (with `1h`, `4h` or `24h`) / `unsilence`.
    pub fn parse(action: &str, duration: Option<&str>, member: Option<&str>) -> Option<Self> {
        match action {
            "ack" | "acknowledge" => Some(Self::Acknowledge),
            "resolve" => Some(Self::Resolve),
            "escalate" => Some(Self::Escalate),
            "silence" => SilenceDuration::parse(duration.unwrap_or_default()).map(Self::Silence),
            "unsilence" => Some(Self::Unsilence),
            "reassign" => member
                .map(|m| m.trim().to_ascii_lowercase())
                .filter(|m| !m.is_empty() && m.len() <= 254)
                .map(Self::Reassign),
            "snooze" => {
                let minutes = match duration.unwrap_or("30m") {
                    "30m" => 30,
                    "2h" => 120,
                    "24h" => 1440,
                    _ => return None,
                };
                Some(Self::Snooze(Duration::from_secs(minutes * 60)))
            }
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Acknowledge => "acknowledged".into(),
            Self::Resolve => "resolved".into(),
            Self::Snooze(d) => format!("snoozed for {} min", d.as_secs() / 60),
            Self::Escalate => "escalated".into(),
            Self::Reassign(member) => format!("reassigned to {member}"),
            Self::Silence(d) => format!("silenced for {}", d.tag()),
            Self::Unsilence => "unsilenced".into(),
        }
    }

    /// The record kind and the upstream event name (`incident.<name>`).
    fn names(&self) -> (RecordKind, &'static str) {
        match self {
            Self::Acknowledge => (RecordKind::Acknowledged, "acknowledged"),
            Self::Resolve => (RecordKind::Resolved, "resolved"),
            Self::Snooze(_) => (RecordKind::Snoozed, "snoozed"),
            Self::Escalate => (RecordKind::Escalated, "escalated"),
            Self::Reassign(_) => (RecordKind::Reassigned, "reassigned"),
            Self::Silence(_) => (RecordKind::Silenced, "silenced"),
            Self::Unsilence => (RecordKind::Unsilenced, "unsilenced"),
        }
    }
}

/// Why an action was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No such incident in this integration.
    #[error("incident not found")]
    NotFound,
    /// The member may not act (no licence).
    #[error("{0}")]
    NotAllowed(Refusal),
    /// Someone changed the incident first; here is its state now.
    #[error("the incident changed meanwhile")]
    Conflict(Box<Incident>),
    /// The action does not apply in the incident's state.
    #[error("{0}")]
    NotApplicable(Refusal),
    /// An outside system (Alertmanager) failed; nothing changed, a `failed` record says why.
    #[error("{0}")]
    Upstream(Refusal),
    /// Our store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an action did.
enum Changed {
    /// Already in effect: nothing written.
    Already(Incident),
    /// The incident's new state.
    Now(Incident),
}

/// The incident actions service.
#[derive(Clone)]
pub struct IncidentActions {
    store: Store,
    clock: Arc<dyn Clock>,
    queue: JobQueue,
    alertmanager: AlertmanagerClient,
}

impl IncidentActions {
    /// Actions on `store`; change jobs go to `queue`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, queue: JobQueue) -> Self {
        Self {
            store,
            clock,
            queue,
            alertmanager: AlertmanagerClient::default(),
        }
    }

    /// The same, calling Alertmanagers through `outbound`.
    pub fn with_outbound(mut self, outbound: OutboundPolicy) -> Self {
        self.alertmanager = AlertmanagerClient::new(outbound);
        self
    }

    /// Applies `action` as `actor`. With `expected_version`, refuses (Conflict) if the
    /// incident moved on. Repeating an action already in effect changes nothing.
    pub async fn apply(
        &self,
        integration_id: &str,
        incident_id: &str,
        actor: &Member,
        action: Action,
        expected_version: Option<u64>,
    ) -> Result<Incident, ActionError> {
        if let Action::Reassign(member) = &action
            && self
                .store
                .get_member(integration_id, member)
                .await?
                .is_none()
        {
            return Err(ActionError::NotApplicable(Refusal::UnknownMember {
                member: member.clone(),
            }));
        }
        let current = self
            .store
            .get_live_incident(incident_id, self.clock.now_secs())
            .await?
            .filter(|i| i.integration_id == integration_id)
            .ok_or(ActionError::NotFound)?;
        if !actor.licensed {
            return Err(ActionError::NotAllowed(Refusal::NotLicensed {
                email: actor.email.clone(),
            }));
        }
        if expected_version.is_some_and(|v| v != current.version) {
            return Err(ActionError::Conflict(Box::new(current)));
        }
        let now_ms = self.clock.now_ms();
        if let Action::Silence(_) | Action::Unsilence = action {
            return Box::pin(self.silence(current, actor, &action, now_ms)).await;
        }
        let next = match self.change(current, actor, &action, now_ms).await? {
            Changed::Already(current) => return Ok(current),
            Changed::Now(next) => next,
        };
        info!(integration_id, incident_id, action = %action.describe(), "incident action applied");
        let who = format!("{} <{}>", actor.name, actor.email);
        let (kind, upstream) = action.names();
        let mut detail = format!("{} by {who}", action.describe());
        if let (Action::Escalate, Some(view)) = (&action, escalation_state::view(&next)) {
            detail.push_str(&format!(
                ": layer {} of {} notified",
                view.layer + 1,
                view.layers
            ));
        }
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind,
            target: None,
            detail,
            actor: Some(who),
        };
        self.store.add_record(incident_id, now_ms, &record).await?;
        self.queue_change(&next).await;
        if let Err(err) = self.queue.arm_escalation(&next, now_ms).await {
            error!(integration_id, incident_id, error = %err, "could not queue an escalation timer; the sweep fires it");
        }
        if self
            .store
            .get_integration(integration_id)
            .await?
            .is_some_and(|i| i.webhook_url.is_some())
        {
            self.queue_webhook(&next, upstream, &record.detail).await;
        }
        Ok(next)
    }

    /// Adds a note by `actor` to an incident of the integration: a `note` record
    /// (its detail is the trimmed text, 1 to [`MAX_NOTE_CHARS`] characters) and,
    /// when the integration has a webhook, the upstream event `incident.note_added`
    /// carrying the text. The incident itself does not change: no version, status
    /// or card update, so a note never conflicts with an action.
    pub async fn add_note(
        &self,
        integration_id: &str,
        incident_id: &str,
        actor: &Member,
        text: &str,
    ) -> Result<OperationRecord, ActionError> {
        let text = text.trim();
        if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
            return Err(ActionError::NotApplicable(Refusal::NoteLength {
                max: MAX_NOTE_CHARS,
            }));
        }
        let incident = self
            .store
            .get_live_incident(incident_id, self.clock.now_secs())
            .await?
            .filter(|i| i.integration_id == integration_id)
            .ok_or(ActionError::NotFound)?;
        let now_ms = self.clock.now_ms();
        let who = format!("{} <{}>", actor.name, actor.email);
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind: RecordKind::Note,
            target: None,
            detail: text.to_string(),
            actor: Some(who.clone()),
        };
        self.store.add_record(incident_id, now_ms, &record).await?;
        info!(integration_id, incident_id, "note added");
        if self
            .store
            .get_integration(integration_id)
            .await?
            .is_some_and(|i| i.webhook_url.is_some())
        {
            let mut job =
                crate::render::webhook_payload::webhook_job(&incident, "note_added", &who);
            if let Job::Webhook { event, .. } = &mut job {
                event["occurred_at"] = serde_json::json!(record.at);
                event["note"] = serde_json::json!({"text": text, "at": record.at, "author": who});
            }
            self.queue(&job, Duration::ZERO).await;
        }
        Ok(record)
    }

    /// Writes the incident's next state for `action` (conditional on its version).
    async fn change(
        &self,
        current: Incident,
        actor: &Member,
        action: &Action,
        now_ms: i64,
    ) -> Result<Changed, ActionError> {
        let now = rfc3339(now_ms);
        let incident_id = current.id.clone();
        let written = match (action, current.status) {
            (Action::Resolve, IncidentStatus::Resolved)
            | (Action::Acknowledge, IncidentStatus::Acknowledged) => {
                return Ok(Changed::Already(current));
            }
            (_, IncidentStatus::Resolved) => {
                return Err(ActionError::NotApplicable(Refusal::AlreadyResolved));
            }
            (Action::Resolve, _) => {
                match self
                    .store
                    .resolve_incident(&current, current.last_event_ms, &now, &actor.name)
                    .await
                {
                    Ok(AlertApplied::Resolved(done)) => Ok(done),
                    Ok(_) => {
                        return Err(ActionError::NotApplicable(Refusal::NotResolvable));
                    }
                    Err(err) => Err(err),
                }
            }
            (Action::Silence(_) | Action::Unsilence, _) => {
                return Err(ActionError::NotApplicable(Refusal::SilenceApart));
            }
            (Action::Escalate | Action::Reassign(_), _) => {
                let mut next = match action {
                    Action::Reassign(member) => {
                        escalation_state::reassign(&current, member, now_ms)
                    }
                    _ => escalation_state::escalate_now(&current, now_ms).map(|(next, _)| next),
                }
                .map_err(|e| ActionError::NotApplicable(e.0))?;
                self.staff(&mut next, now_ms).await?;
                next.updated_at = now;
                next.version = current.version + 1;
                self.store
                    .replace_incident(&next, current.version)
                    .await
                    .map(|()| next)
            }
            (Action::Acknowledge | Action::Snooze(_), _) => {
                let mut next = current.clone();
                if *action == Action::Acknowledge {
                    next.status = IncidentStatus::Acknowledged;
                    next.acked_by = Some(actor.name.clone());
                    // Someone took it: a snooze's end must not re-trigger it.
                    next.snoozed_until = None;
                }
                if let Action::Snooze(duration) = action {
                    let until = now_ms + i64::try_from(duration.as_millis()).unwrap_or(0);
                    next.snoozed_until = Some(rfc3339(until));
                }
                next.updated_at = now;
                next.version = current.version + 1;
                escalation_state::reschedule(&mut next, now_ms);
                self.store
                    .replace_incident(&next, current.version)
                    .await
                    .map(|()| next)
            }
        };
        match written {
            Ok(next) => Ok(Changed::Now(next)),
            Err(StoreError::Conflict) => Err(self.conflict(&incident_id).await),
            Err(err) => Err(err.into()),
        }
    }

    /// Puts whoever is on call in the layer an Escalate reached on the incident.
    async fn staff(&self, next: &mut Incident, now_ms: i64) -> Result<(), StoreError> {
        let ids = escalation_state::layer_schedules(next);
        if !ids.is_empty() {
            let schedules = self.store.list_schedules(&next.integration_id).await?;
            let oncall = members_on_call(&schedules, &ids, now_ms);
            escalation_state::staff_layer(next, &oncall, true);
        }
        Ok(())
    }

    async fn conflict(&self, incident_id: &str) -> ActionError {
        match self.store.get_incident(incident_id).await {
            Ok(Some(now)) => ActionError::Conflict(Box::new(now)),
            Ok(None) => ActionError::NotFound,
            Err(err) => ActionError::Store(err),
        }
    }

    /// Queues the job that updates cards and sends follow-ups for a changed incident.
    /// It waits a moment and carries the version, so a burst of actions coalesces
    /// into one update per card (older jobs see a newer version and stand down).
    pub async fn queue_change(&self, incident: &Incident) {
        let job = Job::IncidentChanged {
            integration_id: incident.integration_id.clone(),
            incident_id: incident.id.clone(),
            version: Some(incident.version),
        };
        self.queue(&job, COALESCE_DELAY).await;
    }

    /// Queues the upstream webhook for an action taken in DingTalk.
    pub async fn queue_webhook(&self, incident: &Incident, kind: &str, actor: &str) {
        let job = crate::render::webhook_payload::webhook_job(incident, kind, actor);
        self.queue(&job, Duration::ZERO).await;
    }

    /// Queues a 1:1 message asking a DingTalk user to associate their account.
    pub async fn queue_link_prompt(&self, integration_id: &str, user_id: &str) {
        let job = Job::LinkPrompt {
            integration_id: integration_id.to_string(),
            user_id: user_id.to_string(),
        };
        self.queue(&job, Duration::ZERO).await;
    }

    async fn queue(&self, job: &Job, delay: Duration) {
        if let Err(err) = self.queue.send_job(job, delay).await {
            error!(job = job.kind(), integration_id = job.integration_id(), error = %err, "could not queue a job");
        }
    }
}
