//! Ingest function: `POST /api/integrations/{id}/alerts` (Alertmanager v4, Grafana
//! alerting webhook, alert event v1) behind the integration's ingest token.
//! Answers 202 once queued; our own failures are 5xx so senders retry.

use lambda_http::http::header;
use lambda_http::{Body, Request, Response};
use shared::Services;
use shared::http::{ApiError, body_bytes, json_response, path_segments, require_json_content};
use shared::services::ingest::{Ingest, MAX_BODY_BYTES};
use tracing::{Instrument, info_span};

/// The handler.
#[derive(Clone)]
pub struct IngestApi {
    ingest: Ingest,
}

impl IngestApi {
    /// Builds the handler from the shared services.
    pub fn new(services: &Services) -> Self {
        Self {
            ingest: services.ingest(),
        }
    }

    /// Handles one API Gateway request; never fails (errors are JSON responses).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let segments = path_segments(&request);
        let route: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (request.method().as_str(), route.as_slice()) {
            ("POST", ["api", "integrations", id, "alerts"]) => {
                let span = info_span!("ingest", integration_id = %id);
                self.accept(id, &request)
                    .instrument(span)
                    .await
                    .unwrap_or_else(ApiError::into_response)
            }
            (_, ["api", "integrations", _, "alerts"]) => {
                ApiError::new(405, "method_not_allowed", "use POST").into_response()
            }
            _ => ApiError::not_found("route").into_response(),
        }
    }

    async fn accept(&self, id: &str, request: &Request) -> Result<Response<Body>, ApiError> {
        require_json_content(request)?;
        let body = body_bytes(request, MAX_BODY_BYTES)?;
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let answer = self.ingest.accept(id, bearer, body).await?;
        Ok(json_response(202, &answer))
    }
}
