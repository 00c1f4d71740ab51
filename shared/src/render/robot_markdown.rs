//! Robot messages: markdown action cards with link buttons into the H5 app
//! (`sampleActionCard*`, `sampleMarkdown`), cut to fit DingTalk's size limit.

use serde_json::{Value, json};

use super::strings::{Strings, fill};
use super::{
    GREEN, RenderContext, cut, escalation_line, in_dingtalk, incident_url, local_time,
    markdown_link, sanitize, started, status_line,
};
use crate::dingtalk::RobotMessage;
use crate::domain::incident::Incident;

/// DingTalk's limit on `msgParam` (bytes), with room to spare.
pub const MSG_PARAM_BUDGET: usize = 14_000;

/// Bytes of labels, and of links, a robot message shows at most (the rest is in the app).
const LIST_BUDGET: usize = 3_000;

/// Items joined by `separator` while they fit in [`LIST_BUDGET`]; then how many more.
fn within_budget(items: impl Iterator<Item = String>, separator: &str, s: &Strings) -> String {
    let mut shown = String::new();
    let mut more = 0;
    for item in items {
        if more == 0 && shown.len() + item.len() + separator.len() <= LIST_BUDGET {
            if !shown.is_empty() {
                shown.push_str(separator);
            }
            shown.push_str(&item);
        } else {
            more += 1;
        }
    }
    if more > 0 {
        shown.push_str(separator);
        shown.push_str(&fill(s.more_in_app, &[("n", &more.to_string())]));
    }
    shown
}

/// The labels line and the links list, each within its budget.
fn labels_and_links(incident: &Incident, s: &Strings) -> String {
    let mut text = String::new();
    if !incident.labels.is_empty() {
        let labels = incident
            .labels
            .iter()
            .map(|(k, v)| format!("{}: {}", sanitize::inline(k), sanitize::inline(cut(v, 200))));
        text.push_str(&format!("> {}\n\n", within_budget(labels, " · ", s)));
    }
    if !incident.links.is_empty() {
        let links = incident
            .links
            .iter()
            .map(|link| format!("- {}", markdown_link(&link.title, &link.url)));
        text.push_str(&within_budget(links, "\n", s));
        text.push('\n');
    }
    text
}

/// The markdown body; `description_max` bytes of the description at most.
fn body(incident: &Incident, ctx: &RenderContext<'_>, description_max: usize) -> String {
    let s = ctx.strings();
    if let Some(custom) = ctx.custom.as_ref().and_then(|c| c.body.as_ref()) {
        return with_mentions(custom.clone(), ctx);
    }
    let mut text = format!(
        "### {}\n\n**{}**\n\n",
        status_line(incident, s),
        sanitize::inline(&incident.title)
    );
    if !incident.description.is_empty() {
        let clean = sanitize::description(&incident.description);
        let shown = cut(&clean, description_max);
        text.push_str(shown);
        if shown.len() < clean.len() {
            text.push_str(&format!(
                "…\n\n[{}]({})",
                s.full_description,
                in_dingtalk(&incident_url(ctx.base_url, incident, None))
            ));
        }
        text.push_str("\n\n");
    }
    text.push_str(&labels_and_links(incident, s));
    let started = local_time(started(incident), ctx.timezone);
    text.push('\n');
    text.push_str(&fill(s.started, &[("time", &started)]));
    if let Some(resolved) = &incident.resolved_at {
        let time = local_time(resolved, ctx.timezone);
        text.push_str(&fill(s.resolved_at, &[("time", &time)]));
    }
    if let Some(by) = &incident.acked_by {
        text.push_str(&fill(s.acked_by, &[("name", by)]));
    }
    text.push_str(&fill(s.key, &[("key", &sanitize::inline(&incident.key))]));
    if let Some(line) = escalation_line(incident, ctx.timezone, s) {
        text.push_str(&format!("\n\n{line}"));
    }
    with_mentions(text, ctx)
}

