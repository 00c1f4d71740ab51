//! The error→record table and settling on the in-memory ledger.

use super::*;
use crate::domain::chat::GroupChat;
use crate::store::conformance::sample_chat;
use crate::store::memory::MemoryStore;

fn claimed(kind: TargetKind) -> Claimed<'static> {
    Claimed {
        incident_id: "inc",
        round: 0,
        kind,
        target: "cid",
        label: "Ops",
        step: DeliveryStep::Alert,
        channel: Channel::Card,
    }
}

async fn settled(store: &MemoryStore, kind: TargetKind, outcome: SendResult) -> Settled {
    let key = claimed(kind).key();
    assert!(
        store
            .claim_step(key, DeliveryStep::Alert, 1, 60_000)
            .await
            .expect("claim")
    );
    let (settled, record) = settle_step(store, store, "int", 5, claimed(kind), outcome)
        .await
        .expect("settles");
    if let Some(record) = record {
        best_effort_record(store, "inc", 5, &record).await;
    }
    settled
}

fn code(text: &str) -> String {
    text.into()
}

#[test]
fn each_failure_class_has_its_record_and_fix() {
    let cases = [
        (
            DingTalkError::QuotaReserved,
            RecordKind::Suppressed,
            "critical alerts",
        ),
        (
            DingTalkError::QuotaExhausted { code: code("x") },
            RecordKind::QuotaExhausted,
            "resumes on the 1st",
        ),
        (
            DingTalkError::InvalidTarget {
                code: code("x"),
                message: code("m"),
            },
            RecordKind::Failed,
            "reinstall the cool app",
        ),
        (
            DingTalkError::PermissionDenied {
                code: code("x"),
                required_scopes: vec![],
            },
            RecordKind::Failed,
            "permission",
        ),
        (
            DingTalkError::InvalidCredentials { code: code("x") },
            RecordKind::Failed,
            "Client Secret",
        ),
        (
            DingTalkError::Rejected {
                status: 400,
                code: code("x"),
                message: code("m"),
            },
            RecordKind::Failed,
            "refused the request",
        ),
    ];
    for (err, kind, fix) in cases {
        let (got, text) = failure_record(&err);
        assert_eq!(got, kind, "{err}");
        assert!(text.contains(fix), "{err}: {text}");
    }
}

#[tokio::test]
async fn sent_steps_are_done_with_their_reference() {
    let store = MemoryStore::new();
    assert_eq!(
        settled(&store, TargetKind::Chat, Ok("track".into())).await,
        Settled::Sent
    );
    let delivery = store
        .get_delivery(claimed(TargetKind::Chat).key())
        .await
        .expect("read")
        .expect("item");
    assert_eq!(delivery.alert_state, Some(StepState::Sent));
    assert_eq!(delivery.alert_ref.as_deref(), Some("track"));
    let records = store.list_records("inc").await.expect("records");
    assert_eq!(records[0].kind, RecordKind::Sent);
    assert_eq!(records[0].detail, "card delivered (chat)");
}

#[tokio::test]
async fn retryable_failures_release_the_claim() {
    let store = MemoryStore::new();
    let outcome = Err(DingTalkError::QpsLimited {
        code: code("throttled"),
    });
    assert!(
        matches!(settled(&store, TargetKind::User, outcome).await, Settled::Retry(r) if r.starts_with("Ops:"))
    );
    let key = claimed(TargetKind::User).key();
    assert!(
        store
            .claim_step(key, DeliveryStep::Alert, 2, 60_000)
            .await
            .expect("claim"),
        "claimable again"
    );
    assert!(store.list_records("inc").await.expect("records").is_empty());
}

#[tokio::test]
async fn a_refusing_group_is_marked_and_never_retried() {
    let store = MemoryStore::new();
    let chat: GroupChat = sample_chat("int", "cid");
    store.put_chat(chat).expect("seed");
    let outcome = Err(DingTalkError::InvalidTarget {
        code: code("robot.notInGroup"),
        message: code("gone"),
    });
    assert_eq!(
        settled(&store, TargetKind::Chat, outcome).await,
        Settled::Failed { chat_problem: true }
    );
    let chats = store.list_chats("int").await.expect("chats");
    assert!(
        chats[0]
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("robot.notInGroup"))
    );
    let key = claimed(TargetKind::Chat).key();
    assert!(
        !store
            .claim_step(key, DeliveryStep::Alert, 2, 60_000)
            .await
            .expect("claim"),
        "given up for good"
    );
    assert_eq!(
        store.list_records("inc").await.expect("records")[0].kind,
        RecordKind::Failed
    );
}

#[tokio::test]
async fn suppressed_people_are_not_a_chat_problem() {
    let store = MemoryStore::new();
    let outcome = Err(DingTalkError::QuotaReserved);
    assert_eq!(
        settled(&store, TargetKind::User, outcome).await,
        Settled::Failed {
            chat_problem: false
        }
    );
    assert_eq!(
        store.list_records("inc").await.expect("records")[0].kind,
        RecordKind::Suppressed
    );
}
