//! lambda_http plumbing shared by the API Gateway handlers (feature `lambda-http`):
//! JSON responses, body limits, path and query parsing, base URLs.

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use super::ApiError;
use crate::config::Config;

impl ApiError {
    /// The JSON response for this error.
    pub fn into_response(self) -> Response<Body> {
        json_response(self.status, &self.body())
    }
}

/// A JSON response with `status`.
pub fn json_response(status: u16, value: &impl Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The request body, refused when larger than `limit` bytes (413).
pub fn body_bytes(request: &Request, limit: usize) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match request.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > limit {
        return Err(ApiError::new(
            413,
            "body_too_large",
            format!("request body is larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Refuses a body whose declared Content-Type is not JSON (415). A missing
/// Content-Type is accepted.
pub fn require_json_content(request: &Request) -> Result<(), ApiError> {
    match request.headers().get(header::CONTENT_TYPE) {
        None => Ok(()),
        Some(value) => {
            let text = value.to_str().unwrap_or_default().to_ascii_lowercase();
            let mime = text.split(';').next().unwrap_or_default().trim();
            if mime == "application/json" || mime.ends_with("+json") {
                Ok(())
            } else {
                Err(ApiError::new(
                    415,
                    "unsupported_media_type",
                    "the body must be JSON (Content-Type: application/json)",
                ))
            }
        }
    }
}

/// Parses a JSON body (400 when it is not JSON).
pub fn json_body(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::new(400, "invalid_json", format!("body is not valid JSON: {e}")))
}

/// The non-empty, percent-decoded segments of the request path.
pub fn path_segments(request: &Request) -> Vec<String> {
    request
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect()
}

/// A query string parameter (first value).
pub fn query_param(request: &Request, name: &str) -> Option<String> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name).map(String::from))
        .or_else(|| {
            request.uri().query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            })
        })
}

/// Base of the URLs shown to users: `PUBLIC_BASE_URL`, else `https://<domain>` of
/// the API Gateway request, else the request's Host header.
pub fn public_base_url(config: &Config, request: &Request) -> String {
    if let Some(base) = &config.public_base_url {
        return base.clone();
    }
    if let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
        request.request_context_ref()
        && let Some(domain) = &ctx.domain_name
    {
        return format!("https://{domain}");
    }
    request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|host| format!("https://{host}"))
        .unwrap_or_else(|| "https://localhost".to_string())
}
