//! The local stack behind `make dev`: a moto server (unless `AWS_ENDPOINT_URL` is
//! set), the table and queues, every HTTP route of template.yaml served by the real
//! handlers, and (unless `DINGTALK_API_BASE`/`DINGTALK_OAPI_BASE` are set) the
//! DingTalk sandbox with a demo integration wired to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;
use axum::Router;
use serde_json::json;
use shared::services::event_subscription::CallbackSettings;
use shared::{Config, Services, SystemClock};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::alertmanager::LocalAlertmanager;
use crate::gateway::{Functions, router};
use crate::sandbox::{Limits, Sandbox, SandboxApp, SandboxGroup, SandboxUser, Subscription, page};
use crate::sqs_source::{BatchHandler, SqsEventSource};
use shared::services::notifier::{Notifier, NotifierSettings};

/// Settings of the local stack, from the environment of ARCHITECTURE.md §6.1.
#[derive(Clone, Default)]
pub struct DevSettings {
    /// `PORT` (default 3000; 0 picks a free port).
    pub port: u16,
    /// `TABLE_NAME` (default `dingtalk-incidents-local`).
    pub table_name: String,
    /// `QUEUE_URL`; its last path segment names the queue (default `dingtalk-alerts-local`).
    pub queue_url: Option<String>,
    /// `PUBLIC_BASE_URL` (default `http://127.0.0.1:$PORT`).
    pub public_base_url: Option<String>,
    /// `ADMIN_API_KEY` (generated when unset).
    pub admin_api_key: Option<String>,
    /// `DINGTALK_API_BASE` (sandbox when unset).
    pub dingtalk_api_base: Option<String>,
    /// `DINGTALK_OAPI_BASE` (sandbox when unset).
    pub dingtalk_oapi_base: Option<String>,
    /// `AWS_ENDPOINT_URL` (a moto server is started when unset).
    pub aws_endpoint_url: Option<String>,
    /// `OUTBOUND_IPS`.
    pub outbound_ips: Option<String>,
    /// `SESSION_SECRET` (generated when unset).
    pub session_secret: Option<String>,
    /// `SECRETS_KEY`: seals stored integration secrets (generated for each run when
    /// unset; set it when `AWS_ENDPOINT_URL` points at a store that outlives the run).
    pub secrets_key: Option<String>,
    /// `OUTBOUND_ALLOW_PRIVATE`: let webhooks reach loopback/private addresses (off by default).
    pub outbound_allow_private: Option<String>,
    /// `DINGTALK_JSAPI_URL` (the sandbox's stand-in when the sandbox is used).
    pub jsapi_url: Option<String>,
    /// `SANDBOX_QPS` / `SANDBOX_MONTHLY_QUOTA`: limits the sandbox enforces
    /// (defaults: the Standard edition's 20 QPS and 10,000 calls a month).
    pub sandbox_limits: Limits,
    /// `SQS_POLLERS`: batches the local SQS event source handles at once (default 5,
    /// like Lambda's poller).
    pub sqs_pollers: usize,
    /// `SWEEP_SECS`: how often the escalation sweep runs (default 60, as the
    /// template's EventBridge schedule; 0 turns it off).
    pub sweep_secs: u64,
}

impl DevSettings {
    /// Reads the settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, DevError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &'static str| -> Result<Option<u64>, DevError> {
            get(name)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| DevError::Setting(name, "must be a whole number"))
                })
                .transpose()
        };
        let port = number("PORT")?.unwrap_or(3000);
        Ok(Self {
            port: u16::try_from(port)
                .map_err(|_| DevError::Setting("PORT", "must be a port number"))?,
            table_name: get("TABLE_NAME").unwrap_or_else(|| "dingtalk-incidents-local".into()),
            queue_url: get("QUEUE_URL"),
            public_base_url: get("PUBLIC_BASE_URL"),
            admin_api_key: get("ADMIN_API_KEY"),
            dingtalk_api_base: get("DINGTALK_API_BASE"),
            dingtalk_oapi_base: get("DINGTALK_OAPI_BASE"),
            aws_endpoint_url: get("AWS_ENDPOINT_URL"),
            outbound_ips: get("OUTBOUND_IPS"),
            session_secret: get("SESSION_SECRET"),
            secrets_key: get("SECRETS_KEY"),
            outbound_allow_private: get("OUTBOUND_ALLOW_PRIVATE"),
            jsapi_url: get("DINGTALK_JSAPI_URL"),
            sandbox_limits: Limits {
                qps: Some(
                    number("SANDBOX_QPS")?.map_or(20, |q| u32::try_from(q).unwrap_or(u32::MAX)),
                ),
                monthly_quota: Some(number("SANDBOX_MONTHLY_QUOTA")?.unwrap_or(10_000)),
            },
            sqs_pollers: usize::try_from(number("SQS_POLLERS")?.unwrap_or(5)).unwrap_or(5),
            sweep_secs: number("SWEEP_SECS")?.unwrap_or(60),
        })
    }

    /// Whether the built-in sandbox stands in for DingTalk.
    pub fn uses_sandbox(&self) -> bool {
        self.dingtalk_api_base.is_none() && self.dingtalk_oapi_base.is_none()
    }

    /// The queue's name: the last path segment of `QUEUE_URL`.
    pub fn queue_name(&self) -> String {
        self.queue_url
            .as_deref()
            .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
            .filter(|s| !s.is_empty())
            .unwrap_or("dingtalk-alerts-local")
            .to_string()
    }
}

