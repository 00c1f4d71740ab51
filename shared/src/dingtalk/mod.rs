//! Client for DingTalk's open API (api.dingtalk.com and oapi.dingtalk.com).
//!
//! Every call goes through [`DingTalkClient::call`] (new API) or
//! [`DingTalkClient::call_oapi`] (old API): they add the app access token, classify
//! failures ([`DingTalkError`]) and refresh the token and retry once when DingTalk
//! says it is invalid.

mod ding;
mod error;
mod messages;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, warn};

pub use ding::{
    DING_RECALL_PATH, DING_SEND_PATH, DingSent, READ_STATUS_PATH, ReadInfo, RemindType,
};
pub use error::{DingTalkError, classify_new_api, classify_old_api};
pub use messages::{BatchSendResult, DingTalkProfile, DingTalkUser, RobotMessage};

use crate::clock::Clock;
use crate::domain::budget::{Budget, Priority};
use crate::domain::integration::Integration;
use crate::infra::governor::Governor;
use crate::store::{CachedToken, Store};

/// A token is renewed this long before DingTalk's stated expiry.
pub const TOKEN_SAFETY_MARGIN_MS: i64 = 5 * 60 * 1000;

/// Timeout of one HTTP call to DingTalk.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long refused credentials are answered from memory (the same Client ID and
/// Secret) to the console's setup checklist, which polls every few seconds, before
/// DingTalk is asked again.
pub const REFUSED_CREDENTIALS_MS: i64 = 30 * 1000;

/// The app credentials a call is made with, and its call budget.
#[derive(Clone, Copy)]
pub struct AppCredentials<'a> {
    /// Integration id (the cache key).
    pub integration_id: &'a str,
    /// Client ID (AppKey).
    pub client_id: &'a str,
    /// Client secret (AppSecret).
    pub client_secret: &'a str,
    /// The budget the governor keeps (None: not governed).
    pub budget: Option<Budget<'a>>,
    /// How urgent the call is (critical calls may use the quota reserve).
    pub priority: Priority,
}

impl<'a> From<&'a Integration> for AppCredentials<'a> {
    fn from(integration: &'a Integration) -> Self {
        Self {
            integration_id: &integration.id,
            client_id: &integration.client_id,
            client_secret: integration.client_secret.expose(),
            budget: Some(Budget {
                integration_id: &integration.id,
                qps: integration.qps_limit,
                monthly_quota: integration.monthly_quota,
                timezone: &integration.timezone,
            }),
            priority: Priority::Normal,
        }
    }
}

impl AppCredentials<'_> {
    /// The same credentials with another priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// The card callback route key of an integration (registered by verify, named by
/// every card we create).
pub fn callback_route_key(integration_id: &str) -> String {
    format!("dtinc-{integration_id}")
}

/// What a new-API path is counted as (None: exempt from the quota, like tokens);
/// a query string is ignored.
fn call_kind(path: &str) -> Option<&'static str> {
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    match path {
        "/v1.0/oauth2/accessToken" => None,
        "/v1.0/robot/groupMessages/send" | "/v1.0/robot/oToMessages/batchSend" => Some("message"),
        "/v1.0/card/instances/createAndDeliver" => Some("card"),
        "/v1.0/card/instances" => Some("card_update"),
        "/v1.0/im/sceneGroups/query" => Some("group_query"),
        "/v1.0/card/callbacks/register" => Some("card_callback"),
        DING_SEND_PATH => Some("ding"),
        DING_RECALL_PATH => Some("ding_recall"),
        READ_STATUS_PATH => Some("read_status"),
        _ => Some("other"),
    }
}

/// What `POST /v1.0/im/sceneGroups/query` says about a group.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SceneGroup {
    /// openConversationId.
    #[serde(default)]
    pub open_conversation_id: String,
    /// Group name.
    #[serde(default)]
    pub title: String,
    /// userId of the owner.
    #[serde(default)]
    pub owner_user_id: Option<String>,
    /// 1 = normal, 2 = disbanded.
    #[serde(default)]
    pub status: Option<i64>,
}

