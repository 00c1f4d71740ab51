//! Event callback function: `POST /dingtalk/{id}/events` (DingTalk event subscription)
//! and `POST /dingtalk/{id}/cards` (interactive card button callbacks).

use lambda_http::{Body, Request, Response};
use shared::Services;
use shared::http::{
    ApiError, body_bytes, json_response, path_segments, query_param, require_json_content,
};
use shared::services::card_callback::CardCallback;
use shared::services::event_subscription::{
    CallbackQuery, CallbackSettings, EventSubscription, MAX_BODY_BYTES,
};
use tracing::{Instrument, info_span};

/// The handler: routes a request to the event subscription service.
#[derive(Clone)]
pub struct EventCallback {
    events: EventSubscription,
    cards: CardCallback,
}

impl EventCallback {
    /// Builds the handler from the shared services.
    pub fn new(services: &Services, settings: CallbackSettings) -> Self {
        Self {
            events: services.event_subscription(settings),
            cards: services.card_callback(),
        }
    }

    /// Handles one API Gateway request; never fails (errors are JSON responses).
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let segments = path_segments(&request);
        let route: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (request.method().as_str(), route.as_slice()) {
            ("POST", ["dingtalk", id, "events"]) => {
                let span = info_span!("event_callback", integration_id = %id);
                self.events_route(id, &request)
                    .instrument(span)
                    .await
                    .unwrap_or_else(ApiError::into_response)
            }
            ("POST", ["dingtalk", id, "cards"]) => {
                let span = info_span!("card_callback", integration_id = %id);
                self.cards_route(id, &request)
                    .instrument(span)
                    .await
                    .unwrap_or_else(ApiError::into_response)
            }
            (_, ["dingtalk", _, "events" | "cards"]) => {
                ApiError::new(405, "method_not_allowed", "use POST").into_response()
            }
            _ => ApiError::not_found("route").into_response(),
        }
    }

    async fn cards_route(&self, id: &str, request: &Request) -> Result<Response<Body>, ApiError> {
        require_json_content(request)?;
        let body = body_bytes(request, shared::services::card_callback::MAX_BODY_BYTES)?;
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        let answer = self
            .cards
            .handle(
                id,
                header("x-ddpaas-signature-timestamp"),
                header("x-ddpaas-signature"),
                body,
            )
            .await?;
        Ok(json_response(200, &answer))
    }

    async fn events_route(&self, id: &str, request: &Request) -> Result<Response<Body>, ApiError> {
        require_json_content(request)?;
        let body = body_bytes(request, MAX_BODY_BYTES)?;
        let query = CallbackQuery::from_params(|name| query_param(request, name))?;
        let reply = self.events.handle(id, &query, body).await?;
        Ok(json_response(200, &reply))
    }
}
