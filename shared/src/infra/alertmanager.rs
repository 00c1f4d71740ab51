//! Alertmanager's API v2 (`POST /api/v2/silences`, `DELETE /api/v2/silence/{id}`),
//! called through the outbound policy (https, public addresses, no redirects) with
//! the integration's credentials. Errors carry a reason a person can act on and
//! never a credential.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use url::Url;

use crate::domain::silence::{AlertmanagerAuth, AlertmanagerConfig, Matcher};
use crate::infra::outbound::{OutboundError, OutboundPolicy};

/// How long one Alertmanager call may take (DingTalk waits 2 s for a card click's
/// answer; an unreachable Alertmanager must not hold the click longer).
pub const CALL_TIMEOUT: Duration = Duration::from_millis(1200);

/// How long the look-up of a silence whose create got no answer may take (only after
/// a request was sent and timed out: the click then answers within about 1.8 s).
pub const LOOKUP_TIMEOUT: Duration = Duration::from_millis(600);

/// Most bytes of an answer read (a silence list can be long; one silence is small).
const MAX_ANSWER: usize = 64 * 1024;
/// Most bytes of a silence list read by the look-up.
const MAX_LIST: usize = 1024 * 1024;

/// Why Alertmanager did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertmanagerError {
    /// The URL is refused by the outbound policy.
    #[error("the Alertmanager URL is refused: {0}")]
    Blocked(#[from] OutboundError),
    /// No connection (refused, connect timeout, TLS): the request was never sent.
    #[error("Alertmanager could not be reached ({0})")]
    Unreachable(String),
    /// The request went out but no answer came (timeout, connection lost): it may
    /// have been done.
    #[error("Alertmanager could not be reached ({0})")]
    NoAnswer(String),
    /// An answer other than success. Its text is kept for the checks here and the
    /// debug log only: what the remote says never reaches records or cards.
    #[error("Alertmanager refused the request (HTTP {status})")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Alertmanager's message (cut to 200 characters; not shown to people).
        message: String,
    },
    /// A success whose body is not what Alertmanager answers.
    #[error("Alertmanager's answer is not a silence id")]
    BadAnswer,
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
        let answer = send(request, MAX_ANSWER).await?;
        silence_id(answer.get("silenceID")).ok_or(AlertmanagerError::BadAnswer)
    }

    /// The id of a silence that is not expired, matches `matchers` and whose comment
    /// carries `marker` (`GET /api/v2/silences?filter=…`): how a create whose answer
    /// was lost (a timeout after Alertmanager made the silence) is found again.
    pub async fn find_marked_silence(
        &self,
        config: &AlertmanagerConfig,
        matchers: &[Matcher],
        marker: &str,
    ) -> Result<Option<String>, AlertmanagerError> {
        // Only matchers whose text Alertmanager's parser reads back exactly (no
        // escapes): a narrower list; the marker decides.
        let filters: Vec<(&str, String)> = matchers
            .iter()
            .filter(|m| plain(&m.name) && plain(&m.value))
            .map(|m| ("filter", m.display()))
            .collect();
        let request = self
            .request_with(config, Method::GET, "api/v2/silences", &filters)
            .await?
            .timeout(LOOKUP_TIMEOUT);
        let answer = send(request, MAX_LIST).await?;
        Ok(answer
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s.pointer("/status/state") != Some(&Value::from("expired")))
            .filter(|s| {
                s.get("comment")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.contains(marker))
            })
            .find_map(|s| silence_id(s.get("id"))))
    }

    /// Expires silence `id`. When the delete is refused, Alertmanager is asked for
    /// the silence: only one it reports `expired`, or does not know (404, or 0.25's
    /// 500 "silence not found" on that read), counts as expired.
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
        let refused = match send(
            self.request(config, Method::DELETE, &path).await?,
            MAX_ANSWER,
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(err @ AlertmanagerError::Refused { .. }) => err,
            Err(err) => return Err(err),
        };
        match send(self.request(config, Method::GET, &path).await?, MAX_ANSWER).await {
            Ok(silence) if silence.pointer("/status/state") == Some(&Value::from("expired")) => {
                Ok(())
            }
            Err(AlertmanagerError::Refused { status: 404, .. }) => Ok(()),
            Err(AlertmanagerError::Refused {
                status: 500,
                message,
            }) if message == "silence not found" => Ok(()),
            _ => Err(refused),
        }
    }

    /// A request to `{url}/{path}` pinned to the checked address, with credentials.
    async fn request(
        &self,
        config: &AlertmanagerConfig,
        method: Method,
        path: &str,
    ) -> Result<RequestBuilder, AlertmanagerError> {
        self.request_with(config, method, path, &[]).await
    }

    /// [`Self::request`] with `query` pairs.
    async fn request_with(
        &self,
        config: &AlertmanagerConfig,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<RequestBuilder, AlertmanagerError> {
        let mut url = api_url(&self.outbound.check_url(&config.url)?, path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let addr = self.outbound.resolve(&url).await?;
        let client = self.outbound.client(&url, addr, CALL_TIMEOUT)?;
        Ok(authorize(client.request(method, url), &config.auth))
    }
}

/// Text a matcher shows as is (`name="value"` needs no escape for it).
fn plain(text: &str) -> bool {
    text.chars()
        .all(|c| !c.is_control() && c != '"' && c != '\\' && (c.is_ascii() || c.is_alphanumeric()))
}

/// A silence id as Alertmanager makes them (it is shown and stored: nothing else).
fn silence_id(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|id| {
            !id.is_empty()
                && id.len() <= 64
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(str::to_string)
}

/// `{base}/{path}` by path segments (never a string join that could change the
/// host, as `//host` in a path would), on the base's own host and port.
fn api_url(base: &Url, path: &str) -> Result<Url, OutboundError> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|_| OutboundError::Invalid)?
        .pop_if_empty()
        .extend(path.split('/'));
    if url.host() != base.host() || url.port_or_known_default() != base.port_or_known_default() {
        return Err(OutboundError::Invalid);
    }
    Ok(url)
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

/// Sends a request; the JSON answer of a 2xx (or `null` for an empty one), reading at
/// most `max` bytes of it.
async fn send(request: RequestBuilder, max: usize) -> Result<Value, AlertmanagerError> {
    let response = request.send().await.map_err(|err| {
        if err.is_connect() {
            AlertmanagerError::Unreachable("connection refused or failed".into())
        } else if err.is_timeout() {
            AlertmanagerError::NoAnswer("timed out".into())
        } else {
            AlertmanagerError::NoAnswer("request failed".into())
        }
    })?;
    let status = response.status().as_u16();
    let text = read_capped(response, max).await;
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

/// At most `max` bytes of an answer.
async fn read_capped(mut response: reqwest::Response, max: usize) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= max {
            body.truncate(max);
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Secret;

    #[test]
    fn api_urls_keep_the_base_host_whatever_its_path() {
        let url = |base: &str| {
            api_url(&Url::parse(base).expect("base"), "api/v2/silences")
                .expect("url")
                .to_string()
        };
        assert_eq!(
            url("https://am.example.com"),
            "https://am.example.com/api/v2/silences"
        );
        assert_eq!(
            url("https://am.example.com/am/"),
            "https://am.example.com/am/api/v2/silences"
        );
        let sneaky = api_url(
            &Url::parse("https://am.example.com//evil.example").expect("base"),
            "api/v2/silences",
        )
        .expect("url");
        assert_eq!(sneaky.host_str(), Some("am.example.com"));
        let sneaky = api_url(
            &Url::parse("https://am.example.com//user:pw@evil.example").expect("base"),
            "api/v2/silences",
        )
        .expect("url");
        assert_eq!(sneaky.host_str(), Some("am.example.com"));
        assert!(sneaky.username().is_empty() && sneaky.password().is_none());
    }

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
