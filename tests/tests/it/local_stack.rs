//! Acceptance of the local stack behind `make dev`: the routes of template.yaml reach
//! the right handlers, the sandbox page drives real signed events, explicit
//! settings are used as given, and the SQS event source behaves like Lambda's.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_sqs::types::QueueAttributeName;
use integration_tests::{APP, start_sandbox};
use local_stack::gateway::{Function, ROUTES};
use local_stack::sandbox::events::{check_url, cool_app_event};
use local_stack::sandbox::{Limits, SandboxApp, SandboxGroup};
use local_stack::sqs_source::{BatchHandler, SqsEventSource};
use local_stack::stack::{DevSettings, RunningStack, start};
use serde_json::{Value, json};
use shared::infra::crypto::CallbackCrypto;

const KEY: &str = "local-stack-test-key-0123456789";

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL (run through make test)")
}

fn settings() -> DevSettings {
    let table = format!("dev-{}", uuid::Uuid::new_v4().simple());
    let queue = format!("q-{}", uuid::Uuid::new_v4().simple());
    DevSettings::from_lookup(|name| match name {
        "PORT" => Some("0".into()),
        "TABLE_NAME" => Some(table.clone()),
        "QUEUE_URL" => Some(format!("http://ignored/123456789012/{queue}")),
        "ADMIN_API_KEY" => Some(KEY.into()),
        "AWS_ENDPOINT_URL" => Some(endpoint()),
        _ => None,
    })
    .expect("settings")
}

fn url(stack: &RunningStack, path: &str) -> String {
    format!("http://{}{path}", stack.addr)
}

async fn admin(
    stack: &RunningStack,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url(stack, path))
        .bearer_auth(KEY);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[test]
fn routes_are_exactly_those_of_the_template() {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml"))
            .expect("template");
    // (method, path, the function resource whose event it is)
    let mut in_template = BTreeSet::new();
    let (mut resource, mut path) = (String::new(), None);
    for raw in template.lines() {
        // A resource of `Resources:` is a two-space-indented `Name:` line.
        if raw.starts_with("  ") && !raw.starts_with("   ") && raw.trim_end().ends_with(':') {
            resource = raw.trim().trim_end_matches(':').to_string();
        }
        let line = raw.trim();
        if let Some(p) = line.strip_prefix("Path: ") {
            path = Some(p.to_string());
        } else if let (Some(m), Some(p)) = (line.strip_prefix("Method: "), path.take()) {
            in_template.insert((m.to_uppercase(), p, resource.clone()));
        }
    }
    let served: BTreeSet<(String, String, String)> = ROUTES
        .iter()
        .map(|(m, p, function)| {
            let resource = match function {
                Function::EventCallback => "EventCallbackFunction",
                Function::AdminApi => "AdminApiFunction",
                Function::Ingest => "IngestFunction",
                Function::H5App => "H5AppFunction",
            };
            (m.to_string(), p.to_string(), resource.to_string())
        })
        .collect();
    assert_eq!(served, in_template);
}

