//! Acceptance of on-call schedules (ARCHITECTURE.md §8) on moto and the DingTalk
//! sandbox, with a clock the tests move: an escalation layer pages whoever is on
//! call, handoff notices and "now on call" go out once each whatever the sweeps
//! and duplicate timers, the pre-flight check names an unassociated on-call member
//! and an uninstalled group (and is sent once a day), and bad input is refused.

use std::sync::Arc;

use integration_tests::{TestStack, alert_body};
use local_stack::sandbox::MessageTarget;
use serde_json::{Value, json};
use shared::clock::{Clock, FixedClock};
use shared::domain::job::Job;

const GROUP_A: &str = "cidScheduleA00000000001==";
const GROUP_B: &str = "cidScheduleB00000000002==";
/// Wednesday 2026-12-02 08:00 in Asia/Shanghai (00:00 UTC).
const WED_0800_CST: i64 = 1_796_169_600_000;

struct OnCall {
    stack: TestStack,
    clock: FixedClock,
    id: String,
}

impl OnCall {
    /// An integration with groups A and B, members alice, bob and carol (bound)
    /// and dave (never associated), at Wednesday 08:00 Shanghai time.
    async fn start() -> Self {
        let clock = FixedClock::at_ms(WED_0800_CST);
        let stack = TestStack::start_with_clock(Arc::new(clock.clone())).await;
        let id = stack.create_integration().await;
        stack.install_chat(&id, GROUP_A, "Payments on-call").await;
        stack.install_chat(&id, GROUP_B, "Payments L2").await;
        for (email, name, user) in [
            ("alice@example.com", "Alice", Some("alice0001")),
            ("bob@example.com", "Bob", Some("bob0002")),
            ("carol@example.com", "Carol", Some("carol0003")),
            ("dave@example.com", "Dave", None),
        ] {
            stack.add_member(&id, email, name, user).await;
        }
        Self { stack, clock, id }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let path = format!("/api/integrations/{}{path}", self.id);
        self.stack.admin(method, &path, body).await
    }

    async fn schedule(&self, body: Value) -> String {
        let (status, created) = self.call("POST", "/schedules", Some(body)).await;
        assert_eq!(status, 201, "{created}");
        created["id"].as_str().expect("id").to_string()
    }

    /// Moves the clock and runs the sweep (as EventBridge does each minute).
    async fn after(&self, secs: i64) {
        self.clock.advance_ms(secs * 1000);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let report = self.stack.notifier.sweep(deadline).await.expect("sweep");
        assert_eq!(report.failed, 0);
        assert_eq!(report.oncall.failed, 0);
    }

    /// Moves the clock and runs two sweeps at once (overlapping invocations).
    async fn after_twice(&self, secs: i64) {
        self.clock.advance_ms(secs * 1000);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let (a, b) = tokio::join!(
            Box::pin(self.stack.notifier.sweep(deadline)),
            Box::pin(self.stack.notifier.sweep(deadline))
        );
        assert_eq!(
            a.expect("sweep").oncall.failed + b.expect("sweep").oncall.failed,
            0
        );
    }

    /// The pre-flight reports group A (the default target) received.
    fn preflight_reports(&self) -> Vec<Value> {
        self.messages_to(MessageTarget::Group(GROUP_A.into()))
            .into_iter()
            .filter(|m| m["title"].as_str().unwrap_or("").starts_with("Pre-flight"))
            .collect()
    }

    fn messages_to(&self, target: MessageTarget) -> Vec<Value> {
        self.stack
            .sandbox
            .messages()
            .into_iter()
            .filter(|m| m.target == target)
            .map(|m| m.msg_param)
            .collect()
    }
}