/// The text with the people to @mention at its end (their names ring with `atUserIds`).
fn with_mentions(mut text: String, ctx: &RenderContext<'_>) -> String {
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
    let s = ctx.strings();
    let title = ctx
        .custom
        .as_ref()
        .and_then(|c| c.title.clone())
        .unwrap_or_else(|| format!("[{}] {}", s.severity(incident.severity), incident.title));
    let build = |description_max: usize| {
        let buttons = [
            (s.ack, Some("ack")),
            (s.resolve, Some("resolve")),
            (s.snooze, Some("snooze")),
            (s.details, None),
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

/// A DING's plain text: what is firing, that nobody took it, and where to act.
pub fn ding_text(incident: &Incident, base_url: &str, s: &Strings) -> String {
    let layer = crate::domain::escalation_state::view(incident)
        .map(|v| {
            let (n, m) = ((v.layer + 1).to_string(), v.layers.to_string());
            fill(s.ding_layer, &[("n", &n), ("m", &m)])
        })
        .unwrap_or_default();
    fill(
        s.ding,
        &[
            ("severity", s.severity(incident.severity)),
            ("title", cut(&sanitize::inline(&incident.title), 300)),
            ("layer", &layer),
            ("url", &incident_url(base_url, incident, Some("ack"))),
        ],
    )
}

/// The short follow-up sent once per robot-message target when an incident resolves.
pub fn resolved_message(incident: &Incident, ctx: &RenderContext<'_>) -> RobotMessage {
    let s = ctx.strings();
    let by = incident.resolved_by.as_deref().unwrap_or(s.by_source);
    let when = incident
        .resolved_at
        .as_deref()
        .map(|t| local_time(t, ctx.timezone))
        .unwrap_or_default();
    let line = fill(
        s.resolved_line,
        &[
            ("time", &when),
            ("by", &sanitize::inline(by)),
            ("started", &local_time(started(incident), ctx.timezone)),
            ("key", &sanitize::inline(&incident.key)),
        ],
    );
    let text = format!(
        "### <font color={GREEN}>✅ {}</font>\n\n**{}**\n\n{line}\n\n[{}]({})",
        s.resolved,
        sanitize::inline(&incident.title),
        s.details
            .trim_start_matches(|c: char| !c.is_alphanumeric() && !c.is_whitespace())
            .trim(),
        in_dingtalk(&incident_url(ctx.base_url, incident, None)),
    );
    let title = format!("{} {}", s.resolved_title, incident.title);
    RobotMessage {
        msg_key: "sampleMarkdown".into(),
        msg_param: json!({"title": cut(&title, 500), "text": text}),
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

/// The 1:1 prompt to associate a DingTalk account, with a button into the app.
pub fn link_prompt(app_url: &str, s: &Strings) -> RobotMessage {
    RobotMessage {
        msg_key: "sampleActionCard".into(),
        msg_param: json!({
            "title": s.link_title,
            "text": s.link_text,
            "singleTitle": s.link_button,
            "singleURL": in_dingtalk(app_url),
        }),
    }
}

/// What a usage notice says.
#[derive(Debug, Clone, Copy)]
pub struct UsageNotice<'a> {
    /// The threshold crossed, in percent.
    pub threshold: u64,
    /// Calls used this month.
    pub used: u64,
    /// The monthly quota.
    pub quota: u64,
    /// The month (`2026-11`).
    pub month: &'a str,
    /// From which percentage only critical alerts are sent.
    pub critical_only_from: u64,
    /// The integration, for the usage API path.
    pub integration_id: &'a str,
}

/// The one-time notice that the month's DingTalk calls crossed a threshold.
pub fn usage_notice(notice: &UsageNotice<'_>, s: &Strings) -> RobotMessage {
    let values = [
        ("threshold", notice.threshold.to_string()),
        ("used", notice.used.to_string()),
        ("quota", notice.quota.to_string()),
        ("month", notice.month.to_string()),
        ("critical_from", notice.critical_only_from.to_string()),
        ("integration", notice.integration_id.to_string()),
    ];
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    RobotMessage {
        msg_key: "sampleMarkdown".into(),
        msg_param: json!({"title": fill(s.usage_title, &values), "text": fill(s.usage_text, &values)}),
    }
}

/// A storm digest's title and markdown text.
#[derive(Debug, Clone)]
pub struct StormDigest<'a> {
    /// The group's name.
    pub group: &'a str,
    /// Incidents folded so far.
    pub folded: u64,
    /// The newest titles, newest first.
    pub newest: &'a [String],
    /// The storm threshold.
    pub threshold: u32,
    /// The window in seconds.
    pub window_secs: u32,
    /// Link to the group's incidents in the app.
    pub link: &'a str,
    /// The language.
    pub strings: &'static Strings,
}

impl StormDigest<'_> {
    /// The digest's title.
    pub fn title(&self) -> String {
        let group = sanitize::inline(self.group);
        let folded = self.folded.to_string();
        fill(
            self.strings.digest_title,
            &[("group", &group), ("folded", &folded)],
        )
    }

    /// The digest's markdown.
    pub fn text(&self) -> String {
        let s = self.strings;
        let mut list: String = self
            .newest
            .iter()
            .map(|t| format!("- {}\n", sanitize::inline(t)))
            .collect();
        let rest = self.folded.saturating_sub(self.newest.len() as u64);
        if rest > 0 {
            list.push_str(&fill(s.digest_more, &[("n", &rest.to_string())]));
        }
        let (threshold, window, folded) = (
            self.threshold.to_string(),
            self.window_secs.to_string(),
            self.folded.to_string(),
        );
        let head = fill(
            s.digest_text,
            &[
                ("threshold", &threshold),
                ("window", &window),
                ("folded", &folded),
            ],
        );
        format!("{head}{list}\n[{}]({})", s.digest_link, self.link)
    }

    /// The digest as a robot message.
    pub fn message(&self) -> RobotMessage {
        RobotMessage {
            msg_key: "sampleMarkdown".into(),
            msg_param: json!({"title": self.title(), "text": self.text()}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::incident::IncidentStatus;
    use crate::render::RED;
    use crate::render::fixtures::{ctx, incident};

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
    fn follow_ups_digests_and_link_urls_are_inert_too() {
        let mut hostile = incident("x");
        hostile.title = "[✅ Details](dingtalk://dingtalkclient/page/link?url=https://evil)".into();
        hostile.key = "k`](x".into();
        hostile.status = IncidentStatus::Resolved;
        hostile.links = vec![crate::domain::incident::Link {
            title: "r".into(),
            url: "https://x/\n\n[Ack][1]\n\n[1]:\ndingtalk://evil".into(),
        }];
        let follow_up = resolved_message(&hostile, &ctx(&[]));
        let text = follow_up.msg_param["text"].as_str().expect("text");
        assert!(
            !text.contains("[✅ Details](")
                && !text.contains("dingtalk://dingtalkclient/page/link?url=https://evil"),
            "{text}"
        );
        let alert = alert_message(&hostile, &ctx(&[]));
        let text = alert.msg_param["text"].as_str().expect("text");
        assert!(
            !text.contains("\n[1]:"),
            "no definition escapes the URL: {text}"
        );
        assert!(
            text.contains("- [r](https://x/%5BAck%5D%5B1%5D"),
            "one https link: {text}"
        );
        let titles = vec![hostile.title.clone()];
        let digest = StormDigest {
            group: "[g](dingtalk://x)",
            folded: 1,
            newest: &titles,
            threshold: 1,
            window_secs: 60,
            link: "https://l",
            strings: &crate::render::strings::EN_US,
        };
        assert!(
            !digest
                .text()
                .contains("dingtalk://dingtalkclient/page/link?url=https://evil")
        );
        assert!(!digest.title().contains("[g]("));
    }

    #[test]
    fn the_largest_bounded_alert_fits_dingtalks_limit() {
        let mut big = incident(&"d".repeat(16 * 1024));
        big.title = "t".repeat(512);
        big.labels = (0..64)
            .map(|n| (format!("label{n:03}"), "v".repeat(1000)))
            .collect();
        big.links = (0..20)
            .map(|n| crate::domain::incident::Link {
                title: "l".repeat(256),
                url: format!("https://x.example/{}/{n}", "p".repeat(1900)),
            })
            .collect();
        let message = alert_message(&big, &ctx(&[]));
        assert!(
            message.param_string().len() <= MSG_PARAM_BUDGET,
            "{}",
            message.param_string().len()
        );
        assert!(
            message.msg_param["text"]
                .as_str()
                .expect("text")
                .contains("more in the app")
        );
        let resolved = resolved_message(&big, &ctx(&[]));
        assert!(resolved.param_string().len() <= MSG_PARAM_BUDGET);
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
}
