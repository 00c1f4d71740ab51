//! DingTalk custom-robot compatible ingest (ARCHITECTURE.md §11):
//! `POST /api/integrations/{id}/robot/send?access_token=<ingest token>` takes the body a
//! tool would post to a DingTalk custom robot (`text`, `markdown`, `actionCard`, `link`,
//! `feedCard`) and queues one alert event, exactly as the other ingest routes do.
//!
//! Answers are DingTalk's: `{"errcode": 0, "errmsg": "ok"}`, errors HTTP 200 with a
//! non-zero `errcode` (what `oapi.dingtalk.com/robot/send` answers); only our own
//! failures are HTTP 503 (`errcode` -1, 系统繁忙) so that retrying senders retry.
//!
//! What is derived:
//! - title: `markdown`/`actionCard`/`link` title (else the text's first line); for
//!   `text`, the content's first line cut to 100 characters;
//! - severity: the `severity` query parameter, else keywords in title and text
//!   (严重/紧急/致命/critical/P0/P1 → critical; 警告/warning/P2/P3 → warning; else info);
//! - status: the `status` query parameter, else a status marker at the start of the
//!   title (`[恢复]`, `【已恢复】`, `[RESOLVED]`, `Resolved: …`, `OK: …` → resolved);
//! - key: the `key` query parameter, else a hash of the title without its leading
//!   status/severity markers, so `【告警】X` and `【恢复】X` name the same incident;
//! - targets: `at.atUserIds` bound to members are added (as members, so they are
//!   @mentioned and assigned) to where the alert would go anyway; mobiles
//!   (`at.atMobiles`, `@138…` in the text) go to the notifier as `mention_mobiles`,
//!   which looks them up in DingTalk and adds the same way; the label `at_mobiles`
//!   keeps them masked.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{error, info};

use crate::clock::{Clock, rfc3339};
use crate::domain::incident::{
    Alert, AlertEvent, AlertStatus, Link, Severity, is_mobile, masked_mobile,
};
use crate::domain::integration::{Integration, Targets};
use crate::infra::queue::JobQueue;
use crate::services::ingest::{bound_and_queue, token_matches};
use crate::store::{Store, StoreError};

/// `source` of the alerts this route makes.
pub const ROBOT_SOURCE: &str = "dingtalk-robot";
/// How far a signed `timestamp` may be from our clock (DingTalk: one hour).
pub const SIGN_WINDOW_MS: u64 = 3_600_000;
/// Longest title taken from the first line of a `text` message, in characters.
pub const TEXT_TITLE_CHARS: usize = 100;
/// Most `atUserIds` / `atMobiles` looked at.
const MAX_MENTIONS: usize = 20;
/// Longest leading marker (`Resolved in 5m 3s:`, `[FIRING:1]`), in characters.
const MARKER_CHARS: usize = 24;

/// The query parameters of a robot send. Holds the ingest token: not `Debug`.
#[derive(Clone, Default)]
pub struct RobotParams {
    /// `access_token`: the integration's ingest token.
    pub access_token: Option<String>,
    /// `timestamp` (ms) of a signed send.
    pub timestamp: Option<String>,
    /// `sign` of a signed send.
    pub sign: Option<String>,
    /// `severity` override (critical / warning / info, or a word `Severity::from_label` knows).
    pub severity: Option<String>,
    /// `key` override: the dedup key.
    pub key: Option<String>,
    /// `status` override: `firing` or `resolved`.
    pub status: Option<String>,
}

/// Why a robot send was refused, in DingTalk's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RobotError {
    /// No `access_token` in the query.
    #[error("缺少参数 access_token")]
    MissingToken,
    /// The token is not this integration's ingest token (or no such integration).
    #[error("token is not exist")]
    TokenNotExist,
    /// `timestamp` missing, not a number or more than an hour from our clock.
    #[error("invalid timestamp")]
    InvalidTimestamp,
    /// `sign` missing or wrong.
    #[error("sign not match")]
    SignNotMatch,
    /// An empty body.
    #[error("缺少参数 json")]
    MissingBody,
    /// A body that is not a robot message (the detail says why).
    #[error("param error, more: {0}")]
    Param(String),
    /// A `msgtype` we do not take.
    #[error("message msgtype not support")]
    MsgtypeNotSupported,
    /// Our own failure (store or queue); the sender should retry.
    #[error("系统繁忙, more: {0}")]
    Busy(String),
}

