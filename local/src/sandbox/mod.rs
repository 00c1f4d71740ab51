//! The DingTalk sandbox: an in-memory organisation served over HTTP with the
//! paths, headers and error bodies of DingTalk's open API (protocol reference §3, §7, §8).
//!
//! Tests drive it through [`Sandbox`]'s methods (add apps and groups, revoke tokens,
//! inject faults, read the calls it received); it also sends signed, encrypted
//! events to our callback like DingTalk does ([`events`]).

pub mod events;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

/// Lifetime DingTalk gives an access token.
pub const TOKEN_LIFETIME_SECS: i64 = 7200;

/// An internal app of the sandbox organisation.
#[derive(Debug, Clone)]
pub struct SandboxApp {
    /// Client ID (AppKey).
    pub app_key: String,
    /// Client secret.
    pub app_secret: String,
    /// CorpId of the organisation.
    pub corp_id: String,
}

/// A group chat of the sandbox organisation.
#[derive(Debug, Clone)]
pub struct SandboxGroup {
    /// openConversationId.
    pub open_conversation_id: String,
    /// Group name.
    pub title: String,
    /// Owner userId.
    pub owner_user_id: String,
    /// coolAppCode when our cool app is installed in the group.
    pub cool_app_code: Option<String>,
    /// Whether the group was disbanded.
    pub disbanded: bool,
}

/// One API call the sandbox received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCall {
    /// Request path.
    pub path: String,
    /// AppKey the call was made as (from its token), if any.
    pub app_key: Option<String>,
    /// HTTP status answered.
    pub status: u16,
}

/// An error answer to give instead of the real one.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Path it applies to.
    pub path: String,
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
}

impl Fault {
    /// New-API throttle: 403 `Forbidden.AccessDenied.QpsLimitForAppkeyAndApi`.
    pub fn qps_limited(path: &str) -> Self {
        Self::new_api(
            path,
            403,
            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
            "qps limit exceeded",
        )
    }

    /// New-API monthly quota: 403 `Forbidden.AccessDenied.ApiCountLimitForOrg`.
    pub fn quota_exhausted(path: &str) -> Self {
        Self::new_api(
            path,
            403,
            "Forbidden.AccessDenied.ApiCountLimitForOrg",
            "api count limit for org",
        )
    }

    /// DingTalk-side failure: 502.
    pub fn server_error(path: &str) -> Self {
        Self::new_api(path, 502, "ServiceUnavailable", "service unavailable")
    }

    /// A new-API error body `{"code","requestid","message"}`.
    pub fn new_api(path: &str, status: u16, code: &str, message: &str) -> Self {
        Self {
            path: path.to_string(),
            status,
            body: json!({"code": code, "requestid": "sandbox-fault", "message": message}),
        }
    }
}

#[derive(Default)]
struct SandboxState {
    apps: HashMap<String, SandboxApp>,
    groups: HashMap<String, SandboxGroup>,
    /// token → (app key, expiry in Unix seconds)
    tokens: HashMap<String, (String, i64)>,
    calls: Vec<RecordedCall>,
    faults: VecDeque<Fault>,
    token_counter: u64,
}

/// The DingTalk sandbox.
#[derive(Clone, Default)]
pub struct Sandbox {
    state: Arc<Mutex<SandboxState>>,
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn new_api_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        Json(json!({"code": code, "requestid": uuid::Uuid::new_v4().to_string(), "message": message})),
    )
        .into_response()
}

impl Sandbox {
    /// An empty organisation.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, SandboxState> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an internal app.
    pub fn add_app(&self, app: SandboxApp) {
        self.state().apps.insert(app.app_key.clone(), app);
    }

    /// Adds (or replaces) a group chat.
    pub fn add_group(&self, group: SandboxGroup) {
        self.state()
            .groups
            .insert(group.open_conversation_id.clone(), group);
    }

    /// Renames a group (what a user does in DingTalk before the event is pushed).
    pub fn rename_group(&self, open_conversation_id: &str, title: &str) {
        if let Some(group) = self.state().groups.get_mut(open_conversation_id) {
            group.title = title.to_string();
        }
    }

    /// Marks our cool app as installed in a group (or removes it with `None`).
    pub fn set_cool_app(&self, open_conversation_id: &str, cool_app_code: Option<&str>) {
        if let Some(group) = self.state().groups.get_mut(open_conversation_id) {
            group.cool_app_code = cool_app_code.map(String::from);
        }
    }

    /// Invalidates every issued token (as if they expired early).
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Answers the next call to `fault.path` with the fault instead.
    pub fn inject(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state().calls.clone()
    }

    /// How many calls were made to `path`.
    pub fn call_count(&self, path: &str) -> usize {
        self.state().calls.iter().filter(|c| c.path == path).count()
    }

