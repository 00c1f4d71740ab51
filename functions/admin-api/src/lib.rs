//! Admin API function: the integration center under `/api/integrations`
//! (ARCHITECTURE.md §6.2), behind `Authorization: Bearer $ADMIN_API_KEY` or a
//! console session cookie with its CSRF token (see [`console`]), and the admin
//! console itself under `/console`.

pub mod console;

use lambda_http::http::header;
use lambda_http::{Body, Request, Response};
use sha2::{Digest, Sha256};
use shared::http::{
    ApiError, body_bytes, json_body, json_response, path_segments, public_base_url, query_param,
    require_json_content,
};
use shared::infra::admin_key::AdminKey;
use shared::services::console_session::ConsoleSessions;
use shared::services::directory::MemberDirectory;
use shared::services::dlq_admin::DlqAdmin;
use shared::services::escalation_admin::EscalationAdmin;
use shared::services::incident_reader::{IncidentReader, incidents_json};
use shared::services::integration_center::IntegrationCenter;
use shared::services::preflight::Preflight;
use shared::services::schedule_admin::ScheduleAdmin;
use shared::services::setup_checklist::SetupChecklist;
use shared::services::template_preview::TemplatePreview;
use shared::{Config, Services};
use subtle::ConstantTimeEq;
use tracing::{Instrument, error, info_span};

/// Largest admin request body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The handler: authenticates and routes admin requests.
#[derive(Clone)]
pub struct AdminApi {
    config: Config,
    admin_key: std::sync::Arc<AdminKey>,
    center: IntegrationCenter,
    directory: MemberDirectory,
    incidents: IncidentReader,
    escalation: EscalationAdmin,
    schedules: ScheduleAdmin,
    preflight: Preflight,
    previews: TemplatePreview,
    dlq: DlqAdmin,
    sessions: ConsoleSessions,
    setup: SetupChecklist,
}

impl AdminApi {
    /// Builds the handler from the shared services.
    pub fn new(services: &Services) -> Self {
        Self {
            config: services.config.clone(),
            admin_key: services.admin_key.clone(),
            center: services.integration_center(),
            directory: services.member_directory(),
            incidents: services.incident_reader(),
            escalation: services.escalation_admin(),
            schedules: services.schedule_admin(),
            preflight: services.preflight(),
            previews: services.template_preview(),
            dlq: services.dlq_admin(),
            sessions: services.console_sessions(),
            setup: services.setup_checklist(),
        }
    }

