//! The DingTalk sandbox: an in-memory organisation served over HTTP with the
//! paths, headers and error bodies of DingTalk's open API (ARCHITECTURE.md §7),
//! and a page at `/sandbox` to look at it and act in it.
//!
//! Tests drive it through [`Sandbox`]'s methods (add apps, groups and people, revoke
//! tokens, inject faults, set limits, read what it received); it also sends signed,
//! encrypted events to our callback like DingTalk does ([`events`]).

mod dev_console;
pub mod ding;
pub mod events;
mod openapi;
pub mod page;
mod page_people;
mod page_render;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

pub use ding::DingRecord;

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

/// Where the sandbox pushes an app's events (the app's event subscription settings).
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Request URL (our `/dingtalk/{id}/events`).
    pub url: String,
    /// Signature token.
    pub token: String,
    /// Encryption key.
    pub aes_key: String,
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

/// A person of the sandbox organisation.
#[derive(Debug, Clone)]
pub struct SandboxUser {
    /// userId.
    pub user_id: String,
    /// unionId.
    pub union_id: String,
    /// Display name.
    pub name: String,
    /// Work email, if any.
    pub email: Option<String>,
    /// Mobile, if any.
    pub mobile: Option<String>,
}

/// Where a robot message went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageTarget {
    /// A group chat (openConversationId).
    Group(String),
    /// A person's 1:1 chat with the robot (userId).
    User(String),
}

/// A robot message as DingTalk received it.
#[derive(Debug, Clone)]
pub struct RobotMessage {
    /// processQueryKey returned for it.
    pub process_query_key: String,
    /// Where it went.
    pub target: MessageTarget,
    /// msgKey (`sampleMarkdown`, `sampleActionCard`, …).
    pub msg_key: String,
    /// msgParam, parsed.
    pub msg_param: Value,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// An interactive card instance.
#[derive(Debug, Clone)]
pub struct CardInstance {
    /// outTrackId.
    pub out_track_id: String,
    /// cardTemplateId.
    pub card_template_id: String,
    /// callbackRouteKey.
    pub callback_route_key: Option<String>,
    /// Open space ids it was delivered to (`dtv1.card//IM_GROUP.cid`, …).
    pub spaces: Vec<String>,
    /// Shared card data (`cardParamMap`).
    pub card_data: Map<String, Value>,
    /// Per-user private data.
    pub private_data: Map<String, Value>,
    /// How many update calls it received.
    pub updates: u32,
    /// When it was created (Unix ms).
    pub created_at_ms: i64,
}

/// A card callback registration.
#[derive(Debug, Clone)]
pub struct CardCallbackRoute {
    /// callbackUrl.
    pub url: String,
    /// apiSecret.
    pub api_secret: String,
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
    /// DingTalk error code answered, if any.
    pub code: Option<String>,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// An event the sandbox pushed to a subscription, and how it went.
#[derive(Debug, Clone)]
pub struct EventDelivery {
    /// EventType.
    pub event_type: String,
    /// What it was about (group title or id).
    pub subject: String,
    /// HTTP status of our callback's answer (0 when unreachable).
    pub status: u16,
    /// Whether the answer was the encrypted `success` with a valid signature.
    pub acknowledged: bool,
    /// Error text or a short note.
    pub detail: String,
    /// When (Unix ms).
    pub at_ms: i64,
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

/// The API budget the sandbox enforces like DingTalk (off when `None`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Calls per second per app and API.
    pub qps: Option<u32>,
    /// Counted calls per app per month.
    pub monthly_quota: Option<u64>,
}

#[derive(Default)]
struct SandboxState {
    apps: HashMap<String, SandboxApp>,
    subscriptions: HashMap<String, Subscription>,
    groups: Vec<SandboxGroup>,
    users: Vec<SandboxUser>,
    /// token → (app key, expiry in Unix seconds)
    tokens: HashMap<String, (String, i64)>,
    /// auth code → (user id, expiry in Unix seconds, used)
    auth_codes: HashMap<String, (String, i64, bool)>,
    messages: Vec<RobotMessage>,
    cards: Vec<CardInstance>,
    callback_routes: HashMap<String, CardCallbackRoute>,
    dings: Vec<DingRecord>,
    /// SMS / phone DINGs fail for want of quota (default: quota available).
    ding_call_quota_off: bool,
    /// (processQueryKey, userId) → when the person read the 1:1 message
    read_at: HashMap<(String, String), i64>,
    calls: Vec<RecordedCall>,
    deliveries: Vec<EventDelivery>,
    faults: VecDeque<Fault>,
    limits: Limits,
    /// (app, path, second) → calls in that second
    per_second: HashMap<(String, String, i64), u32>,
    /// app → counted calls this month
    monthly: HashMap<String, u64>,
    counter: u64,
}

/// The DingTalk sandbox.
#[derive(Clone, Default)]
pub struct Sandbox {
    state: Arc<Mutex<SandboxState>>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn now_secs() -> i64 {
    now_ms() / 1000
}

/// A new-API error answer `{"code","requestid","message"}`.
pub(crate) fn new_api_error(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let body =
        json!({"code": code, "requestid": uuid::Uuid::new_v4().to_string(), "message": message});
    (status, Json(body)).into_response()
}

impl Sandbox {
    /// An empty organisation with no limits.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, SandboxState> {
        // A poisoned lock only means another thread panicked; the data is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_id(&self, prefix: &str) -> String {
        let mut state = self.state();
        state.counter += 1;
        format!(
            "{prefix}{:06}{}",
            state.counter,
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        )
    }

