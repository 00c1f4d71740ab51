//! Rendering, one renderer per destination (ARCHITECTURE.md §3): robot markdown
//! messages ([`robot_markdown`]), interactive-card parameters and bodies ([`card`]),
//! and the upstream webhook payload ([`webhook_payload`]). This module holds what
//! they share: links into the H5 app, local times, the status line.

pub mod card;
pub mod oncall_messages;
pub mod preflight_lines;
pub mod robot_markdown;
pub mod sanitize;
pub mod strings;
pub mod template_warnings;
pub mod templates;
pub mod webhook_payload;

use crate::domain::incident::{Incident, IncidentStatus, Severity};
use crate::domain::integration::Integration;
use crate::domain::locale::Locale;
use strings::{Strings, fill};
use templates::CustomText;

pub use card::{card_params, content_hash};
pub use robot_markdown::{alert_message, resolved_message};

/// Firing red, resolved green, acknowledged orange.
pub(crate) const RED: &str = "#D83931";
pub(crate) const GREEN: &str = "#00A854";
pub(crate) const ORANGE: &str = "#F58B00";

/// Where people open an incident (the H5 app) and how times are shown.
#[derive(Debug, Clone)]
pub struct RenderContext<'a> {
    /// Base of our public URLs.
    pub base_url: &'a str,
    /// IANA time zone of the integration.
    pub timezone: &'a str,
    /// People to @mention: (userId, name).
    pub mentions: &'a [(String, String)],
    /// The language of the text.
    pub locale: Locale,
    /// What the integration's templates made of the incident (none: built-in text).
    pub custom: Option<CustomText>,
    /// Whether the integration has an Alertmanager to silence (Silence buttons).
    pub silence_ready: bool,
    /// Now (Unix ms), when known: a silence past its end is shown as ended.
    pub now_ms: Option<i64>,
}

impl<'a> RenderContext<'a> {
    /// The context of `integration`'s messages, with links under `base_url`.
    pub fn of(integration: &'a Integration, base_url: &'a str) -> Self {
        Self {
            base_url,
            timezone: &integration.timezone,
            mentions: &[],
            locale: integration.locale,
            custom: None,
            silence_ready: integration.alertmanager.is_some(),
            now_ms: None,
        }
    }

    /// The same, @mentioning `mentions`.
    pub fn mentioning(mut self, mentions: &'a [(String, String)]) -> Self {
        self.mentions = mentions;
        self
    }

    /// The same, with the text the user's templates made.
    pub fn with_custom(mut self, custom: Option<CustomText>) -> Self {
        self.custom = custom;
        self
    }

    /// The context of `incident`'s messages: with what the integration's templates
    /// make of it, or (a failing template) the built-in text and the failure.
    pub fn for_incident(
        integration: &'a Integration,
        base_url: &'a str,
        incident: &Incident,
        now_ms: i64,
    ) -> (Self, Option<templates::TemplateFailed>) {
        let ctx = Self {
            now_ms: Some(now_ms),
            ..Self::of(integration, base_url)
        };
        if integration.templates.is_empty() {
            return (ctx, None);
        }
        let scope = templates::TemplateScope {
            integration: &integration.name,
            timezone: &integration.timezone,
            locale: integration.locale,
            base_url,
            now_ms,
        };
        match templates::render(&integration.templates, incident, scope) {
            Ok(custom) => (ctx.with_custom(Some(custom)), None),
            Err(failed) => (ctx, Some(failed)),
        }
    }

    /// The strings of the context's language.
    pub fn strings(&self) -> &'static Strings {
        Strings::of(self.locale)
    }
}

/// An H5 app URL for an incident, with an action ready to confirm.
pub fn incident_url(base_url: &str, incident: &Incident, action: Option<&str>) -> String {
    let mut url = format!(
        "{base_url}/dingtalk/{}/app?incident={}",
        incident.integration_id, incident.id
    );
    if let Some(action) = action {
        url.push_str("&action=");
        url.push_str(action);
    }
    url
}

