//! Table tests of the on-call timeline: rotations, restrict windows, layering,
//! overrides, DST in America/New_York and Asia/Shanghai, handoffs. No store.

use super::*;
use crate::domain::oncall_schedule::{
    OnCallSchedule, Override, Restrict, Rotation, ScheduleSpec, ShiftLength, Weekday, local_to_ms,
    ms_to_local, parse_local,
};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
const ROT: ShiftSource = ShiftSource::Rotation;
const OVR: ShiftSource = ShiftSource::Override;
const SHANGHAI: &str = "Asia/Shanghai";
const NEW_YORK: &str = "America/New_York";

/// `YYYY-MM-DDTHH:MM` read as UTC.
fn utc(text: &str) -> i64 {
    parse_local(text)
        .expect("time")
        .and_utc()
        .timestamp_millis()
}

/// `YYYY-MM-DDTHH:MM` read as local time in `tz`.
fn local(tz: &str, text: &str) -> i64 {
    local_to_ms(tz.parse().expect("tz"), parse_local(text).expect("time"))
}

/// The local `HH:MM` of an instant in `tz`.
fn clock(tz: &str, ms: i64) -> String {
    ms_to_local(tz.parse().expect("tz"), ms)
        .format("%H:%M")
        .to_string()
}

/// A rotation of space-separated `members`.
fn rotation(members: &str, start: &str, shift: ShiftLength) -> Rotation {
    Rotation {
        members: members.split_whitespace().map(str::to_string).collect(),
        start: start.to_string(),
        shift,
        restrict: None,
    }
}

/// `rotation` limited to windows `(space-separated days, from, to)`.
fn restricted(mut rotation: Rotation, windows: &[(&str, &str, &str)]) -> Rotation {
    let day =
        |name: &str| -> Weekday { serde_json::from_value(serde_json::json!(name)).expect("day") };
    rotation.restrict = Some(
        windows
            .iter()
            .map(|(days, from, to)| Restrict {
                days: days.split_whitespace().map(day).collect(),
                from: from.to_string(),
                to: to.to_string(),
            })
            .collect(),
    );
    rotation
}

/// A schedule in `tz` with `rotations` and overrides `(member, start, end)`.
fn schedule(tz: &str, rotations: Vec<Rotation>, overrides: &[(&str, i64, i64)]) -> OnCallSchedule {
    let spec = ScheduleSpec {
        name: "test".into(),
        timezone: tz.into(),
        rotations,
        chat: None,
        handoff_notice_mins: 30,
    };
    let mut schedule = OnCallSchedule::from_spec("int", "sch".into(), 1, spec, 0);
    schedule.overrides = overrides
        .iter()
        .enumerate()
        .map(|(i, (member, start_ms, end_ms))| Override {
            id: format!("o{i}"),
            member: member.to_string(),
            start_ms: *start_ms,
            end_ms: *end_ms,
        })
        .collect();
    schedule
}

/// Expected shifts from `(member, start UTC, end UTC, source)`.
fn table(rows: &[(&str, &str, &str, ShiftSource)]) -> Vec<Shift> {
    rows.iter()
        .map(|(member, start, end, source)| Shift {
            member: member.to_string(),
            start_ms: utc(start),
            end_ms: utc(end),
            source: *source,
        })
        .collect()
}

/// Expected handoffs from `(member, start UTC)`.
fn handoff_table(rows: &[(&str, &str)]) -> Vec<Handoff> {
    rows.iter()
        .map(|(member, start)| Handoff {
            member: member.to_string(),
            start_ms: utc(start),
        })
        .collect()
}

fn now(member: Option<&str>, from: &str, until: &str) -> OnCallNow {
    OnCallNow {
        members: member.map(str::to_string).into_iter().collect(),
        from_ms: utc(from),
        until_ms: utc(until),
    }
}

// 1. Rotations across a handoff.

