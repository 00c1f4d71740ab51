//! How the sandbox page draws what the DingTalk client shows: interactive cards
//! (coloured status header, title, description, facts, buttons that post a signed
//! click), and the small, safe renderer for DingTalk's markdown that they and the
//! robot messages use.
//!
//! The renderer knows headings, `**bold**`, `*italic*`, `` `code` ``, http(s)
//! links, `- ` / `1. ` lists, `> ` quotes, fenced code, line breaks and
//! `<font color=#RRGGBB>`; everything else is HTML-escaped, so no markup from a
//! message or a card reaches the page.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::page::{escape, link_button};
use super::{CardInstance, SandboxUser};

/// How deep emphasis, links and colours nest before the rest is shown as text.
const MAX_DEPTH: usize = 6;

/// Card header colours by status (the product's red, orange and green).
const RED: &str = "#D83931";
const ORANGE: &str = "#F58B00";
const GREEN: &str = "#00A854";
const GREY: &str = "#8F959E";

/// The card's action buttons: visibility variable, action, label variable, default label.
const BUTTONS: [(&str, &str, &str, &str); 9] = [
    ("show_ack", "ack", "btn_ack", "Acknowledge"),
    ("show_resolve", "resolve", "btn_resolve", "Resolve"),
    ("show_snooze", "snooze", "btn_snooze", "Snooze"),
    ("show_escalate", "escalate", "btn_escalate", "Escalate"),
    ("show_reassign", "reassign", "btn_reassign", "Reassign"),
    ("show_silence", "silence:1h", "btn_silence_1h", "Silence 1h"),
    ("show_silence", "silence:4h", "btn_silence_4h", "Silence 4h"),
    (
        "show_silence",
        "silence:24h",
        "btn_silence_24h",
        "Silence 24h",
    ),
    ("show_unsilence", "unsilence", "btn_unsilence", "Unsilence"),
];

/// The facts under a card's description: variable, icon, whether it is markdown.
const FACTS: [(&str, &str, bool); 10] = [
    ("labels", "🏷", true),
    ("links", "🔗", true),
    ("started_at", "🕘", false),
    ("acked_by", "✋", false),
    ("resolved_by", "✅", false),
    ("snoozed_until", "💤", false),
    ("escalation", "", true),
    ("assignees", "👤", false),
    ("silenced_until", "", false),
    ("silence_matchers", "🔕", false),
];

/// A block of markdown being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    None,
    Para,
    Quote,
    Bullets,
    Numbers,
    Code,
}

impl Block {
    fn open(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Para => "<p>",
            Self::Quote => "<blockquote>",
            Self::Bullets => "<ul>",
            Self::Numbers => "<ol>",
            Self::Code => "<pre><code>",
        }
    }

    fn close(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Para => "</p>",
            Self::Quote => "</blockquote>",
            Self::Bullets => "</ul>",
            Self::Numbers => "</ol>",
            Self::Code => "</code></pre>",
        }
    }

    fn is_list(self) -> bool {
        matches!(self, Self::Bullets | Self::Numbers)
    }
}

/// A line of markdown, by how it starts.
enum Line<'a> {
    Blank,
    Fence,
    Heading(usize, &'a str),
    In(Block, &'a str),
}

fn classify(raw: &str) -> Line<'_> {
    let line = raw.trim();
    if line.is_empty() {
        return Line::Blank;
    }
    if line.starts_with("```") {
        return Line::Fence;
    }
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    let after = &line[hashes..];
    if (1..=6).contains(&hashes) && (after.is_empty() || after.starts_with(char::is_whitespace)) {
        return Line::Heading(hashes, after.trim());
    }
    if let Some(rest) = line.strip_prefix('>') {
        return Line::In(Block::Quote, rest.trim_start());
    }
    if let Some(rest) = ["- ", "* ", "+ "]
        .iter()
        .find_map(|bullet| line.strip_prefix(bullet))
    {
        return Line::In(Block::Bullets, rest.trim_start());
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if let Some(rest) = line[digits..].strip_prefix(". ").filter(|_| digits > 0) {
        return Line::In(Block::Numbers, rest.trim_start());
    }
    Line::In(Block::Para, line)
}

/// Closes the open block and opens `to`.
fn switch(out: &mut String, from: Block, to: Block) -> Block {
    out.push_str(from.close());
    out.push_str(to.open());
    to
}

/// DingTalk markdown as safe HTML (see the module documentation).
pub(super) fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut open = Block::None;
    for raw in text.lines() {
        if open == Block::Code {
            if raw.trim_start().starts_with("```") {
                open = switch(&mut out, open, Block::None);
            } else {
                out.push_str(&escape(raw));
                out.push('\n');
            }
            continue;
        }
        match classify(raw) {
            Line::Blank => open = switch(&mut out, open, Block::None),
            Line::Fence => open = switch(&mut out, open, Block::Code),
            Line::Heading(level, content) => {
                open = switch(&mut out, open, Block::None);
                let _ = write!(out, "<h{level}>{}</h{level}>", inline(content));
            }
            Line::In(block, content) => {
                if open != block {
                    open = switch(&mut out, open, block);
                } else if !block.is_list() {
                    out.push_str("<br>");
                }
                if block.is_list() {
                    let _ = write!(out, "<li>{}</li>", inline(content));
                } else {
                    out.push_str(&inline(content));
                }
            }
        }
    }
    out.push_str(open.close());
    out
}

