//! Table tests of the escalation state machine, with no store and no clock.

use super::*;
use crate::domain::escalation::{DingRule, EscalateOn, LayerTargets, RemindType};
use crate::domain::incident::{AlertEvent, Severity};
use crate::domain::incident_state::{new_incident, resolved};
use serde_json::json;

const T0: i64 = 1_795_482_000_000;

fn layer(member: &str, after: u32, ding: Option<DingRule>) -> Layer {
    Layer {
        targets: LayerTargets {
            chats: vec![format!("cid-{member}")],
            members: vec![format!("{member}@example.com")],
            schedules: Vec::new(),
        },
        escalate_after_secs: after,
        escalate_on: EscalateOn::Unacknowledged,
        ding,
    }
}

fn policy(repeat: u32, from: u32, ack_timeout: Option<u32>) -> PolicySnapshot {
    PolicySnapshot {
        id: "pol".into(),
        version: 3,
        name: "payments".into(),
        layers: vec![
            layer("alice", 60, None),
            layer(
                "bob",
                300,
                Some(DingRule {
                    remind_type: RemindType::Call,
                    severities: vec![Severity::Critical],
                    only_unread: false,
                    after_secs: 30,
                }),
            ),
        ],
        repeat: Repeat {
            times: repeat,
            from_layer: from,
        },
        ack_timeout_secs: ack_timeout,
        opening_oncall: Vec::new(),
    }
}

fn opened(policy: &PolicySnapshot) -> Incident {
    let event: AlertEvent = serde_json::from_value(json!({"version": 1, "integration_id": "int",
        "alert": {"key": "k", "status": "firing", "severity": "critical", "title": "db down"},
        "targets": {"members": ["carol@example.com"]}}))
    .expect("event");
    new_incident(
        "inc".into(),
        &event,
        T0,
        &crate::clock::rfc3339(T0),
        Some(policy),
    )
}

fn esc(incident: &Incident) -> &Escalation {
    incident.escalation.as_ref().expect("escalation")
}

/// Fires whatever is due at `at` (ignoring the epoch, as the sweep does).
fn fire(incident: &Incident, at: i64) -> (Incident, Fired) {
    fire_due(incident, None, at).expect("a step is due")
}

#[test]
fn opening_adds_layer_zero_and_waits_for_the_next_layer() {
    let incident = opened(&policy(0, 0, None));
    assert_eq!(incident.targets.chats, vec!["cid-alice"]);
    assert_eq!(
        incident.targets.members,
        vec!["carol@example.com", "alice@example.com"]
    );
    assert_eq!(incident.assignees, incident.targets.members);
    let state = esc(&incident);
    assert_eq!((state.layer, state.round, state.epoch), (0, 0, 1));
    assert_eq!(
        state.next,
        Some(Pending {
            step: StepKind::Escalate,
            at_ms: T0 + 60_000
        })
    );
    assert_eq!(view(&incident).expect("view").state, "waiting");
}

#[test]
fn a_two_layer_policy_with_a_repeat_runs_as_configured() {
    let mut incident = opened(&policy(1, 1, None));
    let mut seen = Vec::new();
    let mut at = T0;
    for _ in 0..10 {
        let Some(next) = esc(&incident).next else {
            break;
        };
        at = next.at_ms;
        let (after, fired) = fire(&incident, at);
        seen.push((next.step, fired, (at - T0) / 1000));
        incident = after;
    }
    use Fired::*;
    use StepKind::{Ding as D, Escalate as E};
    assert_eq!(
        seen,
        vec![
            (
                E,
                Escalated {
                    layer: 1,
                    loop_count: 0,
                    round: 1
                },
                60
            ),
            (D, Ding { round: 1 }, 90),
            (
                E,
                Escalated {
                    layer: 1,
                    loop_count: 1,
                    round: 2
                },
                360
            ),
            (D, Ding { round: 2 }, 390),
            (E, Exhausted, 660),
        ]
    );
    assert!(at > T0);
    let state = esc(&incident);
    assert!(state.exhausted && state.next.is_none());
    assert_eq!(view(&incident).expect("view").state, "done");
    assert_eq!(incident.assignees, vec!["bob@example.com"]);
}

#[test]
fn each_step_owes_its_round_or_ding_once() {
    let incident = opened(&policy(0, 0, None));
    let (escalated, _) = fire(&incident, T0 + 60_000);
    let state = esc(&escalated);
    assert_eq!(
        state.undelivered,
        Some(Round {
            n: 1,
            to: RoundTo::Layer(1)
        })
    );
    assert_eq!(state.due_ms(), Some(0), "owed work is due now");
    assert_eq!(
        round_targets(&escalated, state.undelivered.as_ref().expect("round")).members,
        vec!["bob@example.com"]
    );
    let (dinged, _) = fire(&escalated, T0 + 90_000);
    assert_eq!(esc(&dinged).ding_owed, Some(1));
    assert_eq!(ding_members(&dinged), vec!["bob@example.com"]);
}

