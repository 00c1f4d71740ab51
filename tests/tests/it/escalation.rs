//! Acceptance of escalation (ARCHITECTURE.md §9) on moto and the DingTalk sandbox,
//! with a clock the tests move: layers and repeats notify exactly as configured,
//! acknowledge stops it and recalls the DING, the ack timeout re-triggers, snooze
//! pauses and resumes, `only_unread` picks the unread, duplicate and late timers do
//! nothing, the sweep fires what a lost timer message would have, and Escalate and
//! Reassign work from a signed card click.

use std::sync::Arc;

use integration_tests::{TestStack, alert_body, read, record_of, request};
use local_stack::sandbox::MessageTarget;
use serde_json::{Value, json};
use shared::clock::{Clock, FixedClock};
use shared::domain::job::Job;
use shared::infra::crypto::card_callback_signature;
use shared::services::incident_actions::Action;

const GROUP_A: &str = "cidEscalationA0000000001==";
const GROUP_B: &str = "cidEscalationB0000000002==";

struct Escalation {
    stack: TestStack,
    clock: FixedClock,
    id: String,
}

impl Escalation {
    /// An integration (robot messages, or cards with `cards`) with groups A and B
    /// and members alice (layer 0), bob (layer 1) and carol, all bound.
    async fn start(cards: bool) -> Self {
        // On a whole second: the governor starts no call in a second's last 100 ms.
        let clock = FixedClock::at_ms(integration_tests::now_ms() / 1000 * 1000);
        let stack = TestStack::start_with_clock(Arc::new(clock.clone())).await;
        let mut payload = stack.create_payload();
        if cards {
            payload["card_template_id"] = json!("tpl-incident.schema");
        }
        let (status, created) = stack
            .admin("POST", "/api/integrations", Some(payload))
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        if cards {
            let (status, verified) = stack
                .admin("POST", &format!("/api/integrations/{id}/verify"), None)
                .await;
            assert_eq!(status, 200, "{verified}");
        }
        stack.install_chat(&id, GROUP_A, "Payments L1").await;
        stack.install_chat(&id, GROUP_B, "Payments L2").await;
        for (email, name, user) in [
            ("alice@example.com", "Alice", "alice0001"),
            ("bob@example.com", "Bob", "bob0002"),
            ("carol@example.com", "Carol", "carol0003"),
        ] {
            stack.add_member(&id, email, name, Some(user)).await;
        }
        Self { stack, clock, id }
    }

    async fn policy(&self, body: Value) -> Value {
        let (status, policy) = self
            .stack
            .admin(
                "POST",
                &format!("/api/integrations/{}/escalation-policies", self.id),
                Some(body),
            )
            .await;
        assert_eq!(status, 201, "{policy}");
        let (status, routes) = self
            .stack
            .admin(
                "PUT",
                &format!("/api/integrations/{}/routes", self.id),
                Some(json!([{"name": "payments", "matchers": ["service=payments"], "policy": policy["name"]}])),
            )
            .await;
        assert_eq!(status, 200, "{routes}");
        policy
    }

    /// The standard two-layer policy with one repeat from layer 1 and a phone DING.
    async fn two_layers(&self) -> Value {
        self.policy(json!({"name": "payments", "layers": [
            {"targets": {"chats": [GROUP_A], "members": ["alice@example.com"]}, "escalate_after_secs": 60},
            {"targets": {"chats": [GROUP_B], "members": ["bob@example.com"]}, "escalate_after_secs": 120,
             "ding": {"remind_type": "call", "severities": ["critical"], "after_secs": 30}}],
            "repeat": {"times": 1, "from_layer": 1}, "ack_timeout_secs": 600}))
            .await
    }

    async fn fire_alert(&self, key: &str) -> Value {
        let body = alert_body(&self.id, key, "firing", "2026-11-24T01:00:00Z", json!({}));
        assert!(self.stack.deliver(&[(key, body)]).await.is_empty());
        self.stack.incident_by_key(&self.id, key).await
    }

