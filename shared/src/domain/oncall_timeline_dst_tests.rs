//! Table tests of the on-call timeline, continued: DST in America/New_York and
//! Asia/Shanghai, handoffs, bounds and odd input.

use super::*;

// 5. DST.

#[test]
fn new_york_daily_handoff_stays_at_nine_local() {
    let s = schedule(
        NEW_YORK,
        vec![rotation(
            "alice bob",
            "2026-03-06T09:00",
            ShiftLength::Days(1),
        )],
        &[],
    );
    // Spring forward on Sunday 2026-03-08: 14:00Z (EST) then 13:00Z (EDT).
    let spring = shifts(&s, utc("2026-03-06T14:00"), utc("2026-03-09T13:00"));
    assert_eq!(
        spring,
        table(&[
            ("alice", "2026-03-06T14:00", "2026-03-07T14:00", ROT),
            ("bob", "2026-03-07T14:00", "2026-03-08T13:00", ROT),
            ("alice", "2026-03-08T13:00", "2026-03-09T13:00", ROT),
        ])
    );
    let lengths: Vec<i64> = spring
        .iter()
        .map(|x| (x.end_ms - x.start_ms) / HOUR)
        .collect();
    assert_eq!(lengths, vec![24, 23, 24]);
    // Fall back on Sunday 2026-11-01: 13:00Z (EDT) then 14:00Z (EST).
    let fall = shifts(&s, utc("2026-10-30T00:00"), utc("2026-11-02T20:00"));
    assert_eq!(
        fall,
        table(&[
            ("bob", "2026-10-30T00:00", "2026-10-30T13:00", ROT),
            ("alice", "2026-10-30T13:00", "2026-10-31T13:00", ROT),
            ("bob", "2026-10-31T13:00", "2026-11-01T14:00", ROT),
            ("alice", "2026-11-01T14:00", "2026-11-02T14:00", ROT),
            ("bob", "2026-11-02T14:00", "2026-11-02T20:00", ROT),
        ])
    );
    assert_eq!(fall.get(2).map(|x| x.end_ms - x.start_ms), Some(25 * HOUR));
    for x in spring.iter().chain(fall.iter().skip(1)) {
        assert_eq!(clock(NEW_YORK, x.start_ms), "09:00");
    }
    assert_eq!(
        handoffs(&s, utc("2026-10-31T00:00"), utc("2026-11-02T00:00")),
        handoff_table(&[("bob", "2026-10-31T13:00"), ("alice", "2026-11-01T14:00")])
    );
}

#[test]
fn hours_rotation_drifts_across_dst() {
    let s = schedule(
        NEW_YORK,
        vec![rotation(
            "alice bob",
            "2026-03-07T09:00",
            ShiftLength::Hours(24),
        )],
        &[],
    );
    let got = shifts(&s, utc("2026-03-07T00:00"), utc("2026-03-10T00:00"));
    assert_eq!(
        got,
        table(&[
            ("alice", "2026-03-07T14:00", "2026-03-08T14:00", ROT),
            ("bob", "2026-03-08T14:00", "2026-03-09T14:00", ROT),
            ("alice", "2026-03-09T14:00", "2026-03-10T00:00", ROT),
        ])
    );
    let clocks: Vec<String> = got.iter().map(|x| clock(NEW_YORK, x.start_ms)).collect();
    assert_eq!(clocks, vec!["09:00", "10:00", "10:00"]);
}

#[test]
fn shanghai_has_no_dst() {
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice bob",
            "2026-01-01T09:00",
            ShiftLength::Days(1),
        )],
        &[],
    );
    for day in [
        "2026-01-15",
        "2026-03-08",
        "2026-07-15",
        "2026-11-01",
        "2026-12-31",
    ] {
        let got = on_call_at(&s, utc(&format!("{day}T05:00")));
        assert_eq!(got.from_ms, utc(&format!("{day}T01:00")), "{day}");
        assert_eq!(got.until_ms - got.from_ms, DAY, "{day}");
    }
}

