//! Cold starts of the built function binaries under the Runtime API emulator
//! ([`crate::runtime_api`]), for `make bench-coldstart` (issue #13).
//!
//! Each run spawns a fresh process with the environment Lambda gives it (and the
//! template's variables, with dummy values) and measures the init time (spawn → first
//! `next`) and the first invocation (event sent → `/response` or `/error`).
//!
//! Init needs no network: `SECRETS_KMS_KEY_ID` is left unset (the functions then warn
//! that integration secrets are stored unsealed). Deployed, it is set and init also
//! reads the sealed data key from DynamoDB and opens it with KMS: two round trips this
//! bench does not take. `AWS_ENDPOINT_URL` points at the emulator's AWS stub, which
//! refuses every call at once; the events need the store, so their answers are errors
//! (the AWS calls column counts the refused calls).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::process::Command;

use crate::runtime_api::{Outcome, OutcomeKind, Record, RuntimeApi};

/// The admin key the sample admin events carry.
pub const SAMPLE_ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
/// The integration the sample events address.
pub const SAMPLE_ID: &str = "7f3c2a1e9b8d4c6f8a0b1c2d3e4f5a6b";
/// How long a run may take before it counts as hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// Where a function's event comes from.
#[derive(Debug, Clone, Copy)]
pub enum EventSource {
    /// A sample event in `events/`.
    File(&'static str),
    /// `GET /dingtalk/{id}/app` (there is no sample event for the H5 page): the admin
    /// sample with its path, route and method changed.
    H5Page,
}

/// A deployed function, as template.yaml declares it.
#[derive(Debug, Clone, Copy)]
pub struct FunctionSpec {
    /// The binary (and function) name.
    pub name: &'static str,
    /// The event of its first invocation.
    pub event: EventSource,
    /// Variables only this function has.
    pub extra_env: &'static [(&'static str, &'static str)],
}

/// The five functions (Globals MemorySize 256 for all).
pub const FUNCTIONS: &[FunctionSpec] = &[
    FunctionSpec {
        name: "event-callback",
        event: EventSource::File("event-callback-check-url.json"),
        extra_env: &[],
    },
    FunctionSpec {
        name: "admin-api",
        event: EventSource::File("admin-list-chats.json"),
        extra_env: &[("ADMIN_API_KEY", SAMPLE_ADMIN_KEY)],
    },
    FunctionSpec {
        name: "ingest",
        event: EventSource::File("ingest-alertmanager.json"),
        extra_env: &[],
    },
    FunctionSpec {
        name: "notifier",
        event: EventSource::File("notifier-sqs-batch.json"),
        extra_env: &[],
    },
    FunctionSpec {
        name: "h5-app",
        event: EventSource::H5Page,
        extra_env: &[],
    },
];

/// Why a cold start could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A sample event is not JSON.
    #[error("event {path}: {source}")]
    Event {
        /// The event file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The function never asked for its event nor reported an init error.
    #[error("{function}: {problem} (log: {log})")]
    NoInit {
        /// The function.
        function: String,
        /// What happened instead.
        problem: String,
        /// Its output.
        log: PathBuf,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ColdStartError {
    let what = what.into();
    move |source| ColdStartError::Io { what, source }
}

/// The invocation event of `spec`, read from `events_dir`.
///
/// # Errors
/// The file cannot be read or is not JSON.
pub fn event_bytes(spec: &FunctionSpec, events_dir: &Path) -> Result<Vec<u8>, ColdStartError> {
    let file = match spec.event {
        EventSource::File(file) => file,
        EventSource::H5Page => "admin-list-chats.json",
    };
    let path = events_dir.join(file);
    let bytes = std::fs::read(&path).map_err(io_error(format!("read {}", path.display())))?;
    let EventSource::H5Page = spec.event else {
        return Ok(bytes);
    };
    let mut event: Value =
        serde_json::from_slice(&bytes).map_err(|source| ColdStartError::Event { path, source })?;
    let path = format!("/dingtalk/{SAMPLE_ID}/app");
    event["rawPath"] = path.clone().into();
    event["routeKey"] = "GET /dingtalk/{id}/app".into();
    event["pathParameters"] = serde_json::json!({ "id": SAMPLE_ID });
    if let Some(headers) = event["headers"].as_object_mut() {
        headers.remove("authorization");
        headers.insert("user-agent".into(), "Mozilla/5.0 DingTalk/7.6.0".into());
    }
    let context = &mut event["requestContext"];
    context["routeKey"] = "GET /dingtalk/{id}/app".into();
    context["http"]["method"] = "GET".into();
    context["http"]["path"] = path.into();
    Ok(event.to_string().into_bytes())
}

/// The environment of `spec`'s process: Lambda's own variables, then template.yaml's
/// with dummy values (AWS and DingTalk endpoints at the emulator's stub).
pub fn environment(spec: &FunctionSpec, api: &str) -> Vec<(String, String)> {
    let stub = format!("http://{api}");
    let lambda = [
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", spec.name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{}", spec.name),
        ),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/28/[$LATEST]coldstart".to_owned(),
        ),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "ASIACOLDSTARTBENCH01".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "coldstart-bench-not-a-secret".to_owned(),
        ),
        ("AWS_SESSION_TOKEN", "coldstart-bench-session".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("LAMBDA_TASK_ROOT", "/var/task".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ];
    let app = [
        ("AWS_ENDPOINT_URL", stub.clone()),
        ("TABLE_NAME", "coldstart-table".to_owned()),
        ("QUEUE_URL", format!("{stub}/123456789012/coldstart-alerts")),
        ("PUBLIC_BASE_URL", "https://incidents.example".to_owned()),
        (
            "SESSION_SECRET",
            "coldstart-bench-session-secret-0123456789".to_owned(),
        ),
        ("DINGTALK_API_BASE", stub.clone()),
        ("DINGTALK_OAPI_BASE", stub),
        ("RUST_LOG", "info".to_owned()),
    ];
    lambda
        .into_iter()
        .chain(app)
        .chain(spec.extra_env.iter().map(|(k, v)| (*k, (*v).to_owned())))
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
}

/// One cold start.
#[derive(Debug, Clone)]
pub struct Run {
    /// Spawn → first `next`.
    pub init: Duration,
    /// Event sent → `/response` or `/error` (None when it never ended).
    pub first_invocation: Option<Duration>,
    /// How the first invocation ended, e.g. `response 500` or `error Runtime.X`.
    pub outcome: String,
    /// AWS calls the stub refused during the run.
    pub aws_calls: u32,
    /// The posted outcome (response, error or init error) with its body.
    pub response: Option<Outcome>,
}

/// Spawns `binary` as `spec` against a fresh emulator and measures one cold start.
/// The process's output goes to `log`.
///
/// # Errors
/// The event or the process could not be set up, or the process never finished init.
pub async fn run_once(
    spec: &FunctionSpec,
    binary: &Path,
    event: Vec<u8>,
    log: &Path,
) -> Result<Run, ColdStartError> {
    run_with_env(spec, binary, event, log, |api| environment(spec, api)).await
}

/// As [`run_once`], with the process environment made by `env` from the emulator's
/// `host:port` (the smoke test points AWS and DingTalk at real endpoints with it).
///
/// # Errors
/// As [`run_once`].
pub async fn run_with_env(
    spec: &FunctionSpec,
    binary: &Path,
    event: Vec<u8>,
    log: &Path,
    env: impl FnOnce(&str) -> Vec<(String, String)>,
) -> Result<Run, ColdStartError> {
    let api = RuntimeApi::start(spec.name, event)
        .await
        .map_err(io_error("start the runtime API emulator"))?;
    let output =
        std::fs::File::create(log).map_err(io_error(format!("create {}", log.display())))?;
    let errors = output
        .try_clone()
        .map_err(io_error(format!("open {}", log.display())))?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(env(&api.addr().to_string()))
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .kill_on_drop(true);
    let spawned_at = Instant::now();
    let mut child = command
        .spawn()
        .map_err(io_error(format!("spawn {}", binary.display())))?;
    let exited = tokio::select! {
        _ = api.wait_outcome(RUN_TIMEOUT) => None,
        status = child.wait() => Some(status),
    };
    let record = api.record();
    let _ = child.start_kill();
    let _ = child.wait().await;
    let no_init = |problem: String| ColdStartError::NoInit {
        function: spec.name.to_owned(),
        problem,
        log: log.to_owned(),
    };
    let Some(first_next_at) = record.first_next_at else {
        return Err(no_init(match (&record.outcome, exited) {
            (Some(o), _) if o.kind == OutcomeKind::InitError => {
                format!("init error {}", String::from_utf8_lossy(&o.body))
            }
            (_, Some(status)) => format!("exited during init ({status:?})"),
            _ => format!("no `next` within {RUN_TIMEOUT:?}"),
        }));
    };
    Ok(Run {
        init: first_next_at.saturating_duration_since(spawned_at),
        first_invocation: first_invocation(&record),
        outcome: match (&record.outcome, exited) {
            (None, Some(status)) => format!("exited ({status:?})"),
            _ => outcome_label(&record),
        },
        aws_calls: record.aws_calls,
        response: record.outcome,
    })
}

fn first_invocation(record: &Record) -> Option<Duration> {
    let sent = record.event_sent_at?;
    let outcome = record.outcome.as_ref()?;
    Some(outcome.at.saturating_duration_since(sent))
}

/// `response 404` (an HTTP function's status), `response, failed records: 2` (an SQS
/// batch's), `response`, `error <errorType>` or `none`.
fn outcome_label(record: &Record) -> String {
    let Some(outcome) = &record.outcome else {
        return "none".to_owned();
    };
    let body: Value = serde_json::from_slice(&outcome.body).unwrap_or(Value::Null);
    match outcome.kind {
        OutcomeKind::Response => {
            let failures = body.get("batchItemFailures").and_then(Value::as_array);
            match (body.get("statusCode").and_then(Value::as_u64), failures) {
                (Some(status), _) => format!("response {status}"),
                (None, Some(failed)) => format!("response, failed records: {}", failed.len()),
                (None, None) => "response".to_owned(),
            }
        }
        OutcomeKind::Error => match body.get("errorType").and_then(Value::as_str) {
            Some(kind) => format!("error {kind}"),
            None => "error".to_owned(),
        },
        OutcomeKind::InitError => "init error".to_owned(),
    }
}

/// A binary's size as built, and after `strip` (None when `strip` is unavailable or
/// does not know the binary's architecture).
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Bytes on disk.
    pub bytes: u64,
    /// Bytes after `strip --strip-all`.
    pub stripped: Option<u64>,
}

