//! The simulated DingTalk open API endpoints.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::{
    CardCallbackRoute, CardInstance, MessageTarget, RobotMessage, Sandbox, new_api_error, now_ms,
    now_secs,
};

/// Largest `msgParam` DingTalk accepts (bytes).
pub const MAX_MSG_PARAM_BYTES: usize = 15_000;

pub(super) fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/v1.0/oauth2/accessToken", post(access_token))
        .route("/gettoken", get(old_token))
        .route("/v1.0/im/sceneGroups/query", post(query_scene_group))
        .route("/v1.0/robot/groupMessages/send", post(group_message))
        .route(
            "/v1.0/robot/oToMessages/batchSend",
            post(one_to_one_messages),
        )
        .route("/v1.0/card/instances/createAndDeliver", post(create_card))
        .route("/v1.0/card/instances", put(update_card))
        .route("/v1.0/card/callbacks/register", post(register_callback))
        .route("/topapi/v2/user/getuserinfo", post(user_by_auth_code))
        .route("/topapi/v2/user/get", post(user_detail))
        .route("/topapi/v2/user/getbymobile", post(user_by_mobile))
        .merge(super::ding::routes())
        .with_state(sandbox)
}

pub(super) fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-acs-dingtalk-access-token")
        .and_then(|v| v.to_str().ok())
}

fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

