//! The smoke test of the built function binaries (issue #19 item 7): every sample
//! event in `events/` belongs to one function and has an expected answer; each is
//! sent to a fresh process of that function's binary under the Runtime API emulator
//! ([`crate::coldstart::run_with_env`]) with a real store (moto) and the DingTalk
//! sandbox. A file in `events/` that belongs to no function is a failure.
//!
//! The driver is `tests/tests/it/binary_smoke.rs` (`make smoke`, and `make test`).

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::coldstart::{FUNCTIONS, FunctionSpec, SAMPLE_ADMIN_KEY};
use crate::runtime_api::{Outcome, OutcomeKind};

/// What a function must answer to a sample event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An HTTP answer with one of these statuses.
    Status(&'static [u16]),
    /// An HTTP answer with this status and `{"error": {"code": …}}`.
    Error(u16, &'static str),
    /// A DingTalk-robot answer: HTTP 200 with this `errcode`.
    RobotErrcode(i64),
    /// An SQS batch response without failed records.
    BatchWithoutFailures,
    /// The escalation sweep's report (`{"due", "failed"}`) with no failure.
    SweepWithoutFailures,
}

/// One sample event and who takes it.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The file in `events/`.
    pub file: &'static str,
    /// The function (binary) it belongs to.
    pub function: &'static str,
    /// The answer it must get.
    pub expect: Expect,
}

/// Every sample event, in the order they are sent. The callback samples are signed at
/// a fixed instant, so against a live clock they answer `403 stale_timestamp` (and the
/// signed robot send DingTalk's `310000 invalid timestamp`); the admin create answers
/// 201, or 409 when the sample app is registered already.
pub const CASES: &[Case] = &[
    Case {
        file: "admin-create-integration.json",
        function: "admin-api",
        expect: Expect::Status(&[201, 409]),
    },
    Case {
        file: "admin-list-chats.json",
        function: "admin-api",
        expect: Expect::Status(&[200]),
    },
    Case {
        file: "event-callback-check-url.json",
        function: "event-callback",
        expect: Expect::Error(403, "stale_timestamp"),
    },
    Case {
        file: "event-callback-cool-app-install.json",
        function: "event-callback",
        expect: Expect::Error(403, "stale_timestamp"),
    },
    Case {
        file: "event-callback-chat-update-title.json",
        function: "event-callback",
        expect: Expect::Error(403, "stale_timestamp"),
    },
    Case {
        file: "event-callback-cool-app-uninstall.json",
        function: "event-callback",
        expect: Expect::Error(403, "stale_timestamp"),
    },
    Case {
        file: "ingest-alertmanager.json",
        function: "ingest",
        expect: Expect::Status(&[202]),
    },
    Case {
        file: "ingest-grafana.json",
        function: "ingest",
        expect: Expect::Status(&[202]),
    },
    Case {
        file: "ingest-alert-event.json",
        function: "ingest",
        expect: Expect::Status(&[202]),
    },
    Case {
        file: "ingest-pagerduty-enqueue.json",
        function: "ingest",
        expect: Expect::Status(&[202]),
    },
    Case {
        file: "ingest-robot-send.json",
        function: "ingest",
        expect: Expect::RobotErrcode(310_000),
    },
    Case {
        file: "notifier-sqs-batch.json",
        function: "notifier",
        expect: Expect::BatchWithoutFailures,
    },
    Case {
        file: "notifier-escalation-sweep.json",
        function: "notifier",
        expect: Expect::SweepWithoutFailures,
    },
];

/// The H5 page has no sample event: it gets the coldstart bench's page request
/// ([`crate::coldstart::EventSource::H5Page`]) and must answer 200.
pub const H5_PAGE_STATUS: u16 = 200;

/// The cases of the files in `events_dir`, in [`CASES`] order.
///
/// # Errors
/// The directory cannot be read, a file belongs to no function, or a case's file
/// is missing (both listed).
pub fn assign(events_dir: &Path) -> Result<Vec<Case>, String> {
    let entries =
        std::fs::read_dir(events_dir).map_err(|e| format!("read {}: {e}", events_dir.display()))?;
    let mut files = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("read {}: {e}", events_dir.display()))?;
        files.insert(entry.file_name().to_string_lossy().into_owned());
    }
    let unassigned: Vec<&String> = files
        .iter()
        .filter(|f| !CASES.iter().any(|c| c.file == f.as_str()))
        .collect();
    let missing: Vec<&str> = CASES
        .iter()
        .map(|c| c.file)
        .filter(|f| !files.contains(*f))
        .collect();
    if !unassigned.is_empty() || !missing.is_empty() {
        return Err(format!(
            "events/ files that belong to no function (add them to local::smoke::CASES): {unassigned:?}; \
             cases whose file is missing: {missing:?}"
        ));
    }
    Ok(CASES.to_vec())
}

/// The function spec of `name`.
pub fn spec(name: &str) -> Option<&'static FunctionSpec> {
    FUNCTIONS.iter().find(|f| f.name == name)
}

/// Where the binaries find the store, the queue and DingTalk.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// `AWS_ENDPOINT_URL` (the moto server).
    pub aws: String,
    /// `TABLE_NAME`.
    pub table: String,
    /// `QUEUE_URL`.
    pub queue_url: String,
    /// `DINGTALK_API_BASE` and `DINGTALK_OAPI_BASE` (the sandbox).
    pub dingtalk: String,
}

