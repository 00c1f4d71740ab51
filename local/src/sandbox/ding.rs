//! DING (`/v1.0/robot/ding/send|recall`) and read receipts of 1:1 robot messages
//! (`/v1.0/robot/oToMessages/readStatus`), as documented for DingTalk (protocol
//! notes §10): same token, QPS, quota and fault handling as the other new-API calls.

use std::collections::HashMap;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::openapi::header_token;
use super::{MessageTarget, Sandbox, SandboxApp, now_ms};

/// Path of `RobotSendDing`.
pub const DING_SEND_PATH: &str = "/v1.0/robot/ding/send";
/// Path of `RobotRecallDing`.
pub const DING_RECALL_PATH: &str = "/v1.0/robot/ding/recall";
/// Path of `BatchOTOQuery`.
pub const READ_STATUS_PATH: &str = "/v1.0/robot/oToMessages/readStatus";

/// How long DingTalk answers read status after sending (24 h).
const READ_STATUS_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// `failedList` reason the sandbox gives for userIds it does not know.
pub const UNKNOWN_USER_REASON: &str = "invalidStaffIdList";

/// A DING the sandbox received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DingRecord {
    /// openDingId returned for it.
    pub open_ding_id: String,
    /// AppKey of the robot that sent it (its robotCode).
    pub app_key: String,
    /// remindType: 1 in-app, 2 SMS, 3 phone call.
    pub remind: u8,
    /// userIds it reached (known people only; the others are in `failedList`).
    pub receivers: Vec<String>,
    /// Text.
    pub content: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// Whether the robot recalled it.
    pub recalled: bool,
}

impl DingRecord {
    /// What the page calls it: "phone DING", "SMS DING" or "in-app DING".
    pub fn kind_label(&self) -> &'static str {
        match self.remind {
            3 => "phone DING",
            2 => "SMS DING",
            _ => "in-app DING",
        }
    }
}

impl Sandbox {
    /// Whether the organisation has SMS / phone DING quota (default: yes). Without
    /// it, SMS and phone DINGs fail with `ding.serverquota.insufficient`; in-app
    /// DINGs still work.
    pub fn set_ding_call_quota(&self, available: bool) {
        self.state().ding_call_quota_off = !available;
    }

    /// Whether SMS / phone DINGs have quota.
    pub fn ding_call_quota(&self) -> bool {
        !self.state().ding_call_quota_off
    }

    /// DINGs received so far, oldest first.
    pub fn dings(&self) -> Vec<DingRecord> {
        self.state().dings.clone()
    }

    /// A person reads a 1:1 robot message (what opening the chat does); ignored
    /// when no such message went to that person.
    pub fn mark_read(&self, process_query_key: &str, user_id: &str) {
        let mut state = self.state();
        let sent = state.messages.iter().any(|m| {
            m.process_query_key == process_query_key
                && m.target == MessageTarget::User(user_id.to_string())
        });
        if sent {
            state
                .read_at
                .entry((process_query_key.to_string(), user_id.to_string()))
                .or_insert_with(now_ms);
        }
    }

    /// When a person read a 1:1 robot message (None: unread).
    pub fn read_at(&self, process_query_key: &str, user_id: &str) -> Option<i64> {
        self.state()
            .read_at
            .get(&(process_query_key.to_string(), user_id.to_string()))
            .copied()
    }

    /// Marks an app's DING recalled; false when the app sent no such DING.
    fn recall(&self, app_key: &str, open_ding_id: &str) -> bool {
        let mut state = self.state();
        let ding = state
            .dings
            .iter_mut()
            .find(|d| d.open_ding_id == open_ding_id && d.app_key == app_key);
        match ding {
            Some(ding) => {
                ding.recalled = true;
                true
            }
            None => false,
        }
    }
}

/// A processQueryKey for a 1:1 batch: like DingTalk's, it holds `+`, `/` and `=`
/// (so clients must URL-encode it in `readStatus`).
pub(super) fn one_to_one_key(sandbox: &Sandbox) -> String {
    format!("{}+oTo/Key=", sandbox.next_id("pqk"))
}

pub(super) fn routes() -> Router<Sandbox> {
    Router::new()
        .route(DING_SEND_PATH, post(send_ding))
        .route(DING_RECALL_PATH, post(recall_ding))
        .route(READ_STATUS_PATH, get(read_status))
}

/// Token, budget and faults (the common guard), then `robotCode` must be the app's.
fn robot_guard(
    sandbox: &Sandbox,
    path: &str,
    headers: &HeaderMap,
    robot_code: Option<&str>,
) -> Result<SandboxApp, Box<Response>> {
    let app = sandbox.guard(path, header_token(headers))?;
    if robot_code != Some(app.app_key.as_str()) {
        return Err(Box::new(sandbox.refuse(
            path,
            &app,
            400,
            "invalid.chatbotId",
            "robotCode不存在或与应用不匹配",
        )));
    }
    Ok(app)
}

