//! The API budget governor: every DingTalk call that counts against the app's quota
//! goes through [`Governor::acquire`] first. It keeps the app inside its calls per
//! second (a conditional counter per second in DynamoDB, exact across every Lambda
//! instance; a full second is waited out), its monthly quota (reset on the 1st in
//! the integration's time zone), and keeps the last part of the month for critical
//! alerts. Counts and waits are written as CloudWatch embedded-metric log lines.

use std::time::Duration;

use chrono::Datelike;
use serde_json::json;

use crate::clock::Clock;
use crate::dingtalk::DingTalkError;
use crate::store::{Store, StoreError};

/// Share of the monthly quota kept for critical alerts, in percent.
pub const DEFAULT_RESERVE_PERCENT: u64 = 10;
/// Usage levels (percent) that trigger a one-time notice.
pub const THRESHOLDS: [u64; 2] = [80, 95];

/// How urgent the alert behind a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// May be suppressed by the quota reserve.
    #[default]
    Normal,
    /// Critical alerts (and our own usage notices) may use the reserve.
    Critical,
}

/// An app's call budget.
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    /// Integration id (the counters' key).
    pub integration_id: &'a str,
    /// Calls per second.
    pub qps: u32,
    /// Calls per calendar month.
    pub monthly_quota: u64,
    /// IANA time zone in which months start.
    pub timezone: &'a str,
}

/// Calls per second the governor grants: 10 % (at least one call) below `qps`,
/// because DingTalk's one-second windows are not aligned with ours.
fn allowed_per_second(qps: u32) -> u32 {
    qps.saturating_sub((qps / 10).max(1)).max(1)
}

/// The month (`2026-11`) an instant belongs to in `timezone`.
pub fn month_of(now_ms: i64, timezone: &str) -> String {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let t = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&tz);
    format!("{:04}-{:02}", t.year(), t.month())
}

/// Prints one CloudWatch embedded-metric-format line (Lambda ships stdout to CloudWatch).
pub fn emit_metric(integration_id: &str, name: &str, value: f64, unit: &str, now_ms: i64) {
    let line = json!({
        "_aws": {"Timestamp": now_ms, "CloudWatchMetrics": [{
            "Namespace": "DingTalkIncidents", "Dimensions": [["IntegrationId"]],
            "Metrics": [{"Name": name, "Unit": unit}]}]},
        "IntegrationId": integration_id,
        name: value,
    });
    println!("{line}");
}

/// The governor.
#[derive(Clone)]
pub struct Governor {
    store: Store,
    clock: std::sync::Arc<dyn Clock>,
    /// Longest wait for a free second before the call is refused as throttled.
    pub max_wait: Duration,
    /// Whether to print metric lines.
    pub metrics: bool,
    /// The month total this instance last read or wrote, per integration: (month, total).
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, (String, u64)>>>,
}