#[test]
fn weekly_rotation_hands_off_at_nine_local() {
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice bob carol",
            "2026-12-01T09:00",
            ShiftLength::Weeks(1),
        )],
        &[],
    );
    let handoff = utc("2026-12-08T01:00");
    assert_eq!(handoff, local(SHANGHAI, "2026-12-08T09:00"));
    let cases = [
        (
            handoff - 1,
            now(Some("alice"), "2026-12-01T01:00", "2026-12-08T01:00"),
        ),
        (
            handoff,
            now(Some("bob"), "2026-12-08T01:00", "2026-12-15T01:00"),
        ),
        (
            utc("2026-12-20T00:00"),
            now(Some("carol"), "2026-12-15T01:00", "2026-12-22T01:00"),
        ),
        (
            utc("2026-12-22T01:00"),
            now(Some("alice"), "2026-12-22T01:00", "2026-12-29T01:00"),
        ),
    ];
    for (at, want) in cases {
        assert_eq!(on_call_at(&s, at), want, "at {at}");
    }
    assert_eq!(
        shifts(&s, utc("2026-12-05T00:00"), utc("2026-12-19T00:00")),
        table(&[
            ("alice", "2026-12-05T00:00", "2026-12-08T01:00", ROT),
            ("bob", "2026-12-08T01:00", "2026-12-15T01:00", ROT),
            ("carol", "2026-12-15T01:00", "2026-12-19T00:00", ROT),
        ])
    );
}

#[test]
fn nobody_before_the_rotation_starts() {
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice bob",
            "2026-12-01T09:00",
            ShiftLength::Weeks(1),
        )],
        &[],
    );
    let start = utc("2026-12-01T01:00");
    let at = start - HOUR;
    // The gap is clipped to the range looked at: the longest shift plus 8 days.
    let got = on_call_at(&s, at);
    assert_eq!(got.members, Vec::<String>::new());
    assert_eq!(
        (got.from_ms, got.until_ms),
        (at - 168 * HOUR - 8 * DAY, start)
    );
    assert_eq!(
        shifts(&s, utc("2026-11-20T00:00"), utc("2026-12-02T00:00")),
        table(&[("alice", "2026-12-01T01:00", "2026-12-02T00:00", ROT)])
    );
}

#[test]
fn twelve_hour_rotation() {
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice bob",
            "2026-12-01T09:00",
            ShiftLength::Hours(12),
        )],
        &[],
    );
    assert_eq!(
        shifts(&s, utc("2026-12-01T00:00"), utc("2026-12-02T12:00")),
        table(&[
            ("alice", "2026-12-01T01:00", "2026-12-01T13:00", ROT),
            ("bob", "2026-12-01T13:00", "2026-12-02T01:00", ROT),
            ("alice", "2026-12-02T01:00", "2026-12-02T12:00", ROT),
        ])
    );
    // Far from the start, the first shift index is computed, not walked to.
    assert_eq!(
        on_call_at(&s, utc("2027-06-01T12:00")),
        now(Some("alice"), "2027-06-01T01:00", "2027-06-01T13:00")
    );
}

#[test]
fn one_member_rotation_is_one_stretch() {
    let s = schedule(
        SHANGHAI,
        vec![rotation("alice", "2026-12-01T09:00", ShiftLength::Days(1))],
        &[],
    );
    assert_eq!(
        shifts(&s, utc("2026-12-01T00:00"), utc("2026-12-04T00:00")),
        table(&[("alice", "2026-12-01T01:00", "2026-12-04T00:00", ROT)])
    );
    let at = utc("2026-12-20T00:00");
    let got = on_call_at(&s, at);
    assert_eq!(got.members, vec!["alice".to_string()]);
    assert_eq!((got.from_ms, got.until_ms), (at - 9 * DAY, at + 9 * DAY));
    assert!(handoffs(&s, utc("2026-12-02T00:00"), utc("2026-12-10T00:00")).is_empty());
}

// 2. Restrict windows.

