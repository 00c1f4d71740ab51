//! Table tests of the incident state machine: no store, no clock.

use super::*;
use crate::domain::incident::{Alert, Severity};
use crate::domain::integration::Targets;

fn event(status: AlertStatus, title: &str) -> AlertEvent {
    AlertEvent {
        version: 1,
        integration_id: "int".into(),
        alert: Alert {
            key: "k".into(),
            status,
            severity: Severity::Critical,
            title: title.into(),
            description: String::new(),
            labels: Default::default(),
            links: Vec::new(),
            source: None,
            occurred_at: None,
        },
        targets: Targets::default(),
        truncated: Vec::new(),
        mention_mobiles: Vec::new(),
    }
}

fn incident(status: IncidentStatus, last_event_ms: i64) -> Incident {
    let mut incident = new_incident(
        "inc".into(),
        &event(AlertStatus::Firing, "t"),
        last_event_ms,
        "now",
        None,
    );
    incident.status = status;
    incident
}

fn pointer(state: PointerState, id: Option<&str>, event_ms: i64) -> KeyPointer {
    KeyPointer {
        state,
        incident_id: id.map(str::to_string),
        event_ms,
    }
}

/// The decision's name, for the tables.
fn name(decision: &Decision) -> &'static str {
    match decision {
        Decision::Open {
            after_resolved_ms: None,
        } => "open",
        Decision::Open { .. } => "reopen",
        Decision::Update { changed: true, .. } => "update",
        Decision::Update { changed: false, .. } => "touch",
        Decision::Unchanged(_) => "unchanged",
        Decision::Resolve(_) => "resolve",
        Decision::AlreadyResolved(_) => "already_resolved",
        Decision::Stale => "stale",
        Decision::NothingOpen => "nothing_open",
        Decision::RememberResolved => "remember_resolved",
        Decision::RepairPointer(_) => "repair_pointer",
        Decision::WriteMissing { .. } => "write_missing",
        Decision::Corrupt(_) => "corrupt",
    }
}

use AlertStatus::{Firing, Resolved};
use IncidentStatus::{Acknowledged, Resolved as Done, Triggered};
use PointerState::{Open, Resolved as Closed};

/// (case, event status, event ms, pointer, incident, new title, expected decision)
type Case = (
    &'static str,
    AlertStatus,
    i64,
    Option<KeyPointer>,
    Option<Incident>,
    &'static str,
    &'static str,
);