    /// Moves the clock and runs the sweep (as EventBridge does each minute).
    async fn after(&self, secs: i64) {
        self.clock.advance_ms(secs * 1000);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let report = self.stack.notifier.sweep(deadline).await.expect("sweep");
        assert_eq!(report.failed, 0);
    }

    fn messages_to(&self, target: &MessageTarget) -> usize {
        self.stack
            .sandbox
            .messages()
            .iter()
            .filter(|m| m.target == *target)
            .count()
    }

    fn counts(&self) -> [usize; 4] {
        [
            self.messages_to(&MessageTarget::Group(GROUP_A.into())),
            self.messages_to(&MessageTarget::User("alice0001".into())),
            self.messages_to(&MessageTarget::Group(GROUP_B.into())),
            self.messages_to(&MessageTarget::User("bob0002".into())),
        ]
    }

    async fn member(&self, email: &str) -> shared::domain::member::Member {
        self.stack
            .services
            .store
            .get_member(&self.id, email)
            .await
            .expect("read")
            .expect("member")
    }

    async fn act(&self, incident: &Value, email: &str, action: Action) {
        let member = self.member(email).await;
        self.stack
            .services
            .incident_actions()
            .apply(
                &self.id,
                incident["id"].as_str().expect("id"),
                &member,
                action,
                None,
            )
            .await
            .expect("action applies");
        self.stack.run_ready_jobs().await;
    }

    async fn detail(&self, key: &str) -> Value {
        self.stack.incident_by_key(&self.id, key).await
    }
}

fn records(detail: &Value, kind: &str) -> usize {
    detail["records"]
        .as_array()
        .map_or(0, |r| r.iter().filter(|r| r["kind"] == kind).count())
}

#[tokio::test]
async fn a_two_layer_policy_with_a_repeat_escalates_exactly_as_configured() {
    let esc = Escalation::start(false).await;
    let policy = esc.two_layers().await;
    let opened = esc.fire_alert("pay-1").await;
    assert_eq!(opened["escalation"]["policy_id"], policy["id"]);
    assert_eq!(opened["escalation"]["layer"], 0);
    assert_eq!(opened["escalation"]["state"], "waiting");
    assert_eq!(opened["assignees"], json!(["alice@example.com"]));
    assert_eq!(esc.counts(), [1, 1, 0, 0], "layer 0: group A and Alice");

    esc.after(59).await;
    assert_eq!(esc.counts(), [1, 1, 0, 0], "not yet due");
    esc.after(1).await;
    assert_eq!(esc.counts(), [1, 1, 1, 1], "layer 1: group B and Bob");
    let detail = esc.detail("pay-1").await;
    assert_eq!(detail["escalation"]["layer"], 1);
    assert_eq!(detail["assignees"], json!(["bob@example.com"]));
    assert!(
        record_of(&detail, "escalated")["detail"]
            .as_str()
            .expect("detail")
            .contains("layer 2 of 2")
    );

    esc.after(30).await;
    let dings = esc.stack.sandbox.dings();
    assert_eq!(dings.len(), 1, "the phone DING 30 s into layer 1");
    assert_eq!(dings[0].remind, 3);
    assert_eq!(dings[0].receivers, vec!["bob0002"]);

    esc.after(90).await;
    assert_eq!(esc.counts(), [1, 1, 2, 2], "the repeat from layer 1");
    esc.after(30).await;
    assert_eq!(esc.stack.sandbox.dings().len(), 2);
    esc.after(120).await;
    esc.after(3600).await;
    assert_eq!(esc.counts(), [1, 1, 2, 2], "nothing after the last repeat");
    assert_eq!(esc.stack.sandbox.dings().len(), 2);
    let detail = esc.detail("pay-1").await;
    assert_eq!(
        records(&detail, "escalated"),
        3,
        "two escalations and the end"
    );
    assert_eq!(records(&detail, "ding_sent"), 2);
    assert_eq!(detail["escalation"]["state"], "done");
    assert_eq!(detail["escalation"]["loop"], 1);
}