#[test]
fn old_epochs_and_early_timers_do_nothing() {
    let incident = opened(&policy(0, 0, None));
    let epoch = esc(&incident).epoch;
    assert!(
        fire_due(&incident, Some(epoch), T0 + 10_000).is_none(),
        "early"
    );
    assert!(
        fire_due(&incident, Some(epoch + 1), T0 + 60_000).is_none(),
        "other epoch"
    );
    let (after, _) = fire_due(&incident, Some(epoch), T0 + 59_500).expect("within tolerance");
    assert!(
        fire_due(&after, Some(epoch), T0 + 61_000).is_none(),
        "a duplicate of the fired timer"
    );
}

#[test]
fn acknowledge_stops_and_the_ack_timeout_retriggers_at_the_same_layer() {
    let incident = opened(&policy(0, 0, Some(600)));
    let (mut escalated, _) = fire(&incident, T0 + 60_000);
    escalated.status = IncidentStatus::Acknowledged;
    escalated.acked_by = Some("Bob".into());
    reschedule(&mut escalated, T0 + 70_000);
    let state = esc(&escalated);
    assert_eq!(
        state.next,
        Some(Pending {
            step: StepKind::AckTimeout,
            at_ms: T0 + 670_000
        })
    );
    let (again, fired) = fire(&escalated, T0 + 670_000);
    assert_eq!(fired, Fired::AckTimeout { round: 2 });
    assert_eq!(again.status, IncidentStatus::Triggered);
    assert!(again.acked_by.is_none());
    assert_eq!(esc(&again).layer, 1);
    assert_eq!(esc(&again).next.map(|p| p.step), Some(StepKind::Ding));

    let mut no_timeout = opened(&policy(0, 0, None));
    no_timeout.status = IncidentStatus::Acknowledged;
    reschedule(&mut no_timeout, T0 + 5_000);
    assert!(esc(&no_timeout).next.is_none());
    assert_eq!(view(&no_timeout).expect("view").state, "stopped");
}

#[test]
fn unresolved_layers_keep_escalating_after_acknowledge_without_dinging() {
    let mut policy = policy(0, 0, None);
    policy.layers[0].escalate_on = EscalateOn::Unresolved;
    let mut incident = opened(&policy);
    incident.status = IncidentStatus::Acknowledged;
    reschedule(&mut incident, T0 + 1_000);
    let (escalated, fired) = fire(&incident, T0 + 60_000);
    assert!(matches!(fired, Fired::Escalated { layer: 1, .. }));
    assert_eq!(escalated.status, IncidentStatus::Acknowledged);
    assert_eq!(
        esc(&escalated).next.map(|p| p.step),
        None,
        "layer 1 stops on ack"
    );
}

#[test]
fn snooze_pauses_and_its_end_renotifies_and_resumes() {
    let mut incident = opened(&policy(0, 0, None));
    incident.snoozed_until = Some(crate::clock::rfc3339(T0 + 1_800_000));
    reschedule(&mut incident, T0 + 10_000);
    assert_eq!(
        esc(&incident).next,
        Some(Pending {
            step: StepKind::SnoozeEnd,
            at_ms: T0 + 1_800_000
        })
    );
    assert!(
        fire_due(&incident, None, T0 + 60_000).is_none(),
        "no escalation while snoozed"
    );
    let (woken, fired) = fire(&incident, T0 + 1_800_000);
    assert_eq!(fired, Fired::SnoozeEnded { round: 1 });
    assert!(woken.snoozed_until.is_none());
    let state = esc(&woken);
    assert_eq!(
        state.undelivered,
        Some(Round {
            n: 1,
            to: RoundTo::Layer(0)
        })
    );
    assert_eq!(
        state.next,
        Some(Pending {
            step: StepKind::Escalate,
            at_ms: T0 + 1_860_000
        })
    );
}