/// Wraps a URL so DingTalk opens it inside the client (side panel on PC).
pub fn in_dingtalk(url: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
    format!("dingtalk://dingtalkclient/page/link?url={encoded}&pc_slide=true")
}

/// `2026-11-24 09:02 CST` in the integration's time zone.
pub fn local_time(rfc3339: &str, timezone: &str) -> String {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string())
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// A link as markdown: the title made inert, the URL re-serialised from its parse
/// (http(s) only, else the title alone) with every character that could end it or
/// start markdown percent-encoded.
pub(crate) fn markdown_link(title: &str, url: &str) -> String {
    let title = sanitize::inline(title);
    let Some(parsed) = url::Url::parse(url.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
    else {
        return title;
    };
    let url: String = parsed
        .as_str()
        .chars()
        .map(|c| match c {
            '(' | ')' | ' ' | '<' | '>' | '[' | ']' | '*' | '_' | '`' | '\\' | '"' | '\'' => {
                format!("%{:02X}", u32::from(c))
            }
            c if c.is_control() => String::new(),
            other => other.to_string(),
        })
        .collect();
    format!("[{title}]({url})")
}

/// The coloured status word and severity, in `s`'s language.
pub(crate) fn status_line(incident: &Incident, s: &Strings) -> String {
    let severity = s.severity(incident.severity);
    let word = s.status(incident.status);
    match incident.status {
        IncidentStatus::Resolved => format!("<font color={GREEN}>✅ {word} · {severity}</font>"),
        IncidentStatus::Acknowledged => {
            format!("<font color={ORANGE}>🟠 {word} · {severity}</font>")
        }
        IncidentStatus::Triggered => {
            let icon = match incident.severity {
                Severity::Critical => "🔴",
                Severity::Warning => "🟠",
                Severity::Info => "🔵",
            };
            format!("<font color={RED}>{icon} {word} · {severity}</font>")
        }
    }
}

/// The colour of an incident's status (the card header).
pub(crate) fn status_color(incident: &Incident) -> &'static str {
    match incident.status {
        IncidentStatus::Resolved => GREEN,
        IncidentStatus::Acknowledged => ORANGE,
        IncidentStatus::Triggered => RED,
    }
}

/// Where the escalation stands and who is on it: `⏫ Layer 2 of 3 · next
/// escalation 09:42 CST · assignees: …` (none for an incident without a policy).
pub(crate) fn escalation_line(incident: &Incident, timezone: &str, s: &Strings) -> Option<String> {
    let view = crate::domain::escalation_state::view(incident);
    let mut parts = Vec::new();
    if let Some(view) = &view {
        let (n, m) = ((view.layer + 1).to_string(), view.layers.to_string());
        parts.push(fill(s.layer_of, &[("n", &n), ("m", &m)]));
        match (&view.next_at, view.next_step, view.state) {
            (Some(at), Some(crate::domain::escalation_state::StepKind::Escalate), "waiting") => {
                parts.push(fill(
                    s.next_escalation,
                    &[("time", &local_time(at, timezone))],
                ));
            }
            (_, _, "done") if incident.status != IncidentStatus::Resolved => {
                parts.push(s.every_layer_notified.into());
            }
            _ => {}
        }
    }
    if !incident.assignees.is_empty() && incident.status != IncidentStatus::Resolved {
        let names: Vec<String> = incident
            .assignees
            .iter()
            .map(|a| sanitize::inline(a))
            .collect();
        parts.push(fill(s.assignees, &[("names", &names.join(", "))]));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// When the incident started at the source (else when it opened here).
pub(crate) fn started(incident: &Incident) -> &str {
    incident
        .started_at
        .as_deref()
        .unwrap_or(&incident.opened_at)
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) use crate::domain::bounds::cut_bytes as cut;

#[cfg(test)]
pub(crate) mod fixtures;