#[tokio::test]
async fn acknowledge_stops_it_recalls_the_ding_and_the_ack_timeout_retriggers() {
    let esc = Escalation::start(false).await;
    esc.two_layers().await;
    let incident = esc.fire_alert("pay-2").await;
    esc.after(60).await;
    esc.after(30).await;
    assert_eq!(esc.stack.sandbox.dings().len(), 1);

    esc.act(&incident, "bob@example.com", Action::Acknowledge)
        .await;
    let dings = esc.stack.sandbox.dings();
    assert!(dings[0].recalled, "the DING is recalled on acknowledge");
    let detail = esc.detail("pay-2").await;
    assert_eq!(records(&detail, "ding_recalled"), 1);
    assert_eq!(detail["escalation"]["next_step"], "ack_timeout");

    esc.after(300).await;
    assert_eq!(
        esc.counts(),
        [1, 1, 1, 1],
        "acknowledged: no more escalation"
    );
    esc.after(300).await;
    let detail = esc.detail("pay-2").await;
    assert_eq!(detail["status"], "triggered", "the ack timed out");
    assert_eq!(records(&detail, "ack_timeout"), 1);
    assert_eq!(
        detail["escalation"]["layer"], 1,
        "resumes at the layer reached"
    );
    assert_eq!(esc.counts(), [1, 1, 2, 2], "layer 1 notified again");
}

#[tokio::test]
async fn snooze_pauses_escalation_and_its_end_notifies_again() {
    let esc = Escalation::start(false).await;
    esc.two_layers().await;
    let incident = esc.fire_alert("pay-3").await;
    esc.act(
        &incident,
        "alice@example.com",
        Action::Snooze(std::time::Duration::from_secs(1800)),
    )
    .await;
    esc.after(120).await;
    assert_eq!(esc.counts(), [1, 1, 0, 0], "snoozed: no escalation");
    esc.after(1680).await;
    let detail = esc.detail("pay-3").await;
    assert_eq!(records(&detail, "snooze_ended"), 1);
    assert_eq!(detail["snoozed_until"], Value::Null);
    assert_eq!(esc.counts(), [2, 2, 0, 0], "layer 0 notified again");
    esc.after(60).await;
    assert_eq!(esc.counts(), [2, 2, 1, 1], "and escalation resumed");
}

#[tokio::test]
async fn only_unread_dings_those_who_have_not_read_their_message() {
    let esc = Escalation::start(false).await;
    esc.policy(json!({"name": "read-aware", "layers": [
        {"targets": {"members": ["alice@example.com", "bob@example.com"]}, "escalate_after_secs": 300,
         "ding": {"remind_type": "app", "only_unread": true, "after_secs": 60}}]}))
        .await;
    esc.fire_alert("pay-4").await;
    let to_alice = esc
        .stack
        .sandbox
        .messages()
        .into_iter()
        .find(|m| m.target == MessageTarget::User("alice0001".into()))
        .expect("Alice's message");
    esc.stack
        .sandbox
        .mark_read(&to_alice.process_query_key, "alice0001");
    esc.after(60).await;
    let dings = esc.stack.sandbox.dings();
    assert_eq!(dings.len(), 1);
    assert_eq!(dings[0].receivers, vec!["bob0002"], "Alice read hers");
    assert_eq!(dings[0].remind, 1);
}

