//! What API Gateway does for the deployed functions, done in-process: the route
//! table of template.yaml, and the conversion between an HTTP request and the
//! `lambda_http::Request` the real handlers take.

use std::collections::HashMap;

use admin_api::AdminApi;
use axum::Router;
use axum::body::Body as AxumBody;
use axum::extract::Request as AxumRequest;
use axum::response::{IntoResponse, Response as AxumResponse};
use event_callback::EventCallback;
use h5_app::H5Page;
use ingest::IngestApi;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use serde_json::json;

/// Largest request body API Gateway passes to Lambda (6 MB payload limit).
pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;

/// A deployed function that serves HTTP routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `functions/event-callback` (EventCallbackFunction).
    EventCallback,
    /// `functions/admin-api` (AdminApiFunction).
    AdminApi,
    /// `functions/ingest` (IngestFunction).
    Ingest,
    /// `functions/h5-app` (H5AppFunction).
    H5App,
}

/// The HTTP API routes of template.yaml: (method, path, function).
/// A test keeps this list and the template in step.
pub const ROUTES: &[(&str, &str, Function)] = &[
    ("POST", "/dingtalk/{id}/events", Function::EventCallback),
    ("POST", "/dingtalk/{id}/cards", Function::EventCallback),
    ("ANY", "/api/integrations", Function::AdminApi),
    ("ANY", "/api/integrations/{proxy+}", Function::AdminApi),
    ("ANY", "/api/incidents/{proxy+}", Function::AdminApi),
    ("GET", "/api/openapi.yaml", Function::AdminApi),
    ("GET", "/api/dlq", Function::AdminApi),
    ("POST", "/api/dlq/redrive", Function::AdminApi),
    ("GET", "/console", Function::AdminApi),
    ("ANY", "/console/{proxy+}", Function::AdminApi),
    ("POST", "/api/integrations/{id}/alerts", Function::Ingest),
    (
        "POST",
        "/api/integrations/{id}/robot/send",
        Function::Ingest,
    ),
    (
        "POST",
        "/api/integrations/{id}/pagerduty/v2/enqueue",
        Function::Ingest,
    ),
    ("GET", "/dingtalk/{id}/app", Function::H5App),
    ("ANY", "/dingtalk/{id}/app/{proxy+}", Function::H5App),
];

/// The function handlers, built once like in Lambda.
#[derive(Clone)]
pub struct Functions {
    /// Event callback handler.
    pub event_callback: EventCallback,
    /// Admin API handler.
    pub admin_api: AdminApi,
    /// Ingest handler.
    pub ingest: IngestApi,
    /// H5 app handler.
    pub h5_app: H5Page,
}

impl Functions {
    async fn invoke(
        &self,
        function: Function,
        request: lambda_http::Request,
    ) -> lambda_http::Response<Body> {
        match function {
            Function::EventCallback => self.event_callback.handle(request).await,
            Function::AdminApi => self.admin_api.handle(request).await,
            Function::Ingest => self.ingest.handle(request).await,
            Function::H5App => self.h5_app.handle(request).await,
        }
    }
}

/// How well a route matches a request, higher is better (API Gateway picks the most
/// specific route: literal segments over `{param}` over `{proxy+}`, a method over `ANY`).
fn route_score(
    route_method: &str,
    route_path: &str,
    method: &str,
    path: &str,
) -> Option<(u32, u32)> {
    if route_method != "ANY" && route_method != method {
        return None;
    }
    let mut actual = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty());
    let mut specificity = 0;
    for pattern in route_path.trim_start_matches('/').split('/') {
        if pattern.ends_with("+}") {
            // Greedy: needs at least one segment.
            return actual
                .next()
                .map(|_| (specificity, u32::from(route_method != "ANY")));
        }
        let segment = actual.next()?;
        if pattern.starts_with('{') {
            specificity += 1;
        } else if pattern == segment {
            specificity += 2;
        } else {
            return None;
        }
    }
    actual
        .next()
        .is_none()
        .then_some((specificity + 100, u32::from(route_method != "ANY")))
}

/// The route of [`ROUTES`] that API Gateway would pick for a request.
pub fn match_route(method: &str, path: &str) -> Option<(&'static str, Function)> {
    ROUTES
        .iter()
        .filter_map(|&(m, p, f)| route_score(m, p, method, path).map(|score| (score, p, f)))
        .max_by_key(|(score, _, _)| *score)
        .map(|(_, p, f)| (p, f))
}

