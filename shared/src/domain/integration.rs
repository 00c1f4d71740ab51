//! The integration: one team's DingTalk internal app registered with us, its
//! validation, and the view of it that APIs may show (never the secrets).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::integration_fields::{
    aes_key, agent_id, callback_token, edition, identifier, locale, optional, small_number,
    targets, templates, text, timezone, webhook_url, whole_number,
};
use super::locale::{Locale, MessageTemplates};
use super::secret::Secret;
use super::silence::{AlertmanagerConfig, AlertmanagerView};
use super::validation::ValidationError;

/// DingTalk edition, which sets the default call budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    /// 10,000 calls a month, 20 QPS.
    Standard,
    /// 500,000 calls a month, 40 QPS.
    Professional,
    /// 5,500,000 calls a month, 60 QPS.
    Enterprise,
}

impl Edition {
    pub(super) fn parse(text: &str) -> Option<Self> {
        match text {
            "standard" => Some(Self::Standard),
            "professional" => Some(Self::Professional),
            "enterprise" => Some(Self::Enterprise),
            _ => None,
        }
    }

    /// Default per-app QPS of the edition.
    pub fn default_qps(self) -> u32 {
        match self {
            Self::Standard => 20,
            Self::Professional => 40,
            Self::Enterprise => 60,
        }
    }

    /// Default monthly call quota of the edition.
    pub fn default_monthly_quota(self) -> u64 {
        match self {
            Self::Standard => 10_000,
            Self::Professional => 500_000,
            Self::Enterprise => 5_500_000,
        }
    }
}

/// Where an alert goes when it names no targets itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// Group chats by openConversationId (or exact title).
    #[serde(default)]
    pub chats: Vec<String>,
    /// Members (on-call accounts) by email.
    #[serde(default)]
    pub members: Vec<String>,
    /// People by DingTalk userId.
    #[serde(default)]
    pub dingtalk_user_ids: Vec<String>,
}

impl Targets {
    /// Adds a DingTalk user an alert names: as their member when bound (so they are
    /// @mentioned, messaged and assigned), else by userId (the notifier records that
    /// they are not associated); nobody twice.
    pub fn add_person(&mut self, user_id: &str, bound_member: Option<String>) {
        let (list, entry) = match bound_member {
            Some(member) => (&mut self.members, member),
            None => (&mut self.dingtalk_user_ids, user_id.to_string()),
        };
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
}

/// A registered DingTalk internal app, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    /// Our id, used in every URL.
    pub id: String,
    /// Display name.
    pub name: String,
    /// DingTalk CorpId of the organisation.
    pub corp_id: String,
    /// AgentId of the app.
    pub agent_id: String,
    /// Client ID (AppKey) of the app; also the robot code and the callback receiver id.
    pub client_id: String,
    /// Client secret (AppSecret).
    pub client_secret: Secret,
    /// Event subscription encryption key (43 characters).
    pub aes_key: Secret,
    /// Event subscription signature token.
    pub token: Secret,
    /// DingTalk edition.
    pub edition: Edition,
    /// Per-app calls per second we allow ourselves.
    pub qps_limit: u32,
    /// Calls per calendar month we allow ourselves.
    pub monthly_quota: u64,
    /// Interactive card template id, when cards are used.
    pub card_template_id: Option<String>,
    /// Upstream webhook told about actions taken in DingTalk.
    pub webhook_url: Option<String>,
    /// IANA time zone for times shown to people.
    pub timezone: String,
    /// The language of what is sent to DingTalk (stored default en-US: integrations
    /// made before locales keep English; new ones get zh-CN).
    #[serde(default)]
    pub locale: Locale,
    /// The integration's own title and body templates (ARCHITECTURE.md §11).
    #[serde(default, skip_serializing_if = "MessageTemplates::is_empty")]
    pub templates: MessageTemplates,
    /// Targets for alerts that name none.
    pub default_targets: Targets,
    /// SHA-256 (hex) of the ingest token; the token itself is shown once.
    pub ingest_token_sha256: String,
    /// Base URL the integration was registered under (for links built off-request).
    #[serde(default)]
    pub public_base_url: Option<String>,
    /// apiSecret registered with DingTalk for card callbacks (set by verify).
    #[serde(default)]
    pub card_api_secret: Option<Secret>,
    /// Signs the upstream webhook (shown once, at creation).
    #[serde(default)]
    pub webhook_secret: Option<Secret>,
    /// The Alertmanager that Silence buttons silence (ARCHITECTURE.md §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Storm control: new incidents per group within `storm_window_secs` before
    /// further ones fold into a digest.
    #[serde(default = "default_storm_threshold")]
    pub storm_threshold: u32,
    /// Storm control window in seconds.
    #[serde(default = "default_storm_window")]
    pub storm_window_secs: u32,
    /// Days an incident (with its records and deliveries) is kept after its last
    /// change (DynamoDB TTL `expires_at`); 1 to 3650.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: u64,
}

