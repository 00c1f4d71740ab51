//! H5 app function: the page at `GET /dingtalk/{id}/app` (with its assets) and its
//! JSON API under `/dingtalk/{id}/app/api/…` (login-free identity, association,
//! incidents and actions, and `POST held`: an action link's action held for a person
//! not associated yet, replayed once they associate).

use lambda_http::http::{HeaderValue, header};
use lambda_http::{Body, Request, Response};
use serde_json::{Value, json};
use shared::domain::locale::Locale;
use shared::http::{
    ApiError, body_bytes, json_body, json_response, path_segments, public_base_url, query_param,
};
use shared::infra::session::Session;
use shared::services::h5_app::{H5App, H5Error};
use shared::services::h5_incidents::ListQuery;
use shared::services::incident_reader::incident_json;
use shared::{Config, Services};
use tracing::{Instrument, info_span};

const INDEX: &str = include_str!("../assets/index.html");
const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");

/// Largest API body.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// The page shell's few words, before app.js (whose table holds every other string)
/// takes over: `(page title, signing in, needs JavaScript)`.
fn shell_strings(locale: Locale) -> (&'static str, &'static str, &'static str) {
    match locale {
        Locale::ZhCn => ("事件", "正在通过钉钉登录…", "此页面需要启用 JavaScript。"),
        Locale::EnUs => (
            "Incidents",
            "Signing you in with DingTalk…",
            "This page needs JavaScript.",
        ),
    }
}

/// The handler.
#[derive(Clone)]
pub struct H5Page {
    config: Config,
    app: H5App,
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// JSON that is safe inside a `<script>` element (no `</script>`, no entities).
fn script_safe_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn with_headers(
    mut response: Response<Body>,
    content_type: &'static str,
    jsapi_origin: &str,
) -> Response<Body> {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let csp = format!(
        "default-src 'self'; script-src 'self' {jsapi_origin}; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'self' https://*.dingtalk.com; base-uri 'none'; form-action 'self'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert("content-security-policy", value);
    }
    response
}

fn text_response(
    status: u16,
    body: String,
    content_type: &'static str,
    jsapi_origin: &str,
) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = lambda_http::http::StatusCode::from_u16(status).unwrap_or_default();
    with_headers(response, content_type, jsapi_origin)
}

impl H5Page {
    /// Builds the handler from the shared services.
    pub fn new(services: &Services) -> Self {
        Self {
            config: services.config.clone(),
            app: services.h5_app(),
        }
    }

    fn jsapi_origin(&self) -> String {
        url::Url::parse(&self.config.jsapi_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default()
    }

    /// Handles one API Gateway request; never fails (errors are JSON or HTML responses).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let segments = path_segments(&request);
        let route: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = request.method().as_str().to_string();
        let Some((id, rest)) = (match route.as_slice() {
            ["dingtalk", id, "app", rest @ ..] => Some((id.to_string(), rest.to_vec())),
            _ => None,
        }) else {
            return ApiError::not_found("route").into_response();
        };
        let span = info_span!("h5_app", integration_id = %id);
        async {
            match (method.as_str(), rest.as_slice()) {
                ("GET", []) => self.page(&id, &request).await,
                ("GET", ["assets", "app.js"]) => text_response(
                    200,
                    SCRIPT.into(),
                    "text/javascript; charset=utf-8",
                    &self.jsapi_origin(),
                ),
                ("GET", ["assets", "app.css"]) => text_response(
                    200,
                    STYLE.into(),
                    "text/css; charset=utf-8",
                    &self.jsapi_origin(),
                ),
                (_, ["api", api @ ..]) => self
                    .api(&id, &method, api, &request)
                    .await
                    .unwrap_or_else(Failure::into_response),
                _ => ApiError::not_found("route").into_response(),
            }
        }
        .instrument(span)
        .await
    }

    async fn page(&self, id: &str, request: &Request) -> Response<Body> {
        let origin = self.jsapi_origin();
        let integration = match self.app.integration(id).await {
            Ok(integration) => integration,
            Err(H5Error::NotFound(_)) => {
                return text_response(404, "<!doctype html><meta charset=utf-8><title>Not found</title><p>This app link is not valid. Ask your admin for the right link.</p>".into(), "text/html; charset=utf-8", &origin);
            }
            Err(err) => return ApiError::from(err).into_response(),
        };
        let base = format!(
            "{}/dingtalk/{id}/app",
            public_base_url(&self.config, request)
        );
        // Only public identifiers reach the page; no secret ever does.
        let config = json!({
            "integration": integration.id,
            "corpId": integration.corp_id,
            "clientId": integration.client_id,
            "name": integration.name,
            "base": base,
            "timezone": integration.timezone,
            "locale": integration.locale,
        });
        let (incidents, signing_in, noscript) = shell_strings(integration.locale);
        let html = INDEX
            .replace("{{LANG}}", integration.locale.tag())
            .replace("{{INCIDENTS}}", incidents)
            .replace("{{SIGNING_IN}}", signing_in)
            .replace("{{NOSCRIPT}}", noscript)
            .replace("{{JSAPI_URL}}", &escape_html(&self.config.jsapi_url))
            .replace("{{TITLE}}", &escape_html(&integration.name))
            .replace("{{CONFIG}}", &script_safe_json(&config))
            .replace("{{BASE}}", &escape_html(&base));
        text_response(200, html, "text/html; charset=utf-8", &origin)
    }