/// Why the local stack could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// A setting is malformed.
    #[error("{0}: {1}")]
    Setting(&'static str, &'static str),
    /// The moto server could not be started.
    #[error("moto server: {0}")]
    Moto(String),
    /// AWS resources could not be created.
    #[error("AWS: {0}")]
    Aws(String),
    /// The port could not be bound.
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    /// The service configuration is invalid.
    #[error(transparent)]
    Config(#[from] shared::config::ConfigError),
}

/// The demo integration created for a first `make dev`.
#[derive(Debug, Clone)]
pub struct DemoIntegration {
    /// Its id.
    pub id: String,
    /// Its ingest token (shown once).
    pub ingest_token: Option<String>,
}

/// A running local stack.
pub struct RunningStack {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Base of user-facing URLs.
    pub public_base_url: String,
    /// The admin key, and whether it was generated.
    pub admin_api_key: (String, bool),
    /// The AWS endpoint in use.
    pub aws_endpoint_url: String,
    /// The moto server this stack started, if any (killed on drop).
    pub moto: Option<Child>,
    /// The sandbox, when it stands in for DingTalk.
    pub sandbox: Option<Sandbox>,
    /// The demo integration, when one was set up.
    pub demo: Option<DemoIntegration>,
    /// The queue URL in use.
    pub queue_url: String,
    /// The table in use.
    pub table_name: String,
    /// The HTTP server.
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The notifier's SQS poller.
    pub notifier: tokio::task::JoinHandle<()>,
    /// The escalation sweep loop (the template's once-a-minute schedule).
    pub sweep: Option<tokio::task::JoinHandle<()>>,
    /// The silence demo's Alertmanager (stopped on drop).
    pub alertmanager: Option<LocalAlertmanager>,
}

impl Drop for RunningStack {
    fn drop(&mut self) {
        self.server.abort();
        self.notifier.abort();
        if let Some(sweep) = &self.sweep {
            sweep.abort();
        }
    }
}

/// Runs the escalation sweep every `every`, as EventBridge does in production.
fn spawn_sweep(notifier: Notifier, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            ticks.tick().await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            match notifier.sweep(deadline).await {
                Ok(report) if report.due > 0 => {
                    tracing::info!(due = report.due, failed = report.failed, "escalation sweep")
                }
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "escalation sweep failed"),
            }
        }
    })
}

/// The demo app the sandbox registers (its secrets are the sandbox's own).
pub const DEMO_APP_KEY: &str = "dingsandboxdemoapp01";
const DEMO_APP_SECRET: &str = "sandbox-demo-app-secret-0001";
const DEMO_CORP_ID: &str = "dingsandboxcorp000000000000000001";
const DEMO_AES_KEY: &str = "SandboxDemoAesKey0123456789abcdefghijklmnop";
const DEMO_TOKEN: &str = "sandboxdemotoken";
/// Card template id of the demo (the sandbox accepts any template).
pub const DEMO_CARD_TEMPLATE: &str = "sandbox-incident-card.schema";

fn free_port() -> Result<u16, DevError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn moto_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("moto_server")
    }
}