async fn access_token(State(sandbox): State<Sandbox>, body: Option<Json<Value>>) -> Response {
    let path = "/v1.0/oauth2/accessToken";
    if let Some(fault) = sandbox.take_fault(path) {
        sandbox.record(path, None, fault.status, None);
        let status = axum::http::StatusCode::from_u16(fault.status)
            .unwrap_or(axum::http::StatusCode::BAD_REQUEST);
        return (status, Json(fault.body)).into_response();
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let app = str_field(&body, "appKey").and_then(|key| sandbox.state().apps.get(key).cloned());
    match app {
        Some(app) if str_field(&body, "appSecret") == Some(app.app_secret.as_str()) => {
            let (token, expire_in) = sandbox.issue_token(&app.app_key);
            sandbox.record(path, Some(app.app_key), 200, None);
            Json(json!({"accessToken": token, "expireIn": expire_in})).into_response()
        }
        _ => {
            sandbox.record(path, None, 400, Some("invalidClientIdOrSecret"));
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
            sandbox.record("/gettoken", Some(app.app_key), 200, None);
            Json(json!({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": expire_in}))
                .into_response()
        }
        _ => {
            sandbox.record("/gettoken", None, 200, Some("40089"));
            Json(json!({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})).into_response()
        }
    }
}

async fn query_scene_group(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/v1.0/im/sceneGroups/query";
    let app = match sandbox.guard(path, header_token(&headers)) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let Some(group) = str_field(&body, "openConversationId").and_then(|cid| sandbox.group(cid))
    else {
        return sandbox.refuse(
            path,
            &app,
            400,
            "invalid.openConversationId",
            "群会话不存在",
        );
    };
    if group.cool_app_code.is_some()
        && group.cool_app_code.as_deref() != str_field(&body, "coolAppCode")
    {
        return sandbox.refuse(
            path,
            &app,
            400,
            "invalidParameter.coolAppCode",
            "coolAppCode is required for groups with the cool app installed",
        );
    }
    sandbox.record(path, Some(app.app_key), 200, None);
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

/// Parses `msgKey` + `msgParam` (a JSON string of at most 15,000 bytes).
fn message_body(body: &Value) -> Result<(String, Value), (&'static str, &'static str)> {
    let msg_key = str_field(body, "msgKey").ok_or(("MissingParameter", "msgKey is required"))?;
    let raw = str_field(body, "msgParam").ok_or(("MissingParameter", "msgParam is required"))?;
    if raw.len() > MAX_MSG_PARAM_BYTES {
        return Err(("invalidParameter.msgParam.tooLong", "msgParam is too long"));
    }
    let param: Value = serde_json::from_str(raw).map_err(|_| {
        (
            "invalidParameter.msgParam",
            "msgParam must be a JSON string",
        )
    })?;
    Ok((msg_key.to_string(), param))
}

/// The checks every robot send starts with: token and budget, `msgKey`/`msgParam`,
/// and a `robotCode` that is the app's own.
fn robot_request(
    sandbox: &Sandbox,
    path: &str,
    headers: &HeaderMap,
    body: Option<Json<Value>>,
) -> Result<(super::SandboxApp, Value, String, Value), Box<Response>> {
    let app = sandbox.guard(path, header_token(headers))?;
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let (msg_key, param) = message_body(&body)
        .map_err(|(code, message)| Box::new(sandbox.refuse(path, &app, 400, code, message)))?;
    if str_field(&body, "robotCode") != Some(app.app_key.as_str()) {
        return Err(Box::new(sandbox.refuse(
            path,
            &app,
            400,
            "invalidParameter.robotCode.notExist",
            "robotCode不存在或与appkey不匹配",
        )));
    }
    Ok((app, body, msg_key, param))
}

async fn group_message(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/v1.0/robot/groupMessages/send";
    let (app, body, msg_key, param) = match robot_request(&sandbox, path, &headers, body) {
        Ok(parts) => parts,
        Err(response) => return *response,
    };
    let Some(group) = str_field(&body, "openConversationId").and_then(|cid| sandbox.group(cid))
    else {
        return sandbox.refuse(
            path,
            &app,
            400,
            "invalid.openConversationId",
            "群会话不存在",
        );
    };
    if group.disbanded {
        return sandbox.refuse(path, &app, 400, "group.disbanded", "群已解散");
    }
    match &group.cool_app_code {
        None => {
            return sandbox.refuse(
                path,
                &app,
                400,
                "invalidParameter.robotCode.notInGroup",
                "机器人不在群内",
            );
        }
        Some(code) if str_field(&body, "coolAppCode") != Some(code.as_str()) => {
            return sandbox.refuse(
                path,
                &app,
                400,
                "invalidParameter.robotCode.coolAppNotUsedInGroup",
                "coolAppCode is required: the robot was installed through the cool app",
            );
        }
        Some(_) => {}
    }
    let key = sandbox.next_id("pqk");
    sandbox.state().messages.push(RobotMessage {
        process_query_key: key.clone(),
        target: MessageTarget::Group(group.open_conversation_id),
        msg_key,
        msg_param: param,
        at_ms: now_ms(),
    });
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"processQueryKey": key})).into_response()
}

async fn one_to_one_messages(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/v1.0/robot/oToMessages/batchSend";
    let (app, body, msg_key, param) = match robot_request(&sandbox, path, &headers, body) {
        Ok(parts) => parts,
        Err(response) => return *response,
    };
    let user_ids: Vec<String> = body
        .get("userIds")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if user_ids.is_empty() || user_ids.len() > 20 {
        return sandbox.refuse(
            path,
            &app,
            400,
            "invalidParameter.userIds",
            "userIds must hold 1 to 20 userIds",
        );
    }
    let known: Vec<String> = sandbox.users().into_iter().map(|u| u.user_id).collect();
    let key = super::ding::one_to_one_key(&sandbox);
    let mut invalid = Vec::new();
    for user_id in user_ids {
        if known.contains(&user_id) {
            sandbox.state().messages.push(RobotMessage {
                process_query_key: key.clone(),
                target: MessageTarget::User(user_id),
                msg_key: msg_key.clone(),
                msg_param: param.clone(),
                at_ms: now_ms(),
            });
        } else {
            invalid.push(user_id);
        }
    }
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"processQueryKey": key, "invalidStaffIdList": invalid, "flowControlledStaffIdList": []}))
        .into_response()
}

