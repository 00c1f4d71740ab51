//! Robot messages of on-call schedules (ARCHITECTURE.md §8): the 1:1 notice before
//! a shift, "now on call" in the schedule's group, and the daily pre-flight report.

use serde_json::json;

use super::sanitize::inline;
use super::{ORANGE, markdown_link};
use crate::dingtalk::RobotMessage;
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
}

/// The 1:1 notice to the incoming person before their shift.
pub fn handoff_notice(text: &HandoffText<'_>) -> RobotMessage {
    let schedule = inline(text.schedule);
    markdown(
        format!("On call soon: {schedule}"),
        format!(
            "### <font color={ORANGE}>🕘 You are on call soon</font>\n\n**{schedule}**: your shift starts {} and runs until {}.\n\nPages of escalation layers that use this schedule come to you then. {}",
            local(text.tz, text.start_ms),
            local(text.tz, text.until_ms),
            markdown_link("See your next shifts", text.app_url),
        ),
    )
}

/// "Now on call" in the schedule's group, at the handoff.
pub fn now_on_call(text: &HandoffText<'_>) -> RobotMessage {
    let schedule = inline(text.schedule);
    let member = inline(text.member);
    markdown(
        format!("Now on call: {member}"),
        format!(
            "### 📟 Now on call: {member}\n\n**{schedule}**, from {} until {}.",
            local(text.tz, text.start_ms),
            local(text.tz, text.until_ms),
        ),
    )
}

/// The daily pre-flight report: what would make a page go nowhere.
pub fn preflight_report(integration_name: &str, days: u32, problems: &[Problem]) -> RobotMessage {
    let mut text = format!(
        "### <font color={ORANGE}>🛫 Pre-flight: {} problem{} in the next {days} days</font>\n\n**{}**: these would make a page go nowhere.\n",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        inline(integration_name),
    );
    for problem in problems.iter().take(MAX_LISTED) {
        text.push_str(&format!(
            "\n- {}\n  → {}",
            inline(&problem.message),
            inline(&problem.fix)
        ));
    }
    if problems.len() > MAX_LISTED {
        text.push_str(&format!(
            "\n\n…and {} more: GET /api/integrations/{{id}}/preflight",
            problems.len() - MAX_LISTED
        ));
    }
    markdown(format!("Pre-flight: {} problems", problems.len()), text)
}
