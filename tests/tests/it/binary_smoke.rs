//! Smoke test of the real binaries (issue #19 item 7): each function's built binary
//! runs under the Lambda Runtime API emulator, with the moto store of `make test` and
//! the DingTalk sandbox, and answers every sample event in `events/` that belongs to
//! it as `local_stack::smoke::CASES` expects. A file in `events/` that belongs to no
//! function fails the test. The event-callback samples were signed in the past (the
//! binary refuses them as stale); each is then signed again now, with the sample
//! integration's token and aes_key, and the binary must process it (200 with
//! DingTalk's encrypted `success`, and the group's title and status stored).
//!
//! The binaries are the debug builds next to this test (`target/debug`), or those in
//! `SMOKE_BIN_DIR`; `make smoke` and `make test` build them first:
//! `cargo build --locked --workspace --bins --tests`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use integration_tests::{APP, sdk_config, start_sandbox};
use local_stack::coldstart::{EventSource, FunctionSpec, SAMPLE_ID, event_bytes, run_with_env};
use local_stack::sandbox::{Sandbox, SandboxApp, SandboxGroup};
use local_stack::smoke::{self, Endpoints, H5_PAGE_STATUS};
use serde_json::Value;
use shared::domain::ChatStatus;
use shared::domain::integration::{IntegrationChanges, ingest_token_digest};
use shared::infra::crypto::CallbackCrypto;
use shared::store::ChatInstall;
use shared::{Config, Services, SystemClock};

/// The ingest token of the sample integration (see tests/tests/sample_events.rs).
const SAMPLE_INGEST_TOKEN: &str = "dti_sample_ingest_token_for_events_only";
/// The group the sample events name.
const CID: &str = "cidSampleOps0123456789ab==";
const COOL_APP: &str = "COOLAPP-1-10189CA5D6A1212DF0ED000B";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `SMOKE_BIN_DIR`, else the profile directory this test was built into.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("SMOKE_BIN_DIR") {
        return dir.into();
    }
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/it-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("profile directory")
        .to_path_buf()
}

/// The sample create request's body: the sample integration's settings.
fn sample_create_payload() -> Value {
    let path = root().join("events/admin-create-integration.json");
    let event: Value = serde_json::from_slice(&std::fs::read(path).expect("sample")).expect("JSON");
    serde_json::from_str(event["body"].as_str().expect("body")).expect("body JSON")
}

/// A fresh table and queue on moto with the sample integration in it, and the
/// sandbox with the sample app and group.
async fn endpoints() -> (Endpoints, Sandbox) {
    let aws = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run with `make smoke` or `make test`");
    let (sandbox, dingtalk) = start_sandbox().await;
    sandbox.add_app(SandboxApp {
        app_key: APP.client_id.into(),
        app_secret: APP.client_secret.into(),
        corp_id: APP.corp_id.into(),
    });
    sandbox.add_group(SandboxGroup {
        open_conversation_id: CID.into(),
        title: "支付告警群".into(),
        owner_user_id: "owner".into(),
        cool_app_code: Some(COOL_APP.into()),
        disbanded: false,
    });
    let sdk = sdk_config().await;
    let table = format!("smoke-{}", uuid::Uuid::new_v4().simple());
    let queue_url = aws_sdk_sqs::Client::new(&sdk)
        .create_queue()
        .queue_name(format!("smoke-{}", uuid::Uuid::new_v4().simple()))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    // No SECRETS_KEY: the binaries (no SECRETS_KMS_KEY_ID) read secrets unsealed.
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some(table.clone()),
        "QUEUE_URL" => Some(queue_url.clone()),
        "DINGTALK_API_BASE" | "DINGTALK_OAPI_BASE" => Some(dingtalk.clone()),
        _ => None,
    })
    .expect("config");
    let services = Services::new(config, &sdk, Arc::new(SystemClock));
    services.store.ensure_table().await.expect("create table");
    let integration = IntegrationChanges::for_create(&sample_create_payload())
        .and_then(|c| {
            c.create(
                SAMPLE_ID.into(),
                ingest_token_digest(SAMPLE_INGEST_TOKEN),
                "2026-11-18T20:00:00.000Z",
            )
        })
        .expect("integration");
    services
        .store
        .insert_integration(&integration)
        .await
        .expect("insert");
    // The group installed the cool app (the install sample itself is stale by now).
    services
        .store
        .record_chat_status(&ChatInstall {
            integration_id: SAMPLE_ID.into(),
            open_conversation_id: CID.into(),
            status: ChatStatus::Installed,
            cool_app_code: Some(COOL_APP.into()),
            robot_code: Some(APP.client_id.into()),
            operator: None,
            event_ms: 1_795_000_397_000,
            now: "2026-11-18T20:13:17.000Z".into(),
        })
        .await
        .expect("install the group");
    let endpoints = Endpoints {
        aws,
        table,
        queue_url,
        dingtalk,
    };
    (endpoints, sandbox)
}

/// Runs `spec`'s binary once on `event`; Ok with a one-line report, or what failed.
async fn invoke(
    spec: &FunctionSpec,
    event: Vec<u8>,
    label: &str,
    endpoints: &Endpoints,
    check: impl FnOnce(Option<&local_stack::runtime_api::Outcome>) -> Result<(), String>,
) -> Result<String, String> {
    let binary = bin_dir().join(spec.name);
    if !binary.is_file() {
        return Err(format!(
            "{} is not built: cargo build --locked --workspace --bins --tests",
            binary.display()
        ));
    }
    let logs = bin_dir().join("smoke");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    let log = logs.join(format!("{label}.log"));
    let started = Instant::now();
    let run = run_with_env(spec, &binary, event, &log, |api| {
        smoke::environment(spec, api, endpoints)
    })
    .await
    .map_err(|e| format!("{label}: {e}"))?;
    check(run.response.as_ref())
        .map_err(|e| format!("{label} ({}): {e} (log: {})", spec.name, log.display()))?;
    Ok(format!(
        "{label:<40} {:<14} {:<28} {:>6} ms",
        spec.name,
        run.outcome,
        started.elapsed().as_millis()
    ))
}