#[test]
fn business_hours_window() {
    let s = schedule(
        SHANGHAI,
        vec![restricted(
            rotation("alice bob", "2026-12-01T09:00", ShiftLength::Days(1)),
            &[("mon tue wed thu fri", "09:00", "18:00")],
        )],
        &[],
    );
    let cases = [
        // Saturday noon: nobody from Friday 18:00 to Monday 09:00.
        (
            "2026-12-05T12:00",
            now(None, "2026-12-04T10:00", "2026-12-07T01:00"),
        ),
        // Monday 20:00: nobody until Tuesday 09:00.
        (
            "2026-12-07T20:00",
            now(None, "2026-12-07T10:00", "2026-12-08T01:00"),
        ),
        // Monday 10:00: shift 6 (alice), cut to the window.
        (
            "2026-12-07T10:00",
            now(Some("alice"), "2026-12-07T01:00", "2026-12-07T10:00"),
        ),
        (
            "2026-12-08T17:59",
            now(Some("bob"), "2026-12-08T01:00", "2026-12-08T10:00"),
        ),
    ];
    for (at, want) in cases {
        assert_eq!(on_call_at(&s, local(SHANGHAI, at)), want, "at {at}");
    }
    assert_eq!(
        shifts(
            &s,
            local(SHANGHAI, "2026-12-03T00:00"),
            local(SHANGHAI, "2026-12-08T00:00")
        ),
        table(&[
            ("alice", "2026-12-03T01:00", "2026-12-03T10:00", ROT),
            ("bob", "2026-12-04T01:00", "2026-12-04T10:00", ROT),
            ("alice", "2026-12-07T01:00", "2026-12-07T10:00", ROT),
        ])
    );
}

#[test]
fn a_window_holds_whoever_has_the_shift() {
    // Handoff at noon, inside the 09:00–18:00 window: the window is split.
    let s = schedule(
        SHANGHAI,
        vec![restricted(
            rotation("alice bob", "2026-12-01T12:00", ShiftLength::Days(1)),
            &[("wed", "09:00", "18:00")],
        )],
        &[],
    );
    assert_eq!(
        shifts(&s, utc("2026-12-01T00:00"), utc("2026-12-08T00:00")),
        table(&[
            ("alice", "2026-12-02T01:00", "2026-12-02T04:00", ROT),
            ("bob", "2026-12-02T04:00", "2026-12-02T10:00", ROT),
        ])
    );
}

#[test]
fn overnight_window() {
    // Weekly from Monday 00:00; on call nights 18:00–09:00 every day.
    let s = schedule(
        SHANGHAI,
        vec![restricted(
            rotation("alice bob", "2026-11-30T00:00", ShiftLength::Weeks(1)),
            &[("mon tue wed thu fri sat sun", "18:00", "09:00")],
        )],
        &[],
    );
    assert_eq!(
        shifts(
            &s,
            local(SHANGHAI, "2026-12-06T12:00"),
            local(SHANGHAI, "2026-12-09T00:00")
        ),
        table(&[
            ("alice", "2026-12-06T10:00", "2026-12-06T16:00", ROT),
            ("bob", "2026-12-06T16:00", "2026-12-07T01:00", ROT),
            ("bob", "2026-12-07T10:00", "2026-12-08T01:00", ROT),
            ("bob", "2026-12-08T10:00", "2026-12-08T16:00", ROT),
        ])
    );
    let cases = [
        (
            "2026-12-06T20:00",
            now(Some("alice"), "2026-12-06T10:00", "2026-12-06T16:00"),
        ),
        (
            "2026-12-07T03:00",
            now(Some("bob"), "2026-12-06T16:00", "2026-12-07T01:00"),
        ),
        (
            "2026-12-07T12:00",
            now(None, "2026-12-07T01:00", "2026-12-07T10:00"),
        ),
    ];
    for (at, want) in cases {
        assert_eq!(on_call_at(&s, local(SHANGHAI, at)), want, "at {at}");
    }
    // A window listed on Friday only still runs into Saturday morning.
    let friday = schedule(
        SHANGHAI,
        vec![restricted(
            rotation("alice", "2026-11-30T00:00", ShiftLength::Weeks(1)),
            &[("fri", "18:00", "09:00")],
        )],
        &[],
    );
    assert_eq!(
        shifts(&friday, utc("2026-11-30T00:00"), utc("2026-12-07T00:00")),
        table(&[("alice", "2026-12-04T10:00", "2026-12-05T01:00", ROT)])
    );
}

