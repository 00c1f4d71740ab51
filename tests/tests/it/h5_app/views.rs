//! Issue #16 in the H5 app (ARCHITECTURE.md §9): every open incident of the
//! integration with its filters (mine / all, severity, group), notes (a `note`
//! record and the upstream `incident.note_added`), and the page's language
//! (the integration's, until the person chooses; remembered on their binding).

use std::sync::{Arc, Mutex};

use integration_tests::{alert_body, record_of, request};
use serde_json::{Value, json};
use shared::domain::locale::Locale;

use super::{CID, H5};

const CID2: &str = "cidH5Group000000000002==";

type Received = Arc<Mutex<Vec<String>>>;

/// A webhook receiver on loopback that records the bodies it gets.
async fn webhook_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let store = store.clone();
            async move {
                store.lock().expect("lock").push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn cid_param(cid: &str) -> String {
    cid.replace('=', "%3D")
}

/// The incidents of the filter tests, by id.
struct Seeded {
    /// Info, sent to Robert in group 1.
    mine: String,
    /// Critical, the team's (Alice's) in group 1.
    team: String,
    /// Warning, the team's in group 2.
    db: String,
    /// Critical in group 1, resolved at the source.
    gone: String,
    /// Robert's session (Bob associated with Robert).
    token: String,
}

async fn seeded() -> (H5, Seeded) {
    let h5 = H5::start().await;
    h5.stack.install_chat(&h5.id, CID2, "数据库群").await;
    h5.stack
        .add_member(&h5.id, "alice@example.com", "Alice", None)
        .await;
    let to = |cid: &str, member: &str| json!({"chats": [cid], "members": [member]});
    let mine = h5
        .raise("h5-mine", "info", to(CID, "robert@corp.example"))
        .await;
    let team = h5
        .raise("h5-team", "critical", to(CID, "alice@example.com"))
        .await;
    let db = h5
        .raise("h5-db", "warning", to(CID2, "alice@example.com"))
        .await;
    let gone = h5
        .raise("h5-gone", "critical", to(CID, "alice@example.com"))
        .await;
    let resolved = alert_body(
        &h5.id,
        "h5-gone",
        "resolved",
        "2026-11-24T01:05:00Z",
        json!({}),
    );
    assert!(
        h5.stack
            .deliver(&[("h5-gone-r", resolved)])
            .await
            .is_empty()
    );
    let token = h5.robert().await;
    let seeded = Seeded {
        mine,
        team,
        db,
        gone,
        token,
    };
    (h5, seeded)
}

#[tokio::test]
async fn every_open_incident_of_the_integration_with_the_mine_and_severity_filters() {
    let (h5, s) = seeded().await;
    let token = s.token.as_str();
    // All: every open incident of the integration, most severe first, mine marked.
    assert_eq!(
        h5.ids(token, "?view=all").await,
        [s.team.as_str(), s.db.as_str(), s.mine.as_str()]
    );
    let (_, all) = h5
        .call("GET", "/incidents?view=all", Some(token), None)
        .await;
    let flags: Vec<bool> = all
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i["mine"].as_bool().expect("mine"))
        .collect();
    assert_eq!(flags, [false, false, true]);
    assert_eq!(all[0]["severity"], "critical", "API values stay English");
    assert_eq!(all[0]["status"], "triggered");
    // Mine (also the default without a view, as before).
    assert_eq!(h5.ids(token, "?view=mine").await, [s.mine.as_str()]);
    assert_eq!(h5.ids(token, "").await, [s.mine.as_str()]);
    // Severity, alone and with mine.
    assert_eq!(
        h5.ids(token, "?view=all&severity=warning").await,
        [s.db.as_str()]
    );
    assert_eq!(
        h5.ids(token, "?view=all&severity=critical").await,
        [s.team.as_str()]
    );
    assert!(
        h5.ids(token, "?view=mine&severity=critical")
            .await
            .is_empty()
    );
    for (query, field) in [
        ("?view=everything", "view"),
        ("?view=all&severity=urgent", "severity"),
        ("?view=group", "cid"),
    ] {
        let (status, body) = h5
            .call("GET", &format!("/incidents{query}"), Some(token), None)
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some(field)),
            "{query}"
        );
    }
}

