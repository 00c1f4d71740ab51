//! Issue #17 item 4, replay after association (ARCHITECTURE.md §11): a click by
//! someone not associated yet (a card button, or an H5 action link) is held for 15
//! minutes and applied under their member once they associate in the H5 app (link
//! code, or profile email at login), with a `replayed` record and the cards updated;
//! a held action that no longer applies is dropped with the reason, an expired one is
//! ignored, and each is used at most once.

use std::sync::Arc;

use integration_tests::{TestStack, alert_body, record_of};
use local_stack::sandbox::{CardInstance, MessageTarget, SandboxUser};
use serde_json::{Value, json};
use shared::clock::FixedClock;

const GROUP_A: &str = "cidReplayA00000000000001==";
const GROUP_B: &str = "cidReplayB00000000000002==";

struct Replay {
    stack: TestStack,
    id: String,
}

impl Replay {
    async fn start() -> Self {
        Self::on(TestStack::start().await).await
    }

    /// An integration with card buttons in two groups; Alice is bound, Robert is a
    /// member Bob (whose profile email is another) associates with by a link code.
    async fn on(stack: TestStack) -> Self {
        let id = stack.create_card_integration(json!({})).await;
        stack.install_chat(&id, GROUP_A, "Group A").await;
        stack.install_chat(&id, GROUP_B, "Group B").await;
        stack
            .add_member(&id, "alice@example.com", "Alice", Some("alice0001"))
            .await;
        stack
            .add_member(&id, "robert@corp.example", "Robert", None)
            .await;
        stack.sandbox.add_user(SandboxUser {
            user_id: "bob0002".into(),
            union_id: "union-bob".into(),
            name: "Bob 李".into(),
            email: Some("bob@gmail.example".into()),
            mobile: None,
        });
        Self { stack, id }
    }

    fn now_ms(&self) -> i64 {
        self.stack.services.clock.now_ms()
    }

    /// Raises `key` to both groups; returns its incident and the group A card.
    async fn alert(&self, key: &str) -> (String, String) {
        let body = alert_body(
            &self.id,
            key,
            "firing",
            "2026-11-24T01:00:00Z",
            json!({"chats": [GROUP_A, GROUP_B]}),
        );
        assert!(self.stack.deliver(&[(key, body)]).await.is_empty());
        let incident = self.stack.incident_by_key(&self.id, key).await["id"]
            .as_str()
            .expect("id")
            .to_string();
        let card = self.card_of(&incident, GROUP_A).out_track_id;
        (incident, card)
    }

    fn card_of(&self, incident: &str, space: &str) -> CardInstance {
        self.stack
            .sandbox
            .cards()
            .into_iter()
            .find(|c| {
                c.out_track_id.starts_with(&format!("{incident}-"))
                    && c.spaces.iter().any(|s| s.ends_with(space))
            })
            .expect("card")
    }

    /// A signed click of `action` (with `duration`) on card `out_track_id` by `user`.
    async fn click(
        &self,
        out_track_id: &str,
        user: &str,
        action: &str,
        duration: Option<&str>,
    ) -> (u16, Value) {
        let mut params = json!({"action": action});
        if let Some(duration) = duration {
            params["duration"] = json!(duration);
        }
        self.stack
            .click_card(&self.id, (out_track_id, user), params, self.now_ms())
            .await
    }

    /// Calls the H5 app's API.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.stack
            .h5_call(&self.id, (method, path), token, body)
            .await
    }

    /// Logs `user` in; returns the session and the login answer.
    async fn login(&self, user: &str) -> (String, Value) {
        self.stack.h5_login(&self.id, user).await
    }

    /// Associates the session's person with `email` by a link code; returns the answer.
    async fn associate(&self, token: &str, email: &str) -> Value {
        let (status, body) = self
            .stack
            .admin(
                "POST",
                &format!("/api/integrations/{}/members/{email}/link-code", self.id),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, me) = self
            .call(
                "POST",
                "/associate",
                Some(token),
                Some(json!({"code": body["code"]})),
            )
            .await;
        assert_eq!(status, 200, "{me}");
        me
    }

    async fn detail(&self, incident: &str) -> Value {
        let (status, detail) = self
            .stack
            .admin("GET", &format!("/api/incidents/{incident}"), None)
            .await;
        assert_eq!(status, 200, "{detail}");
        detail
    }

    async fn held(&self, user: &str) -> Option<shared::store::HeldAction> {
        self.stack
            .services
            .store
            .held_action(&self.id, user)
            .await
            .expect("read held")
    }

    /// Records of `kind` in an incident detail.
    fn records<'a>(detail: &'a Value, kind: &str) -> Vec<&'a Value> {
        detail["records"]
            .as_array()
            .expect("records")
            .iter()
            .filter(|r| r["kind"] == kind)
            .collect()
    }
}