#[tokio::test]
async fn duplicate_and_late_timers_do_nothing_and_the_sweep_recovers_a_lost_one() {
    let esc = Escalation::start(false).await;
    esc.two_layers().await;
    let incident = esc.fire_alert("pay-5").await;
    let id = incident["id"].as_str().expect("id").to_string();
    let stored = esc
        .stack
        .services
        .store
        .get_incident(&id)
        .await
        .expect("read")
        .expect("incident");
    let state = stored.escalation.expect("escalation");
    let timer = |epoch: u64| {
        serde_json::to_string(&Job::EscalationTimer {
            integration_id: esc.id.clone(),
            incident_id: id.clone(),
            epoch,
            due_ms: state.next.expect("due").at_ms,
        })
        .expect("json")
    };
    esc.clock.advance_ms(60_000);
    let deliver =
        |body: String| async { assert!(esc.stack.deliver(&[("t", body)]).await.is_empty()) };
    deliver(timer(state.epoch)).await;
    assert_eq!(esc.counts(), [1, 1, 1, 1], "the timer escalated");
    deliver(timer(state.epoch)).await;
    deliver(timer(state.epoch - 1)).await;
    esc.after(0).await;
    assert_eq!(
        esc.counts(),
        [1, 1, 1, 1],
        "a duplicate, an old timer and the sweep: nothing"
    );
    deliver(
        serde_json::to_string(&Job::EscalationTimer {
            integration_id: esc.id.clone(),
            incident_id: "unknown".into(),
            epoch: 1,
            due_ms: 0,
        })
        .expect("json"),
    )
    .await;

    // The layer-1 DING's timer message is never delivered: the sweep fires it.
    esc.after(30).await;
    assert_eq!(esc.stack.sandbox.dings().len(), 1);
    let detail = esc.detail("pay-5").await;
    assert_eq!(records(&detail, "escalated"), 1);

    // A timer and the sweep racing for the next step (the repeat): one fires it.
    let stored = esc
        .stack
        .services
        .store
        .get_incident(&id)
        .await
        .expect("read")
        .expect("incident");
    let state = stored.escalation.expect("escalation");
    let due = state.next.expect("due");
    esc.clock.set_ms(due.at_ms);
    let body = serde_json::to_string(&Job::EscalationTimer {
        integration_id: esc.id.clone(),
        incident_id: id.clone(),
        epoch: state.epoch,
        due_ms: due.at_ms,
    })
    .expect("json");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let records_in = [("race", body)];
    let (timer, swept) = tokio::join!(
        esc.stack.deliver(&records_in),
        esc.stack.notifier.sweep(deadline)
    );
    assert!(timer.is_empty());
    assert_eq!(swept.expect("sweep").failed, 0);
    let detail = esc.detail("pay-5").await;
    assert_eq!(records(&detail, "escalated"), 2, "the repeat fired once");
    assert_eq!(esc.counts(), [1, 1, 2, 2], "layer 1 notified once more");
}

