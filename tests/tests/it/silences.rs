//! Issue #17 item 3, Alertmanager silences from the chat (ARCHITECTURE.md §11),
//! against a real Alertmanager (Debian's package) with basic auth: Silence 4h on a
//! card makes a real silence from the incident's labels that mutes the group's
//! alerts, shows "silenced until" on the card and records `silenced`; a second
//! click makes no second silence; Unsilence expires it. The H5 app shows the
//! matchers before it silences. An unreachable Alertmanager is a private notice
//! and a `failed` record, and nothing else changes.

use integration_tests::alertmanager::{PASSWORD, RealAlertmanager, SlowAnswers, USER};
use integration_tests::{TestStack, now_ms, record_of};
use serde_json::{Value, json};

const GROUP: &str = "cidSilence000000000000001==";

struct Silences {
    stack: TestStack,
    id: String,
}

impl Silences {
    /// An integration with cards in one group, Alice bound, and `alertmanager` set.
    async fn start(alertmanager: Value) -> Self {
        let stack = TestStack::start().await;
        let id = stack
            .create_card_integration(json!({"alertmanager": alertmanager}))
            .await;
        stack.install_chat(&id, GROUP, "Ops").await;
        stack
            .add_member(&id, "alice@example.com", "Alice", Some("alice0001"))
            .await;
        Self { stack, id }
    }

    /// An incident from Alertmanager (as ingest makes it); returns its id and card.
    async fn alert(&self, key: &str, source: &str) -> (String, String) {
        let event = json!({"version": 1, "integration_id": self.id, "alert": {
            "key": key, "status": "firing", "severity": "critical", "title": "Disk full on db-1",
            "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "critical"},
            "source": source}, "targets": {"chats": [GROUP]}});
        assert!(
            self.stack
                .deliver(&[(key, event.to_string())])
                .await
                .is_empty()
        );
        self.stack.incident_and_card(&self.id, key).await
    }

    async fn click(&self, card: &str, params: Value) -> Value {
        let (status, answer) = self
            .stack
            .click_card(&self.id, (card, "alice0001"), params, now_ms())
            .await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn silence_1h(&self, card: &str, incident: &str) -> Value {
        self.click(
            card,
            json!({"action": "silence", "duration": "1h", "incident": incident}),
        )
        .await
    }

    async fn detail(&self, incident: &str) -> Value {
        let (status, detail) = self
            .stack
            .admin("GET", &format!("/api/incidents/{incident}"), None)
            .await;
        assert_eq!(status, 200, "{detail}");
        detail
    }
}

fn card_var<'a>(answer: &'a Value, name: &str) -> &'a str {
    answer["cardData"]["cardParamMap"][name]
        .as_str()
        .unwrap_or_default()
}

fn notice(answer: &Value) -> &str {
    answer["userPrivateData"]["cardParamMap"]["notice"]
        .as_str()
        .unwrap_or_default()
}

/// An RFC 3339 time in Unix ms.
fn millis(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("time")
        .timestamp_millis()
}