#[test]
fn start_in_a_dst_gap_or_overlap() {
    // 02:30 does not exist on 2026-03-08 in New York: the first shift starts 03:30 EDT.
    let gap = schedule(
        NEW_YORK,
        vec![rotation(
            "alice bob",
            "2026-03-08T02:30",
            ShiftLength::Days(1),
        )],
        &[],
    );
    let first = on_call_at(&gap, utc("2026-03-08T07:30"));
    assert_eq!(
        first,
        now(Some("alice"), "2026-03-08T07:30", "2026-03-09T06:30")
    );
    assert_eq!(clock(NEW_YORK, first.from_ms), "03:30");
    assert_eq!(
        on_call_at(&gap, utc("2026-03-08T07:29")).until_ms,
        utc("2026-03-08T07:30")
    );
    assert!(on_call_at(&gap, utc("2026-03-08T07:29")).members.is_empty());
    // 01:30 happens twice on 2026-11-01: the earlier (EDT) one; that shift is 25 h.
    let twice = schedule(
        NEW_YORK,
        vec![rotation(
            "alice bob",
            "2026-11-01T01:30",
            ShiftLength::Days(1),
        )],
        &[],
    );
    assert_eq!(
        on_call_at(&twice, utc("2026-11-01T12:00")),
        now(Some("alice"), "2026-11-01T05:30", "2026-11-02T06:30")
    );
}

#[test]
fn restrict_windows_follow_local_time_across_dst() {
    let s = schedule(
        NEW_YORK,
        vec![restricted(
            rotation("alice", "2026-03-01T00:00", ShiftLength::Weeks(1)),
            &[("fri mon", "09:00", "17:00")],
        )],
        &[],
    );
    assert_eq!(
        shifts(&s, utc("2026-03-06T00:00"), utc("2026-03-10T00:00")),
        table(&[
            ("alice", "2026-03-06T14:00", "2026-03-06T22:00", ROT),
            ("alice", "2026-03-09T13:00", "2026-03-09T21:00", ROT),
        ])
    );
}

// 6. handoffs().

#[test]
fn handoffs_notice_only_changes() {
    // alice, alice, bob, alice, alice, bob… daily at 09:00 Shanghai (01:00Z).
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice alice bob",
            "2026-12-01T09:00",
            ShiftLength::Days(1),
        )],
        &[],
    );
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 5] = [
        (
            "2026-12-01T00:00",
            "2026-12-07T01:00",
            &[
                ("alice", "2026-12-01T01:00"),
                ("bob", "2026-12-03T01:00"),
                ("alice", "2026-12-04T01:00"),
                ("bob", "2026-12-06T01:00"),
                ("alice", "2026-12-07T01:00"),
            ],
        ),
        // after is exclusive, until inclusive.
        (
            "2026-12-03T01:00",
            "2026-12-04T01:00",
            &[("alice", "2026-12-04T01:00")],
        ),
        // alice merely continues across `after` and across 12-02.
        ("2026-12-01T05:00", "2026-12-03T00:59", &[]),
        (
            "2026-12-01T01:00",
            "2026-12-03T01:00",
            &[("bob", "2026-12-03T01:00")],
        ),
        ("2026-12-06T00:00", "2026-12-05T00:00", &[]),
    ];
    for (after, until, want) in cases {
        assert_eq!(
            handoffs(&s, utc(after), utc(until)),
            handoff_table(want),
            "{after}..{until}"
        );
    }
}

#[test]
fn handoffs_after_a_gap() {
    let s = schedule(
        SHANGHAI,
        vec![restricted(
            rotation("alice", "2026-11-30T00:00", ShiftLength::Weeks(1)),
            &[("mon tue", "09:00", "18:00")],
        )],
        &[],
    );
    assert_eq!(
        handoffs(&s, utc("2026-11-30T00:00"), utc("2026-12-08T00:00")),
        handoff_table(&[
            ("alice", "2026-11-30T01:00"),
            ("alice", "2026-12-01T01:00"),
            ("alice", "2026-12-07T01:00"),
        ])
    );
}

// Bounds and odd input.

#[test]
fn shifts_compute_at_most_93_days() {
    let s = schedule(
        SHANGHAI,
        vec![rotation(
            "alice bob",
            "2026-01-01T00:00",
            ShiftLength::Hours(1),
        )],
        &[],
    );
    let from = utc("2026-02-01T00:00");
    let got = shifts(&s, from, from + 400 * DAY);
    assert_eq!(got.len(), 93 * 24);
    assert_eq!(got.last().map(|x| x.end_ms), Some(from + 93 * DAY));
}

