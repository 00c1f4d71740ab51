//! Who is on call when (ARCHITECTURE.md §10; contract §8): a schedule's rotations
//! cut into shifts and restrict windows, layered (a later rotation wins where it
//! has someone, an earlier one shows through where it has nobody), with overrides
//! on top. Pure: time is Unix ms, wall-clock arithmetic in the schedule's zone.

use chrono::{DateTime, Datelike, Days, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::oncall_schedule::{
    MAX_OVERRIDE_MS, MAX_SHIFT_HOURS, OnCallSchedule, Override, Restrict, Rotation, ShiftLength,
    Weekday, local_to_ms, ms_to_local,
};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// Longest range [`shifts`] and [`handoffs`] compute; a longer one is cut to it.
pub const MAX_RANGE_MS: i64 = 93 * DAY_MS;
/// Longest range computed at all ([`on_call_at`] looks up to ~92 days either side).
const MAX_INTERNAL_MS: i64 = 200 * DAY_MS;
/// Most shifts, or restrict windows, generated for one rotation.
const MAX_STEPS: i64 = 10_000;
/// Most local days walked for restrict windows.
const MAX_DAYS: u32 = 220;
/// How far before `after_ms` [`handoffs`] starts looking, to see who was on before.
const LOOKBACK_MS: i64 = 60_000;
/// Instants beyond ±this (about ±237,000 years) are clamped, inside chrono's range.
const LIMIT_MS: i64 = 7_500_000_000_000_000;
/// Local times beyond ±this year are not converted.
const LIMIT_YEAR: i32 = 250_000;

/// Where a stretch of on-call time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShiftSource {
    /// A rotation's shift (possibly cut by restrict windows or overrides).
    Rotation,
    /// An override.
    Override,
}

/// A stretch of time one member is on call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    /// The member on call.
    pub member: String,
    /// Start (Unix ms, inclusive).
    pub start_ms: i64,
    /// End (Unix ms, exclusive).
    pub end_ms: i64,
    /// Rotation or override.
    pub source: ShiftSource,
}

/// Who is on call at an instant, and the stretch that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCallNow {
    /// The member on call (empty in a gap).
    pub members: Vec<String>,
    /// Start of the stretch (same member, or the gap) containing the instant.
    pub from_ms: i64,
    /// End of that stretch.
    pub until_ms: i64,
}

/// A change of who is on call: `member` starts at `start_ms` (the person before
/// was someone else or nobody).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// The incoming member.
    pub member: String,
    /// When they take over (Unix ms).
    pub start_ms: i64,
}

/// The final timeline over [from_ms, to_ms): layered, overrides applied, clipped to
/// the range, sorted by start, adjacent stretches of the same member and same
/// source merged; gaps are absent. Bounded work: a range longer than 93 days is
/// cut to its first 93 days.
pub fn shifts(schedule: &OnCallSchedule, from_ms: i64, to_ms: i64) -> Vec<Shift> {
    timeline(
        schedule,
        from_ms,
        to_ms.min(from_ms.saturating_add(MAX_RANGE_MS)),
    )
}

/// Who is on call at `at_ms`, with the stretch containing it: same member
/// (whatever the source) or, in a gap, the gap. Looked for within the schedule's
/// longest shift plus 8 days either side (extended over an override containing
/// `at_ms`), and clipped to that range.
pub fn on_call_at(schedule: &OnCallSchedule, at_ms: i64) -> OnCallNow {
    let at = at_ms.clamp(-LIMIT_MS, LIMIT_MS - 1);
    let (lo, hi) = look_range(schedule, at);
    let mut runs: Vec<(String, i64, i64)> = Vec::new();
    for shift in timeline(schedule, lo, hi) {
        match runs.last_mut() {
            Some((member, _, end)) if *end == shift.start_ms && *member == shift.member => {
                *end = shift.end_ms;
            }
            _ => runs.push((shift.member, shift.start_ms, shift.end_ms)),
        }
    }
    let mut gap_from = lo;
    for (member, start, end) in runs {
        if at < start {
            return gap(gap_from, start);
        }
        if at < end {
            return OnCallNow {
                members: vec![member],
                from_ms: start,
                until_ms: end,
            };
        }
        gap_from = end;
    }
    gap(gap_from, hi)
}