/// The repo's atomic moto wrapper (`scripts/moto_server.py`) under the venv's
/// Python, unless `MOTO_SERVER` names a server or the venv is missing.
fn moto_command() -> Command {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let wrapper = root.join("scripts/moto_server.py");
    if std::env::var_os("MOTO_SERVER").is_none() && python.exists() && wrapper.exists() {
        let mut command = Command::new(python);
        command.arg(wrapper);
        command
    } else {
        Command::new(moto_binary())
    }
}

async fn start_moto() -> Result<(Child, String), DevError> {
    let port = free_port()?;
    let child = moto_command()
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            DevError::Moto(format!(
                "{e} (run scripts/bootstrap-tools.sh, or set AWS_ENDPOINT_URL)"
            ))
        })?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    for _ in 0..150 {
        if http.get(format!("{url}/moto-api/")).send().await.is_ok() {
            return Ok((child, url));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(DevError::Moto("did not answer within 15 s".into()))
}

async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).endpoint_url(endpoint);
    if std::env::var_os("AWS_REGION").is_none() && std::env::var_os("AWS_DEFAULT_REGION").is_none()
    {
        loader = loader.region(Region::new("us-east-1"));
    }
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        loader = loader.credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "local-stack",
        ));
    }
    loader.load().await
}

/// Creates the queue and its DLQ (redrive after 5 receives) unless they exist;
/// returns the queue's URL and the DLQ's.
async fn ensure_queues(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
) -> Result<(String, String), DevError> {
    let aws = |e: &dyn std::fmt::Display| DevError::Aws(e.to_string());
    let dlq_name = format!("{name}-dlq");
    let dlq_url = sqs
        .create_queue()
        .queue_name(&dlq_name)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "1209600")
        .send()
        .await
        .map_err(|e| aws(&aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .queue_url
        .unwrap_or_default();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| aws(&aws_sdk_sqs::error::DisplayErrorContext(e)))?
        .attributes
        .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
        .unwrap_or_default();
    let redrive = json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}).to_string();
    let queue = sqs
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, "180")
        .attributes(QueueAttributeName::RedrivePolicy, redrive)
        .send()
        .await;
    let queue_url = match queue {
        Ok(out) => out.queue_url.unwrap_or_default(),
        // An existing queue with other attributes: use it as it is.
        Err(_) => sqs
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| aws(&aws_sdk_sqs::error::DisplayErrorContext(e)))
            .map(|o| o.queue_url.unwrap_or_default())?,
    };
    Ok((queue_url, dlq_url))
}

fn demo_sandbox(limits: Limits) -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.set_limits(limits);
    sandbox.add_app(SandboxApp {
        app_key: DEMO_APP_KEY.into(),
        app_secret: DEMO_APP_SECRET.into(),
        corp_id: DEMO_CORP_ID.into(),
    });
    for (cid, title) in [
        (
            "cidPaymentsOncall000000001==",
            "支付告警群 Payments on-call",
        ),
        ("cidDatabaseDuty00000000002==", "数据库值班群 Database duty"),
        ("cidSreWarRoom0000000000003==", "SRE 指挥群 War room"),
    ] {
        sandbox.add_group(SandboxGroup {
            open_conversation_id: cid.into(),
            title: title.into(),
            owner_user_id: "manager0001".into(),
            cool_app_code: None,
            disbanded: false,
        });
    }
    for (id, name, email, mobile) in [
        ("alice0001", "Alice 王", "alice@example.com", "13800000001"),
        ("bob0002", "Bob 李", "bob@example.com", "13800000002"),
        ("carol0003", "Carol 张", "carol@example.com", "13800000003"),
        ("dave0004", "Dave 赵", "", "13800000004"),
    ] {
        sandbox.add_user(SandboxUser {
            user_id: id.into(),
            union_id: format!("union-{id}"),
            name: name.into(),
            email: (!email.is_empty()).then(|| email.to_string()),
            mobile: Some(mobile.into()),
        });
    }
    sandbox
}