#[test]
fn decisions_table() {
    // (case, event status, event ms, pointer, incident, new title, expected)
    let open_100 = Some(pointer(Open, Some("inc"), 100));
    let closed_100 = Some(pointer(Closed, Some("inc"), 100));
    let cases: Vec<Case> = vec![
        ("first firing opens", Firing, 100, None, None, "t", "open"),
        (
            "first resolve is remembered",
            Resolved,
            100,
            None,
            None,
            "t",
            "remember_resolved",
        ),
        (
            "newer firing with new content updates",
            Firing,
            200,
            open_100.clone(),
            Some(incident(Triggered, 100)),
            "new",
            "update",
        ),
        (
            "newer firing, same content, counts",
            Firing,
            200,
            open_100.clone(),
            Some(incident(Triggered, 100)),
            "t",
            "touch",
        ),
        (
            "same event again writes nothing",
            Firing,
            100,
            open_100.clone(),
            Some(incident(Triggered, 100)),
            "t",
            "unchanged",
        ),
        (
            "older firing is stale",
            Firing,
            50,
            open_100.clone(),
            Some(incident(Triggered, 100)),
            "new",
            "stale",
        ),
        (
            "acknowledged incidents update too",
            Firing,
            200,
            open_100.clone(),
            Some(incident(Acknowledged, 100)),
            "new",
            "update",
        ),
        (
            "resolve resolves",
            Resolved,
            150,
            open_100.clone(),
            Some(incident(Triggered, 100)),
            "t",
            "resolve",
        ),
        (
            "resolve at the same time resolves",
            Resolved,
            100,
            open_100.clone(),
            Some(incident(Triggered, 100)),
            "t",
            "resolve",
        ),
        (
            "older resolve is stale",
            Resolved,
            50,
            open_100.clone(),
            Some(incident(Triggered, 100)),
            "t",
            "stale",
        ),
        (
            "firing after a resolve reopens",
            Firing,
            200,
            closed_100.clone(),
            Some(incident(Done, 100)),
            "t",
            "reopen",
        ),
        (
            "firing before the resolve is stale",
            Firing,
            100,
            closed_100.clone(),
            Some(incident(Done, 100)),
            "t",
            "stale",
        ),
        (
            "resolve again is already resolved",
            Resolved,
            100,
            closed_100.clone(),
            Some(incident(Done, 100)),
            "t",
            "already_resolved",
        ),
        (
            "older resolve of a resolved key is stale",
            Resolved,
            50,
            closed_100.clone(),
            Some(incident(Done, 100)),
            "t",
            "stale",
        ),
        (
            "resolve-before-firing: later firing opens",
            Firing,
            200,
            Some(pointer(Closed, None, 100)),
            None,
            "t",
            "reopen",
        ),
        (
            "resolve-before-firing: older firing is stale",
            Firing,
            50,
            Some(pointer(Closed, None, 100)),
            None,
            "t",
            "stale",
        ),
        (
            "resolve-before-firing: resolve again",
            Resolved,
            150,
            Some(pointer(Closed, None, 100)),
            None,
            "t",
            "nothing_open",
        ),
        (
            "half-done resolve is repaired first",
            Firing,
            200,
            open_100.clone(),
            Some(incident(Done, 100)),
            "t",
            "repair_pointer",
        ),
        (
            "half-done open: firing writes the incident",
            Firing,
            200,
            open_100.clone(),
            None,
            "t",
            "write_missing",
        ),
        (
            "half-done open: resolve writes the incident",
            Resolved,
            200,
            open_100.clone(),
            None,
            "t",
            "write_missing",
        ),
        (
            "half-done open: older resolve is stale",
            Resolved,
            50,
            open_100.clone(),
            None,
            "t",
            "stale",
        ),
        (
            "open pointer without id is corrupt",
            Firing,
            200,
            Some(pointer(Open, None, 100)),
            None,
            "t",
            "corrupt",
        ),
    ];
    for (case, status, event_ms, pointer, found, title, expected) in cases {
        let e = event(status, title);
        let decision = decide(status, event_ms, pointer.as_ref(), found.as_ref(), |open| {
            merged(open, &e, event_ms, "later")
        });
        assert_eq!(name(&decision), expected, "{case}");
    }
}

#[test]
fn updates_bump_version_and_count() {
    let open = incident(Triggered, 100);
    let e = event(Firing, "new title");
    let decision = decide(
        Firing,
        200,
        Some(&pointer(Open, Some("inc"), 100)),
        Some(&open),
        |o| merged(o, &e, 200, "later"),
    );
    let Decision::Update { next, changed } = decision else {
        panic!("expected an update, got {decision:?}");
    };
    assert!(changed);
    assert_eq!((next.version, next.event_count), (2, 2));
    assert_eq!(
        (next.title.as_str(), next.last_event_ms),
        ("new title", 200)
    );
    assert_eq!(next.updated_at, "later");
}

#[test]
fn merging_adds_targets_once() {
    let mut open = incident(Triggered, 100);
    open.targets.chats = vec!["a".into()];
    let mut e = event(Firing, "t");
    e.targets.chats = vec!["a".into(), "b".into()];
    let next = merged(&open, &e, 200, "later");
    assert_eq!(next.targets.chats, ["a", "b"]);
}

#[test]
fn resolving_records_who_and_when() {
    let open = incident(Acknowledged, 100);
    let done = resolved(&open, 300, "then", "source");
    assert_eq!(done.status, Done);
    assert_eq!(done.resolved_by.as_deref(), Some("source"));
    assert_eq!((done.version, done.last_event_ms), (2, 300));
}

#[test]
fn pointer_states_round_trip() {
    for state in [Open, Closed] {
        assert_eq!(PointerState::parse(state.as_str()), Some(state));
    }
    assert_eq!(PointerState::parse("other"), None);
}
