//! The storage ports' contract, as test functions run on every implementation:
//! the in-memory fakes (unit tests) and DynamoDB on moto (`tests/tests/it/conformance.rs`).
//! Each check uses fresh ids, so a shared table is fine.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use super::ports::{ChatDirectory, DeliveryLedger, RateCounters, TimelineEntry};
use super::{AlertApplied, IncidentBook, StoreError};
use crate::domain::chat::{ChatStatus, GroupChat};
use crate::domain::delivery::{
    Channel, DeliveryKey, DeliveryStep, StepOutcome, StepState, TargetKind,
};
use crate::domain::incident::{
    Alert, AlertEvent, AlertStatus, OperationRecord, RecordKind, Severity,
};

fn fresh(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// An installed chat for seeding a directory.
pub fn sample_chat(integration_id: &str, cid: &str) -> GroupChat {
    GroupChat {
        integration_id: integration_id.to_string(),
        open_conversation_id: cid.to_string(),
        title: Some("Ops".into()),
        status: ChatStatus::Installed,
        cool_app_code: Some("COOLAPP".into()),
        robot_code: None,
        operator: None,
        installed_at: None,
        uninstalled_at: None,
        updated_at: "2026-11-28T00:00:00Z".into(),
        status_event_ms: 1,
        title_event_ms: 1,
        problem: None,
    }
}

fn sent<'a>(step: DeliveryStep, reference: Option<&'a str>) -> StepOutcome<'a> {
    StepOutcome {
        step,
        state: StepState::Sent,
        channel: Channel::Card,
        reference,
        error: None,
    }
}

/// Claims are exclusive while leased, released claims can be taken again, and a
/// finished step is never claimed again.
pub async fn ledger(ledger: &dyn DeliveryLedger) {
    let incident = fresh("inc");
    let key = DeliveryKey {
        round: 0,
        incident_id: &incident,
        kind: TargetKind::Chat,
        target: "cid==",
    };
    let alert = DeliveryStep::Alert;
    assert!(ledger.claim_step(key, alert, 1_000, 60_000).await.unwrap());
    assert!(
        !ledger.claim_step(key, alert, 2_000, 60_000).await.unwrap(),
        "leased"
    );
    assert!(
        ledger.claim_step(key, alert, 70_000, 60_000).await.unwrap(),
        "lease expired"
    );
    ledger.release_step(key, "throttled").await.unwrap();
    assert!(
        ledger.claim_step(key, alert, 71_000, 60_000).await.unwrap(),
        "released"
    );
    ledger
        .finish_step(key, sent(alert, Some("track-1")))
        .await
        .unwrap();
    assert!(
        !ledger
            .claim_step(key, alert, 999_000, 60_000)
            .await
            .unwrap(),
        "done"
    );
    let resolved = DeliveryStep::Resolved;
    assert!(
        ledger
            .claim_step(key, resolved, 999_000, 60_000)
            .await
            .unwrap()
    );
    let failed = StepOutcome {
        state: StepState::Failed,
        channel: Channel::Robot,
        error: Some("refused"),
        ..sent(resolved, Some("ignored"))
    };
    ledger.finish_step(key, failed).await.unwrap();
    ledger.set_card_hash(key, "h1").await.unwrap();
    let delivery = ledger.get_delivery(key).await.unwrap().expect("stored");
    assert_eq!(delivery.kind, TargetKind::Chat);
    assert_eq!(delivery.alert_state, Some(StepState::Sent));
    assert_eq!(
        delivery.alert_ref.as_deref(),
        Some("track-1"),
        "only the alert step keeps a ref"
    );
    assert_eq!(delivery.resolved_state, Some(StepState::Failed));
    assert_eq!(delivery.channel, Some(Channel::Robot));
    assert_eq!(delivery.card_hash.as_deref(), Some("h1"));
    assert_eq!(delivery.last_error.as_deref(), Some("refused"));
    let user = DeliveryKey {
        round: 0,
        kind: TargetKind::User,
        target: "u1",
        ..key
    };
    assert!(ledger.claim_step(user, alert, 1, 10).await.unwrap());
    let mut listed = ledger.list_deliveries(&incident).await.unwrap();
    listed.sort_by_key(|d| d.kind.as_str());
    let kinds: Vec<_> = listed.iter().map(|d| (d.kind, d.target.as_str())).collect();
    assert_eq!(
        kinds,
        [(TargetKind::Chat, "cid=="), (TargetKind::User, "u1")]
    );
    assert!(
        ledger
            .get_delivery(DeliveryKey {
                round: 0,
                target: "none",
                ..key
            })
            .await
            .unwrap()
            .is_none()
    );
    records(ledger, &incident).await;
}