/// Starts the whole stack. The returned value keeps it running; dropping it stops
/// the server and the moto server it started.
pub async fn start(settings: DevSettings) -> Result<RunningStack, DevError> {
    let listener = TcpListener::bind(("127.0.0.1", settings.port)).await?;
    let addr = listener.local_addr()?;
    let local_base = format!("http://{addr}");
    let public_base_url = settings
        .public_base_url
        .clone()
        .unwrap_or_else(|| local_base.clone());

    let (moto, endpoint) = match &settings.aws_endpoint_url {
        Some(url) => (None, url.clone()),
        None => {
            let (child, url) = start_moto().await?;
            (Some(child), url)
        }
    };
    let sdk = sdk_config(&endpoint).await;
    let (queue_url, dlq_url) =
        ensure_queues(&aws_sdk_sqs::Client::new(&sdk), &settings.queue_name()).await?;

    let (admin_key, generated) = admin_key(&settings)?;
    // The silence demo's Alertmanager (when Debian's package is installed) listens on
    // loopback, so the outbound policy allows private addresses unless set otherwise.
    let alertmanager = demo_alertmanager(&settings).await;
    let urls = StackUrls {
        local_base: &local_base,
        public_base: &public_base_url,
        queue: &queue_url,
        dead_letter_queue: &dlq_url,
    };
    let config = product_config(&settings, &urls, &admin_key, alertmanager.is_some())?;
    let services = Services::new(config, &sdk, Arc::new(SystemClock));
    services
        .store
        .ensure_table()
        .await
        .map_err(|e| DevError::Aws(e.to_string()))?;
    let functions = Functions {
        event_callback: event_callback::EventCallback::new(&services, CallbackSettings::default()),
        admin_api: admin_api::AdminApi::new(&services),
        ingest: ingest::IngestApi::new(&services),
        h5_app: h5_app::H5Page::new(&services),
    };
    let (notifier_task, sweep) = spawn_notifier(&services, &sdk, &queue_url, &settings).await?;

    let mut app: Router = router(functions);
    let (sandbox, demo) = if settings.uses_sandbox() {
        let sandbox = demo_sandbox(settings.sandbox_limits);
        let demo = wire_demo_integration(&services, &sandbox, &local_base).await?;
        connect_alertmanager(&services, &demo.id, alertmanager.as_ref(), &local_base).await?;
        app = app
            .nest("/sandbox/dingtalk", sandbox.api_router())
            .nest("/sandbox", page::router(sandbox.clone()))
            .route(
                "/",
                axum::routing::get(|| async { axum::response::Redirect::to("/sandbox") }),
            );
        (Some(sandbox), Some(demo))
    } else {
        (None, None)
    };
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    if let Some(demo) = &demo {
        register_demo_callback(&services, &demo.id, &local_base).await?;
    }
    Ok(RunningStack {
        addr,
        public_base_url,
        admin_api_key: (admin_key, generated),
        aws_endpoint_url: endpoint,
        moto,
        sandbox,
        demo,
        queue_url,
        table_name: settings.table_name.clone(),
        server,
        notifier: notifier_task,
        sweep,
        alertmanager,
    })
}

/// The admin key in use: the setting (at least 24 characters, or `ssm:…`), else a
/// generated one (`true`).
fn admin_key(settings: &DevSettings) -> Result<(String, bool), DevError> {
    match &settings.admin_api_key {
        Some(key)
            if !key.starts_with("ssm:")
                && key.chars().count() < shared::infra::admin_key::MIN_ADMIN_KEY_CHARS =>
        {
            Err(DevError::Setting(
                "ADMIN_API_KEY",
                "must be at least 24 characters (or ssm:<parameter name>)",
            ))
        }
        Some(key) => Ok((key.clone(), false)),
        None => Ok((format!("dev-{}", uuid::Uuid::new_v4().simple()), true)),
    }
}

/// Where the running stack's parts are.
struct StackUrls<'a> {
    local_base: &'a str,
    public_base: &'a str,
    queue: &'a str,
    dead_letter_queue: &'a str,
}