#[tokio::test]
async fn the_group_filter_and_its_choices() {
    let (h5, s) = seeded().await;
    let token = s.token.as_str();
    let in_cid = format!("?view=all&cid={}", cid_param(CID));
    assert_eq!(
        h5.ids(token, &in_cid).await,
        [s.team.as_str(), s.mine.as_str()]
    );
    let in_cid2 = format!("?view=all&cid={}&severity=warning", cid_param(CID2));
    assert_eq!(h5.ids(token, &in_cid2).await, [s.db.as_str()]);
    let mine_in_cid2 = format!("?view=mine&cid={}", cid_param(CID2));
    assert!(h5.ids(token, &mine_in_cid2).await.is_empty());
    // The group view of existing links keeps its recently resolved incidents.
    let group = format!("?view=group&cid={}", cid_param(CID));
    assert_eq!(
        h5.ids(token, &group).await,
        [s.team.as_str(), s.mine.as_str(), s.gone.as_str()]
    );
    // The group filter's choices: the groups with their open incidents, busiest first.
    let (status, groups) = h5.call("GET", "/groups", Some(token), None).await;
    assert_eq!(status, 200, "{groups}");
    assert_eq!(
        groups,
        json!([{"cid": CID, "title": "值班群", "open": 2}, {"cid": CID2, "title": "数据库群", "open": 1}])
    );
}

#[tokio::test]
async fn a_note_goes_to_the_timeline_and_upstream_without_changing_the_incident() {
    let (hook, received) = webhook_receiver().await;
    let h5 = H5::start_with(json!({"webhook_url": hook})).await;
    let incident_id = h5.incident_for("alice@example.com", "h5-note").await;
    let token = h5.robert().await;
    h5.stack.run_jobs().await;
    let text = json!({"text": "  回滚了 deploy 42 <b>ok</b>  "});
    let (status, note) = h5
        .call(
            "POST",
            &format!("/incidents/{incident_id}/notes"),
            Some(&token),
            Some(text),
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(note["kind"], "note");
    assert_eq!(
        note["detail"], "回滚了 deploy 42 <b>ok</b>",
        "trimmed, kept as text"
    );
    assert_eq!(note["actor"], "Robert <robert@corp.example>");

    let path = format!("/incidents/{incident_id}");
    let (_, detail) = h5.call("GET", &path, Some(&token), None).await;
    let record = record_of(&detail, "note");
    assert_eq!(record["detail"], note["detail"]);
    assert!(
        record["actor"]
            .as_str()
            .expect("actor")
            .contains("robert@corp.example")
    );
    assert_eq!(
        (detail["status"].as_str(), detail["version"].as_u64()),
        (Some("triggered"), Some(1))
    );

    h5.stack.run_jobs().await;
    let events: Vec<Value> = received
        .lock()
        .expect("lock")
        .iter()
        .map(|b| serde_json::from_str(b).expect("json"))
        .collect();
    let event = events
        .iter()
        .find(|e| e["type"] == "incident.note_added")
        .unwrap_or_else(|| panic!("no incident.note_added in {events:?}"));
    assert_eq!(event["note"]["text"], note["detail"]);
    assert_eq!(event["actor"], "Robert <robert@corp.example>");
    assert_eq!(event["incident"]["id"], incident_id.as_str());

    // A note conflicts with nothing: an action on the version seen before it applies.
    let (status, acked) = h5
        .call(
            "POST",
            &format!("/incidents/{incident_id}/actions"),
            Some(&token),
            Some(json!({"action": "ack", "version": 1})),
        )
        .await;
    assert_eq!(
        (status, acked["status"].as_str()),
        (200, Some("acknowledged"))
    );
}

#[tokio::test]
async fn notes_have_1_to_2000_characters() {
    let h5 = H5::start().await;
    let incident_id = h5.incident_for("robert@corp.example", "h5-note-size").await;
    let token = h5.robert().await;
    let notes = format!("/incidents/{incident_id}/notes");
    // 2000 characters (not bytes) fit; empty, blank, missing or longer ones do not.
    let longest = "告".repeat(2000);
    let (status, _) = h5
        .call("POST", &notes, Some(&token), Some(json!({"text": longest})))
        .await;
    assert_eq!(status, 201);
    for bad in [
        json!({"text": ""}),
        json!({"text": " \n\t "}),
        json!({}),
        json!({"text": 42}),
        json!({"text": "x".repeat(2001)}),
    ] {
        let (status, body) = h5
            .call("POST", &notes, Some(&token), Some(bad.clone()))
            .await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("text")),
            "{bad}: {body}"
        );
    }
    let hi = Some(json!({"text": "hi"}));
    let (status, _) = h5
        .call("POST", "/incidents/nosuch/notes", Some(&token), hi)
        .await;
    assert_eq!(status, 404);
    let (_, detail) = h5
        .stack
        .admin("GET", &format!("/api/incidents/{incident_id}"), None)
        .await;
    let notes: Vec<&Value> = detail["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["kind"] == "note")
        .collect();
    assert_eq!(notes.len(), 1, "refused notes are not written");
}

