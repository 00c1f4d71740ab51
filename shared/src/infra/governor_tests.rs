//! The governor on the in-memory counters with a fixed clock.

use super::*;
use crate::clock::FixedClock;
use crate::infra::metrics::RecordedMetrics;
use crate::store::memory::MemoryStore;

const T0: i64 = 1_796_000_000_000; // a second boundary, mid-month

fn budget(qps: u32, monthly_quota: u64) -> Budget<'static> {
    Budget {
        integration_id: "int",
        qps,
        monthly_quota,
        timezone: "Asia/Shanghai",
    }
}

fn governor(now_ms: i64) -> (Governor, Arc<MemoryStore>, Arc<RecordedMetrics>) {
    let store = Arc::new(MemoryStore::new());
    let metrics = Arc::new(RecordedMetrics::default());
    let mut governor = Governor::new(
        store.clone(),
        Arc::new(FixedClock::at_ms(now_ms)),
        metrics.clone(),
    );
    governor.max_wait = Duration::ZERO;
    (governor, store, metrics)
}

#[tokio::test]
async fn grants_up_to_the_headroom_then_throttles() {
    let (governor, store, metrics) = governor(T0 + 100);
    for _ in 0..4 {
        assert_eq!(
            governor
                .acquire(budget(5, 1_000), "message", Priority::Normal)
                .await
                .ok(),
            Some(T0 / 1000)
        );
    }
    let refused = governor
        .acquire(budget(5, 1_000), "message", Priority::Normal)
        .await;
    assert!(
        matches!(refused, Err(BudgetError::QpsLimited)),
        "{refused:?}"
    );
    let usage = store
        .month_usage("int", &month_of(T0, "Asia/Shanghai"))
        .await
        .expect("usage");
    assert_eq!((usage.total, usage.throttle_waits), (4, 1));
    assert_eq!(usage.by_kind.get("message"), Some(&4));
    assert_eq!(metrics.total("DingTalkCalls"), 4.0);
    assert_eq!(metrics.total("ThrottleWaits"), 1.0);
    assert_eq!(
        governor.month_total_seen("int", &month_of(T0, "Asia/Shanghai")),
        Some(4)
    );
}

#[tokio::test]
async fn no_call_starts_in_the_last_100_ms_of_a_second() {
    let (governor, _, _) = governor(T0 + 950);
    let refused = governor
        .acquire(budget(20, 1_000), "card", Priority::Normal)
        .await;
    assert!(
        matches!(refused, Err(BudgetError::QpsLimited)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_reserve_is_kept_for_critical_alerts() {
    let (governor, store, metrics) = governor(T0);
    let month = month_of(T0, "Asia/Shanghai");
    for _ in 0..9 {
        store
            .add_usage("int", &month, "message", true)
            .await
            .expect("count");
    }
    let normal = governor
        .acquire(budget(20, 10), "message", Priority::Normal)
        .await;
    assert!(
        matches!(normal, Err(BudgetError::QuotaReserved)),
        "{normal:?}"
    );
    assert_eq!(metrics.total("Suppressed"), 1.0);
    assert!(
        governor
            .acquire(budget(20, 10), "message", Priority::Critical)
            .await
            .is_ok()
    );
    let exhausted = governor
        .acquire(budget(20, 10), "message", Priority::Critical)
        .await;
    assert!(
        matches!(exhausted, Err(BudgetError::QuotaExhausted)),
        "{exhausted:?}"
    );
    assert_eq!(
        store
            .month_usage("int", &month)
            .await
            .expect("usage")
            .suppressed,
        1
    );
}

#[tokio::test]
async fn a_delayed_call_takes_a_slot_in_the_current_second() {
    let (governor, store, _) = governor(T0 + 2_300);
    let now = (T0 + 2_300) / 1000;
    assert_eq!(
        governor
            .still_in_window(budget(5, 100), "message", now)
            .await
            .ok(),
        Some(now)
    );
    assert_eq!(
        governor
            .still_in_window(budget(5, 100), "message", now - 1)
            .await
            .ok(),
        Some(now)
    );
    assert!(
        store.take_second("int", now, 4).await.expect("slot"),
        "one of four slots used"
    );
}

#[tokio::test]
async fn a_refusal_lowers_that_apis_limit_for_every_instance_and_probing_restores_it() {
    let store = Arc::new(MemoryStore::new());
    let clock = FixedClock::at_ms(T0 + 100);
    let instance = || {
        let mut governor = Governor::new(
            store.clone(),
            Arc::new(clock.clone()),
            Arc::new(RecordedMetrics::default()),
        );
        governor.max_wait = Duration::ZERO;
        governor
    };
    let (one, other) = (instance(), instance());
    let granted = |g: &Governor, kind: &'static str| {
        let g = g.clone();
        async move {
            let mut n = 0;
            while g
                .acquire(budget(20, 100_000), kind, Priority::Critical)
                .await
                .is_ok()
            {
                n += 1;
            }
            n
        }
    };
    assert_eq!(
        granted(&one, "message").await,
        18,
        "configured: 20 less headroom"
    );
    one.refused(budget(20, 100_000), "message")
        .await
        .expect("learns");
    // A second refusal in the same second (another instance) does not halve again.
    other
        .refused(budget(20, 100_000), "message")
        .await
        .expect("learns");
    clock.advance_ms(1_000);
    assert_eq!(
        granted(&other, "message").await,
        9,
        "lowered for every instance"
    );
    clock.advance_ms(1_000);
    assert_eq!(
        granted(&one, "card").await,
        18,
        "other APIs keep the configured limit"
    );
    clock.advance_ms(31_000);
    assert_eq!(granted(&one, "message").await, 10, "one more after 30 s");
    clock.advance_ms(600_000);
    assert_eq!(
        granted(&one, "message").await,
        18,
        "never above the configured limit"
    );
}