#[tokio::test]
async fn a_held_acknowledge_is_applied_once_the_clicker_associates() {
    let r = Replay::start().await;
    let (incident, card) = r.alert("replay-ack").await;

    let (status, answer) = r.click(&card, "bob0002", "ack", None).await;
    assert_eq!(status, 200, "{answer}");
    let notice = answer["userPrivateData"]["cardParamMap"]["notice"]
        .as_str()
        .expect("notice");
    assert!(
        notice.contains("not associated") && notice.contains("held for 15 minutes"),
        "{notice}"
    );
    assert_eq!(answer["cardData"]["cardParamMap"]["status"], "firing");
    let held = r.held("bob0002").await.expect("held");
    assert_eq!(
        (
            held.incident.as_str(),
            held.action.as_str(),
            held.source.as_str()
        ),
        (incident.as_str(), "ack", "card")
    );
    assert_eq!(
        held.expires_at,
        held.held_at_ms / 1000 + 900,
        "TTL 15 minutes"
    );

    // The 1:1 link prompt is still sent.
    r.stack.run_jobs().await;
    let prompts = r
        .stack
        .sandbox
        .messages()
        .into_iter()
        .filter(|m| m.target == MessageTarget::User("bob0002".into()))
        .count();
    assert_eq!(prompts, 1);

    // Unassociated, the page knows what is held.
    let (token, login) = r.login("bob0002").await;
    assert!(login["member"].is_null(), "{login}");
    assert_eq!(login["held"]["incident"], incident.as_str());
    assert_eq!(login["held"]["action"], "ack");
    assert!(login.get("replayed").is_none(), "{login}");

    let me = r.associate(&token, "robert@corp.example").await;
    assert_eq!(me["member"]["email"], "robert@corp.example");
    assert!(me.get("held").is_none(), "{me}");
    let replayed = &me["replayed"];
    assert_eq!(replayed["incident"], incident.as_str(), "{me}");
    assert_eq!(replayed["action"], "ack");
    assert_eq!(replayed["applied"], true);
    assert_eq!(replayed["title"], "replay-ack is failing");
    assert!(replayed.get("reason").is_none(), "{replayed}");
    assert!(r.held("bob0002").await.is_none(), "taken");

    let detail = r.detail(&incident).await;
    assert_eq!(detail["status"], "acknowledged");
    assert_eq!(detail["acked_by"], "Robert");
    let ack = record_of(&detail, "acknowledged");
    assert!(
        ack["actor"]
            .as_str()
            .is_some_and(|a| a.contains("robert@corp.example")),
        "{ack}"
    );
    let record = record_of(&detail, "replayed");
    let text = record["detail"].as_str().expect("detail");
    for part in ["Acknowledge", "on a card", "bob0002", "now applied"] {
        assert!(text.contains(part), "{part}: {text}");
    }
    assert!(
        record["actor"]
            .as_str()
            .is_some_and(|a| a.contains("robert@corp.example"))
    );

    // Every copy of the card is updated by the queued job.
    r.stack.run_jobs().await;
    for group in [GROUP_A, GROUP_B] {
        let card = r.card_of(&incident, group);
        assert_eq!(card.card_data["status"], "acknowledged", "{group}");
        assert_eq!(card.card_data["acked_by"], "Robert", "{group}");
    }
}

