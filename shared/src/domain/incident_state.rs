//! The incident state machine for alert events, as pure decisions
//! (ARCHITECTURE.md §5.2). The store reads an alert key's pointer and the incident
//! it names, asks [`decide`] what to do, and applies the answer with conditional
//! writes; a lost write makes it read and decide again.

use super::escalation_state::{Escalation, PolicySnapshot, reschedule, schedule};
use super::incident::{AlertEvent, AlertStatus, Incident, IncidentStatus};

/// Where an alert key's pointer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointerState {
    /// The key has an open incident (or one being opened).
    Open,
    /// The key's last incident resolved (or a resolve was seen first).
    Resolved,
}

impl PointerState {
    /// The wire name stored in the pointer item.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
        }
    }

    /// Reads a stored state.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "open" => Some(Self::Open),
            "resolved" => Some(Self::Resolved),
            _ => None,
        }
    }
}

/// An alert key's pointer: the lock that gives a key at most one open incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPointer {
    /// Open or resolved.
    pub state: PointerState,
    /// The incident it names (none for a resolve seen before any firing).
    pub incident_id: Option<String>,
    /// Source time (ms) of the event that set it.
    pub event_ms: i64,
}

/// What to do with an alert event.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Open a new incident: take the pointer (absent, or resolved at `after_resolved_ms`).
    Open {
        /// The resolved pointer's event time the write must still find.
        after_resolved_ms: Option<i64>,
    },
    /// Write the open incident's next state (conditional on its version).
    Update {
        /// The incident after the event.
        next: Box<Incident>,
        /// Whether anything people see changed.
        changed: bool,
    },
    /// The same event again (a redelivery): nothing to write.
    Unchanged(Box<Incident>),
    /// Resolve the open incident (then move the pointer).
    Resolve(Box<Incident>),
    /// The incident was already resolved by this or a newer event.
    AlreadyResolved(Box<Incident>),
    /// Older than what the incident reflects: nothing changes.
    Stale,
    /// A `resolved` event for a key whose resolve is already remembered.
    NothingOpen,
    /// A `resolved` event for a never-seen key: remember it, so an older firing
    /// event arriving later is stale.
    RememberResolved,
    /// A resolve stopped between its two writes: move the pointer, then decide again.
    RepairPointer(Box<Incident>),
    /// An open pointer whose incident was never written: write it from this
    /// event, then decide again.
    WriteMissing {
        /// The id the pointer names.
        incident_id: String,
    },
    /// The pointer is unusable.
    Corrupt(String),
}

/// Decides what an event does, given the key's pointer and the incident it names.
pub fn decide(
    status: AlertStatus,
    event_ms: i64,
    pointer: Option<&KeyPointer>,
    incident: Option<&Incident>,
    merge: impl FnOnce(&Incident) -> Incident,
) -> Decision {
    let Some(pointer) = pointer else {
        return match status {
            AlertStatus::Firing => Decision::Open {
                after_resolved_ms: None,
            },
            AlertStatus::Resolved => Decision::RememberResolved,
        };
    };
    match (pointer.state, incident) {
        (PointerState::Open, Some(done)) if done.status == IncidentStatus::Resolved => {
            Decision::RepairPointer(Box::new(done.clone()))
        }
        (PointerState::Resolved, found) => after_resolved(status, event_ms, pointer, found),
        (PointerState::Open, Some(open)) => on_open(status, event_ms, open, merge),
        (PointerState::Open, None)
            if status == AlertStatus::Resolved && event_ms < pointer.event_ms =>
        {
            Decision::Stale
        }
        (PointerState::Open, None) => match &pointer.incident_id {
            Some(id) => Decision::WriteMissing {
                incident_id: id.clone(),
            },
            None => Decision::Corrupt("an open pointer without an incident id".into()),
        },
    }
}

fn after_resolved(
    status: AlertStatus,
    event_ms: i64,
    pointer: &KeyPointer,
    done: Option<&Incident>,
) -> Decision {
    match (status, done) {
        (AlertStatus::Firing, _) if event_ms > pointer.event_ms => Decision::Open {
            after_resolved_ms: Some(pointer.event_ms),
        },
        (AlertStatus::Firing, _) => Decision::Stale,
        (AlertStatus::Resolved, Some(done)) if event_ms >= pointer.event_ms => {
            Decision::AlreadyResolved(Box::new(done.clone()))
        }
        (AlertStatus::Resolved, Some(_)) => Decision::Stale,
        (AlertStatus::Resolved, None) => Decision::NothingOpen,
    }
}