/// The functions' configuration, as the template's environment would give it:
/// the sandbox stands in for DingTalk unless the settings name another base.
fn product_config(
    settings: &DevSettings,
    urls: &StackUrls<'_>,
    admin_key: &str,
    local_alertmanager: bool,
) -> Result<Config, DevError> {
    let sandbox_base = format!("{}/sandbox/dingtalk", urls.local_base);
    let session_secret = settings
        .session_secret
        .clone()
        .unwrap_or_else(|| format!("dev-session-{}", uuid::Uuid::new_v4().simple()));
    let secrets_key = match &settings.secrets_key {
        Some(key) => key.clone(),
        None => shared::infra::secrets::SecretBox::generate_key()
            .map_err(|_| DevError::Setting("SECRETS_KEY", "no randomness to generate one"))?,
    };
    let allow_private = settings
        .outbound_allow_private
        .clone()
        .or_else(|| local_alertmanager.then(|| "1".to_string()));
    Ok(Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some(settings.table_name.clone()),
        "SECRETS_KEY" => Some(secrets_key.clone()),
        "OUTBOUND_ALLOW_PRIVATE" => allow_private.clone(),
        "QUEUE_URL" => Some(urls.queue.to_string()),
        "DEAD_LETTER_QUEUE_URL" => Some(urls.dead_letter_queue.to_string()),
        "PUBLIC_BASE_URL" => Some(urls.public_base.to_string()),
        "ADMIN_API_KEY" => Some(admin_key.to_string()),
        "DINGTALK_API_BASE" => settings
            .dingtalk_api_base
            .clone()
            .or_else(|| Some(sandbox_base.clone())),
        "DINGTALK_OAPI_BASE" => settings
            .dingtalk_oapi_base
            .clone()
            .or_else(|| Some(sandbox_base.clone())),
        "OUTBOUND_IPS" => settings.outbound_ips.clone(),
        "SESSION_SECRET" => Some(session_secret.clone()),
        "DINGTALK_JSAPI_URL" => settings.jsapi_url.clone().or_else(|| {
            settings
                .uses_sandbox()
                .then(|| "/sandbox/jsapi.js".to_string())
        }),
        _ => None,
    })?)
}

/// The notifier, fed from the queue like the SQS event source mapping does, and
/// the escalation sweep (when `sweep_secs` > 0).
async fn spawn_notifier(
    services: &Services,
    sdk: &aws_config::SdkConfig,
    queue_url: &str,
    settings: &DevSettings,
) -> Result<
    (
        tokio::task::JoinHandle<()>,
        Option<tokio::task::JoinHandle<()>>,
    ),
    DevError,
> {
    let notifier = services.notifier(NotifierSettings::default());
    let sweep = (settings.sweep_secs > 0)
        .then(|| spawn_sweep(notifier.clone(), Duration::from_secs(settings.sweep_secs)));
    let handler: BatchHandler = Arc::new(move |event| {
        let notifier = notifier.clone();
        Box::pin(async move {
            // Lambda's timeout for the notifier (template.yaml): 30 s.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            Ok(notifier.handle_batch(event, deadline).await)
        })
    });
    let mut source = SqsEventSource::new(aws_sdk_sqs::Client::new(sdk), queue_url)
        .await
        .map_err(DevError::Aws)?;
    source.pollers = settings.sqs_pollers;
    Ok((source.spawn(handler), sweep))
}

