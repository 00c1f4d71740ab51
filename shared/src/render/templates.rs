//! User templates of alert messages (ARCHITECTURE.md §11): Jinja syntax through
//! minijinja, sandboxed (a fuel limit, a low recursion limit, no loader, so no
//! includes; output capped at DingTalk's size), with the context of the contract.
//! A template that does not compile is refused when saved; one that fails when
//! sending falls back to the built-in text (the caller records `template_failed`).

use std::io::Write;

use minijinja::value::Serde;
use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::json;

use super::incident_url;
use crate::domain::bounds::cut_bytes;
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::locale::{Locale, MessageTemplates};

/// Instructions one render may run.
pub const FUEL: u64 = 50_000;
/// Nesting a template may reach.
const RECURSION_LIMIT: usize = 20;
/// Most bytes of a rendered title.
pub const TITLE_MAX: usize = 500;
/// Most bytes of a rendered body (the rest is cut): DingTalk takes 15,000 bytes of
/// `msgParam`, with the buttons, title and JSON escaping in it too.
pub const BODY_MAX: usize = 6_000;

/// A template that does not compile: which one, where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("templates.{field}: line {line}: {message}")]
pub struct TemplateInvalid {
    /// `title` or `body`.
    pub field: &'static str,
    /// The line (1-based).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A template that failed while rendering.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("templates.{field}: {message}")]
pub struct TemplateFailed {
    /// `title` or `body`.
    pub field: &'static str,
    /// What went wrong.
    pub message: String,
}

/// What the user's templates made of an incident (none where there is no template).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomText {
    /// The rendered title.
    pub title: Option<String>,
    /// The rendered body (markdown).
    pub body: Option<String>,
    /// Bytes the body had before it was cut to [`BODY_MAX`] (0: not cut).
    pub cut_from: usize,
}

/// What a render sees besides the incident.
#[derive(Debug, Clone, Copy)]
pub struct TemplateScope<'a> {
    /// The integration's name.
    pub integration: &'a str,
    /// Its time zone.
    pub timezone: &'a str,
    /// Its language.
    pub locale: Locale,
    /// Base of the H5 app links.
    pub base_url: &'a str,
    /// Now (Unix ms), for durations.
    pub now_ms: i64,
}

fn environment(scope: TemplateScope<'_>) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(RECURSION_LIMIT);
    let tz = scope.timezone.to_string();
    env.add_filter("localtime", move |value: String| local_time(&value, &tz));
    let (now_ms, locale) = (scope.now_ms, scope.locale);
    env.add_filter("duration", move |value: String| {
        since(&value, now_ms, locale)
    });
    env
}

/// `2026-11-28 09:00` in `timezone` (the text itself when it is not RFC 3339).
fn local_time(value: &str, timezone: &str) -> String {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| value.to_string())
}