/// A router serving every route of [`ROUTES`] with the real handlers.
pub fn router(functions: Functions) -> Router {
    Router::new().fallback(move |request: AxumRequest| {
        let functions = functions.clone();
        async move {
            match match_route(request.method().as_str(), request.uri().path()) {
                Some((route_path, function)) => {
                    dispatch(&functions, function, route_path, request).await
                }
                None => (
                    axum::http::StatusCode::NOT_FOUND,
                    axum::Json(json!({"message": "Not Found"})),
                )
                    .into_response(),
            }
        }
    })
}

async fn dispatch(
    functions: &Functions,
    function: Function,
    route_path: &str,
    request: AxumRequest,
) -> AxumResponse {
    let method = request.method().clone();
    match to_lambda_request(request, route_path).await {
        Ok(lambda_request) => {
            let response = functions.invoke(function, lambda_request).await;
            tracing::debug!(%method, ?function, status = response.status().as_u16(), "invoked");
            from_lambda_response(response)
        }
        Err(response) => response,
    }
}

/// Converts an incoming request to what API Gateway (HTTP API, payload v2) hands Lambda.
pub async fn to_lambda_request(
    request: AxumRequest,
    route_path: &str,
) -> Result<lambda_http::Request, AxumResponse> {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        let body = json!({"message": "Request Entity Too Large"});
        return Err((axum::http::StatusCode::PAYLOAD_TOO_LARGE, axum::Json(body)).into_response());
    };
    let body = if bytes.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(err) => Body::Binary(err.into_bytes()),
        }
    };
    let query: HashMap<String, Vec<String>> = parts
        .uri
        .query()
        .map(|q| {
            let mut map: HashMap<String, Vec<String>> = HashMap::new();
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                map.entry(k.into_owned()).or_default().push(v.into_owned());
            }
            map
        })
        .unwrap_or_default();
    let path_parameters = path_parameters(route_path, parts.uri.path());
    let mut context =
        lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    context.route_key = Some(format!("{} {route_path}", parts.method));
    context.stage = Some("$default".into());
    context.domain_name = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(String::from);
    context.http.method = parts.method.clone();
    context.http.path = Some(parts.uri.path().to_string());
    let request = lambda_http::http::Request::from_parts(parts, body)
        .with_query_string_parameters(query)
        .with_path_parameters(path_parameters)
        .with_request_context(RequestContext::ApiGatewayV2(context));
    Ok(request)
}

/// Matches `{name}` / `{proxy+}` segments of an API Gateway route against a path.
fn path_parameters(route_path: &str, path: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut actual = path.trim_start_matches('/').split('/');
    for pattern in route_path.trim_start_matches('/').split('/') {
        if let Some(name) = pattern.strip_prefix('{').and_then(|p| p.strip_suffix("+}")) {
            params.insert(
                name.to_string(),
                actual.by_ref().collect::<Vec<_>>().join("/"),
            );
            break;
        }
        let Some(segment) = actual.next() else { break };
        if let Some(name) = pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            params.insert(name.to_string(), segment.to_string());
        }
    }
    params
}

/// Converts a handler's response back to HTTP.
pub fn from_lambda_response(response: lambda_http::Response<Body>) -> AxumResponse {
    let (parts, body) = response.into_parts();
    let body = match body {
        Body::Empty => AxumBody::empty(),
        Body::Text(text) => AxumBody::from(text),
        Body::Binary(bytes) => AxumBody::from(bytes),
        _ => AxumBody::empty(),
    };
    AxumResponse::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_follow_api_gateway() {
        let p = path_parameters("/dingtalk/{id}/events", "/dingtalk/abc/events");
        assert_eq!(p.get("id").map(String::as_str), Some("abc"));
        let p = path_parameters("/api/integrations/{proxy+}", "/api/integrations/abc/chats");
        assert_eq!(p.get("proxy").map(String::as_str), Some("abc/chats"));
    }

    #[test]
    fn the_most_specific_route_wins() {
        let pick = |m: &str, p: &str| match_route(m, p).map(|(_, f)| f);
        assert_eq!(
            pick("POST", "/api/integrations/x/alerts"),
            Some(Function::Ingest)
        );
        assert_eq!(
            pick("GET", "/api/integrations/x/alerts"),
            Some(Function::AdminApi)
        );
        assert_eq!(
            pick("POST", "/api/integrations/x/robot/send"),
            Some(Function::Ingest)
        );
        assert_eq!(
            pick("POST", "/api/integrations/x/pagerduty/v2/enqueue"),
            Some(Function::Ingest)
        );
        assert_eq!(pick("GET", "/api/integrations"), Some(Function::AdminApi));
        assert_eq!(
            pick("POST", "/dingtalk/x/events"),
            Some(Function::EventCallback)
        );
        assert_eq!(pick("GET", "/dingtalk/x/events"), None);
        assert_eq!(pick("GET", "/api/incidents"), None);
        assert_eq!(pick("GET", "/elsewhere"), None);
    }
}