#[tokio::test]
async fn a_held_action_that_no_longer_applies_is_dropped_with_the_reason() {
    let r = Replay::start().await;
    let (incident, card) = r.alert("replay-resolved").await;

    // Bob's Resolve is held; Alice resolves the incident meanwhile.
    let (status, _) = r.click(&card, "bob0002", "resolve", None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, answer) = r.click(&card, "alice0001", "resolve", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["cardData"]["cardParamMap"]["status"], "resolved");

    let (token, _) = r.login("bob0002").await;
    let me = r.associate(&token, "robert@corp.example").await;
    let replayed = &me["replayed"];
    assert_eq!(replayed["applied"], false, "{me}");
    assert_eq!(replayed["action"], "resolve");
    assert_eq!(replayed["reason_code"], "resolved");
    assert_eq!(replayed["reason"], "the incident was resolved meanwhile");
    let detail = r.detail(&incident).await;
    assert_eq!(detail["resolved_by"], "Alice");
    assert_eq!(Replay::records(&detail, "resolved").len(), 1);
    let record = record_of(&detail, "replayed");
    assert!(
        record["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Resolve")
                && d.contains("dropped: the incident was resolved meanwhile")),
        "{record}"
    );

    // An unlicensed member's held Acknowledge is dropped too.
    r.stack.sandbox.add_user(SandboxUser {
        user_id: "dave0004".into(),
        union_id: "union-dave".into(),
        name: "Dave".into(),
        email: None,
        mobile: None,
    });
    let (status, body) = r
        .stack
        .admin(
            "POST",
            &format!("/api/integrations/{}/members", r.id),
            Some(json!({"email": "dora@corp.example", "name": "Dora", "licensed": false})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (other, card) = r.alert("replay-unlicensed").await;
    let (status, _) = r.click(&card, "dave0004", "ack", None).await;
    assert_eq!(status, 200);
    let (token, _) = r.login("dave0004").await;
    let me = r.associate(&token, "dora@corp.example").await;
    assert_eq!(me["replayed"]["applied"], false, "{me}");
    assert_eq!(me["replayed"]["reason_code"], "not_licensed");
    assert!(
        me["replayed"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no licence"))
    );
    let detail = r.detail(&other).await;
    assert_eq!(detail["status"], "triggered");
    assert!(Replay::records(&detail, "acknowledged").is_empty());
    assert_eq!(Replay::records(&detail, "replayed").len(), 1);
}

#[tokio::test]
async fn a_held_action_older_than_15_minutes_is_not_applied() {
    // A whole second: a frozen clock late in its second would hold every call back
    // (the governor keeps the end of each second free).
    let clock = FixedClock::at_ms(integration_tests::now_ms() / 1000 * 1000);
    let r = Replay::on(TestStack::start_with_clock(Arc::new(clock.clone())).await).await;
    let (incident, card) = r.alert("replay-expired").await;
    let (status, _) = r.click(&card, "bob0002", "ack", None).await;
    assert_eq!(status, 200);
    assert!(r.held("bob0002").await.is_some());

    clock.advance_ms(15 * 60 * 1000 + 1_000);
    let (token, login) = r.login("bob0002").await;
    assert!(login.get("held").is_none(), "expired: {login}");
    let me = r.associate(&token, "robert@corp.example").await;
    assert_eq!(me["member"]["email"], "robert@corp.example");
    assert!(me.get("replayed").is_none(), "{me}");
    assert!(r.held("bob0002").await.is_none(), "taken and ignored");
    let detail = r.detail(&incident).await;
    assert_eq!(detail["status"], "triggered");
    assert!(Replay::records(&detail, "replayed").is_empty());
    assert!(Replay::records(&detail, "acknowledged").is_empty());
}

#[tokio::test]
async fn an_action_link_opened_before_association_is_held_by_the_page() {
    let r = Replay::start().await;
    let (incident, _) = r.alert("replay-link").await;
    let (token, _) = r.login("bob0002").await;
    let hold = |body: Value| r.call("POST", "/held", Some(&token), Some(body));

    let (status, body) = r
        .call(
            "POST",
            "/held",
            None,
            Some(json!({"incident": incident, "action": "ack"})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    for (body, want) in [
        (json!({"incident": incident, "action": "dance"}), 400),
        (
            json!({"incident": incident, "action": "snooze", "duration": "7h"}),
            400,
        ),
        (json!({"incident": incident, "action": "reassign"}), 400),
        (json!({"incident": "", "action": "ack"}), 400),
        (json!({"incident": "nope", "action": "ack"}), 404),
        (json!({"incident": "x".repeat(5000), "action": "ack"}), 404),
    ] {
        let (status, answer) = hold(body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
    }
    assert!(r.held("bob0002").await.is_none(), "nothing held");

    let (status, held) =
        hold(json!({"incident": incident, "action": "snooze", "duration": "2h"})).await;
    assert_eq!(status, 201, "{held}");
    assert_eq!(
        (&held["incident"], &held["action"], &held["duration"]),
        (&json!(incident), &json!("snooze"), &json!("2h"))
    );
    assert!(held["until"].is_string());
    assert_eq!(r.held("bob0002").await.expect("held").source, "app");
    let (status, me) = r.call("GET", "/me", Some(&token), None).await;
    assert_eq!(status, 200);
    assert_eq!(me["held"]["action"], "snooze", "{me}");

    let me = r.associate(&token, "robert@corp.example").await;
    let replayed = &me["replayed"];
    assert_eq!(
        (
            &replayed["action"],
            &replayed["duration"],
            &replayed["applied"]
        ),
        (&json!("snooze"), &json!("2h"), &json!(true)),
        "{me}"
    );
    let detail = r.detail(&incident).await;
    assert!(detail["snoozed_until"].is_string(), "{detail}");
    assert_eq!(Replay::records(&detail, "snoozed").len(), 1);
    let record = record_of(&detail, "replayed");
    assert!(
        record["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Snooze 2h") && d.contains("in the app")),
        "{record}"
    );

    // Associated, nothing is held: the person acts directly.
    let (status, body) = hold(json!({"incident": incident, "action": "ack"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_associated"))
    );
}

#[tokio::test]
async fn a_held_action_is_applied_at_most_once() {
    let r = Replay::start().await;
    let (incident, card) = r.alert("replay-once").await;
    let store = &r.stack.services.store;

    // Of two takers at once, only one gets it.
    let (status, _) = r.click(&card, "bob0002", "ack", None).await;
    assert_eq!(status, 200);
    let (a, b) = tokio::join!(
        store.take_held_action(&r.id, "bob0002"),
        store.take_held_action(&r.id, "bob0002")
    );
    let taken = [a.expect("take"), b.expect("take")];
    assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1, "{taken:?}");

    // A later click holds it again (replacing nothing); associating applies it once.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, _) = r.click(&card, "bob0002", "ack", None).await;
    assert_eq!(status, 200);
    let (token, _) = r.login("bob0002").await;
    let me = r.associate(&token, "robert@corp.example").await;
    assert_eq!(me["replayed"]["applied"], true, "{me}");

    // Unlinked and associated again: nothing left to replay.
    let (status, _) = r.call("POST", "/unlink", Some(&token), None).await;
    assert_eq!(status, 200);
    let me = r.associate(&token, "robert@corp.example").await;
    assert!(me.get("replayed").is_none(), "{me}");
    let detail = r.detail(&incident).await;
    assert_eq!(Replay::records(&detail, "replayed").len(), 1);
    assert_eq!(Replay::records(&detail, "acknowledged").len(), 1);
}

#[tokio::test]
async fn association_by_profile_email_at_login_replays_too() {
    let r = Replay::start().await;
    // Carol is a member whose DingTalk profile email matches, not bound yet.
    r.stack
        .add_member(&r.id, "carol@example.com", "Carol", None)
        .await;
    r.stack.sandbox.add_user(SandboxUser {
        user_id: "carol0003".into(),
        union_id: "union-carol".into(),
        name: "Carol".into(),
        email: Some("carol@example.com".into()),
        mobile: None,
    });
    let (incident, card) = r.alert("replay-profile").await;
    // A newer click replaces the earlier one.
    let (status, _) = r.click(&card, "carol0003", "resolve", None).await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let (status, _) = r.click(&card, "carol0003", "ack", None).await;
    assert_eq!(status, 200);

    let (_, login) = r.login("carol0003").await;
    assert_eq!(login["associated_via"], "profile_match", "{login}");
    assert_eq!(login["replayed"]["action"], "ack", "{login}");
    assert_eq!(login["replayed"]["applied"], true);
    let detail = r.detail(&incident).await;
    assert_eq!(detail["status"], "acknowledged");
    assert_eq!(detail["acked_by"], "Carol");
    assert_eq!(Replay::records(&detail, "replayed").len(), 1);
}

/// An admin binding the clicker (`PUT …/bindings/{userId}`, the console's bind) also
/// replays their held click: the answer says so, the incident is acknowledged under
/// their member with a `replayed` record, and the hold is used up.
#[tokio::test]
async fn a_held_click_is_applied_when_an_admin_binds_the_clicker() {
    let r = Replay::start().await;
    let (incident, card) = r.alert("replay-admin").await;
    let (status, _) = r.click(&card, "bob0002", "ack", None).await;
    assert_eq!(status, 200);
    assert!(r.held("bob0002").await.is_some());

    let path = format!("/api/integrations/{}/bindings/bob0002", r.id);
    let body = json!({"member": "robert@corp.example"});
    let (status, bound) = r.stack.admin("PUT", &path, Some(body.clone())).await;
    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["member"], "robert@corp.example");
    assert_eq!(bound["replayed"]["incident"], incident.as_str(), "{bound}");
    assert_eq!(bound["replayed"]["action"], "ack");
    assert_eq!(bound["replayed"]["applied"], true);
    assert!(r.held("bob0002").await.is_none(), "taken");

    let detail = r.detail(&incident).await;
    assert_eq!(detail["status"], "acknowledged");
    assert_eq!(detail["acked_by"], "Robert");
    let record = record_of(&detail, "replayed");
    assert!(
        record["detail"]
            .as_str()
            .is_some_and(|d| d.contains("bob0002") && d.contains("now applied")),
        "{record}"
    );

    // Binding again replays nothing (the hold was used once).
    let (status, again) = r.stack.admin("PUT", &path, Some(body)).await;
    assert_eq!(status, 200, "{again}");
    assert!(again.get("replayed").is_none(), "{again}");
}