/// One line of DingTalk markdown (emphasis, code, links, colours) as safe HTML.
pub(super) fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    inline_into(&mut out, text, 0);
    out
}

fn inline_into(out: &mut String, text: &str, depth: usize) {
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if c == '\\'
            && let Some(next) = after.chars().next().filter(char::is_ascii_punctuation)
        {
            out.push_str(&escape(next.encode_utf8(&mut [0; 4])));
            rest = &after[next.len_utf8()..];
            continue;
        }
        if depth < MAX_DEPTH
            && let Some(used) = span(out, rest, depth)
        {
            rest = &rest[used..];
            continue;
        }
        out.push_str(&escape(c.encode_utf8(&mut [0; 4])));
        rest = after;
    }
}

/// Writes the construct `rest` starts with, if any; how many bytes it took.
fn span(out: &mut String, rest: &str, depth: usize) -> Option<usize> {
    if let Some(inner) = rest.strip_prefix('`') {
        let end = inner.find('`').filter(|e| *e > 0)?;
        let _ = write!(out, "<code>{}</code>", escape(&inner[..end]));
        return Some(end + 2);
    }
    if let Some(inner) = rest.strip_prefix("**") {
        let end = inner.find("**").filter(|e| *e > 0)?;
        out.push_str("<b>");
        inline_into(out, &inner[..end], depth + 1);
        out.push_str("</b>");
        return Some(end + 4);
    }
    if let Some(inner) = rest.strip_prefix('*') {
        let end = inner
            .find('*')
            .filter(|e| *e > 0 && !inner.starts_with(char::is_whitespace))?;
        out.push_str("<i>");
        inline_into(out, &inner[..end], depth + 1);
        out.push_str("</i>");
        return Some(end + 2);
    }
    if rest.starts_with('[') {
        return link(out, rest, depth);
    }
    if rest
        .get(..5)
        .is_some_and(|t| t.eq_ignore_ascii_case("<font"))
    {
        return font(out, rest, depth);
    }
    None
}

/// `[text](url)`: a link when the URL is a web page, else the text alone.
fn link(out: &mut String, rest: &str, depth: usize) -> Option<usize> {
    let mid = rest.find("](")?;
    let after = &rest[mid + 2..];
    let end = after.find(')')?;
    let (text, target) = (&rest[1..mid], &after[..end]);
    match web_url(target) {
        Some(url) => {
            let _ = write!(
                out,
                "<a href=\"{}\" target=_blank rel=\"noopener noreferrer\">",
                escape(&url)
            );
            if text.is_empty() {
                out.push_str(&escape(&url));
            } else {
                inline_into(out, text, depth + 1);
            }
            out.push_str("</a>");
        }
        None => {
            out.push_str("<span class=refused title=\"link refused\">");
            inline_into(out, text, depth + 1);
            out.push_str("</span>");
        }
    }
    Some(mid + 2 + end + 1)
}

/// `<font color=#RRGGBB>text</font>` as a coloured span.
fn font(out: &mut String, rest: &str, depth: usize) -> Option<usize> {
    let (colour, open) = font_open(rest)?;
    let end = rest[open..].to_ascii_lowercase().find("</font>")?;
    let _ = write!(out, "<span style=\"color:{colour}\">");
    inline_into(out, &rest[open..open + end], depth + 1);
    out.push_str("</span>");
    Some(open + end + "</font>".len())
}

