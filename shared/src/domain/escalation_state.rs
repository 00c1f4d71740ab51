//! An incident's escalation at run time (ARCHITECTURE.md §9), as pure decisions.
//!
//! The incident carries a snapshot of its policy and where it stands: the layer and
//! loop reached, the notification round, and the one step that is due next (a
//! DING, the next layer, the acknowledgement timeout or the end of a snooze). Every
//! change bumps `epoch`, so a timer queued for an older epoch is a no-op. What a
//! step owes the outside world (a round of notifications, a DING) is written into
//! the state with the step, and cleared once done: a crash in between leaves it
//! owed, and the sweep finds it.

use serde::{Deserialize, Serialize};

use super::escalation::{EscalateOn, EscalationPolicy, Layer, Repeat};
use super::incident::{Incident, IncidentStatus};
use super::integration::Targets;
use super::refusal::Refusal;

/// How early a timer may fire and still count as due (SQS delays are whole seconds).
pub const EARLY_TOLERANCE_MS: i64 = 1_000;

/// The policy as it was when the incident opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySnapshot {
    /// Policy id.
    pub id: String,
    /// Policy version.
    pub version: u32,
    /// Policy name.
    pub name: String,
    /// Layers.
    pub layers: Vec<Layer>,
    /// Repeats.
    pub repeat: Repeat,
    /// Acknowledgement timeout.
    pub ack_timeout_secs: Option<u32>,
    /// Who was on call in layer 0's schedules when the incident opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opening_oncall: Vec<String>,
}

impl From<&EscalationPolicy> for PolicySnapshot {
    fn from(policy: &EscalationPolicy) -> Self {
        Self {
            id: policy.id.clone(),
            version: policy.version,
            name: policy.name.clone(),
            layers: policy.layers.clone(),
            repeat: policy.repeat,
            ack_timeout_secs: policy.ack_timeout_secs,
            opening_oncall: Vec::new(),
        }
    }
}

/// A step an incident waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// The current layer's DING.
    Ding,
    /// The next layer.
    Escalate,
    /// An acknowledged incident returns to triggered.
    AckTimeout,
    /// A snooze ends.
    SnoozeEnd,
}

/// The step due next, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// What.
    pub step: StepKind,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// Who a round of notifications goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundTo {
    /// A layer of the policy (layer 0 includes the targets the alert named; without
    /// a policy, layer 0 is the incident's targets).
    Layer(u32),
    /// One member (reassigned to them).
    Member(String),
}

/// One notification round: new cards and messages, so that phones ring again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    /// The round's number (0 is the alert itself).
    pub n: u32,
    /// Its targets.
    pub to: RoundTo,
}

/// An incident's escalation state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// The policy (none: only timers, such as a snooze's end).
    #[serde(default)]
    pub policy: Option<PolicySnapshot>,
    /// The layer reached.
    #[serde(default)]
    pub layer: u32,
    /// Repeats done.
    #[serde(default, rename = "loop")]
    pub loop_count: u32,
    /// The newest notification round.
    #[serde(default)]
    pub round: u32,
    /// When the current layer was notified (Unix ms).
    #[serde(default)]
    pub layer_at_ms: i64,
    /// The current layer's DING is done (or not wanted).
    #[serde(default)]
    pub ding_done: bool,
    /// Bumped on every change; older timers are no-ops.
    #[serde(default)]
    pub epoch: u64,
    /// The step due next.
    #[serde(default)]
    pub next: Option<Pending>,
    /// A round written but not yet delivered.
    #[serde(default)]
    pub undelivered: Option<Round>,
    /// A DING decided but not yet sent: the round it belongs to.
    #[serde(default)]
    pub ding_owed: Option<u32>,
    /// Every layer and repeat was notified.
    #[serde(default)]
    pub exhausted: bool,
    /// When the incident was acknowledged (for the ack timeout).
    #[serde(default)]
    pub acked_at_ms: Option<i64>,
    /// Who was on call in the current layer's schedules when it was notified.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oncall: Vec<String>,
}