/// Registers the demo's card callback route with the sandbox, like verify in the
/// admin API; it needs the server (which serves the sandbox's API) to be up.
async fn register_demo_callback(
    services: &Services,
    integration_id: &str,
    local_base: &str,
) -> Result<(), DevError> {
    let verified = services
        .integration_center()
        .verify(integration_id, local_base)
        .await
        .map_err(|e| DevError::Aws(e.to_string()))?;
    let registered = verified["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["check"] == "card_callback" && c["ok"] == true);
    if !registered {
        tracing::warn!(%verified, "the demo's card callback route could not be registered");
    }
    Ok(())
}

/// Starts the silence demo's Alertmanager when the sandbox stands in for DingTalk
/// and Debian's package is installed (`make dev` installs it).
async fn demo_alertmanager(settings: &DevSettings) -> Option<LocalAlertmanager> {
    if !settings.uses_sandbox() {
        return None;
    }
    match LocalAlertmanager::start(None).await {
        Ok(am) => Some(am),
        Err(err) => {
            tracing::warn!(error = %err, "no Alertmanager: the demo's Silence buttons stay hidden");
            None
        }
    }
}

/// Points the demo integration's `alertmanager` at this run's Alertmanager.
async fn connect_alertmanager(
    services: &Services,
    integration_id: &str,
    alertmanager: Option<&LocalAlertmanager>,
    local_base: &str,
) -> Result<(), DevError> {
    let setting = alertmanager.map_or(serde_json::Value::Null, |am| json!({"url": am.url}));
    services
        .integration_center()
        .update(
            integration_id,
            &json!({"alertmanager": setting}),
            local_base,
        )
        .await
        .map(|_| ())
        .map_err(|e| DevError::Aws(e.to_string()))
}

/// Creates the demo integration (first run) or finds it (existing table), and points
/// the sandbox app's event subscription at it.
async fn wire_demo_integration(
    services: &Services,
    sandbox: &Sandbox,
    local_base: &str,
) -> Result<DemoIntegration, DevError> {
    let aws = |e: &dyn std::fmt::Display| DevError::Aws(e.to_string());
    let existing = services
        .store
        .list_integrations()
        .await
        .map_err(|e| aws(&e))?
        .into_iter()
        .find(|i| i.client_id == DEMO_APP_KEY);
    let demo = match existing {
        Some(integration) => DemoIntegration {
            id: integration.id,
            ingest_token: None,
        },
        None => {
            let body = json!({
                "name": "Sandbox demo", "corp_id": DEMO_CORP_ID, "agent_id": "3000000001",
                "client_id": DEMO_APP_KEY, "client_secret": DEMO_APP_SECRET,
                "aes_key": DEMO_AES_KEY, "token": DEMO_TOKEN,
                "card_template_id": DEMO_CARD_TEMPLATE,
            });
            let view = services
                .integration_center()
                .create(&body, local_base)
                .await
                .map_err(|e| aws(&e))?;
            DemoIntegration {
                id: view.id,
                ingest_token: view.ingest_token,
            }
        }
    };
    // The demo's people are on-call members, already associated, so card buttons
    // work at once; the card callback route is registered like verify does.
    let directory = services.member_directory();
    // Dave has no email on his profile and no binding: he shows the link-code flow.
    for user in sandbox.users() {
        let Some(email) = user.email.clone() else {
            continue;
        };
        let member = json!({"email": email, "name": user.name, "licensed": true});
        directory
            .put_member(&demo.id, &member)
            .await
            .map_err(|e| aws(&e))?;
        directory
            .bind(&demo.id, &user.user_id, &json!({"member": email}))
            .await
            .map_err(|e| aws(&e))?;
    }
    sandbox.subscribe(
        DEMO_APP_KEY,
        Subscription {
            url: format!("{local_base}/dingtalk/{}/events", demo.id),
            token: DEMO_TOKEN.into(),
            aes_key: DEMO_AES_KEY.into(),
        },
    );
    demo_escalation(services, &demo.id).await?;
    Ok(demo)
}

/// The demo's two-layer escalation policy, routed from every critical alert, so a
/// newcomer sees an escalation within a minute: Alice first; 30 s later Bob and
/// Carol, with a phone DING; once more from layer 2 after 60 s.
async fn demo_escalation(services: &Services, integration_id: &str) -> Result<(), DevError> {
    let aws = |e: &dyn std::fmt::Display| DevError::Aws(e.to_string());
    let admin = services.escalation_admin();
    if !admin
        .list(integration_id)
        .await
        .map_err(|e| aws(&e))?
        .is_empty()
    {
        return Ok(());
    }
    let oncall = demo_schedule(services, integration_id).await?;
    let policy = json!({"name": "demo-escalation", "layers": [
        {"targets": {"members": ["alice@example.com"]}, "escalate_after_secs": 30},
        {"targets": {"members": ["bob@example.com"], "schedules": [oncall]}, "escalate_after_secs": 60,
         "ding": {"remind_type": "call", "severities": ["critical"], "after_secs": 0}}],
        "repeat": {"times": 1, "from_layer": 1}, "ack_timeout_secs": 1800});
    admin
        .create(integration_id, &policy)
        .await
        .map_err(|e| aws(&e))?;
    let routes = json!([{"name": "critical alerts", "matchers": [], "severities": ["critical"],
                         "policy": "demo-escalation"}]);
    admin
        .put_routes(integration_id, &routes)
        .await
        .map_err(|e| aws(&e))?;
    Ok(())
}

/// The demo's on-call schedule: Carol and Bob take turns every hour (from today's
/// midnight, Shanghai time), with a 1:1 notice 5 minutes before each handoff, so
/// `make dev` shows a handoff within the hour. Returns its id.
async fn demo_schedule(services: &Services, integration_id: &str) -> Result<String, DevError> {
    let aws = |e: &dyn std::fmt::Display| DevError::Aws(e.to_string());
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let schedule = json!({"name": "demo-oncall", "timezone": "Asia/Shanghai",
        "rotations": [{"members": ["carol@example.com", "bob@example.com"],
                       "start": format!("{today}T00:00"), "shift": {"hours": 1}}],
        "handoff_notice_mins": 5});
    let created = services
        .schedule_admin()
        .create(integration_id, &schedule)
        .await
        .map_err(|e| aws(&e))?;
    Ok(created["id"].as_str().unwrap_or_default().to_string())
}