#[tokio::test]
async fn a_layer_paging_a_schedule_notifies_whoever_is_on_call_when_it_fires() {
    let t = OnCall::start().await;
    // Weekly: bob this week (from Monday 2026-11-30 09:00), carol the next.
    let sid = paged_schedule(&t).await;
    let (status, now) = t
        .call("GET", &format!("/schedules/{sid}/oncall"), None)
        .await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["members"], json!(["bob@example.com"]));
    assert_eq!(now["from"], "2026-11-30T09:00:00+08:00");
    assert_eq!(now["until"], "2026-12-07T09:00:00+08:00");
    let (_, next_week) = t
        .call(
            "GET",
            &format!("/schedules/{sid}/oncall?at=2026-12-08T12:00:00%2B08:00"),
            None,
        )
        .await;
    assert_eq!(next_week["members"], json!(["carol@example.com"]));

    let body = alert_body(
        &t.id,
        "db-down",
        "firing",
        "2026-12-02T00:00:00Z",
        json!({}),
    );
    assert!(t.stack.deliver(&[("db-down", body)]).await.is_empty());
    assert!(
        t.messages_to(MessageTarget::User("bob0002".into()))
            .is_empty()
    );
    t.after(61).await;
    t.stack.run_ready_jobs().await;
    let to_bob = t.messages_to(MessageTarget::User("bob0002".into()));
    assert_eq!(
        to_bob.len(),
        1,
        "bob is on call when layer 1 fires: {to_bob:?}"
    );
    let detail = t.stack.incident_by_key(&t.id, "db-down").await;
    assert!(
        detail["assignees"]
            .as_array()
            .expect("assignees")
            .contains(&json!("bob@example.com")),
        "{detail}"
    );
    assert_eq!(detail["escalation"]["layer"], 1);
}

/// A schedule (bob this week, carol the next) paged by layer 1 of the route's policy.
async fn paged_schedule(t: &OnCall) -> String {
    let sid = t
        .schedule(
            json!({"name": "payments primary", "timezone": "Asia/Shanghai",
            "rotations": [{"members": ["bob@example.com", "carol@example.com"],
                           "start": "2026-11-30T09:00", "shift": {"weeks": 1}}]}),
        )
        .await;
    let (status, policy) = t
        .call("POST", "/escalation-policies", Some(json!({"name": "payments", "layers": [
            {"targets": {"chats": [GROUP_A], "members": ["alice@example.com"]}, "escalate_after_secs": 60},
            {"targets": {"chats": [GROUP_B], "schedules": [sid]}, "escalate_after_secs": 300}]})))
        .await;
    assert_eq!(status, 201, "{policy}");
    let (status, _) = t
        .call(
            "PUT",
            "/routes",
            Some(json!([{"name": "all", "matchers": ["service=payments"], "policy": "payments"}])),
        )
        .await;
    assert_eq!(status, 200);
    sid
}