impl Escalation {
    /// A fresh state at layer 0, notified now by the alert itself (round 0).
    pub fn start(policy: Option<PolicySnapshot>, now_ms: i64) -> Self {
        let policy_oncall = policy
            .as_ref()
            .map(|p| p.opening_oncall.clone())
            .unwrap_or_default();
        Self {
            policy,
            layer: 0,
            loop_count: 0,
            round: 0,
            layer_at_ms: now_ms,
            ding_done: false,
            epoch: 1,
            next: None,
            undelivered: None,
            ding_owed: None,
            exhausted: false,
            acked_at_ms: None,
            oncall: policy_oncall,
        }
    }

    /// When the state next needs attention: now when something is owed, else the
    /// due step's time.
    pub fn due_ms(&self) -> Option<i64> {
        if self.undelivered.is_some() || self.ding_owed.is_some() {
            return Some(0);
        }
        self.next.map(|p| p.at_ms)
    }

    /// The current layer of the policy.
    pub fn current_layer(&self) -> Option<&Layer> {
        self.policy
            .as_ref()
            .and_then(|p| p.layers.get(self.layer as usize))
    }
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// The layer's DING is owed.
    Ding {
        /// The round it belongs to.
        round: u32,
    },
    /// The next layer was reached.
    Escalated {
        /// The layer.
        layer: u32,
        /// The repeat.
        loop_count: u32,
        /// Its notification round.
        round: u32,
    },
    /// Every layer and repeat was notified and nobody responded.
    Exhausted,
    /// The acknowledgement timed out: triggered again.
    AckTimeout {
        /// The re-notification round.
        round: u32,
    },
    /// A snooze ended: triggered again.
    SnoozeEnded {
        /// The re-notification round.
        round: u32,
    },
    /// The step no longer applied; only the schedule moved.
    Rescheduled,
}

/// Why a person's escalation request does not apply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotApplicable(pub Refusal);