impl RobotError {
    /// DingTalk's `errcode` for this error.
    pub fn errcode(&self) -> i64 {
        match self {
            Self::MissingToken | Self::MissingBody => 40035,
            Self::TokenNotExist | Self::Param(_) | Self::MsgtypeNotSupported => 300_001,
            Self::InvalidTimestamp | Self::SignNotMatch => 310_000,
            Self::Busy(_) => -1,
        }
    }

    /// The HTTP status: 200 like DingTalk, 503 for our own failures.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Busy(_) => 503,
            _ => 200,
        }
    }

    /// The answer body `{"errcode", "errmsg"}`.
    pub fn body(&self) -> Value {
        json!({"errcode": self.errcode(), "errmsg": self.to_string()})
    }
}

/// The success answer `{"errcode": 0, "errmsg": "ok"}`.
pub fn ok_body() -> Value {
    json!({"errcode": 0, "errmsg": "ok"})
}

/// What a custom-robot message says, whatever its `msgtype`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RobotMessage {
    /// `text`, `markdown`, `actionCard`, `link` or `feedCard`.
    pub msgtype: String,
    /// The derived title.
    pub title: String,
    /// The body (markdown or plain text).
    pub text: String,
    /// Buttons and links of the message (http(s) only).
    pub links: Vec<Link>,
    /// `at.atMobiles` and `@<mobile>` in the text.
    pub at_mobiles: Vec<String>,
    /// `at.atUserIds`.
    pub at_user_ids: Vec<String>,
    /// `at.isAtAll`.
    pub at_all: bool,
}

/// A trimmed, non-empty string at `pointer`.
fn text_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn required<'a>(value: &'a Value, pointer: &str) -> Result<&'a str, RobotError> {
    text_at(value, pointer).ok_or_else(|| {
        RobotError::Param(format!(
            "{} is missing or empty",
            pointer.trim_start_matches('/').replace('/', ".")
        ))
    })
}

fn http_link(links: &mut Vec<Link>, title: Option<&str>, url: Option<&str>) {
    if let Some(url) = url.filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        && !links.iter().any(|l| l.url == url)
    {
        links.push(Link {
            title: title.unwrap_or("Link").to_string(),
            url: url.to_string(),
        });
    }
}