#[test]
fn a_snooze_without_a_policy_still_ends_with_a_notification() {
    let event: AlertEvent = serde_json::from_value(json!({"version": 1, "integration_id": "int",
        "alert": {"key": "k", "status": "firing", "severity": "info", "title": "disk"},
        "targets": {"chats": ["cid-x"]}}))
    .expect("event");
    let mut incident = new_incident("inc".into(), &event, T0, &crate::clock::rfc3339(T0), None);
    assert!(incident.escalation.is_none());
    incident.snoozed_until = Some(crate::clock::rfc3339(T0 + 60_000));
    reschedule(&mut incident, T0);
    let (woken, fired) = fire(&incident, T0 + 60_000);
    assert_eq!(fired, Fired::SnoozeEnded { round: 1 });
    let round = esc(&woken).undelivered.clone().expect("round");
    assert_eq!(round_targets(&woken, &round).chats, vec!["cid-x"]);
    assert!(esc(&woken).next.is_none(), "no policy: nothing more");
    assert!(view(&woken).is_none());
}

#[test]
fn resolve_ends_everything() {
    let incident = opened(&policy(0, 0, None));
    let done = resolved(&incident, T0, &crate::clock::rfc3339(T0 + 5_000), "source");
    assert!(esc(&done).next.is_none());
    assert!(esc(&done).epoch > esc(&incident).epoch);
    assert!(fire_due(&done, None, T0 + 600_000).is_none());
    assert_eq!(view(&done).expect("view").state, "done");
}

#[test]
fn escalate_now_and_reassign() {
    let incident = opened(&policy(0, 0, None));
    let (now, fired) = escalate_now(&incident, T0 + 5_000).expect("escalates");
    assert!(matches!(
        fired,
        Fired::Escalated {
            layer: 1,
            round: 1,
            ..
        }
    ));
    assert_eq!(
        esc(&now).next,
        Some(Pending {
            step: StepKind::Ding,
            at_ms: T0 + 35_000
        })
    );
    let err = escalate_now(&now, T0 + 6_000).expect_err("still delivering");
    assert_eq!(err.0, Refusal::StepStillDelivering);
    let mut now = now;
    if let Some(state) = now.escalation.as_mut() {
        state.undelivered = None;
    }
    let err = escalate_now(&now, T0 + 6_000).expect_err("no layer left");
    assert_eq!(err.0, Refusal::LastLayerDone);

    let mut acked = now.clone();
    acked.status = IncidentStatus::Acknowledged;
    let handed = reassign(&acked, "dave@example.com", T0 + 7_000).expect("reassigns");
    assert_eq!(handed.status, IncidentStatus::Triggered);
    assert_eq!(handed.assignees, vec!["dave@example.com"]);
    let state = esc(&handed);
    assert_eq!(
        state.undelivered,
        Some(Round {
            n: 2,
            to: RoundTo::Member("dave@example.com".into())
        })
    );
    assert_eq!(
        state.next.map(|p| p.step),
        Some(StepKind::Escalate),
        "the layer's wait starts over, without a second DING"
    );
    let plain = {
        let mut i = incident.clone();
        i.escalation = None;
        i
    };
    assert!(escalate_now(&plain, T0).is_err());
}

#[test]
fn timers_are_one_for_owed_work_and_one_for_the_due_step() {
    let incident = opened(&policy(0, 0, None));
    assert_eq!(timers(&incident), vec![T0 + 60_000]);
    let (escalated, _) = fire(&incident, T0 + 60_000);
    assert_eq!(timers(&escalated), vec![0, T0 + 90_000]);
}

#[test]
fn a_layer_naming_a_schedule_pages_whoever_is_on_call_when_it_fires() {
    let mut with_schedule = policy(0, 0, None);
    with_schedule.layers[1].targets.schedules = vec!["sched".into()];
    with_schedule.opening_oncall = Vec::new();
    let incident = opened(&with_schedule);
    let (mut escalated, fired) =
        fire_due(&incident, None, T0 + 60_000).expect("the second layer is due");
    assert!(matches!(fired, Fired::Escalated { layer: 1, .. }));
    assert_eq!(layer_schedules(&escalated), vec!["sched"]);
    staff_layer(&mut escalated, &["dave@example.com".to_string()], true);
    let round = esc(&escalated).undelivered.clone().expect("round");
    assert_eq!(
        round_targets(&escalated, &round).members,
        vec!["bob@example.com", "dave@example.com"]
    );
    assert_eq!(
        escalated.assignees,
        vec!["bob@example.com", "dave@example.com"]
    );
    assert!(ding_members(&escalated).contains(&"dave@example.com".to_string()));
    // Layer 0's schedules are looked up when the incident opens.
    let mut at_open = policy(0, 0, None);
    at_open.opening_oncall = vec!["erin@example.com".into()];
    let opened = opened(&at_open);
    assert!(
        opened
            .targets
            .members
            .contains(&"erin@example.com".to_string())
    );
    assert!(opened.assignees.contains(&"erin@example.com".to_string()));
}