    /// Handles one API Gateway request; never fails (errors are JSON responses).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let segments = path_segments(&request);
        let route: Vec<&str> = segments.iter().map(String::as_str).collect();
        if let Some(public) = public_route(request.method().as_str(), &route) {
            return public;
        }
        if let Some(page) = console::static_route(request.method().as_str(), &route) {
            return page;
        }
        let secure = console::is_secure(&public_base_url(&self.config, &request));
        if let Some(answer) = console::session_route(&self.sessions, &request, &route, secure).await
        {
            return answer.unwrap_or_else(ApiError::into_response);
        }
        // `/api/integrations/{id}/…` names an integration, `/api/incidents/{id}` an incident.
        let id = segments.get(2).cloned().unwrap_or_default();
        let (integration_id, incident_id) = match segments.get(1).map(String::as_str) {
            Some("incidents") => (String::new(), id),
            _ => (id, String::new()),
        };
        let span = info_span!("admin_api", method = %request.method(), integration_id = %integration_id, incident_id = %incident_id);
        async {
            self.authenticate(&request, secure).await?;
            self.route(&request, &segments).await
        }
        .instrument(span)
        .await
        .unwrap_or_else(ApiError::into_response)
    }

    /// Constant-time check of the bearer key (digests equalise the lengths); without
    /// an `Authorization` header, the console session cookie (and CSRF token).
    async fn authenticate(&self, request: &Request, secure: bool) -> Result<(), ApiError> {
        if !request.headers().contains_key(header::AUTHORIZATION)
            && let Some(token) = console::request_cookie(request, secure)
        {
            return console::authorize_cookie(&self.sessions, request, token).await;
        }
        let expected = match self.admin_key.expected().await {
            Ok(Some(key)) => key.expose(),
            Ok(None) => {
                return Err(ApiError::new(
                    503,
                    "admin_api_disabled",
                    "the admin API is disabled: ADMIN_API_KEY is not configured",
                ));
            }
            Err(err) => {
                error!(error = %err, "admin key unavailable");
                return Err(ApiError::new(503, "admin_key_unavailable", err.to_string()));
            }
        };
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let matches: bool = Sha256::digest(presented.trim().as_bytes())
            .ct_eq(&Sha256::digest(expected.as_bytes()))
            .into();
        if presented.is_empty() || !matches {
            return Err(ApiError::new(
                401,
                "unauthorized",
                "missing or wrong admin key (Authorization: Bearer <ADMIN_API_KEY>)",
            ));
        }
        Ok(())
    }

    async fn route(
        &self,
        request: &Request,
        segments: &[String],
    ) -> Result<Response<Body>, ApiError> {
        let base = public_base_url(&self.config, request);
        let route: Vec<&str> = segments.iter().map(String::as_str).collect();
        let method = request.method().as_str();
        if let Some(found) =
            Box::pin(self.integration_routes(method, &route, request, &base)).await?
        {
            return Ok(found);
        }
        if let Some(found) = Box::pin(self.directory_routes(method, &route, request)).await? {
            return Ok(found);
        }
        if let Some(found) = Box::pin(self.incident_routes(method, &route, request)).await? {
            return Ok(found);
        }
        if let Some(found) = Box::pin(self.escalation_routes(method, &route, request)).await? {
            return Ok(found);
        }
        if let Some(found) = Box::pin(self.schedule_routes(method, &route, request)).await? {
            return Ok(found);
        }
        if let Some(found) = Box::pin(self.dlq_routes(method, &route, request)).await? {
            return Ok(found);
        }
        Err(unrouted(method, &route))
    }

    /// `/api/integrations…`: the integration itself, its chats, tokens, usage, verify.
    async fn integration_routes(
        &self,
        method: &str,
        route: &[&str],
        request: &Request,
        base: &str,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let (status, answer) = match (method, route) {
            ("GET", ["api", "integrations"]) => (200, json(self.center.list(base).await?)),
            ("POST", ["api", "integrations"]) => {
                let body = read_json(request)?;
                (201, json(self.center.create(&body, base).await?))
            }
            ("GET", ["api", "integrations", id]) => (200, json(self.center.get(id, base).await?)),
            ("PATCH", ["api", "integrations", id]) => {
                let body = read_json(request)?;
                (200, json(self.center.update(id, &body, base).await?))
            }
            ("DELETE", ["api", "integrations", id]) => {
                self.center.delete(id).await?;
                (200, serde_json::json!({"deleted": id}))
            }
            ("GET", ["api", "integrations", id, "chats"]) => {
                (200, json(self.center.list_chats(id).await?))
            }
            ("POST", ["api", "integrations", id, "ingest-token"]) => {
                (200, json(self.center.rotate_ingest_token(id).await?))
            }
            ("POST", ["api", "integrations", id, "webhook-secret"]) => {
                (200, json(self.center.rotate_webhook_secret(id).await?))
            }
            ("GET", ["api", "integrations", id, "usage"]) => {
                (200, json(self.center.usage(id).await?))
            }
            ("POST", ["api", "integrations", id, "verify"]) => {
                (200, json(self.center.verify(id, base).await?))
            }
            ("GET", ["api", "integrations", id, "setup"]) => {
                (200, self.setup.check(id, base).await?)
            }
            ("POST", ["api", "integrations", id, "templates", "preview"]) => {
                let body = read_json(request)?;
                (200, self.previews.preview(id, &body).await?)
            }
            _ => return Ok(None),
        };
        Ok(Some(json_response(status, &answer)))
    }

    /// Members, link codes, bindings and the audit log of an integration.
    async fn directory_routes(
        &self,
        method: &str,
        route: &[&str],
        request: &Request,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let (status, answer) = match (method, route) {
            ("POST", ["api", "integrations", id, "members"]) => {
                let body = read_json(request)?;
                (200, json(self.directory.put_member(id, &body).await?))
            }
            ("GET", ["api", "integrations", id, "members"]) => {
                (200, json(self.directory.members(id).await?))
            }
            ("DELETE", ["api", "integrations", id, "members", email]) => {
                (200, json(self.directory.delete_member(id, email).await?))
            }
            ("POST", ["api", "integrations", id, "members", email, "link-code"]) => {
                (201, json(self.directory.link_code(id, email).await?))
            }
            ("GET", ["api", "integrations", id, "audit"]) => {
                (200, json(self.directory.audit(id).await?))
            }
            ("GET", ["api", "integrations", id, "bindings"]) => {
                (200, json(self.directory.bindings(id).await?))
            }
            ("PUT", ["api", "integrations", id, "bindings", user_id]) => {
                let body = read_json(request)?;
                let (binding, replayed) = self.directory.bind(id, user_id, &body).await?;
                let mut answer = json(binding);
                if let Some(replayed) = replayed {
                    answer["replayed"] = json(replayed);
                }
                (200, answer)
            }
            ("DELETE", ["api", "integrations", id, "bindings", user_id]) => {
                (200, json(self.directory.unbind(id, user_id).await?))
            }
            _ => return Ok(None),
        };
        Ok(Some(json_response(status, &answer)))
    }

    /// Incident lists and details.
    async fn incident_routes(
        &self,
        method: &str,
        route: &[&str],
        request: &Request,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let answer = match (method, route) {
            ("GET", ["api", "integrations", id, "incidents"]) => {
                let key = query_param(request, "key");
                let status = query_param(request, "status");
                incidents_json(
                    &self
                        .incidents
                        .list(id, key.as_deref(), status.as_deref())
                        .await?,
                )
            }
            ("GET", ["api", "incidents", id]) => json(self.incidents.detail(id).await?),
            _ => return Ok(None),
        };
        Ok(Some(json_response(200, &answer)))
    }
}

