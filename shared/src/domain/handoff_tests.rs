//! Table tests of handoff decisions, with no store and no clock.

use super::*;
use crate::domain::oncall_schedule::{OnCallSchedule, Override, ScheduleSpec};

/// Wednesday 2026-12-02 08:00 in Asia/Shanghai.
const WED_0800: i64 = 1_796_169_600_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// Daily at 09:00 Shanghai: alice from Tuesday, bob from Wednesday, alice Thursday…
fn daily(created_ms: i64, chat: Option<&str>, notice_mins: u32) -> OnCallSchedule {
    let spec: ScheduleSpec = serde_json::from_value(serde_json::json!({
        "name": "daily", "timezone": "Asia/Shanghai",
        "rotations": [{"members": ["alice@example.com", "bob@example.com"],
                       "start": "2026-12-01T09:00", "shift": {"days": 1}}],
        "chat": chat, "handoff_notice_mins": notice_mins}))
    .expect("spec");
    OnCallSchedule::from_spec("int", "sch".into(), 1, spec, created_ms)
}

fn message(kind: HandoffKind, member: &str, start_ms: i64) -> HandoffMessage {
    HandoffMessage {
        kind,
        member: format!("{member}@example.com"),
        start_ms,
    }
}

/// Runs every decision from `from` to `to` minute by minute, delivering at once;
/// returns the messages in order, each with the minute it was decided.
fn run(mut schedule: OnCallSchedule, from: i64, to: i64) -> Vec<(i64, HandoffMessage)> {
    let mut out = Vec::new();
    let mut now = from;
    while now <= to {
        if let Some((next, due)) = decide_due(&schedule, now) {
            schedule = next;
            for m in due {
                schedule = delivered(&schedule, &m);
                out.push((now, m));
            }
            // Decided twice (a duplicate timer, a second sweep): nothing more.
            assert!(decide_due(&schedule, now).is_none());
        }
        now += MIN;
    }
    out
}

#[test]
fn the_notice_goes_out_before_the_shift_and_the_announcement_at_it_once_each() {
    let schedule = daily(WED_0800, Some("cid"), 30);
    assert_eq!(next_due(&schedule, WED_0800), Some(WED_0800 + 30 * MIN));
    assert!(decide_due(&schedule, WED_0800 + 29 * MIN).is_none());
    let sent = run(schedule, WED_0800, WED_0800 + 26 * HOUR);
    assert_eq!(
        sent,
        vec![
            (
                WED_0800 + 30 * MIN,
                message(HandoffKind::Notice, "bob", WED_0800 + HOUR)
            ),
            (
                WED_0800 + HOUR,
                message(HandoffKind::Announce, "bob", WED_0800 + HOUR)
            ),
            (
                WED_0800 + 24 * HOUR + 30 * MIN,
                message(HandoffKind::Notice, "alice", WED_0800 + 25 * HOUR)
            ),
            (
                WED_0800 + 25 * HOUR,
                message(HandoffKind::Announce, "alice", WED_0800 + 25 * HOUR)
            ),
        ]
    );
}

#[test]
fn what_is_owed_is_due_at_once_until_delivered() {
    let schedule = daily(WED_0800, Some("cid"), 30);
    let (decided, due) = decide_due(&schedule, WED_0800 + 30 * MIN).expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(next_due(&decided, WED_0800 + 31 * MIN), Some(0));
    let done = delivered(&decided, &due[0]);
    assert_eq!(next_due(&done, WED_0800 + 31 * MIN), Some(WED_0800 + HOUR));
    assert!(done.revision > decided.revision);
}

#[test]
fn no_chat_no_announcement_and_zero_notice_minutes_no_notice() {
    let quiet = run(daily(WED_0800, None, 30), WED_0800, WED_0800 + 2 * HOUR);
    assert_eq!(quiet.len(), 1);
    assert_eq!(quiet[0].1.kind, HandoffKind::Notice);
    let no_notice = run(
        daily(WED_0800, Some("cid"), 0),
        WED_0800,
        WED_0800 + 2 * HOUR,
    );
    assert_eq!(no_notice.len(), 1);
    assert_eq!(no_notice[0].1.kind, HandoffKind::Announce);
}

#[test]
fn shifts_before_the_schedule_existed_and_stale_messages_are_not_sent() {
    // Created after Wednesday's handoff: nothing about it; Thursday's comes.
    let late = daily(WED_0800 + 90 * MIN, Some("cid"), 30);
    let sent = run(late, WED_0800 + 90 * MIN, WED_0800 + 4 * HOUR);
    assert!(sent.is_empty(), "{sent:?}");
    // Created at 06:00, but nothing ran until 09:30 (an outage): the notice is
    // stale (the shift began), the announcement still useful.
    let schedule = daily(WED_0800 - 2 * HOUR, Some("cid"), 30);
    let (_, due) = decide_due(&schedule, WED_0800 + 90 * MIN).expect("due");
    assert_eq!(
        due,
        vec![message(HandoffKind::Announce, "bob", WED_0800 + HOUR)]
    );
    assert!(decide_due(&schedule, WED_0800 + 3 * HOUR).is_none());
}

#[test]
fn an_override_hands_off_to_its_member_and_back() {
    let mut schedule = daily(WED_0800 + 2 * HOUR, Some("cid"), 15);
    schedule.overrides.push(Override {
        id: "o".into(),
        member: "carol@example.com".into(),
        start_ms: WED_0800 + 4 * HOUR,
        end_ms: WED_0800 + 6 * HOUR,
    });
    let sent: Vec<HandoffMessage> = run(schedule, WED_0800 + 2 * HOUR, WED_0800 + 7 * HOUR)
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(
        sent,
        vec![
            message(HandoffKind::Notice, "carol", WED_0800 + 4 * HOUR),
            message(HandoffKind::Announce, "carol", WED_0800 + 4 * HOUR),
            message(HandoffKind::Notice, "bob", WED_0800 + 6 * HOUR),
            message(HandoffKind::Announce, "bob", WED_0800 + 6 * HOUR),
        ]
    );
}

#[test]
fn sent_messages_are_forgotten_after_two_days() {
    let schedule = daily(WED_0800, Some("cid"), 30);
    let (decided, _) = decide_due(&schedule, WED_0800 + 30 * MIN).expect("due");
    let (later, _) = decide_due(
        &delivered(&decided, &decided.handoff.owed[0]),
        WED_0800 + 72 * HOUR + 30 * MIN,
    )
    .expect("saturday's notice");
    assert!(
        later
            .handoff
            .sent
            .iter()
            .all(|m| m.start_ms > WED_0800 + 24 * HOUR)
    );
}