fn param_map(value: Option<&Value>) -> Map<String, Value> {
    value
        .and_then(|v| v.get("cardParamMap"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

async fn create_card(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/v1.0/card/instances/createAndDeliver";
    let app = match sandbox.guard(path, header_token(&headers)) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let (Some(template), Some(out_track_id), Some(space)) = (
        str_field(&body, "cardTemplateId"),
        str_field(&body, "outTrackId"),
        str_field(&body, "openSpaceId"),
    ) else {
        return sandbox.refuse(
            path,
            &app,
            400,
            "MissingParameter",
            "cardTemplateId, outTrackId and openSpaceId are required",
        );
    };
    if sandbox
        .state()
        .cards
        .iter()
        .any(|c| c.out_track_id == out_track_id)
    {
        return sandbox.refuse(
            path,
            &app,
            400,
            "param.outTrackIdDuplicated",
            "outTrackId already used",
        );
    }
    let spaces: Vec<String> = space
        .trim_start_matches("dtv1.card//")
        .split(';')
        .map(String::from)
        .collect();
    let mut results = Vec::new();
    for space in &spaces {
        let (kind, id) = space.split_once('.').unwrap_or((space.as_str(), ""));
        let ok = match kind {
            "IM_GROUP" => sandbox.group(id).is_some_and(|g| !g.disbanded),
            "IM_ROBOT" => sandbox.users().iter().any(|u| u.user_id == id),
            _ => false,
        };
        results.push(json!({"spaceType": kind, "spaceId": id, "success": ok,
                            "carrierId": if ok { json!(sandbox.next_id("carrier")) } else { Value::Null },
                            "errorMsg": if ok { "" } else { "space not found" }}));
    }
    let private_data = body
        .get("privateData")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), Value::Object(param_map(Some(v)))))
                .collect()
        })
        .unwrap_or_default();
    sandbox.state().cards.push(CardInstance {
        out_track_id: out_track_id.to_string(),
        card_template_id: template.to_string(),
        callback_route_key: str_field(&body, "callbackRouteKey").map(String::from),
        spaces: spaces.iter().map(|s| format!("dtv1.card//{s}")).collect(),
        card_data: param_map(body.get("cardData")),
        private_data,
        updates: 0,
        created_at_ms: now_ms(),
    });
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(
        json!({"success": true, "result": {"outTrackId": out_track_id, "deliverResults": results}}),
    )
    .into_response()
}

async fn update_card(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/v1.0/card/instances";
    let app = match sandbox.guard(path, header_token(&headers)) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let by_key = body
        .pointer("/cardUpdateOptions/updateCardDataByKey")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let new_data = param_map(body.get("cardData"));
    let updated = {
        let mut state = sandbox.state();
        let card = str_field(&body, "outTrackId")
            .and_then(|id| state.cards.iter_mut().find(|c| c.out_track_id == id));
        match card {
            Some(card) => {
                if by_key {
                    card.card_data.extend(new_data);
                } else {
                    card.card_data = new_data;
                }
                card.updates += 1;
                true
            }
            None => false,
        }
    };
    if !updated {
        return sandbox.refuse(path, &app, 400, "card.notExist", "outTrackId not found");
    }
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"success": true, "result": true})).into_response()
}

async fn register_callback(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/v1.0/card/callbacks/register";
    let app = match sandbox.guard(path, header_token(&headers)) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let (Some(route_key), Some(url)) = (
        str_field(&body, "callbackRouteKey"),
        str_field(&body, "callbackUrl"),
    ) else {
        return sandbox.refuse(
            path,
            &app,
            400,
            "MissingParameter",
            "callbackRouteKey and callbackUrl are required",
        );
    };
    let force = body
        .get("forceUpdate")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let secret = str_field(&body, "apiSecret")
        .unwrap_or_default()
        .to_string();
    let route = {
        let mut state = sandbox.state();
        let existing = state.callback_routes.get(route_key).cloned();
        match existing {
            Some(existing) if !force => existing,
            _ => {
                let route = CardCallbackRoute {
                    url: url.to_string(),
                    api_secret: secret,
                };
                state
                    .callback_routes
                    .insert(route_key.to_string(), route.clone());
                route
            }
        }
    };
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"success": true, "result": {"callbackUrl": route.url, "apiSecret": route.api_secret}}))
        .into_response()
}

