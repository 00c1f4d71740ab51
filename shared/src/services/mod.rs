//! Builds the long-lived dependencies once per Lambda instance (or local stack):
//! the store, the DingTalk client and the clock, and from them the services.

pub mod card_callback;
pub mod console_session;
pub mod directory;
pub mod dlq_admin;
pub mod escalation_admin;
pub mod event_subscription;
pub mod h5_app;
pub mod h5_incidents;
pub mod incident_actions;
pub mod incident_reader;
pub mod ingest;
pub mod ingest_pagerduty;
pub mod ingest_robot;
mod ingest_shape;
pub mod integration_center;
pub mod notifier;
pub mod oncall_runner;
pub mod preflight;
pub mod replay;
pub mod schedule_admin;
pub mod setup_checklist;
pub mod template_preview;

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError, aws_sdk_config};
use crate::dingtalk::DingTalkClient;
use crate::infra::outbound::OutboundPolicy;
use crate::infra::queue::JobQueue;
use crate::infra::secrets::{SecretBox, SecretsError};
use crate::services::directory::MemberDirectory;
use crate::services::event_subscription::{CallbackSettings, EventSubscription};
use crate::services::incident_reader::IncidentReader;
use crate::services::integration_center::IntegrationCenter;
use crate::services::notifier::{Notifier, NotifierParts, NotifierSettings, NotifierStores};
use crate::store::Store;

/// Why the services could not start (the function fails its cold start).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The secrets data key could not be had.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// The dependencies every handler is built from.
#[derive(Clone)]
pub struct Services {
    /// Configuration.
    pub config: Config,
    /// The DynamoDB store.
    pub store: Store,
    /// The SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The DingTalk client.
    pub dingtalk: DingTalkClient,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The admin API key (given, or read from SSM on first use).
    pub admin_key: Arc<crate::infra::admin_key::AdminKey>,
}

impl Services {
    /// Reads the environment and builds AWS and HTTP clients.
    pub async fn from_env() -> Result<Self, StartError> {
        let config = Config::from_env()?;
        let sdk = aws_sdk_config().await;
        let secrets = match &config.secrets_kms_key_id {
            Some(key_id) => {
                let store = Store::new(
                    aws_sdk_dynamodb::Client::new(&sdk),
                    config.table_name.clone(),
                );
                let kms = aws_sdk_kms::Client::new(&sdk);
                Some(crate::infra::secrets::kms_data_key(&kms, &store, key_id).await?)
            }
            None => None,
        };
        Ok(Self::build(config, &sdk, Arc::new(SystemClock), secrets))
    }

    /// Builds the services from explicit parts (tests, local stack); stored secrets
    /// are sealed with `SECRETS_KEY` when it is set.
    pub fn new(config: Config, sdk: &aws_config::SdkConfig, clock: Arc<dyn Clock>) -> Self {
        let secrets = config
            .secrets_key
            .as_deref()
            .and_then(|key| SecretBox::from_base64(key).ok());
        Self::build(config, sdk, clock, secrets)
    }

