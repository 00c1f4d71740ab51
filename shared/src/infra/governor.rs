//! The API budget governor (ARCHITECTURE.md §5.4): every DingTalk call that counts
//! against the app's quota goes through [`Governor::acquire`] first. It keeps the app
//! inside its calls per second (a conditional counter per second, exact across every
//! Lambda instance; a full second is waited out), its monthly quota (reset on the 1st
//! in the integration's time zone), and keeps the last part of the month for critical
//! alerts. When DingTalk still refuses a call for QPS (its limit for one API can be
//! lower than the edition's), the governor learns a lower limit for that API,
//! shared through the store, and probes back up slowly. Counts and waits go to the
//! metrics sink.
//!
//! Store work per call is kept small: concurrent calls take their second's slots
//! together ([`SlotPool`]); the month's total is read again only when other
//! instances could have brought it near the reserve since the last read
//! ([`month_read_needed`]); and inside [`Governor::batched_usage`] (an SQS batch)
//! the month's counters are added up in memory and written once.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;
use crate::domain::budget::{
    AdaptiveLimit, Budget, DECREASE_GAP_MS, Priority, allowed_per_second, effective_limit, lowered,
    may_start_with_tail, month_of, month_read_needed, near_reserve, second_tail_ms,
};
use crate::infra::metrics::{MetricsSink, emit_now};
use crate::infra::slot_pool::SlotPool;
use crate::store::StoreError;
use crate::store::ports::RateCounters;

/// Why the governor refused a call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BudgetError {
    /// The month's quota is used up.
    #[error("the month's call quota is used up")]
    QuotaExhausted,
    /// The month is in its reserve, kept for critical alerts.
    #[error("the rest of the month is kept for critical alerts")]
    QuotaReserved,
    /// No free second within the wait allowed.
    #[error("no free second within the wait allowed")]
    QpsLimited,
    /// The counters could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The governor.
#[derive(Clone)]
pub struct Governor {
    counters: Arc<dyn RateCounters>,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn MetricsSink>,
    /// Longest wait for a free second before the call is refused as throttled.
    pub max_wait: Duration,
    /// The month total this instance last read or wrote, per integration.
    seen: Arc<Mutex<HashMap<String, MonthSeen>>>,
    /// Month counters added up in batches and not yet written: (integration, month) → …
    pending: Arc<Mutex<HashMap<(String, String), PendingUsage>>>,
    /// Per-second slots, taken together by concurrent calls.
    slots: SlotPool,
    /// Recent duration of a governed call, request to response (ms, moving average).
    call_ms: Arc<std::sync::atomic::AtomicI64>,
    /// Learned per-API limits, as last read (and when): (integration, kind) → …
    learned: Arc<Mutex<HashMap<(String, String), LearnedRead>>>,
}

/// What this instance knows of a month's total, and when it last read it.
struct MonthSeen {
    month: String,
    total: u64,
    read_ms: i64,
}

/// Month counters not yet written.
#[derive(Default)]
struct PendingUsage {
    counts: BTreeMap<String, u64>,
    counted: u64,
}

tokio::task_local! {
    /// Set inside [`Governor::batched_usage`]: month counters wait for its end.
    static BATCHED_USAGE: ();
}

/// A learned limit as read (none: the configured one applies), and when.
type LearnedRead = (Option<AdaptiveLimit>, i64);

/// How long a learned limit read from the store is used before it is read again.
const LEARNED_FRESH_MS: i64 = 2_000;

impl Governor {
    /// A governor on `counters`, reporting to `metrics`.
    pub fn new(
        counters: Arc<dyn RateCounters>,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn MetricsSink>,
    ) -> Self {
        Self {
            slots: SlotPool::new(counters.clone()),
            call_ms: Arc::default(),
            counters,
            clock,
            metrics,
            max_wait: Duration::from_secs(3),
            seen: Arc::default(),
            pending: Arc::default(),
            learned: Arc::default(),
        }
    }

    /// The month's call total as of this instance's last counted call (calls by other
    /// instances since then are not in it), so threshold checks need no read of their own.
    pub fn month_total_seen(&self, integration_id: &str, month: &str) -> Option<u64> {
        self.seen_read(integration_id, month)
            .map(|(total, _)| total)
    }

    /// The total known for `month` and when it was read.
    fn seen_read(&self, integration_id: &str, month: &str) -> Option<(u64, i64)> {
        let seen = self.seen.lock().ok()?;
        seen.get(integration_id)
            .filter(|s| s.month == month)
            .map(|s| (s.total, s.read_ms))
    }