/// `sample` (an event-callback request) encrypted and signed again at the current
/// time, as DingTalk would send the same event now.
fn signed_now(sample: &[u8]) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(sample).expect("sample JSON");
    let crypto = CallbackCrypto::new(APP.token, APP.aes_key).expect("crypto");
    let query = &event["queryStringParameters"];
    let (timestamp, nonce) = (
        query["timestamp"].as_str().expect("timestamp"),
        query["nonce"].as_str().expect("nonce").to_string(),
    );
    let body: Value =
        serde_json::from_str(event["body"].as_str().expect("body")).expect("body JSON");
    let encrypted = body["encrypt"].as_str().expect("encrypt");
    let signature = query["signature"].as_str().expect("signature");
    crypto
        .verify_signature(signature, timestamp, &nonce, encrypted)
        .expect("the sample's signature");
    let plain = crypto
        .decrypt(encrypted, &[APP.client_id])
        .expect("the sample decrypts")
        .message;
    let encrypt = crypto.encrypt(&plain, APP.client_id).expect("encrypt");
    let now_ms = chrono::Utc::now().timestamp_millis();
    let timestamp = now_ms.to_string();
    let signature = crypto.signature(&timestamp, &nonce, &encrypt);
    event["rawQueryString"] =
        format!("signature={signature}&timestamp={timestamp}&nonce={nonce}").into();
    event["queryStringParameters"] =
        serde_json::json!({"signature": signature, "timestamp": timestamp, "nonce": nonce});
    event["body"] = serde_json::json!({ "encrypt": encrypt }).to_string().into();
    event["requestContext"]["timeEpoch"] = now_ms.into();
    serde_json::to_vec(&event).expect("event JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_gets_its_answer_from_the_real_binary() {
    let events_dir = root().join("events");
    let cases = smoke::assign(&events_dir).unwrap_or_else(|e| panic!("{e}"));
    let (endpoints, sandbox) = endpoints().await;
    let mut failures = Vec::new();
    for case in &cases {
        let spec = smoke::spec(case.function).expect("a known function");
        let event = std::fs::read(events_dir.join(case.file)).expect("read sample");
        let label = case.file.trim_end_matches(".json");
        match invoke(spec, event, label, &endpoints, |o| {
            smoke::check(case.expect, o)
        })
        .await
        {
            Ok(line) => println!("{line}"),
            Err(e) => failures.push(e),
        }
    }
    // The event-callback samples signed again now: processed by the real binary.
    let callback = smoke::spec("event-callback").expect("event-callback");
    for case in cases.iter().filter(|c| c.function == "event-callback") {
        let sample = std::fs::read(events_dir.join(case.file)).expect("read sample");
        let label = format!("{} (signed now)", case.file.trim_end_matches(".json"));
        let answered = |o: Option<&local_stack::runtime_api::Outcome>| {
            smoke::check(smoke::Expect::Status(&[200]), o)?;
            let body = smoke::describe(o);
            body.contains("encrypt")
                .then_some(())
                .ok_or_else(|| format!("no encrypted answer: {body}"))
        };
        match invoke(callback, signed_now(&sample), &label, &endpoints, answered).await {
            Ok(line) => println!("{line}"),
            Err(e) => failures.push(e),
        }
    }
    // h5-app has no sample event: its page request must answer 200.
    let h5 = smoke::spec("h5-app").expect("h5-app");
    assert!(matches!(h5.event, EventSource::H5Page));
    let event = event_bytes(h5, &events_dir).expect("page event");
    let page = |o: Option<&local_stack::runtime_api::Outcome>| {
        smoke::check(smoke::Expect::Status(&[H5_PAGE_STATUS]), o)
    };
    match invoke(h5, event, "h5-page", &endpoints, page).await {
        Ok(line) => println!("{line}"),
        Err(e) => failures.push(e),
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The notifier's batch reached DingTalk: one message in the sample group.
    let messages = sandbox.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    // The four accepted ingest samples are on the queue.
    let attribute = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    let queued = aws_sdk_sqs::Client::new(&sdk_config().await)
        .get_queue_attributes()
        .queue_url(&endpoints.queue_url)
        .attribute_names(attribute.clone())
        .send()
        .await
        .expect("queue attributes");
    let queued = queued
        .attributes()
        .and_then(|a| a.get(&attribute))
        .and_then(|n| n.parse::<u32>().ok());
    assert!(queued.is_some_and(|n| n >= 4), "queued: {queued:?}");
    // The re-signed events reached the store: the group was renamed, then uninstalled.
    let store = Services::new(
        Config::from_lookup(|name| (name == "TABLE_NAME").then(|| endpoints.table.clone()))
            .expect("config"),
        &sdk_config().await,
        Arc::new(SystemClock),
    )
    .store;
    let chat = store
        .get_chat(SAMPLE_ID, CID)
        .await
        .expect("get chat")
        .expect("the sample group");
    assert_eq!(chat.status, ChatStatus::Uninstalled, "{chat:?}");
}
