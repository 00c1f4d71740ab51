//! Robot messages of on-call schedules (ARCHITECTURE.md §8): the 1:1 notice before
//! a shift, "now on call" in the schedule's group, and the daily pre-flight report.

use serde_json::json;

use super::markdown_link;
use super::preflight_lines::problem_lines;
use super::sanitize::inline;
use super::strings::{Strings, fill};
use crate::dingtalk::RobotMessage;
use crate::domain::locale::Locale;
use crate::domain::preflight::Problem;

/// Most problems a pre-flight message lists (the rest are counted).
const MAX_LISTED: usize = 12;

fn markdown(title: String, text: String) -> RobotMessage {
    RobotMessage {
        msg_key: "sampleMarkdown".into(),
        msg_param: json!({"title": title, "text": text}),
    }
}

/// A local time such as `2026-12-01 09:00 CST`.
fn local(tz: chrono_tz::Tz, ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// What a handoff message says.
#[derive(Debug, Clone)]
pub struct HandoffText<'a> {
    /// The schedule's name.
    pub schedule: &'a str,
    /// The incoming person's name.
    pub member: &'a str,
    /// Their shift (Unix ms).
    pub start_ms: i64,
    /// Until when (Unix ms).
    pub until_ms: i64,
    /// The schedule's zone.
    pub tz: chrono_tz::Tz,
    /// The H5 app's "my shifts" page.
    pub app_url: &'a str,
    /// The language.
    pub strings: &'static Strings,
}

impl HandoffText<'_> {
    fn values(&self) -> Vec<(&'static str, String)> {
        vec![
            ("schedule", inline(self.schedule)),
            ("member", inline(self.member)),
            ("start", local(self.tz, self.start_ms)),
            ("until", local(self.tz, self.until_ms)),
            ("link", markdown_link(self.strings.my_shifts, self.app_url)),
        ]
    }
}

fn filled(text: &str, values: &[(&'static str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    fill(text, &pairs)
}

/// The 1:1 notice to the incoming person before their shift.
pub fn handoff_notice(text: &HandoffText<'_>) -> RobotMessage {
    let values = text.values();
    markdown(
        filled(text.strings.handoff_title, &values),
        filled(text.strings.handoff_text, &values),
    )
}

/// "Now on call" in the schedule's group, at the handoff.
pub fn now_on_call(text: &HandoffText<'_>) -> RobotMessage {
    let values = text.values();
    markdown(
        filled(text.strings.now_on_call_title, &values),
        filled(text.strings.now_on_call_text, &values),
    )
}

/// The daily pre-flight report: what would make a page go nowhere, in `locale`.
pub fn preflight_report(
    integration_name: &str,
    days: u32,
    problems: &[Problem],
    locale: Locale,
) -> RobotMessage {
    let s = Strings::of(locale);
    let values = vec![
        ("count", problems.len().to_string()),
        ("days", days.to_string()),
        ("integration", inline(integration_name)),
    ];
    let mut text = filled(s.preflight_text, &values);
    for problem in problems.iter().take(MAX_LISTED) {
        let (what, fix) = problem_lines(problem, locale);
        text.push_str(&format!("\n- {}\n  → {}", inline(&what), inline(&fix)));
    }
    if problems.len() > MAX_LISTED {
        let more = (problems.len() - MAX_LISTED).to_string();
        text.push_str(&fill(s.preflight_more, &[("n", &more)]));
    }
    markdown(filled(s.preflight_title, &values), text)
}