fn ms_of(rfc3339: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn secs(value: u32) -> i64 {
    i64::from(value) * 1000
}

/// The step due next for an incident in its current state.
pub fn schedule(incident: &Incident) -> Option<Pending> {
    let esc = incident.escalation.as_ref()?;
    if incident.status == IncidentStatus::Resolved {
        return None;
    }
    if let Some(until) = incident.snoozed_until.as_deref().and_then(ms_of) {
        return Some(Pending {
            step: StepKind::SnoozeEnd,
            at_ms: until,
        });
    }
    let policy = esc.policy.as_ref()?;
    let layer = esc.current_layer()?;
    let layer_step = |with_ding: bool| match &layer.ding {
        Some(ding) if with_ding && !esc.ding_done && ding.applies_to(incident.severity) => {
            Pending {
                step: StepKind::Ding,
                at_ms: esc.layer_at_ms + secs(ding.after_secs),
            }
        }
        _ => Pending {
            step: StepKind::Escalate,
            at_ms: esc.layer_at_ms + secs(layer.escalate_after_secs),
        },
    };
    match incident.status {
        IncidentStatus::Triggered if !esc.exhausted => Some(layer_step(true)),
        IncidentStatus::Acknowledged
            if layer.escalate_on == EscalateOn::Unresolved && !esc.exhausted =>
        {
            Some(layer_step(false))
        }
        IncidentStatus::Acknowledged => policy.ack_timeout_secs.map(|timeout| Pending {
            step: StepKind::AckTimeout,
            at_ms: esc.acked_at_ms.unwrap_or(esc.layer_at_ms) + secs(timeout),
        }),
        _ => None,
    }
}

/// Brings the state in line after the incident changed (acknowledged, resolved,
/// snoozed, …): a new epoch and the step due next. An incident without a state
/// gets one only when it needs a timer (a snooze).
pub fn reschedule(incident: &mut Incident, now_ms: i64) {
    if incident.escalation.is_none() && incident.snoozed_until.is_some() {
        incident.escalation = Some(Escalation::start(None, now_ms));
    }
    let status = incident.status;
    let Some(esc) = incident.escalation.as_mut() else {
        return;
    };
    esc.acked_at_ms = match status {
        IncidentStatus::Acknowledged => esc.acked_at_ms.or(Some(now_ms)),
        _ => None,
    };
    esc.epoch += 1;
    let next = schedule(incident);
    if let Some(esc) = incident.escalation.as_mut() {
        esc.next = next;
    }
}

/// The layer after `layer` in repeat `loop_count`, if any: (layer, loop).
fn following(policy: &PolicySnapshot, layer: u32, loop_count: u32) -> Option<(u32, u32)> {
    if (layer as usize) + 1 < policy.layers.len() {
        Some((layer + 1, loop_count))
    } else if loop_count < policy.repeat.times {
        Some((policy.repeat.from_layer, loop_count + 1))
    } else {
        None
    }
}

/// Starts a new round to `to` now: the layer's wait starts over.
fn new_round(esc: &mut Escalation, to: RoundTo, now_ms: i64) -> u32 {
    esc.round += 1;
    esc.undelivered = Some(Round { n: esc.round, to });
    esc.layer_at_ms = now_ms;
    esc.ding_done = false;
    esc.round
}

/// Back to triggered: nobody holds the incident any more.
fn retrigger(incident: &mut Incident) {
    incident.status = IncidentStatus::Triggered;
    incident.acked_by = None;
    incident.snoozed_until = None;
}

/// Moves to the next layer (or ends the policy); `None` when there is no policy.
fn escalate(incident: &mut Incident, now_ms: i64) -> Option<Fired> {
    let esc = incident.escalation.as_mut()?;
    let policy = esc.policy.clone()?;
    let Some((layer, loop_count)) = following(&policy, esc.layer, esc.loop_count) else {
        esc.exhausted = true;
        return Some(Fired::Exhausted);
    };
    esc.layer = layer;
    esc.loop_count = loop_count;
    esc.oncall.clear();
    let round = new_round(esc, RoundTo::Layer(layer), now_ms);
    let members = &policy.layers[layer as usize].targets.members;
    if !members.is_empty() {
        incident.assignees = members.clone();
    }
    Some(Fired::Escalated {
        layer,
        loop_count,
        round,
    })
}

/// Fires the due step of an incident: `epoch` (a timer's) must be the current one
/// when given, and the step must be due. `None`: nothing to do.
pub fn fire_due(incident: &Incident, epoch: Option<u64>, now_ms: i64) -> Option<(Incident, Fired)> {
    let esc = incident.escalation.as_ref()?;
    if epoch.is_some_and(|e| e != esc.epoch) || incident.status == IncidentStatus::Resolved {
        return None;
    }
    let due = esc.next?;
    if now_ms + EARLY_TOLERANCE_MS < due.at_ms {
        return None;
    }
    let mut next = incident.clone();
    let fired = match due.step {
        StepKind::Ding => {
            let esc = next.escalation.as_mut()?;
            esc.ding_done = true;
            if incident.status == IncidentStatus::Triggered {
                esc.ding_owed = Some(esc.round);
                Fired::Ding { round: esc.round }
            } else {
                Fired::Rescheduled
            }
        }
        StepKind::Escalate => {
            let holds = match esc.current_layer().map(|l| l.escalate_on) {
                Some(EscalateOn::Unresolved) => true,
                _ => incident.status == IncidentStatus::Triggered,
            };
            if holds {
                escalate(&mut next, now_ms)?
            } else {
                Fired::Rescheduled
            }
        }
        StepKind::AckTimeout if incident.status == IncidentStatus::Acknowledged => {
            retrigger(&mut next);
            let esc = next.escalation.as_mut()?;
            let round = new_round(esc, RoundTo::Layer(esc.layer), now_ms);
            Fired::AckTimeout { round }
        }
        StepKind::SnoozeEnd => {
            retrigger(&mut next);
            let esc = next.escalation.as_mut()?;
            let round = new_round(esc, RoundTo::Layer(esc.layer), now_ms);
            Fired::SnoozeEnded { round }
        }
        StepKind::AckTimeout => Fired::Rescheduled,
    };
    reschedule(&mut next, now_ms);
    next.version = incident.version.saturating_add(1);
    next.updated_at = crate::clock::rfc3339(now_ms);
    Some((next, fired))
}

/// Refuses a person's change while a step's notifications are still going out
/// (a new round would replace the one owed).
fn nothing_owed(incident: &Incident) -> Result<(), NotApplicable> {
    match &incident.escalation {
        Some(esc) if esc.undelivered.is_some() || esc.ding_owed.is_some() => {
            Err(NotApplicable(Refusal::StepStillDelivering))
        }
        _ => Ok(()),
    }
}

/// A person's **Escalate**: the next layer now, whatever the wait.
pub fn escalate_now(incident: &Incident, now_ms: i64) -> Result<(Incident, Fired), NotApplicable> {
    if incident.status == IncidentStatus::Resolved {
        return Err(NotApplicable(Refusal::AlreadyResolved));
    }
    nothing_owed(incident)?;
    let Some(policy) = incident.escalation.as_ref().and_then(|e| e.policy.as_ref()) else {
        return Err(NotApplicable(Refusal::NoPolicy));
    };
    let esc = incident
        .escalation
        .as_ref()
        .ok_or(NotApplicable(Refusal::NoEscalationState))?;
    if following(policy, esc.layer, esc.loop_count).is_none() {
        return Err(NotApplicable(Refusal::LastLayerDone));
    }
    let mut next = incident.clone();
    retrigger(&mut next);
    if let Some(esc) = next.escalation.as_mut() {
        esc.exhausted = false;
    }
    let fired = escalate(&mut next, now_ms).ok_or(NotApplicable(Refusal::NoEscalationState))?;
    reschedule(&mut next, now_ms);
    Ok((next, fired))
}

/// A person's **Reassign** to `member`: they become the assignee, get a message of
/// their own, and the incident waits for them (triggered).
pub fn reassign(incident: &Incident, member: &str, now_ms: i64) -> Result<Incident, NotApplicable> {
    if incident.status == IncidentStatus::Resolved {
        return Err(NotApplicable(Refusal::AlreadyResolved));
    }
    nothing_owed(incident)?;
    let mut next = incident.clone();
    retrigger(&mut next);
    next.assignees = vec![member.to_string()];
    let esc = next
        .escalation
        .get_or_insert_with(|| Escalation::start(None, now_ms));
    esc.exhausted = false;
    new_round(esc, RoundTo::Member(member.to_string()), now_ms);
    esc.ding_done = true;
    reschedule(&mut next, now_ms);
    Ok(next)
}

/// When timers should fire for an incident: now for what is owed, and the due
/// step's time (the queue rounds the wait up to whole seconds).
pub fn timers(incident: &Incident) -> Vec<i64> {
    let Some(esc) = incident.escalation.as_ref() else {
        return Vec::new();
    };
    let mut due = Vec::new();
    if esc.undelivered.is_some() || esc.ding_owed.is_some() {
        due.push(0);
    }
    if let Some(next) = esc.next {
        due.push(next.at_ms);
    }
    due
}

/// Who a round goes to.
pub fn round_targets(incident: &Incident, round: &Round) -> Targets {
    let esc = incident.escalation.as_ref();
    let mut targets = match &round.to {
        RoundTo::Layer(0) => incident.targets.clone(),
        RoundTo::Layer(n) => esc
            .and_then(|e| e.policy.as_ref())
            .and_then(|p| p.layers.get(*n as usize))
            .map(|layer| Targets {
                chats: layer.targets.chats.clone(),
                members: layer.targets.members.clone(),
                dingtalk_user_ids: Vec::new(),
            })
            .unwrap_or_default(),
        RoundTo::Member(email) => Targets {
            chats: Vec::new(),
            members: vec![email.clone()],
            dingtalk_user_ids: Vec::new(),
        },
    };
    if let (RoundTo::Layer(n), Some(esc)) = (&round.to, esc)
        && *n == esc.layer
    {
        add_missing(&mut targets.members, &esc.oncall);
    }
    targets
}

fn add_missing(have: &mut Vec<String>, add: &[String]) {
    for email in add {
        if !have.contains(email) {
            have.push(email.clone());
        }
    }
}

/// The schedules of the layer a just-fired step notifies (empty when the round is
/// not a layer's, or the layer names none): look up who is on call in them, then
/// [`staff_layer`].
pub fn layer_schedules(incident: &Incident) -> Vec<String> {
    let Some(esc) = incident.escalation.as_ref() else {
        return Vec::new();
    };
    match esc.undelivered.as_ref().map(|r| &r.to) {
        Some(RoundTo::Layer(n)) if *n == esc.layer => esc
            .current_layer()
            .map(|l| l.targets.schedules.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// Puts whoever is on call in the current layer's schedules on the incident: they
/// are notified with the layer's round (1:1, and @mentioned in its groups), DINGed
/// with the layer, and become assignees (with the layer's members when the layer
/// was just reached, `new_layer`; added to the assignees otherwise).
pub fn staff_layer(incident: &mut Incident, oncall: &[String], new_layer: bool) {
    let Some(esc) = incident.escalation.as_mut() else {
        return;
    };
    esc.oncall.clear();
    add_missing(&mut esc.oncall, oncall);
    if oncall.is_empty() {
        return;
    }
    if new_layer {
        let mut who = esc
            .current_layer()
            .map(|l| l.targets.members.clone())
            .unwrap_or_default();
        add_missing(&mut who, oncall);
        incident.assignees = who;
    } else {
        add_missing(&mut incident.assignees, oncall);
    }
}

/// The members a layer's DING goes to (layer 0 includes the alert's members).
pub fn ding_members(incident: &Incident) -> Vec<String> {
    let Some(esc) = incident.escalation.as_ref() else {
        return Vec::new();
    };
    let mut members = esc
        .current_layer()
        .map(|l| l.targets.members.clone())
        .unwrap_or_default();
    add_missing(&mut members, &esc.oncall);
    if esc.layer == 0 {
        for email in &incident.targets.members {
            if !members.contains(email) {
                members.push(email.clone());
            }
        }
    }
    members
}

/// The escalation as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationView {
    /// Policy id.
    pub policy_id: String,
    /// Policy version the incident follows.
    pub policy_version: u32,
    /// Policy name.
    pub policy_name: String,
    /// Layer reached (from 0).
    pub layer: u32,
    /// Number of layers.
    pub layers: u32,
    /// Repeat reached.
    #[serde(rename = "loop")]
    pub loop_count: u32,
    /// When the next step is due (RFC 3339).
    pub next_at: Option<String>,
    /// The step due next.
    pub next_step: Option<StepKind>,
    /// `waiting`, `done` or `stopped`.
    pub state: &'static str,
}

/// The API view of an incident's escalation (none without a policy).
pub fn view(incident: &Incident) -> Option<EscalationView> {
    let esc = incident.escalation.as_ref()?;
    let policy = esc.policy.as_ref()?;
    let state = if incident.status == IncidentStatus::Resolved || esc.exhausted {
        "done"
    } else if esc.next.is_some() {
        "waiting"
    } else {
        "stopped"
    };
    Some(EscalationView {
        policy_id: policy.id.clone(),
        policy_version: policy.version,
        policy_name: policy.name.clone(),
        layer: esc.layer,
        layers: u32::try_from(policy.layers.len()).unwrap_or(u32::MAX),
        loop_count: esc.loop_count,
        next_at: esc.next.map(|p| crate::clock::rfc3339(p.at_ms)),
        next_step: esc.next.map(|p| p.step),
        state,
    })
}

#[cfg(test)]
#[path = "escalation_state_tests.rs"]
mod tests;