impl Governor {
    /// A governor on `store`.
    pub fn new(store: Store, clock: std::sync::Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            max_wait: Duration::from_secs(3),
            metrics: true,
            seen: std::sync::Arc::default(),
        }
    }

    /// The month's call total as of this instance's last counted call (calls by other
    /// instances since then are not in it), so threshold checks need no read of their own.
    pub fn month_total_seen(&self, integration_id: &str, month: &str) -> Option<u64> {
        let seen = self.seen.lock().ok()?;
        seen.get(integration_id)
            .filter(|(m, _)| m == month)
            .map(|(_, total)| *total)
    }

    fn remember(&self, integration_id: &str, month: &str, total: u64) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(integration_id.to_string(), (month.to_string(), total));
        }
    }

    fn store_err(err: StoreError) -> DingTalkError {
        DingTalkError::Store(err)
    }

    /// Takes one call of `kind` from the budget, waiting for a free second if needed.
    pub async fn acquire(
        &self,
        budget: Budget<'_>,
        kind: &str,
        priority: Priority,
    ) -> Result<i64, DingTalkError> {
        let id = budget.integration_id;
        let now_ms = self.clock.now_ms();
        let month = month_of(now_ms, budget.timezone);
        let used = self
            .store
            .month_usage(id, &month)
            .await
            .map_err(Self::store_err)?
            .total;
        self.remember(id, &month, used);
        if used >= budget.monthly_quota {
            return Err(DingTalkError::QuotaExhausted {
                code: "local.monthly_quota".into(),
            });
        }
        let reserve_from = budget
            .monthly_quota
            .saturating_mul(100 - DEFAULT_RESERVE_PERCENT)
            / 100;
        if priority == Priority::Normal && used >= reserve_from {
            self.store
                .add_usage(id, &month, "suppressed", false)
                .await
                .map_err(Self::store_err)?;
            if self.metrics {
                emit_metric(id, "Suppressed", 1.0, "Count", now_ms);
            }
            return Err(DingTalkError::QuotaReserved);
        }
        // Keep headroom, and start no call in the last 100 ms of a second, so a call
        // taken in our second does not land in DingTalk's next one.
        let allowed = allowed_per_second(budget.qps);
        let started = tokio::time::Instant::now();
        let granted = loop {
            let now_ms = self.clock.now_ms();
            let second = now_ms.div_euclid(1000);
            let late = budget.qps > 1 && now_ms.rem_euclid(1000) >= 900;
            if !late
                && self
                    .store
                    .take_second(id, second, allowed)
                    .await
                    .map_err(Self::store_err)?
            {
                break second;
            }
            self.store
                .add_usage(id, &month, "throttle_wait", false)
                .await
                .map_err(Self::store_err)?;
            if self.metrics {
                emit_metric(id, "ThrottleWaits", 1.0, "Count", now_ms);
            }
            if started.elapsed() >= self.max_wait {
                return Err(DingTalkError::QpsLimited {
                    code: "local.qps".into(),
                });
            }
            let to_next = u64::try_from(1000 - now_ms.rem_euclid(1000)).unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(to_next + 5)).await;
        };
        let total = self
            .store
            .add_usage(id, &month, kind, true)
            .await
            .map_err(Self::store_err)?;
        self.remember(id, &month, total);
        if self.metrics {
            emit_metric(id, "DingTalkCalls", 1.0, "Count", now_ms);
            let percent = (total as f64) * 100.0 / (budget.monthly_quota.max(1) as f64);
            emit_metric(
                id,
                "QuotaPercent",
                (percent * 100.0).round() / 100.0,
                "Percent",
                now_ms,
            );
        }
        Ok(granted)
    }

    /// Before sending a granted call: if its second has passed (the call was delayed,
    /// e.g. by a token refresh), takes a slot in the current one.
    pub async fn still_in_window(
        &self,
        budget: Budget<'_>,
        granted: i64,
    ) -> Result<i64, DingTalkError> {
        let started = tokio::time::Instant::now();
        let allowed = allowed_per_second(budget.qps);
        loop {
            let now_ms = self.clock.now_ms();
            let second = now_ms.div_euclid(1000);
            if second == granted {
                return Ok(granted);
            }
            if now_ms.rem_euclid(1000) < 900
                && self
                    .store
                    .take_second(budget.integration_id, second, allowed)
                    .await
                    .map_err(Self::store_err)?
            {
                return Ok(second);
            }
            if started.elapsed() >= self.max_wait {
                return Err(DingTalkError::QpsLimited {
                    code: "local.qps".into(),
                });
            }
            let to_next = u64::try_from(1000 - now_ms.rem_euclid(1000)).unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(to_next + 5)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_in_the_integration_time_zone() {
        // 2026-11-30T16:30Z is already December 1st in Shanghai.
        let ms = chrono::DateTime::parse_from_rfc3339("2026-11-30T16:30:00Z")
            .expect("t")
            .timestamp_millis();
        assert_eq!(month_of(ms, "Asia/Shanghai"), "2026-12");
        assert_eq!(month_of(ms, "Europe/Berlin"), "2026-11");
    }
}
