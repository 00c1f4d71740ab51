//! The bounds on the sizes a black-box probe sent.

use super::*;
use crate::domain::incident::{Alert, AlertStatus, Link, Severity};
use crate::domain::integration::Targets;

fn event() -> AlertEvent {
    AlertEvent {
        version: 1,
        integration_id: "int".into(),
        alert: Alert {
            key: "k".into(),
            status: AlertStatus::Firing,
            severity: Severity::Critical,
            title: "t".into(),
            description: String::new(),
            labels: BTreeMap::new(),
            links: Vec::new(),
            source: None,
            occurred_at: None,
        },
        targets: Targets::default(),
        truncated: Vec::new(),
        mention_mobiles: Vec::new(),
    }
}

#[test]
fn small_events_are_untouched() {
    let mut e = event();
    e.alert.labels.insert("service".into(), "payments".into());
    let before = e.clone();
    assert!(bound(&mut e).is_empty());
    assert_eq!(e, before);
}

#[test]
fn a_900k_title_is_cut_to_512_characters() {
    let mut e = event();
    e.alert.title = "告".repeat(900_000);
    let cut = bound(&mut e);
    assert_eq!(e.alert.title.chars().count(), TITLE_CHARS);
    assert_eq!(cut, ["title: cut to 512 characters"]);
    assert_eq!(e.truncated, cut);
}

#[test]
fn descriptions_labels_and_links_are_bounded() {
    let mut e = event();
    e.alert.description = "é".repeat(20_000);
    for n in 0..100 {
        e.alert
            .labels
            .insert(format!("l{n:03}"), "v".repeat(9 * 1024));
    }
    for n in 0..800 {
        e.alert.links.push(Link {
            title: "x".repeat(1024),
            url: format!("https://x.example/{n}"),
        });
    }
    e.targets.members = (0..80).map(|n| format!("m{n}@x.io")).collect();
    let cut = bound(&mut e);
    assert!(e.alert.description.len() <= DESCRIPTION_BYTES);
    assert!(
        e.alert.description.chars().all(|c| c == 'é'),
        "cut on a character boundary"
    );
    assert_eq!(e.alert.labels.len(), LABELS);
    assert!(
        e.alert
            .labels
            .iter()
            .all(|(k, v)| k.len() + v.len() <= LABEL_BYTES)
    );
    assert_eq!(e.alert.links.len(), LINKS);
    assert!(
        e.alert
            .links
            .iter()
            .all(|l| l.title.chars().count() <= LINK_TITLE_CHARS)
    );
    assert_eq!(e.targets.members.len(), TARGETS);
    assert_eq!(cut.len(), 6, "{cut:?}");
    let size = serde_json::to_string(&e).expect("json").len();
    assert!(
        size < 200 * 1024,
        "an incident item stays far under 400 KB: {size}"
    );
}

#[test]
fn future_times_are_replaced_by_the_time_of_receipt() {
    let now = 1_796_000_000_000;
    assert_eq!(event_time(now + 60_000, now), (now + 60_000, false));
    assert_eq!(
        event_time(now + MAX_CLOCK_SKEW_MS, now),
        (now + MAX_CLOCK_SKEW_MS, false)
    );
    assert_eq!(
        event_time(253_402_214_400_000, now),
        (now, true),
        "9999-12-31"
    );
    assert_eq!(event_time(now - 3_600_000, now), (now - 3_600_000, false));
}

#[test]
fn control_characters_and_oversized_targets_cannot_grow_the_item() {
    let mut e = event();
    e.alert.title = "a\u{1}b\nc".into();
    for n in 0..64 {
        e.alert
            .labels
            .insert(format!("l{n:02}"), "\u{1}".repeat(1000));
    }
    e.targets.chats = vec!["c".repeat(300), "cid==".into()];
    bound(&mut e);
    assert_eq!(e.alert.title, "abc");
    assert!(e.alert.labels.values().all(String::is_empty));
    assert_eq!(e.targets.chats, ["cid=="]);
    assert!(serde_json::to_string(&e).expect("json").len() <= EVENT_BYTES);
}

#[test]
fn the_serialised_event_fits_the_queue() {
    let mut e = event();
    e.alert.description = "\"".repeat(16 * 1024);
    for n in 0..64 {
        e.alert.labels.insert(format!("{n:0128}"), "\\".repeat(890));
    }
    for n in 0..20 {
        e.alert.links.push(Link {
            title: "\"".repeat(256),
            url: format!("https://x.example/{}{n}", "p".repeat(2000)),
        });
    }
    e.targets.members = (0..50)
        .map(|n| format!("{n}{}", "\"".repeat(250)))
        .collect();
    bound(&mut e);
    assert!(serde_json::to_string(&e).expect("json").len() <= EVENT_BYTES);
}

#[test]
fn redating_marks_the_event_once() {
    let now = 1_796_000_000_000;
    let mut e = event();
    e.alert.occurred_at = Some("9999-12-31T00:00:00Z".into());
    assert!(redate(&mut e, now));
    assert!(!redate(&mut e, now), "now within the window");
    assert_eq!(e.occurred_ms(0), now);
    assert_eq!(e.truncated, [REDATED_NOTE]);
}
