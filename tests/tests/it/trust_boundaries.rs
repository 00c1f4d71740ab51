//! Trust boundaries (ARCHITECTURE.md §5.8), one test per finding of the black-box
//! probe: oversized alerts are delivered cut, not lost; future dates are clamped;
//! alert text cannot become markup; alerts reach only bound people; webhook URLs
//! obey the outbound policy and redirects are not followed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use integration_tests::{TestStack, alert_body, now_ms, read, record_of, request};
use serde_json::{Value, json};

const CID: &str = "cidTrust0000000000000001==";

struct Probe {
    stack: TestStack,
    id: String,
    token: String,
}

impl Probe {
    async fn start() -> Self {
        let stack = TestStack::start().await;
        let (status, created) = stack
            .admin("POST", "/api/integrations", Some(stack.create_payload()))
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        let token = created["ingest_token"].as_str().expect("token").to_string();
        stack.install_chat(&id, CID, "值班群").await;
        Self { stack, id, token }
    }

    /// Posts to ingest, then runs everything queued; returns the ingest status.
    async fn ingest(&self, body: &Value) -> u16 {
        let headers = [
            ("authorization", format!("Bearer {}", self.token)),
            ("content-type", "application/json".to_string()),
        ];
        let path = format!("/api/integrations/{}/alerts", self.id);
        let bytes = body.to_string().into_bytes();
        let (status, answer) = read(
            self.stack
                .ingest
                .handle(request("POST", &path, &headers, Some(bytes)))
                .await,
        );
        assert!(status == 202 || status >= 400, "{answer}");
        self.stack.run_jobs().await;
        status
    }

    fn event(&self, key: &str, alert: Value) -> Value {
        let mut event = json!({"version": 1, "alert": {"key": key, "status": "firing", "severity": "critical", "title": "t"},
                               "targets": {"chats": [CID]}});
        for (name, value) in alert.as_object().expect("object") {
            event["alert"][name] = value.clone();
        }
        event
    }
}

#[tokio::test]
async fn oversized_alerts_are_delivered_cut_with_nothing_lost() {
    let probe = Probe::start().await;
    let huge_title = probe.event("huge-title", json!({"title": "x".repeat(900_000)}));
    assert_eq!(probe.ingest(&huge_title).await, 202);
    let labels: serde_json::Map<String, Value> = (0..100)
        .map(|n| (format!("label{n:03}"), json!("v".repeat(9 * 1024))))
        .collect();
    assert_eq!(
        probe
            .ingest(&probe.event("many-labels", json!({"labels": labels})))
            .await,
        202
    );
    let links: Vec<Value> = (0..800)
        .map(|n| json!({"title": "l".repeat(1000), "url": format!("https://links.example/{n}")}))
        .collect();
    assert_eq!(
        probe
            .ingest(&probe.event("many-links", json!({"links": links})))
            .await,
        202
    );
    for key in ["huge-title", "many-labels", "many-links"] {
        let detail = probe.stack.incident_by_key(&probe.id, key).await;
        let truncated = record_of(&detail, "truncated");
        assert!(
            truncated["detail"]
                .as_str()
                .expect("detail")
                .contains("cut"),
            "{key}: {truncated}"
        );
        record_of(&detail, "sent");
    }
    let detail = probe.stack.incident_by_key(&probe.id, "huge-title").await;
    assert_eq!(
        detail["title"].as_str().expect("title").chars().count(),
        512
    );
    assert_eq!(
        probe.stack.sandbox.messages().len(),
        3,
        "each alert reached the group"
    );
}