fn oapi_app(
    sandbox: &Sandbox,
    path: &str,
    query: &HashMap<String, String>,
) -> Result<super::SandboxApp, Box<Response>> {
    let app = query
        .get("access_token")
        .and_then(|t| sandbox.app_for_token(t));
    app.ok_or_else(|| {
        sandbox.record(path, None, 200, Some("40014"));
        Box::new(Json(json!({"errcode": 40014, "errmsg": "不合法的access_token"})).into_response())
    })
}

async fn user_by_auth_code(
    State(sandbox): State<Sandbox>,
    Query(query): Query<HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/topapi/v2/user/getuserinfo";
    let app = match oapi_app(&sandbox, path, &query) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let user_id = str_field(&body, "code").and_then(|code| {
        let mut state = sandbox.state();
        let entry = state.auth_codes.get_mut(code)?;
        if entry.2 || entry.1 < now_secs() {
            return None;
        }
        entry.2 = true;
        Some(entry.0.clone())
    });
    let user = user_id.and_then(|id| sandbox.users().into_iter().find(|u| u.user_id == id));
    let Some(user) = user else {
        sandbox.record(path, Some(app.app_key), 200, Some("40078"));
        return Json(json!({"errcode": 40078, "errmsg": "不存在的临时授权码"})).into_response();
    };
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"errcode": 0, "errmsg": "ok", "result": {
        "userid": user.user_id, "unionid": user.union_id, "associated_unionid": "",
        "name": user.name, "device_id": "sandbox-device", "sys": false, "sys_level": 0}}))
    .into_response()
}

async fn user_detail(
    State(sandbox): State<Sandbox>,
    Query(query): Query<HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/topapi/v2/user/get";
    let app = match oapi_app(&sandbox, path, &query) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let user = str_field(&body, "userid")
        .and_then(|id| sandbox.users().into_iter().find(|u| u.user_id == id));
    let Some(user) = user else {
        sandbox.record(path, Some(app.app_key), 200, Some("60121"));
        return Json(json!({"errcode": 60121, "errmsg": "找不到该用户"})).into_response();
    };
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"errcode": 0, "errmsg": "ok", "result": {
        "userid": user.user_id, "unionid": user.union_id, "name": user.name,
        "email": user.email.clone().unwrap_or_default(), "org_email": user.email.unwrap_or_default(),
        "mobile": user.mobile.unwrap_or_default(), "active": true}}))
    .into_response()
}

/// `/topapi/v2/user/getbymobile`: the active member with a mobile (an injected fault
/// answers first, as DingTalk would: HTTP 200 with its `errcode`).
async fn user_by_mobile(
    State(sandbox): State<Sandbox>,
    Query(query): Query<HashMap<String, String>>,
    body: Option<Json<Value>>,
) -> Response {
    let path = "/topapi/v2/user/getbymobile";
    let app = match oapi_app(&sandbox, path, &query) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    if let Some(fault) = sandbox.take_fault(path) {
        let code = fault.body.get("errcode").map(Value::to_string);
        sandbox.record(path, Some(app.app_key), fault.status, code.as_deref());
        let status =
            axum::http::StatusCode::from_u16(fault.status).unwrap_or(axum::http::StatusCode::OK);
        return (status, Json(fault.body)).into_response();
    }
    let body = body.map(|Json(b)| b).unwrap_or(Value::Null);
    let Some(mobile) = str_field(&body, "mobile") else {
        sandbox.record(path, Some(app.app_key), 200, Some("40035"));
        return Json(json!({"errcode": 40035, "errmsg": "缺少参数 mobile"})).into_response();
    };
    let user = sandbox
        .users()
        .into_iter()
        .find(|u| u.mobile.as_deref() == Some(mobile));
    let Some(user) = user else {
        sandbox.record(path, Some(app.app_key), 200, Some("60121"));
        return Json(json!({"errcode": 60121, "errmsg": "找不到该用户"})).into_response();
    };
    sandbox.record(path, Some(app.app_key), 200, None);
    Json(json!({"errcode": 0, "errmsg": "ok", "result": {
        "userid": user.user_id, "exclusive_account_userid_list": []},
        "request_id": "sandbox"}))
    .into_response()
}
