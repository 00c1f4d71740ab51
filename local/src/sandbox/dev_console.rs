//! The sandbox's developer console (`/sandbox/dingtalk-console/…`, JSON): what a
//! team does in DingTalk's developer console for a NEW app. Saving the event
//! subscription URL sends a signed, encrypted `check_url` to it (stored only when
//! the reply is the encrypted `success`, as DingTalk does); the cool app is
//! installed in, removed from, or a group renamed, each pushing its event.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::{check_url, cool_app_event, deliver, title_event};
use super::page::SANDBOX_COOL_APP_CODE;
use super::{EventDelivery, Sandbox, SandboxApp, SandboxGroup, Subscription, now_ms};

/// Who acts in the developer console.
const OPERATOR: &str = "sandbox-admin";

/// The developer console's routes (merged into the `/sandbox` page router).
pub fn router() -> Router<Sandbox> {
    Router::new()
        .route("/dingtalk-console/apps", post(save_app))
        .route("/dingtalk-console/apps/{app_key}/install", post(install))
        .route(
            "/dingtalk-console/apps/{app_key}/uninstall",
            post(uninstall),
        )
        .route("/dingtalk-console/apps/{app_key}/rename", post(rename))
}

/// The app's credentials and event subscription settings.
#[derive(Debug, Deserialize)]
struct AppForm {
    app_key: String,
    app_secret: String,
    corp_id: String,
    aes_key: String,
    token: String,
    event_url: String,
}

/// A group to act on.
#[derive(Debug, Deserialize)]
struct GroupBody {
    cid: String,
    #[serde(default)]
    title: String,
}

fn refused(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

/// Registers the app and saves its event subscription, verified by `check_url`.
async fn save_app(State(sandbox): State<Sandbox>, Json(form): Json<AppForm>) -> Response {
    let missing = [
        ("app_key", &form.app_key),
        ("app_secret", &form.app_secret),
        ("corp_id", &form.corp_id),
        ("token", &form.token),
        ("event_url", &form.event_url),
    ]
    .into_iter()
    .find(|(_, v)| v.trim().is_empty());
    if let Some((field, _)) = missing {
        return refused(
            StatusCode::BAD_REQUEST,
            json!({"subscribed": false, "reason": format!("{field} is required")}),
        );
    }
    sandbox.add_app(SandboxApp {
        app_key: form.app_key.clone(),
        app_secret: form.app_secret.clone(),
        corp_id: form.corp_id.clone(),
    });
    let subscription = Subscription {
        url: form.event_url.clone(),
        token: form.token.clone(),
        aes_key: form.aes_key.clone(),
    };
    let mut delivery = EventDelivery {
        event_type: "check_url".into(),
        subject: form.event_url.clone(),
        status: 0,
        acknowledged: false,
        detail: String::new(),
        at_ms: now_ms(),
    };
    match deliver(&subscription, &form.app_key, &check_url()).await {
        Ok((status, acknowledged, detail)) => {
            delivery.status = status;
            delivery.acknowledged = acknowledged;
            delivery.detail = detail;
        }
        Err(detail) => delivery.detail = detail,
    }
    sandbox.record_delivery(delivery.clone());
    if !delivery.acknowledged {
        let reason = format!(
            "the URL did not answer check_url with the encrypted success (HTTP {}): {}",
            delivery.status, delivery.detail
        );
        return refused(
            StatusCode::BAD_REQUEST,
            json!({"subscribed": false, "reason": reason}),
        );
    }
    sandbox.subscribe(&form.app_key, subscription);
    Json(json!({"subscribed": true})).into_response()
}

/// The registered, subscribed app named in the path.
fn subscribed(sandbox: &Sandbox, app_key: &str) -> Result<SandboxApp, Box<Response>> {
    let app = sandbox
        .apps()
        .into_iter()
        .find(|a| a.app_key == app_key)
        .ok_or_else(|| {
            Box::new(refused(
                StatusCode::NOT_FOUND,
                json!({"error": {"code": "not_found", "message": "no such app"}}),
            ))
        })?;
    if sandbox.subscription(app_key).is_none() {
        return Err(Box::new(refused(
            StatusCode::CONFLICT,
            json!({"error": {"code": "not_subscribed", "message": "save the event subscription URL first"}}),
        )));
    }
    Ok(app)
}

/// The result of pushing an event: 200 with `flag: true`, else 502 with the detail.
fn pushed(flag: &str, delivery: &EventDelivery) -> Response {
    if delivery.acknowledged {
        Json(json!({flag: true})).into_response()
    } else {
        refused(
            StatusCode::BAD_GATEWAY,
            json!({flag: false, "reason": delivery.detail, "status": delivery.status}),
        )
    }
}

/// Installs the app's cool app in a group (created when new) and pushes the event.
async fn install(
    State(sandbox): State<Sandbox>,
    Path(app_key): Path<String>,
    Json(body): Json<GroupBody>,
) -> Response {
    let app = match subscribed(&sandbox, &app_key) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let title = match body.title.trim() {
        "" => "群聊".to_string(),
        t => t.to_string(),
    };
    match sandbox.group(&body.cid) {
        Some(_) => sandbox.rename_group(&body.cid, &title),
        None => sandbox.add_group(SandboxGroup {
            open_conversation_id: body.cid.clone(),
            title: title.clone(),
            owner_user_id: OPERATOR.into(),
            cool_app_code: None,
            disbanded: false,
        }),
    }
    sandbox.set_cool_app(&body.cid, Some(SANDBOX_COOL_APP_CODE));
    let event = cool_app_event(
        true,
        &app.corp_id,
        &body.cid,
        SANDBOX_COOL_APP_CODE,
        &app.app_key,
        OPERATOR,
        now_ms(),
    );
    let delivery = sandbox.push_event(&app.app_key, &event, &title).await;
    pushed("installed", &delivery)
}

/// Removes the cool app from a group and pushes the event.
async fn uninstall(
    State(sandbox): State<Sandbox>,
    Path(app_key): Path<String>,
    Json(body): Json<GroupBody>,
) -> Response {
    let app = match subscribed(&sandbox, &app_key) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let Some(group) = sandbox.group(&body.cid) else {
        return refused(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "not_found", "message": "no such group"}}),
        );
    };
    sandbox.set_cool_app(&body.cid, None);
    let event = cool_app_event(
        false,
        &app.corp_id,
        &body.cid,
        SANDBOX_COOL_APP_CODE,
        &app.app_key,
        OPERATOR,
        now_ms(),
    );
    let delivery = sandbox.push_event(&app.app_key, &event, &group.title).await;
    pushed("uninstalled", &delivery)
}

/// Renames a group and pushes `chat_update_title`.
async fn rename(
    State(sandbox): State<Sandbox>,
    Path(app_key): Path<String>,
    Json(body): Json<GroupBody>,
) -> Response {
    let app = match subscribed(&sandbox, &app_key) {
        Ok(app) => app,
        Err(response) => return *response,
    };
    let title = body.title.trim();
    if title.is_empty() || sandbox.group(&body.cid).is_none() {
        return refused(
            StatusCode::BAD_REQUEST,
            json!({"error": {"code": "validation_failed", "message": "an existing cid and a title are required"}}),
        );
    }
    sandbox.rename_group(&body.cid, title);
    let event = title_event(&app.corp_id, &body.cid, title, OPERATOR, now_ms());
    let delivery = sandbox.push_event(&app.app_key, &event, title).await;
    pushed("renamed", &delivery)
}
