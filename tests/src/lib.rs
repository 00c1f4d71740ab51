//! Test harness: the real handlers, in-process, on a fresh table of a real DynamoDB
//! endpoint (moto server; `AWS_ENDPOINT_URL`, set by `make test`) and the DingTalk sandbox.

use std::sync::Arc;

pub mod alertmanager;
mod clock;
mod people;

use admin_api::AdminApi;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::config::{Credentials, Region};
use event_callback::EventCallback;
use h5_app::H5Page;
use ingest::IngestApi;
use lambda_http::{Body, Request, Response};
use local_stack::sandbox::events::{SignedEvent, sign_event};
use local_stack::sandbox::{Sandbox, SandboxApp};
use serde_json::{Value, json};
use shared::services::event_subscription::CallbackSettings;
use shared::services::notifier::{Notifier, NotifierSettings};
use shared::{Clock, Config, Services, SystemClock};

pub use clock::AheadClock;

/// Admin key used by every test stack.
pub const ADMIN_KEY: &str = "test-admin-key-0123456789abcdef";
/// Session secret of every test stack.
pub const SESSION_SECRET: &str = "test-session-secret-0123456789abcdef";
/// Public base URL of every test stack.
pub const BASE_URL: &str = "https://alerts.example.com";

/// AWS SDK configuration for the test endpoint (a moto server).
pub async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL is not set: run the tests with `make test` (it starts a moto server)"
        )
    });
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A DynamoDB client on the test endpoint.
pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

/// Starts the sandbox on a free loopback port; returns it and its base URL.
pub async fn start_sandbox() -> (Sandbox, String) {
    let sandbox = Sandbox::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sandbox");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(sandbox.clone().serve(listener));
    (sandbox, url)
}

/// The app every test integration is registered with.
pub struct TestApp {
    /// Client ID.
    pub client_id: &'static str,
    /// Client secret.
    pub client_secret: &'static str,
    /// CorpId.
    pub corp_id: &'static str,
    /// Event subscription aes_key.
    pub aes_key: &'static str,
    /// Event subscription token.
    pub token: &'static str,
}

/// The test stack's key sealing stored secrets (base64 of 32 bytes).
pub const SECRETS_KEY: &str = "c2VhbGVkLXNlY3JldHMta2V5LWZvci10ZXN0cy0wMDE=";

/// coolAppCode of the test app's cool app.
pub const COOL_APP: &str = "COOLAPP-1-TEST0000000000000001";

/// An alert event (contract v1) as the JSON body of an SQS message.
pub fn alert_body(
    integration_id: &str,
    key: &str,
    status: &str,
    occurred_at: &str,
    targets: Value,
) -> String {
    json!({"version": 1, "integration_id": integration_id,
           "alert": {"key": key, "status": status, "severity": "critical", "title": format!("{key} is failing"),
                     "description": "Error rate **12%** on `checkout`", "labels": {"service": "payments"},
                     "links": [{"title": "Runbook", "url": "https://runbooks.example.com/payments"}],
                     "source": "test", "occurred_at": occurred_at},
           "targets": targets})
    .to_string()
}

/// The default test app (keys from the published vectors' family).
pub const APP: TestApp = TestApp {
    client_id: "dingabcdefghijklmnop",
    client_secret: "sandbox-client-secret-0001",
    corp_id: "dingcorp0000000000000000000000000",
    aes_key: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
    token: "flashdutytoken1",
};

/// A running test stack.
pub struct TestStack {
    /// Shared services (store, DingTalk client).
    pub services: Services,
    /// The admin API handler.
    pub admin: AdminApi,
    /// The event callback handler.
    pub callback: EventCallback,
    /// The ingest handler.
    pub ingest: IngestApi,
    /// The H5 app handler.
    pub h5: H5Page,
    /// The notifier (fed by [`TestStack::deliver`]).
    pub notifier: Notifier,
    /// The alert queue.
    pub queue_url: String,
    /// The DingTalk sandbox.
    pub sandbox: Sandbox,
    /// Its base URL.
    pub sandbox_url: String,
    /// The DynamoDB client (for test-only inspection).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// The AWS SDK configuration.
    pub sdk: aws_config::SdkConfig,
}