async fn records(ledger: &dyn DeliveryLedger, incident: &str) {
    let record = |detail: &str| OperationRecord {
        at: "2026-11-28T00:00:00Z".into(),
        kind: RecordKind::Sent,
        target: None,
        detail: detail.into(),
        actor: None,
    };
    ledger
        .add_record(incident, 2_000, &record("second"))
        .await
        .unwrap();
    ledger
        .add_record(incident, 1_000, &record("first"))
        .await
        .unwrap();
    let details: Vec<_> = ledger
        .list_records(incident)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.detail)
        .collect();
    assert_eq!(details, ["first", "second"], "oldest first");
    // Many records of several incidents at once (more than one BatchWriteItem).
    let other = format!("{incident}-other");
    let entries: Vec<TimelineEntry> = (0..30)
        .map(|i| TimelineEntry {
            incident_id: if i % 2 == 0 {
                incident.to_string()
            } else {
                other.clone()
            },
            at_ms: 3_000 + i,
            record: record(&format!("batched {i}")),
        })
        .collect();
    ledger.add_records(&entries).await.unwrap();
    let listed = ledger.list_records(incident).await.unwrap();
    assert_eq!(listed.len(), 17);
    assert_eq!(listed[2].detail, "batched 0");
    assert_eq!(listed[16].detail, "batched 28");
    assert_eq!(ledger.list_records(&other).await.unwrap().len(), 15);
}

/// Per-second slots stop at the limit; adaptive limits fall once per gap; usage
/// counts by field; marks are once; storm counts and digests accumulate.
pub async fn counters(counters: &dyn RateCounters) {
    let id = fresh("int");
    second_slots(counters, &id).await;
    adaptive_limits(counters, &id).await;
    usage_counts(counters, &id).await;
    marks_and_storms(counters, &id).await;
}

async fn second_slots(counters: &dyn RateCounters, id: &str) {
    let id = id.to_string();
    for _ in 0..3 {
        assert!(counters.take_second(&id, 42, 3).await.unwrap());
    }
    assert!(!counters.take_second(&id, 42, 3).await.unwrap(), "full");
    assert!(
        counters.take_second(&id, 43, 3).await.unwrap(),
        "next second"
    );
    // Several slots in one take: as many as are left, at most.
    assert_eq!(counters.take_slots(&id, 44, 5, 3).await.unwrap(), 3);
    assert_eq!(
        counters.take_slots(&id, 44, 5, 3).await.unwrap(),
        2,
        "what is left"
    );
    assert_eq!(counters.take_slots(&id, 44, 5, 3).await.unwrap(), 0, "full");
    assert_eq!(
        counters.take_slots(&id, 45, 5, 9).await.unwrap(),
        5,
        "at most the limit"
    );
}