#[tokio::test]
async fn a_future_dated_event_cannot_freeze_its_incident() {
    let probe = Probe::start().await;
    let firing = probe.event("far-future", json!({"occurred_at": "9999-12-31T00:00:00Z"}));
    assert_eq!(probe.ingest(&firing).await, 202);
    let detail = probe.stack.incident_by_key(&probe.id, "far-future").await;
    record_of(&detail, "clock_skew");
    let now = chrono::DateTime::from_timestamp_millis(now_ms() + 1_000)
        .expect("now")
        .to_rfc3339();
    let resolved = probe.event(
        "far-future",
        json!({"status": "resolved", "occurred_at": now}),
    );
    assert_eq!(probe.ingest(&resolved).await, 202);
    let detail = probe.stack.incident_by_key(&probe.id, "far-future").await;
    assert_eq!(detail["status"], "resolved", "{detail}");
}

#[tokio::test]
async fn alert_text_reaches_dingtalk_as_data_not_markup() {
    let probe = Probe::start().await;
    let hostile = probe.event("hostile", json!({
        "title": "[Acknowledge](https://evil.example/ack) <font color=red>urgent</font>",
        "description": "**real** [Runbook](https://runbooks.example/r) [click](javascript:alert(1)) [open](dingtalk://dingtalkclient/page/link?url=https://evil.example) <img src=x onerror=alert(1)>",
        "labels": {"team": "<font color=red>ops</font> [x](dingtalk://evil)"},
        "source": "dingtalk://evil"
    }));
    assert_eq!(probe.ingest(&hostile).await, 202);
    let messages = probe.stack.sandbox.messages();
    assert_eq!(messages.len(), 1);
    let text = messages[0].msg_param["text"].as_str().expect("text");
    for forbidden in [
        "[Acknowledge](",
        "<font color=red",
        "<img",
        "javascript:",
        "dingtalk://",
        "onerror",
    ] {
        assert!(!text.contains(forbidden), "{forbidden:?} in {text}");
    }
    assert!(
        text.contains("**real**") && text.contains("[Runbook](https://runbooks.example/r)"),
        "{text}"
    );
    // Our own buttons still open the app inside DingTalk.
    let ack = messages[0].msg_param["actionURL1"]
        .as_str()
        .expect("button");
    assert!(
        ack.starts_with("dingtalk://dingtalkclient/page/link?url="),
        "{ack}"
    );
}

#[tokio::test]
async fn alerts_reach_only_people_bound_to_the_integration() {
    let probe = Probe::start().await;
    let body = alert_body(
        &probe.id,
        "stranger",
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"dingtalk_user_ids": ["stranger0001"]}),
    );
    assert!(probe.stack.deliver(&[("m1", body)]).await.is_empty());
    assert!(
        probe.stack.sandbox.messages().is_empty(),
        "nothing sent to an unbound user"
    );
    let detail = probe.stack.incident_by_key(&probe.id, "stranger").await;
    let record = record_of(&detail, "unknown_target");
    assert_eq!(record["target"], "stranger0001");
}

#[tokio::test]
async fn webhook_urls_obey_the_outbound_policy() {
    let probe = Probe::start().await;
    let path = format!("/api/integrations/{}", probe.id);
    for url in [
        "https://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "https://user:secret@hooks.example/x",
        "javascript:alert(1)",
    ] {
        let (status, body) = probe
            .stack
            .admin("PATCH", &path, Some(json!({"webhook_url": url})))
            .await;
        assert_eq!(status, 400, "{url}: {body}");
        assert_eq!(body["error"]["field"], "webhook_url");
        assert!(
            !body.to_string().contains("secret@"),
            "the URL is not echoed with its credentials"
        );
    }
}

/// A loopback receiver that redirects to a second one, which counts its hits.
async fn redirecting_webhook() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let target = axum::Router::new().route(
        "/final",
        axum::routing::post(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let final_url = format!("http://{}/final", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, target).await });
    let redirect = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let to = final_url.clone();
            async move {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, to)],
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, redirect).await });
    (url, hits)
}

