//! Storm folding on the in-memory counters at a fixed time.

use super::*;
use crate::domain::incident::{IncidentStatus, Severity};
use crate::domain::integration::IntegrationChanges;
use crate::render::fixtures::incident;
use crate::store::memory::MemoryStore;

const NOW: i64 = 1_796_000_001_000; // 1 s into a 5 s refresh slot

fn integration(card: bool) -> Integration {
    let body = serde_json::json!({"name": "Ops", "corp_id": "c", "agent_id": 1, "client_id": "app",
        "client_secret": "secret-secret", "aes_key": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
        "token": "tok123", "storm_threshold": 2});
    let mut integration = IntegrationChanges::for_create(&body)
        .and_then(|c| c.create("int".into(), "h".into(), "now"))
        .expect("valid");
    integration.card_template_id = card.then(|| "tpl".to_string());
    integration
}

fn numbered(n: u32, severity: Severity) -> Incident {
    let mut incident = incident("x");
    incident.id = format!("inc{n}");
    incident.title = format!("alert {n}");
    incident.severity = severity;
    incident.status = IncidentStatus::Triggered;
    incident
}

async fn fold(store: &MemoryStore, integration: &Integration, n: u32, severity: Severity) -> Fold {
    let control = StormControl {
        counters: store,
        ledger: store,
        now_ms: NOW,
    };
    control
        .fold(integration, &numbered(n, severity), "cid", "Ops")
        .await
        .expect("fold")
}

fn action(fold: &Fold) -> Option<&DigestAction> {
    match fold {
        Fold::Deliver => None,
        Fold::Folded { action, .. } => Some(action),
    }
}

#[tokio::test]
async fn past_the_threshold_cards_fold_and_update_at_most_once_a_slot() {
    let store = MemoryStore::new();
    let integration = integration(true);
    assert_eq!(
        fold(&store, &integration, 1, Severity::Critical).await,
        Fold::Deliver
    );
    assert_eq!(
        fold(&store, &integration, 2, Severity::Critical).await,
        Fold::Deliver
    );
    let third = fold(&store, &integration, 3, Severity::Critical).await;
    assert_eq!(action(&third), Some(&DigestAction::SendFirst));
    assert_eq!(
        action(&fold(&store, &integration, 4, Severity::Critical).await),
        Some(&DigestAction::Update)
    );
    let tail = fold(&store, &integration, 5, Severity::Critical).await;
    assert_eq!(
        action(&tail),
        Some(&DigestAction::RefreshAfter(Duration::from_secs(5)))
    );
    let sixth = fold(&store, &integration, 6, Severity::Critical).await;
    assert_eq!(action(&sixth), Some(&DigestAction::Nothing));
    let Fold::Folded { digest, .. } = sixth else {
        panic!("folded")
    };
    assert_eq!(digest.folded, 4);
    assert_eq!(digest.newest[0], "alert 6");
    let key = DeliveryKey {
        round: 0,
        incident_id: "inc6",
        kind: TargetKind::Chat,
        target: "cid",
    };
    let delivery = store.get_delivery(key).await.expect("read").expect("item");
    assert_eq!(delivery.channel, Some(Channel::Digest));
    assert_eq!(
        store.list_records("inc6").await.expect("records")[0].kind,
        RecordKind::Folded
    );
    let usage = store
        .month_usage("int", &month_of(NOW, "Asia/Shanghai"))
        .await
        .expect("usage");
    assert_eq!(
        (usage.folded, usage.total),
        (4, 0),
        "folds are not DingTalk calls"
    );
}

#[tokio::test]
async fn robot_digests_are_sent_once_a_window() {
    let store = MemoryStore::new();
    let integration = integration(false);
    for n in 1..=2 {
        assert_eq!(
            fold(&store, &integration, n, Severity::Warning).await,
            Fold::Deliver
        );
    }
    assert_eq!(
        action(&fold(&store, &integration, 3, Severity::Warning).await),
        Some(&DigestAction::SendFirst)
    );
    assert_eq!(
        action(&fold(&store, &integration, 4, Severity::Warning).await),
        Some(&DigestAction::Nothing)
    );
}

#[tokio::test]
async fn economy_mode_folds_info_alerts_from_80_percent() {
    let store = MemoryStore::new();
    let integration = integration(false);
    let month = month_of(NOW, "Asia/Shanghai");
    for _ in 0..integration.monthly_quota * 80 / 100 {
        store
            .add_usage("int", &month, "message", true)
            .await
            .expect("count");
    }
    assert_eq!(
        fold(&store, &integration, 1, Severity::Warning).await,
        Fold::Deliver
    );
    let info = fold(&store, &integration, 2, Severity::Info).await;
    assert_eq!(action(&info), Some(&DigestAction::SendFirst));
    let records = store.list_records("inc2").await.expect("records");
    assert!(
        records[0].detail.starts_with("economy mode"),
        "{}",
        records[0].detail
    );
}
