//! Configuration read once from the environment (ARCHITECTURE.md §6.1).

use std::fmt;

/// Default DingTalk new-API base.
pub const DEFAULT_API_BASE: &str = "https://api.dingtalk.com";
/// Default DingTalk old-API (oapi) base.
pub const DEFAULT_OAPI_BASE: &str = "https://oapi.dingtalk.com";

/// A configuration value that is missing or malformed.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}: {problem}")]
pub struct ConfigError {
    /// The variable's name.
    pub name: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Everything the functions read from their environment.
#[derive(Clone)]
pub struct Config {
    /// DynamoDB table holding every item.
    pub table_name: String,
    /// SQS queue for alerts and internal jobs (empty where a function does not send).
    pub queue_url: String,
    /// `DEAD_LETTER_QUEUE_URL`: the alert queue's DLQ, read and redriven by the admin
    /// API (empty where a function does not use it).
    pub dead_letter_queue_url: String,
    /// Base of the URLs shown to users, without a trailing slash; `None` means
    /// "derive it from the request's domain name".
    pub public_base_url: Option<String>,
    /// Bearer key of the admin API (a secret: never logged).
    pub admin_api_key: Option<String>,
    /// DingTalk new-API base, no trailing slash.
    pub dingtalk_api_base: String,
    /// DingTalk old-API base, no trailing slash.
    pub dingtalk_oapi_base: String,
    /// Static egress IPs to put on DingTalk's allow-list.
    pub outbound_ips: Vec<String>,
    /// `SESSION_SECRET`: signs H5 sessions (a secret: never logged).
    pub session_secret: Option<String>,
    /// `DINGTALK_JSAPI_URL`: the DingTalk JSAPI script the H5 page loads.
    pub jsapi_url: String,
    /// `OUTBOUND_ALLOW_PRIVATE=1`: outbound calls may reach loopback and private
    /// addresses over plain http (local development and tests only).
    pub outbound_allow_private: bool,
    /// `SECRETS_KEY`: base64 data key sealing stored secrets (local; a secret).
    pub secrets_key: Option<String>,
    /// `SECRETS_KMS_KEY_ID`: the KMS key whose data key seals stored secrets (AWS).
    pub secrets_kms_key_id: Option<String>,
}

/// DingTalk's JSAPI script (ARCHITECTURE.md §2.3).
pub const DEFAULT_JSAPI_URL: &str =
    "https://g.alicdn.com/dingding/dingtalk-jsapi/3.1.0/dingtalk.open.js";

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("table_name", &self.table_name)
            .field("queue_url", &self.queue_url)
            .field("dead_letter_queue_url", &self.dead_letter_queue_url)
            .field("public_base_url", &self.public_base_url)
            .field(
                "admin_api_key",
                &self.admin_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("dingtalk_api_base", &self.dingtalk_api_base)
            .field("dingtalk_oapi_base", &self.dingtalk_oapi_base)
            .field("outbound_ips", &self.outbound_ips)
            .field(
                "session_secret",
                &self.session_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jsapi_url", &self.jsapi_url)
            .field("outbound_allow_private", &self.outbound_allow_private)
            .field(
                "secrets_key",
                &self.secrets_key.as_ref().map(|_| "<redacted>"),
            )
            .field("secrets_kms_key_id", &self.secrets_kms_key_id)
            .finish()
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let table_name = get("TABLE_NAME").ok_or(ConfigError {
            name: "TABLE_NAME",
            problem: "must be set",
        })?;
        let base = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let value = get(name).unwrap_or_else(|| default.to_string());
            if !(value.starts_with("http://") || value.starts_with("https://")) {
                return Err(ConfigError {
                    name,
                    problem: "must be an http(s) URL",
                });
            }
            Ok(value.trim_end_matches('/').to_string())
        };
        let public_base_url = match get("PUBLIC_BASE_URL") {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.trim_end_matches('/').to_string())
            }
            Some(_) => {
                return Err(ConfigError {
                    name: "PUBLIC_BASE_URL",
                    problem: "must be an http(s) URL",
                });
            }
            None => None,
        };
        if let Some(key) = get("SECRETS_KEY")
            && crate::infra::secrets::SecretBox::from_base64(&key).is_err()
        {
            return Err(ConfigError {
                name: "SECRETS_KEY",
                problem: "must be 32 bytes, base64-encoded",
            });
        }
        Ok(Self {
            table_name,
            queue_url: get("QUEUE_URL").unwrap_or_default(),
            dead_letter_queue_url: get("DEAD_LETTER_QUEUE_URL").unwrap_or_default(),
            public_base_url,
            admin_api_key: get("ADMIN_API_KEY"),
            dingtalk_api_base: base("DINGTALK_API_BASE", DEFAULT_API_BASE)?,
            dingtalk_oapi_base: base("DINGTALK_OAPI_BASE", DEFAULT_OAPI_BASE)?,
            outbound_ips: get("OUTBOUND_IPS")
                .map(|ips| {
                    ips.split(',')
                        .map(str::trim)
                        .filter(|ip| !ip.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            session_secret: get("SESSION_SECRET"),
            jsapi_url: get("DINGTALK_JSAPI_URL").unwrap_or_else(|| DEFAULT_JSAPI_URL.to_string()),
            outbound_allow_private: crate::infra::outbound::OutboundPolicy::from_setting(
                get("OUTBOUND_ALLOW_PRIVATE").as_deref(),
            )
            .allow_private,
            secrets_key: get("SECRETS_KEY"),
            secrets_kms_key_id: get("SECRETS_KMS_KEY_ID"),
        })
    }
}

/// Loads the AWS SDK configuration (honours `AWS_ENDPOINT_URL` for local endpoints).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