    /// The HTTP routes of the simulated open API.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1.0/oauth2/accessToken", post(access_token))
            .route("/gettoken", get(old_token))
            .route("/v1.0/im/sceneGroups/query", post(query_scene_group))
            .with_state(self.clone())
    }

    /// Serves the open API on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    fn record(&self, path: &str, app_key: Option<String>, status: u16) {
        self.state().calls.push(RecordedCall {
            path: path.to_string(),
            app_key,
            status,
        });
    }

    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut state = self.state();
        let index = state.faults.iter().position(|f| f.path == path)?;
        state.faults.remove(index)
    }

    /// Issues a token for an app, reusing a live one like DingTalk does.
    fn issue_token(&self, app_key: &str) -> (String, i64) {
        let now = now_secs();
        let mut state = self.state();
        if let Some((token, expiry)) = state
            .tokens
            .iter()
            .find(|(_, (key, expiry))| key == app_key && *expiry > now)
            .map(|(t, (_, e))| (t.clone(), *e))
        {
            return (token, expiry - now);
        }
        state.token_counter += 1;
        let token = format!(
            "sandbox-token-{}-{}",
            state.token_counter,
            uuid::Uuid::new_v4().simple()
        );
        state.tokens.insert(
            token.clone(),
            (app_key.to_string(), now + TOKEN_LIFETIME_SECS),
        );
        (token, TOKEN_LIFETIME_SECS)
    }

    /// The app a new-API request's `x-acs-dingtalk-access-token` belongs to.
    fn authenticate(&self, headers: &HeaderMap) -> Option<SandboxApp> {
        let token = headers.get("x-acs-dingtalk-access-token")?.to_str().ok()?;
        let state = self.state();
        let (app_key, expiry) = state.tokens.get(token)?;
        if *expiry <= now_secs() {
            return None;
        }
        state.apps.get(app_key).cloned()
    }

    /// Common preamble of a token-protected new-API call: fault injection, then auth.
    fn guard(&self, path: &str, headers: &HeaderMap) -> Result<SandboxApp, Box<Response>> {
        let app = self.authenticate(headers);
        if let Some(fault) = self.take_fault(path) {
            self.record(path, app.map(|a| a.app_key), fault.status);
            let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST);
            return Err(Box::new((status, Json(fault.body)).into_response()));
        }
        match app {
            Some(app) => Ok(app),
            None => {
                self.record(path, None, 401);
                Err(Box::new(new_api_error(
                    401,
                    "InvalidAuthentication",
                    "不合法的access_token",
                )))
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenRequest {
    app_key: Option<String>,
    app_secret: Option<String>,
}

async fn access_token(
    State(sandbox): State<Sandbox>,
    body: Option<Json<TokenRequest>>,
) -> Response {
    let path = "/v1.0/oauth2/accessToken";
    if let Some(fault) = sandbox.take_fault(path) {
        sandbox.record(path, None, fault.status);
        let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST);
        return (status, Json(fault.body)).into_response();
    }
    let Some(Json(request)) = body else {
        sandbox.record(path, None, 400);
        return new_api_error(
            400,
            "MissingParameter",
            "body must be JSON with appKey and appSecret",
        );
    };
    let app = request
        .app_key
        .as_deref()
        .and_then(|key| sandbox.state().apps.get(key).cloned());
    match app {
        Some(app) if request.app_secret.as_deref() == Some(app.app_secret.as_str()) => {
            let (token, expire_in) = sandbox.issue_token(&app.app_key);
            sandbox.record(path, Some(app.app_key), 200);
            Json(json!({"accessToken": token, "expireIn": expire_in})).into_response()
        }
        _ => {
            sandbox.record(path, None, 400);
            new_api_error(
                400,
                "invalidClientIdOrSecret",
                "无效的clientId或者clientSecret",
            )
        }
    }
}

async fn old_token(
    State(sandbox): State<Sandbox>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let app = query
        .get("appkey")
        .and_then(|key| sandbox.state().apps.get(key).cloned());
    match app {
        Some(app) if query.get("appsecret") == Some(&app.app_secret) => {
            let (token, expire_in) = sandbox.issue_token(&app.app_key);
            sandbox.record("/gettoken", Some(app.app_key), 200);
            Json(json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expire_in}))
                .into_response()
        }
        _ => {
            sandbox.record("/gettoken", None, 200);
            Json(json!({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})).into_response()
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SceneGroupQuery {
    open_conversation_id: Option<String>,
    cool_app_code: Option<String>,
}

async fn query_scene_group(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<SceneGroupQuery>>,
) -> Response {
    let path = "/v1.0/im/sceneGroups/query";
    let app = match sandbox.guard(path, &headers) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let Some(Json(query)) = body else {
        sandbox.record(path, Some(app.app_key), 400);
        return new_api_error(400, "MissingParameter", "openConversationId is required");
    };
    let group = query
        .open_conversation_id
        .as_deref()
        .and_then(|cid| sandbox.state().groups.get(cid).cloned());
    let Some(group) = group else {
        sandbox.record(path, Some(app.app_key), 400);
        return new_api_error(400, "invalid.openConversationId", "群会话不存在");
    };
    if group.cool_app_code.is_some() && group.cool_app_code != query.cool_app_code {
        sandbox.record(path, Some(app.app_key), 400);
        return new_api_error(
            400,
            "invalidParameter.coolAppCode",
            "coolAppCode is required for groups with the cool app installed",
        );
    }
    sandbox.record(path, Some(app.app_key), 200);
    Json(json!({
        "success": true,
        "openConversationId": group.open_conversation_id,
        "title": group.title,
        "ownerUserId": group.owner_user_id,
        "icon": "",
        "groupUrl": "",
        "templateId": "",
        "status": if group.disbanded { 2 } else { 1 },
    }))
    .into_response()
}