    /// State-changing calls must come from our own page: a present `Origin` must be ours.
    fn check_origin(&self, request: &Request) -> Result<(), ApiError> {
        let Some(origin) = request
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        else {
            return Ok(());
        };
        let ours = url::Url::parse(&public_base_url(&self.config, request))
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let same_host = url::Url::parse(origin)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            })
            .is_some_and(|h| h == host);
        if origin == ours || same_host {
            Ok(())
        } else {
            Err(ApiError::new(
                403,
                "cross_origin",
                "requests must come from the app's own page",
            ))
        }
    }

    fn session(&self, id: &str, request: &Request) -> Result<Session, ApiError> {
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        self.app.authenticate(id, token).map_err(ApiError::from)
    }

    async fn api(
        &self,
        id: &str,
        method: &str,
        api: &[&str],
        request: &Request,
    ) -> Result<Response<Body>, Failure> {
        if method != "GET" {
            self.check_origin(request)?;
        }
        if method == "POST" && api == ["login"] {
            let code = text(&body(request)?, "code");
            return Ok(json_response(200, &self.app.login(id, &code).await?));
        }
        let session = self.session(id, request)?;
        match (method, api) {
            ("GET", ["me"]) => Ok(json_response(200, &self.app.me(&session).await?)),
            ("POST", ["associate"]) => {
                let code = text(&body(request)?, "code");
                Ok(json_response(
                    200,
                    &self.app.associate(&session, &code).await?,
                ))
            }
            ("POST", ["unlink"]) => Ok(json_response(200, &self.app.unlink(&session).await?)),
            ("POST", ["held"]) => {
                let body = body(request)?;
                let duration = optional_str(&body, "duration")?;
                let member = optional_str(&body, "member")?;
                let (incident, action) = (text(&body, "incident"), text(&body, "action"));
                Ok(json_response(
                    201,
                    &self
                        .app
                        .hold(&session, &incident, &action, (duration, member))
                        .await?,
                ))
            }
            ("POST", ["locale"]) => {
                let body = body(request)?;
                Ok(json_response(
                    200,
                    &self.app.set_locale(&session, body.get("locale")).await?,
                ))
            }
            ("GET", ["oncall"]) => {
                let cid = query_param(request, "cid");
                Ok(json_response(
                    200,
                    &self.app.oncall(&session, cid.as_deref()).await?,
                ))
            }
            ("GET", ["groups"]) => Ok(json_response(200, &self.app.groups(&session).await?)),
            (_, ["incidents", rest @ ..]) => {
                self.incidents_api(&session, method, rest, request).await
            }
            _ => Err(ApiError::not_found("route").into()),
        }
    }

    /// `GET incidents?view=&severity=&cid=`, `GET incidents/{id}`,
    /// `POST incidents/{id}/actions`, `POST incidents/{id}/notes`.
    async fn incidents_api(
        &self,
        session: &Session,
        method: &str,
        api: &[&str],
        request: &Request,
    ) -> Result<Response<Body>, Failure> {
        match (method, api) {
            ("GET", []) => {
                let (view, severity, cid) = (
                    query_param(request, "view"),
                    query_param(request, "severity"),
                    query_param(request, "cid"),
                );
                let query = ListQuery {
                    view: view.as_deref(),
                    severity: severity.as_deref(),
                    cid: cid.as_deref(),
                };
                Ok(json_response(
                    200,
                    &self.app.incidents(session, query).await?,
                ))
            }
            ("GET", [incident]) => Ok(json_response(
                200,
                &self.app.incident(session, incident).await?,
            )),
            ("GET", [incident, "silence"]) => Ok(json_response(
                200,
                &self.app.silence_preview(session, incident).await?,
            )),
            ("POST", [incident, "actions"]) => {
                let body = body(request)?;
                let duration = optional_str(&body, "duration")?;
                let member = optional_str(&body, "member")?;
                let version = match body.get("version") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_u64().ok_or_else(|| {
                        ApiError::invalid_field("version", "version must be a whole number")
                    })?),
                };
                let action = text(&body, "action");
                let now = self
                    .app
                    .act(session, incident, &action, (duration, member), version)
                    .await?;
                Ok(json_response(200, &incident_json(&now)))
            }
            ("POST", [incident, "notes"]) => {
                let body = body(request)?;
                let text = body.get("text").and_then(Value::as_str);
                Ok(json_response(
                    201,
                    &self.app.add_note(session, incident, text).await?,
                ))
            }
            _ => Err(ApiError::not_found("route").into()),
        }
    }
}

/// The JSON body of an API call (`{}` when empty).
fn body(request: &Request) -> Result<Value, ApiError> {
    let bytes = body_bytes(request, MAX_BODY_BYTES)?;
    if bytes.is_empty() {
        Ok(json!({}))
    } else {
        json_body(bytes)
    }
}

/// An optional string field of a body: absent or null is `None`; another type is a 400.
fn optional_str<'a>(value: &'a Value, key: &'static str) -> Result<Option<&'a str>, ApiError> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid_field(
            key,
            format!("{key} must be a string"),
        )),
    }
}

/// A string field of a body (empty when absent).
fn text(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A failed API call: an error, or a lost race with the incident as it is now.
#[derive(Debug)]
enum Failure {
    Api(ApiError),
    Conflict(Box<shared::domain::incident::Incident>),
}

impl From<ApiError> for Failure {
    fn from(err: ApiError) -> Self {
        Self::Api(err)
    }
}

impl From<H5Error> for Failure {
    fn from(err: H5Error) -> Self {
        match err {
            H5Error::Conflict(now) => Self::Conflict(now),
            other => Self::Api(other.into()),
        }
    }
}

impl Failure {
    fn into_response(self) -> Response<Body> {
        match self {
            Self::Api(err) => err.into_response(),
            Self::Conflict(now) => json_response(
                409,
                &json!({"error": {"code": "conflict", "message": "someone acted first; this is the incident now"}, "incident": incident_json(&now)}),
            ),
        }
    }
}