/// How long since `value` (RFC 3339): `1h 5m` / `1小时5分钟`.
fn since(value: &str, now_ms: i64, locale: Locale) -> String {
    let Ok(at) = chrono::DateTime::parse_from_rfc3339(value) else {
        return value.to_string();
    };
    let minutes = ((now_ms - at.timestamp_millis()) / 60_000).max(0);
    let (days, hours, mins) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    let units = match locale {
        Locale::ZhCn => ["天", "小时", "分钟"],
        Locale::EnUs => ["d ", "h ", "m"],
    };
    let mut out = String::new();
    for (n, unit) in [(days, units[0]), (hours, units[1]), (mins, units[2])] {
        if n > 0 || (unit == units[2] && out.is_empty()) {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out.trim().to_string()
}

fn line_of(err: &Error) -> usize {
    err.line().unwrap_or(1)
}

fn describe(err: &Error) -> String {
    let mut message = err.kind().to_string();
    if let Some(detail) = err.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    message
}

/// Checks that both templates compile (nothing is rendered).
pub fn check(templates: &MessageTemplates) -> Result<(), TemplateInvalid> {
    let env = environment(TemplateScope {
        integration: "",
        timezone: "UTC",
        locale: Locale::EnUs,
        base_url: "",
        now_ms: 0,
    });
    for (field, source) in [("title", &templates.title), ("body", &templates.body)] {
        let Some(source) = source else { continue };
        if source.len() > 20_000 {
            return Err(TemplateInvalid {
                field,
                line: 1,
                message: "a template is at most 20,000 bytes".into(),
            });
        }
        let template = env.template_from_str(source).map_err(|e| TemplateInvalid {
            field,
            line: line_of(&e),
            message: describe(&e),
        })?;
        // Names are looked up when rendering: render a sample to catch a misspelt
        // filter, test or function now rather than at every alert.
        let sample = Value::from(Serde(context(
            &sample_incident(),
            TemplateScope {
                integration: "sample",
                timezone: "UTC",
                locale: Locale::EnUs,
                base_url: "https://example.invalid",
                now_ms: 0,
            },
        )));
        if let Err(e) = template.render(sample)
            && matches!(
                e.kind(),
                ErrorKind::UnknownFilter | ErrorKind::UnknownTest | ErrorKind::UnknownFunction
            )
        {
            return Err(TemplateInvalid {
                field,
                line: line_of(&e),
                message: describe(&e),
            });
        }
    }
    Ok(())
}

/// A full incident to render templates against when they are saved.
fn sample_incident() -> Incident {
    let event = crate::domain::incident::AlertEvent {
        version: 1,
        integration_id: "sample".into(),
        alert: crate::domain::incident::Alert {
            key: "sample".into(),
            status: crate::domain::incident::AlertStatus::Firing,
            severity: crate::domain::incident::Severity::Critical,
            title: "sample".into(),
            description: "sample".into(),
            labels: std::collections::BTreeMap::from([("service".into(), "sample".into())]),
            links: Vec::new(),
            source: Some("sample".into()),
            occurred_at: None,
        },
        targets: Default::default(),
        truncated: Vec::new(),
        mention_mobiles: Vec::new(),
    };
    crate::domain::incident_state::new_incident(
        "sample".into(),
        &event,
        0,
        "1970-01-01T00:00:00Z",
        None,
    )
}

/// The template context of an incident (ARCHITECTURE.md §11). Alert text is data,
/// not markup (§12): titles, labels, sources and link titles are made inert as in
/// the built-in text, descriptions keep only the markdown subset, and links keep
/// only http(s) URLs, so an alert cannot bring links or buttons of its own.
pub fn context(incident: &Incident, scope: TemplateScope<'_>) -> serde_json::Value {
    use super::sanitize::{description, inline};
    let status = if incident.status == IncidentStatus::Resolved {
        "resolved"
    } else {
        "firing"
    };
    let labels: std::collections::BTreeMap<String, String> = incident
        .labels
        .iter()
        .map(|(k, v)| (inline(k), inline(v)))
        .collect();
    let links: Vec<serde_json::Value> = incident
        .links
        .iter()
        .filter(|l| l.url.starts_with("https://") || l.url.starts_with("http://"))
        .map(|l| json!({"title": inline(&l.title), "url": l.url}))
        .collect();
    json!({
        "alert": {
            "key": inline(&incident.key), "status": status, "severity": incident.severity,
            "title": inline(&incident.title), "description": description(&incident.description),
            "labels": labels, "links": links, "source": incident.source.as_deref().map(inline),
            "occurred_at": super::started(incident),
        },
        "incident": {
            "id": incident.id, "status": incident.status, "severity": incident.severity,
            "started_at": super::started(incident), "url": incident_url(scope.base_url, incident, None),
            "acked_by": incident.acked_by.as_deref().map(inline),
            "assignees": incident.assignees.iter().map(|a| inline(a)).collect::<Vec<_>>(),
        },
        "labels": labels,
        "integration": {"name": inline(scope.integration), "timezone": scope.timezone, "locale": scope.locale.tag()},
    })
}

/// A writer that keeps the first `max` bytes and counts the rest.
struct Capped {
    kept: Vec<u8>,
    max: usize,
    total: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.max.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&buf[..buf.len().min(room)]);
        self.total += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn render_one(
    env: &Environment<'_>,
    source: &str,
    ctx: &Value,
    max: usize,
) -> Result<(String, usize), Error> {
    let template = env.template_from_str(source)?;
    let mut out = Capped {
        kept: Vec::new(),
        max: max + 4,
        total: 0,
    };
    template.render_captured_to(ctx.clone(), &mut out)?;
    let text = String::from_utf8_lossy(&out.kept).into_owned();
    Ok((cut_bytes(text.trim(), max).to_string(), out.total))
}

fn empty(field: &'static str) -> TemplateFailed {
    TemplateFailed {
        field,
        message: "the template rendered nothing".into(),
    }
}

/// Renders the integration's templates for `incident`.
pub fn render(
    templates: &MessageTemplates,
    incident: &Incident,
    scope: TemplateScope<'_>,
) -> Result<CustomText, TemplateFailed> {
    let mut text = CustomText::default();
    if templates.is_empty() {
        return Ok(text);
    }
    let env = environment(scope);
    let ctx = Value::from(Serde(context(incident, scope)));
    let fail = |field: &'static str| {
        move |e: Error| TemplateFailed {
            field,
            message: match e.kind() {
                ErrorKind::OutOfFuel => "the template ran too long (fuel exhausted)".into(),
                _ => describe(&e),
            },
        }
    };
    if let Some(source) = &templates.title {
        let (title, _) = render_one(&env, source, &ctx, TITLE_MAX).map_err(fail("title"))?;
        if title.trim().is_empty() {
            return Err(empty("title"));
        }
        text.title = Some(title.replace('\n', " "));
    }
    if let Some(source) = &templates.body {
        let (body, total) = render_one(&env, source, &ctx, BODY_MAX).map_err(fail("body"))?;
        if body.trim().is_empty() {
            return Err(empty("body"));
        }
        if total > BODY_MAX {
            text.cut_from = total;
        }
        text.body = Some(body);
    }
    Ok(text)
}

#[cfg(test)]
#[path = "templates_tests.rs"]
mod tests;