    /// Registers an internal app.
    pub fn add_app(&self, app: SandboxApp) {
        self.state().apps.insert(app.app_key.clone(), app);
    }

    /// The registered apps.
    pub fn apps(&self) -> Vec<SandboxApp> {
        let mut apps: Vec<_> = self.state().apps.values().cloned().collect();
        apps.sort_by(|a, b| a.app_key.cmp(&b.app_key));
        apps
    }

    /// Points an app's event subscription at `subscription`.
    pub fn subscribe(&self, app_key: &str, subscription: Subscription) {
        self.state()
            .subscriptions
            .insert(app_key.to_string(), subscription);
    }

    /// An app's event subscription.
    pub fn subscription(&self, app_key: &str) -> Option<Subscription> {
        self.state().subscriptions.get(app_key).cloned()
    }

    /// Adds (or replaces) a group chat.
    pub fn add_group(&self, group: SandboxGroup) {
        let mut state = self.state();
        state
            .groups
            .retain(|g| g.open_conversation_id != group.open_conversation_id);
        state.groups.push(group);
    }

    /// The group chats, in the order they were added.
    pub fn groups(&self) -> Vec<SandboxGroup> {
        self.state().groups.clone()
    }

    /// One group chat.
    pub fn group(&self, open_conversation_id: &str) -> Option<SandboxGroup> {
        self.state()
            .groups
            .iter()
            .find(|g| g.open_conversation_id == open_conversation_id)
            .cloned()
    }

    fn update_group(&self, open_conversation_id: &str, change: impl FnOnce(&mut SandboxGroup)) {
        if let Some(group) = self
            .state()
            .groups
            .iter_mut()
            .find(|g| g.open_conversation_id == open_conversation_id)
        {
            change(group);
        }
    }

    /// Renames a group (what a user does in DingTalk before the event is pushed).
    pub fn rename_group(&self, open_conversation_id: &str, title: &str) {
        self.update_group(open_conversation_id, |g| g.title = title.to_string());
    }

    /// Marks our cool app as installed in a group (or removes it with `None`).
    pub fn set_cool_app(&self, open_conversation_id: &str, cool_app_code: Option<&str>) {
        self.update_group(open_conversation_id, |g| {
            g.cool_app_code = cool_app_code.map(String::from);
        });
    }

    /// Adds a person.
    pub fn add_user(&self, user: SandboxUser) {
        let mut state = self.state();
        state.users.retain(|u| u.user_id != user.user_id);
        state.users.push(user);
    }

    /// The people.
    pub fn users(&self) -> Vec<SandboxUser> {
        self.state().users.clone()
    }

    /// Issues a login-free auth code for a person (what `dd.requestAuthCode` returns):
    /// valid 5 minutes, single use.
    pub fn issue_auth_code(&self, user_id: &str) -> String {
        let code = self.next_id("authcode");
        self.state()
            .auth_codes
            .insert(code.clone(), (user_id.to_string(), now_secs() + 300, false));
        code
    }