async fn adaptive_limits(counters: &dyn RateCounters, id: &str) {
    let id = id.to_string();
    assert_eq!(counters.adaptive_limit(&id, "message").await.unwrap(), None);
    let learned = |limit, since_ms| crate::domain::budget::AdaptiveLimit { limit, since_ms };
    assert!(
        counters
            .lower_adaptive_limit(&id, "message", learned(12, 10_000), 1_000)
            .await
            .unwrap()
    );
    assert!(
        !counters
            .lower_adaptive_limit(&id, "message", learned(8, 10_500), 1_000)
            .await
            .unwrap(),
        "one decrease per gap"
    );
    assert!(
        counters
            .lower_adaptive_limit(&id, "message", learned(8, 11_001), 1_000)
            .await
            .unwrap()
    );
    assert_eq!(
        counters.adaptive_limit(&id, "message").await.unwrap(),
        Some(learned(8, 11_001))
    );
    assert_eq!(
        counters.adaptive_limit(&id, "card").await.unwrap(),
        None,
        "per API"
    );
}

async fn usage_counts(counters: &dyn RateCounters, id: &str) {
    let id = id.to_string();
    assert_eq!(
        counters
            .add_usage(&id, "2026-11", "message", true)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        counters
            .add_usage(&id, "2026-11", "card", true)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        counters
            .add_usage(&id, "2026-11", "folded", false)
            .await
            .unwrap(),
        2
    );
    counters
        .add_usage(&id, "2026-11", "throttle_wait", false)
        .await
        .unwrap();
    counters
        .add_usage(&id, "2026-11", "suppressed", false)
        .await
        .unwrap();
    let usage = counters.month_usage(&id, "2026-11").await.unwrap();
    assert_eq!(
        (
            usage.total,
            usage.folded,
            usage.throttle_waits,
            usage.suppressed
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(usage.by_kind.get("message"), Some(&1));
    assert_eq!(usage.by_kind.get("card"), Some(&1));
    // A batch's counts in one write.
    let counts = std::collections::BTreeMap::from([
        ("message".to_string(), 3),
        ("throttle_wait".to_string(), 2),
    ]);
    assert_eq!(
        counters
            .add_usage_counts(&id, "2026-11", &counts, 3)
            .await
            .unwrap(),
        5
    );
    let usage = counters.month_usage(&id, "2026-11").await.unwrap();
    assert_eq!((usage.total, usage.throttle_waits), (5, 3));
    assert_eq!(usage.by_kind.get("message"), Some(&4));
    assert_eq!(counters.month_usage(&id, "2026-12").await.unwrap().total, 0);
}

async fn marks_and_storms(counters: &dyn RateCounters, id: &str) {
    let id = id.to_string();
    assert!(counters.mark_once(&id, "THRESHOLD#80", 10).await.unwrap());
    assert!(!counters.mark_once(&id, "THRESHOLD#80", 10).await.unwrap());
    assert_eq!(
        counters
            .count_chat_incident(&id, "cid", 7, 10)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        counters
            .count_chat_incident(&id, "cid", 7, 10)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        counters
            .count_chat_incident(&id, "cid", 8, 10)
            .await
            .unwrap(),
        1
    );
    assert!(counters.get_digest(&id, "cid", 7).await.unwrap().is_none());
    for n in 1..=7 {
        let digest = counters
            .push_digest(&id, "cid", 7, &format!("t{n}"), 10)
            .await
            .unwrap();
        assert_eq!(digest.folded, n);
    }
    let digest = counters
        .get_digest(&id, "cid", 7)
        .await
        .unwrap()
        .expect("digest");
    assert_eq!(digest.folded, 7);
    assert_eq!(
        digest.newest,
        ["t7", "t6", "t5", "t4", "t3"],
        "newest five, newest first"
    );
}

/// Lists the seeded chat (`cid` of `integration_id`), marks a problem on it, and
/// ignores a problem for an unknown chat.
pub async fn chats(chats: &dyn ChatDirectory, integration_id: &str, cid: &str) {
    let listed = chats.list_chats(integration_id).await.unwrap();
    assert!(
        listed
            .iter()
            .any(|c| c.open_conversation_id == cid && c.status == ChatStatus::Installed)
    );
    chats
        .mark_chat_problem(integration_id, cid, "robot removed", "2026-11-28T01:00:00Z")
        .await
        .unwrap();
    chats
        .mark_chat_problem(integration_id, "no-such-chat", "x", "2026-11-28T01:00:00Z")
        .await
        .unwrap();
    let listed = chats.list_chats(integration_id).await.unwrap();
    let chat = listed
        .iter()
        .find(|c| c.open_conversation_id == cid)
        .expect("listed");
    assert_eq!(chat.problem.as_deref(), Some("robot removed"));
    assert!(
        !listed
            .iter()
            .any(|c| c.open_conversation_id == "no-such-chat")
    );
}

fn alert_event(integration_id: &str, key: &str, status: AlertStatus, title: &str) -> AlertEvent {
    AlertEvent {
        version: 1,
        integration_id: integration_id.into(),
        alert: Alert {
            key: key.into(),
            status,
            severity: Severity::Critical,
            title: title.into(),
            description: String::new(),
            labels: Default::default(),
            links: Vec::new(),
            source: None,
            occurred_at: None,
        },
        targets: Default::default(),
        truncated: Vec::new(),
        mention_mobiles: Vec::new(),
    }
}

/// Alert events open, update, resolve and reopen incidents; older events change
/// nothing; replacing checks the version.
pub async fn incident_book(book: &dyn IncidentBook) {
    let id = fresh("int");
    let new_id = || uuid::Uuid::new_v4().simple().to_string();
    let apply = |status, title: &'static str, at_ms: i64| {
        let event = alert_event(&id, "disk", status, title);
        let new_id = &new_id;
        async move {
            book.apply_alert(&event, at_ms, "2026-11-28T00:00:00Z", new_id, None)
                .await
                .unwrap()
        }
    };
    let AlertApplied::Opened(opened) = apply(AlertStatus::Firing, "disk full", 1_000).await else {
        panic!("opens")
    };
    assert!(matches!(
        apply(AlertStatus::Firing, "disk full", 2_000).await,
        AlertApplied::Updated { changed: false, .. }
    ));
    let AlertApplied::Updated {
        incident,
        changed: true,
    } = apply(AlertStatus::Firing, "disk fuller", 3_000).await
    else {
        panic!("updates")
    };
    assert_eq!(
        (incident.id.as_str(), incident.title.as_str()),
        (opened.id.as_str(), "disk fuller")
    );
    assert_eq!(
        apply(AlertStatus::Firing, "old", 500).await,
        AlertApplied::Stale
    );
    let AlertApplied::Resolved(done) = apply(AlertStatus::Resolved, "", 4_000).await else {
        panic!("resolves")
    };
    assert!(matches!(
        apply(AlertStatus::Resolved, "", 4_000).await,
        AlertApplied::AlreadyResolved(_)
    ));
    let stored = book.get_incident(&opened.id).await.unwrap().unwrap();
    assert_eq!(stored, done);
    let AlertApplied::Opened(again) = apply(AlertStatus::Firing, "disk full", 5_000).await else {
        panic!("reopens as a new incident")
    };
    assert_ne!(again.id, opened.id);
    let other = alert_event(&id, "never", AlertStatus::Resolved, "");
    assert_eq!(
        book.apply_alert(&other, 1_000, "now", &new_id, None)
            .await
            .unwrap(),
        AlertApplied::NothingOpen
    );
    let mut next = again.clone();
    next.version += 1;
    next.title = "edited".into();
    book.replace_incident(&next, again.version).await.unwrap();
    assert_eq!(
        book.replace_incident(&next, again.version).await,
        Err(StoreError::Conflict),
        "a stale version"
    );
    assert_eq!(
        book.get_incident(&again.id).await.unwrap().unwrap().title,
        "edited"
    );
    assert_eq!(book.get_incident("none").await.unwrap(), None);
}