fn default_storm_threshold() -> u32 {
    10
}

fn default_storm_window() -> u32 {
    60
}

/// Days incidents are kept after their last change when an integration says nothing.
pub const DEFAULT_RETENTION_DAYS: u32 = 180;

fn default_retention_days() -> u32 {
    DEFAULT_RETENTION_DAYS
}

/// The fields of a create or update request, validated.
#[derive(Debug, Clone, Default)]
pub struct IntegrationChanges {
    name: Option<String>,
    corp_id: Option<String>,
    agent_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    aes_key: Option<Secret>,
    token: Option<Secret>,
    edition: Option<Edition>,
    qps_limit: Option<u32>,
    monthly_quota: Option<u64>,
    card_template_id: Option<Option<String>>,
    webhook_url: Option<Option<String>>,
    alertmanager: Option<Option<AlertmanagerConfig>>,
    timezone: Option<String>,
    locale: Option<Locale>,
    templates: Option<MessageTemplates>,
    default_targets: Option<Targets>,
    storm_threshold: Option<u32>,
    storm_window_secs: Option<u32>,
    retention_days: Option<u32>,
}

const REQUIRED_ON_CREATE: [&str; 7] = [
    "name",
    "corp_id",
    "agent_id",
    "client_id",
    "client_secret",
    "aes_key",
    "token",
];

/// Default time zone for integrations that name none.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

impl IntegrationChanges {
    /// Validates a create request body: every required field present and well formed.
    pub fn for_create(body: &Value) -> Result<Self, ValidationError> {
        let map = body
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        for field in REQUIRED_ON_CREATE {
            if map.get(field).is_none_or(Value::is_null) {
                return Err(ValidationError::new(field, "is required"));
            }
        }
        Self::parse(map)
    }

    /// Validates an update (PATCH) request body: only the fields present change.
    pub fn for_update(body: &Value) -> Result<Self, ValidationError> {
        let map = body
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        if map.is_empty() {
            return Err(ValidationError::new("body", "names no field to change"));
        }
        Self::parse(map)
    }

    /// The templates this change sets, if it sets them.
    pub fn templates(&self) -> Option<&MessageTemplates> {
        self.templates.as_ref()
    }

    /// The webhook URL this change sets, if it sets one.
    pub fn webhook_url(&self) -> Option<&str> {
        self.webhook_url.as_ref().and_then(|u| u.as_deref())
    }

    /// The Alertmanager URL this change sets, if it sets one.
    pub fn alertmanager_url(&self) -> Option<&str> {
        self.alertmanager
            .as_ref()
            .and_then(|a| a.as_ref())
            .map(|a| a.url.as_str())
    }

    /// Whether the change touches the app credentials (so cached tokens are void).
    pub fn changes_credentials(&self) -> bool {
        self.client_id.is_some() || self.client_secret.is_some()
    }