fn on_open(
    status: AlertStatus,
    event_ms: i64,
    open: &Incident,
    merge: impl FnOnce(&Incident) -> Incident,
) -> Decision {
    if event_ms < open.last_event_ms {
        return Decision::Stale;
    }
    if status == AlertStatus::Resolved {
        return Decision::Resolve(Box::new(open.clone()));
    }
    let mut next = merge(open);
    let changed = shown_differs(open, &next);
    if !changed && event_ms == open.last_event_ms {
        return Decision::Unchanged(Box::new(open.clone()));
    }
    next.event_count = open.event_count.saturating_add(1);
    next.version = open.version.saturating_add(1);
    Decision::Update {
        next: Box::new(next),
        changed,
    }
}

/// The incident an event makes of an open one: the old one with the event's content.
pub fn merged(old: &Incident, event: &AlertEvent, event_ms: i64, now: &str) -> Incident {
    let alert = &event.alert;
    let mut next = old.clone();
    next.severity = alert.severity;
    next.title = alert.title.clone();
    next.description = alert.description.clone();
    next.labels = alert.labels.clone();
    next.links = alert.links.clone();
    next.source = alert.source.clone().or(next.source);
    add_new(&mut next.targets.chats, &event.targets.chats);
    add_new(&mut next.targets.members, &event.targets.members);
    add_new(
        &mut next.targets.dingtalk_user_ids,
        &event.targets.dingtalk_user_ids,
    );
    next.last_event_ms = next.last_event_ms.max(event_ms);
    next.updated_at = now.to_string();
    next
}

/// Whether two incidents differ in what people see.
pub fn shown_differs(a: &Incident, b: &Incident) -> bool {
    (
        a.severity,
        &a.title,
        &a.description,
        &a.labels,
        &a.links,
        &a.targets,
        a.status,
    ) != (
        b.severity,
        &b.title,
        &b.description,
        &b.labels,
        &b.links,
        &b.targets,
        b.status,
    )
}

/// A new, triggered incident made from an alert event, following `policy` when a
/// route picked one (its layer 0 joins the targets the alert named).
pub fn new_incident(
    id: String,
    event: &AlertEvent,
    event_ms: i64,
    now: &str,
    policy: Option<&PolicySnapshot>,
) -> Incident {
    let alert = &event.alert;
    let mut incident = Incident {
        id,
        integration_id: event.integration_id.clone(),
        key: alert.key.clone(),
        status: IncidentStatus::Triggered,
        severity: alert.severity,
        title: alert.title.clone(),
        description: alert.description.clone(),
        labels: alert.labels.clone(),
        links: alert.links.clone(),
        source: alert.source.clone(),
        targets: event.targets.clone(),
        opened_at: now.to_string(),
        started_at: Some(crate::clock::rfc3339(event_ms)),
        updated_at: now.to_string(),
        resolved_at: None,
        acked_by: None,
        resolved_by: None,
        snoozed_until: None,
        last_event_ms: event_ms,
        event_count: 1,
        version: 1,
        assignees: event.targets.members.clone(),
        escalation: None,
        silence: None,
    };
    if let Some(policy) = policy {
        if let Some(first) = policy.layers.first() {
            add_new(&mut incident.targets.chats, &first.targets.chats);
            add_new(&mut incident.targets.members, &first.targets.members);
            add_new(&mut incident.assignees, &first.targets.members);
            add_new(&mut incident.targets.members, &policy.opening_oncall);
            add_new(&mut incident.assignees, &policy.opening_oncall);
        }
        incident.escalation = Some(Escalation::start(Some(policy.clone()), ms_of(now)));
        let next = schedule(&incident);
        if let Some(esc) = incident.escalation.as_mut() {
            esc.next = next;
        }
    }
    incident
}

fn add_new(have: &mut Vec<String>, add: &[String]) {
    for target in add {
        if !have.contains(target) && have.len() < super::bounds::INCIDENT_TARGETS {
            have.push(target.clone());
        }
    }
}

fn ms_of(now: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(now).map_or(0, |t| t.timestamp_millis())
}

/// The resolved state of an open incident.
pub fn resolved(open: &Incident, event_ms: i64, now: &str, by: &str) -> Incident {
    let mut next = open.clone();
    next.status = IncidentStatus::Resolved;
    next.resolved_at = Some(now.to_string());
    next.resolved_by = Some(by.to_string());
    next.updated_at = now.to_string();
    next.last_event_ms = open.last_event_ms.max(event_ms);
    next.version = open.version.saturating_add(1);
    reschedule(&mut next, ms_of(now));
    next
}

#[cfg(test)]
#[path = "incident_state_tests.rs"]
mod tests;
