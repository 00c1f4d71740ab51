//! The admin console's server side (ARCHITECTURE.md §10, issue #18): the page and its
//! strict headers, the session (admin key → HttpOnly cookie + CSRF token; expiry;
//! sign-out), the cookie on the `/api` routes with CSRF on every change, and the
//! setup checklist turning green as a NEW app is set up through the sandbox's
//! developer console (check_url, cool app install and rename, verify, a member bound).

use std::sync::Arc;

use integration_tests::{ADMIN_KEY, AheadClock, TestStack, read, request};
use lambda_http::{Body, Response};
use local_stack::gateway::{Functions, router};
use serde_json::{Value, json};

fn header(response: &Response<Body>, name: &str) -> String {
    response
        .headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("\n")
}

fn body_text(response: &Response<Body>) -> String {
    match response.body() {
        Body::Text(t) => t.clone(),
        Body::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

/// The session cookie's value in a `Set-Cookie` header (the test stack's public base
/// is https, so the cookie is `__Host-dtc_session`).
fn cookie_of(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.trim().strip_prefix("__Host-dtc_session="))
        .expect("__Host-dtc_session cookie")
        .to_string()
}

/// Calls the admin function with the session cookie (and a CSRF token when given).
async fn with_cookie(
    stack: &TestStack,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut headers = vec![("cookie", format!("theme=dark; __Host-dtc_session={cookie}"))];
    if body.is_some() {
        headers.push(("content-type", "application/json".into()));
    }
    if let Some(csrf) = csrf {
        headers.push(("x-csrf-token", csrf.to_string()));
    }
    let body = body.map(|b| b.to_string().into_bytes());
    read(
        stack
            .admin
            .handle(request(method, path, &headers, body))
            .await,
    )
}

async fn sign_in(stack: &TestStack, key: &str) -> Response<Body> {
    let headers = [("content-type", "application/json".to_string())];
    let body = json!({"admin_key": key}).to_string().into_bytes();
    stack
        .admin
        .handle(request(
            "POST",
            "/console/api/session",
            &headers,
            Some(body),
        ))
        .await
}

#[tokio::test]
async fn the_page_is_served_with_strict_headers() {
    let stack = TestStack::start().await;
    let page = stack
        .admin
        .handle(request("GET", "/console", &[], None))
        .await;
    assert_eq!(page.status().as_u16(), 200);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    assert_eq!(
        csp,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    assert_eq!(header(&page, "x-frame-options"), "DENY");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert_eq!(header(&page, "referrer-policy"), "no-referrer");
    assert_eq!(header(&page, "cache-control"), "no-cache");
    assert!(body_text(&page).contains("/console/assets/console.js"));
    for (path, kind) in [
        ("/console/assets/console.js", "text/javascript"),
        ("/console/assets/console.css", "text/css"),
    ] {
        let asset = stack.admin.handle(request("GET", path, &[], None)).await;
        assert_eq!(asset.status().as_u16(), 200, "{path}");
        assert!(header(&asset, "content-type").starts_with(kind), "{path}");
        assert_eq!(header(&asset, "cache-control"), "no-cache");
        assert!(!body_text(&asset).is_empty());
    }
    let (status, _) = read(
        stack
            .admin
            .handle(request("GET", "/console/assets/other.js", &[], None))
            .await,
    );
    assert_eq!(status, 401, "nothing else under /console is public");
}

#[tokio::test]
async fn sessions_carry_the_cookie_and_every_change_needs_the_csrf_token() {
    let stack = TestStack::start().await;
    // A wrong key and a bad body are refused.
    let (status, wrong) = read(sign_in(&stack, "not-the-admin-key-at-all-000").await);
    assert_eq!(
        (status, wrong["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let headers = [("content-type", "application/json".to_string())];
    let (status, bad) = read(
        stack
            .admin
            .handle(request(
                "POST",
                "/console/api/session",
                &headers,
                Some(b"{not json".to_vec()),
            ))
            .await,
    );
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["code"].is_string());

    // Sign in: the cookie (HttpOnly, SameSite=Strict, Secure on https) and the CSRF token.
    let response = sign_in(&stack, ADMIN_KEY).await;
    let set_cookie = header(&response, "set-cookie");
    let (status, session) = read(response);
    assert_eq!(status, 200, "{session}");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=1800",
        "Secure",
    ] {
        assert!(set_cookie.contains(part), "{part} in {set_cookie}");
    }
    assert!(!set_cookie.contains(ADMIN_KEY) && !session.to_string().contains(ADMIN_KEY));
    let cookie = cookie_of(&set_cookie);
    let csrf = session["csrf"].as_str().expect("csrf").to_string();
    let expires =
        chrono::DateTime::parse_from_rfc3339(session["expires_at"].as_str().expect("expiry"))
            .expect("RFC 3339");
    let left = expires.timestamp() - chrono::Utc::now().timestamp();
    assert!((1790..=1800).contains(&left), "{left}");

    // The page resumes after a reload with the same CSRF token.
    let (status, resumed) =
        with_cookie(&stack, "GET", "/console/api/session", &cookie, None, None).await;
    assert_eq!(
        (status, resumed["csrf"].as_str()),
        (200, Some(csrf.as_str()))
    );

    // GET works with the cookie alone.
    let (status, list) = with_cookie(&stack, "GET", "/api/integrations", &cookie, None, None).await;
    assert_eq!((status, list.clone()), (200, json!([])));

    // A change without, or with a wrong, CSRF token is refused and changes nothing.
    let payload = stack.create_payload();
    for token in [None, Some("wrong-token"), Some("")] {
        let (status, refused) = with_cookie(
            &stack,
            "POST",
            "/api/integrations",
            &cookie,
            token,
            Some(payload.clone()),
        )
        .await;
        assert_eq!(
            (status, refused["error"]["code"].as_str()),
            (403, Some("csrf_failed")),
            "{token:?}"
        );
    }
    assert_eq!(
        stack.admin("GET", "/api/integrations", None).await.1,
        json!([])
    );
    // With the right one it works.
    let (status, created) = with_cookie(
        &stack,
        "POST",
        "/api/integrations",
        &cookie,
        Some(&csrf),
        Some(payload),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    // The bearer key still works, and wins over a cookie.
    assert_eq!(stack.admin("GET", "/api/integrations", None).await.0, 200);
}

/// A signed-in session: its cookie value and CSRF token.
async fn signed_in(stack: &TestStack) -> (String, String) {
    let response = sign_in(stack, ADMIN_KEY).await;
    let cookie = cookie_of(&header(&response, "set-cookie"));
    let (status, session) = read(response);
    assert_eq!(status, 200, "{session}");
    (cookie, session["csrf"].as_str().expect("csrf").to_string())
}

#[tokio::test]
async fn forged_expired_and_foreign_cookies_are_refused() {
    let stack = TestStack::start().await;
    let (cookie, _) = signed_in(&stack).await;
    // A forged or garbled cookie is unauthorized.
    let parts: Vec<&str> = cookie.split('.').collect();
    let forged = format!(
        "v1.{}.{}.{}",
        parts[1].parse::<i64>().expect("exp") + 3600,
        parts[2],
        parts[3]
    );
    for bad in [forged.as_str(), "garbage", "v1.1.2.3"] {
        let (status, answer) =
            with_cookie(&stack, "GET", "/api/integrations", bad, None, None).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{bad}"
        );
    }
    // Over https only the __Host- cookie counts: a plain one (which another host of
    // the domain could have set) is not a session.
    let (status, _) = read(
        stack
            .admin
            .handle(request(
                "GET",
                "/api/integrations",
                &[("cookie", format!("dtc_session={cookie}"))],
                None,
            ))
            .await,
    );
    assert_eq!(status, 401);

    // An expired session: session_expired, on the API and on resume.
    let expired = stack
        .services
        .console_sessions()
        .issue_until(chrono::Utc::now().timestamp() - 1)
        .await
        .expect("issued");
    for path in ["/api/integrations", "/console/api/session"] {
        let (status, answer) = with_cookie(&stack, "GET", path, &expired.token, None, None).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("session_expired")),
            "{path}"
        );
    }
    let (status, answer) = read(
        stack
            .admin
            .handle(request("GET", "/console/api/session", &[], None))
            .await,
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
}

#[tokio::test]
async fn sign_out_ends_the_session_wherever_its_cookie_went() {
    let stack = TestStack::start().await;
    let (cookie, csrf) = signed_in(&stack).await;
    let sign_out = |csrf: Option<&str>| {
        let mut headers = vec![("cookie", format!("__Host-dtc_session={cookie}"))];
        if let Some(csrf) = csrf {
            headers.push(("x-csrf-token", csrf.to_string()));
        }
        stack
            .admin
            .handle(request("DELETE", "/console/api/session", &headers, None))
    };
    // Without the CSRF token another site cannot sign the person out.
    let (status, refused) = read(sign_out(None).await);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    let (status, _) = with_cookie(&stack, "GET", "/api/integrations", &cookie, None, None).await;
    assert_eq!(status, 200, "still signed in");

    // Sign out clears the cookie, and the session ends: a copy of the cookie is refused.
    let out = sign_out(Some(&csrf)).await;
    assert_eq!(out.status().as_u16(), 204);
    let cleared = header(&out, "set-cookie");
    assert!(
        cleared.starts_with("__Host-dtc_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    for path in ["/api/integrations", "/console/api/session"] {
        let (status, answer) = with_cookie(&stack, "GET", path, &cookie, None, None).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("signed_out")),
            "{path}"
        );
    }
    // Signing out again (or with no session) just clears the cookie.
    assert_eq!(sign_out(Some(&csrf)).await.status().as_u16(), 204);
    let none = stack
        .admin
        .handle(request("DELETE", "/console/api/session", &[], None))
        .await;
    assert_eq!(none.status().as_u16(), 204);
}

/// A NEW app, not known to the sandbox until the developer console saves it.
const NEW_APP: (&str, &str, &str, &str) = (
    "dingconsoletestapp01",
    "console-test-secret-0001",
    "Cons0leTestAesKey0123456789abcdefghijklmnop",
    "consoletoken01",
);

fn steps(setup: &Value) -> std::collections::HashMap<String, Value> {
    setup["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().expect("id").to_string(), s.clone()))
        .collect()
}

async fn setup(stack: &TestStack, id: &str) -> Value {
    let (status, body) = stack
        .admin("GET", &format!("/api/integrations/{id}/setup"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn console(client: &reqwest::Client, base: &str, path: &str, body: Value) -> (u16, Value) {
    let response = client
        .post(format!("{base}/sandbox/dingtalk-console{path}"))
        .json(&body)
        .send()
        .await
        .expect("sandbox console");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The console's sandbox developer console and the stack over HTTP: the client and
/// base URL.
async fn serve_with_dev_console(stack: &TestStack) -> (reqwest::Client, String) {
    // The stack over HTTP (the event callback) and the sandbox's developer console.
    let functions = Functions {
        event_callback: stack.callback.clone(),
        admin_api: stack.admin.clone(),
        ingest: stack.ingest.clone(),
        h5_app: stack.h5.clone(),
    };
    let app = axum::Router::new()
        .nest(
            "/sandbox",
            local_stack::sandbox::page::router(stack.sandbox.clone()),
        )
        .merge(router(functions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (reqwest::Client::new(), base)
}

/// Before anything is done in DingTalk: the steps in order, none green.
async fn nothing_done_yet(stack: &TestStack, id: &str, created: &Value) {
    // Nothing done yet.
    let before = setup(stack, id).await;
    let order: Vec<&str> = before["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        order,
        [
            "credentials",
            "check_url",
            "events",
            "cool_app",
            "card_callback",
            "members",
            "permissions"
        ]
    );
    assert_eq!(before["urls"], created["urls"]);
    let s = steps(&before);
    assert_eq!(
        s["credentials"]["ok"], false,
        "the sandbox does not know the app yet"
    );
    assert_eq!(s["check_url"]["ok"], false);
    assert_eq!(s["events"]["ok"], Value::Null);
    assert_eq!(s["events"]["seen"]["im_cool_app_install"], Value::Null);
    assert_eq!(s["cool_app"]["ok"], false);
    assert_eq!(s["card_callback"]["ok"], false);
    assert_eq!(s["members"]["ok"], false);
    assert_eq!(s["permissions"]["ok"], Value::Null);
}

/// The event subscription saved in the developer console (a wrong token first);
/// the credentials' refusal is remembered for 30 s.
async fn subscribe(
    stack: &TestStack,
    id: &str,
    (client, base): (&reqwest::Client, &str),
    form: Value,
    clock: &AheadClock,
) {
    // A wrong token fails DingTalk's check_url: not subscribed.
    let mut wrong = form.clone();
    wrong["token"] = json!("not-the-token");
    let (status, refused) = console(client, base, "/apps", wrong).await;
    assert_eq!(
        (status, refused["subscribed"].as_bool()),
        (400, Some(false)),
        "{refused}"
    );
    assert!(refused["reason"].is_string());
    assert_eq!(steps(&setup(stack, id).await)["check_url"]["ok"], false);

    // Saved right: check_url received, the credentials now work.
    let (status, subscribed) = console(client, base, "/apps", form).await;
    assert_eq!(
        (status, subscribed.clone()),
        (200, json!({"subscribed": true}))
    );
    let s = steps(&setup(stack, id).await);
    assert_eq!(s["check_url"]["ok"], true, "{}", s["check_url"]);
    // The same Client ID and Secret were refused moments ago (the app did not exist):
    // that refusal is repeated from memory for 30 s, so a page polling every few
    // seconds does not ask DingTalk each time. Then they are asked again.
    assert_eq!(s["credentials"]["ok"], false, "{}", s["credentials"]);
    clock.advance_ms(shared::dingtalk::REFUSED_CREDENTIALS_MS);
    let s = steps(&setup(stack, id).await);
    assert_eq!(s["credentials"]["ok"], true, "{}", s["credentials"]);
    assert_eq!(s["cool_app"]["ok"], false);
}

/// The cool app installed in a new group, which is renamed.
async fn install_and_rename(stack: &TestStack, id: &str, (client, base): (&reqwest::Client, &str)) {
    let app_key = NEW_APP.0;
    // The cool app installed in a new group, which is renamed.
    let cid = "cidConsoleTestGroup0000001==";
    let (status, installed) = console(
        client,
        base,
        &format!("/apps/{app_key}/install"),
        json!({"cid": cid, "title": "Console test group"}),
    )
    .await;
    assert_eq!(
        (status, installed.clone()),
        (200, json!({"installed": true}))
    );
    let (status, renamed) = console(
        client,
        base,
        &format!("/apps/{app_key}/rename"),
        json!({"cid": cid, "title": "支付值班群"}),
    )
    .await;
    assert_eq!(status, 200, "{renamed}");
    let s = steps(&setup(stack, id).await);
    assert_eq!(s["cool_app"]["ok"], true, "{}", s["cool_app"]);
    assert!(
        s["events"]["seen"]["im_cool_app_install"].is_string(),
        "{}",
        s["events"]
    );
    assert!(
        s["events"]["seen"]["chat_update_title"].is_string(),
        "{}",
        s["events"]
    );
    assert_eq!(s["events"]["ok"], Value::Null, "uninstall not seen yet");
    assert_eq!(
        s["permissions"]["scopes"]["qyapi_chat_manage"], true,
        "{}",
        s["permissions"]
    );
    let (status, chats) = stack
        .admin("GET", &format!("/api/integrations/{id}/chats"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(chats[0]["title"], "支付值班群", "{chats}");
}

/// A second group installs and removes the cool app: every event has been seen.
async fn install_and_remove_another(
    stack: &TestStack,
    id: &str,
    (client, base): (&reqwest::Client, &str),
) {
    let app_key = NEW_APP.0;
    // A second group: installed and removed again; every event has been seen.
    let other = "cidConsoleTestGroup0000002==";
    assert_eq!(
        console(
            client,
            base,
            &format!("/apps/{app_key}/install"),
            json!({"cid": other, "title": "Other"})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        console(
            client,
            base,
            &format!("/apps/{app_key}/uninstall"),
            json!({"cid": other})
        )
        .await
        .0,
        200
    );
    let s = steps(&setup(stack, id).await);
    assert_eq!(s["events"]["ok"], true, "{}", s["events"]);
    assert_eq!(s["cool_app"]["count"], 1);
}

#[tokio::test]
async fn the_setup_checklist_turns_green_as_a_new_app_is_set_up() {
    let clock = AheadClock::default();
    let stack = TestStack::start_with_clock(Arc::new(clock.clone())).await;
    let (app_key, app_secret, aes_key, token) = NEW_APP;
    let mut payload = stack.create_payload();
    payload["client_id"] = json!(app_key);
    payload["client_secret"] = json!(app_secret);
    payload["aes_key"] = json!(aes_key);
    payload["token"] = json!(token);
    let (status, created) = stack
        .admin("POST", "/api/integrations", Some(payload.clone()))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_string();
    nothing_done_yet(&stack, &id, &created).await;

    let (client, base) = serve_with_dev_console(&stack).await;
    let event_url = format!("{base}/dingtalk/{id}/events");
    let form = json!({"app_key": app_key, "app_secret": app_secret, "corp_id": payload["corp_id"],
        "aes_key": aes_key, "token": token, "event_url": event_url});
    subscribe(&stack, &id, (&client, &base), form, &clock).await;
    install_and_rename(&stack, &id, (&client, &base)).await;
    install_and_remove_another(&stack, &id, (&client, &base)).await;

    // Verify registers the card callback.
    let (status, verified) = stack
        .admin("POST", &format!("/api/integrations/{id}/verify"), None)
        .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(
        steps(&setup(&stack, &id).await)["card_callback"]["ok"],
        true
    );

    // A member bound to a DingTalk account.
    let (status, _) = stack
        .admin(
            "POST",
            &format!("/api/integrations/{id}/members"),
            Some(json!({"email": "alice@example.com", "name": "Alice"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, bound) = stack
        .admin(
            "PUT",
            &format!("/api/integrations/{id}/bindings/alice0001"),
            Some(json!({"member": "alice@example.com"})),
        )
        .await;
    assert_eq!(status, 200, "{bound}");
    let after = setup(&stack, &id).await;
    let s = steps(&after);
    for step in [
        "credentials",
        "check_url",
        "events",
        "cool_app",
        "card_callback",
        "members",
    ] {
        assert_eq!(s[step]["ok"], true, "{step}: {}", s[step]);
    }
    assert!(!after.to_string().contains(app_secret) && !after.to_string().contains(aes_key));

    // The unknown and unauthenticated are refused.
    assert_eq!(
        stack
            .admin("GET", "/api/integrations/nope/setup", None)
            .await
            .0,
        404
    );
    let (status, _) = read(
        stack
            .admin
            .handle(request(
                "GET",
                &format!("/api/integrations/{id}/setup"),
                &[],
                None,
            ))
            .await,
    );
    assert_eq!(status, 401);
}