#[test]
fn window_to_midnight() {
    let s = schedule(
        SHANGHAI,
        vec![restricted(
            rotation("alice bob", "2026-11-30T00:00", ShiftLength::Weeks(1)),
            &[("sat sun", "00:00", "24:00"), ("mon", "20:00", "24:00")],
        )],
        &[],
    );
    // Saturday and Sunday join into one stretch; Monday 20:00 to midnight.
    assert_eq!(
        shifts(&s, utc("2026-11-30T00:00"), utc("2026-12-09T00:00")),
        table(&[
            ("alice", "2026-11-30T12:00", "2026-11-30T16:00", ROT),
            ("alice", "2026-12-04T16:00", "2026-12-06T16:00", ROT),
            ("bob", "2026-12-07T12:00", "2026-12-07T16:00", ROT),
        ])
    );
    assert_eq!(
        on_call_at(&s, local(SHANGHAI, "2026-12-06T23:59")),
        now(Some("alice"), "2026-12-04T16:00", "2026-12-06T16:00")
    );
}

// 3. Layering.

#[test]
fn later_rotation_wins_in_its_windows() {
    let s = schedule(
        SHANGHAI,
        vec![
            rotation("alice bob", "2026-12-01T09:00", ShiftLength::Days(1)),
            restricted(
                rotation("carol dave", "2026-11-30T00:00", ShiftLength::Weeks(1)),
                &[("mon tue wed thu fri", "09:00", "18:00")],
            ),
        ],
        &[],
    );
    assert_eq!(
        shifts(
            &s,
            local(SHANGHAI, "2026-12-07T00:00"),
            local(SHANGHAI, "2026-12-08T00:00")
        ),
        table(&[
            ("bob", "2026-12-06T16:00", "2026-12-07T01:00", ROT),
            ("dave", "2026-12-07T01:00", "2026-12-07T10:00", ROT),
            ("alice", "2026-12-07T10:00", "2026-12-07T16:00", ROT),
        ])
    );
    let cases = [
        // Saturday: the base rotation shows through.
        (
            "2026-12-05T12:00",
            now(Some("alice"), "2026-12-05T01:00", "2026-12-06T01:00"),
        ),
        // Friday evening: the base's Friday shift (bob) after the window closes.
        (
            "2026-12-04T19:00",
            now(Some("bob"), "2026-12-04T10:00", "2026-12-05T01:00"),
        ),
        (
            "2026-12-04T12:00",
            now(Some("carol"), "2026-12-04T01:00", "2026-12-04T10:00"),
        ),
        // Before the base starts, the upper rotation still has its windows.
        (
            "2026-11-30T12:00",
            now(Some("carol"), "2026-11-30T01:00", "2026-11-30T10:00"),
        ),
    ];
    for (at, want) in cases {
        assert_eq!(on_call_at(&s, local(SHANGHAI, at)), want, "at {at}");
    }
}

#[test]
fn later_rotation_before_its_start_lets_the_base_through() {
    let s = schedule(
        SHANGHAI,
        vec![
            rotation("alice", "2026-12-01T09:00", ShiftLength::Weeks(1)),
            rotation("bob", "2026-12-03T09:00", ShiftLength::Weeks(1)),
        ],
        &[],
    );
    assert_eq!(
        shifts(&s, utc("2026-12-01T00:00"), utc("2026-12-05T00:00")),
        table(&[
            ("alice", "2026-12-01T01:00", "2026-12-03T01:00", ROT),
            ("bob", "2026-12-03T01:00", "2026-12-05T00:00", ROT),
        ])
    );
}

// 4. Overrides.

#[test]
fn override_splits_a_shift() {
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice bob",
            "2026-12-01T09:00",
            ShiftLength::Weeks(1),
        )],
        &[("carol", utc("2026-12-02T04:00"), utc("2026-12-03T04:00"))],
    );
    assert_eq!(
        shifts(&s, utc("2026-12-01T00:00"), utc("2026-12-10T00:00")),
        table(&[
            ("alice", "2026-12-01T01:00", "2026-12-02T04:00", ROT),
            ("carol", "2026-12-02T04:00", "2026-12-03T04:00", OVR),
            ("alice", "2026-12-03T04:00", "2026-12-08T01:00", ROT),
            ("bob", "2026-12-08T01:00", "2026-12-10T00:00", ROT),
        ])
    );
    assert_eq!(
        on_call_at(&s, utc("2026-12-02T10:00")),
        now(Some("carol"), "2026-12-02T04:00", "2026-12-03T04:00")
    );
    assert_eq!(
        on_call_at(&s, utc("2026-12-05T10:00")),
        now(Some("alice"), "2026-12-03T04:00", "2026-12-08T01:00")
    );
    assert_eq!(
        handoffs(&s, utc("2026-12-01T00:00"), utc("2026-12-10T00:00")),
        handoff_table(&[
            ("alice", "2026-12-01T01:00"),
            ("carol", "2026-12-02T04:00"),
            ("alice", "2026-12-03T04:00"),
            ("bob", "2026-12-08T01:00"),
        ])
    );
}