/// A DING request's `remindType`, receivers and content, checked like DingTalk does.
struct DingRequest {
    remind: u8,
    receivers: Vec<String>,
    content: String,
}

fn ding_request(
    sandbox: &Sandbox,
    body: &Value,
) -> Result<DingRequest, (u16, &'static str, &'static str)> {
    let remind = body
        .get("remindType")
        .and_then(Value::as_u64)
        .and_then(|r| u8::try_from(r).ok())
        .filter(|r| (1..=3).contains(r))
        .ok_or((
            400,
            "invalidParameter.remindType",
            "remindType must be 1, 2 or 3",
        ))?;
    let receivers: Vec<String> = body
        .get("receiverUserIdList")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if receivers.is_empty() {
        return Err((400, "MissingParameter", "receiverUserIdList is required"));
    }
    let limit = if remind == 1 { 200 } else { 20 };
    if receivers.len() > limit {
        return Err((400, "ding.receivercount.limit", "DING接收人数超过限制"));
    }
    let content = body
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if content.trim().is_empty() {
        return Err((400, "MissingParameter", "content is required"));
    }
    if remind != 1 && !sandbox.ding_call_quota() {
        return Err((
            400,
            "ding.serverquota.insufficient",
            "短信/电话DING额度不足",
        ));
    }
    Ok(DingRequest {
        remind,
        receivers,
        content: content.to_string(),
    })
}

async fn send_ding(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = DING_SEND_PATH;
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let robot_code = body.get("robotCode").and_then(Value::as_str);
    let app = match robot_guard(&sandbox, path, &headers, robot_code) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let request = match ding_request(&sandbox, &body) {
        Ok(request) => request,
        Err((status, code, message)) => return sandbox.refuse(path, &app, status, code, message),
    };
    let known: Vec<String> = sandbox.users().into_iter().map(|u| u.user_id).collect();
    let (reached, unknown): (Vec<String>, Vec<String>) = request
        .receivers
        .into_iter()
        .partition(|id| known.contains(id));
    let open_ding_id = sandbox.next_id("ding");
    sandbox.state().dings.push(DingRecord {
        open_ding_id: open_ding_id.clone(),
        app_key: app.app_key.clone(),
        remind: request.remind,
        receivers: reached,
        content: request.content,
        at_ms: now_ms(),
        recalled: false,
    });
    let mut failed = serde_json::Map::new();
    if !unknown.is_empty() {
        failed.insert(UNKNOWN_USER_REASON.into(), json!(unknown));
    }
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"openDingId": open_ding_id, "failedList": failed})).into_response()
}

async fn recall_ding(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = DING_RECALL_PATH;
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let robot_code = body.get("robotCode").and_then(Value::as_str);
    let app = match robot_guard(&sandbox, path, &headers, robot_code) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let open_ding_id = body
        .get("openDingId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // Recalling twice is accepted (the DING stays recalled).
    if !sandbox.recall(&app.app_key, open_ding_id) {
        return sandbox.refuse(
            path,
            &app,
            400,
            "recall.ding.exception",
            "DING不存在或不是该机器人发送的",
        );
    }
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"openDingId": open_ding_id})).into_response()
}

async fn read_status(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let path = READ_STATUS_PATH;
    let robot_code = query.get("robotCode").map(String::as_str);
    let app = match robot_guard(&sandbox, path, &headers, robot_code) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let key = query
        .get("processQueryKey")
        .map(String::as_str)
        .unwrap_or_default();
    let receivers: Vec<(String, i64)> = sandbox
        .messages()
        .into_iter()
        .filter(|m| !key.is_empty() && m.process_query_key == key)
        .filter_map(|m| match m.target {
            MessageTarget::User(user_id) => Some((user_id, m.at_ms)),
            MessageTarget::Group(_) => None,
        })
        .collect();
    let Some(sent_ms) = receivers.iter().map(|(_, at)| *at).min() else {
        return sandbox.refuse(
            path,
            &app,
            400,
            "invalidParameter.processQueryKey",
            "processQueryKey不存在",
        );
    };
    if now_ms() - sent_ms > READ_STATUS_WINDOW_MS {
        return sandbox.refuse(
            path,
            &app,
            400,
            "invalidParameter.processQueryKey",
            "只能查询24小时内发送的消息",
        );
    }
    let list = read_info_list(&sandbox, key, &receivers);
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"sendStatus": "SUCCESS", "messageReadInfoList": list})).into_response()
}

fn read_info_list(sandbox: &Sandbox, key: &str, receivers: &[(String, i64)]) -> Vec<Value> {
    let users = sandbox.users();
    receivers
        .iter()
        .map(|(user_id, _)| {
            let name = users
                .iter()
                .find(|u| &u.user_id == user_id)
                .map(|u| u.name.clone())
                .unwrap_or_default();
            let read_at = sandbox.read_at(key, user_id);
            json!({
                "name": name,
                "userId": user_id,
                "readStatus": if read_at.is_some() { "READ" } else { "UNREAD" },
                "readTimestamp": read_at.unwrap_or(0),
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "ding_tests.rs"]
mod tests;
