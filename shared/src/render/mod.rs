//! Rendering, one renderer per destination (ARCHITECTURE.md §3): robot markdown
//! messages ([`robot_markdown`]), interactive-card parameters and bodies ([`card`]),
//! and the upstream webhook payload ([`webhook_payload`]). This module holds what
//! they share: links into the H5 app, local times, the status line.

pub mod card;
pub mod oncall_messages;
pub mod robot_markdown;
pub mod sanitize;
pub mod webhook_payload;

use crate::domain::incident::{Incident, IncidentStatus, Severity};

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

/// The coloured status word and severity.
pub(crate) fn status_line(incident: &Incident) -> String {
    let severity = incident.severity.label();
    match incident.status {
        IncidentStatus::Resolved => format!("<font color={GREEN}>✅ RESOLVED · {severity}</font>"),
        IncidentStatus::Acknowledged => {
            format!("<font color={ORANGE}>🟠 ACKNOWLEDGED · {severity}</font>")
        }
        IncidentStatus::Triggered => {
            let icon = match incident.severity {
                Severity::Critical => "🔴",
                Severity::Warning => "🟠",
                Severity::Info => "🔵",
            };
            format!("<font color={RED}>{icon} FIRING · {severity}</font>")
        }
    }
}

/// Where the escalation stands and who is on it: `⏫ Layer 2 of 3 · next
/// escalation 09:42 CST · assignees: …` (none for an incident without a policy).
pub(crate) fn escalation_line(incident: &Incident, timezone: &str) -> Option<String> {
    let view = crate::domain::escalation_state::view(incident);
    let mut parts = Vec::new();
    if let Some(view) = &view {
        parts.push(format!("⏫ Layer {} of {}", view.layer + 1, view.layers));
        match (&view.next_at, view.next_step, view.state) {
            (Some(at), Some(crate::domain::escalation_state::StepKind::Escalate), "waiting") => {
                parts.push(format!("next escalation {}", local_time(at, timezone)));
            }
            (_, _, "done") if incident.status != IncidentStatus::Resolved => {
                parts.push("every layer notified".into());
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
        parts.push(format!("assignees: {}", names.join(", ")));
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