#[tokio::test]
async fn policies_and_routes_are_validated() {
    let esc = Escalation::start(false).await;
    let base = format!("/api/integrations/{}", esc.id);
    let bad = [
        (json!({"name": "x", "layers": []}), "layers"),
        (
            json!({"name": "x", "layers": [{"targets": {"chats": ["cidUnknown=="]}, "escalate_after_secs": 60}]}),
            "layers[0].targets.chats",
        ),
        (
            json!({"name": "x", "layers": [{"targets": {"members": ["zed@example.com"]}, "escalate_after_secs": 60}]}),
            "layers[0].targets.members",
        ),
        (
            json!({"name": "x", "layers": [{"targets": {"chats": [GROUP_A]}, "escalate_after_secs": 5}]}),
            "layers[0].escalate_after_secs",
        ),
        (
            json!({"name": "x", "layers": [{"targets": {"chats": [GROUP_A]}, "escalate_after_secs": 60}], "ack_timeout_secs": 10}),
            "ack_timeout_secs",
        ),
        (
            json!({"name": "x", "layers": [{"targets": {"members": ["bob@example.com"]}, "escalate_after_secs": 60,
                   "ding": {"remind_type": "fax"}}]}),
            "layers[0].ding.remind_type",
        ),
        (
            json!({"name": "x", "layers": [{"targets": {"chats": [GROUP_A]}}]}),
            "layers[0]",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = esc
            .stack
            .admin("POST", &format!("{base}/escalation-policies"), Some(body))
            .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
    }
    let (status, answer) = esc
        .stack
        .admin(
            "PUT",
            &format!("{base}/routes"),
            Some(json!([{"name": "r", "matchers": ["env=~(prod"], "policy": "payments"}])),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.to_string().contains("env=~(prod"), "{answer}");
    let (status, answer) = esc
        .stack
        .admin(
            "PUT",
            &format!("{base}/routes"),
            Some(json!([{"name": "r", "matchers": ["env=prod"], "policy": "nobody"}])),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = esc
        .stack
        .admin(
            "PUT",
            &format!("{base}/routes"),
            Some(json!([{"name": "r", "severity": ["critical"], "policy": "nobody"}])),
        )
        .await;
    assert_eq!(
        (status, answer["error"]["field"].clone()),
        (400, json!("routes[0]")),
        "{answer}"
    );
}

#[tokio::test]
async fn incidents_keep_the_policy_version_they_started_with() {
    let esc = Escalation::start(false).await;
    let base = format!("/api/integrations/{}", esc.id);
    let policy = esc.two_layers().await;
    let pid = policy["id"].as_str().expect("id");
    assert_eq!(policy["version"], 1);
    let incident = esc.fire_alert("pay-6").await;
    let mut changed = policy.clone();
    changed["layers"][0]["escalate_after_secs"] = json!(3600);
    for field in ["id", "version", "created_at", "updated_at"] {
        changed.as_object_mut().expect("object").remove(field);
    }
    let (status, updated) = esc
        .stack
        .admin(
            "PUT",
            &format!("{base}/escalation-policies/{pid}"),
            Some(changed),
        )
        .await;
    assert_eq!(
        (status, updated["version"].clone()),
        (200, json!(2)),
        "{updated}"
    );
    let (status, routes) = esc
        .stack
        .admin("PUT", &format!("{base}/routes"), Some(json!([])))
        .await;
    assert_eq!(status, 200, "{routes}");
    let (status, deleted) = esc
        .stack
        .admin("DELETE", &format!("{base}/escalation-policies/{pid}"), None)
        .await;
    assert_eq!(status, 200, "{deleted}");
    esc.after(60).await;
    let detail = esc.detail("pay-6").await;
    assert_eq!(detail["escalation"]["policy_version"], 1);
    assert_eq!(
        detail["escalation"]["layer"], 1,
        "finishes on its snapshot (60 s)"
    );
    assert_eq!(incident["escalation"]["policy_version"], 1);
}

/// Card-mode clicks: Escalate and Reassign from a signed card callback.
async fn click(esc: &Escalation, out_track_id: &str, user: &str, params: Value) -> (u16, Value) {
    let secret = esc.stack.sandbox.callback_routes()[&format!("dtinc-{}", esc.id)]
        .api_secret
        .clone();
    let content = json!({"cardPrivateData": {"actionIds": ["a"], "params": params}}).to_string();
    let body = json!({"type": "actionCallback", "outTrackId": out_track_id, "userId": user,
                      "content": content, "spaceType": "IM_GROUP", "userIdType": 1});
    let timestamp = esc.clock.now_ms().to_string();
    let headers = [
        ("content-type", "application/json".to_string()),
        ("x-ddpaas-signature-timestamp", timestamp.clone()),
        (
            "x-ddpaas-signature",
            card_callback_signature(&secret, &timestamp),
        ),
    ];
    let path = format!("/dingtalk/{}/cards", esc.id);
    read(
        esc.stack
            .callback
            .handle(request(
                "POST",
                &path,
                &headers,
                Some(body.to_string().into_bytes()),
            ))
            .await,
    )
}

#[tokio::test]
async fn escalate_and_reassign_from_a_signed_card_click() {
    let esc = Escalation::start(true).await;
    esc.two_layers().await;
    let incident = esc.fire_alert("pay-7").await;
    let id = incident["id"].as_str().expect("id");
    let card = esc
        .stack
        .sandbox
        .cards()
        .into_iter()
        .find(|c| c.spaces.iter().any(|s| s.ends_with(GROUP_A)))
        .expect("group A card");
    assert_eq!(card.card_data["show_escalate"], "true");
    assert!(
        card.card_data["escalation"]
            .as_str()
            .expect("text")
            .contains("Layer 1 of 2")
    );

    let (status, answer) = click(
        &esc,
        &card.out_track_id,
        "alice0001",
        json!({"action": "escalate", "incident": id}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    esc.stack.run_ready_jobs().await;
    let cards = esc.stack.sandbox.cards();
    let in_b: Vec<_> = cards
        .iter()
        .filter(|c| c.spaces.iter().any(|s| s.ends_with(GROUP_B)))
        .collect();
    assert_eq!(in_b.len(), 1, "a new card in layer 1's group");
    assert!(
        in_b[0].card_data["escalation"]
            .as_str()
            .expect("text")
            .contains("Layer 2 of 2")
    );
    let detail = esc.detail("pay-7").await;
    assert_eq!(detail["escalation"]["layer"], 1);
    assert!(
        record_of(&detail, "escalated")["actor"]
            .as_str()
            .expect("actor")
            .contains("Alice")
    );

    esc.clock.advance_ms(1_000);
    let (status, answer) = click(
        &esc,
        &card.out_track_id,
        "bob0002",
        json!({"action": "reassign", "member": "carol@example.com", "incident": id}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["cardData"]["cardParamMap"]["assignees"],
        "carol@example.com"
    );
    esc.stack.run_ready_jobs().await;
    let to_carol = esc
        .stack
        .sandbox
        .cards()
        .into_iter()
        .filter(|c| c.spaces.iter().any(|s| s.ends_with("IM_ROBOT.carol0003")))
        .count();
    assert_eq!(to_carol, 1, "Carol gets a card of her own");
    let detail = esc.detail("pay-7").await;
    assert_eq!(detail["assignees"], json!(["carol@example.com"]));
    assert_eq!(records(&detail, "reassigned"), 1);
    assert_eq!(
        esc.stack
            .sandbox
            .cards()
            .iter()
            .find(|c| c.spaces.iter().any(|s| s.ends_with("IM_ROBOT.alice0001")))
            .expect("Alice's first card")
            .card_data["assignees"],
        "carol@example.com",
        "earlier cards keep updating in place"
    );
}

#[tokio::test]
async fn without_phone_quota_the_ding_falls_back_in_app_and_a_lost_group_does_not_stop_the_layer() {
    let esc = Escalation::start(false).await;
    esc.two_layers().await;
    esc.stack.sandbox.set_ding_call_quota(false);
    esc.fire_alert("pay-8").await;
    // Layer 1's group loses the robot before the escalation reaches it.
    esc.stack.sandbox.set_cool_app(GROUP_B, None);
    esc.after(60).await;
    assert_eq!(
        esc.messages_to(&MessageTarget::User("bob0002".into())),
        1,
        "Bob still gets his message"
    );
    esc.after(30).await;
    let dings = esc.stack.sandbox.dings();
    assert_eq!(dings.len(), 1);
    assert_eq!(dings[0].remind, 1, "in-app instead of a phone call");
    let detail = esc.detail("pay-8").await;
    assert!(
        record_of(&detail, "ding_failed")["detail"]
            .as_str()
            .expect("detail")
            .contains("fell back to an in-app DING")
    );
    assert_eq!(records(&detail, "ding_sent"), 1);
    let failed = record_of(&detail, "failed");
    assert_eq!(failed["target"], "Payments L2", "{failed}");
}