#[test]
fn on_call_at_agrees_with_shifts() {
    let s = schedule(
        NEW_YORK,
        vec![
            rotation("alice bob carol", "2026-02-20T09:00", ShiftLength::Days(2)),
            restricted(
                rotation("dave erin", "2026-03-02T08:00", ShiftLength::Hours(36)),
                &[("mon wed fri", "20:00", "02:00"), ("sun", "00:00", "24:00")],
            ),
        ],
        &[
            ("frank", utc("2026-03-05T03:00"), utc("2026-03-05T07:00")),
            ("alice", utc("2026-03-10T00:00"), utc("2026-03-11T00:00")),
        ],
    );
    let (from, to) = (utc("2026-02-15T00:00"), utc("2026-03-25T00:00"));
    let all = shifts(&s, from, to);
    for pair in all.windows(2) {
        if let [a, b] = pair {
            assert!(
                a.start_ms < a.end_ms && a.end_ms <= b.start_ms,
                "{a:?} {b:?}"
            );
        }
    }
    let mut at = utc("2026-02-25T00:00");
    while at < utc("2026-03-20T00:00") {
        let got = on_call_at(&s, at);
        let holder = all.iter().find(|x| x.start_ms <= at && at < x.end_ms);
        let want: Vec<String> = holder.map(|x| x.member.clone()).into_iter().collect();
        assert_eq!(got.members, want, "at {at}");
        assert!(got.from_ms <= at && at < got.until_ms, "at {at}: {got:?}");
        // The stretch's edges are where someone else (or nobody) takes over.
        if let Some(member) = got.members.first() {
            let same = |x: &&Shift| &x.member == member;
            assert!(
                !all.iter().filter(same).any(|x| x.end_ms == got.from_ms),
                "at {at}"
            );
            assert!(
                !all.iter().filter(same).any(|x| x.start_ms == got.until_ms),
                "at {at}"
            );
        }
        at += 37 * MIN;
    }
}

#[test]
fn odd_input_never_panics() {
    let mut rotations = vec![
        rotation("", "2026-12-01T09:00", ShiftLength::Days(1)),
        rotation("a", "not a time", ShiftLength::Days(1)),
        rotation("a b", "2026-12-01T09:00", ShiftLength::Hours(0)),
        rotation("a b", "2026-12-01T09:00", ShiftLength::Days(0)),
        rotation("a b", "2026-12-01T09:00", ShiftLength::Weeks(0)),
        rotation("a b", "1970-01-01T00:00", ShiftLength::Hours(u32::MAX)),
        rotation("a b", "2026-12-01T09:00", ShiftLength::Weeks(u32::MAX)),
        rotation("a b", "9999-12-31T23:59", ShiftLength::Hours(1)),
        rotation("a b", "0001-01-01T00:00", ShiftLength::Hours(1)),
        restricted(
            rotation("a b", "2026-12-01T09:00", ShiftLength::Days(1)),
            &[
                ("mon", "25:00", "09:00"),
                ("", "09:00", "10:00"),
                ("tue", "09:00", "09:00"),
            ],
        ),
    ];
    rotations.push(rotation("c", "2026-12-01T09:00", ShiftLength::Days(1)));
    if let Some(last) = rotations.last_mut() {
        last.restrict = Some(Vec::new());
    }
    let extremes = [
        i64::MIN,
        -LIMIT_MS - 1,
        -1,
        0,
        utc("2026-12-03T00:00"),
        LIMIT_MS + 1,
        i64::MAX,
    ];
    let overrides: Vec<(&str, i64, i64)> = vec![
        ("x", i64::MIN, i64::MAX),
        ("y", 10, 5),
        ("z", i64::MAX - 1, i64::MAX),
    ];
    for tz in ["Mars/Base", SHANGHAI, NEW_YORK] {
        for with_overrides in [false, true] {
            let list: &[(&str, i64, i64)] = if with_overrides { &overrides } else { &[] };
            let s = schedule(tz, rotations.clone(), list);
            for &a in &extremes {
                let got = on_call_at(&s, a);
                assert!(got.from_ms <= got.until_ms, "{tz} {a}: {got:?}");
                for &b in &extremes {
                    for x in shifts(&s, a, b) {
                        assert!(x.start_ms < x.end_ms, "{tz} {a} {b}: {x:?}");
                    }
                    let _ = handoffs(&s, a, b);
                }
            }
        }
    }
    let empty = schedule(SHANGHAI, Vec::new(), &[]);
    assert!(shifts(&empty, 0, DAY).is_empty());
    assert!(on_call_at(&empty, 0).members.is_empty());
}

#[test]
fn shift_source_is_lowercase_on_the_wire() {
    assert_eq!(serde_json::json!(OVR), serde_json::json!("override"));
    assert_eq!(serde_json::json!(ROT), serde_json::json!("rotation"));
}
