//! The API budget's rules, as plain values (ARCHITECTURE.md §5.4): priorities,
//! months in the integration's time zone, the per-second headroom and the reserve.

use chrono::Datelike;

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

impl Budget<'_> {
    /// Calls from which normal-priority calls are suppressed (the reserve starts).
    pub fn reserve_from(&self) -> u64 {
        self.monthly_quota
            .saturating_mul(100 - DEFAULT_RESERVE_PERCENT)
            / 100
    }
}

/// Calls per second the governor grants: 10 % (at least one call) below `qps`,
/// because DingTalk's one-second windows are not aligned with ours.
pub fn allowed_per_second(qps: u32) -> u32 {
    qps.saturating_sub((qps / 10).max(1)).max(1)
}

/// Whether a call may start at `now_ms`: none in the last 100 ms of a second
/// (for limits above 1), so a call taken in our second lands in DingTalk's too.
pub fn may_start_in_second(now_ms: i64, qps: u32) -> bool {
    qps <= 1 || now_ms.rem_euclid(1000) < 900
}

/// The month (`2026-11`) an instant belongs to in `timezone`.
pub fn month_of(now_ms: i64, timezone: &str) -> String {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::Asia::Shanghai);
    let t = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&tz);
    format!("{:04}-{:02}", t.year(), t.month())
}

/// Whether `total` calls reach `percent` of `quota`.
pub fn reaches(total: u64, quota: u64, percent: u64) -> bool {
    total.saturating_mul(100) >= quota.max(1).saturating_mul(percent)
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

    #[test]
    fn headroom_and_reserve() {
        for (qps, allowed) in [(1, 1), (2, 1), (5, 4), (20, 18), (40, 36)] {
            assert_eq!(allowed_per_second(qps), allowed, "qps {qps}");
        }
        let budget = Budget {
            integration_id: "i",
            qps: 20,
            monthly_quota: 10_000,
            timezone: "Asia/Shanghai",
        };
        assert_eq!(budget.reserve_from(), 9_000);
        assert!(may_start_in_second(1_899, 20) && !may_start_in_second(1_900, 20));
        assert!(may_start_in_second(1_950, 1));
        assert!(reaches(8_000, 10_000, 80) && !reaches(7_999, 10_000, 80));
    }
}
