//! What a template preview warns about (ARCHITECTURE.md §11): DingTalk's size
//! limit, markdown DingTalk does not render, `@name` text that will not ring, and
//! times shown in UTC.

use std::sync::LazyLock;

use regex::Regex;

/// DingTalk's limit on a robot message's `msgParam` (bytes).
pub const MSG_PARAM_LIMIT: usize = 15_000;

static TABLE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*\|?\s*:?-{3,}:?\s*\|").ok());
static HTML: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)</?([a-z][a-z0-9]*)\b[^>]*>").ok());
static MENTION: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?:^|[\s(（])@([^\s@,，。:：)）]+)").ok());
static UTC_TIME: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|\+00:00)|\bUTC\b").ok()
});

fn found(re: &LazyLock<Option<Regex>>, text: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(text))
}

/// The warnings for a rendered title and body; `msg_bytes` is the message's
/// `msgParam` size and `cut_from` the body's size before it was cut (0: not cut).
pub fn warnings(title: &str, body: &str, msg_bytes: usize, cut_from: usize) -> Vec<String> {
    let mut out = Vec::new();
    if cut_from > 0 {
        out.push(format!(
            "the body is {cut_from} bytes and is cut to {} bytes: DingTalk takes {MSG_PARAM_LIMIT} bytes per message",
            super::templates::BODY_MAX
        ));
    }
    if msg_bytes > MSG_PARAM_LIMIT {
        out.push(format!(
            "the message is {msg_bytes} bytes, over DingTalk's {MSG_PARAM_LIMIT}-byte limit"
        ));
    }
    let text = format!("{title}\n{body}");
    if found(&TABLE, &text) {
        out.push("markdown tables are not rendered by DingTalk: use a list".into());
    }
    if text.contains("```") {
        out.push("fenced code blocks are not rendered by DingTalk: use `inline code`".into());
    }
    if text.contains("~~") {
        out.push("~~strikethrough~~ is not rendered by DingTalk".into());
    }
    if let Some(re) = HTML.as_ref() {
        let tags: Vec<String> = re
            .captures_iter(&text)
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_ascii_lowercase()))
            .filter(|tag| tag != "font" && tag != "br")
            .collect();
        if let Some(tag) = tags.first() {
            out.push(format!(
                "HTML <{tag}> is not rendered by DingTalk (only <font color=…> is)"
            ));
        }
    }
    if let Some(re) = MENTION.as_ref() {
        let names: Vec<String> = re
            .captures_iter(&text)
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
            .filter(|name| !(name.len() == 11 && name.bytes().all(|b| b.is_ascii_digit())))
            .collect();
        if !names.is_empty() {
            out.push(format!(
                "@{} is plain text and will not ring anyone: DingTalk rings only the people it is told to @mention (the layer's and the alert's members are @mentioned for you)",
                names.join(", @")
            ));
        }
    }
    if found(&UTC_TIME, &text) {
        out.push(
            "times are shown in UTC: use `{{ incident.started_at | localtime }}` for the integration's time zone"
                .into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_warning_fires_and_a_clean_message_has_none() {
        assert!(
            warnings(
                "t",
                "**ok** [详情](https://x) <font color=#D83931>红</font>",
                100,
                0
            )
            .is_empty()
        );
        let cases = [
            ("| a | b |\n|---|---|\n| 1 | 2 |", "tables"),
            ("```\ncode\n```", "fenced"),
            ("<b>bold</b>", "HTML <b>"),
            ("owner: @alice", "@alice"),
            ("started 2026-11-28T01:00:00Z", "UTC"),
            ("~~old~~", "strikethrough"),
        ];
        for (body, expected) in cases {
            let found = warnings("t", body, 100, 0);
            assert!(
                found.iter().any(|w| w.contains(expected)),
                "{body}: {found:?}"
            );
        }
        assert!(
            warnings("t", "@13800138000 please", 100, 0).is_empty(),
            "a mobile number"
        );
        assert!(warnings("t", "x", 20_000, 0)[0].contains("15000-byte"));
        assert!(warnings("t", "x", 100, 9_000)[0].contains("cut to"));
    }
}