/// An RFC 3339 time as `2026-11-29 10:00` in `timezone` (how cards show times).
fn local_minute(rfc3339: &str, timezone: &str) -> String {
    let tz: chrono_tz::Tz = timezone.parse().expect("time zone");
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("time")
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

fn basic_auth(am: &RealAlertmanager) -> Value {
    json!({"url": am.url, "auth": {"basic": {"username": USER, "password": PASSWORD}}})
}

/// The one silence Alertmanager holds (active, the group's matchers, by Alice, for
/// four hours from `before`, naming the incident) mutes the alert; its id.
async fn the_silence_in_alertmanager(am: &RealAlertmanager, incident: &str, before: i64) -> String {
    let silences = am.silences().await;
    assert_eq!(silences.len(), 1, "{silences:?}");
    let silence = &silences[0];
    assert_eq!(silence["status"]["state"], "active");
    let matchers: Vec<String> = silence["matchers"]
        .as_array()
        .expect("matchers")
        .iter()
        .map(|m| {
            format!(
                "{}={}",
                m["name"].as_str().unwrap_or(""),
                m["value"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        matchers,
        ["alertname=DiskFull", "instance=db-1", "severity=critical"]
    );
    assert!(
        silence["createdBy"]
            .as_str()
            .is_some_and(|c| c.contains("alice@example.com"))
    );
    assert!(
        silence["comment"]
            .as_str()
            .is_some_and(|c| c.contains(&format!("incident={incident}"))),
        "the comment links the incident: {silence}"
    );
    let ends = millis(silence["endsAt"].as_str().expect("endsAt"));
    assert!((ends - before - 4 * 3_600_000).abs() < 60_000, "four hours");
    let silence_id = silence["id"].as_str().expect("id").to_string();
    // Alertmanager now mutes the group's alert with it.
    let (_, alerts) = am.get("/alerts").await;
    assert_eq!(
        alerts[0]["status"]["silencedBy"],
        json!([silence_id]),
        "{alerts}"
    );

    silence_id
}

/// The incident keeps the silence (id, Alertmanager's end time) in its record, and
/// the card says until when, in the integration's time zone.
async fn recorded_and_shown(
    am: &RealAlertmanager,
    (detail, answer): (&Value, &Value),
    silence_id: &str,
    timezone: &str,
) {
    assert_eq!(detail["silence"]["id"], silence_id);
    let until = detail["silence"]["until"].as_str().expect("until");
    let ends_at = am.silences().await[0]["endsAt"].clone();
    assert_eq!(
        millis(until),
        millis(ends_at.as_str().expect("endsAt")),
        "the incident keeps Alertmanager's end"
    );
    let record = record_of(detail, "silenced");
    assert_eq!(record["target"], silence_id);
    assert!(
        record["detail"]
            .as_str()
            .is_some_and(|d| d.contains(r#"instance="db-1""#) && d.contains(until)),
        "{record}"
    );
    let shown_until = local_minute(until, timezone);
    assert!(
        card_var(answer, "silenced_until").contains(&shown_until),
        "{shown_until}: {answer}"
    );
}

#[tokio::test]
async fn silence_and_unsilence_from_the_card_against_a_real_alertmanager() {
    let am = RealAlertmanager::start().await;
    let t = Silences::start(basic_auth(&am)).await;
    let (status, shown) = t
        .stack
        .admin("GET", &format!("/api/integrations/{}", t.id), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        shown["alertmanager"],
        json!({"url": am.url, "auth": "basic", "username": USER})
    );
    assert!(
        !shown.to_string().contains(PASSWORD),
        "the password is never shown"
    );

    let (incident, card) = t.alert("am-disk", "alertmanager").await;
    let delivered = &t.stack.sandbox.cards()[0].card_data;
    assert_eq!(delivered["show_silence"], "true");
    assert!(
        delivered["silence_matchers"].as_str().is_some_and(|m| m
            .contains(r#"alertname="DiskFull""#)
            && m.contains(r#"instance="db-1""#)),
        "{delivered:?}"
    );
    // The group's alerts, as Prometheus sends them to Alertmanager.
    am.post_alerts(
        &json!([{"labels": {"alertname": "DiskFull", "instance": "db-1",
        "severity": "critical", "mountpoint": "/data"}}]),
    )
    .await;

    let before = now_ms();
    let answer = t
        .click(
            &card,
            json!({"action": "silence", "duration": "4h", "incident": incident}),
        )
        .await;
    assert_eq!(notice(&answer), "", "{answer}");
    assert_eq!(card_var(&answer, "show_silence"), "false");
    assert_eq!(card_var(&answer, "show_unsilence"), "true");
    assert!(
        card_var(&answer, "silenced_until").contains("Alice"),
        "{answer}"
    );

    let silence_id = the_silence_in_alertmanager(&am, &incident, before).await;
    let detail = t.detail(&incident).await;
    let timezone = shown["timezone"].as_str().expect("timezone");
    recorded_and_shown(&am, (&detail, &answer), &silence_id, timezone).await;

    // A second click (a double tap, or another person) makes no second silence.
    let again = t
        .click(
            &card,
            json!({"action": "silence", "duration": "1h", "incident": incident}),
        )
        .await;
    assert_eq!(card_var(&again, "show_unsilence"), "true");
    assert_eq!(am.silences().await.len(), 1);

    let answer = t
        .click(&card, json!({"action": "unsilence", "incident": incident}))
        .await;
    assert_eq!(notice(&answer), "", "{answer}");
    assert_eq!(card_var(&answer, "show_silence"), "true");
    assert_eq!(card_var(&answer, "silenced_until"), "");
    let (_, expired) = am.get(&format!("/silence/{silence_id}")).await;
    assert_eq!(expired["status"]["state"], "expired");
    let (_, alerts) = am.get("/alerts").await;
    assert_eq!(alerts[0]["status"]["silencedBy"], json!([]));
    let detail = t.detail(&incident).await;
    assert!(detail.get("silence").is_none_or(Value::is_null), "{detail}");
    assert_eq!(record_of(&detail, "unsilenced")["target"], silence_id);

    // Every other copy of the card follows (the queued update job).
    t.stack.run_jobs().await;
    let card_now = &t.stack.sandbox.cards()[0].card_data;
    assert_eq!(card_now["show_silence"], "true");
}

#[tokio::test]
async fn an_unreachable_alertmanager_is_a_private_notice_and_a_failed_record() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let t = Silences::start(json!({"url": format!("http://127.0.0.1:{closed}")})).await;
    let (incident, card) = t.alert("am-cpu", "alertmanager").await;
    let version = t.detail(&incident).await["version"].clone();
    let answer = t.silence_1h(&card, &incident).await;
    assert!(
        notice(&answer).contains("Alertmanager")
            && notice(&answer).contains("could not be reached"),
        "{answer}"
    );
    assert_eq!(card_var(&answer, "show_silence"), "true", "nothing changed");
    let detail = t.detail(&incident).await;
    assert_eq!(detail["version"], version);
    assert!(detail.get("silence").is_none_or(Value::is_null));
    let failed = record_of(&detail, "failed");
    assert_eq!(failed["target"], "alertmanager");
    assert!(
        failed["actor"]
            .as_str()
            .is_some_and(|a| a.contains("alice@example.com"))
    );
}

#[tokio::test]
async fn the_h5_app_shows_the_matchers_then_silences_and_only_alertmanager_incidents_qualify() {
    let am = RealAlertmanager::start().await;
    let t = Silences::start(basic_auth(&am)).await;
    let (incident, _) = t.alert("am-mem", "alertmanager").await;
    let (grafana, _) = t.alert("gf-mem", "grafana").await;
    let (token, _) = t.stack.h5_login(&t.id, "alice0001").await;

    let path = format!("/incidents/{incident}/silence");
    let (status, preview) = t
        .stack
        .h5_call(&t.id, ("GET", &path), Some(&token), None)
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["available"], true);
    assert_eq!(
        preview["matchers"],
        json!([
            r#"alertname="DiskFull""#,
            r#"instance="db-1""#,
            r#"severity="critical""#
        ])
    );
    assert_eq!(preview["durations"], json!(["1h", "4h", "24h"]));
    assert!(am.silences().await.is_empty(), "a preview silences nothing");

    let path = format!("/incidents/{grafana}/silence");
    let (_, other) = t
        .stack
        .h5_call(&t.id, ("GET", &path), Some(&token), None)
        .await;
    assert_eq!(other["available"], false);
    assert!(
        other["reason"]
            .as_str()
            .is_some_and(|r| r.contains("Alertmanager"))
    );

    let actions = format!("/incidents/{incident}/actions");
    for bad in [
        json!({"action": "silence", "duration": "2h"}),
        json!({"action": "silence"}),
    ] {
        let (status, body) = t
            .stack
            .h5_call(&t.id, ("POST", &actions), Some(&token), Some(bad))
            .await;
        assert_eq!(status, 400, "{body}");
    }
    let (status, body) = t
        .stack
        .h5_call(
            &t.id,
            ("POST", &format!("/incidents/{grafana}/actions")),
            Some(&token),
            Some(json!({"action": "silence", "duration": "1h"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(am.silences().await.is_empty());

    let (status, done) = t
        .stack
        .h5_call(
            &t.id,
            ("POST", &actions),
            Some(&token),
            Some(json!({"action": "silence", "duration": "24h"})),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let id = done["silence"]["id"].as_str().expect("silence id");
    assert_eq!(am.silences().await[0]["id"], id);
    let path = format!("/incidents/{incident}/silence");
    let (_, preview) = t
        .stack
        .h5_call(&t.id, ("GET", &path), Some(&token), None)
        .await;
    assert_eq!(preview["available"], false);
    assert_eq!(preview["silence"]["id"], id);
    assert_eq!(preview["silence"]["by"], "Alice");
}

#[tokio::test]
async fn the_h5_app_unsilences_and_says_when_alertmanager_is_unreachable() {
    let am = RealAlertmanager::start().await;
    let t = Silences::start(basic_auth(&am)).await;
    let (incident, _) = t.alert("am-h5", "alertmanager").await;
    let (token, _) = t.stack.h5_login(&t.id, "alice0001").await;
    let actions = format!("/incidents/{incident}/actions");
    let act = |body: Value| {
        let (stack, id, token, actions) = (&t.stack, &t.id, &token, &actions);
        async move {
            stack
                .h5_call(id, ("POST", actions), Some(token), Some(body))
                .await
        }
    };
    let (status, done) = act(json!({"action": "silence", "duration": "1h"})).await;
    assert_eq!(status, 200, "{done}");
    let silence_id = done["silence"]["id"].as_str().expect("id").to_string();

    let (status, done) = act(json!({"action": "unsilence"})).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.get("silence").is_none_or(Value::is_null), "{done}");
    let (_, expired) = am.get(&format!("/silence/{silence_id}")).await;
    assert_eq!(expired["status"]["state"], "expired");
    let detail = t.detail(&incident).await;
    assert_eq!(
        record_of(&detail, "unsilenced")["target"],
        silence_id.as_str()
    );

    // With Alertmanager gone, the app answers 503 with the reason, and records it.
    drop(am);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let version = t.detail(&incident).await["version"].clone();
    let (status, refused) = act(json!({"action": "silence", "duration": "4h"})).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "unavailable", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Alertmanager could not be reached")),
        "{refused}"
    );
    let detail = t.detail(&incident).await;
    assert_eq!(detail["version"], version, "nothing changed");
    assert_eq!(record_of(&detail, "failed")["target"], "alertmanager");
}

#[tokio::test]
async fn the_alertmanager_setting_is_checked_and_its_secrets_stay_sealed() {
    let stack = TestStack::start().await;
    let mut payload = stack.create_payload();
    for (bad, field) in [
        (json!({"url": "ftp://am.example.com"}), "alertmanager.url"),
        (
            json!({"url": "https://169.254.169.254"}),
            "alertmanager.url",
        ),
        (
            json!({"url": "https://am.example.com", "auth": {"token": "x"}}),
            "alertmanager.auth",
        ),
        (json!("https://am.example.com"), "alertmanager"),
    ] {
        payload["alertmanager"] = bad.clone();
        let (status, body) = stack
            .admin("POST", "/api/integrations", Some(payload.clone()))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    payload["alertmanager"] =
        json!({"url": "https://am.example.com", "auth": {"bearer": "am-bearer-secret-value"}});
    let (status, created) = stack
        .admin("POST", "/api/integrations", Some(payload))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["alertmanager"]["auth"], "bearer");
    assert!(!created.to_string().contains("am-bearer-secret-value"));
    let id = created["id"].as_str().expect("id");
    let stored = stack
        .dynamodb
        .get_item()
        .table_name(stack.services.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("INT#{id}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONFIG".into()),
        )
        .send()
        .await
        .expect("get")
        .item
        .expect("item");
    assert!(
        !format!("{stored:?}").contains("am-bearer-secret-value"),
        "sealed at rest"
    );
    let (status, cleared) = stack
        .admin(
            "PATCH",
            &format!("/api/integrations/{id}"),
            Some(json!({"alertmanager": null})),
        )
        .await;
    assert_eq!(status, 200, "{cleared}");
    assert!(cleared["alertmanager"].is_null());
}

#[tokio::test]
async fn unsilence_keeps_the_silence_when_alertmanager_is_down() {
    let am = RealAlertmanager::start().await;
    let t = Silences::start(basic_auth(&am)).await;
    let (incident, card) = t.alert("am-net", "alertmanager").await;
    let answer = t.silence_1h(&card, &incident).await;
    assert_eq!(notice(&answer), "", "{answer}");
    let silence_id = t.detail(&incident).await["silence"]["id"].clone();
    drop(am);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let answer = t
        .click(&card, json!({"action": "unsilence", "incident": incident}))
        .await;
    assert!(notice(&answer).contains("could not be reached"), "{answer}");
    assert_eq!(
        card_var(&answer, "show_unsilence"),
        "true",
        "still silenced"
    );
    let detail = t.detail(&incident).await;
    assert_eq!(
        detail["silence"]["id"], silence_id,
        "the silence stays on the incident"
    );
    let failed = record_of(&detail, "failed");
    assert!(
        failed["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not expired")),
        "{failed}"
    );
    assert!(
        !detail["records"].to_string().contains("\"unsilenced\""),
        "no unsilenced record"
    );
}

/// Alertmanager makes the silence but its answer comes after our timeout: the
/// silence is found again by the marker in its comment and adopted (one silence,
/// recorded and shown), never left behind while the person is told it failed.
#[tokio::test]
async fn a_silence_whose_answer_was_lost_is_found_again_and_adopted() {
    let am = RealAlertmanager::start().await;
    let slow = SlowAnswers::start(&am.url, std::time::Duration::from_secs(3)).await;
    let t = Silences::start(
        json!({"url": slow.url, "auth": {"basic": {"username": USER, "password": PASSWORD}}}),
    )
    .await;
    let (incident, card) = t.alert("am-slow", "alertmanager").await;
    let answer = t.silence_1h(&card, &incident).await;
    assert_eq!(notice(&answer), "", "{answer}");
    assert_eq!(card_var(&answer, "show_unsilence"), "true", "{answer}");
    let silences = am.silences().await;
    assert_eq!(silences.len(), 1, "{silences:?}");
    let detail = t.detail(&incident).await;
    assert_eq!(detail["silence"]["id"], silences[0]["id"]);
    assert_eq!(record_of(&detail, "silenced")["target"], silences[0]["id"]);
    assert!(
        detail["records"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["kind"] != "failed")),
        "{detail}"
    );
}