impl AdminApi {
    /// Escalation policies and routes (ARCHITECTURE.md §9).
    async fn escalation_routes(
        &self,
        method: &str,
        route: &[&str],
        request: &Request,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let policies = &self.escalation;
        let (status, answer) = match (method, route) {
            ("GET", ["api", "integrations", id, "escalation-policies"]) => {
                (200, json(policies.list(id).await?))
            }
            ("POST", ["api", "integrations", id, "escalation-policies"]) => {
                let body = read_json(request)?;
                (201, json(policies.create(id, &body).await?))
            }
            ("GET", ["api", "integrations", id, "escalation-policies", pid]) => {
                (200, json(policies.get(id, pid).await?))
            }
            ("PUT", ["api", "integrations", id, "escalation-policies", pid]) => {
                let body = read_json(request)?;
                (200, json(policies.replace(id, pid, &body).await?))
            }
            ("DELETE", ["api", "integrations", id, "escalation-policies", pid]) => {
                (200, json(policies.delete(id, pid).await?))
            }
            ("GET", ["api", "integrations", id, "routes"]) => {
                (200, json(policies.routes(id).await?))
            }
            ("PUT", ["api", "integrations", id, "routes"]) => {
                let body = read_json(request)?;
                (200, json(policies.put_routes(id, &body).await?))
            }
            _ => return Ok(None),
        };
        Ok(Some(json_response(status, &answer)))
    }
}

