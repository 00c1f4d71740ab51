//! Renders incidents for DingTalk: robot messages (markdown action cards with link
//! buttons into the H5 app) and interactive-card parameters.

use serde_json::{Map, Value, json};

use crate::dingtalk::RobotMessage;
use crate::incident::{Incident, IncidentStatus, Severity};

/// DingTalk's limit on `msgParam` (bytes), with room to spare.
pub const MSG_PARAM_BUDGET: usize = 14_000;

/// Firing red, resolved green, acknowledged orange.
const RED: &str = "#D83931";
const GREEN: &str = "#00A854";
const ORANGE: &str = "#F58B00";

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

fn status_line(incident: &Incident) -> String {
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

/// When the incident started at the source (else when it opened here).
fn started(incident: &Incident) -> &str {
    incident
        .started_at
        .as_deref()
        .unwrap_or(&incident.opened_at)
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The markdown body; `description_max` bytes of the description at most.
fn body(incident: &Incident, ctx: &RenderContext<'_>, description_max: usize) -> String {
    let mut text = format!(
        "### {}\n\n**{}**\n\n",
        status_line(incident),
        incident.title
    );
    if !incident.description.is_empty() {
        let shown = cut(&incident.description, description_max);
        text.push_str(shown);
        if shown.len() < incident.description.len() {
            text.push_str(&format!(
                "…\n\n[Full description]({})",
                in_dingtalk(&incident_url(ctx.base_url, incident, None))
            ));
        }
        text.push_str("\n\n");
    }
    if !incident.labels.is_empty() {
        let labels: Vec<String> = incident
            .labels
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        text.push_str(&format!("> {}\n\n", labels.join(" · ")));
    }
    for link in &incident.links {
        text.push_str(&format!("- [{}]({})\n", link.title, link.url));
    }
    let started = local_time(started(incident), ctx.timezone);
    text.push_str(&format!("\nStarted {started}"));
    if let Some(resolved) = &incident.resolved_at {
        text.push_str(&format!(
            " · resolved {}",
            local_time(resolved, ctx.timezone)
        ));
    }
    if let Some(by) = &incident.acked_by {
        text.push_str(&format!(" · acknowledged by {by}"));
    }
    text.push_str(&format!(" · key `{}`", incident.key));
    if !ctx.mentions.is_empty() {
        let names: Vec<String> = ctx
            .mentions
            .iter()
            .map(|(_, name)| format!("@{name}"))
            .collect();
        text.push_str(&format!("\n\n{}", names.join(" ")));
    }
    text
}

/// The alert message: a markdown action card with Acknowledge / Resolve / Snooze /
/// Details buttons that open the incident in the H5 app inside DingTalk.
pub fn alert_message(incident: &Incident, ctx: &RenderContext<'_>) -> RobotMessage {
    let title = format!("[{}] {}", incident.severity.label(), incident.title);
    let build = |description_max: usize| {
        let buttons = [
            ("✋ Acknowledge", Some("ack")),
            ("✅ Resolve", Some("resolve")),
            ("💤 Snooze", Some("snooze")),
            ("📄 Details", None),
        ];
        let mut param =
            json!({"title": cut(&title, 500), "text": body(incident, ctx, description_max)});
        for (i, (label, action)) in buttons.iter().enumerate() {
            param[format!("actionTitle{}", i + 1)] = Value::from(*label);
            param[format!("actionURL{}", i + 1)] =
                Value::from(in_dingtalk(&incident_url(ctx.base_url, incident, *action)));
        }
        param
    };
    RobotMessage {
        msg_key: "sampleActionCard4".into(),
        msg_param: fit(build),
    }
}

/// The short follow-up sent once per robot-message target when an incident resolves.
pub fn resolved_message(incident: &Incident, ctx: &RenderContext<'_>) -> RobotMessage {
    let by = incident.resolved_by.as_deref().unwrap_or("source");
    let when = incident
        .resolved_at
        .as_deref()
        .map(|t| local_time(t, ctx.timezone))
        .unwrap_or_default();
    let text = format!(
        "### <font color={GREEN}>✅ RESOLVED</font>\n\n**{}**\n\nResolved {when} by {by} · started {} · key `{}`\n\n[Details]({})",
        incident.title,
        local_time(started(incident), ctx.timezone),
        incident.key,
        in_dingtalk(&incident_url(ctx.base_url, incident, None)),
    );
    RobotMessage {
        msg_key: "sampleMarkdown".into(),
        msg_param: json!({"title": cut(&format!("[Resolved] {}", incident.title), 500), "text": text}),
    }
}

/// Builds a message with the longest description that keeps `msgParam` in budget.
fn fit(build: impl Fn(usize) -> Value) -> Value {
    let full = build(usize::MAX);
    let size = full.to_string().len();
    if size <= MSG_PARAM_BUDGET {
        return full;
    }
    let without = build(0).to_string().len();
    // JSON escaping can grow text up to 6×; shrink until it fits.
    let mut allowed = MSG_PARAM_BUDGET.saturating_sub(without + 200);
    loop {
        let candidate = build(allowed);
        if candidate.to_string().len() <= MSG_PARAM_BUDGET || allowed == 0 {
            return candidate;
        }
        allowed /= 2;
    }
}

/// The interactive card's variables (`cardParamMap`: every value a string of at
/// most 1 KB; see README "Card template").
pub fn card_params(incident: &Incident, ctx: &RenderContext<'_>) -> Map<String, Value> {
    let status = match incident.status {
        IncidentStatus::Triggered => "firing",
        IncidentStatus::Acknowledged => "acknowledged",
        IncidentStatus::Resolved => "resolved",
    };
    let labels: Vec<String> = incident
        .labels
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    let links: Vec<String> = incident
        .links
        .iter()
        .map(|l| format!("[{}]({})", l.title, l.url))
        .collect();
    let open = incident.status != IncidentStatus::Resolved;
    let mut map = Map::new();
    let mut put = |k: &str, v: String| {
        map.insert(k.to_string(), Value::from(cut(&v, 1000).to_string()));
    };
    put("incident", incident.id.clone());
    put("title", incident.title.clone());
    put("severity", incident.severity.label().to_string());
    put("status", status.to_string());
    put("status_text", status_line(incident));
    put("description", incident.description.clone());
    put("labels", labels.join(" · "));
    put("links", links.join("  "));
    put("acked_by", incident.acked_by.clone().unwrap_or_default());
    put(
        "resolved_by",
        incident.resolved_by.clone().unwrap_or_default(),
    );
    put(
        "snoozed_until",
        incident
            .snoozed_until
            .as_deref()
            .map(|t| local_time(t, ctx.timezone))
            .unwrap_or_default(),
    );
    put("started_at", local_time(started(incident), ctx.timezone));
    put("updated_at", local_time(&incident.updated_at, ctx.timezone));
    put(
        "show_ack",
        (incident.status == IncidentStatus::Triggered).to_string(),
    );
    put("show_resolve", open.to_string());
    put("show_snooze", open.to_string());
    put(
        "details_url",
        in_dingtalk(&incident_url(ctx.base_url, incident, None)),
    );
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integration::Targets;
    use std::collections::BTreeMap;

    fn incident(description: &str) -> Incident {
        Incident {
            id: "inc1".into(),
            integration_id: "int1".into(),
            key: "k".into(),
            status: IncidentStatus::Triggered,
            severity: Severity::Critical,
            title: "p99 latency above 2s".into(),
            description: description.into(),
            labels: BTreeMap::from([("service".into(), "payments".into())]),
            links: vec![],
            source: None,
            targets: Targets::default(),
            opened_at: "2026-11-24T01:02:03Z".into(),
            started_at: None,
            updated_at: "2026-11-24T01:02:03Z".into(),
            resolved_at: None,
            acked_by: None,
            resolved_by: None,
            snoozed_until: None,
            last_event_ms: 0,
            event_count: 1,
            version: 1,
        }
    }

    fn ctx<'a>(mentions: &'a [(String, String)]) -> RenderContext<'a> {
        RenderContext {
            base_url: "https://x.example",
            timezone: "Asia/Shanghai",
            mentions,
        }
    }

    #[test]
    fn firing_and_resolved_are_unmistakable() {
        let mentions = vec![("u1".to_string(), "Alice".to_string())];
        let firing = alert_message(&incident("db down"), &ctx(&mentions));
        let text = firing.msg_param["text"].as_str().expect("text");
        assert!(text.contains("FIRING") && text.contains(RED));
        assert!(text.contains("2026-11-24 09:02 CST"), "{text}");
        assert!(text.contains("@Alice"));
        assert!(
            firing.msg_param["actionURL1"]
                .as_str()
                .expect("url")
                .starts_with("dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fx.example")
        );
        let mut done = incident("db down");
        done.status = IncidentStatus::Resolved;
        done.resolved_at = Some("2026-11-24T02:00:00Z".into());
        let resolved = resolved_message(&done, &ctx(&[]));
        let text = resolved.msg_param["text"].as_str().expect("text");
        assert!(text.contains("RESOLVED") && text.contains(GREEN));
    }

    #[test]
    fn huge_descriptions_are_cut_to_fit_with_a_link() {
        let long = "数据库连接池耗尽 \"quoted\" \\ ".repeat(3_000);
        let message = alert_message(&incident(&long), &ctx(&[]));
        assert!(message.param_string().len() <= MSG_PARAM_BUDGET);
        assert!(
            message.msg_param["text"]
                .as_str()
                .expect("text")
                .contains("Full description")
        );
    }

    #[test]
    fn card_params_are_short_strings() {
        let params = card_params(&incident(&"x".repeat(5000)), &ctx(&[]));
        assert!(
            params
                .values()
                .all(|v| v.as_str().is_some_and(|s| s.len() <= 1000))
        );
        assert_eq!(params["status"], "firing");
        assert_eq!(params["show_ack"], "true");
    }
}
