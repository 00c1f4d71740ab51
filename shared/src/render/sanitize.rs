//! Alert text is data, not markup (ARCHITECTURE.md §5.8). Text from alerts is made
//! inert before it becomes DingTalk markdown:
//! - [`inline`] for titles, labels, sources and link titles: no links, no HTML, no
//!   line breaks, no emphasis;
//! - [`description`] for descriptions: markdown formatting stays, but links must be
//!   http(s), raw HTML tags are removed, and no other scheme (`dingtalk://`,
//!   `javascript:`, …) survives, so only our own buttons open DingTalk pages.

/// Schemes that must not appear in what we send, outside our own links.
const BLOCKED_SCHEMES: [&str; 5] = ["dingtalk:", "javascript:", "vbscript:", "data:", "file:"];

/// A colon look-alike (U+2236 RATIO) that no client reads as a scheme separator.
const INERT_COLON: char = '∶';

/// Makes scheme prefixes inert: `dingtalk://x` becomes `dingtalk∶//x`.
fn defang(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let at_word_start = text[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if let Some(scheme) = BLOCKED_SCHEMES
            .iter()
            .find(|s| at_word_start && lower[i..].starts_with(**s))
        {
            let name = &text[i..i + scheme.len() - 1];
            out.push_str(name);
            out.push(INERT_COLON);
            i += scheme.len();
            continue;
        }
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Alert text shown inline (titles, labels, sources, link titles): one line,
/// brackets and angle brackets as full-width look-alikes, emphasis escaped.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in defang(text).chars() {
        match c {
            '\r' | '\n' | '\t' => out.push(' '),
            c if c.is_control() => {}
            '[' => out.push('［'),
            ']' => out.push('］'),
            '<' => out.push('＜'),
            '>' => out.push('＞'),
            '*' | '_' | '`' | '~' | '#' | '|' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            other => out.push(other),
        }
    }
    out
}

/// Whether `url` is an http(s) URL.
fn is_web_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// Removes raw HTML tags (`<font …>`, `<img …>`, `</a>`, `<!-- -->`); a `<` that
/// starts no tag stays.
fn strip_tags(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        match (starts_tag, after.find('>')) {
            (true, Some(end)) => rest = &after[end + 1..],
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Keeps `[text](url)` links whose URL is http(s); others become their text.
fn web_links_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find("](") {
        let Some(close) = rest[open + 2..].find(')') else {
            break;
        };
        let url = &rest[open + 2..open + 2 + close];
        out.push_str(&rest[..open]);
        if is_web_url(url) && !url.contains(char::is_whitespace) {
            out.push_str("](");
            out.push_str(url.trim());
            out.push(')');
        } else {
            out.push(']');
        }
        rest = &rest[open + 2 + close + 1..];
    }
    out.push_str(rest);
    out
}

/// Removes tags until none is left (a tag split by another, `<<b>font>`, would
/// come back from one pass), then makes any `<` left inert.
fn no_html(text: &str) -> String {
    let mut current = text.to_string();
    for _ in 0..8 {
        let next = strip_tags(&current);
        if next == current {
            break;
        }
        current = next;
    }
    current.replace('<', "＜")
}

/// Drops reference-style link definitions (`[1]: url`) whose URL is not http(s),
/// so `[text][1]` cannot point anywhere else.
fn web_references_only(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let definition = trimmed.starts_with('[')
                && trimmed
                    .find("]:")
                    .is_some_and(|end| !trimmed[1..end].contains(']'));
            match trimmed.find("]:") {
                Some(end) if definition && !is_web_url(trimmed[end + 2..].trim()) => {
                    trimmed[..end + 1].to_string()
                }
                _ => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Control characters (but line breaks and tabs) removed.
pub fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect()
}

/// An alert description: markdown stays; links only http(s); no HTML; no other
/// schemes; no character references (`&#58;` would decode into a scheme).
pub fn description(text: &str) -> String {
    let text = printable(text).replace("&#", "＆#");
    defang(&web_references_only(&web_links_only(&no_html(&text))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_cannot_become_links_or_html() {
        let shown = inline("[Acknowledge](https://evil.example) <font color=red>x</font>\n## big");
        assert!(!shown.contains('[') && !shown.contains('<') && !shown.contains('\n'));
        assert!(shown.contains("［Acknowledge］"), "{shown}");
        assert!(shown.contains("\\#\\# big"), "{shown}");
        assert_eq!(
            inline("dingtalk://dingtalkclient/page/link?url=x"),
            "dingtalk∶//dingtalkclient/page/link?url=x"
        );
        assert_eq!(inline("p99 latency 2s"), "p99 latency 2s");
        assert_eq!(inline("数据库 a_b"), "数据库 a\\_b");
    }

    #[test]
    fn descriptions_keep_markdown_and_web_links_only() {
        let md = "**bold** `code`\n- item\n[Runbook](https://wiki.example/rb) [x](javascript:alert(1)) [app](dingtalk://dingtalkclient/page/link?url=https://evil)";
        let clean = description(md);
        assert!(clean.contains("**bold** `code`\n- item"));
        assert!(clean.contains("[Runbook](https://wiki.example/rb)"));
        assert!(
            !clean.contains("javascript:") && !clean.contains("dingtalk:"),
            "{clean}"
        );
        assert!(clean.contains("[x]") && clean.contains("[app]"), "{clean}");
    }

    #[test]
    fn html_is_removed_and_stray_angle_brackets_stay() {
        let clean = description(
            "<font color=#D83931>red</font> <img src=x onerror=y> a < b, c > d <!-- hidden -->",
        );
        assert_eq!(clean, "red  a ＜ b, c > d ");
        let split = description("<<b>font color=#D83931>RESOLVED<<b>/font> <<b>a href=x>y");
        assert!(!split.contains("<font") && !split.contains("<a"), "{split}");
    }

    #[test]
    fn reference_links_and_entities_cannot_smuggle_schemes() {
        let md = "[Ack][1] [Docs][2]\n[1]: alipays://platformapi\n  [2]: https://docs.example/x\n[x](dingtalk&#58;//evil)";
        let clean = description(md);
        assert!(!clean.contains("alipays://"), "{clean}");
        assert!(clean.contains("[2]: https://docs.example/x"), "{clean}");
        assert!(!clean.contains("&#58;"), "{clean}");
        assert_eq!(
            description("Profile: metadata: ok"),
            "Profile: metadata: ok"
        );
    }

    #[test]
    fn bare_schemes_are_inert() {
        assert_eq!(
            description("go to DingTalk://x or JAVASCRIPT:void(0)"),
            "go to DingTalk∶//x or JAVASCRIPT∶void(0)"
        );
    }
}
