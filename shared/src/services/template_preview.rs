//! `POST /api/integrations/{id}/templates/preview` (ARCHITECTURE.md §11): renders
//! templates (given, or the integration's) on a given payload (an alert event, an
//! Alertmanager or a Grafana webhook) or on the integration's last 5 alerts, and
//! says what DingTalk would make of the result.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::{Clock, rfc3339};
use crate::domain::ValidationError;
use crate::domain::incident::Incident;
use crate::domain::incident_state::new_incident;
use crate::domain::integration::Integration;
use crate::domain::locale::MessageTemplates;
use crate::render::template_warnings::warnings;
use crate::render::templates::{TemplateScope, check, render};
use crate::render::{RenderContext, alert_message};
use crate::services::ingest::parse_payload;
use crate::services::integration_center::CenterError;
use crate::store::Store;

/// Most bytes of one card variable (the card's description included).
const CARD_VALUE_MAX: usize = 1_000;
/// Most samples one preview renders (an Alertmanager payload may carry many alerts).
const MAX_SAMPLES: usize = 20;
/// Recent alerts previewed when no payload is given.
const RECENT: usize = 5;

/// The template preview service.
#[derive(Clone)]
pub struct TemplatePreview {
    store: Store,
    clock: Arc<dyn Clock>,
    public_base_url: Option<String>,
}

impl TemplatePreview {
    /// The service on `store`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, public_base_url: Option<String>) -> Self {
        Self {
            store,
            clock,
            public_base_url,
        }
    }

    /// Renders the previews: `{"previews": [{source, title, body, bytes, warnings}]}`.
    pub async fn preview(&self, integration_id: &str, body: &Value) -> Result<Value, CenterError> {
        let mut integration = self
            .store
            .get_integration(integration_id)
            .await?
            .ok_or(CenterError::NotFound)?;
        let map = body
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        if let Some(unknown) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "templates" | "alert"))
        {
            return Err(ValidationError::new(unknown, "is not a known field").into());
        }
        if let Some(given) = map.get("templates") {
            let templates: MessageTemplates = serde_json::from_value(given.clone())
                .map_err(|e| ValidationError::new("templates", e.to_string()))?;
            check(&templates)?;
            integration.templates = templates;
        }
        let now_ms = self.clock.now_ms();
        let samples: Vec<(String, Incident)> = match map.get("alert") {
            Some(payload) => parse_payload(payload, integration_id)
                .map_err(|e| ValidationError::new(&format!("alert.{}", e.field), e.message))?
                .iter()
                .map(|event| {
                    let at = event.occurred_ms(now_ms);
                    let incident =
                        new_incident("preview".into(), event, at, &rfc3339(now_ms), None);
                    ("given".to_string(), incident)
                })
                .take(MAX_SAMPLES)
                .collect(),
            None => {
                let mut recent = self.store.list_incidents(integration_id).await?;
                recent.sort_by(|a, b| b.opened_at.cmp(&a.opened_at));
                recent.truncate(RECENT);
                recent.into_iter().map(|i| (i.id.clone(), i)).collect()
            }
        };
        let previews: Vec<Value> = samples
            .iter()
            .map(|(source, incident)| self.one(&integration, source, incident, now_ms))
            .collect();
        Ok(json!({"previews": previews}))
    }

    /// One preview: the message as it would be sent, and its warnings.
    fn one(
        &self,
        integration: &Integration,
        source: &str,
        incident: &Incident,
        now_ms: i64,
    ) -> Value {
        let base_url = self
            .public_base_url
            .clone()
            .or_else(|| integration.public_base_url.clone())
            .unwrap_or_default();
        let scope = TemplateScope {
            integration: &integration.name,
            timezone: &integration.timezone,
            locale: integration.locale,
            base_url: &base_url,
            now_ms,
        };
        let ctx = RenderContext::of(integration, &base_url);
        let (ctx, mut notes) = match render(&integration.templates, incident, scope) {
            Ok(custom) => (ctx.with_custom(Some(custom)), Vec::new()),
            Err(failed) => (
                ctx,
                vec![format!(
                    "{failed}: the built-in text would be sent, with a template_failed record"
                )],
            ),
        };
        let cut_from = ctx.custom.as_ref().map_or(0, |c| c.cut_from);
        let message = alert_message(incident, &ctx);
        let title = message.msg_param["title"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let text = message.msg_param["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let bytes = message.param_string().len();
        notes.extend(warnings(&title, &text, bytes, cut_from));
        let body_bytes = ctx
            .custom
            .as_ref()
            .and_then(|c| c.body.as_ref())
            .map_or(0, String::len);
        if integration.card_template_id.is_some() && body_bytes > CARD_VALUE_MAX {
            notes.push(format!(
                "the body is {body_bytes} bytes: cards show at most {CARD_VALUE_MAX} bytes of it (robot messages show it all)"
            ));
        }
        json!({"source": source, "title": title, "body": text, "bytes": bytes, "warnings": notes})
    }
}