impl TestStack {
    /// A stack on the system clock.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(SystemClock)).await
    }

    /// A stack on `clock`, with a fresh table and sandbox.
    pub async fn start_with_clock(clock: Arc<dyn Clock>) -> Self {
        init_tracing();
        let (sandbox, sandbox_url) = start_sandbox().await;
        sandbox.add_app(SandboxApp {
            app_key: APP.client_id.into(),
            app_secret: APP.client_secret.into(),
            corp_id: APP.corp_id.into(),
        });
        let table = format!("test-{}", uuid::Uuid::new_v4().simple());
        let sdk = sdk_config().await;
        let queue_url = aws_sdk_sqs::Client::new(&sdk)
            .create_queue()
            .queue_name(format!("alerts-{}", uuid::Uuid::new_v4().simple()))
            .send()
            .await
            .expect("create queue")
            .queue_url
            .expect("queue url");
        let config = Config::from_lookup(|name| match name {
            "TABLE_NAME" => Some(table.clone()),
            "QUEUE_URL" => Some(queue_url.clone()),
            "PUBLIC_BASE_URL" => Some(BASE_URL.into()),
            "ADMIN_API_KEY" => Some(ADMIN_KEY.into()),
            "DINGTALK_API_BASE" | "DINGTALK_OAPI_BASE" => Some(sandbox_url.clone()),
            "OUTBOUND_IPS" => Some("203.0.113.7, 203.0.113.8".into()),
            "SESSION_SECRET" => Some(SESSION_SECRET.into()),
            // Tests run webhook receivers on loopback.
            "OUTBOUND_ALLOW_PRIVATE" => Some("1".into()),
            "SECRETS_KEY" => Some(SECRETS_KEY.into()),
            _ => None,
        })
        .expect("config");
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let services = Services::new(config, &sdk, clock);
        services.store.ensure_table().await.expect("create table");
        Self {
            admin: AdminApi::new(&services),
            callback: EventCallback::new(&services, CallbackSettings::default()),
            ingest: IngestApi::new(&services),
            h5: H5Page::new(&services),
            notifier: services.notifier(NotifierSettings {
                qps_backoff: std::time::Duration::from_millis(150),
                deadline_margin: std::time::Duration::from_millis(500),
                ..NotifierSettings::default()
            }),
            queue_url,
            services,
            sandbox,
            sandbox_url,
            dynamodb,
            sdk,
        }
    }

    /// Calls the admin API with the admin key.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let headers = [("authorization", format!("Bearer {ADMIN_KEY}"))];
        let body = body.map(|b| b.to_string().into_bytes());
        read(
            self.admin
                .handle(request(method, path, &headers, body))
                .await,
        )
    }

    /// The create payload of the default test app (English: most tests match the
    /// English texts; `tests/tests/it/presentation.rs` creates one without a locale, zh-CN).
    pub fn create_payload(&self) -> Value {
        json!({
            "locale": "en-US",
            "name": "Payments on-call",
            "corp_id": APP.corp_id,
            "agent_id": "3001234567",
            "client_id": APP.client_id,
            "client_secret": APP.client_secret,
            "aes_key": APP.aes_key,
            "token": APP.token,
        })
    }

    /// Creates the default integration through the admin API; returns its id.
    pub async fn create_integration(&self) -> String {
        let (status, body) = self
            .admin("POST", "/api/integrations", Some(self.create_payload()))
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_string()
    }

    /// Signs `event` as DingTalk would for the default app (receiver = Client ID), now.
    pub fn sign(&self, event: &Value) -> SignedEvent {
        self.sign_for(event, APP.client_id, now_ms())
    }

    /// Signs `event` for `receiver` at `timestamp_ms`.
    pub fn sign_for(&self, event: &Value, receiver: &str, timestamp_ms: i64) -> SignedEvent {
        sign_event(APP.token, APP.aes_key, receiver, event, timestamp_ms).expect("sign")
    }

    /// Posts a signed event to the callback handler.
    pub async fn post_event(&self, integration_id: &str, event: &SignedEvent) -> (u16, Value) {
        self.post_callback(
            &event.path_and_query(integration_id),
            event.body.to_string().into_bytes(),
        )
        .await
    }

    /// Posts raw bytes to a callback path.
    pub async fn post_callback(&self, path_and_query: &str, body: Vec<u8>) -> (u16, Value) {
        let headers = [("content-type", "application/json".to_string())];
        read(
            self.callback
                .handle(request("POST", path_and_query, &headers, Some(body)))
                .await,
        )
    }

    /// Hands the notifier one SQS batch of `(message id, body)` records, with `budget`
    /// until the invocation's deadline.
    pub async fn deliver_with_budget(
        &self,
        records: &[(&str, String)],
        budget: std::time::Duration,
    ) -> SqsBatchResponse {
        let mut event = SqsEvent::default();
        for (id, body) in records {
            let mut message = SqsMessage::default();
            message.message_id = Some((*id).to_string());
            message.body = Some(body.clone());
            message
                .attributes
                .insert("ApproximateReceiveCount".into(), "1".into());
            event.records.push(message);
        }
        self.notifier
            .handle_batch(event, tokio::time::Instant::now() + budget)
            .await
    }

    /// Hands the notifier one batch with a 30 s budget; returns the failed message ids.
    pub async fn deliver(&self, records: &[(&str, String)]) -> Vec<String> {
        self.deliver_with_budget(records, std::time::Duration::from_secs(30))
            .await
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect()
    }

    /// The admin API's detail (with records) of the incident of alert key `key`.
    pub async fn incident_by_key(&self, integration_id: &str, key: &str) -> Value {
        let (status, list) = self
            .admin(
                "GET",
                &format!("/api/integrations/{integration_id}/incidents?key={key}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        let incident_id = list[0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no incident for {key}: {list}"))
            .to_string();
        let (status, detail) = self
            .admin("GET", &format!("/api/incidents/{incident_id}"), None)
            .await;
        assert_eq!(status, 200, "{detail}");
        detail
    }

    /// Runs the jobs the notifier queued (delayed ones included) until the queue is
    /// empty: no message waiting, delayed or in flight.
    pub async fn run_jobs(&self) {
        use aws_sdk_sqs::types::QueueAttributeName;
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                let attributes = sqs
                    .get_queue_attributes()
                    .queue_url(&self.queue_url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send()
                    .await
                    .expect("queue attributes")
                    .attributes
                    .unwrap_or_default();
                if attributes.values().all(|v| v == "0") {
                    return;
                }
                continue;
            }
            let records: Vec<(String, String)> = messages
                .iter()
                .map(|m| {
                    (
                        m.message_id.clone().unwrap_or_default(),
                        m.body.clone().unwrap_or_default(),
                    )
                })
                .collect();
            let refs: Vec<(&str, String)> = records
                .iter()
                .map(|(i, b)| (i.as_str(), b.clone()))
                .collect();
            assert!(self.deliver(&refs).await.is_empty(), "a queued job failed");
            for m in messages {
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    /// Runs the jobs that are due now or within a few seconds (card updates wait
    /// 2 s to coalesce), leaving escalation timers set for later: tests move a
    /// `FixedClock` and run the sweep instead of waiting for them.
    pub async fn run_ready_jobs(&self) {
        use aws_sdk_sqs::types::QueueAttributeName;
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        let mut idle = 0;
        loop {
            let out = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .expect("receive");
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                let attributes = sqs
                    .get_queue_attributes()
                    .queue_url(&self.queue_url)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                    .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                    .send()
                    .await
                    .expect("queue attributes")
                    .attributes
                    .unwrap_or_default();
                idle += 1;
                if attributes.values().all(|v| v == "0") && idle >= 6 {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                continue;
            }
            idle = 0;
            for m in messages {
                let id = m.message_id.clone().unwrap_or_default();
                let body = m.body.clone().unwrap_or_default();
                assert!(
                    self.deliver(&[(id.as_str(), body)]).await.is_empty(),
                    "a queued job failed"
                );
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle.unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }

    /// Installs the cool app in a sandbox group (created here) through a signed event.
    pub async fn install_chat(&self, integration_id: &str, cid: &str, title: &str) {
        self.sandbox.add_group(local_stack::sandbox::SandboxGroup {
            open_conversation_id: cid.into(),
            title: title.into(),
            owner_user_id: "owner".into(),
            cool_app_code: Some(COOL_APP.into()),
            disbanded: false,
        });
        let event = local_stack::sandbox::events::cool_app_event(
            true,
            APP.corp_id,
            cid,
            COOL_APP,
            APP.client_id,
            "installer",
            self.services.clock.now_ms(),
        );
        let signed = self.sign_for(&event, APP.client_id, self.services.clock.now_ms());
        let (status, body) = self.post_event(integration_id, &signed).await;
        assert_eq!(status, 200, "{body}");
    }

    /// Adds a member (and, with `user_id`, a sandbox person bound to it).
    pub async fn add_member(
        &self,
        integration_id: &str,
        email: &str,
        name: &str,
        user_id: Option<&str>,
    ) {
        let (status, body) = self
            .admin(
                "POST",
                &format!("/api/integrations/{integration_id}/members"),
                Some(json!({"email": email, "name": name})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        if let Some(user_id) = user_id {
            self.sandbox.add_user(local_stack::sandbox::SandboxUser {
                user_id: user_id.into(),
                union_id: format!("union-{user_id}"),
                name: name.into(),
                email: Some(email.into()),
                mobile: None,
            });
            let (status, body) = self
                .admin(
                    "PUT",
                    &format!("/api/integrations/{integration_id}/bindings/{user_id}"),
                    Some(json!({"member": email})),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    }

    /// Number of items in the table (test-only Scan).
    pub async fn item_count(&self) -> i32 {
        self.dynamodb
            .scan()
            .table_name(self.services.store.table())
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await
            .expect("scan")
            .count
    }
}

/// Routes the handlers' logs to the test output (shown for failing tests).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,aws=warn,hyper=warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Current time in Unix ms.
pub fn now_ms() -> i64 {
    SystemClock.now_ms()
}

/// Builds an API Gateway-style request.
pub fn request(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(format!("https://alerts.example.com{path_and_query}"));
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(body.map(Body::from).unwrap_or(Body::Empty))
        .expect("request")
}

/// Status and JSON body of a response (`Null` when the body is not JSON).
pub fn read(response: Response<Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes: &[u8] = match response.body() {
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    (status, serde_json::from_slice(bytes).unwrap_or(Value::Null))
}

/// The first operation record of `kind` in an incident detail (panics if none).
pub fn record_of(detail: &Value, kind: &str) -> Value {
    detail["records"]
        .as_array()
        .and_then(|records| records.iter().find(|r| r["kind"] == kind))
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} record in {}", detail["records"]))
}

/// Rewrites a sample event file (`UPDATE_EVENTS=1`) in one step: written beside the
/// build under `target/` and renamed over the old one, so the smoke test reading
/// `events/` in the same test process never sees half a file (a plain write when the
/// rename cannot be done, e.g. across file systems).
pub fn write_sample(path: &std::path::Path, text: &str) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let temp = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(format!("{}.tmp", name.unwrap_or_default()));
    let renamed = std::fs::write(&temp, text).is_ok() && std::fs::rename(&temp, path).is_ok();
    if !renamed {
        std::fs::write(path, text).expect("write sample");
    }
}
