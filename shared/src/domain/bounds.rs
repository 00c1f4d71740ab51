//! Alert bounds (ARCHITECTURE.md §5.8): whatever is accepted can be stored and
//! delivered. Oversized fields are cut, not refused (Alertmanager drops a refused
//! alert), and what was cut is named so the incident can record it. An event dated
//! more than 5 minutes ahead is re-dated to the time of receipt, so a bad clock
//! cannot freeze an incident.

use std::collections::BTreeMap;

use super::incident::AlertEvent;

/// Longest title, in characters.
pub const TITLE_CHARS: usize = 512;
/// Longest description, in bytes.
pub const DESCRIPTION_BYTES: usize = 16 * 1024;
/// Most labels kept.
pub const LABELS: usize = 64;
/// Longest label (name and value together), in bytes.
pub const LABEL_BYTES: usize = 1024;
/// Longest label name, in bytes.
pub const LABEL_NAME_BYTES: usize = 128;
/// Most links kept.
pub const LINKS: usize = 20;
/// Longest link title, in characters.
pub const LINK_TITLE_CHARS: usize = 256;
/// Longest link URL, in bytes (a longer link is dropped: a cut URL is a wrong URL).
pub const LINK_URL_BYTES: usize = 2048;
/// Longest source name, in characters.
pub const SOURCE_CHARS: usize = 64;
/// Most targets of each kind.
pub const TARGETS: usize = 50;
/// Longest target entry (openConversationId, email, userId), in bytes.
pub const TARGET_BYTES: usize = 256;
/// Most targets of each kind an incident keeps over all its events.
pub const INCIDENT_TARGETS: usize = 100;
/// Largest serialised event: under SQS's 256 KiB with room for the envelope.
pub const EVENT_BYTES: usize = 192 * 1024;
/// How far ahead of now an event time may be, in ms.
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// `text` cut to at most `max` bytes on a character boundary.
pub fn cut_bytes(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Cuts `text` to `max` characters; true when it was longer.
fn cut_chars(text: &mut String, max: usize) -> bool {
    match text.char_indices().nth(max) {
        Some((end, _)) => {
            text.truncate(end);
            true
        }
        None => false,
    }
}

/// Cuts `text` to `max` bytes; true when it was longer.
fn cut_bytes_in_place(text: &mut String, max: usize) -> bool {
    let end = cut_bytes(text, max).len();
    let cut = end < text.len();
    text.truncate(end);
    cut
}

fn bound_labels(labels: &mut BTreeMap<String, String>, cut: &mut Vec<String>) {
    if labels.len() > LABELS {
        cut.push(format!("labels: {} of {} kept", LABELS, labels.len()));
        *labels = std::mem::take(labels).into_iter().take(LABELS).collect();
    }
    let mut shortened = 0;
    let bounded: BTreeMap<String, String> = std::mem::take(labels)
        .into_iter()
        .map(|(mut name, mut value)| {
            let mut changed = cut_bytes_in_place(&mut name, LABEL_NAME_BYTES);
            changed |= cut_bytes_in_place(&mut value, LABEL_BYTES - name.len());
            shortened += usize::from(changed);
            (name, value)
        })
        .collect();
    if shortened > 0 {
        cut.push(format!("labels: {shortened} cut to {LABEL_BYTES} bytes"));
    }
    *labels = bounded;
}

/// Removes control characters (line breaks and tabs too, unless `keep_breaks`);
/// true when any was removed.
fn strip_controls(text: &mut String, keep_breaks: bool) -> bool {
    let before = text.len();
    text.retain(|c| !c.is_control() || (keep_breaks && matches!(c, '\n' | '\t')));
    text.len() < before
}

/// Removes control characters from the alert's text fields; names what changed.
fn printable_fields(event: &mut AlertEvent, cut: &mut Vec<String>) {
    let alert = &mut event.alert;
    let mut changed = strip_controls(&mut alert.title, false);
    changed |= strip_controls(&mut alert.description, true);
    let labels = std::mem::take(&mut alert.labels);
    for (mut name, mut value) in labels {
        changed |= strip_controls(&mut name, false) | strip_controls(&mut value, false);
        alert.labels.insert(name, value);
    }
    for link in &mut alert.links {
        changed |= strip_controls(&mut link.title, false) | strip_controls(&mut link.url, false);
    }
    if let Some(source) = &mut alert.source {
        changed |= strip_controls(source, false);
    }
    if changed {
        cut.push("control characters removed".into());
    }
}

/// Cuts the serialised event under [`EVENT_BYTES`]: the description first, then labels, then links.
fn fit_serialised(event: &mut AlertEvent, cut: &mut Vec<String>) {
    let size = |e: &AlertEvent| serde_json::to_string(e).map(|t| t.len()).unwrap_or(0);
    let before = size(event);
    if before <= EVENT_BYTES {
        return;
    }
    while size(event) > EVENT_BYTES {
        let alert = &mut event.alert;
        if !alert.description.is_empty() {
            let half = alert.description.len() / 2;
            cut_bytes_in_place(&mut alert.description, half);
        } else if alert.labels.pop_last().is_some() || alert.links.pop().is_some() {
        } else {
            break;
        }
    }
    cut.push(format!(
        "event: {before} bytes serialised, cut to fit the queue"
    ));
}

/// Cuts the event to the bounds; returns what was cut (also kept in `truncated`).
pub fn bound(event: &mut AlertEvent) -> Vec<String> {
    let mut cut = Vec::new();
    printable_fields(event, &mut cut);
    let alert = &mut event.alert;
    if cut_chars(&mut alert.title, TITLE_CHARS) {
        cut.push(format!("title: cut to {TITLE_CHARS} characters"));
    }
    let before = alert.description.len();
    if cut_bytes_in_place(&mut alert.description, DESCRIPTION_BYTES) {
        cut.push(format!(
            "description: {before} bytes cut to {DESCRIPTION_BYTES}"
        ));
    }
    bound_labels(&mut alert.labels, &mut cut);
    let links = alert.links.len();
    alert.links.retain(|l| l.url.len() <= LINK_URL_BYTES);
    alert.links.truncate(LINKS);
    if alert.links.len() < links {
        cut.push(format!("links: {} of {links} kept", alert.links.len()));
    }
    let mut titles = 0;
    for link in &mut alert.links {
        titles += usize::from(cut_chars(&mut link.title, LINK_TITLE_CHARS));
    }
    if titles > 0 {
        cut.push(format!(
            "links: {titles} titles cut to {LINK_TITLE_CHARS} characters"
        ));
    }
    if alert
        .source
        .as_mut()
        .is_some_and(|s| cut_chars(s, SOURCE_CHARS))
    {
        cut.push(format!("source: cut to {SOURCE_CHARS} characters"));
    }
    let targets = &mut event.targets;
    for (name, list) in [
        ("chats", &mut targets.chats),
        ("members", &mut targets.members),
        ("dingtalk_user_ids", &mut targets.dingtalk_user_ids),
        ("mention_mobiles", &mut event.mention_mobiles),
    ] {
        let given = list.len();
        list.retain(|t| t.len() <= TARGET_BYTES);
        list.truncate(TARGETS);
        if list.len() < given {
            cut.push(format!("targets.{name}: {} of {given} kept", list.len()));
        }
    }
    // Producers may fill `truncated` themselves: it is bounded like the rest.
    event.truncated.truncate(LINKS);
    for note in &mut event.truncated {
        cut_chars(note, LINK_TITLE_CHARS);
    }
    event.truncated.extend(cut.iter().cloned());
    fit_serialised(event, &mut cut);
    if let Some(last) = cut.last().filter(|c| c.starts_with("event:")) {
        event.truncated.push(last.clone());
    }
    cut
}

/// The note that says an event was re-dated (kept in `truncated`).
pub const REDATED_NOTE: &str = "occurred_at: more than 5 minutes ahead, re-dated to its receipt";

/// Re-dates an event dated more than [`MAX_CLOCK_SKEW_MS`] after `received_ms` to
/// `received_ms` (ingest: the request's time; the notifier: the message's send time).
pub fn redate(event: &mut AlertEvent, received_ms: i64) -> bool {
    let occurred = event.occurred_ms(received_ms);
    if !event_time(occurred, received_ms).1 {
        return false;
    }
    event.alert.occurred_at =
        chrono::DateTime::from_timestamp_millis(received_ms).map(|t| t.to_rfc3339());
    if !event.truncated.iter().any(|n| n == REDATED_NOTE) {
        event.truncated.push(REDATED_NOTE.to_string());
    }
    true
}

/// The event time to apply: `occurred_ms`, unless it is more than
/// [`MAX_CLOCK_SKEW_MS`] ahead of `now_ms`; then `now_ms` and true (skewed).
pub fn event_time(occurred_ms: i64, now_ms: i64) -> (i64, bool) {
    if occurred_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        (now_ms, true)
    } else {
        (occurred_ms, false)
    }
}

#[cfg(test)]
#[path = "bounds_tests.rs"]
mod tests;