/// Handoffs with `after_ms < start_ms <= until_ms`, in order: the starts of
/// stretches following a different member or a gap. The same member going on
/// across an override's edge is no handoff. At most 93 days are looked at.
pub fn handoffs(schedule: &OnCallSchedule, after_ms: i64, until_ms: i64) -> Vec<Handoff> {
    let from = after_ms.saturating_sub(LOOKBACK_MS);
    let to = until_ms
        .saturating_add(1)
        .min(from.saturating_add(MAX_RANGE_MS));
    let mut out = Vec::new();
    let mut before: Option<(String, i64)> = None;
    for shift in timeline(schedule, from, to) {
        let continues = before
            .as_ref()
            .is_some_and(|(member, end)| *end == shift.start_ms && *member == shift.member);
        if !continues && after_ms < shift.start_ms && shift.start_ms <= until_ms {
            out.push(Handoff {
                member: shift.member.clone(),
                start_ms: shift.start_ms,
            });
        }
        before = Some((shift.member, shift.end_ms));
    }
    out
}

/// Nobody on call from `from_ms` to `until_ms`.
fn gap(from_ms: i64, until_ms: i64) -> OnCallNow {
    OnCallNow {
        members: Vec::new(),
        from_ms,
        until_ms,
    }
}

/// The range [`on_call_at`] computes around `at`: the longest shift plus 8 days
/// either side, stretched over any override containing `at`.
fn look_range(schedule: &OnCallSchedule, at: i64) -> (i64, i64) {
    let longest = schedule
        .rotations
        .iter()
        .map(|r| r.shift.nominal_hours().clamp(0, MAX_SHIFT_HOURS))
        .max()
        .unwrap_or(0);
    let margin = longest * HOUR_MS + 8 * DAY_MS;
    let (mut lo, mut hi) = (at.saturating_sub(margin), at.saturating_add(margin));
    for o in &schedule.overrides {
        if o.start_ms <= at && at < o.end_ms {
            lo = lo.min(o.start_ms.max(at.saturating_sub(MAX_OVERRIDE_MS)));
            hi = hi.max(o.end_ms.min(at.saturating_add(MAX_OVERRIDE_MS)));
        }
    }
    (lo, hi.min(lo.saturating_add(MAX_INTERNAL_MS)))
}

/// A stretch of one rotation: `member` from `start` to `end` (Unix ms).
#[derive(Debug, Clone, Copy)]
struct Span<'a> {
    start: i64,
    end: i64,
    member: &'a str,
}

/// The layered timeline over [from, to) (at most 200 days), unmerged across sources.
fn timeline(schedule: &OnCallSchedule, from: i64, to: i64) -> Vec<Shift> {
    let from = from.clamp(-LIMIT_MS, LIMIT_MS);
    let to = to
        .clamp(-LIMIT_MS, LIMIT_MS)
        .min(from.saturating_add(MAX_INTERNAL_MS));
    if to <= from {
        return Vec::new();
    }
    let tz = schedule.tz();
    let layers: Vec<Vec<Span<'_>>> = schedule
        .rotations
        .iter()
        .map(|rotation| rotation_spans(tz, rotation, from, to))
        .collect();
    let overrides: Vec<&Override> = schedule
        .overrides
        .iter()
        .filter(|o| o.start_ms < o.end_ms && o.start_ms < to && from < o.end_ms)
        .collect();
    let mut bounds = vec![from, to];
    bounds.extend(layers.iter().flatten().flat_map(|s| [s.start, s.end]));
    bounds.extend(
        overrides
            .iter()
            .flat_map(|o| [o.start_ms.max(from), o.end_ms.min(to)]),
    );
    bounds.sort_unstable();
    bounds.dedup();
    let mut out: Vec<Shift> = Vec::new();
    for pair in bounds.windows(2) {
        let &[start, end] = pair else { continue };
        let Some((member, source)) = owner(&layers, &overrides, start) else {
            continue;
        };
        match out.last_mut() {
            Some(last)
                if last.end_ms == start && last.source == source && last.member == member =>
            {
                last.end_ms = end;
            }
            _ => out.push(Shift {
                member: member.to_string(),
                start_ms: start,
                end_ms: end,
                source,
            }),
        }
    }
    out
}