#[tokio::test]
async fn an_override_takes_over_the_page_and_shows_in_the_shifts() {
    let t = OnCall::start().await;
    let sid = paged_schedule(&t).await;
    // Carol takes over for the day; the incident's layer 1 pages her, not bob.
    let (status, o) = t
        .call("POST", &format!("/schedules/{sid}/overrides"), Some(json!({
            "member": "carol@example.com", "start": "2026-12-02T08:00", "end": "2026-12-02T18:00"})))
        .await;
    assert_eq!(status, 201, "{o}");
    assert_eq!(o["start"], "2026-12-02T08:00:00+08:00");
    let body = alert_body(
        &t.id,
        "api-slow",
        "firing",
        "2026-12-02T00:02:00Z",
        json!({}),
    );
    assert!(t.stack.deliver(&[("api-slow", body)]).await.is_empty());
    t.after(61).await;
    t.stack.run_ready_jobs().await;
    assert_eq!(
        t.messages_to(MessageTarget::User("carol0003".into())).len(),
        1
    );
    let (_, shifts) = t
        .call(
            "GET",
            &format!("/schedules/{sid}/shifts?from=2026-12-02T00:00&to=2026-12-03T00:00"),
            None,
        )
        .await;
    let sources: Vec<(&str, &str)> = shifts
        .as_array()
        .expect("shifts")
        .iter()
        .map(|s| {
            (
                s["member"].as_str().unwrap_or(""),
                s["source"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![
            ("bob@example.com", "rotation"),
            ("carol@example.com", "override"),
            ("bob@example.com", "rotation")
        ]
    );
}

#[tokio::test]
async fn handoff_notices_and_announcements_go_out_once_each() {
    let t = OnCall::start().await;
    // Daily at 09:00: alice (since Tuesday 09:00), then bob from Wednesday 09:00.
    let sid = t
        .schedule(
            json!({"name": "payments daily", "timezone": "Asia/Shanghai",
            "rotations": [{"members": ["alice@example.com", "bob@example.com"],
                           "start": "2026-12-01T09:00", "shift": {"days": 1}}],
            "chat": GROUP_A, "handoff_notice_mins": 30}),
        )
        .await;
    t.after(60).await; // 08:01: nothing due yet
    assert!(
        t.messages_to(MessageTarget::User("bob0002".into()))
            .is_empty()
    );
    t.after_twice(30 * 60).await; // 08:31: bob's notice is due, two sweeps at once
    t.after_twice(60).await;
    let notices = t.messages_to(MessageTarget::User("bob0002".into()));
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("payments daily")
    );
    // A duplicate timer does nothing more.
    let job = Job::HandoffTimer {
        integration_id: t.id.clone(),
        schedule_id: sid.clone(),
        due_ms: t.clock.now_ms(),
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    t.stack
        .notifier
        .handle_message(&serde_json::to_string(&job).expect("json"), deadline)
        .await
        .expect("timer job");
    assert_eq!(
        t.messages_to(MessageTarget::User("bob0002".into())).len(),
        1
    );
    assert!(
        t.messages_to(MessageTarget::Group(GROUP_A.into()))
            .is_empty()
    );
    t.after(30 * 60).await; // 09:02: the handoff
    t.after(60).await;
    t.after(60).await;
    let announced = t.messages_to(MessageTarget::Group(GROUP_A.into()));
    assert_eq!(announced.len(), 1, "{announced:?}");
    assert!(announced[0]["title"].as_str().unwrap_or("").contains("Bob"));
    assert_eq!(
        t.messages_to(MessageTarget::User("bob0002".into())).len(),
        1
    );
    // Thursday: alice's notice and announcement, once each.
    t.after(24 * 3600).await;
    t.after(60).await;
    assert_eq!(
        t.messages_to(MessageTarget::User("alice0001".into())).len(),
        1
    );
    assert_eq!(t.messages_to(MessageTarget::Group(GROUP_A.into())).len(), 2);
    let (_, audit) = t.call("GET", "/audit", None).await;
    let handoffs = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter(|r| r["kind"] == "handoff")
        .count();
    assert_eq!(handoffs, 4, "{audit}");
}

#[tokio::test]
async fn preflight_names_an_unassociated_oncall_member_and_an_uninstalled_group() {
    let t = OnCall::start().await;
    // Weekdays 09:00–18:00 only: nights and the weekend are gaps. Dave is on call
    // next week and never associated his DingTalk account.
    let sid = t
        .schedule(json!({"name": "business hours", "timezone": "Asia/Shanghai",
            "rotations": [{"members": ["alice@example.com", "dave@example.com"],
                           "start": "2026-11-30T09:00", "shift": {"weeks": 1},
                           "restrict": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "18:00"}]}]}))
        .await;
    let (status, policy) = t
        .call(
            "POST",
            "/escalation-policies",
            Some(json!({"name": "payments", "layers": [
            {"targets": {"chats": [GROUP_B], "schedules": [sid]}, "escalate_after_secs": 60}]})),
        )
        .await;
    assert_eq!(status, 201, "{policy}");
    // Group B uninstalls the cool app.
    let event = local_stack::sandbox::events::cool_app_event(
        false,
        integration_tests::APP.corp_id,
        GROUP_B,
        integration_tests::COOL_APP,
        integration_tests::APP.client_id,
        "someone",
        t.clock.now_ms(),
    );
    let signed = t
        .stack
        .sign_for(&event, integration_tests::APP.client_id, t.clock.now_ms());
    let (status, _) = t.stack.post_event(&t.id, &signed).await;
    assert_eq!(status, 200);

    let (status, report) = t.call("GET", "/preflight?days=7", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["ok"], false);
    let problems = report["problems"].as_array().expect("problems");
    let find = |kind: &str| {
        problems
            .iter()
            .filter(|p| p["kind"] == kind)
            .collect::<Vec<_>>()
    };
    let unassociated = find("oncall_unassociated");
    assert_eq!(unassociated.len(), 1, "{report}");
    assert_eq!(unassociated[0]["member"], "dave@example.com");
    assert!(
        unassociated[0]["fix"]
            .as_str()
            .unwrap_or("")
            .contains("link code")
    );
    let uninstalled = find("chat_uninstalled");
    assert_eq!(uninstalled.len(), 1, "{report}");
    assert_eq!(uninstalled[0]["chat"], GROUP_B);
    assert!(
        !find("schedule_gap").is_empty(),
        "nights are gaps: {report}"
    );
    let (status, _) = t.call("GET", "/preflight?days=99", None).await;
    assert_eq!(status, 400);

    // Sent once a day to the default targets, at 09:00 local time.
    let (status, patched) = t
        .call(
            "PATCH",
            "",
            Some(json!({"default_targets": {"chats": [GROUP_A]}})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    t.after_twice(61 * 60).await; // 09:01, two sweeps at once
    t.after_twice(60).await;
    let reports = t.preflight_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0]["text"]
            .as_str()
            .unwrap_or("")
            .contains("dave@example.com")
    );
}

#[tokio::test]
async fn bad_schedule_bodies_are_refused_naming_the_field() {
    let t = OnCall::start().await;
    let base = || {
        json!({"name": "s", "timezone": "Asia/Shanghai",
            "rotations": [{"members": ["alice@example.com"], "start": "2026-12-01T09:00", "shift": {"days": 1}}]})
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = base();
                b["timezone"] = json!("Mars/Olympus");
                b
            },
            "timezone",
        ),
        (
            {
                let mut b = base();
                b["rotations"][0]["shift"] = json!({"hours": 0});
                b
            },
            "rotations[0].shift",
        ),
        (
            {
                let mut b = base();
                b["rotations"][0]["members"] = json!(["alice@example.com", "zoe@example.com"]);
                b
            },
            "rotations[0].members[1]",
        ),
        (
            {
                let mut b = base();
                b["rotations"][0]["start"] = json!("tomorrow");
                b
            },
            "rotations[0].start",
        ),
        (
            {
                let mut b = base();
                b["rotations"][0]["restrict"] = json!([
            {"days": ["mon"], "from": "09:00", "to": "18:00"}, {"days": ["mon"], "from": "17:00", "to": "20:00"}]);
                b
            },
            "rotations[0].restrict[1]",
        ),
        (
            {
                let mut b = base();
                b["rotations"][0]["restrict"] =
                    json!([{"days": ["mon"], "from": "09:00", "to": "09:00"}]);
                b
            },
            "rotations[0].restrict[0]",
        ),
        (
            {
                let mut b = base();
                b["chat"] = json!("cidNobody==");
                b
            },
            "chat",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = t.call("POST", "/schedules", Some(body)).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
}

#[tokio::test]
async fn bad_overrides_ranges_and_layers_are_refused_and_used_members_cannot_be_deleted() {
    let t = OnCall::start().await;
    let sid = t
        .schedule(json!({"name": "s", "timezone": "Asia/Shanghai",
            "rotations": [{"members": ["alice@example.com"], "start": "2026-12-01T09:00", "shift": {"days": 1}}]}))
        .await;
    let (status, answer) = t
        .call(
            "POST",
            &format!("/schedules/{sid}/overrides"),
            Some(json!({
            "member": "bob@example.com", "start": "2026-12-03T10:00", "end": "2026-12-03T09:00"})),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (400, json!("end")),
        "{answer}"
    );
    let (status, answer) = t
        .call(
            "GET",
            &format!("/schedules/{sid}/shifts?from=2026-12-03T00:00&to=2026-12-01T00:00"),
            None,
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (400, json!("to"))
    );
    let (status, answer) = t
        .call(
            "POST",
            "/escalation-policies",
            Some(json!({"name": "p", "layers": [
            {"targets": {"schedules": ["sch_nope"]}, "escalate_after_secs": 60}]})),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "layers[0].targets.schedules");
    let (status, _) = t
        .call(
            "POST",
            "/escalation-policies",
            Some(json!({"name": "p", "layers": [
            {"targets": {"schedules": [sid]}, "escalate_after_secs": 60}]})),
        )
        .await;
    assert_eq!(status, 201);

    let (status, answer) = t.call("DELETE", "/members/alice@example.com", None).await;
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["error"]["code"], "in_use");
    assert_eq!(
        answer["error"]["used_in"],
        json!(["schedule \"s\" rotations[0]"])
    );
    let (status, answer) = t.call("DELETE", &format!("/schedules/{sid}"), None).await;
    assert_eq!(status, 409, "{answer}");
    let (status, _) = t.call("DELETE", "/members/dave@example.com", None).await;
    assert_eq!(status, 200);
    let (status, _) = t
        .call(
            "GET",
            &format!("/schedules/{sid}/oncall?at=yesterday"),
            None,
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_h5_app_shows_who_is_on_call_and_my_next_shifts() {
    let t = OnCall::start().await;
    t.schedule(
        json!({"name": "payments daily", "timezone": "Asia/Shanghai",
        "rotations": [{"members": ["alice@example.com", "bob@example.com"],
                       "start": "2026-12-01T09:00", "shift": {"days": 1}}],
        "chat": GROUP_A}),
    )
    .await;
    t.schedule(json!({"name": "db weekly", "timezone": "Asia/Shanghai",
        "rotations": [{"members": ["carol@example.com"], "start": "2026-11-30T09:00", "shift": {"weeks": 1}}]}))
        .await;
    let code = t.stack.sandbox.issue_auth_code("bob0002");
    let app = |method: &str, path: &str, token: Option<&str>, body: Option<Value>| {
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(token) = token {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        let path = format!("/dingtalk/{}/app/api{path}", t.id);
        let request = integration_tests::request(
            method,
            &path,
            &headers,
            body.map(|b| b.to_string().into_bytes()),
        );
        async { integration_tests::read(t.stack.h5.handle(request).await) }
    };
    let (status, login) = app("POST", "/login", None, Some(json!({"code": code}))).await;
    assert_eq!(status, 200, "{login}");
    let token = login["session"].as_str().expect("session").to_string();
    let (status, board) = app("GET", "/oncall", Some(&token), None).await;
    assert_eq!(status, 200, "{board}");
    let schedules = board["schedules"].as_array().expect("schedules");
    assert_eq!(schedules.len(), 2);
    let daily = schedules
        .iter()
        .find(|s| s["name"] == "payments daily")
        .expect("daily");
    assert_eq!(daily["now"][0]["name"], "Alice");
    assert_eq!(daily["until"], "2026-12-02T09:00:00+08:00");
    assert_eq!(daily["next"]["name"], "Bob");
    assert_eq!(daily["chat"], "Payments on-call");
    // Bob's next shifts: every other day from Wednesday 09:00, for 14 days.
    let mine = board["my_shifts"].as_array().expect("shifts");
    assert_eq!(mine.len(), 7, "{board}");
    assert_eq!(mine[0]["start"], "2026-12-02T09:00:00+08:00");
    assert_eq!(mine[0]["end"], "2026-12-03T09:00:00+08:00");
    // Opened from the group: that group's schedules only.
    let (_, group) = app(
        "GET",
        &format!("/oncall?cid={}", GROUP_A.replace('=', "%3D")),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(
        group["schedules"].as_array().map(Vec::len),
        Some(1),
        "{group}"
    );
    let (status, _) = app("GET", "/oncall", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_refused_preflight_report_is_sent_once_by_a_later_sweep() {
    let t = OnCall::start().await;
    // Dave, on call and never associated, is a problem to report.
    let sid = t
        .schedule(json!({"name": "dave's week", "timezone": "Asia/Shanghai",
            "rotations": [{"members": ["dave@example.com"], "start": "2026-11-30T09:00", "shift": {"weeks": 1}}]}))
        .await;
    let layers = json!([{"targets": {"schedules": [sid]}, "escalate_after_secs": 60}]);
    let (status, _) = t
        .call(
            "POST",
            "/escalation-policies",
            Some(json!({"name": "payments", "layers": layers})),
        )
        .await;
    assert_eq!(status, 201);
    let defaults = json!({"default_targets": {"chats": [GROUP_A]}});
    assert_eq!(t.call("PATCH", "", Some(defaults)).await.0, 200);
    let reports = || t.preflight_reports().len();

    // At 09:01 DingTalk is busy: the report stays owed, claimed for five minutes.
    t.stack.sandbox.inject(local_stack::sandbox::Fault {
        path: "/v1.0/robot/groupMessages/send".into(),
        status: 503,
        body: json!({"code": "ServiceUnavailable", "message": "busy"}),
    });
    t.clock.advance_ms(61 * 60 * 1000);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let first = t.stack.notifier.sweep(deadline).await.expect("sweep");
    assert_eq!(first.oncall.failed, 1, "{first:?}");
    assert_eq!(reports(), 0);
    t.after_twice(60).await; // still claimed: nobody sends it
    assert_eq!(reports(), 0);
    t.after_twice(5 * 60).await; // the claim lapsed: one of two sweeps sends it
    t.after_twice(60).await;
    assert_eq!(reports(), 1);
}
