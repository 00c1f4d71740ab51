//! A one-invocation Lambda Runtime API emulator (for `make bench-coldstart`).
//!
//! Speaks the custom-runtime protocol a function binary's `lambda_runtime` speaks:
//! `GET /2018-06-01/runtime/invocation/next` hands out the one event (with the
//! `Lambda-Runtime-*` headers), `POST …/invocation/{id}/response`, `…/{id}/error` and
//! `/2018-06-01/runtime/init/error` end it. Later `next` calls never answer, as a
//! frozen sandbox. Every instant is recorded, so spawn → first `next` is the init
//! time and event sent → response the first invocation's duration.
//!
//! Every other request is taken for an AWS API call (point `AWS_ENDPOINT_URL` here):
//! it is counted and answered `400 ResourceNotFoundException`, an error the AWS SDK
//! does not retry, so a handler that reaches for the store fails fast instead of
//! backing off against a closed port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The request id of the one invocation.
pub const REQUEST_ID: &str = "c0ld5tart-0000-4000-8000-000000000001";
/// The X-Ray trace header handed out with the event.
pub const TRACE_ID: &str =
    "Root=1-67a8d2b0-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=0";
/// The time the function is given for the invocation (its `Lambda-Runtime-Deadline-Ms`).
pub const INVOCATION_TIMEOUT: Duration = Duration::from_secs(10);
/// The error type AWS stub calls are answered with.
pub const AWS_STUB_ERROR: &str = "ResourceNotFoundException";

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const RESPONSE: &str = "/2018-06-01/runtime/invocation/{id}/response";
const ERROR: &str = "/2018-06-01/runtime/invocation/{id}/error";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";

/// How the invocation (or the init) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeKind {
    /// `POST /runtime/invocation/{id}/response`.
    Response,
    /// `POST /runtime/invocation/{id}/error`.
    Error,
    /// `POST /runtime/init/error`.
    InitError,
}

/// The end of the invocation: how, when, and the posted body.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Response, error or init error.
    pub kind: OutcomeKind,
    /// When the post arrived.
    pub at: Instant,
    /// The posted body (the handler's response or the error document).
    pub body: Bytes,
}

/// What the emulator saw, in order.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// When the first `next` request arrived.
    pub first_next_at: Option<Instant>,
    /// When the event was handed to the runtime.
    pub event_sent_at: Option<Instant>,
    /// How the invocation ended.
    pub outcome: Option<Outcome>,
    /// AWS API calls answered by the stub.
    pub aws_calls: u32,
    /// Runtime API requests naming another request id (answered 400).
    pub bad_request_ids: u32,
}

struct Shared {
    event: Bytes,
    function_arn: String,
    record: Mutex<Record>,
    changed: Notify,
}

impl Shared {
    fn record(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change` to the record and wakes the waiters.
    fn update(&self, change: impl FnOnce(&mut Record)) {
        change(&mut self.record());
        self.changed.notify_waiters();
    }
}

/// A running emulator serving one event; the server stops when this is dropped.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl RuntimeApi {
    /// Serves `event` to the function named `function` on a free loopback port.
    ///
    /// # Errors
    /// The listener's bind error.
    pub async fn start(function: &str, event: Vec<u8>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            event: Bytes::from(event),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
            record: Mutex::new(Record::default()),
            changed: Notify::new(),
        });
        let app = Router::new()
            .route(NEXT, get(next))
            .route(RESPONSE, post(response))
            .route(ERROR, post(error))
            .route(INIT_ERROR, post(init_error))
            .fallback(aws_stub)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            // The server only ends when its task is aborted.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// The `host:port` for `AWS_LAMBDA_RUNTIME_API` (and `http://{addr}` for `AWS_ENDPOINT_URL`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of what was seen so far.
    pub fn record(&self) -> Record {
        self.shared.record().clone()
    }

    /// Waits until the invocation ends (or the init fails), at most `timeout`.
    /// Returns the record either way.
    pub async fn wait_outcome(&self, timeout: Duration) -> Record {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.shared.changed.notified();
            let record = self.record();
            if record.outcome.is_some() {
                return record;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.record();
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Milliseconds since the Unix epoch, `after` from now.
fn epoch_ms_after(after: Duration) -> u128 {
    SystemTime::now()
        .checked_add(after)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis())
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let first = {
        let mut record = shared.record();
        let first = record.first_next_at.is_none();
        if first {
            record.first_next_at = Some(Instant::now());
        }
        first
    };
    shared.changed.notify_waiters();
    if !first {
        // One invocation per sandbox: the runtime waits here until it is stopped.
        return std::future::pending().await;
    }
    let headers = [
        (
            HeaderName::from_static("lambda-runtime-aws-request-id"),
            REQUEST_ID.to_owned(),
        ),
        (
            HeaderName::from_static("lambda-runtime-deadline-ms"),
            epoch_ms_after(INVOCATION_TIMEOUT).to_string(),
        ),
        (
            HeaderName::from_static("lambda-runtime-invoked-function-arn"),
            shared.function_arn.clone(),
        ),
        (
            HeaderName::from_static("lambda-runtime-trace-id"),
            TRACE_ID.to_owned(),
        ),
        (header::CONTENT_TYPE, "application/json".to_owned()),
    ];
    let response = (headers, shared.event.clone()).into_response();
    shared.update(|r| r.event_sent_at = Some(Instant::now()));
    response
}

/// Records the end of the invocation `id` unless it names another invocation.
fn finish(shared: &Shared, id: Option<&str>, kind: OutcomeKind, body: Bytes) -> Response {
    let at = Instant::now();
    if id.is_some_and(|id| id != REQUEST_ID) {
        shared.update(|r| r.bad_request_ids += 1);
        return (StatusCode::BAD_REQUEST, "unknown request id").into_response();
    }
    shared.update(|r| {
        r.outcome.get_or_insert(Outcome { kind, at, body });
    });
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    finish(&shared, Some(&id), OutcomeKind::Response, body)
}

async fn error(State(shared): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    finish(&shared, Some(&id), OutcomeKind::Error, body)
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    finish(&shared, None, OutcomeKind::InitError, body)
}

/// Any AWS API call: counted, and refused with an error the SDK does not retry.
async fn aws_stub(State(shared): State<Arc<Shared>>) -> Response {
    shared.update(|r| r.aws_calls += 1);
    let body = format!(
        r#"{{"__type":"com.amazonaws.dynamodb.v20120810#{AWS_STUB_ERROR}","message":"bench-coldstart stub: no AWS service here"}}"#
    );
    (
        StatusCode::BAD_REQUEST,
        [
            (HeaderName::from_static("x-amzn-errortype"), AWS_STUB_ERROR),
            (header::CONTENT_TYPE, "application/x-amz-json-1.0"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
#[path = "runtime_api_tests.rs"]
mod tests;
