//! The admin API key: given in `ADMIN_API_KEY`, or `ADMIN_API_KEY=ssm:<parameter name>`
//! to keep it in SSM Parameter Store (a SecureString, read decrypted on first use and
//! kept in memory for the life of the instance). It is never logged.

use tokio::sync::OnceCell;

use crate::domain::Secret;

/// Shortest admin key accepted.
pub const MIN_ADMIN_KEY_CHARS: usize = 24;

/// Why the admin key is not available.
#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    /// The parameter could not be read (missing, no permission, SSM unreachable).
    #[error("the admin key parameter {name} could not be read: {reason}")]
    Unreadable {
        /// Parameter name.
        name: String,
        /// What SSM answered.
        reason: String,
    },
    /// The key is too short to be safe.
    #[error("the admin key is shorter than {MIN_ADMIN_KEY_CHARS} characters")]
    TooShort,
}

/// Where the admin key comes from.
pub enum AdminKey {
    /// No key configured: the admin API is disabled.
    Disabled,
    /// The key itself.
    Given(Secret),
    /// An SSM parameter holding the key.
    Parameter {
        /// Parameter name (or ARN).
        name: String,
        /// SSM client.
        ssm: aws_sdk_ssm::Client,
        /// The value, once read.
        value: OnceCell<Secret>,
    },
}

impl std::fmt::Debug for AdminKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Disabled => f.write_str("AdminKey::Disabled"),
            Self::Given(_) => f.write_str("AdminKey::Given(<redacted>)"),
            Self::Parameter { name, .. } => write!(f, "AdminKey::Parameter({name})"),
        }
    }
}

impl AdminKey {
    /// The key named by the `ADMIN_API_KEY` setting.
    pub fn from_setting(setting: Option<&str>, sdk: &aws_config::SdkConfig) -> Self {
        match setting.map(str::trim).filter(|s| !s.is_empty()) {
            None => Self::Disabled,
            Some(value) => match value.strip_prefix("ssm:") {
                Some(name) => Self::Parameter {
                    name: name.to_string(),
                    ssm: aws_sdk_ssm::Client::new(sdk),
                    value: OnceCell::new(),
                },
                None => Self::Given(Secret::new(value)),
            },
        }
    }

    /// The key requests must present (None: the admin API is disabled).
    pub async fn expected(&self) -> Result<Option<&Secret>, AdminKeyError> {
        let key = match self {
            Self::Disabled => return Ok(None),
            Self::Given(key) => key,
            Self::Parameter { name, ssm, value } => {
                value
                    .get_or_try_init(|| async {
                        let out = ssm
                            .get_parameter()
                            .name(name)
                            .with_decryption(true)
                            .send()
                            .await
                            .map_err(|e| AdminKeyError::Unreadable {
                                name: name.clone(),
                                reason: aws_sdk_ssm::error::DisplayErrorContext(e).to_string(),
                            })?;
                        let text = out.parameter.and_then(|p| p.value).ok_or_else(|| {
                            AdminKeyError::Unreadable {
                                name: name.clone(),
                                reason: "the parameter has no value".into(),
                            }
                        })?;
                        Ok::<_, AdminKeyError>(Secret::new(text.trim()))
                    })
                    .await?
            }
        };
        if key.expose().chars().count() < MIN_ADMIN_KEY_CHARS {
            return Err(AdminKeyError::TooShort);
        }
        Ok(Some(key))
    }
}