/// The colour of the `<font color=#RRGGBB>` tag (`#RGB`, quoted or not) that
/// `text` starts with, and the tag's length; none for any other attribute or value.
fn font_open(text: &str) -> Option<(&str, usize)> {
    let rest = text.get(5..)?;
    let attr = rest.trim_start();
    if attr.len() == rest.len() {
        return None;
    }
    let value = attr
        .get(..5)
        .filter(|a| a.eq_ignore_ascii_case("color"))
        .map(|_| attr[5..].trim_start())?
        .strip_prefix('=')?
        .trim_start();
    let quote = value.chars().next().filter(|q| *q == '"' || *q == '\'');
    let value = quote.map_or(value, |q| &value[q.len_utf8()..]);
    let colour = hex_colour(value)?;
    let mut tail = &value[colour.len()..];
    if let Some(q) = quote {
        tail = tail.strip_prefix(q)?;
    }
    let tail = tail.trim_start().strip_prefix('>')?;
    Some((colour, text.len() - tail.len()))
}

/// The `#RGB` or `#RRGGBB` colour `text` starts with.
fn hex_colour(text: &str) -> Option<&str> {
    let digits = text
        .strip_prefix('#')?
        .bytes()
        .take_while(u8::is_ascii_hexdigit)
        .count();
    matches!(digits, 3 | 6).then(|| &text[..=digits])
}

/// Where a link or button may go from the page: an http(s) URL, or the http(s)
/// page a `dingtalk://dingtalkclient/page/link?url=…` link opens in the client.
/// Anything else (`javascript:`, `data:`, other `dingtalk://` links) goes nowhere.
pub(super) fn web_url(target: &str) -> Option<String> {
    let web = |url: url::Url| matches!(url.scheme(), "http" | "https").then(|| url.to_string());
    let parsed = url::Url::parse(target.trim()).ok()?;
    if parsed.scheme() == "dingtalk"
        && parsed.host_str() == Some("dingtalkclient")
        && parsed.path() == "/page/link"
    {
        let (_, inner) = parsed.query_pairs().find(|(k, _)| k == "url")?;
        return url::Url::parse(inner.trim()).ok().and_then(web);
    }
    web(parsed)
}

/// A card's variables (`cardParamMap`).
struct Vars<'a>(&'a Map<String, Value>);

impl<'a> Vars<'a> {
    /// A variable (empty when absent).
    fn get(&self, key: &str) -> &'a str {
        self.0.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    /// A variable, or `default` when absent or empty.
    fn or(&self, key: &str, default: &'a str) -> &'a str {
        Some(self.get(key))
            .filter(|v| !v.is_empty())
            .unwrap_or(default)
    }
}

/// The header colour: `status_color` when it is a hex colour, else by `status`.
fn header_colour<'a>(vars: &Vars<'a>) -> &'a str {
    let given = vars.get("status_color").trim();
    if let Some(colour) = hex_colour(given).filter(|c| c.len() == given.len()) {
        return colour;
    }
    match vars.get("status") {
        "firing" | "storm" => RED,
        "acknowledged" => ORANGE,
        "resolved" => GREEN,
        _ => GREY,
    }
}

