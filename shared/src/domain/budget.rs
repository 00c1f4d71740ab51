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

/// How long a month total read from the store may be used instead of a new read.
pub const MONTH_READ_FRESH_MS: i64 = 5_000;

/// Longest time a batch's month counters wait in memory before they are written
/// (the notifier's timeout, 30 s, and a margin).
pub const BATCH_LAG_SECS: u64 = 36;

/// Whether the month's total is near enough to the reserve that every call must
/// read it and count at once: other instances' counts wait up to [`BATCH_LAG_SECS`]
/// in memory (and this instance's view lags as much), so within twice the calls
/// every instance together can make in that time (at most `qps` a second), nothing
/// is deferred.
pub fn near_reserve(known_total: u64, budget: &Budget<'_>) -> bool {
    let lag = u64::from(budget.qps) * 2 * BATCH_LAG_SECS;
    known_total.saturating_add(lag) >= budget.reserve_from()
}

/// Whether the month's total must be read again before a call: when it is older
/// than [`MONTH_READ_FRESH_MS`], or [`near_reserve`].
pub fn month_read_needed(known_total: u64, age_ms: i64, budget: &Budget<'_>) -> bool {
    !(0..MONTH_READ_FRESH_MS).contains(&age_ms) || near_reserve(known_total, budget)
}

/// An API's lowered per-second limit, learned from DingTalk's QPS refusals
/// (ARCHITECTURE.md §5.4): `limit` from `since_ms`, probing back up by one call per
/// [`PROBE_EVERY_MS`] without a refusal, never above the configured limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdaptiveLimit {
    /// Calls per second granted when it was set.
    pub limit: u32,
    /// When it was set (Unix ms).
    pub since_ms: i64,
}

/// One more call per second after this long without a refusal (additive increase).
pub const PROBE_EVERY_MS: i64 = 30_000;
/// The share a refusal leaves of the effective limit (multiplicative decrease).
pub const DECREASE_PERCENT: u32 = 50;
/// At most one decrease per this long, however many instances saw refusals.
pub const DECREASE_GAP_MS: i64 = 1_000;

/// The calls per second granted for an API at `now_ms`: the configured `allowed`,
/// or the learned limit plus what probing has added since, whichever is lower.
pub fn effective_limit(adaptive: Option<AdaptiveLimit>, allowed: u32, now_ms: i64) -> u32 {
    let Some(learned) = adaptive else {
        return allowed;
    };
    let probed = (now_ms - learned.since_ms).max(0) / PROBE_EVERY_MS;
    let probed = u32::try_from(probed).unwrap_or(u32::MAX);
    learned
        .limit
        .saturating_add(probed)
        .clamp(1, allowed.max(1))
}

/// The limit after a refusal at `effective` calls per second (at least 1).
pub fn lowered(effective: u32) -> u32 {
    (effective.saturating_mul(DECREASE_PERCENT) / 100).max(1)
}

/// The end of each second in which no call starts (ms): a call granted in our
/// second must land in DingTalk's.
pub const SECOND_TAIL_MS: i64 = 100;

/// The longest tail: calls slower than this are not waited for.
pub const MAX_SECOND_TAIL_MS: i64 = 400;

/// Whether a call may start at `now_ms`: none in the last [`SECOND_TAIL_MS`] of a
/// second (for limits above 1), so a call taken in our second lands in DingTalk's too.
pub fn may_start_in_second(now_ms: i64, qps: u32) -> bool {
    may_start_with_tail(now_ms, qps, SECOND_TAIL_MS)
}

/// As [`may_start_in_second`] with a tail of `tail_ms`: calls take as long as they
/// take to reach DingTalk, so the tail follows their recent duration
/// ([`second_tail_ms`]).
pub fn may_start_with_tail(now_ms: i64, qps: u32, tail_ms: i64) -> bool {
    qps <= 1 || now_ms.rem_euclid(1000) < 1000 - tail_ms
}

/// The tail for calls that recently took `call_ms` (request to response): the whole
/// duration, as a bound on the way there, between [`SECOND_TAIL_MS`] and
/// [`MAX_SECOND_TAIL_MS`].
pub fn second_tail_ms(call_ms: i64) -> i64 {
    call_ms.clamp(SECOND_TAIL_MS, MAX_SECOND_TAIL_MS)
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
    fn the_adaptive_limit_decreases_by_a_share_and_probes_back_up_slowly() {
        assert_eq!(effective_limit(None, 18, 0), 18);
        let learned = AdaptiveLimit {
            limit: lowered(18),
            since_ms: 1_000,
        };
        assert_eq!(learned.limit, 9);
        let cases = [
            (1_000, 9),
            (30_999, 9),
            (31_000, 10),
            (91_000, 12),
            (10_000_000, 18),
            (0, 9),
        ];
        for (now, expected) in cases {
            assert_eq!(
                effective_limit(Some(learned), 18, now),
                expected,
                "at {now}"
            );
        }
        let mut limit = 18;
        let mut steps = 0;
        while limit > 4 {
            limit = lowered(limit);
            steps += 1;
        }
        assert_eq!(steps, 2, "20 configured, about 4 real: two decreases");
        assert_eq!(lowered(1), 1);
        assert_eq!(
            effective_limit(
                Some(AdaptiveLimit {
                    limit: 0,
                    since_ms: 0
                }),
                5,
                0
            ),
            1
        );
    }

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

    #[test]
    fn the_month_is_read_again_when_stale_or_near_the_reserve() {
        let budget = Budget {
            integration_id: "int",
            qps: 20,
            monthly_quota: 10_000,
            timezone: "Asia/Shanghai",
        };
        // reserve from 9,000; 20 calls a second for twice 36 s: 1,440.
        for (total, age_ms, needed) in [
            (1_000, 0, false),
            (1_000, 4_999, false),
            (1_000, 5_000, true),
            (1_000, -1, true),
            (7_559, 1_000, false),
            (7_560, 1_000, true),
            (9_500, 0, true),
        ] {
            assert_eq!(
                month_read_needed(total, age_ms, &budget),
                needed,
                "{total} {age_ms}"
            );
        }
    }

    #[test]
    fn the_tail_follows_the_calls_duration_within_bounds() {
        for (call_ms, tail) in [(0, 100), (100, 100), (250, 250), (400, 400), (2_000, 400)] {
            assert_eq!(second_tail_ms(call_ms), tail, "{call_ms}");
        }
        assert!(may_start_with_tail(1_749, 20, 250) && !may_start_with_tail(1_750, 20, 250));
        assert!(
            may_start_with_tail(1_999, 1, 400),
            "a limit of 1 has no tail"
        );
    }
}