/// The coldstart environment of `spec` with its endpoints replaced by `endpoints`.
pub fn environment(spec: &FunctionSpec, api: &str, endpoints: &Endpoints) -> Vec<(String, String)> {
    let replaced = [
        ("AWS_ENDPOINT_URL", endpoints.aws.as_str()),
        ("TABLE_NAME", endpoints.table.as_str()),
        ("QUEUE_URL", endpoints.queue_url.as_str()),
        ("DINGTALK_API_BASE", endpoints.dingtalk.as_str()),
        ("DINGTALK_OAPI_BASE", endpoints.dingtalk.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("ADMIN_API_KEY", SAMPLE_ADMIN_KEY),
    ];
    let mut env: Vec<(String, String)> = crate::coldstart::environment(spec, api)
        .into_iter()
        .filter(|(k, _)| k != "AWS_SESSION_TOKEN" && !replaced.iter().any(|(r, _)| r == k))
        .collect();
    env.extend(
        replaced
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// A short description of an outcome, for failure messages.
pub fn describe(outcome: Option<&Outcome>) -> String {
    match outcome {
        None => "no answer".to_owned(),
        Some(o) => format!("{:?} {}", o.kind, String::from_utf8_lossy(&o.body)),
    }
}

/// Checks an invocation's outcome against `expect`.
///
/// # Errors
/// What differs.
pub fn check(expect: Expect, outcome: Option<&Outcome>) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{why}: {}", describe(outcome)));
    let Some(outcome) = outcome.filter(|o| o.kind == OutcomeKind::Response) else {
        return fail("not a response");
    };
    let answer: Value = serde_json::from_slice(&outcome.body).unwrap_or(Value::Null);
    let status = answer.get("statusCode").and_then(Value::as_u64);
    let body: Value = answer
        .get("body")
        .and_then(Value::as_str)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    let ok = match expect {
        Expect::Status(allowed) => {
            status.is_some_and(|s| allowed.iter().any(|a| u64::from(*a) == s))
        }
        Expect::Error(want, code) => {
            status == Some(u64::from(want)) && body["error"]["code"].as_str() == Some(code)
        }
        Expect::RobotErrcode(code) => status == Some(200) && body["errcode"].as_i64() == Some(code),
        Expect::BatchWithoutFailures => {
            status.is_none()
                && answer
                    .get("batchItemFailures")
                    .and_then(Value::as_array)
                    .is_some_and(Vec::is_empty)
        }
        Expect::SweepWithoutFailures => {
            status.is_none()
                && answer.get("due").is_some_and(Value::is_u64)
                && answer.get("failed").and_then(Value::as_u64) == Some(0)
        }
    };
    if ok {
        Ok(())
    } else {
        fail(&format!("expected {expect:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use std::time::Instant;

    fn response(body: &str) -> Outcome {
        Outcome {
            kind: OutcomeKind::Response,
            at: Instant::now(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn every_sample_event_belongs_to_a_function() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
        let cases = assign(&dir).expect("assigned");
        assert_eq!(cases.len(), CASES.len());
        for case in cases {
            assert!(spec(case.function).is_some(), "{}", case.function);
        }
    }

    #[test]
    fn an_unassigned_file_fails() {
        let dir = std::env::temp_dir().join(format!("smoke-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for case in CASES {
            std::fs::write(dir.join(case.file), "{}").expect("write");
        }
        assert!(assign(&dir).is_ok());
        std::fs::write(dir.join("h5-new-page.json"), "{}").expect("write");
        let err = assign(&dir).expect_err("unassigned");
        assert!(err.contains("h5-new-page.json"), "{err}");
        std::fs::remove_dir_all(&dir).expect("clean");
    }

    #[test]
    fn answers_are_checked() {
        let stale = r#"{"statusCode":403,"body":"{\"error\":{\"code\":\"stale_timestamp\"}}"}"#;
        let stale = response(stale);
        assert!(check(Expect::Error(403, "stale_timestamp"), Some(&stale)).is_ok());
        assert!(check(Expect::Error(403, "bad_signature"), Some(&stale)).is_err());
        assert!(
            check(
                Expect::Status(&[201, 409]),
                Some(&response(r#"{"statusCode":409}"#))
            )
            .is_ok()
        );
        assert!(
            check(
                Expect::Status(&[202]),
                Some(&response(r#"{"statusCode":503}"#))
            )
            .is_err()
        );
        let robot = response(r#"{"statusCode":200,"body":"{\"errcode\":310000}"}"#);
        assert!(check(Expect::RobotErrcode(310_000), Some(&robot)).is_ok());
        let batch = Expect::BatchWithoutFailures;
        assert!(check(batch, Some(&response(r#"{"batchItemFailures":[]}"#))).is_ok());
        let failed = response(r#"{"batchItemFailures":[{"itemIdentifier":"m1"}]}"#);
        assert!(check(batch, Some(&failed)).is_err());
        assert!(check(batch, None).is_err());
    }

    #[test]
    fn the_environment_points_at_the_given_endpoints() {
        let endpoints = Endpoints {
            aws: "http://127.0.0.1:5000".into(),
            table: "t".into(),
            queue_url: "http://127.0.0.1:5000/123/q".into(),
            dingtalk: "http://127.0.0.1:6000".into(),
        };
        let spec = spec("notifier").expect("notifier");
        let env = environment(spec, "127.0.0.1:9001", &endpoints);
        let get = |name: &str| {
            env.iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("AWS_ENDPOINT_URL"), ["http://127.0.0.1:5000"]);
        assert_eq!(get("DINGTALK_OAPI_BASE"), ["http://127.0.0.1:6000"]);
        assert_eq!(get("AWS_LAMBDA_RUNTIME_API"), ["127.0.0.1:9001"]);
        assert!(get("AWS_SESSION_TOKEN").is_empty());
    }
}
