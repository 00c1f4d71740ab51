//! Alertmanager's API v2 (`POST /api/v2/silences`, `DELETE /api/v2/silence/{id}`),
//! called through the outbound policy (https, public addresses, no redirects) with
//! the integration's credentials. Errors carry a reason a person can act on and
//! never a credential.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use crate::domain::silence::{AlertmanagerAuth, AlertmanagerConfig};
use crate::infra::outbound::{OutboundError, OutboundPolicy};

/// How long one Alertmanager call may take (a card click answers within 2 s of
/// DingTalk's 5 s; an unreachable Alertmanager must not hold the click longer).
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1500);

/// Why Alertmanager did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertmanagerError {
    /// The URL is refused by the outbound policy.
    #[error("the Alertmanager URL is refused: {0}")]
    Blocked(#[from] OutboundError),
    /// No answer (connection refused, timeout, TLS).
    #[error("Alertmanager could not be reached ({0})")]
    Unreachable(String),
    /// An answer other than success.
    #[error("Alertmanager answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Alertmanager's message (cut to 200 characters).
        message: String,
    },
}

/// Calls an integration's Alertmanager.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertmanagerClient {
    outbound: OutboundPolicy,
}

impl AlertmanagerClient {
    /// A client following `outbound`.
    pub fn new(outbound: OutboundPolicy) -> Self {
        Self { outbound }
    }

    /// Creates a silence from a `POST /api/v2/silences` body; returns its id.
    pub async fn create_silence(
        &self,
        config: &AlertmanagerConfig,
        body: &Value,
    ) -> Result<String, AlertmanagerError> {
        let request = self
            .request(config, Method::POST, "api/v2/silences")
            .await?
            .json(body);
        let answer = send(request).await?;
        answer
            .get("silenceID")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .ok_or_else(|| AlertmanagerError::Refused {
                status: 200,
                message: "the answer carries no silenceID".into(),
            })
    }

    /// Expires silence `id`. A silence Alertmanager no longer has, or one already
    /// expired, counts as expired.
    pub async fn expire_silence(
        &self,
        config: &AlertmanagerConfig,
        id: &str,
    ) -> Result<(), AlertmanagerError> {
        let id: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let path = format!("api/v2/silence/{id}");
        let request = self.request(config, Method::DELETE, &path).await?;
        match send(request).await {
            Ok(_) => Ok(()),
            Err(AlertmanagerError::Refused { status: 404, .. }) => Ok(()),
            // Alertmanager 0.25 answers 500 "silence not found" for an unknown id.
            Err(AlertmanagerError::Refused { message, .. })
                if message.contains("already expired") || message.contains("not found") =>
            {
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// A request to `{url}/{path}` pinned to the checked address, with credentials.
    async fn request(
        &self,
        config: &AlertmanagerConfig,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, AlertmanagerError> {
        let base = self.outbound.check_url(&config.url)?;
        let url = base
            .join(&format!("{}/{path}", base.path().trim_end_matches('/')))
            .map_err(|_| OutboundError::Invalid)?;
        let addr = self.outbound.resolve(&url).await?;
        let client = self.outbound.client(&url, addr, CALL_TIMEOUT)?;
        Ok(authorize(client.request(method, url), &config.auth))
    }
}

/// Adds the credentials to a request.
fn authorize(request: RequestBuilder, auth: &AlertmanagerAuth) -> RequestBuilder {
    match auth {
        AlertmanagerAuth::None => request,
        AlertmanagerAuth::Bearer(token) => request.bearer_auth(token.expose()),
        AlertmanagerAuth::Basic { username, password } => {
            request.basic_auth(username, Some(password.expose()))
        }
    }
}

/// Sends a request; the JSON answer of a 2xx (or `null` for an empty one).
async fn send(request: RequestBuilder) -> Result<Value, AlertmanagerError> {
    let response = request.send().await.map_err(|err| {
        let why = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "connection refused or failed"
        } else {
            "request failed"
        };
        AlertmanagerError::Unreachable(why.into())
    })?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or(text);
        return Err(AlertmanagerError::Refused {
            status,
            message: message.trim().chars().take(200).collect(),
        });
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;

    fn header(auth: &AlertmanagerAuth) -> Option<String> {
        let request = authorize(reqwest::Client::new().get("https://am.example.com/"), auth)
            .build()
            .expect("request");
        request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    #[test]
    fn credentials_become_the_authorization_header() {
        assert_eq!(header(&AlertmanagerAuth::None), None);
        assert_eq!(
            header(&AlertmanagerAuth::Bearer(Secret::new("tok"))).as_deref(),
            Some("Bearer tok")
        );
        assert_eq!(
            header(&AlertmanagerAuth::Basic {
                username: "ops".into(),
                password: Secret::new("pw"),
            })
            .as_deref(),
            Some("Basic b3BzOnB3")
        );
    }

    #[tokio::test]
    async fn a_private_address_is_refused_by_default() {
        let config = AlertmanagerConfig {
            url: "https://127.0.0.1:9093".into(),
            auth: AlertmanagerAuth::None,
        };
        let err = AlertmanagerClient::default()
            .expire_silence(&config, "x")
            .await
            .expect_err("refused");
        assert!(matches!(err, AlertmanagerError::Blocked(_)), "{err}");
    }
}