    /// As [`Services::new`], with every DynamoDB request counted by `counter`
    /// (benches and tests measure store work per alert with it).
    pub fn counted(
        config: Config,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
        counter: crate::infra::store_requests::StoreRequestCounter,
    ) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(sdk)
                .interceptor(counter)
                .build(),
        );
        let secrets = config
            .secrets_key
            .as_deref()
            .and_then(|key| SecretBox::from_base64(key).ok());
        Self::assemble(config, sdk, dynamodb, clock, secrets)
    }

    fn build(
        config: Config,
        sdk: &aws_config::SdkConfig,
        clock: Arc<dyn Clock>,
        secrets: Option<SecretBox>,
    ) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        Self::assemble(config, sdk, dynamodb, clock, secrets)
    }

    fn assemble(
        config: Config,
        sdk: &aws_config::SdkConfig,
        dynamodb: aws_sdk_dynamodb::Client,
        clock: Arc<dyn Clock>,
        secrets: Option<SecretBox>,
    ) -> Self {
        let mut store = Store::new(dynamodb, config.table_name.clone());
        if let Some(secrets) = secrets {
            store = store.with_secrets(secrets);
        } else {
            tracing::warn!(
                "no SECRETS_KEY or SECRETS_KMS_KEY_ID: integration secrets are stored unsealed"
            );
        }
        let dingtalk = DingTalkClient::new(
            DingTalkClient::http_client(),
            &config.dingtalk_api_base,
            &config.dingtalk_oapi_base,
            store.clone(),
            clock.clone(),
        )
        .with_governor(crate::infra::governor::Governor::new(
            Arc::new(store.clone()),
            clock.clone(),
            Arc::new(crate::infra::metrics::EmfStdout),
        ));
        let admin_key = Arc::new(crate::infra::admin_key::AdminKey::from_setting(
            config.admin_api_key.as_deref(),
            sdk,
        ));
        Self {
            config,
            store,
            sqs: aws_sdk_sqs::Client::new(sdk),
            dingtalk,
            clock,
            admin_key,
        }
    }

    /// The outbound URL policy (`OUTBOUND_ALLOW_PRIVATE`).
    pub fn outbound_policy(&self) -> OutboundPolicy {
        OutboundPolicy {
            allow_private: self.config.outbound_allow_private,
        }
    }

    /// The alert and job queue (`QUEUE_URL`).
    pub fn job_queue(&self) -> JobQueue {
        JobQueue::new(self.sqs.clone(), self.config.queue_url.clone())
    }

    /// The event subscription service.
    pub fn event_subscription(&self, settings: CallbackSettings) -> EventSubscription {
        EventSubscription::new(
            self.store.clone(),
            self.dingtalk.clone(),
            self.clock.clone(),
            settings,
        )
    }

    /// The ingest service (queues onto `QUEUE_URL`).
    pub fn ingest(&self) -> crate::services::ingest::Ingest {
        crate::services::ingest::Ingest::new(self.store.clone(), self.job_queue())
    }

    /// Incident actions (H5 app, card buttons).
    pub fn incident_actions(&self) -> crate::services::incident_actions::IncidentActions {
        crate::services::incident_actions::IncidentActions::new(
            self.store.clone(),
            self.clock.clone(),
            self.job_queue(),
        )
        .with_outbound(self.outbound_policy())
    }

    /// The card callback service.
    pub fn card_callback(&self) -> crate::services::card_callback::CardCallback {
        crate::services::card_callback::CardCallback::new(
            self.store.clone(),
            self.clock.clone(),
            self.incident_actions(),
            self.config.public_base_url.clone(),
        )
    }

    /// The H5 app service.
    pub fn h5_app(&self) -> crate::services::h5_app::H5App {
        crate::services::h5_app::H5App::new(
            self.store.clone(),
            self.dingtalk.clone(),
            self.clock.clone(),
            self.incident_actions(),
            self.config
                .session_secret
                .as_deref()
                .map(crate::infra::session::SessionKey::new),
        )
    }

    /// The member directory.
    pub fn member_directory(&self) -> MemberDirectory {
        MemberDirectory::new(
            self.store.clone(),
            self.clock.clone(),
            self.incident_actions(),
        )
    }

    /// Escalation policies and routes (admin API).
    pub fn escalation_admin(&self) -> crate::services::escalation_admin::EscalationAdmin {
        crate::services::escalation_admin::EscalationAdmin::new(
            self.store.clone(),
            self.clock.clone(),
        )
    }

    /// On-call schedules (admin API).
    pub fn schedule_admin(&self) -> crate::services::schedule_admin::ScheduleAdmin {
        crate::services::schedule_admin::ScheduleAdmin::new(
            self.store.clone(),
            self.clock.clone(),
            Some(self.job_queue()),
        )
    }

    /// Template previews (admin API).
    pub fn template_preview(&self) -> crate::services::template_preview::TemplatePreview {
        crate::services::template_preview::TemplatePreview::new(
            self.store.clone(),
            self.clock.clone(),
            self.config.public_base_url.clone(),
        )
    }

    /// The pre-flight check (admin API).
    pub fn preflight(&self) -> crate::services::preflight::Preflight {
        crate::services::preflight::Preflight::new(self.store.clone(), self.clock.clone())
    }

    /// The dead-letter queue (admin API): `DEAD_LETTER_QUEUE_URL`, drained into
    /// `QUEUE_URL`.
    pub fn dlq_admin(&self) -> crate::services::dlq_admin::DlqAdmin {
        let dlq = Some(self.config.dead_letter_queue_url.clone())
            .filter(|url| !url.is_empty())
            .map(|url| crate::infra::queue::DeadLetterQueue::new(self.sqs.clone(), url));
        crate::services::dlq_admin::DlqAdmin::new(dlq, self.job_queue(), self.store.clone())
    }

    /// The incident reader (admin API).
    pub fn incident_reader(&self) -> IncidentReader {
        IncidentReader::new(self.store.clone(), self.clock.clone())
    }

    /// The notifier.
    pub fn notifier(&self, settings: NotifierSettings) -> Notifier {
        let parts = NotifierParts {
            dingtalk: self.dingtalk.clone(),
            clock: self.clock.clone(),
            metrics: Arc::new(crate::infra::metrics::EmfStdout),
            public_base_url: self.config.public_base_url.clone(),
            jobs: Some(self.job_queue()),
            outbound: self.outbound_policy(),
        };
        Notifier::new(NotifierStores::on(self.store.clone()), parts, settings)
            .with_oncall(self.oncall_runner())
    }

    /// Handoff messages and daily pre-flight reports (the notifier's sweep and timers).
    pub fn oncall_runner(&self) -> crate::services::oncall_runner::OnCallRunner {
        crate::services::oncall_runner::OnCallRunner::new(
            self.store.clone(),
            self.dingtalk.clone(),
            self.clock.clone(),
            Some(self.job_queue()),
            self.config.public_base_url.clone(),
        )
    }

    /// A notifier on other stores (the bench's in-memory phase): its own governor
    /// counts on `stores.counters`; only the token cache stays in the table.
    pub fn notifier_on(&self, stores: NotifierStores, settings: NotifierSettings) -> Notifier {
        let governor = crate::infra::governor::Governor::new(
            stores.counters.clone(),
            self.clock.clone(),
            Arc::new(crate::infra::metrics::EmfStdout),
        );
        let parts = NotifierParts {
            dingtalk: self.dingtalk.clone().with_governor(governor),
            clock: self.clock.clone(),
            metrics: Arc::new(crate::infra::metrics::EmfStdout),
            public_base_url: self.config.public_base_url.clone(),
            jobs: None,
            outbound: self.outbound_policy(),
        };
        Notifier::new(stores, parts, settings)
    }

    /// Admin console sessions (cookie + CSRF token, ARCHITECTURE.md §10).
    pub fn console_sessions(&self) -> console_session::ConsoleSessions {
        console_session::ConsoleSessions::new(
            self.admin_key.clone(),
            self.config.session_secret.as_deref(),
            self.clock.clone(),
        )
        .with_sign_outs(self.store.clone())
    }

    /// The setup checklist of the admin console.
    pub fn setup_checklist(&self) -> setup_checklist::SetupChecklist {
        setup_checklist::SetupChecklist::new(
            self.store.clone(),
            self.dingtalk.clone(),
            self.config.outbound_ips.clone(),
        )
    }

    /// The integration-center service.
    pub fn integration_center(&self) -> IntegrationCenter {
        IntegrationCenter::new(
            self.store.clone(),
            self.dingtalk.clone(),
            self.clock.clone(),
            self.config.outbound_ips.clone(),
            self.outbound_policy(),
        )
    }
}
