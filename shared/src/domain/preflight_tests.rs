//! Table tests of the pre-flight check, with no store.

use std::collections::HashSet;

use serde_json::json;

use super::*;
use crate::domain::escalation::PolicySpec;
use crate::domain::oncall_schedule::ScheduleSpec;

/// Wednesday 2026-12-02 08:00 in Asia/Shanghai.
const WED_0800: i64 = 1_796_169_600_000;
const DAY: i64 = 86_400_000;

fn schedule(id: &str, body: serde_json::Value) -> OnCallSchedule {
    let spec: ScheduleSpec = serde_json::from_value(body).expect("spec");
    OnCallSchedule::from_spec("int", id.into(), 1, spec, WED_0800)
}

fn policy(body: serde_json::Value) -> EscalationPolicy {
    let spec: PolicySpec = serde_json::from_value(body).expect("policy");
    EscalationPolicy::from_spec("pol".into(), 1, spec, "now")
}

fn member(email: &str, licensed: bool) -> Member {
    Member {
        email: email.into(),
        name: email.into(),
        licensed,
        created_at: String::new(),
        updated_at: String::new(),
    }
}

fn chat(cid: &str, status: ChatStatus, problem: Option<&str>) -> GroupChat {
    GroupChat {
        integration_id: "int".into(),
        open_conversation_id: cid.into(),
        title: Some(format!("group {cid}")),
        status,
        cool_app_code: None,
        robot_code: None,
        operator: None,
        installed_at: None,
        uninstalled_at: None,
        updated_at: String::new(),
        status_event_ms: 0,
        title_event_ms: 0,
        problem: problem.map(str::to_string),
    }
}

fn kinds(problems: &[Problem]) -> Vec<(ProblemKind, Option<String>)> {
    problems
        .iter()
        .map(|p| {
            (
                p.kind,
                p.member.clone().or(p.chat.clone()).or(p.schedule.clone()),
            )
        })
        .collect()
}

#[test]
fn a_healthy_setup_has_no_problems() {
    let schedules = [schedule(
        "s",
        json!({"name": "primary", "timezone": "Asia/Shanghai",
        "rotations": [{"members": ["a@x.io", "b@x.io"], "start": "2026-11-30T09:00", "shift": {"weeks": 1}}]}),
    )];
    let policies = [policy(json!({"name": "p", "layers": [
        {"targets": {"chats": ["cid1"], "schedules": ["s"]}, "escalate_after_secs": 60}]}))];
    let members = [member("a@x.io", true), member("b@x.io", true)];
    let associated: HashSet<String> = ["a@x.io".to_string(), "b@x.io".to_string()].into();
    let chats = [chat("cid1", ChatStatus::Installed, None)];
    let problems = find_problems(&PreflightInput {
        schedules: &schedules,
        policies: &policies,
        members: &members,
        associated: &associated,
        chats: &chats,
        default_chats: &[],
        from_ms: WED_0800,
        to_ms: WED_0800 + 7 * DAY,
    });
    assert!(problems.is_empty(), "{problems:?}");
}

#[test]
fn every_kind_of_problem_is_found_with_what_to_do() {
    let schedules = [schedule(
        "s",
        json!({"name": "hours", "timezone": "Asia/Shanghai",
        "rotations": [{"members": ["a@x.io", "nolink@x.io"], "start": "2026-11-30T09:00", "shift": {"weeks": 1},
                       "restrict": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "18:00"}]}]}),
    )];
    let policies = [policy(json!({"name": "p", "layers": [
        {"targets": {"chats": ["cid-gone", "cid-broken", "cid-unknown"], "members": ["nolicence@x.io"], "schedules": ["s"]},
         "escalate_after_secs": 60}]}))];
    let members = [
        member("a@x.io", true),
        member("nolink@x.io", false),
        member("nolicence@x.io", false),
    ];
    let associated: HashSet<String> = ["a@x.io".to_string(), "nolicence@x.io".to_string()].into();
    let chats = [
        chat("cid-gone", ChatStatus::Uninstalled, None),
        chat(
            "cid-broken",
            ChatStatus::Installed,
            Some("robot removed from the group"),
        ),
    ];
    let problems = find_problems(&PreflightInput {
        schedules: &schedules,
        policies: &policies,
        members: &members,
        associated: &associated,
        chats: &chats,
        default_chats: &[],
        from_ms: WED_0800,
        to_ms: WED_0800 + 7 * DAY,
    });
    let found = kinds(&problems);
    let expect = |kind: ProblemKind, what: &str| {
        assert!(
            found.contains(&(kind, Some(what.to_string()))),
            "{kind:?} {what} missing from {found:?}"
        );
    };
    expect(ProblemKind::ScheduleGap, "s");
    expect(ProblemKind::OncallUnassociated, "nolink@x.io");
    expect(ProblemKind::MemberUnlicensed, "nolicence@x.io");
    expect(ProblemKind::MemberUnlicensed, "nolink@x.io");
    expect(ProblemKind::ChatUninstalled, "cid-gone");
    expect(ProblemKind::ChatProblem, "cid-broken");
    expect(ProblemKind::MissingTarget, "cid-unknown");
    assert!(problems.iter().all(|p| !p.fix.is_empty()));
    // Gaps: from now (08:00) to 09:00, then Wednesday 18:00 to Thursday 09:00.
    let gaps: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.kind == ProblemKind::ScheduleGap)
        .collect();
    assert_eq!(gaps[0].from.as_deref(), Some("2026-12-02T08:00:00+08:00"));
    assert_eq!(gaps[0].until.as_deref(), Some("2026-12-02T09:00:00+08:00"));
    let gap = gaps[1];
    assert_eq!(gap.from.as_deref(), Some("2026-12-02T18:00:00+08:00"));
    assert_eq!(gap.until.as_deref(), Some("2026-12-03T09:00:00+08:00"));
    assert_eq!(gap.used_in, vec!["escalation policy \"p\" layers[0]"]);
}

#[test]
fn the_daily_report_goes_out_at_nine_local_time() {
    // 08:00 Shanghai → 09:00 the same day; 09:00 exactly → the next day.
    assert_eq!(
        next_report_ms("Asia/Shanghai", WED_0800),
        WED_0800 + 3_600_000
    );
    assert_eq!(
        next_report_ms("Asia/Shanghai", WED_0800 + 3_600_000),
        WED_0800 + 3_600_000 + DAY
    );
    assert_eq!(local_day("Asia/Shanghai", WED_0800), "2026-12-02");
    assert_eq!(local_day("America/New_York", WED_0800), "2026-12-01");
}