/// Who holds `at`: the last override containing it, else the last rotation with
/// someone at it.
fn owner<'a>(
    layers: &[Vec<Span<'a>>],
    overrides: &[&'a Override],
    at: i64,
) -> Option<(&'a str, ShiftSource)> {
    if let Some(o) = overrides
        .iter()
        .rev()
        .find(|o| o.start_ms <= at && at < o.end_ms)
    {
        return Some((o.member.as_str(), ShiftSource::Override));
    }
    layers.iter().rev().find_map(|spans| {
        let after = spans.partition_point(|s| s.start <= at);
        after
            .checked_sub(1)
            .and_then(|i| spans.get(i))
            .filter(|s| at < s.end)
            .map(|s| (s.member, ShiftSource::Rotation))
    })
}

/// One rotation's stretches within [from, to), sorted and not overlapping: its
/// shifts, cut to its restrict windows when it has any.
fn rotation_spans(tz: Tz, rotation: &Rotation, from: i64, to: i64) -> Vec<Span<'_>> {
    let shifts = rotation_shifts(tz, rotation, from, to);
    match rotation.restrict.as_deref() {
        Some(windows) if !windows.is_empty() && !shifts.is_empty() => {
            cut(&shifts, &restrict_windows(tz, windows, from, to))
        }
        _ => shifts,
    }
}

/// A local time in `tz` as Unix ms (as [`local_to_ms`]), unless it is too far out
/// for chrono. A time in a spring-forward gap keeps the offset from before the gap,
/// so 02:30 that never happens is 03:30 (as `local_to_ms` documents; it lands on
/// the gap's end, 03:00, itself).
fn local_ms(tz: Tz, local: NaiveDateTime) -> Option<i64> {
    if local.year().abs() > LIMIT_YEAR {
        return None;
    }
    let ms = local_to_ms(tz, local);
    if tz.from_local_datetime(&local).earliest().is_some() {
        return Some(ms);
    }
    // In a gap: `ms` is at (or just after) its end; the offset before it applies.
    let before = DateTime::from_timestamp_millis(ms.checked_sub(1)?)?;
    let offset = tz.offset_from_utc_datetime(&before.naive_utc()).fix();
    let moved = local
        .and_utc()
        .timestamp_millis()
        .checked_sub(i64::from(offset.local_minus_utc()) * 1000)?;
    Some(moved.max(ms))
}

/// Where a rotation's shift k starts.
#[derive(Debug, Clone, Copy)]
enum Steps {
    /// Elapsed time: `origin + k * len`.
    Elapsed { origin: i64, len: i64 },
    /// Calendar time: local `origin + k * days` days, in `tz`.
    Calendar {
        tz: Tz,
        origin: NaiveDateTime,
        days: i64,
    },
}

impl Steps {
    /// The steps of shifts of `length` from local `origin` (none for a zero length).
    fn new(tz: Tz, origin: NaiveDateTime, length: ShiftLength) -> Option<Self> {
        let calendar = |days: i64| (days > 0).then_some(Self::Calendar { tz, origin, days });
        match length {
            ShiftLength::Hours(n) => {
                let len = i64::from(n) * HOUR_MS;
                (len > 0).then_some(())?;
                Some(Self::Elapsed {
                    origin: local_ms(tz, origin)?,
                    len,
                })
            }
            ShiftLength::Days(n) => calendar(i64::from(n)),
            ShiftLength::Weeks(n) => calendar(i64::from(n) * 7),
        }
    }

    /// Shift `k`'s start (Unix ms).
    fn start(self, k: i64) -> Option<i64> {
        match self {
            Self::Elapsed { origin, len } => origin.checked_add(k.checked_mul(len)?),
            Self::Calendar { tz, origin, days } => {
                let delta = TimeDelta::try_days(k.checked_mul(days)?)?;
                local_ms(tz, origin.checked_add_signed(delta)?)
            }
        }
    }