#[tokio::test]
async fn one_request_per_route_reaches_its_handler() {
    let stack = start(settings()).await.expect("stack");
    assert!(
        stack.moto.is_none(),
        "AWS_ENDPOINT_URL given: no moto of its own"
    );

    // ANY /api/integrations → admin API (creates).
    let demo = stack.demo.clone().expect("demo integration");
    let (status, list) = admin(&stack, reqwest::Method::GET, "/api/integrations", None).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], demo.id.as_str());
    // ANY /api/integrations/{proxy+} → admin API.
    let (status, one) = admin(
        &stack,
        reqwest::Method::GET,
        &format!("/api/integrations/{}", demo.id),
        None,
    )
    .await;
    assert_eq!(
        (status, one["client_id"].as_str()),
        (200, Some(local_stack::stack::DEMO_APP_KEY))
    );
    // ANY /api/incidents/{proxy+} → admin API (it alone answers 401 without the key).
    let response = reqwest::get(url(&stack, "/api/incidents/some-id"))
        .await
        .expect("get");
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");
    // POST /dingtalk/{id}/events → event callback (answers the encrypted success).
    let sandbox = stack.sandbox.clone().expect("sandbox");
    let subscription = sandbox
        .subscription(local_stack::stack::DEMO_APP_KEY)
        .expect("subscribed");
    let delivery = sandbox
        .push_event(local_stack::stack::DEMO_APP_KEY, &check_url(), "check_url")
        .await;
    assert!(delivery.acknowledged, "{delivery:?}");
    assert_eq!(
        subscription.url,
        url(&stack, &format!("/dingtalk/{}/events", demo.id))
    );
    // Outside the template's routes (or a method a route does not take): 404, as API Gateway.
    assert_eq!(
        reqwest::get(url(&stack, "/nothing"))
            .await
            .expect("get")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        reqwest::get(url(&stack, &format!("/dingtalk/{}/events", demo.id)))
            .await
            .expect("get")
            .status()
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn installing_the_cool_app_in_the_sandbox_page_lists_the_group() {
    let stack = start(settings()).await.expect("stack");
    let demo = stack.demo.clone().expect("demo");
    let page = reqwest::get(url(&stack, "/sandbox"))
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("数据库值班群 Database duty"));
    assert!(page.contains("Install cool app"));

    let cid = "cidDatabaseDuty00000000002==";
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let form = client
        .post(url(&stack, "/sandbox/actions/install"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("cid={}", cid.replace('=', "%3D")))
        .send()
        .await
        .expect("install");
    assert_eq!(form.status().as_u16(), 303);
    let (status, chats) = admin(
        &stack,
        reqwest::Method::GET,
        &format!("/api/integrations/{}/chats", demo.id),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(chats[0]["open_conversation_id"], cid);
    assert_eq!(chats[0]["title"], "数据库值班群 Database duty");
    assert_eq!(chats[0]["status"], "installed");

    let state: Value = reqwest::get(url(&stack, "/sandbox/state.json"))
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["deliveries"][0]["acknowledged"], true, "{state}");
    let page = reqwest::get(url(&stack, "/sandbox"))
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Uninstall cool app"));
    assert!(page.contains("im_cool_app_install"));
}

/// The integration `id` is in `table`, and a signed install event to the stack gets
/// DingTalk's encrypted `success`.
async fn install_event_answered(stack: &RunningStack, table: &str, id: &str) {
    let dynamodb = integration_tests::dynamodb_client().await;
    let stored = shared::store::Store::new(dynamodb, table.to_string())
        .get_integration(id)
        .await
        .expect("get");
    assert!(stored.is_some(), "integration stored in TABLE_NAME");
    let event = cool_app_event(
        true,
        APP.corp_id,
        "cidExternal==",
        "COOLAPP-X",
        APP.client_id,
        "u",
        local_now(),
    );
    let signed = local_stack::sandbox::events::sign_event(
        APP.token,
        APP.aes_key,
        APP.client_id,
        &event,
        local_now(),
    )
    .expect("sign");
    let reply: Value = reqwest::Client::new()
        .post(url(stack, &signed.path_and_query(id)))
        .json(&signed.body)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let crypto = CallbackCrypto::new(APP.token, APP.aes_key).expect("crypto");
    assert_eq!(
        crypto
            .decrypt(
                reply["encrypt"].as_str().expect("encrypt"),
                &[APP.client_id]
            )
            .expect("decrypt")
            .message,
        "success"
    );
}

#[tokio::test]
async fn explicit_settings_are_used_as_given() {
    let (external, external_url) = start_sandbox().await;
    external.add_app(SandboxApp {
        app_key: APP.client_id.into(),
        app_secret: APP.client_secret.into(),
        corp_id: APP.corp_id.into(),
    });
    external.add_group(SandboxGroup {
        open_conversation_id: "cidExternal==".into(),
        title: "External DingTalk group".into(),
        owner_user_id: "o".into(),
        cool_app_code: Some("COOLAPP-X".into()),
        disbanded: false,
    });
    let table = format!("given-{}", uuid::Uuid::new_v4().simple());
    let queue = format!("given-q-{}", uuid::Uuid::new_v4().simple());
    let settings = DevSettings::from_lookup(|name| match name {
        "AWS_ENDPOINT_URL" => Some(endpoint()),
        "DINGTALK_API_BASE" | "DINGTALK_OAPI_BASE" => Some(external_url.clone()),
        "TABLE_NAME" => Some(table.clone()),
        "QUEUE_URL" => Some(format!("{}/123456789012/{queue}", endpoint())),
        "PORT" => Some("0".into()),
        "PUBLIC_BASE_URL" => Some("https://tunnel.example.net".into()),
        "ADMIN_API_KEY" => Some(KEY.into()),
        _ => None,
    })
    .expect("settings");
    let stack = start(settings).await.expect("stack");
    assert!(stack.moto.is_none() && stack.sandbox.is_none() && stack.demo.is_none());
    assert!(
        stack.queue_url.ends_with(&format!("/{queue}")),
        "{}",
        stack.queue_url
    );
    assert_eq!(
        reqwest::get(url(&stack, "/sandbox"))
            .await
            .expect("get")
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        reqwest::get(url(&stack, "/sandbox/dingtalk/gettoken"))
            .await
            .expect("get")
            .status()
            .as_u16(),
        404
    );

    let payload = json!({"name": "Ext", "corp_id": APP.corp_id, "agent_id": "1", "client_id": APP.client_id,
        "client_secret": APP.client_secret, "aes_key": APP.aes_key, "token": APP.token});
    let (status, created) = admin(
        &stack,
        reqwest::Method::POST,
        "/api/integrations",
        Some(payload),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        created["urls"]["event_subscription"],
        format!("https://tunnel.example.net/dingtalk/{id}/events")
    );

    // The table is the one named, and the group lookup goes to the DingTalk named.
    install_event_answered(&stack, &table, &id).await;
    assert_eq!(external.call_count("/v1.0/im/sceneGroups/query"), 1);
    let (_, chats) = admin(
        &stack,
        reqwest::Method::GET,
        &format!("/api/integrations/{id}/chats"),
        None,
    )
    .await;
    assert_eq!(chats[0]["title"], "External DingTalk group");
}

#[tokio::test]
async fn an_alertmanager_alert_posted_to_ingest_shows_up_in_the_sandbox_group() {
    let stack = start(settings()).await.expect("stack");
    let demo = stack.demo.clone().expect("demo");
    let token = demo.ingest_token.clone().expect("ingest token");
    let sandbox = stack.sandbox.clone().expect("sandbox");
    let cid = "cidSreWarRoom0000000000003==";
    let install = cool_app_event(
        true,
        "dingsandboxcorp000000000000000001",
        cid,
        local_stack::sandbox::page::SANDBOX_COOL_APP_CODE,
        local_stack::stack::DEMO_APP_KEY,
        "u",
        local_now(),
    );
    sandbox.set_cool_app(cid, Some(local_stack::sandbox::page::SANDBOX_COOL_APP_CODE));
    assert!(
        sandbox
            .push_event(local_stack::stack::DEMO_APP_KEY, &install, "war room")
            .await
            .acknowledged
    );

    let payload = json!({"version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "status": "firing", "receiver": "dingtalk",
        "groupLabels": {"alertname": "DiskFull"}, "commonLabels": {"alertname": "DiskFull", "severity": "warning", "dingtalk_chat": "SRE 指挥群 War room"},
        "commonAnnotations": {"summary": "Disk 95% full on db-1"}, "externalURL": "http://am:9093",
        "alerts": [{"status": "firing", "labels": {"alertname": "DiskFull"}, "annotations": {}, "startsAt": "2026-11-24T01:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph", "fingerprint": "f1"}]});
    let response = reqwest::Client::new()
        .post(url(
            &stack,
            &format!("/api/integrations/{}/alerts", demo.id),
        ))
        .bearer_auth(token)
        .json(&payload)
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status().as_u16(), 202);
    let mut delivered = Vec::new();
    for _ in 0..100 {
        delivered = sandbox.cards();
        if !delivered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        delivered.len(),
        1,
        "the local SQS event source fed the notifier"
    );
    assert_eq!(delivered[0].spaces, [format!("dtv1.card//IM_GROUP.{cid}")]);
    let page = reqwest::get(url(&stack, "/sandbox"))
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("Disk 95% full on db-1"),
        "the page shows the card the group received"
    );

    // A button on the card in the sandbox page: a real signed callback, and the card updates.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let click = client
        .post(url(&stack, "/sandbox/actions/card-click"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "out_track_id={}&action=ack&user_id=alice0001",
            delivered[0].out_track_id
        ))
        .send()
        .await
        .expect("click");
    assert_eq!(click.status().as_u16(), 303);
    let card = sandbox.cards().into_iter().next().expect("card");
    assert_eq!(
        card.card_data["status"], "acknowledged",
        "{:?}",
        card.card_data
    );
    assert_eq!(card.card_data["acked_by"], "Alice 王");
    let page = reqwest::get(url(&stack, "/sandbox"))
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("acknowledged"));
}

