//! Ingest function, behind the integration's ingest token:
//! - `POST /api/integrations/{id}/alerts` (Alertmanager v4, Grafana alerting webhook,
//!   alert event v1; `Authorization: Bearer <ingest_token>`): 202 once queued;
//! - `POST /api/integrations/{id}/robot/send?access_token=<ingest_token>`: DingTalk
//!   custom-robot compatible, answers `{"errcode", "errmsg"}`;
//! - `POST /api/integrations/{id}/pagerduty/v2/enqueue` (`routing_key` = the ingest
//!   token): PagerDuty Events API v2 compatible.
//!
//! Our own failures are 5xx so senders retry. The token is never logged or returned.

use lambda_http::http::header;
use lambda_http::{Body, Request, Response};
use shared::Services;
use shared::http::{
    ApiError, body_bytes, json_response, path_segments, query_param, require_json_content,
};
use shared::services::ingest::{Ingest, MAX_BODY_BYTES};
use shared::services::ingest_pagerduty::{PagerDutyError, PagerDutyIngest, accepted_body};
use shared::services::ingest_robot::{RobotError, RobotIngest, RobotParams, ok_body};
use tracing::{Instrument, info, info_span};

/// The handler.
#[derive(Clone)]
pub struct IngestApi {
    ingest: Ingest,
    robot: RobotIngest,
    pagerduty: PagerDutyIngest,
}

impl IngestApi {
    /// Builds the handler from the shared services.
    pub fn new(services: &Services) -> Self {
        Self {
            ingest: services.ingest(),
            robot: RobotIngest::new(
                services.store.clone(),
                services.job_queue(),
                services.clock.clone(),
            ),
            pagerduty: PagerDutyIngest::new(
                services.store.clone(),
                services.job_queue(),
                services.clock.clone(),
                services.incident_actions(),
            ),
        }
    }

    /// Handles one API Gateway request; never fails (errors are JSON responses).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let segments = path_segments(&request);
        let route: Vec<&str> = segments.iter().map(String::as_str).collect();
        let post = request.method().as_str() == "POST";
        match route.as_slice() {
            ["api", "integrations", id, "alerts"] if post => {
                let span = info_span!("ingest", integration_id = %id);
                self.accept(id, &request)
                    .instrument(span)
                    .await
                    .unwrap_or_else(ApiError::into_response)
            }
            ["api", "integrations", id, "robot", "send"] if post => {
                let span = info_span!("ingest_robot", integration_id = %id);
                self.robot(id, &request).instrument(span).await
            }
            ["api", "integrations", id, "pagerduty", "v2", "enqueue"] if post => {
                let span = info_span!("ingest_pagerduty", integration_id = %id);
                self.pagerduty(id, &request).instrument(span).await
            }
            ["api", "integrations", _, "alerts"] => {
                ApiError::new(405, "method_not_allowed", "use POST").into_response()
            }
            // The compatible routes refuse in their peer's shape.
            ["api", "integrations", _, "robot", "send"] => json_response(
                405,
                &RobotError::Param("use POST with a JSON body".into()).body(),
            ),
            ["api", "integrations", _, "pagerduty", "v2", "enqueue"] => json_response(
                405,
                &PagerDutyError::Invalid(vec!["use POST with a JSON body".into()]).body(),
            ),
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

    /// A DingTalk custom-robot send: HTTP 200 `{"errcode": 0, "errmsg": "ok"}`, or
    /// DingTalk's error codes (HTTP 200; 503 for our own failures).
    async fn robot(&self, id: &str, request: &Request) -> Response<Body> {
        let params = RobotParams {
            access_token: query_param(request, "access_token"),
            timestamp: query_param(request, "timestamp"),
            sign: query_param(request, "sign"),
            severity: query_param(request, "severity"),
            key: query_param(request, "key"),
            status: query_param(request, "status"),
        };
        let sent = match body_bytes(request, MAX_BODY_BYTES) {
            Ok(body) => self.robot.send(id, &params, body).await,
            Err(_) => Err(RobotError::Param(format!(
                "body is larger than {MAX_BODY_BYTES} bytes"
            ))),
        };
        match sent {
            Ok(_) => json_response(200, &ok_body()),
            Err(err) => {
                info!(errcode = err.errcode(), "robot message refused");
                json_response(err.http_status(), &err.body())
            }
        }
    }

    /// A PagerDuty Events API v2 event: 202 with the `dedup_key`, 400 `invalid
    /// event`, or 503 for our own failures.
    async fn pagerduty(&self, id: &str, request: &Request) -> Response<Body> {
        let done = match body_bytes(request, MAX_BODY_BYTES) {
            Ok(body) => self.pagerduty.enqueue(id, body).await,
            Err(_) => Err(PagerDutyError::Invalid(vec![format!(
                "Event object is larger than {MAX_BODY_BYTES} bytes"
            )])),
        };
        match done {
            Ok(dedup_key) => json_response(202, &accepted_body(&dedup_key)),
            Err(err) => {
                info!(status = err.http_status(), "pagerduty event refused");
                json_response(err.http_status(), &err.body())
            }
        }
    }
}
