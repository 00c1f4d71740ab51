//! Handoff messages of on-call schedules (ARCHITECTURE.md §8), as pure decisions:
//! which notices and announcements are due now, and when the next one is. Each is
//! sent once: a message is decided into the schedule's log (`sent`, `owed`) with a
//! conditional write before it goes out, and cleared from `owed` once delivered.

use super::oncall_schedule::{HandoffKind, HandoffMessage, OnCallSchedule};
use super::oncall_timeline::handoffs;

/// A notice is still worth sending up to this long after the shift started.
pub const NOTICE_GRACE_MS: i64 = 5 * 60_000;
/// "Now on call" is still worth announcing up to this long after the handoff.
pub const ANNOUNCE_GRACE_MS: i64 = 60 * 60_000;
/// How far ahead the next handoff is looked for.
pub const LOOKAHEAD_MS: i64 = 35 * 86_400_000;
/// How far back missed messages are looked for.
const MISSED_LOOKBACK_MS: i64 = 86_400_000;
/// Sent messages are remembered this long after their shift started.
pub const KEEP_SENT_MS: i64 = 2 * 86_400_000;
/// How early a timer may fire and still count as due.
pub const EARLY_TOLERANCE_MS: i64 = 1_000;

/// When `message` is due.
fn due_at(schedule: &OnCallSchedule, message: &HandoffMessage) -> i64 {
    match message.kind {
        HandoffKind::Notice => message.start_ms - i64::from(schedule.handoff_notice_mins) * 60_000,
        HandoffKind::Announce => message.start_ms,
    }
}

/// Whether `message` is past the point where it is still useful.
pub fn stale(message: &HandoffMessage, now_ms: i64) -> bool {
    let grace = match message.kind {
        HandoffKind::Notice => NOTICE_GRACE_MS,
        HandoffKind::Announce => ANNOUNCE_GRACE_MS,
    };
    message.start_ms + grace < now_ms
}

/// The messages the schedule's handoffs call for, from a day before `now_ms` to
/// `until_ms`, that were not decided yet: the stale ones when `stale_ones`, else the
/// others.
fn undecided(
    schedule: &OnCallSchedule,
    now_ms: i64,
    until_ms: i64,
    stale_ones: bool,
) -> Vec<HandoffMessage> {
    let from = (now_ms - MISSED_LOOKBACK_MS).max(schedule.handoff.since_ms);
    let mut out = Vec::new();
    for handoff in handoffs(schedule, from, until_ms) {
        let mut kinds = Vec::new();
        if schedule.handoff_notice_mins > 0 {
            kinds.push(HandoffKind::Notice);
        }
        if schedule.chat.is_some() {
            kinds.push(HandoffKind::Announce);
        }
        for kind in kinds {
            let message = HandoffMessage {
                kind,
                member: handoff.member.clone(),
                start_ms: handoff.start_ms,
            };
            let decided = schedule.handoff.sent.contains(&message)
                || schedule.handoff.owed.contains(&message);
            if !decided && stale(&message, now_ms) == stale_ones {
                out.push(message);
            }
        }
    }
    out
}

fn wanted(schedule: &OnCallSchedule, now_ms: i64, until_ms: i64) -> Vec<HandoffMessage> {
    undecided(schedule, now_ms, until_ms, false)
}

/// Messages whose time passed without being decided (nothing ran in time, say an
/// outage): the schedule with them marked sent, and the messages, to record as
/// missed. `None` when there are none.
pub fn missed(
    schedule: &OnCallSchedule,
    now_ms: i64,
) -> Option<(OnCallSchedule, Vec<HandoffMessage>)> {
    let missed = undecided(schedule, now_ms, now_ms, true);
    if missed.is_empty() {
        return None;
    }
    let mut next = schedule.clone();
    next.handoff.sent.extend(missed.iter().cloned());
    next.revision = schedule.revision + 1;
    Some((next, missed))
}

/// When the schedule next needs attention: now when a message is owed, else the
/// next message's due time (none when nothing is ahead within 35 days).
pub fn next_due(schedule: &OnCallSchedule, now_ms: i64) -> Option<i64> {
    if !schedule.handoff.owed.is_empty() {
        return Some(0);
    }
    let notice_ms = i64::from(schedule.handoff_notice_mins) * 60_000;
    wanted(schedule, now_ms, now_ms + LOOKAHEAD_MS + notice_ms)
        .iter()
        .map(|m| due_at(schedule, m))
        .min()
        .or_else(|| {
            // Nothing within the lookahead: look again when it has moved on.
            (!schedule.rotations.is_empty()).then_some(now_ms + LOOKAHEAD_MS / 2)
        })
}

/// Decides the messages due at `now_ms`: the schedule as it must be written
/// (they are `sent` and `owed`; old entries dropped) and the messages. `None`
/// when nothing is due.
pub fn decide_due(
    schedule: &OnCallSchedule,
    now_ms: i64,
) -> Option<(OnCallSchedule, Vec<HandoffMessage>)> {
    let notice_ms = i64::from(schedule.handoff_notice_mins) * 60_000;
    let due: Vec<HandoffMessage> =
        wanted(schedule, now_ms, now_ms + notice_ms + EARLY_TOLERANCE_MS)
            .into_iter()
            .filter(|m| due_at(schedule, m) <= now_ms + EARLY_TOLERANCE_MS)
            .collect();
    if due.is_empty() {
        return None;
    }
    let mut next = schedule.clone();
    next.handoff
        .sent
        .retain(|m| m.start_ms + KEEP_SENT_MS >= now_ms);
    next.handoff.sent.extend(due.iter().cloned());
    next.handoff.owed.extend(due.iter().cloned());
    next.revision = schedule.revision + 1;
    Some((next, due))
}

/// The schedule with `delivered` no longer owed.
pub fn delivered(schedule: &OnCallSchedule, delivered: &HandoffMessage) -> OnCallSchedule {
    let mut next = schedule.clone();
    next.handoff.owed.retain(|m| m != delivered);
    next.revision = schedule.revision + 1;
    next
}

#[cfg(test)]
#[path = "handoff_tests.rs"]
mod tests;