    fn parse(map: &Map<String, Value>) -> Result<Self, ValidationError> {
        let mut changes = Self::default();
        for (field, value) in map {
            let f = field.as_str();
            match f {
                "name" => changes.name = Some(text(f, value, 1, 128)?),
                "corp_id" => changes.corp_id = Some(identifier(f, value)?),
                "client_id" => changes.client_id = Some(identifier(f, value)?),
                "agent_id" => changes.agent_id = Some(agent_id(value)?),
                "client_secret" => {
                    changes.client_secret = Some(Secret::new(text(f, value, 8, 256)?))
                }
                "aes_key" => changes.aes_key = Some(Secret::new(aes_key(value)?)),
                "token" => changes.token = Some(Secret::new(callback_token(value)?)),
                "edition" => changes.edition = Some(edition(value)?),
                "qps_limit" => changes.qps_limit = Some(small_number(f, value, 1, 10_000)?),
                "monthly_quota" => {
                    changes.monthly_quota = Some(whole_number(f, value, 1, 1_000_000_000_000)?);
                }
                "card_template_id" => changes.card_template_id = Some(optional(f, value, 128)?),
                "webhook_url" => changes.webhook_url = Some(webhook_url(value)?),
                "alertmanager" => changes.alertmanager = Some(AlertmanagerConfig::parse(value)?),
                "timezone" => changes.timezone = Some(timezone(value)?),
                "locale" => changes.locale = Some(locale(value)?),
                "templates" => changes.templates = Some(templates(value)?),
                "default_targets" => changes.default_targets = Some(targets(value)?),
                "storm_threshold" => {
                    changes.storm_threshold = Some(small_number(f, value, 1, 10_000)?);
                }
                "storm_window_secs" => {
                    changes.storm_window_secs = Some(small_number(f, value, 10, 86_400)?);
                }
                "retention_days" => {
                    changes.retention_days = Some(small_number(f, value, 1, 3650)?);
                }
                _ => return Err(ValidationError::new(f, "is not a known field")),
            }
        }
        Ok(changes)
    }

    /// Builds a new integration from a validated create request.
    pub fn create(
        self,
        id: String,
        ingest_token_sha256: String,
        now: &str,
    ) -> Result<Integration, ValidationError> {
        let missing = |f: &str| ValidationError::new(f, "is required");
        let edition = self.edition.unwrap_or(Edition::Standard);
        Ok(Integration {
            id,
            name: self.name.ok_or_else(|| missing("name"))?,
            corp_id: self.corp_id.ok_or_else(|| missing("corp_id"))?,
            agent_id: self.agent_id.ok_or_else(|| missing("agent_id"))?,
            client_id: self.client_id.ok_or_else(|| missing("client_id"))?,
            client_secret: self.client_secret.ok_or_else(|| missing("client_secret"))?,
            aes_key: self.aes_key.ok_or_else(|| missing("aes_key"))?,
            token: self.token.ok_or_else(|| missing("token"))?,
            edition,
            qps_limit: self.qps_limit.unwrap_or(edition.default_qps()),
            monthly_quota: self
                .monthly_quota
                .unwrap_or(edition.default_monthly_quota()),
            card_template_id: self.card_template_id.flatten(),
            webhook_url: self.webhook_url.flatten(),
            timezone: self
                .timezone
                .unwrap_or_else(|| DEFAULT_TIMEZONE.to_string()),
            locale: self.locale.unwrap_or(Locale::ZhCn),
            templates: self.templates.unwrap_or_default(),
            default_targets: self.default_targets.unwrap_or_default(),
            ingest_token_sha256,
            public_base_url: None,
            card_api_secret: None,
            webhook_secret: None,
            alertmanager: self.alertmanager.flatten(),
            storm_threshold: self.storm_threshold.unwrap_or_else(default_storm_threshold),
            storm_window_secs: self.storm_window_secs.unwrap_or_else(default_storm_window),
            retention_days: self.retention_days.unwrap_or(DEFAULT_RETENTION_DAYS),
            created_at: now.to_string(),
            updated_at: now.to_string(),
            version: 1,
        })
    }

