//! The people on the sandbox page: each person's 1:1 robot messages (with a
//! "mark as read" button that sets what `readStatus` reports), cards and DINGs.

use std::fmt::Write as _;

use axum::extract::{Form, State};
use axum::response::Redirect;
use serde::Deserialize;
use serde_json::{Value, json};

use super::page::{escape, render_message, url_encode};
use super::page_render::render_cards_in;
use super::{CardInstance, DingRecord, MessageTarget, RobotMessage, Sandbox, SandboxUser};

/// What the people sections are drawn from (read once per page).
pub(super) struct People<'a> {
    pub(super) sandbox: &'a Sandbox,
    pub(super) messages: &'a [RobotMessage],
    pub(super) cards: &'a [CardInstance],
    pub(super) users: &'a [SandboxUser],
    pub(super) dings: &'a [DingRecord],
    /// The H5 app path of the subscribed integration, if any.
    pub(super) app_path: Option<String>,
}

impl People<'_> {
    /// One person's section.
    pub(super) fn render(&self, out: &mut String, user: &SandboxUser) {
        let _ = write!(
            out,
            "<section data-user=\"{}\"><h2>👤 {} <small class=cid>{} {}</small></h2>",
            escape(&user.user_id),
            escape(&user.name),
            escape(&user.user_id),
            escape(user.mobile.as_deref().map_or("", |m| m))
        );
        if let Some(app_path) = &self.app_path {
            let _ = write!(
                out,
                "<p><a class=btn href=\"/sandbox/as/{uid}?next={next}\">Open the app as {name}</a></p>",
                uid = escape(&user.user_id),
                next = escape(&url_encode(app_path)),
                name = escape(&user.name)
            );
        }
        for ding in self
            .dings
            .iter()
            .filter(|d| d.receivers.contains(&user.user_id))
        {
            render_ding(out, ding);
        }
        let target = MessageTarget::User(user.user_id.clone());
        for m in self.messages.iter().filter(|m| m.target == target) {
            let footer = self.read_footer(&m.process_query_key, &user.user_id);
            render_message(out, &m.msg_key, &m.msg_param, &footer);
        }
        let space = format!("dtv1.card//IM_ROBOT.{}", user.user_id);
        render_cards_in(out, self.cards, self.users, |c| c.spaces.contains(&space));
        out.push_str("</section>");
    }

    /// "read" once read, else a button that marks it read.
    fn read_footer(&self, process_query_key: &str, user_id: &str) -> String {
        match self.sandbox.read_at(process_query_key, user_id) {
            Some(at_ms) => format!(
                "<div class=meta><span class=\"badge on\" data-read=true>read</span> {}</div>",
                escape(&time(at_ms))
            ),
            None => format!(
                "<form method=post action=/sandbox/actions/mark-read data-read=false>\
                 <input type=hidden name=process_query_key value=\"{}\">\
                 <input type=hidden name=user_id value=\"{}\">\
                 <button class=btn>Mark as read</button></form>",
                escape(process_query_key),
                escape(user_id)
            ),
        }
    }
}

/// `2026-01-02 03:04:05 UTC` (or the raw ms when out of range).
fn time(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms).map_or_else(
        || at_ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

fn ding_icon(ding: &DingRecord) -> &'static str {
    match ding.remind {
        3 => "📞",
        2 => "💬",
        _ => "🔔",
    }
}

/// A DING as its receiver sees it (struck through once recalled).
fn render_ding(out: &mut String, ding: &DingRecord) {
    let _ = write!(
        out,
        "<div class=\"msg ding{}\" data-ding=\"{}\"><div class=meta>{} {} from {} · {}{}</div><div class=text>{}</div></div>",
        if ding.recalled { " recalled" } else { "" },
        escape(&ding.open_ding_id),
        ding_icon(ding),
        ding.kind_label(),
        escape(&ding.app_key),
        escape(&time(ding.at_ms)),
        if ding.recalled {
            " · <b class=bad>recalled</b>"
        } else {
            ""
        },
        escape(&ding.content)
    );
}

#[derive(Deserialize)]
pub(super) struct MarkReadForm {
    process_query_key: String,
    user_id: String,
}

/// A person opens a 1:1 robot message: `readStatus` reports it `READ` from now on.
pub(super) async fn mark_read(
    State(sandbox): State<Sandbox>,
    Form(form): Form<MarkReadForm>,
) -> Redirect {
    sandbox.mark_read(&form.process_query_key, &form.user_id);
    Redirect::to("/sandbox")
}

/// The DINGs, for `state.json`.
pub(super) fn dings_json(sandbox: &Sandbox) -> Vec<Value> {
    sandbox
        .dings()
        .iter()
        .map(|d| {
            json!({"open_ding_id": d.open_ding_id, "app_key": d.app_key, "remind": d.remind,
                   "receivers": d.receivers, "content": d.content, "at_ms": d.at_ms,
                   "recalled": d.recalled})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ding(remind: u8, recalled: bool) -> DingRecord {
        DingRecord {
            open_ding_id: "ding1".into(),
            app_key: "app<1>".into(),
            remind,
            receivers: vec!["u1".into()],
            content: "<script>wake</script>".into(),
            at_ms: 1_700_000_000_000,
            recalled,
        }
    }

    #[test]
    fn dings_are_labelled_and_escaped() {
        let mut out = String::new();
        render_ding(&mut out, &ding(3, false));
        assert!(out.contains("📞 phone DING from app&lt;1&gt;"), "{out}");
        assert!(out.contains("&lt;script&gt;wake&lt;/script&gt;"), "{out}");
        assert!(out.contains("2023-11-14 22:13:20 UTC"), "{out}");
        assert!(!out.contains("recalled"), "{out}");
        let mut out = String::new();
        render_ding(&mut out, &ding(2, true));
        assert!(out.contains("💬 SMS DING"), "{out}");
        assert!(out.contains("msg ding recalled"), "{out}");
        assert!(out.contains("<b class=bad>recalled</b>"), "{out}");
        let mut out = String::new();
        render_ding(&mut out, &ding(1, false));
        assert!(out.contains("🔔 in-app DING"), "{out}");
    }
}