fn local_now() -> i64 {
    integration_tests::now_ms()
}

#[tokio::test]
async fn sandbox_enforces_qps_and_monthly_quota_with_dingtalk_codes() {
    let (sandbox, base) = start_sandbox().await;
    sandbox.add_app(SandboxApp {
        app_key: "k".into(),
        app_secret: "s".into(),
        corp_id: "c".into(),
    });
    sandbox.add_group(SandboxGroup {
        open_conversation_id: "cid==".into(),
        title: "t".into(),
        owner_user_id: "o".into(),
        cool_app_code: None,
        disbanded: false,
    });
    let client = reqwest::Client::new();
    let token: Value = client
        .post(format!("{base}/v1.0/oauth2/accessToken"))
        .json(&json!({"appKey": "k", "appSecret": "s"}))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = token["accessToken"].as_str().expect("token").to_string();
    let query = || {
        client
            .post(format!("{base}/v1.0/im/sceneGroups/query"))
            .header("x-acs-dingtalk-access-token", &token)
            .json(&json!({"openConversationId": "cid=="}))
            .send()
    };
    sandbox.set_limits(Limits {
        qps: Some(2),
        monthly_quota: None,
    });
    // Three calls in one second: the third is refused. A burst that straddles a
    // second boundary is tried again (bounded).
    let mut burst = Vec::new();
    for _ in 0..5 {
        burst.clear();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        for _ in 0..3 {
            let response = query().await.expect("query");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("json");
            burst.push((status, body["code"].as_str().unwrap_or("").to_string()));
        }
        if burst.iter().any(|(s, _)| *s == 403) {
            break;
        }
    }
    assert_eq!(
        burst,
        [
            (200, String::new()),
            (200, String::new()),
            (
                403,
                "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi".to_string()
            )
        ]
    );
    sandbox.set_limits(Limits {
        qps: None,
        monthly_quota: Some(sandbox.monthly_usage("k")),
    });
    let response = query().await.expect("query");
    assert_eq!(response.status().as_u16(), 403);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["code"], "Forbidden.AccessDenied.ApiCountLimitForOrg");
}