#[tokio::test]
async fn webhook_redirects_are_not_followed_and_records_carry_classes() {
    let probe = Probe::start().await;
    let (url, hits) = redirecting_webhook().await;
    let path = format!("/api/integrations/{}", probe.id);
    let (status, body) = probe
        .stack
        .admin("PATCH", &path, Some(json!({"webhook_url": url})))
        .await;
    assert_eq!(status, 200, "{body}");
    let job = json!({"type": "webhook", "integration_id": probe.id, "incident_id": "inc-redirect",
                     "attempt": 8, "event": {"type": "incident.acknowledged"}});
    assert!(
        probe
            .stack
            .deliver(&[("m1", job.to_string())])
            .await
            .is_empty()
    );
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the redirect target was never called"
    );
    let records = probe
        .stack
        .services
        .store
        .list_records("inc-redirect")
        .await
        .expect("records");
    assert_eq!(
        records[0].detail,
        "webhook attempt 8 failed: redirect not followed"
    );
}

/// Every attribute value of every item of the table, as text.
async fn table_text(stack: &TestStack) -> String {
    let out = stack
        .dynamodb
        .scan()
        .table_name(stack.services.store.table())
        .send()
        .await
        .expect("scan");
    format!("{:?}", out.items.unwrap_or_default())
}

#[tokio::test]
async fn secrets_are_sealed_at_rest_and_plain_ones_are_sealed_on_first_read() {
    let probe = Probe::start().await;
    let app = integration_tests::APP;
    let text = table_text(&probe.stack).await;
    for secret in [app.client_secret, app.aes_key, app.token] {
        assert!(!text.contains(secret), "{secret} readable in the table");
    }
    assert!(text.contains("enc:v1:"));
    // An integration written before sealing existed: plain values in the item.
    let mut legacy = probe
        .stack
        .services
        .store
        .get_integration(&probe.id)
        .await
        .expect("read")
        .expect("found");
    legacy.id = "legacy-plain".into();
    let unsealed = shared::store::Store::new(
        probe.stack.dynamodb.clone(),
        probe.stack.services.store.table(),
    );
    unsealed
        .insert_integration(&legacy)
        .await
        .expect("write plain");
    assert!(
        table_text(&probe.stack).await.contains(app.client_secret),
        "stored plain"
    );
    let read = probe
        .stack
        .services
        .store
        .get_integration("legacy-plain")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(
        read.client_secret.expose(),
        app.client_secret,
        "opens as before"
    );
    assert!(
        !table_text(&probe.stack).await.contains(app.client_secret),
        "sealed on first read"
    );
}

#[tokio::test]
async fn the_kms_data_key_is_made_once_and_opened_by_every_instance() {
    let stack = TestStack::start().await;
    let kms = aws_sdk_kms::Client::new(&stack.sdk);
    let key_id = kms
        .create_key()
        .description("test secrets key")
        .send()
        .await
        .expect("create key")
        .key_metadata
        .expect("metadata")
        .key_id;
    let store = &stack.services.store;
    let first = shared::infra::secrets::kms_data_key(&kms, store, &key_id)
        .await
        .expect("made");
    let sealed = first.seal("card-api-secret").expect("seal");
    // A second cold start finds the stored data key and opens it through KMS.
    let second = shared::infra::secrets::kms_data_key(&kms, store, &key_id)
        .await
        .expect("opened");
    assert_eq!(second.open(&sealed).expect("opens"), "card-api-secret");
    let blob = store.get_data_key().await.expect("read").expect("kept");
    assert!(!blob.is_empty());
}

#[tokio::test]
async fn api_errors_name_what_is_missing_and_are_not_sniffed() {
    let probe = Probe::start().await;
    let (status, body) = probe
        .stack
        .admin("GET", "/api/incidents/no-such-incident", None)
        .await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (404, Some("incident not found"))
    );
    let path = format!(
        "/api/integrations/{}/members/nobody@corp.example/link-code",
        probe.id
    );
    let (status, body) = probe.stack.admin("POST", &path, None).await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (404, Some("member not found"))
    );
    let headers = [(
        "authorization",
        format!("Bearer {}", integration_tests::ADMIN_KEY),
    )];
    let response = probe
        .stack
        .admin
        .handle(request("GET", "/api/integrations", &headers, None))
        .await;
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
}