/// Measures `binary`, stripping a copy in `scratch`.
///
/// # Errors
/// `binary` cannot be read.
pub fn sizes(binary: &Path, scratch: &Path) -> Result<Sizes, ColdStartError> {
    let bytes = std::fs::metadata(binary)
        .map_err(io_error(format!("stat {}", binary.display())))?
        .len();
    let copy = scratch.join("stripped.bin");
    let stripped = std::process::Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&copy)
        .arg(binary)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .filter(std::process::ExitStatus::success)
        .and_then(|_| std::fs::metadata(&copy).ok())
        .map(|m| m.len());
    let _ = std::fs::remove_file(&copy);
    Ok(Sizes { bytes, stripped })
}

/// The middle value (the upper one of an even count); None when empty.
pub fn median(values: &[Duration]) -> Option<Duration> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied()
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// Megabytes (10^6 bytes) with two decimals.
pub fn mb(bytes: u64) -> String {
    // Binaries are far below 2^52 bytes, so the conversion is exact.
    let mb = bytes as f64 / 1e6;
    format!("{mb:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
    }

    #[test]
    fn every_event_is_json_and_the_h5_event_is_a_page_request() {
        for spec in FUNCTIONS {
            let bytes = event_bytes(spec, &events_dir()).expect("event");
            let event: Value = serde_json::from_slice(&bytes).expect("json");
            if let EventSource::H5Page = spec.event {
                assert_eq!(event["rawPath"], format!("/dingtalk/{SAMPLE_ID}/app"));
                assert_eq!(event["requestContext"]["http"]["method"], "GET");
                assert!(event["headers"].get("authorization").is_none());
            }
        }
    }

    #[test]
    fn environment_has_what_lambda_runtime_and_config_need() {
        let env = environment(&FUNCTIONS[1], "127.0.0.1:9001");
        let get = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), Some("127.0.0.1:9001"));
        assert_eq!(get("AWS_ENDPOINT_URL"), Some("http://127.0.0.1:9001"));
        assert_eq!(get("ADMIN_API_KEY"), Some(SAMPLE_ADMIN_KEY));
        for name in [
            "AWS_LAMBDA_FUNCTION_NAME",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_FUNCTION_VERSION",
            "TABLE_NAME",
        ] {
            assert!(get(name).is_some(), "{name}");
        }
        let config = shared::Config::from_lookup(|name| get(name).map(str::to_owned));
        assert!(config.is_ok(), "{config:?}");
        assert!(
            get("SECRETS_KMS_KEY_ID").is_none(),
            "init must not need KMS"
        );
    }

    #[test]
    fn median_and_formats() {
        let d = Duration::from_micros;
        assert_eq!(median(&[d(3), d(1), d(2)]), Some(d(2)));
        assert_eq!(median(&[]), None);
        assert_eq!(ms(Duration::from_micros(1500)), "1.50");
        assert_eq!(mb(7_654_321), "7.65");
    }
}