#[tokio::test]
async fn sqs_event_source_deletes_successes_and_redrives_failures() {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "t", "t", None, None, "static",
        ))
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let name = format!("src-{}", uuid::Uuid::new_v4().simple());
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{name}-dlq"))
        .send()
        .await
        .expect("dlq")
        .queue_url
        .expect("url");
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attrs")
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .expect("arn");
    let queue_url = sqs
        .create_queue()
        .queue_name(&name)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    for body in ["ok-1", "poison", "ok-2"] {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(body)
            .send()
            .await
            .expect("send");
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen_in_handler = seen.clone();
    let handler: BatchHandler = Arc::new(move |event: SqsEvent| {
        let seen = seen_in_handler.clone();
        Box::pin(async move {
            let mut response = SqsBatchResponse::default();
            for record in event.records {
                let body = record.body.unwrap_or_default();
                if let Ok(mut seen) = seen.lock() {
                    seen.push(body.clone());
                }
                if body == "poison" {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = record.message_id.unwrap_or_default();
                    response.batch_item_failures.push(failure);
                }
            }
            Ok(response)
        })
    });
    let mut source = SqsEventSource::new(sqs.clone(), &queue_url)
        .await
        .expect("source");
    source.wait_seconds = 1;
    let mut in_dlq = Vec::new();
    for _ in 0..20 {
        source.poll_once(&handler).await.expect("poll");
        let dead = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("dlq");
        in_dlq.extend(
            dead.messages
                .unwrap_or_default()
                .into_iter()
                .filter_map(|m| m.body),
        );
        if !in_dlq.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(in_dlq, ["poison"]);
    let seen = seen.lock().expect("seen").clone();
    assert_eq!(
        seen.iter().filter(|b| b.starts_with("ok-")).count(),
        2,
        "successes were deleted, not redelivered: {seen:?}"
    );
    assert_eq!(
        seen.iter().filter(|b| *b == "poison").count(),
        2,
        "poison tried maxReceiveCount times: {seen:?}"
    );
}

#[tokio::test]
async fn the_demo_escalates_a_critical_alert_within_a_minute() {
    let stack = start(settings()).await.expect("stack");
    let demo = stack.demo.clone().expect("demo");
    let sandbox = stack.sandbox.clone().expect("sandbox");
    let event = json!({"version": 1, "alert": {"key": "demo-escalation", "status": "firing",
        "severity": "critical", "title": "Checkout is down"}});
    let response = reqwest::Client::new()
        .post(url(
            &stack,
            &format!("/api/integrations/{}/alerts", demo.id),
        ))
        .bearer_auth(demo.ingest_token.clone().expect("token"))
        .json(&event)
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status().as_u16(), 202);
    let to = |user: &str| {
        sandbox
            .cards()
            .iter()
            .filter(|c| {
                c.spaces
                    .iter()
                    .any(|s| s.ends_with(&format!("IM_ROBOT.{user}")))
            })
            .count()
    };
    // Layer 1 at once; layer 2 after 30 s, through the SQS timer (moto honours delays).
    for _ in 0..300 {
        if to("bob0002") > 0 && !sandbox.dings().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(to("alice0001"), 1, "layer 1: Alice");
    // Layer 2: Bob, and whoever is on call in `demo-oncall` (Carol on even hours of
    // the Shanghai day, Bob on odd ones).
    let hour = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%H")
        .to_string()
        .parse::<u32>()
        .unwrap_or(0);
    let carol = usize::from(hour % 2 == 0);
    assert_eq!(
        (to("bob0002"), to("carol0003")),
        (1, carol),
        "layer 2: Bob and the on-call person"
    );
    let dings = sandbox.dings();
    assert_eq!(dings.len(), 1, "{dings:?}");
    assert_eq!(dings[0].remind, 3, "a phone DING");
    let mut expected = vec!["bob0002"];
    if carol == 1 {
        expected.push("carol0003");
    }
    assert_eq!(dings[0].receivers, expected);
}

#[tokio::test]
async fn the_sqs_event_source_runs_several_batches_at_once_like_lambda() {
    let sqs = aws_sdk_sqs::Client::new(&integration_tests::sdk_config().await);
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("par-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("url");
    for n in 0..40 {
        sqs.send_message()
            .queue_url(&queue_url)
            .message_body(format!("m{n}"))
            .send()
            .await
            .expect("send");
    }
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let handled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (r, m, h) = (running.clone(), most.clone(), handled.clone());
    let handler: BatchHandler = Arc::new(move |event: SqsEvent| {
        let (r, m, h) = (r.clone(), m.clone(), h.clone());
        Box::pin(async move {
            use std::sync::atomic::Ordering::SeqCst;
            let now = r.fetch_add(1, SeqCst) + 1;
            m.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(300)).await;
            h.fetch_add(event.records.len(), SeqCst);
            r.fetch_sub(1, SeqCst);
            Ok(SqsBatchResponse::default())
        })
    });
    let mut source = SqsEventSource::new(sqs.clone(), &queue_url)
        .await
        .expect("source");
    source.wait_seconds = 1;
    source.batch_size = 2;
    source.pollers = 5;
    let task = source.spawn(handler);
    for _ in 0..150 {
        if handled.load(std::sync::atomic::Ordering::SeqCst) >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
    assert_eq!(handled.load(std::sync::atomic::Ordering::SeqCst), 40);
    let most = most.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=5).contains(&most), "{most} batches at once");
}