#[tokio::test]
async fn the_page_follows_the_integration_language_until_the_person_chooses() {
    // Created without a locale, as `make dev`'s demo is: zh-CN.
    let h5 = H5::start_with(json!({"locale": null})).await;
    let path = format!("/dingtalk/{}/app", h5.id);
    let page = h5.stack.h5.handle(request("GET", &path, &[], None)).await;
    let html = match page.body() {
        lambda_http::Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    assert!(
        html.contains("<html lang=\"zh-CN\">"),
        "new integrations are zh-CN"
    );
    assert!(html.contains("\"locale\":\"zh-CN\"") && html.contains("正在通过钉钉登录"));

    let token = h5.robert().await;
    let (_, me) = h5.call("GET", "/me", Some(&token), None).await;
    assert_eq!(me["locale"], "zh-CN", "the integration's");
    let (status, me) = h5.choose(&token, json!("en-US")).await;
    assert_eq!(
        (status, me["locale"].as_str()),
        (200, Some("en-US")),
        "{me}"
    );
    assert_eq!(me["member"]["email"], "robert@corp.example");
    let (_, me) = h5.call("GET", "/me", Some(&token), None).await;
    assert_eq!(me["locale"], "en-US");
    let (_, login) = h5.login("bob0002").await;
    assert_eq!(login["locale"], "en-US", "remembered across logins");
    let stored = h5
        .stack
        .services
        .store
        .binding_and_locale(&h5.id, "bob0002")
        .await
        .expect("read")
        .expect("bound");
    assert_eq!(stored.1, Some(Locale::EnUs), "kept on the binding");

    for bad in [json!("fr-FR"), json!("zh"), json!(1)] {
        let (status, body) = h5.choose(&token, bad.clone()).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (400, Some("locale")),
            "{bad}"
        );
    }
    let (status, _) = h5
        .call("POST", "/locale", Some(&token), Some(json!({})))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_chosen_language_outlives_rebinding_and_null_follows_the_integration_again() {
    let h5 = H5::start_with(json!({"locale": null})).await;
    let token = h5.robert().await;
    assert_eq!(h5.choose(&token, json!("en-US")).await.0, 200);
    // An admin binding the person again keeps their choice.
    let (status, _) = h5
        .stack
        .admin(
            "PUT",
            &format!("/api/integrations/{}/bindings/bob0002", h5.id),
            Some(json!({"member": "robert@corp.example"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, me) = h5.call("GET", "/me", Some(&token), None).await;
    assert_eq!(me["locale"], "en-US");

    // The person's choice wins over the integration's; null follows it again.
    let (status, _) = h5
        .stack
        .admin(
            "PATCH",
            &format!("/api/integrations/{}", h5.id),
            Some(json!({"locale": "en-US"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, me) = h5.choose(&token, json!("zh-CN")).await;
    assert_eq!(me["locale"], "zh-CN");
    let (_, me) = h5.choose(&token, Value::Null).await;
    assert_eq!(me["locale"], "en-US", "the integration's again");
}
