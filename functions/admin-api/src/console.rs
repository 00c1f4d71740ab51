//! The admin console (ARCHITECTURE.md §10): the static page and its assets under
//! `/console`, and the session API `/console/api/session` that exchanges the admin
//! key for an HttpOnly cookie and a CSRF token.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use shared::http::{ApiError, body_bytes, json_response};
use shared::services::console_session::{
    CSRF_HEADER, ConsoleSessions, clear_cookie, cookie_value, session_cookie,
};

/// The console page.
pub const CONSOLE_HTML: &str = include_str!("../assets/console.html");
/// The console script.
pub const CONSOLE_JS: &str = include_str!("../assets/console.js");
/// The console style sheet.
pub const CONSOLE_CSS: &str = include_str!("../assets/console.css");

/// The page's Content-Security-Policy: nothing but our own origin.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest sign-in body.
const MAX_SESSION_BODY: usize = 4 * 1024;

/// The static console files: `GET /console` and its two assets.
pub fn static_route(method: &str, route: &[&str]) -> Option<Response<Body>> {
    let (body, content_type) = match (method, route) {
        ("GET", ["console"]) => (CONSOLE_HTML, "text/html; charset=utf-8"),
        ("GET", ["console", "assets", "console.js"]) => {
            (CONSOLE_JS, "text/javascript; charset=utf-8")
        }
        ("GET", ["console", "assets", "console.css"]) => (CONSOLE_CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if route == ["console"] {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONSOLE_CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    Some(response)
}

/// The session cookie's value of a request, if any (`secure`: served over https,
/// where the cookie is `__Host-` prefixed).
pub fn request_cookie(request: &Request, secure: bool) -> Option<&str> {
    cookie_value(
        request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
        secure,
    )
}

/// The request's CSRF header, if any.
fn csrf_header(request: &Request) -> Option<&str> {
    request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
}

/// Authenticates an `/api` request by its session cookie (the CSRF header is
/// required unless the method is GET or HEAD).
pub async fn authorize_cookie(
    sessions: &ConsoleSessions,
    request: &Request,
    token: &str,
) -> Result<(), ApiError> {
    sessions
        .authorize(token, request.method().as_str(), csrf_header(request))
        .await
        .map_err(ApiError::from)
}

/// `/console/api/session`: sign in (POST), resume (GET), sign out (DELETE, with the
/// CSRF token: the session is refused from then on, wherever its cookie went).
pub async fn session_route(
    sessions: &ConsoleSessions,
    request: &Request,
    route: &[&str],
    secure: bool,
) -> Option<Result<Response<Body>, ApiError>> {
    Some(match (request.method().as_str(), route) {
        ("POST", ["console", "api", "session"]) => sign_in(sessions, request, secure).await,
        ("GET", ["console", "api", "session"]) => match request_cookie(request, secure) {
            Some(token) => sessions
                .verify(token)
                .await
                .map(|s| json_response(200, &s.answer()))
                .map_err(ApiError::from),
            None => Err(ApiError::new(
                401,
                "unauthorized",
                "no console session: sign in with the admin key",
            )),
        },
        ("DELETE", ["console", "api", "session"]) => sign_out(sessions, request, secure).await,
        (method, ["console", "api", "session"]) => Err(ApiError::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed here"),
        )),
        _ => return None,
    })
}

/// Ends the session of the request's cookie (if any) and clears the cookie.
async fn sign_out(
    sessions: &ConsoleSessions,
    request: &Request,
    secure: bool,
) -> Result<Response<Body>, ApiError> {
    if let Some(token) = request_cookie(request, secure) {
        sessions
            .sign_out(token, csrf_header(request))
            .await
            .map_err(ApiError::from)?;
    }
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    set_cookie(&mut response, &clear_cookie(secure));
    Ok(response)
}

async fn sign_in(
    sessions: &ConsoleSessions,
    request: &Request,
    secure: bool,
) -> Result<Response<Body>, ApiError> {
    let body = body_bytes(request, MAX_SESSION_BODY)?;
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        ApiError::new(
            400,
            "invalid_json",
            "the body must be JSON: {\"admin_key\": \"…\"}",
        )
    })?;
    let key = value
        .get("admin_key")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| ApiError::invalid_field("admin_key", "admin_key (a string) is required"))?;
    let issued = sessions.sign_in(key).await.map_err(|err| {
        let mut api = ApiError::from(err);
        if api.code == "unauthorized" {
            api.message = "wrong admin key".into();
        }
        api
    })?;
    let mut response = json_response(200, &issued.answer());
    set_cookie(&mut response, &session_cookie(&issued.token, secure));
    Ok(response)
}

fn set_cookie(response: &mut Response<Body>, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Whether the cookie should be `Secure`: the public base (the configured
/// `PUBLIC_BASE_URL`, else the request's own origin) is https.
pub fn is_secure(base: &str) -> bool {
    base.starts_with("https://")
}