    /// Applies a validated update to `integration`. Changing the edition alone
    /// moves the limits to that edition's defaults unless they are given too.
    pub fn apply(self, integration: &mut Integration, now: &str) {
        macro_rules! set {
            ($field:ident) => {
                if let Some(value) = self.$field {
                    integration.$field = value;
                }
            };
        }
        if let Some(edition) = self.edition {
            if edition != integration.edition {
                integration.qps_limit = edition.default_qps();
                integration.monthly_quota = edition.default_monthly_quota();
            }
            integration.edition = edition;
        }
        set!(name);
        set!(corp_id);
        set!(agent_id);
        set!(client_id);
        set!(client_secret);
        set!(aes_key);
        set!(token);
        set!(qps_limit);
        set!(monthly_quota);
        set!(card_template_id);
        set!(webhook_url);
        set!(alertmanager);
        set!(timezone);
        set!(locale);
        set!(templates);
        set!(default_targets);
        set!(storm_threshold);
        set!(storm_window_secs);
        set!(retention_days);
        integration.updated_at = now.to_string();
        integration.version += 1;
    }
}

/// A plain shape check of an email address (one `@`, something on both sides, no spaces).
pub fn is_email(text: &str) -> bool {
    let mut parts = text.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

/// SHA-256 hex digest of an ingest token, as stored.
pub fn ingest_token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The URLs to paste into the DingTalk developer console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationUrls {
    /// Development config → Event subscription → request URL.
    pub event_subscription: String,
    /// Web app → homepage URL.
    pub h5_home: String,
    /// Web app → PC homepage URL.
    pub pc_home: String,
    /// Cool app → group quick access.
    pub cool_app: String,
    /// Card callback URL (registered through the card callback API).
    pub card_callback: String,
}

impl IntegrationUrls {
    /// The URLs of integration `id` under `base` (no trailing slash).
    pub fn new(base: &str, id: &str) -> Self {
        let root = format!("{base}/dingtalk/{id}");
        Self {
            event_subscription: format!("{root}/events"),
            h5_home: format!("{root}/app"),
            pc_home: format!("{root}/app"),
            cool_app: format!("{root}/app?view=group"),
            card_callback: format!("{root}/cards"),
        }
    }
}

/// What an API may show of an integration: everything but the secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IntegrationView {
    /// Our id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// DingTalk CorpId.
    pub corp_id: String,
    /// AgentId.
    pub agent_id: String,
    /// Client ID (AppKey).
    pub client_id: String,
    /// Edition.
    pub edition: Edition,
    /// Calls per second allowed.
    pub qps_limit: u32,
    /// Calls per month allowed.
    pub monthly_quota: u64,
    /// Card template id.
    pub card_template_id: Option<String>,
    /// Upstream webhook.
    pub webhook_url: Option<String>,
    /// The Alertmanager silenced from the chat (its URL and kind of credentials).
    pub alertmanager: Option<AlertmanagerView>,
    /// Time zone.
    pub timezone: String,
    /// Language of what is sent to DingTalk.
    pub locale: Locale,
    /// User templates (`{}` when none).
    pub templates: MessageTemplates,
    /// Default targets.
    pub default_targets: Targets,
    /// Storm control threshold (new incidents per group per window).
    pub storm_threshold: u32,
    /// Storm control window in seconds.
    pub storm_window_secs: u32,
    /// Days incidents are kept after their last change.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// URLs to paste into DingTalk.
    pub urls: IntegrationUrls,
    /// Egress IPs for DingTalk's allow-list.
    pub outbound_ips: Vec<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
    /// Shown only in the answer to a create: the ingest bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingest_token: Option<String>,
    /// Shown only in the answer to a create: the secret that signs the upstream webhook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
    /// Whether the card callback route is registered with DingTalk (by verify).
    pub card_callback_registered: bool,
}