#[test]
fn override_by_the_same_member_is_no_handoff() {
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice bob",
            "2026-12-01T09:00",
            ShiftLength::Weeks(1),
        )],
        &[
            ("alice", utc("2026-12-02T04:00"), utc("2026-12-03T04:00")),
            // bob comes in a day early and runs into his own shift.
            ("bob", utc("2026-12-07T00:00"), utc("2026-12-09T00:00")),
        ],
    );
    assert_eq!(
        shifts(&s, utc("2026-12-01T00:00"), utc("2026-12-10T00:00")),
        table(&[
            ("alice", "2026-12-01T01:00", "2026-12-02T04:00", ROT),
            ("alice", "2026-12-02T04:00", "2026-12-03T04:00", OVR),
            ("alice", "2026-12-03T04:00", "2026-12-07T00:00", ROT),
            ("bob", "2026-12-07T00:00", "2026-12-09T00:00", OVR),
            ("bob", "2026-12-09T00:00", "2026-12-10T00:00", ROT),
        ])
    );
    // on_call_at merges the same member across sources.
    assert_eq!(
        on_call_at(&s, utc("2026-12-02T10:00")),
        now(Some("alice"), "2026-12-01T01:00", "2026-12-07T00:00")
    );
    assert_eq!(
        on_call_at(&s, utc("2026-12-07T12:00")),
        now(Some("bob"), "2026-12-07T00:00", "2026-12-15T01:00")
    );
    assert_eq!(
        handoffs(&s, utc("2026-12-01T02:00"), utc("2026-12-12T00:00")),
        handoff_table(&[("bob", "2026-12-07T00:00")])
    );
}

#[test]
fn later_override_wins_and_overrides_fill_gaps() {
    let s = schedule(
        SHANGHAI,
        vec![rotation("alice", "2026-12-01T09:00", ShiftLength::Weeks(1))],
        &[
            ("dave", utc("2026-11-30T00:00"), utc("2026-11-30T06:00")),
            ("carol", utc("2026-12-02T00:00"), utc("2026-12-04T00:00")),
            ("erin", utc("2026-12-03T00:00"), utc("2026-12-03T12:00")),
        ],
    );
    assert_eq!(
        shifts(&s, utc("2026-11-29T00:00"), utc("2026-12-05T00:00")),
        table(&[
            ("dave", "2026-11-30T00:00", "2026-11-30T06:00", OVR),
            ("alice", "2026-12-01T01:00", "2026-12-02T00:00", ROT),
            ("carol", "2026-12-02T00:00", "2026-12-03T00:00", OVR),
            ("erin", "2026-12-03T00:00", "2026-12-03T12:00", OVR),
            ("carol", "2026-12-03T12:00", "2026-12-04T00:00", OVR),
            ("alice", "2026-12-04T00:00", "2026-12-05T00:00", ROT),
        ])
    );
    assert_eq!(
        on_call_at(&s, utc("2026-11-30T03:00")),
        now(Some("dave"), "2026-11-30T00:00", "2026-11-30T06:00")
    );
    assert_eq!(
        on_call_at(&s, utc("2026-11-30T08:00")),
        now(None, "2026-11-30T06:00", "2026-12-01T01:00")
    );
}

#[test]
fn long_override_is_seen_whole() {
    // A 31-day override on a 1-hour rotation: longer than the usual look-around.
    let start = utc("2026-12-01T00:00");
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice bob",
            "2026-11-01T00:00",
            ShiftLength::Hours(1),
        )],
        &[("carol", start, start + 31 * DAY)],
    );
    assert_eq!(
        on_call_at(&s, start + 30 * DAY),
        OnCallNow {
            members: vec!["carol".into()],
            from_ms: start,
            until_ms: start + 31 * DAY,
        }
    );
}

#[path = "oncall_timeline_dst_tests.rs"]
mod dst;