impl AdminApi {
    /// On-call schedules, overrides and the pre-flight check (ARCHITECTURE.md §8).
    async fn schedule_routes(
        &self,
        method: &str,
        route: &[&str],
        request: &Request,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let schedules = &self.schedules;
        let q = |name: &str| query_param(request, name);
        let (status, answer) = match (method, route) {
            ("GET", ["api", "integrations", id, "schedules"]) => {
                (200, json(schedules.list(id).await?))
            }
            ("POST", ["api", "integrations", id, "schedules"]) => {
                (201, schedules.create(id, &read_json(request)?).await?)
            }
            ("GET", ["api", "integrations", id, "schedules", sid]) => {
                (200, schedules.get(id, sid).await?)
            }
            ("PUT", ["api", "integrations", id, "schedules", sid]) => {
                (200, schedules.replace(id, sid, &read_json(request)?).await?)
            }
            ("DELETE", ["api", "integrations", id, "schedules", sid]) => {
                (200, schedules.delete(id, sid).await?)
            }
            ("POST", ["api", "integrations", id, "schedules", sid, "overrides"]) => {
                let body = read_json(request)?;
                (201, schedules.add_override(id, sid, &body).await?)
            }
            (
                "DELETE",
                [
                    "api",
                    "integrations",
                    id,
                    "schedules",
                    sid,
                    "overrides",
                    oid,
                ],
            ) => (200, schedules.delete_override(id, sid, oid).await?),
            ("GET", ["api", "integrations", id, "schedules", sid, "oncall"]) => {
                (200, schedules.oncall(id, sid, q("at").as_deref()).await?)
            }
            ("GET", ["api", "integrations", id, "schedules", sid, "shifts"]) => {
                let (from, to) = (q("from"), q("to"));
                (
                    200,
                    schedules
                        .shifts(id, sid, from.as_deref(), to.as_deref())
                        .await?,
                )
            }
            ("GET", ["api", "integrations", id, "preflight"]) => {
                let days = q("days");
                (200, json(self.preflight.check(id, days.as_deref()).await?))
            }
            _ => return Ok(None),
        };
        Ok(Some(json_response(status, &answer)))
    }
}

impl AdminApi {
    /// The dead-letter queue: peek and redrive.
    async fn dlq_routes(
        &self,
        method: &str,
        route: &[&str],
        request: &Request,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let answer = match (method, route) {
            ("GET", ["api", "dlq"]) => json(self.dlq.peek().await?),
            ("POST", ["api", "dlq", "redrive"]) => {
                let body = read_json(request)?;
                json(self.dlq.redrive(&body).await?)
            }
            _ => return Ok(None),
        };
        Ok(Some(json_response(200, &answer)))
    }
}

/// The OpenAPI document of the admin, ingest and H5 APIs (the repository's
/// `openapi.yaml`), served at `GET /api/openapi.yaml`.
pub const OPENAPI_YAML: &str = include_str!("../../../openapi.yaml");

/// Routes that need no admin key: the API description, public like the APIs' paths.
fn public_route(method: &str, route: &[&str]) -> Option<Response<Body>> {
    match (method, route) {
        ("GET", ["api", "openapi.yaml"]) => {
            let mut response = Response::new(Body::from(OPENAPI_YAML));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/yaml"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                header::HeaderValue::from_static("nosniff"),
            );
            Some(response)
        }
        _ => None,
    }
}

/// A service answer as JSON.
fn json(answer: impl serde::Serialize) -> serde_json::Value {
    serde_json::to_value(answer).unwrap_or(serde_json::Value::Null)
}

/// 405 on a known path with another method, else 404.
fn unrouted(method: &str, route: &[&str]) -> ApiError {
    match route {
        ["api", "integrations"]
        | ["api", "integrations", _]
        | [
            "api",
            "integrations",
            _,
            "chats"
            | "members"
            | "bindings"
            | "incidents"
            | "ingest-token"
            | "webhook-secret"
            | "escalation-policies"
            | "routes"
            | "schedules"
            | "preflight"
            | "setup",
        ]
        | [
            "api",
            "integrations",
            _,
            "bindings" | "escalation-policies" | "schedules" | "members",
            _,
        ]
        | [
            "api",
            "integrations",
            _,
            "schedules",
            _,
            "overrides" | "oncall" | "shifts",
        ]
        | ["api", "integrations", _, "schedules", _, "overrides", _]
        | ["api", "integrations", _, "templates", "preview"]
        | ["api", "incidents", _]
        | ["api", "dlq"]
        | ["api", "dlq", "redrive"] => ApiError::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed here"),
        ),
        _ => ApiError::not_found("route"),
    }
}

fn read_json(request: &Request) -> Result<serde_json::Value, ApiError> {
    require_json_content(request)?;
    json_body(body_bytes(request, MAX_BODY_BYTES)?)
}