    /// Invalidates every issued token (as if they expired early).
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    /// Answers the next call to `fault.path` with the fault instead.
    pub fn inject(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// Sets the enforced QPS and monthly quota.
    pub fn set_limits(&self, limits: Limits) {
        self.state().limits = limits;
    }

    /// The enforced limits.
    pub fn limits(&self) -> Limits {
        self.state().limits
    }

    /// Counted calls of an app this month.
    pub fn monthly_usage(&self, app_key: &str) -> u64 {
        self.state().monthly.get(app_key).copied().unwrap_or(0)
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.state().calls.clone()
    }

    /// How many calls were made to `path`.
    pub fn call_count(&self, path: &str) -> usize {
        self.state().calls.iter().filter(|c| c.path == path).count()
    }

    /// Robot messages received so far.
    pub fn messages(&self) -> Vec<RobotMessage> {
        self.state().messages.clone()
    }

    /// Card instances created so far.
    pub fn cards(&self) -> Vec<CardInstance> {
        self.state().cards.clone()
    }

    /// Card callback registrations, by route key.
    pub fn callback_routes(&self) -> HashMap<String, CardCallbackRoute> {
        self.state().callback_routes.clone()
    }

    /// Events pushed so far, newest last.
    pub fn deliveries(&self) -> Vec<EventDelivery> {
        self.state().deliveries.clone()
    }

    /// Applies a card callback's answer to the card (shared data by key, and the
    /// clicker's private data).
    fn apply_card_answer(&self, out_track_id: &str, user_id: &str, answer: &Value) {
        let mut state = self.state();
        let Some(card) = state
            .cards
            .iter_mut()
            .find(|c| c.out_track_id == out_track_id)
        else {
            return;
        };
        if let Some(data) = answer
            .pointer("/cardData/cardParamMap")
            .and_then(Value::as_object)
        {
            card.card_data.extend(data.clone());
        }
        if let Some(private) = answer
            .pointer("/userPrivateData/cardParamMap")
            .and_then(Value::as_object)
        {
            let entry = card
                .private_data
                .entry(user_id.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(existing) = entry.as_object_mut() {
                existing.extend(private.clone());
            }
        }
    }

    fn record_delivery(&self, delivery: EventDelivery) {
        let mut state = self.state();
        state.deliveries.push(delivery);
        let excess = state.deliveries.len().saturating_sub(200);
        state.deliveries.drain(..excess);
    }

    fn record(&self, path: &str, app_key: Option<String>, status: u16, code: Option<&str>) {
        let mut state = self.state();
        state.calls.push(RecordedCall {
            path: path.to_string(),
            app_key,
            status,
            code: code.map(String::from),
            at_ms: now_ms(),
        });
        let excess = state.calls.len().saturating_sub(10_000);
        state.calls.drain(..excess);
    }

    fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut state = self.state();
        let index = state.faults.iter().position(|f| f.path == path)?;
        state.faults.remove(index)
    }

    /// Issues a token for an app, reusing a live one like DingTalk does.
    fn issue_token(&self, app_key: &str) -> (String, i64) {
        let now = now_secs();
        let live = self
            .state()
            .tokens
            .iter()
            .find(|(_, (key, expiry))| key == app_key && *expiry > now)
            .map(|(t, (_, e))| (t.clone(), *e - now));
        if let Some(live) = live {
            return live;
        }
        let token = self.next_id("sandbox-token-");
        self.state().tokens.insert(
            token.clone(),
            (app_key.to_string(), now + TOKEN_LIFETIME_SECS),
        );
        (token, TOKEN_LIFETIME_SECS)
    }

    fn app_for_token(&self, token: &str) -> Option<SandboxApp> {
        let state = self.state();
        let (app_key, expiry) = state.tokens.get(token)?;
        if *expiry <= now_secs() {
            return None;
        }
        state.apps.get(app_key).cloned()
    }

    /// Counts a call against the app's QPS and monthly budget; `Some(code)` when over.
    fn spend(&self, app_key: &str, path: &str) -> Option<&'static str> {
        let mut state = self.state();
        let limits = state.limits;
        let second = now_secs();
        state.per_second.retain(|(_, _, s), _| *s >= second - 1);
        let used = state
            .per_second
            .entry((app_key.to_string(), path.to_string(), second))
            .or_default();
        if limits.qps.is_some_and(|qps| *used >= qps) {
            return Some("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi");
        }
        *used += 1;
        let month = state.monthly.entry(app_key.to_string()).or_default();
        if limits.monthly_quota.is_some_and(|quota| *month >= quota) {
            return Some("Forbidden.AccessDenied.ApiCountLimitForOrg");
        }
        *month += 1;
        None
    }

    /// The common preamble of a token-protected, quota-counted new-API call:
    /// injected faults, then the token, then the budget.
    fn guard(&self, path: &str, token: Option<&str>) -> Result<SandboxApp, Box<Response>> {
        let app = token.and_then(|t| self.app_for_token(t));
        if let Some(fault) = self.take_fault(path) {
            let code = fault
                .body
                .get("code")
                .and_then(Value::as_str)
                .map(String::from);
            self.record(path, app.map(|a| a.app_key), fault.status, code.as_deref());
            let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::BAD_REQUEST);
            return Err(Box::new((status, Json(fault.body)).into_response()));
        }
        let Some(app) = app else {
            self.record(path, None, 401, Some("InvalidAuthentication"));
            return Err(Box::new(new_api_error(
                401,
                "InvalidAuthentication",
                "不合法的access_token",
            )));
        };
        if let Some(code) = self.spend(&app.app_key, path) {
            self.record(path, Some(app.app_key), 403, Some(code));
            return Err(Box::new(new_api_error(
                403,
                code,
                "调用频率或调用量超过限制",
            )));
        }
        Ok(app)
    }

    /// Records a refusal and builds its answer.
    fn refuse(
        &self,
        path: &str,
        app: &SandboxApp,
        status: u16,
        code: &str,
        message: &str,
    ) -> Response {
        self.record(path, Some(app.app_key.clone()), status, Some(code));
        new_api_error(status, code, message)
    }

    /// The simulated open API (mount at the DingTalk base URL).
    pub fn api_router(&self) -> axum::Router {
        openapi::router(self.clone())
    }

    /// Serves the open API on `listener` until the task is dropped.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.api_router()).await
    }
}