    /// A shift index at or before that of the shift holding `from` (0 at least).
    fn first_index(self, from: i64) -> i64 {
        let k = match self {
            Self::Elapsed { origin, len } => from.saturating_sub(origin).div_euclid(len) - 1,
            Self::Calendar { tz, origin, days } => {
                let elapsed = ms_to_local(tz, from).date() - origin.date();
                elapsed.num_days().div_euclid(days) - 2
            }
        };
        k.max(0)
    }
}

/// A rotation's shifts overlapping [from, to), clipped to it.
fn rotation_shifts(tz: Tz, rotation: &Rotation, from: i64, to: i64) -> Vec<Span<'_>> {
    let mut out = Vec::new();
    let count = i64::try_from(rotation.members.len()).unwrap_or(0);
    let steps = rotation
        .start_local()
        .and_then(|origin| Steps::new(tz, origin, rotation.shift));
    let Some(steps) = steps.filter(|_| count > 0) else {
        return out;
    };
    let first = steps.first_index(from);
    let Some(mut start) = steps.start(first) else {
        return out;
    };
    for k in first..first.saturating_add(MAX_STEPS) {
        if start >= to {
            break;
        }
        let Some(end) = steps.start(k.saturating_add(1)) else {
            break;
        };
        let member = usize::try_from(k.rem_euclid(count))
            .ok()
            .and_then(|i| rotation.members.get(i));
        if let Some(member) = member.filter(|_| end > start && end > from) {
            out.push(Span {
                start: start.max(from),
                end: end.min(to),
                member,
            });
        }
        start = end;
    }
    out
}

/// The restrict windows overlapping [from, to), clipped to it, as sorted disjoint
/// stretches (touching windows joined).
fn restrict_windows(tz: Tz, windows: &[Restrict], from: i64, to: i64) -> Vec<(i64, i64)> {
    let parsed: Vec<(i64, i64, &[Weekday])> = windows
        .iter()
        .filter_map(|w| {
            let (a, b) = w.minutes()?;
            Some((i64::from(a), i64::from(b), w.days.as_slice()))
        })
        .collect();
    let mut out: Vec<(i64, i64)> = Vec::new();
    let last = ms_to_local(tz, to).date();
    let mut day = ms_to_local(tz, from).date();
    day = day.checked_sub_days(Days::new(2)).unwrap_or(day);
    for _ in 0..MAX_DAYS {
        if day > last {
            break;
        }
        let midnight = day.and_time(NaiveTime::MIN);
        let at = |minutes: i64| {
            let local = midnight.checked_add_signed(TimeDelta::try_minutes(minutes)?)?;
            local_ms(tz, local)
        };
        for (a, b, days) in &parsed {
            if !days.iter().any(|d| d.chrono() == day.weekday()) {
                continue;
            }
            if let (Some(start), Some(end)) = (at(*a), at(*b))
                && start < end
                && start < to
                && from < end
            {
                out.push((start.max(from), end.min(to)));
            }
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    union(out)
}

/// Sorted, overlapping or touching stretches joined.
fn union(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(spans.len());
    for (start, end) in spans {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// `shifts` cut to `windows` (both sorted and disjoint): the parts inside a window,
/// each keeping its shift's member.
fn cut<'a>(shifts: &[Span<'a>], windows: &[(i64, i64)]) -> Vec<Span<'a>> {
    let mut out = Vec::new();
    for shift in shifts {
        let first = windows.partition_point(|w| w.1 <= shift.start);
        let inside = windows.get(first..).unwrap_or_default();
        for &(s, e) in inside.iter().take_while(|w| w.0 < shift.end) {
            let (start, end) = (s.max(shift.start), e.min(shift.end));
            if start < end {
                out.push(Span {
                    start,
                    end,
                    member: shift.member,
                });
            }
        }
    }
    out
}

#[cfg(test)]
#[path = "oncall_timeline_tests.rs"]
mod tests;