impl IntegrationView {
    /// The public view of `integration`, with URLs under `base`.
    pub fn new(integration: &Integration, base: &str, outbound_ips: &[String]) -> Self {
        Self {
            id: integration.id.clone(),
            name: integration.name.clone(),
            corp_id: integration.corp_id.clone(),
            agent_id: integration.agent_id.clone(),
            client_id: integration.client_id.clone(),
            edition: integration.edition,
            qps_limit: integration.qps_limit,
            monthly_quota: integration.monthly_quota,
            card_template_id: integration.card_template_id.clone(),
            webhook_url: integration.webhook_url.clone(),
            alertmanager: integration
                .alertmanager
                .as_ref()
                .map(AlertmanagerConfig::view),
            timezone: integration.timezone.clone(),
            locale: integration.locale,
            templates: integration.templates.clone(),
            default_targets: integration.default_targets.clone(),
            storm_threshold: integration.storm_threshold,
            storm_window_secs: integration.storm_window_secs,
            retention_days: integration.retention_days,
            urls: IntegrationUrls::new(base, &integration.id),
            outbound_ips: outbound_ips.to_vec(),
            created_at: integration.created_at.clone(),
            updated_at: integration.updated_at.clone(),
            ingest_token: None,
            webhook_secret: None,
            card_callback_registered: integration.card_api_secret.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({"name": "Ops", "corp_id": "dingcorp", "agent_id": 123, "client_id": "dingapp",
               "client_secret": "secret-secret", "aes_key": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
               "token": "tok123"})
    }

    #[test]
    fn create_fills_edition_defaults() {
        let integration = IntegrationChanges::for_create(&valid())
            .and_then(|c| c.create("id1".into(), "h".into(), "now"))
            .expect("valid");
        assert_eq!(integration.qps_limit, 20);
        assert_eq!(integration.monthly_quota, 10_000);
        assert_eq!(integration.timezone, "Asia/Shanghai");
        assert_eq!(integration.agent_id, "123");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            ("aes_key", json!("short")),
            (
                "aes_key",
                json!("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP!"),
            ),
            ("token", json!("ab")),
            ("token", json!("has space")),
            ("agent_id", json!("12a")),
            ("edition", json!("gold")),
            ("qps_limit", json!(0)),
            ("retention_days", json!(0)),
            ("retention_days", json!(3651)),
            ("retention_days", json!("30")),
            ("timezone", json!("Mars/Base")),
            ("webhook_url", json!("ftp://x")),
            ("corp_id", json!("")),
            ("surprise", json!(1)),
            ("client_secret", json!("enc:v1:AAAAAAAAAAAAAAAA")),
        ];
        for (field, value) in cases {
            let mut body = valid();
            body[field] = value;
            let err = IntegrationChanges::for_create(&body).expect_err(field);
            assert_eq!(err.field, field);
        }
        let mut body = valid();
        body.as_object_mut().map(|m| m.remove("client_secret"));
        assert_eq!(
            IntegrationChanges::for_create(&body)
                .expect_err("missing")
                .field,
            "client_secret"
        );
    }

    #[test]
    fn new_integrations_default_to_zh_cn_and_stored_ones_without_a_locale_stay_english() {
        let created = IntegrationChanges::for_create(&valid())
            .expect("valid")
            .create("id".into(), "hash".into(), "now")
            .expect("created");
        assert_eq!(created.locale, Locale::ZhCn);
        let mut stored = serde_json::to_value(&created).expect("json");
        stored.as_object_mut().map(|m| m.remove("locale"));
        let old: Integration = serde_json::from_value(stored).expect("an item from before locales");
        assert_eq!(old.locale, Locale::EnUs);
    }

    #[test]
    fn secrets_never_debug_print() {
        let integration = IntegrationChanges::for_create(&valid())
            .and_then(|c| c.create("id1".into(), "h".into(), "now"))
            .expect("valid");
        let printed = format!("{integration:?}");
        assert!(!printed.contains("secret-secret"));
        assert!(!printed.contains("abcdefghijklmnopqrstuvwxyz"));
        let view = serde_json::to_string(&IntegrationView::new(&integration, "https://x", &[]))
            .expect("json");
        assert!(!view.contains("secret-secret") && !view.contains("tok123"));
    }

    #[test]
    fn email_shape() {
        assert!(is_email("alice@example.com"));
        assert!(!is_email("alice@example"));
        assert!(!is_email("a b@example.com"));
        assert!(!is_email("@example.com"));
    }
}