/// The first non-blank line of `text` without leading markdown marks, cut to `max`
/// characters (with `…`).
pub fn first_line(text: &str, max: usize) -> String {
    let line = text
        .lines()
        .map(|l| l.trim_start_matches(['#', '>', ' ', '\t']).trim())
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if line.chars().count() <= max {
        return line.to_string();
    }
    let mut cut: String = line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The strings (or numbers) of the array at `pointer`, trimmed, unique, at most
/// [`MAX_MENTIONS`]; anything else is ignored.
fn string_list(value: &Value, pointer: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = match item {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        if !text.is_empty() && !out.contains(&text) && out.len() < MAX_MENTIONS {
            out.push(text);
        }
    }
    out
}

/// The length of the mobile a mention starts with (`rest` follows an `@`): 6 to 15
/// digits, an optional `+`, not followed by a letter or digit.
fn mention_len(rest: &str) -> Option<usize> {
    let plus = usize::from(rest.starts_with('+'));
    let digits = rest[plus..].bytes().take_while(u8::is_ascii_digit).count();
    let next = rest[plus + digits..].chars().next();
    ((6..=15).contains(&digits) && !next.is_some_and(|c| c.is_ascii_alphanumeric()))
        .then_some(plus + digits)
}

/// `@<digits>` mentions in a text.
fn mobiles_in(text: &str) -> Vec<String> {
    text.match_indices('@')
        .filter_map(|(at, _)| {
            let rest = &text[at + 1..];
            mention_len(rest).map(|len| rest[..len].to_string())
        })
        .collect()
}

/// The text with every `@<mobile>` mention masked (`@138****0001`): the title and
/// description are stored and shown, a mobile number is not.
fn masked_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, _) in text.match_indices('@') {
        if let Some(len) = mention_len(&text[at + 1..]) {
            out.push_str(&text[copied..=at]);
            out.push_str(&masked_mobile(&text[at + 1..at + 1 + len]));
            copied = at + 1 + len;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Parses a custom-robot message body.
pub fn parse_message(body: &Value) -> Result<RobotMessage, RobotError> {
    if !body.is_object() {
        return Err(RobotError::Param("the body must be a JSON object".into()));
    }
    let msgtype =
        text_at(body, "/msgtype").ok_or_else(|| RobotError::Param("msgtype is missing".into()))?;
    let mut links = Vec::new();
    let (title, text) = match msgtype {
        "text" => {
            let content = required(body, "/text/content")?;
            (first_line(content, TEXT_TITLE_CHARS), content.to_string())
        }
        "markdown" | "actionCard" => {
            let text = required(body, &format!("/{msgtype}/text"))?;
            let title = text_at(body, &format!("/{msgtype}/title"))
                .map(String::from)
                .unwrap_or_else(|| first_line(text, TEXT_TITLE_CHARS));
            if msgtype == "actionCard" {
                let card = &body["actionCard"];
                http_link(
                    &mut links,
                    text_at(card, "/singleTitle"),
                    text_at(card, "/singleURL"),
                );
                for button in card
                    .get("btns")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    http_link(
                        &mut links,
                        text_at(button, "/title"),
                        text_at(button, "/actionURL"),
                    );
                }
            }
            (title, text.to_string())
        }
        "link" => {
            let text = text_at(body, "/link/text").unwrap_or_default();
            let title = match text_at(body, "/link/title") {
                Some(title) => title.to_string(),
                None => first_line(required(body, "/link/text")?, TEXT_TITLE_CHARS),
            };
            http_link(&mut links, Some(&title), text_at(body, "/link/messageUrl"));
            (title, text.to_string())
        }
        "feedCard" => feed_card(body, &mut links)?,
        _ => return Err(RobotError::MsgtypeNotSupported),
    };
    let mut at_mobiles = string_list(body, "/at/atMobiles");
    for mobile in mobiles_in(&text) {
        if !at_mobiles.contains(&mobile) && at_mobiles.len() < MAX_MENTIONS {
            at_mobiles.push(mobile);
        }
    }
    let at_all = match body.pointer("/at/isAtAll") {
        Some(Value::Bool(all)) => *all,
        Some(Value::String(all)) => all.eq_ignore_ascii_case("true"),
        _ => false,
    };
    Ok(RobotMessage {
        msgtype: msgtype.to_string(),
        title,
        text,
        links,
        at_mobiles,
        at_user_ids: string_list(body, "/at/atUserIds"),
        at_all,
    })
}

/// A `feedCard`: the first entry's title, the entries as a markdown list.
fn feed_card(body: &Value, links: &mut Vec<Link>) -> Result<(String, String), RobotError> {
    let entries: Vec<(&str, Option<&str>)> = body
        .pointer("/feedCard/links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|l| text_at(l, "/title").map(|t| (t, text_at(l, "/messageURL"))))
        .collect();
    let first = entries
        .first()
        .ok_or_else(|| RobotError::Param("feedCard.links has no entry with a title".into()))?;
    let mut text = String::new();
    for (title, url) in &entries {
        match url {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                text.push_str(&format!("- [{title}]({url})\n"));
            }
            _ => text.push_str(&format!("- {title}\n")),
        }
        http_link(links, Some(title), *url);
    }
    Ok((first.0.to_string(), text))
}

const CRITICAL_WORDS: &[&str] = &["严重", "紧急", "致命", "critical", "p0", "p1"];
const WARNING_WORDS: &[&str] = &["警告", "warning", "p2", "p3"];

/// Whether `haystack` (ASCII-lower-cased) holds `word`: ASCII words as whole words
/// (no ASCII letter or digit either side), others anywhere.
fn mentions_word(haystack: &str, word: &str) -> bool {
    if !word.is_ascii() {
        return haystack.contains(word);
    }
    haystack.match_indices(word).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// The severity keywords in `text` say: critical, else warning, else info.
pub fn severity_of(text: &str) -> Severity {
    let lower = text.to_ascii_lowercase();
    if CRITICAL_WORDS.iter().any(|w| mentions_word(&lower, w)) {
        Severity::Critical
    } else if WARNING_WORDS.iter().any(|w| mentions_word(&lower, w)) {
        Severity::Warning
    } else {
        Severity::Info
    }
}

const RESOLVED_ASCII: &str = "resolved recovered recovery ok";
const OTHER_ASCII: &str = "firing problem alert alarm alerting triggered critical warning warn \
                           info error high disaster average p0 p1 p2 p3 p4 p5";
const RESOLVED_CJK: &[&str] = &["恢复", "解决", "解除"];
const OTHER_CJK: &[&str] = &[
    "告警", "报警", "故障", "警告", "严重", "紧急", "致命", "异常", "通知", "提醒",
];

/// Classifies a marker's text: `Some(true)` resolved, `Some(false)` another status or
/// severity marker, `None` not a marker. ASCII markers are whole words (`FIRING:2`,
/// `OK`); with `prefix` (before a colon) also Zabbix's `Resolved in 5m 3s`.
fn classify(marker: &str, prefix: bool) -> Option<bool> {
    let marker = marker.trim();
    let marker = match marker.rsplit_once([':', '：']) {
        Some((word, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => word.trim(),
        _ => marker,
    };
    if marker.is_empty() || marker.chars().count() > MARKER_CHARS {
        return None;
    }
    if marker.is_ascii() {
        let lower = marker.to_ascii_lowercase();
        if RESOLVED_ASCII.split(' ').any(|w| lower == w)
            || (prefix && lower.starts_with("resolved in "))
        {
            return Some(true);
        }
        return OTHER_ASCII
            .split_whitespace()
            .any(|w| lower == w)
            .then_some(false);
    }
    if marker.chars().count() > 8 {
        return None;
    }
    if RESOLVED_CJK.iter().any(|w| marker.contains(w)) {
        return Some(true);
    }
    OTHER_CJK
        .iter()
        .any(|w| marker.contains(w))
        .then_some(false)
}

/// A leading `[…]`, `【…】`, `(…)` or `（…）`: its inside and what follows.
fn bracketed(text: &str) -> Option<(&str, &str)> {
    let open = text.chars().next()?;
    let close = match open {
        '[' => ']',
        '【' => '】',
        '(' => ')',
        '（' => '）',
        _ => return None,
    };
    let inner = &text[open.len_utf8()..];
    let end = inner.find(close)?;
    Some((&inner[..end], &inner[end + close.len_utf8()..]))
}

/// Splits leading status and severity markers off a title (`[FIRING:1]`, `【恢复】`,
/// `Resolved in 5m: `, `告警：`); returns whether one said resolved, and the rest.
pub fn strip_markers(title: &str) -> (bool, &str) {
    let skip = |c: char| !c.is_alphanumeric() && !matches!(c, '[' | '【' | '(' | '（');
    let mut rest = title.trim_start_matches(skip);
    let mut resolved = false;
    for _ in 0..4 {
        let marked = bracketed(rest)
            .and_then(|(inner, after)| classify(inner, false).map(|r| (r, after)))
            .or_else(|| {
                let (head, after) = rest.split_once([':', '：'])?;
                classify(head, true).map(|r| (r, after))
            });
        let Some((is_resolved, after)) = marked else {
            break;
        };
        resolved |= is_resolved;
        rest = after.trim_start_matches(skip);
    }
    (resolved, rest.trim())
}

/// The dedup key of a title: `robot-` and a hash of the title without its markers,
/// lower-cased, whitespace collapsed.
pub fn key_of_title(title: &str) -> String {
    let (_, rest) = strip_markers(title);
    let base = if rest.is_empty() { title } else { rest };
    let normal = base
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let digest = hex::encode(Sha256::digest(normal.as_bytes()));
    format!("robot-{}", &digest[..32])
}

/// The alert event of a message (targets left to [`RobotIngest`]).
pub fn to_event(
    message: &RobotMessage,
    integration_id: &str,
    params: &RobotParams,
    now_ms: i64,
) -> Result<AlertEvent, RobotError> {
    let option = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
    };
    let status = match option(&params.status).as_deref() {
        Some("firing") => AlertStatus::Firing,
        Some("resolved") => AlertStatus::Resolved,
        Some(_) => {
            return Err(RobotError::Param(
                "status must be firing or resolved".into(),
            ));
        }
        None if strip_markers(&message.title).0 => AlertStatus::Resolved,
        None => AlertStatus::Firing,
    };
    let severity = match option(&params.severity) {
        Some(word) => Severity::from_label(&word).ok_or_else(|| {
            RobotError::Param("severity must be critical, warning or info".into())
        })?,
        None => severity_of(&format!("{}\n{}", message.title, message.text)),
    };
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("msgtype".to_string(), message.msgtype.clone());
    if !message.at_mobiles.is_empty() {
        let mobiles: Vec<String> = message
            .at_mobiles
            .iter()
            .map(|m| masked_mobile(m))
            .collect();
        labels.insert("at_mobiles".to_string(), mobiles.join(","));
    }
    if message.at_all {
        labels.insert("at_all".to_string(), "true".to_string());
    }
    let event = AlertEvent {
        version: 1,
        integration_id: integration_id.to_string(),
        alert: Alert {
            key: option(&params.key).unwrap_or_else(|| key_of_title(&message.title)),
            status,
            severity,
            title: masked_mentions(&message.title),
            description: masked_mentions(&message.text),
            labels,
            links: message.links.clone(),
            source: Some(ROBOT_SOURCE.to_string()),
            occurred_at: Some(rfc3339(now_ms)),
        },
        targets: Targets::default(),
        truncated: Vec::new(),
        // Only a firing alert pages; the notifier looks the mobiles up.
        mention_mobiles: match status {
            AlertStatus::Firing => message
                .at_mobiles
                .iter()
                .filter(|m| is_mobile(m))
                .cloned()
                .collect(),
            AlertStatus::Resolved => Vec::new(),
        },
    };
    event
        .validate()
        .map_err(|v| RobotError::Param(v.to_string()))?;
    Ok(event)
}

/// `base64(HMAC-SHA256(key = secret, msg = timestamp + "\n" + secret))`: a custom
/// robot's `sign` (before URL encoding).
pub fn robot_sign(secret: &str, timestamp: &str) -> String {
    // HMAC takes keys of any length; should that ever fail, no sign matches.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks an optional `timestamp` + `sign` pair like DingTalk: both or neither; the
/// timestamp (ms) within an hour of `now_ms`; the sign in constant time. A `+` that
/// arrived as a space (an unencoded sign) is read back as `+`.
pub fn check_sign(
    secret: &str,
    timestamp: Option<&str>,
    sign: Option<&str>,
    now_ms: i64,
) -> Result<(), RobotError> {
    let timestamp = timestamp.map(str::trim).filter(|v| !v.is_empty());
    let sign = sign.map(str::trim).filter(|v| !v.is_empty());
    if timestamp.is_none() && sign.is_none() {
        return Ok(());
    }
    let timestamp = timestamp.ok_or(RobotError::InvalidTimestamp)?;
    let at: i64 = timestamp
        .parse()
        .map_err(|_| RobotError::InvalidTimestamp)?;
    if now_ms.abs_diff(at) > SIGN_WINDOW_MS {
        return Err(RobotError::InvalidTimestamp);
    }
    let sign = sign.ok_or(RobotError::SignNotMatch)?.replace(' ', "+");
    let expected = robot_sign(secret, timestamp);
    if bool::from(expected.as_bytes().ct_eq(sign.as_bytes())) {
        Ok(())
    } else {
        Err(RobotError::SignNotMatch)
    }
}

/// Parses a request body: empty → 缺少参数 json; not JSON → param error.
pub fn parse_body(body: &[u8]) -> Result<RobotMessage, RobotError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(RobotError::MissingBody);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| RobotError::Param(format!("body is not valid JSON: {e}")))?;
    parse_message(&value)
}

fn busy(err: &StoreError) -> RobotError {
    error!(error = %err, "store unavailable");
    RobotError::Busy("store unavailable; retry".into())
}

/// The robot-compatible ingest service.
#[derive(Clone)]
pub struct RobotIngest {
    store: Store,
    queue: JobQueue,
    clock: Arc<dyn Clock>,
}

impl RobotIngest {
    /// Robot ingest onto `queue`, checking timestamps against `clock`.
    pub fn new(store: Store, queue: JobQueue, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            queue,
            clock,
        }
    }

    /// Authenticates, checks the sign, parses the message and queues its alert
    /// event; returns the alert key. Nothing is queued on any error.
    pub async fn send(
        &self,
        integration_id: &str,
        params: &RobotParams,
        body: &[u8],
    ) -> Result<String, RobotError> {
        let token = params
            .access_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(RobotError::MissingToken)?;
        let integration = self
            .store
            .get_integration(integration_id)
            .await
            .map_err(|e| busy(&e))?
            .filter(|i| token_matches(i, token))
            .ok_or(RobotError::TokenNotExist)?;
        let now_ms = self.clock.now_ms();
        check_sign(
            token,
            params.timestamp.as_deref(),
            params.sign.as_deref(),
            now_ms,
        )?;
        let message = parse_body(body)?;
        let mut event = to_event(&message, integration_id, params, now_ms)?;
        if event.alert.status == AlertStatus::Firing && !message.at_user_ids.is_empty() {
            event.targets = self.targets_with(&integration, &event, &message).await?;
        }
        let mut events = [event];
        let keys = bound_and_queue(&self.queue, &mut events, now_ms)
            .await
            .map_err(|_| RobotError::Busy("could not queue the alert; retry".into()))?;
        let key = keys.into_iter().next().unwrap_or_default();
        info!(integration_id, key = %key, msgtype = %message.msgtype, "robot message queued");
        Ok(key)
    }

    /// Where the alert goes with the people it @mentions: what it would reach anyway
    /// (the routed policy's first layer, else the default targets) plus the
    /// mentioned DingTalk users: bound ones as their members (@mentioned, assigned),
    /// unbound ones by userId (the notifier records that they are not associated).
    async fn targets_with(
        &self,
        integration: &Integration,
        event: &AlertEvent,
        message: &RobotMessage,
    ) -> Result<Targets, RobotError> {
        let routes = self
            .store
            .get_routes(&integration.id)
            .await
            .map_err(|e| busy(&e))?;
        let routed = crate::domain::routing::route_policy(
            &routes,
            &event.alert.labels,
            event.alert.severity,
        )
        .is_some();
        // A routed policy adds its first layer to the incident's targets itself.
        let mut targets = if routed {
            Targets::default()
        } else {
            integration.default_targets.clone()
        };
        for user_id in &message.at_user_ids {
            let binding = self
                .store
                .binding_of_user(&integration.id, user_id)
                .await
                .map_err(|e| busy(&e))?;
            targets.add_person(user_id, binding.map(|b| b.member));
        }
        Ok(targets)
    }
}

#[cfg(test)]
#[path = "ingest_robot_tests.rs"]
mod tests;