    /// Remembers a total just read from the store (plus what waits to be written).
    fn remember(&self, integration_id: &str, month: &str, stored: u64) {
        let pending = self
            .pending
            .lock()
            .ok()
            .and_then(|p| {
                p.get(&(integration_id.to_string(), month.to_string()))
                    .map(|u| u.counted)
            })
            .unwrap_or(0);
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(
                integration_id.to_string(),
                MonthSeen {
                    month: month.to_string(),
                    total: stored + pending,
                    read_ms: self.clock.now_ms(),
                },
            );
        }
    }

    /// The month's total: the one known, unless other instances could have brought
    /// it near the reserve since it was read.
    async fn month_used(&self, budget: Budget<'_>, month: &str) -> Result<u64, StoreError> {
        let id = budget.integration_id;
        let now_ms = self.clock.now_ms();
        if let Some((total, read_ms)) = self.seen_read(id, month)
            && !month_read_needed(total, now_ms - read_ms, &budget)
        {
            return Ok(total);
        }
        let stored = self.counters.month_usage(id, month).await?.total;
        self.remember(id, month, stored);
        Ok(self.month_total_seen(id, month).unwrap_or(stored))
    }

    /// Adds one to a month counter: now, or at the end of the batch inside
    /// [`Self::batched_usage`] unless the month is near its reserve.
    async fn count(
        &self,
        budget: Budget<'_>,
        month: &str,
        field: &str,
        counted: bool,
    ) -> Result<(), StoreError> {
        let integration_id = budget.integration_id;
        let known = self.month_total_seen(integration_id, month).unwrap_or(0);
        if BATCHED_USAGE.try_with(|_| ()).is_err() || near_reserve(known, &budget) {
            let total = self
                .counters
                .add_usage(integration_id, month, field, counted)
                .await?;
            if counted {
                self.remember(integration_id, month, total);
            }
            return Ok(());
        }
        if let Ok(mut pending) = self.pending.lock() {
            let usage = pending
                .entry((integration_id.to_string(), month.to_string()))
                .or_default();
            *usage.counts.entry(field.to_string()).or_default() += 1;
            usage.counted += u64::from(counted);
        }
        if counted && let Ok(mut seen) = self.seen.lock() {
            seen.entry(integration_id.to_string())
                .and_modify(|s| s.total += u64::from(s.month == month));
        }
        Ok(())
    }

    /// Runs `work` (an SQS batch) with the month counters of its calls added up in
    /// memory, then writes them: one write per integration and month.
    pub async fn batched_usage<F: Future>(&self, work: F) -> F::Output {
        let output = BATCHED_USAGE.scope((), work).await;
        self.flush_usage().await;
        output
    }

    /// Writes the month counters added up so far; what fails stays for the next flush.
    pub async fn flush_usage(&self) {
        let drained: Vec<_> = self
            .pending
            .lock()
            .map(|mut p| p.drain().collect())
            .unwrap_or_default();
        for ((id, month), usage) in drained {
            match self
                .counters
                .add_usage_counts(&id, &month, &usage.counts, usage.counted)
                .await
            {
                Ok(total) => self.remember(&id, &month, total),
                Err(err) => {
                    tracing::warn!(integration_id = %id, error = %err, "could not write the month's counters; kept for the next batch");
                    if let Ok(mut pending) = self.pending.lock() {
                        let kept = pending.entry((id, month)).or_default();
                        kept.counted += usage.counted;
                        for (field, count) in usage.counts {
                            *kept.counts.entry(field).or_default() += count;
                        }
                    }
                }
            }
        }
    }

    fn metric(&self, integration_id: &str, name: &'static str, value: f64, unit: &'static str) {
        emit_now(
            self.metrics.as_ref(),
            self.clock.as_ref(),
            integration_id,
            (name, value, unit),
        );
    }

    /// Takes one call of `kind` from the budget, waiting for a free second if needed;
    /// returns the second granted.
    pub async fn acquire(
        &self,
        budget: Budget<'_>,
        kind: &str,
        priority: Priority,
    ) -> Result<i64, BudgetError> {
        let id = budget.integration_id;
        let month = month_of(self.clock.now_ms(), budget.timezone);
        let used = self.month_used(budget, &month).await?;
        if used >= budget.monthly_quota {
            return Err(BudgetError::QuotaExhausted);
        }
        if priority == Priority::Normal && used >= budget.reserve_from() {
            self.count(budget, &month, "suppressed", false).await?;
            self.metric(id, "Suppressed", 1.0, "Count");
            return Err(BudgetError::QuotaReserved);
        }
        let granted = self.take_a_second(budget, kind, &month, None).await?;
        self.count(budget, &month, kind, true).await?;
        let total = self.month_total_seen(id, &month).unwrap_or(used + 1);
        self.metric(id, "DingTalkCalls", 1.0, "Count");
        let percent = (total as f64) * 100.0 / (budget.monthly_quota.max(1) as f64);
        self.metric(
            id,
            "QuotaPercent",
            (percent * 100.0).round() / 100.0,
            "Percent",
        );
        Ok(granted)
    }

    /// Before sending a granted call: if its second has passed (the call was delayed,
    /// e.g. by a token refresh), takes a slot in the current one.
    pub async fn still_in_window(
        &self,
        budget: Budget<'_>,
        kind: &str,
        granted: i64,
    ) -> Result<i64, BudgetError> {
        let month = month_of(self.clock.now_ms(), budget.timezone);
        self.take_a_second(budget, kind, &month, Some(granted))
            .await
    }

    /// Notes how long a governed call took, request to response: no call starts
    /// closer than that (within bounds) to the end of a second, so it lands in
    /// DingTalk's second too.
    pub fn observe_call(&self, took: Duration) {
        use std::sync::atomic::Ordering;
        let took = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .call_ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |average| {
                Some((average * 7 + took.min(10_000)) / 8)
            });
    }

    /// The tail of each second in which no call starts (ms).
    fn tail_ms(&self) -> i64 {
        second_tail_ms(self.call_ms.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// DingTalk refused a `kind` call for QPS although we kept to our limit: its
    /// real limit for that API is lower. Lowers the learned limit (shared through
    /// the store, one decrease a second across instances); probing raises it again.
    pub async fn refused(&self, budget: Budget<'_>, kind: &str) -> Result<(), BudgetError> {
        let id = budget.integration_id;
        let now_ms = self.clock.now_ms();
        let current = self.learned_limit(id, kind, true).await?;
        let effective = effective_limit(current, allowed_per_second(budget.qps), now_ms);
        let learned = AdaptiveLimit {
            limit: lowered(effective),
            since_ms: now_ms,
        };
        if self
            .counters
            .lower_adaptive_limit(id, kind, learned, DECREASE_GAP_MS)
            .await?
        {
            tracing::warn!(
                integration_id = id,
                kind,
                from = effective,
                to = learned.limit,
                "DingTalk refused for QPS under our limit: lowering it for this API"
            );
            self.metric(
                id,
                "AdaptiveLimit",
                f64::from(learned.limit),
                "Count/Second",
            );
        }
        if let Ok(mut cache) = self.learned.lock() {
            cache.remove(&(id.to_string(), kind.to_string()));
        }
        Ok(())
    }

    /// The learned limit of an API (read again when older than a moment, or `fresh`).
    async fn learned_limit(
        &self,
        id: &str,
        kind: &str,
        fresh: bool,
    ) -> Result<Option<AdaptiveLimit>, StoreError> {
        let key = (id.to_string(), kind.to_string());
        let now_ms = self.clock.now_ms();
        // Fresh: use it. Stale: one caller reads it again, the others use it meanwhile.
        let cached = match self.learned.lock() {
            Ok(mut cache) if !fresh => cache.get_mut(&key).map(|(value, read_ms)| {
                let stale = now_ms - *read_ms >= LEARNED_FRESH_MS;
                if stale {
                    *read_ms = now_ms;
                }
                (*value, stale)
            }),
            _ => None,
        };
        match cached {
            Some((value, false)) => return Ok(value),
            Some((value, true)) => return self.read_learned(key, value).await,
            None => {}
        }
        self.read_learned(key, None).await
    }

    /// Reads a learned limit and keeps it (a failed read leaves `before` for now).
    async fn read_learned(
        &self,
        key: (String, String),
        before: Option<AdaptiveLimit>,
    ) -> Result<Option<AdaptiveLimit>, StoreError> {
        let value = match self.counters.adaptive_limit(&key.0, &key.1).await {
            Ok(value) => value,
            Err(err) if before.is_some() => {
                tracing::warn!(error = %err, "could not read the learned limit; the last one applies");
                before
            }
            Err(err) => return Err(err),
        };
        if let Ok(mut cache) = self.learned.lock() {
            cache.insert(key, (value, self.clock.now_ms()));
        }
        Ok(value)
    }

    /// A slot in the API's own second when a learned limit is below ours.
    async fn api_slot(
        &self,
        id: &str,
        kind: &str,
        second: i64,
        allowed: u32,
    ) -> Result<bool, StoreError> {
        let learned = self.learned_limit(id, kind, false).await?;
        let limit = effective_limit(learned, allowed, second * 1000);
        if limit >= allowed {
            return Ok(true);
        }
        self.slots
            .take(&format!("{id}#{kind}"), second, limit)
            .await
    }

    /// Waits for a second with a free slot (or `granted`, if it is still current),
    /// counting each wait, until `max_wait` runs out.
    async fn take_a_second(
        &self,
        budget: Budget<'_>,
        kind: &str,
        month: &str,
        granted: Option<i64>,
    ) -> Result<i64, BudgetError> {
        let id = budget.integration_id;
        let allowed = allowed_per_second(budget.qps);
        let started = tokio::time::Instant::now();
        loop {
            let now_ms = self.clock.now_ms();
            let second = now_ms.div_euclid(1000);
            // A granted call still in its second, and not in its tail (a call sent
            // then may land in DingTalk's next second).
            let may_start = may_start_with_tail(now_ms, budget.qps, self.tail_ms());
            if granted == Some(second) && may_start {
                return Ok(second);
            }
            if may_start
                && self.api_slot(id, kind, second, allowed).await?
                && self.slots.take(id, second, allowed).await?
            {
                return Ok(second);
            }
            if granted.is_none() {
                self.count(budget, month, "throttle_wait", false).await?;
                self.metric(id, "ThrottleWaits", 1.0, "Count");
            }
            if started.elapsed() >= self.max_wait {
                return Err(BudgetError::QpsLimited);
            }
            let to_next = u64::try_from(1000 - now_ms.rem_euclid(1000)).unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(to_next + 5)).await;
        }
    }
}

#[cfg(test)]
#[path = "governor_tests.rs"]
mod tests;