/// Client for DingTalk's open API, with a token cache shared through the store.
#[derive(Clone)]
pub struct DingTalkClient {
    http: reqwest::Client,
    api_base: String,
    oapi_base: String,
    store: Store,
    clock: Arc<dyn Clock>,
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
    /// Credentials DingTalk refused lately, by integration.
    refused: Arc<Mutex<HashMap<String, RefusedCredentials>>>,
    governor: Option<Governor>,
}

/// Credentials DingTalk refused: (SHA-256 of the Client ID and Secret, until when
/// the refusal is repeated from memory, DingTalk's code).
type RefusedCredentials = ([u8; 32], i64, String);

/// SHA-256 of the Client ID and Secret (the secret itself is never kept twice).
fn credentials_fingerprint(app: &AppCredentials<'_>) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(app.client_id.as_bytes())
        .chain_update([0])
        .chain_update(app.client_secret.as_bytes())
        .finalize()
        .into()
}

impl std::fmt::Debug for DingTalkClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DingTalkClient")
            .field("api_base", &self.api_base)
            .field("oapi_base", &self.oapi_base)
            .finish_non_exhaustive()
    }
}

impl DingTalkClient {
    /// A client on the given bases (no trailing slash), caching tokens in `store`.
    pub fn new(
        http: reqwest::Client,
        api_base: &str,
        oapi_base: &str,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            api_base: api_base.trim_end_matches('/').to_string(),
            oapi_base: oapi_base.trim_end_matches('/').to_string(),
            store,
            clock,
            tokens: Arc::default(),
            refused: Arc::default(),
            governor: None,
        }
    }

    /// The governor counted calls go through, if any.
    pub fn governor(&self) -> Option<&Governor> {
        self.governor.as_ref()
    }

    /// The same client with every counted call going through `governor`.
    pub fn with_governor(mut self, governor: Governor) -> Self {
        self.governor = Some(governor);
        self
    }

    /// An HTTP client with the timeouts we use for DingTalk.
    pub fn http_client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default()
    }

    /// A valid app access token: from memory, else from the table, else from DingTalk.
    pub async fn access_token(&self, app: AppCredentials<'_>) -> Result<String, DingTalkError> {
        self.token(app, false).await
    }

    /// [`Self::access_token`] for a page that polls (the console's setup checklist):
    /// when DingTalk refused these very credentials less than
    /// [`REFUSED_CREDENTIALS_MS`] ago, that refusal again without a call. Every other
    /// caller always asks, so the first call after the app is fixed gets its token.
    pub async fn token_or_recent_refusal(
        &self,
        app: AppCredentials<'_>,
    ) -> Result<String, DingTalkError> {
        self.token(app, true).await
    }

    async fn token(
        &self,
        app: AppCredentials<'_>,
        recent_refusal: bool,
    ) -> Result<String, DingTalkError> {
        let now = self.clock.now_ms();
        let usable = |t: &CachedToken| {
            t.client_id == app.client_id && t.expires_at_ms - TOKEN_SAFETY_MARGIN_MS > now
        };
        if let Some(token) = self.memory_token(app.integration_id).filter(usable) {
            return Ok(token.access_token);
        }
        if let Some(token) = self
            .store
            .get_cached_token(app.integration_id)
            .await?
            .filter(usable)
        {
            self.remember(app.integration_id, &token);
            return Ok(token.access_token);
        }
        let token = self
            .fetch_token_remembering_refusal(app, now, recent_refusal)
            .await?;
        self.store
            .put_cached_token(app.integration_id, &token)
            .await?;
        self.remember(app.integration_id, &token);
        Ok(token.access_token)
    }

    /// Forgets the cached token of an integration, in memory and in the table.
    pub async fn invalidate_token(&self, integration_id: &str) -> Result<(), DingTalkError> {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(integration_id);
        }
        self.store.delete_cached_token(integration_id).await?;
        Ok(())
    }

    fn memory_token(&self, integration_id: &str) -> Option<CachedToken> {
        self.tokens.lock().ok()?.get(integration_id).cloned()
    }

    fn remember(&self, integration_id: &str, token: &CachedToken) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(integration_id.to_string(), token.clone());
        }
    }

    /// [`Self::fetch_token`], remembering a refusal; with `recent_refusal`, a refusal of
    /// these very credentials less than [`REFUSED_CREDENTIALS_MS`] ago is answered
    /// again without a call.
    async fn fetch_token_remembering_refusal(
        &self,
        app: AppCredentials<'_>,
        now: i64,
        recent_refusal: bool,
    ) -> Result<CachedToken, DingTalkError> {
        if recent_refusal && let Some(code) = self.recent_refusal(&app, now) {
            return Err(DingTalkError::InvalidCredentials { code });
        }
        let fetched = self.fetch_token(app).await;
        self.note_refusal(&app, &fetched, now);
        fetched
    }

    /// DingTalk's code if it refused `app`'s very credentials less than
    /// [`REFUSED_CREDENTIALS_MS`] before `now`.
    fn recent_refusal(&self, app: &AppCredentials<'_>, now: i64) -> Option<String> {
        let fingerprint = credentials_fingerprint(app);
        let refused = self.refused.lock().ok()?;
        refused
            .get(app.integration_id)
            .filter(|(seen, until, _)| *seen == fingerprint && *until > now)
            .map(|(_, _, code)| code.clone())
    }

    /// Remembers a refusal of `app`'s credentials (or forgets one after any other answer).
    fn note_refusal<T>(
        &self,
        app: &AppCredentials<'_>,
        fetched: &Result<T, DingTalkError>,
        now: i64,
    ) {
        let Ok(mut refused) = self.refused.lock() else {
            return;
        };
        if let Err(DingTalkError::InvalidCredentials { code }) = fetched {
            let until = now + REFUSED_CREDENTIALS_MS;
            let entry = (credentials_fingerprint(app), until, code.clone());
            refused.insert(app.integration_id.to_string(), entry);
        } else {
            refused.remove(app.integration_id);
        }
    }

    /// `POST /v1.0/oauth2/accessToken` (exempt from the monthly quota).
    async fn fetch_token(&self, app: AppCredentials<'_>) -> Result<CachedToken, DingTalkError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct TokenAnswer {
            access_token: String,
            expire_in: i64,
        }
        let url = format!("{}/v1.0/oauth2/accessToken", self.api_base);
        let body = json!({"appKey": app.client_id, "appSecret": app.client_secret});
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| DingTalkError::Transient(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| DingTalkError::Transient(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            return Err(match classify_new_api(status, &text) {
                // A token endpoint never says "token invalid": that is bad credentials.
                DingTalkError::TokenInvalid { code } => DingTalkError::InvalidCredentials { code },
                other => other,
            });
        }
        let answer: TokenAnswer =
            serde_json::from_str(&text).map_err(|e| DingTalkError::Malformed(e.to_string()))?;
        debug!(
            integration_id = app.integration_id,
            expire_in = answer.expire_in,
            "fetched access token"
        );
        Ok(CachedToken {
            access_token: answer.access_token,
            client_id: app.client_id.to_string(),
            expires_at_ms: self.clock.now_ms() + answer.expire_in.max(0) * 1000,
        })
    }

    /// Calls a new-API endpoint (`path` like `/v1.0/im/sceneGroups/query`) with the app
    /// token; on an invalid token, refreshes it and retries once.
    pub async fn call(
        &self,
        app: AppCredentials<'_>,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, DingTalkError> {
        let governed = match (&self.governor, app.budget, call_kind(path)) {
            (Some(governor), Some(budget), Some(kind)) => Some((
                governor,
                budget,
                governor.acquire(budget, kind, app.priority).await?,
                kind,
            )),
            _ => None,
        };
        let mut refreshed = false;
        loop {
            let token = self.access_token(app).await?;
            if let Some((governor, budget, granted, kind)) = governed {
                governor.still_in_window(budget, kind, granted).await?;
            }
            let started = std::time::Instant::now();
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.api_base))
                .header("x-acs-dingtalk-access-token", token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let result = self.send(request, classify_new_api).await;
            if let Some((governor, ..)) = governed {
                governor.observe_call(started.elapsed());
            }
            if let (Err(DingTalkError::QpsLimited { .. }), Some((governor, budget, _, kind))) =
                (&result, governed)
            {
                // DingTalk's limit for this API is below ours: learn it.
                governor.refused(budget, kind).await?;
            }
            match result {
                Err(DingTalkError::TokenInvalid { code }) if !refreshed => {
                    warn!(integration_id = app.integration_id, %code, "access token refused; refreshing once");
                    self.invalidate_token(app.integration_id).await?;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    /// Calls an old-API endpoint (`path` like `/topapi/v2/user/getuserinfo`) with
    /// `?access_token=`; HTTP 200 with a non-zero `errcode` is an error.
    pub async fn call_oapi(
        &self,
        app: AppCredentials<'_>,
        path: &str,
        body: &Value,
    ) -> Result<Value, DingTalkError> {
        let mut refreshed = false;
        loop {
            let token = self.access_token(app).await?;
            let url = url::Url::parse_with_params(
                &format!("{}{path}", self.oapi_base),
                [("access_token", token.as_str())],
            )
            .map_err(|e| DingTalkError::Malformed(format!("bad oapi URL: {e}")))?;
            let request = self.http.post(url).json(body);
            let answer = self
                .send(request, classify_new_api)
                .await
                .and_then(|value| {
                    match value.get("errcode").and_then(Value::as_i64).unwrap_or(0) {
                        0 => Ok(value),
                        errcode => Err(classify_old_api(
                            errcode,
                            value
                                .get("errmsg")
                                .and_then(Value::as_str)
                                .unwrap_or_default(),
                        )),
                    }
                });
            match answer {
                Err(DingTalkError::TokenInvalid { code }) if !refreshed => {
                    warn!(integration_id = app.integration_id, %code, "access token refused by oapi; refreshing once");
                    self.invalidate_token(app.integration_id).await?;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        classify: fn(u16, &str) -> DingTalkError,
    ) -> Result<Value, DingTalkError> {
        // Errors are printed without the URL: old-API URLs carry the access token.
        let response = request
            .send()
            .await
            .map_err(|e| DingTalkError::Transient(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| DingTalkError::Transient(e.without_url().to_string()))?;
        if !(200..300).contains(&status) {
            return Err(classify(status, &text));
        }
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|e| DingTalkError::Malformed(e.to_string()))?
        };
        if let Some(err) = value
            .get("status")
            .and_then(Value::as_i64)
            .filter(|s| *s == 1111)
            .map(|_| classify(200, &text))
        {
            return Err(err);
        }
        Ok(value)
    }

    /// Checks the credentials by fetching a token (bypassing the caches).
    pub async fn check_credentials(&self, app: AppCredentials<'_>) -> Result<(), DingTalkError> {
        let fetched = self.fetch_token(app).await;
        self.note_refusal(&app, &fetched, self.clock.now_ms());
        fetched.map(|_| ())
    }

    /// `POST /v1.0/im/sceneGroups/query`: a group's title and state
    /// (`cool_app_code` is required for groups where our cool app is installed).
    pub async fn query_scene_group(
        &self,
        app: AppCredentials<'_>,
        open_conversation_id: &str,
        cool_app_code: Option<&str>,
    ) -> Result<SceneGroup, DingTalkError> {
        let mut body = json!({"openConversationId": open_conversation_id});
        if let Some(code) = cool_app_code {
            body["coolAppCode"] = Value::from(code);
        }
        let value = self
            .call(app, Method::POST, "/v1.0/im/sceneGroups/query", Some(&body))
            .await?;
        serde_json::from_value(value).map_err(|e| DingTalkError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::call_kind;

    #[test]
    fn calls_are_counted_by_kind() {
        assert_eq!(call_kind("/v1.0/oauth2/accessToken"), None);
        assert_eq!(call_kind("/v1.0/robot/ding/send"), Some("ding"));
        assert_eq!(call_kind("/v1.0/robot/ding/recall"), Some("ding_recall"));
        assert_eq!(
            call_kind("/v1.0/robot/oToMessages/readStatus?robotCode=x&processQueryKey=a%2Bb%3D"),
            Some("read_status")
        );
        assert_eq!(
            call_kind("/v1.0/robot/oToMessages/batchSend"),
            Some("message")
        );
        assert_eq!(call_kind("/v1.0/something/new?x=1"), Some("other"));
    }
}