/// `告警中 · 严重` from the labels, else `firing · Critical`.
fn header_text(vars: &Vars<'_>) -> String {
    let status = vars.or("status_label", vars.get("status"));
    let severity = vars.or("severity_label", vars.get("severity"));
    [status, severity]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The cards delivered to an open space (`IM_GROUP.cid…` or `IM_ROBOT.userId`).
pub(super) fn render_cards_in(
    out: &mut String,
    cards: &[CardInstance],
    users: &[SandboxUser],
    in_space: impl Fn(&CardInstance) -> bool,
) {
    for c in cards.iter().filter(|c| in_space(c)) {
        let _ = write!(
            out,
            "<div class=\"msg card-msg\"><div class=meta>card {} · {} updates</div>",
            escape(&c.out_track_id),
            c.updates
        );
        render_card(out, c, users);
        out.push_str("</div>");
    }
}

/// A card as DingTalk shows it: coloured status header, title, description and
/// facts, per-person notices, buttons; then its raw variables, collapsed.
fn render_card(out: &mut String, card: &CardInstance, users: &[SandboxUser]) {
    let vars = Vars(&card.card_data);
    let _ = write!(
        out,
        "<div class=dt-card data-card=\"{}\" data-status=\"{}\"><div class=card-head style=\"background:{}\">{}</div><div class=card-body>",
        escape(&card.out_track_id),
        escape(vars.get("status")),
        header_colour(&vars),
        escape(&header_text(&vars))
    );
    let title = vars.get("title");
    if !title.is_empty() {
        let _ = write!(out, "<div class=card-title>{}</div>", inline(title));
    }
    let description = vars.get("description");
    if !description.is_empty() {
        let _ = write!(out, "<div class=md>{}</div>", markdown(description));
    }
    for (key, icon, is_markdown) in FACTS {
        let value = vars.get(key);
        if !value.is_empty() {
            let shown = if is_markdown {
                inline(value)
            } else {
                escape(value)
            };
            let _ = write!(
                out,
                "<div class=card-fact data-fact={key}>{icon} {shown}</div>"
            );
        }
    }
    out.push_str("</div>");
    render_notices(out, card, users);
    render_buttons(out, card, &vars, users);
    render_variables(out, card);
    out.push_str("</div>");
}

/// What each person alone sees on the card (their private `notice`).
fn render_notices(out: &mut String, card: &CardInstance, users: &[SandboxUser]) {
    for (user, data) in &card.private_data {
        let shown = data.get("show_notice").and_then(Value::as_str) != Some("false");
        if let Some(notice) = data
            .get("notice")
            .and_then(Value::as_str)
            .filter(|n| shown && !n.is_empty())
        {
            let name = users
                .iter()
                .find(|u| u.user_id == *user)
                .map_or(user.as_str(), |u| u.name.as_str());
            let _ = write!(
                out,
                "<div class=\"card-notice bad\" data-private-for=\"{}\">🔒 to {}: {}</div>",
                escape(user),
                escape(name),
                inline(notice)
            );
        }
    }
}

/// The card's buttons: each posts a click (as the chosen person) to the sandbox,
/// which sends DingTalk's signed callback; Details opens `details_url`.
fn render_buttons(out: &mut String, card: &CardInstance, vars: &Vars<'_>, users: &[SandboxUser]) {
    let shown: Vec<(&str, &str)> = BUTTONS
        .iter()
        .filter(|(flag, ..)| vars.get(flag) == "true")
        .map(|(_, action, key, default)| (*action, vars.or(key, default)))
        .collect();
    let details = web_url(vars.get("details_url"));
    if shown.is_empty() && details.is_none() {
        return;
    }
    out.push_str("<div class=card-actions>");
    if !shown.is_empty() {
        let _ = write!(
            out,
            "<form method=post action=/sandbox/actions/card-click><input type=hidden name=out_track_id value=\"{}\"><label class=card-as>as <select name=user_id>",
            escape(&card.out_track_id)
        );
        for user in users {
            let _ = write!(
                out,
                "<option value=\"{}\">{}</option>",
                escape(&user.user_id),
                escape(&user.name)
            );
        }
        out.push_str("</select></label>");
        if shown.iter().any(|(action, _)| *action == "reassign") {
            out.push_str("<label class=card-as>reassign to <select name=member>");
            for (user, email) in users.iter().filter_map(|u| Some((u, u.email.as_deref()?))) {
                let _ = write!(
                    out,
                    "<option value=\"{}\">{}</option>",
                    escape(email),
                    escape(&user.name)
                );
            }
            out.push_str("</select></label>");
        }
    }
    out.push_str("<div class=dt-buttons>");
    for (action, label) in &shown {
        let _ = write!(
            out,
            "<button class=dt-btn name=action value={action}>{}</button>",
            escape(label)
        );
    }
    if details.is_some() {
        link_button(
            out,
            vars.or("btn_details", "Details"),
            vars.get("details_url"),
        );
    }
    out.push_str("</div>");
    if !shown.is_empty() {
        out.push_str("</form>");
    }
    out.push_str("</div>");
}

/// The raw variables (shared and per person), collapsed.
fn render_variables(out: &mut String, card: &CardInstance) {
    out.push_str("<details class=vars><summary>variables</summary>");
    for (key, value) in &card.card_data {
        let value = value
            .as_str()
            .map_or_else(|| value.to_string(), String::from);
        let _ = write!(
            out,
            "<div data-card-field=\"{key}\"><b>{key}</b>: {}</div>",
            escape(&value),
            key = escape(key)
        );
    }
    for (user, data) in &card.private_data {
        let _ = write!(
            out,
            "<div data-card-private=\"{user}\"><b>private · {user}</b>: {}</div>",
            escape(&data.to_string()),
            user = escape(user)
        );
    }
    out.push_str("</details>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markup_is_escaped_never_passed_through() {
        let html = markdown("<script>alert(1)</script>\n<img src=x onerror=alert(1)>");
        assert_eq!(
            html,
            "<p>&lt;script&gt;alert(1)&lt;/script&gt;<br>&lt;img src=x onerror=alert(1)&gt;</p>"
        );
        let html = inline("**<b onclick=x>** `<i>` [<a>](https://e.x/\"><)");
        assert!(
            !html.contains("<b onclick") && !html.contains("<a>"),
            "{html}"
        );
        assert!(html.contains("<code>&lt;i&gt;</code>"), "{html}");
        assert!(html.contains("href=\"https://e.x/%22%3E%3C\""), "{html}");
        assert!(!html.contains("\"><"), "{html}");
    }

    #[test]
    fn only_web_links_are_links() {
        for refused in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,x",
            "dingtalk://dingtalkclient/action/sendmsg",
            "dingtalk://dingtalkclient/page/link?url=javascript%3Aalert(1)",
            "/relative",
        ] {
            let html = inline(&format!("[go]({refused})"));
            assert!(!html.contains("<a"), "{refused}: {html}");
            assert!(html.contains(">go</span>"), "{refused}: {html}");
        }
        assert_eq!(
            inline("[**docs**](https://example.com/a?b=1&c=2)"),
            "<a href=\"https://example.com/a?b=1&amp;c=2\" target=_blank rel=\"noopener noreferrer\"><b>docs</b></a>"
        );
        let wrapped = "dingtalk://dingtalkclient/page/link?url=http%3A%2F%2F127.0.0.1%3A3000%2Fapp%3Fincident%3D1&pc_slide=true";
        assert!(
            inline(&format!("[open]({wrapped})"))
                .contains("href=\"http://127.0.0.1:3000/app?incident=1\""),
            "a DingTalk page link opens its web page"
        );
    }

    #[test]
    fn font_colour_must_be_hex() {
        assert_eq!(
            inline("<font color=#D83931>red **x**</font> and <FONT color=\"#0f0\">g</FONT>"),
            "<span style=\"color:#D83931\">red <b>x</b></span> and <span style=\"color:#0f0\">g</span>"
        );
        for bad in [
            "<font color=red>x</font>",
            "<font color=#D83931 onmouseover=alert(1)>x</font>",
            "<font color=\"#D83931;background:url(x)\">x</font>",
            "<font color=#12345>x</font>",
            "<font color=#D83931>no end",
            "<fontcolor=#D83931>x</font>",
        ] {
            let html = inline(bad);
            assert!(
                !html.contains("<span") && !html.contains("<font"),
                "{bad}: {html}"
            );
            assert!(
                html.starts_with("&lt;f") || html.starts_with("&lt;F"),
                "{html}"
            );
        }
    }

    #[test]
    fn headings_lists_quotes_and_emphasis() {
        let html = markdown(
            "### <font color=#D83931>🔴 告警中 · 严重</font>\n\n**Disk** *full* on `db-1`\nsecond line\n\n> env: prod · team: db\n\n- [a](https://a.example)\n- b \\*not italic\\*\n1. one\n2. two\n####### seven\n#tag",
        );
        assert_eq!(
            html,
            "<h3><span style=\"color:#D83931\">🔴 告警中 · 严重</span></h3>\
             <p><b>Disk</b> <i>full</i> on <code>db-1</code><br>second line</p>\
             <blockquote>env: prod · team: db</blockquote>\
             <ul><li><a href=\"https://a.example/\" target=_blank rel=\"noopener noreferrer\">a</a></li><li>b *not italic*</li></ul>\
             <ol><li>one</li><li>two</li></ol>\
             <p>####### seven<br>#tag</p>"
        );
        assert_eq!(
            markdown("```\n<b>x</b>\n```"),
            "<pre><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>"
        );
        assert_eq!(inline("2 * 3 * 4 and ** and `"), "2 * 3 * 4 and ** and `");
        let deep = "**".repeat(10) + &"*[x](https://e.x)*".repeat(3);
        assert!(!inline(&deep).is_empty());
    }

    fn card(data: Value) -> CardInstance {
        CardInstance {
            out_track_id: "inc-1".into(),
            card_template_id: "tpl".into(),
            callback_route_key: None,
            spaces: vec![],
            card_data: data.as_object().cloned().unwrap_or_default(),
            private_data: Map::new(),
            updates: 0,
            created_at_ms: 0,
        }
    }

    fn user(id: &str, email: Option<&str>) -> SandboxUser {
        SandboxUser {
            user_id: id.into(),
            union_id: id.into(),
            name: format!("Name {id}"),
            email: email.map(String::from),
            mobile: None,
        }
    }

    #[test]
    fn a_card_without_the_new_variables_uses_english_defaults() {
        let card = card(json!({"status": "acknowledged", "severity": "Critical",
            "title": "Disk <full>", "description": "**bold**", "show_ack": "false",
            "show_resolve": "true", "show_snooze": "true", "labels": "env: prod",
            "details_url": "javascript:alert(1)"}));
        let mut out = String::new();
        render_card(&mut out, &card, &[user("u1", None)]);
        assert!(
            out.contains("background:#F58B00\">acknowledged · Critical</div>"),
            "{out}"
        );
        assert!(
            out.contains("<div class=card-title>Disk &lt;full&gt;</div>"),
            "{out}"
        );
        assert!(
            out.contains("<div class=md><p><b>bold</b></p></div>"),
            "{out}"
        );
        assert!(
            out.contains("name=action value=resolve>Resolve</button>"),
            "{out}"
        );
        assert!(
            out.contains("name=action value=snooze>Snooze</button>"),
            "{out}"
        );
        assert!(
            !out.contains("value=ack") && !out.contains("Details"),
            "{out}"
        );
        assert!(
            out.contains("<option value=\"u1\">Name u1</option>"),
            "{out}"
        );
        assert!(out.contains("<summary>variables</summary>"), "{out}");
        assert!(out.contains("<div data-card-field=\"status\"><b>status</b>: acknowledged</div>"));
    }

    #[test]
    fn a_zh_cn_card_shows_its_labels_colour_and_buttons() {
        let mut card = card(json!({"status": "firing", "severity": "Critical",
            "status_label": "告警中", "severity_label": "严重", "status_color": "#123456",
            "title": "磁盘已满", "show_ack": "true", "show_resolve": "true",
            "show_reassign": "true", "btn_ack": "✋ 认领", "btn_resolve": "✅ 解决",
            "btn_reassign": "👉 转派", "btn_details": "📄 详情",
            "details_url": "dingtalk://dingtalkclient/page/link?url=https%3A%2F%2Fx.example%2Fapp&pc_slide=true",
            "escalation": "⏫ 第 1/2 层", "assignees": "a@x.example"}));
        card.private_data.insert(
            "u1".into(),
            json!({"notice": "<b>未关联</b>", "show_notice": "true"}),
        );
        let mut out = String::new();
        render_card(
            &mut out,
            &card,
            &[user("u1", Some("u1@x.example")), user("u2", None)],
        );
        assert!(
            out.contains("background:#123456\">告警中 · 严重</div>"),
            "{out}"
        );
        assert!(out.contains("value=ack>✋ 认领</button>"), "{out}");
        assert!(out.contains("value=reassign>👉 转派</button>"), "{out}");
        assert!(
            out.contains(
                "<select name=member><option value=\"u1@x.example\">Name u1</option></select>"
            ),
            "{out}"
        );
        assert!(
            out.contains("<a class=dt-btn href=\"https://x.example/app\" title=\"dingtalk://"),
            "{out}"
        );
        assert!(out.contains(">📄 详情</a></div></form>"), "{out}");
        assert!(
            out.contains("🔒 to Name u1: &lt;b&gt;未关联&lt;/b&gt;"),
            "{out}"
        );
        assert!(out.contains("data-fact=escalation> ⏫ 第 1/2 层"), "{out}");
        let mut bad = card.clone();
        bad.card_data
            .insert("status_color".into(), json!("red;x:y"));
        let mut out = String::new();
        render_card(&mut out, &bad, &[]);
        assert!(out.contains("background:#D83931\">"), "{out}");
    }
}
