//! The sandbox page (`GET /sandbox`): the fake organisation, what the robot posted
//! to each group and person, the events pushed to our callback and the API calls
//! received; with controls that act like DingTalk users (install or uninstall the
//! cool app in a group, rename a group, create a group), and the developer console's
//! JSON routes for a new app (see `dev_console`).

use std::fmt::Write as _;

use axum::extract::{Form, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::events::{cool_app_event, title_event};
use super::page_render::{markdown, render_cards_in, web_url};
use super::{MessageTarget, Sandbox, SandboxGroup, now_ms, page_people};

/// coolAppCode of our cool app in the sandbox.
pub const SANDBOX_COOL_APP_CODE: &str = "COOLAPP-1-SANDBOX0000000000000001";

/// The page and its form actions (mount at `/sandbox`).
pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/state.json", get(state_json))
        .route("/actions/install", post(install))
        .route("/actions/uninstall", post(uninstall))
        .route("/actions/rename", post(rename))
        .route("/actions/new-group", post(new_group))
        .route("/actions/auth-code", post(auth_code))
        .route("/actions/card-click", post(card_click))
        .route("/actions/mark-read", post(page_people::mark_read))
        .route(
            "/actions/current-user-auth-code",
            post(current_user_auth_code),
        )
        .route("/as/{user_id}", get(open_as))
        .route("/jsapi.js", get(jsapi))
        .merge(super::dev_console::router())
        .with_state(sandbox)
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[derive(Deserialize)]
struct GroupForm {
    cid: String,
    #[serde(default)]
    title: String,
}

#[derive(Deserialize)]
struct CardClickForm {
    out_track_id: String,
    action: String,
    user_id: String,
    /// The member (email) a Reassign click hands the incident to.
    #[serde(default)]
    member: String,
}

/// A person presses a card button (a real signed callback to our `/cards`).
async fn card_click(State(sandbox): State<Sandbox>, Form(form): Form<CardClickForm>) -> Redirect {
    let incident = sandbox
        .cards()
        .into_iter()
        .find(|c| c.out_track_id == form.out_track_id)
        .and_then(|c| {
            c.card_data
                .get("incident")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_default();
    // Silence buttons carry their duration in the value (`silence:4h`).
    let (action, duration) = form
        .action
        .split_once(':')
        .unwrap_or((form.action.as_str(), "30m"));
    let mut params = json!({"action": action, "incident": incident, "duration": duration});
    if !form.member.is_empty() {
        params["member"] = Value::from(form.member);
    }
    if let Err(err) = sandbox
        .click_card(&form.out_track_id, &form.user_id, &params)
        .await
    {
        tracing::warn!(error = %err, "sandbox card click failed");
    }
    Redirect::to("/sandbox")
}

#[derive(Deserialize)]
struct UserForm {
    user_id: String,
}

/// The H5 app path of the subscribed app's integration (from its event URL).
fn app_path(sandbox: &Sandbox) -> Option<String> {
    let app = subscribed_app(sandbox)?;
    let url = sandbox.subscription(&app.app_key)?.url;
    let path = url
        .split_once("://")
        .map(|(_, rest)| rest.split_once('/').map(|(_, p)| p).unwrap_or(""))?;
    Some(format!("/{}", path.strip_suffix("/events")?).replace("//", "/") + "/app")
}

pub(super) fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The app whose events the page sends: the demo app when subscribed (apps the
/// developer console adds later do not take the page over), else the first one
/// with a subscription.
fn subscribed_app(sandbox: &Sandbox) -> Option<super::SandboxApp> {
    let subscribed: Vec<_> = sandbox
        .apps()
        .into_iter()
        .filter(|a| sandbox.subscription(&a.app_key).is_some())
        .collect();
    subscribed
        .iter()
        .find(|a| a.app_key == crate::stack::DEMO_APP_KEY)
        .or(subscribed.first())
        .cloned()
}

const OPERATOR: &str = "sandbox-admin";

/// Installs (or uninstalls) our cool app in a group and pushes the event.
async fn set_cool_app(sandbox: &Sandbox, cid: &str, installed: bool) {
    if let (Some(app), Some(group)) = (subscribed_app(sandbox), sandbox.group(cid)) {
        sandbox.set_cool_app(cid, installed.then_some(SANDBOX_COOL_APP_CODE));
        let event = cool_app_event(
            installed,
            &app.corp_id,
            cid,
            SANDBOX_COOL_APP_CODE,
            &app.app_key,
            OPERATOR,
            now_ms(),
        );
        sandbox.push_event(&app.app_key, &event, &group.title).await;
    }
}

async fn install(State(sandbox): State<Sandbox>, Form(form): Form<GroupForm>) -> Redirect {
    set_cool_app(&sandbox, &form.cid, true).await;
    Redirect::to("/sandbox")
}

async fn uninstall(State(sandbox): State<Sandbox>, Form(form): Form<GroupForm>) -> Redirect {
    set_cool_app(&sandbox, &form.cid, false).await;
    Redirect::to("/sandbox")
}

async fn rename(State(sandbox): State<Sandbox>, Form(form): Form<GroupForm>) -> Redirect {
    let title = form.title.trim();
    if let (Some(app), Some(_), false) = (
        subscribed_app(&sandbox),
        sandbox.group(&form.cid),
        title.is_empty(),
    ) {
        sandbox.rename_group(&form.cid, title);
        let event = title_event(&app.corp_id, &form.cid, title, OPERATOR, now_ms());
        sandbox.push_event(&app.app_key, &event, title).await;
    }
    Redirect::to("/sandbox")
}

async fn new_group(State(sandbox): State<Sandbox>, Form(form): Form<GroupForm>) -> Redirect {
    let title = form.title.trim();
    if !title.is_empty() {
        sandbox.add_group(SandboxGroup {
            open_conversation_id: format!(
                "cid{}==",
                &uuid::Uuid::new_v4().simple().to_string()[..22]
            ),
            title: title.to_string(),
            owner_user_id: OPERATOR.into(),
            cool_app_code: None,
            disbanded: false,
        });
    }
    Redirect::to("/sandbox")
}

/// Issues a login-free auth code for a person (what `dd.requestAuthCode` gives a page).
async fn auth_code(State(sandbox): State<Sandbox>, Form(form): Form<UserForm>) -> Json<Value> {
    Json(json!({"code": sandbox.issue_auth_code(&form.user_id)}))
}

/// The JSAPI stand-in the H5 page loads in the sandbox: `dd.requestAuthCode` asks
/// the sandbox for a code for the person chosen with "Open the app as …". With no
/// person chosen, the page is "not in DingTalk".
const JSAPI_SHIM: &str = r#"(function () {
  var m = document.cookie.match(/(?:^|; )sandbox_user=([^;]+)/);
  function requestAuthCode(o) {
    fetch("/sandbox/actions/current-user-auth-code", { method: "POST", credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (j) { if (j.code) o.onSuccess({ code: j.code }); else o.onFail(j); }, o.onFail);
  }
  window.dd = {
    env: { platform: m ? "pc" : "notInDingTalk" },
    ready: function (f) { f(); },
    requestAuthCode: requestAuthCode,
    runtime: { permission: { requestAuthCode: requestAuthCode } }
  };
})();
"#;

async fn jsapi() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        JSAPI_SHIM,
    )
        .into_response()
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// "Open the app as …": remembers the person (cookie) and opens `next` (a local path).
async fn open_as(
    State(sandbox): State<Sandbox>,
    axum::extract::Path(user_id): axum::extract::Path<String>,
    axum::extract::Query(next): axum::extract::Query<Next>,
) -> Response {
    if !sandbox.users().iter().any(|u| u.user_id == user_id) {
        return (axum::http::StatusCode::NOT_FOUND, "no such person").into_response();
    }
    let next = next
        .next
        .filter(|n| n.starts_with('/') && !n.starts_with("//"))
        .unwrap_or_else(|| "/sandbox".into());
    let cookie = format!("sandbox_user={user_id}; Path=/; SameSite=Lax");
    (
        [(axum::http::header::SET_COOKIE, cookie)],
        Redirect::to(&next),
    )
        .into_response()
}

/// A login-free auth code for the person chosen with "Open the app as …".
async fn current_user_auth_code(
    State(sandbox): State<Sandbox>,
    headers: axum::http::HeaderMap,
) -> Json<Value> {
    let user = headers
        .get(axum::http::header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split("; ").find_map(|p| p.strip_prefix("sandbox_user=")))
        .map(String::from);
    match user {
        Some(user) if sandbox.users().iter().any(|u| u.user_id == user) => {
            Json(json!({"code": sandbox.issue_auth_code(&user)}))
        }
        _ => Json(json!({"errorMessage": "not in DingTalk"})),
    }
}

/// Everything the page shows, as JSON (for scripts and tests).
async fn state_json(State(sandbox): State<Sandbox>) -> Json<Value> {
    let groups: Vec<Value> = sandbox
        .groups()
        .iter()
        .map(|g| {
            json!({"open_conversation_id": g.open_conversation_id, "title": g.title,
                        "cool_app_installed": g.cool_app_code.is_some(), "disbanded": g.disbanded})
        })
        .collect();
    let messages: Vec<Value> = sandbox
        .messages()
        .iter()
        .map(|m| {
            let (kind, id, read) = match &m.target {
                MessageTarget::Group(cid) => ("group", cid, None),
                MessageTarget::User(uid) => (
                    "user",
                    uid,
                    Some(sandbox.read_at(&m.process_query_key, uid).is_some()),
                ),
            };
            json!({"target": kind, "id": id, "msg_key": m.msg_key, "msg_param": m.msg_param,
                   "at_ms": m.at_ms, "process_query_key": m.process_query_key, "read": read})
        })
        .collect();
    let deliveries: Vec<Value> = sandbox
        .deliveries()
        .iter()
        .map(|d| {
            json!({"event_type": d.event_type, "subject": d.subject, "status": d.status,
                        "acknowledged": d.acknowledged, "detail": d.detail})
        })
        .collect();
    let cards: Vec<Value> = sandbox
        .cards()
        .iter()
        .map(|c| json!({"out_track_id": c.out_track_id, "spaces": c.spaces, "card_data": c.card_data, "updates": c.updates}))
        .collect();
    Json(
        json!({"groups": groups, "messages": messages, "cards": cards, "deliveries": deliveries,
                "dings": page_people::dings_json(&sandbox)}),
    )
}

/// A string parameter of a message (empty when absent).
fn param_str<'a>(param: &'a Value, name: &str) -> &'a str {
    param.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// A robot message as the DingTalk client shows it: title, body (markdown, or plain
/// text for `sampleText`), then its buttons; `footer` is trusted HTML put at the
/// bottom of its box.
pub(super) fn render_message(out: &mut String, msg_key: &str, param: &Value, footer: &str) {
    let _ = write!(
        out,
        "<div class=\"msg robot\" data-msg-key=\"{key}\"><div class=meta>🤖 {key}</div>",
        key = escape(msg_key)
    );
    let title = param_str(param, "title");
    if !title.is_empty() {
        let _ = write!(out, "<div class=msg-title>{}</div>", escape(title));
    }
    let text = param_str(param, "text");
    if !text.is_empty() {
        let _ = write!(out, "<div class=md>{}</div>", markdown(text));
    }
    let content = param_str(param, "content");
    if !content.is_empty() {
        let _ = write!(out, "<div class=text>{}</div>", escape(content));
    }
    let buttons = message_buttons(param);
    if !buttons.is_empty() {
        let column = if buttons.len() > 2 { " column" } else { "" };
        let _ = write!(out, "<div class=\"dt-buttons{column}\">");
        for (label, url) in buttons {
            link_button(out, label, url);
        }
        out.push_str("</div>");
    }
    out.push_str(footer);
    out.push_str("</div>");
}

/// A message's buttons, (label, URL): `singleTitle`, then `actionTitle1..5` (or
/// `buttonTitle1..5`).
fn message_buttons(param: &Value) -> Vec<(&str, &str)> {
    (0..=5)
        .map(|i| match i {
            0 => ("singleTitle".to_string(), "singleURL".to_string()),
            i if !param_str(param, &format!("actionTitle{i}")).is_empty() => {
                (format!("actionTitle{i}"), format!("actionURL{i}"))
            }
            i => (format!("buttonTitle{i}"), format!("buttonUrl{i}")),
        })
        .map(|(label, url)| (param_str(param, &label), param_str(param, &url)))
        .filter(|(label, _)| !label.is_empty())
        .collect()
}

/// A button that opens `url` (when it is a web page; else shown disabled).
pub(super) fn link_button(out: &mut String, label: &str, url: &str) {
    match web_url(url) {
        Some(href) => {
            let _ = write!(
                out,
                "<a class=dt-btn href=\"{}\" title=\"{}\" target=_blank rel=\"noopener noreferrer\">{}</a>",
                escape(&href),
                escape(url),
                escape(label)
            );
        }
        None => {
            let _ = write!(
                out,
                "<span class=\"dt-btn off\" title=\"{}\">{}</span>",
                escape(url),
                escape(label)
            );
        }
    }
}

const HEAD: &str = r#"<!doctype html><html lang=zh-CN><head><meta charset=utf-8><meta name=viewport content="width=device-width,initial-scale=1"><title>DingTalk sandbox</title><style>
body{font:14px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:0;background:#f2f3f5;color:#1f2329}
header{background:#1677ff;color:#fff;padding:12px 20px}header small{opacity:.85}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:14px;padding:14px}
section{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px #0001}
h2{font-size:15px;margin:0 0 8px}.cid{font:11px monospace;color:#8f959e;word-break:break-all}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px}.on{background:#e8ffea;color:#00a854}.off{background:#f2f3f5;color:#646a73}
.msg{border:1px solid #e5e6eb;border-radius:6px;padding:8px;margin:6px 0}.meta{font-size:11px;color:#8f959e}.text{white-space:pre-wrap;overflow-wrap:anywhere}
.ding{border-left:3px solid #d83931}.recalled .text{text-decoration:line-through;color:#8f959e}
.btn{display:inline-block;margin:4px 6px 0 0;padding:3px 10px;border:1px solid #1677ff;border-radius:4px;color:#1677ff;text-decoration:none}
form{display:inline}button{cursor:pointer}table{border-collapse:collapse;width:100%;font-size:12px}td{border-top:1px solid #eee;padding:3px}
.bad{color:#d83931}.good{color:#00a854}
.msg-title{font-weight:600;margin:2px 0 4px}.md{word-break:break-word}.md p{margin:4px 0}.md a{color:#1677ff}
.md h1,.md h2,.md h3,.md h4,.md h5,.md h6{margin:6px 0 4px;line-height:1.35;font-size:14px}.md h1{font-size:20px}.md h2{font-size:18px}.md h3{font-size:16px}
.md ul,.md ol{margin:4px 0;padding-left:22px}.md blockquote{margin:4px 0;padding:2px 10px;border-left:3px solid #dee0e3;color:#646a73}
.md code{font:12px/1.4 monospace;background:#f2f3f5;border-radius:3px;padding:0 3px}.md pre{background:#f2f3f5;border-radius:4px;padding:6px 8px;overflow:auto}.refused{color:#8f959e;text-decoration:line-through}
.dt-buttons{display:flex;flex-wrap:wrap;gap:6px;margin-top:8px;padding-top:8px;border-top:1px solid #eff0f1}.dt-buttons.column{flex-direction:column}
.dt-btn{flex:1 1 auto;text-align:center;padding:5px 10px;border:1px solid #dee0e3;border-radius:6px;background:#fff;color:#1677ff;text-decoration:none;font:inherit}.dt-btn:hover{background:#f0f5ff}.dt-btn.off{color:#8f959e;cursor:not-allowed}
.card-msg{border:0;padding:0}.dt-card{border:1px solid #e5e6eb;border-radius:8px;overflow:hidden;background:#fff;margin-top:2px}
.card-head{color:#fff;padding:6px 12px;font-weight:600}.card-body{padding:8px 12px}.card-title{font-weight:600;font-size:15px;margin-bottom:4px}
.card-fact{font-size:12px;color:#646a73;margin-top:2px}.card-notice{margin:0 12px 8px;padding:4px 8px;background:#fff1f0;border-radius:4px;font-size:12px}
.card-actions{padding:0 12px 10px}.card-actions form{display:block}.card-as{font-size:12px;color:#646a73;margin-right:8px}
details.vars{padding:0 12px 8px;font-size:12px;color:#646a73}details.vars summary{cursor:pointer}
</style></head><body>"#;

/// The banner: apps, their subscriptions and usage, and the enforced limits.
fn render_header(out: &mut String, sandbox: &Sandbox) {
    let _ = write!(
        out,
        "<header><b>DingTalk sandbox</b> <small>simulated DingTalk organisation · "
    );
    for app in &sandbox.apps() {
        let sub = sandbox
            .subscription(&app.app_key)
            .map(|s| format!("events → {}", escape(&s.url)))
            .unwrap_or_else(|| "no event subscription".into());
        let _ = write!(
            out,
            "app {} ({sub}) · corp {}",
            escape(&app.app_key),
            escape(&app.corp_id)
        );
        let _ = write!(
            out,
            " · counted calls this month: {}",
            sandbox.monthly_usage(&app.app_key)
        );
    }
    let limits = sandbox.limits();
    let _ = write!(
        out,
        " · limits: {} QPS, {} calls/month · SMS/phone DING quota: {}</small></header>",
        limits.qps.map_or("no".into(), |q| q.to_string()),
        limits.monthly_quota.map_or("no".into(), |q| q.to_string()),
        if sandbox.ding_call_quota() {
            "available"
        } else {
            "none"
        }
    );
}

/// A group chat: its state, controls, robot messages and cards.
fn render_group(
    out: &mut String,
    group: &SandboxGroup,
    messages: &[super::RobotMessage],
    cards: &[super::CardInstance],
    users: &[super::SandboxUser],
) {
    let installed = group.cool_app_code.is_some();
    let cid = escape(&group.open_conversation_id);
    let _ = write!(
        out,
        "<section data-group=\"{cid}\"><h2>👥 {}</h2><div class=cid>{cid}</div><p><span class=\"badge {}\">{}</span> ",
        escape(&group.title),
        if installed { "on" } else { "off" },
        if group.disbanded {
            "disbanded"
        } else if installed {
            "cool app installed"
        } else {
            "cool app not installed"
        },
    );
    let (action, label) = if installed {
        ("uninstall", "Uninstall cool app")
    } else {
        ("install", "Install cool app")
    };
    let _ = write!(
        out,
        "<form method=post action=/sandbox/actions/{action}><input type=hidden name=cid value=\"{cid}\"><button name=go>{label}</button></form></p>\
         <form method=post action=/sandbox/actions/rename><input type=hidden name=cid value=\"{cid}\"><input name=title placeholder=\"new group name\" required> <button>Rename</button></form>",
    );
    let target = MessageTarget::Group(group.open_conversation_id.clone());
    for m in messages.iter().filter(|m| m.target == target) {
        render_message(out, &m.msg_key, &m.msg_param, "");
    }
    render_cards_in(out, cards, users, |c| {
        c.spaces
            .iter()
            .any(|s| s.ends_with(&group.open_conversation_id))
    });
    out.push_str("</section>");
}

/// The last events pushed and API calls received.
fn render_tables(out: &mut String, sandbox: &Sandbox) {
    out.push_str("<section><h2>Events pushed to the callback</h2><table>");
    for d in sandbox.deliveries().iter().rev().take(30) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td class={}>{} {}</td></tr>",
            escape(&d.event_type),
            escape(&d.subject),
            if d.acknowledged { "good" } else { "bad" },
            d.status,
            escape(&d.detail)
        );
    }
    out.push_str("</table></section><section><h2>Open API calls received</h2><table>");
    for c in sandbox.calls().iter().rev().take(30) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class={}>{} {}</td></tr>",
            escape(&c.path),
            if c.status == 200 { "good" } else { "bad" },
            c.status,
            escape(c.code.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table></section>");
}

async fn page(State(sandbox): State<Sandbox>) -> Response {
    let mut out = String::from(HEAD);
    render_header(&mut out, &sandbox);
    out.push_str("<main>");
    let messages = sandbox.messages();
    let cards = sandbox.cards();
    let users = sandbox.users();
    for group in sandbox.groups() {
        render_group(&mut out, &group, &messages, &cards, &users);
    }
    out.push_str("<section><h2>➕ New group chat</h2><form method=post action=/sandbox/actions/new-group><input type=hidden name=cid value=new><input name=title placeholder=\"group name\" required> <button>Create</button></form></section>");
    let people = page_people::People {
        sandbox: &sandbox,
        messages: &messages,
        cards: &cards,
        users: &users,
        dings: &sandbox.dings(),
        app_path: app_path(&sandbox),
    };
    for user in &users {
        people.render(&mut out, user);
    }
    render_tables(&mut out, &sandbox);
    out.push_str("</main><script>setInterval(function(){var a=document.activeElement;if(!a||a.tagName!=='INPUT')location.reload()},4000)</script></body></html>");
    Html(out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robot_messages_show_title_markdown_and_buttons() {
        let param = json!({"title": "<t>", "text": "### hi\n**x**",
            "actionTitle1": "✋ 认领", "actionURL1": "https://x.example/a",
            "actionTitle2": "bad", "actionURL2": "javascript:alert(1)",
            "actionTitle3": "c", "actionURL3": "http://x.example/c"});
        let mut out = String::new();
        render_message(&mut out, "sampleActionCard4", &param, "<i>f</i>");
        assert!(
            out.contains("<div class=msg-title>&lt;t&gt;</div>"),
            "{out}"
        );
        assert!(
            out.contains("<div class=md><h3>hi</h3><p><b>x</b></p></div>"),
            "{out}"
        );
        assert!(
            out.contains(
                "<div class=\"dt-buttons column\"><a class=dt-btn href=\"https://x.example/a\""
            ),
            "{out}"
        );
        assert!(
            out.contains("<span class=\"dt-btn off\" title=\"javascript:alert(1)\">bad</span>"),
            "{out}"
        );
        assert!(out.ends_with("<i>f</i></div>"), "{out}");
        let mut out = String::new();
        render_message(&mut out, "sampleText", &json!({"content": "**a** <b>"}), "");
        assert!(
            out.contains("<div class=text>**a** &lt;b&gt;</div>"),
            "{out}"
        );
    }
}
