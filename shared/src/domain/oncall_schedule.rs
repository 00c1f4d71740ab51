//! On-call schedules (ARCHITECTURE.md §8): rotations of members in a time zone,
//! restricted to windows, layered (the later rotation wins where it has someone),
//! with overrides. The types here are the admin API's wire shapes and their
//! validation; who is on call when is computed by [`super::oncall_timeline`].

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::ValidationError;

/// A shift's length: hours are elapsed time; days and weeks are calendar time in
/// the schedule's zone (a daily 09:00 handoff stays at 09:00 across DST).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum ShiftLength {
    /// N hours.
    Hours(u32),
    /// N days.
    Days(u32),
    /// N weeks.
    Weeks(u32),
}

impl ShiftLength {
    /// The length in hours (days and weeks as 24 and 168 hours).
    pub fn nominal_hours(self) -> i64 {
        match self {
            Self::Hours(n) => i64::from(n),
            Self::Days(n) => i64::from(n) * 24,
            Self::Weeks(n) => i64::from(n) * 168,
        }
    }
}

/// A day of the week, as written in restrict windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
}

impl Weekday {
    /// Chrono's weekday.
    pub fn chrono(self) -> chrono::Weekday {
        match self {
            Self::Mon => chrono::Weekday::Mon,
            Self::Tue => chrono::Weekday::Tue,
            Self::Wed => chrono::Weekday::Wed,
            Self::Thu => chrono::Weekday::Thu,
            Self::Fri => chrono::Weekday::Fri,
            Self::Sat => chrono::Weekday::Sat,
            Self::Sun => chrono::Weekday::Sun,
        }
    }
}

/// A window a rotation is restricted to: on `days`, from `from` to `to` local
/// time (`to` ≤ `from` runs past midnight into the next day; `to` may be 24:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restrict {
    /// The days the window starts on.
    pub days: Vec<Weekday>,
    /// Start, `HH:MM`.
    pub from: String,
    /// End, `HH:MM` (`24:00` for midnight at the end of the day).
    pub to: String,
}

impl Restrict {
    /// Minutes after midnight of the start and the end (the end may be past 1440
    /// for a window that runs into the next day).
    pub fn minutes(&self) -> Option<(u32, u32)> {
        let from = clock_minutes(&self.from).filter(|m| *m < 1440)?;
        let to = clock_minutes(&self.to)?;
        Some(if to <= from {
            (from, to + 1440)
        } else {
            (from, to)
        })
    }
}

/// `HH:MM` (00:00–24:00) as minutes after midnight.
fn clock_minutes(text: &str) -> Option<u32> {
    let (h, m) = text.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(1440),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

/// A rotation: members take turns, one shift each, from `start` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Members by email, in turn order.
    pub members: Vec<String>,
    /// The first shift's start, local time in the schedule's zone (`YYYY-MM-DDTHH:MM`).
    pub start: String,
    /// Each shift's length.
    pub shift: ShiftLength,
    /// Windows the rotation is limited to (always on when absent).
    #[serde(default)]
    pub restrict: Option<Vec<Restrict>>,
}

impl Rotation {
    /// The first shift's start as a local date and time.
    pub fn start_local(&self) -> Option<NaiveDateTime> {
        parse_local(&self.start)
    }
}

/// The body of `POST`/`PUT …/schedules`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// A name unique in the integration.
    pub name: String,
    /// An IANA time zone, such as `Asia/Shanghai`.
    pub timezone: String,
    /// 1–10 rotations; a later one wins where both have someone.
    pub rotations: Vec<Rotation>,
    /// A group chat told "now on call: …" at each handoff.
    #[serde(default)]
    pub chat: Option<String>,
    /// Minutes before a shift that its person gets a 1:1 notice (0–1440; 0: none).
    #[serde(default = "default_notice_mins")]
    pub handoff_notice_mins: u32,
}

fn default_notice_mins() -> u32 {
    30
}

/// Someone takes over from `start_ms` to `end_ms`, whatever the rotations say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    /// Our id.
    pub id: String,
    /// The member taking over.
    pub member: String,
    /// Start (Unix ms).
    pub start_ms: i64,
    /// End (Unix ms).
    pub end_ms: i64,
}

/// A handoff message: the 1:1 notice before a shift, or "now on call" in the
/// schedule's chat at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffKind {
    /// To the incoming person, `handoff_notice_mins` before their shift.
    Notice,
    /// To the schedule's chat, at the handoff.
    Announce,
}

/// One handoff message of one shift.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HandoffMessage {
    /// Which message.
    pub kind: HandoffKind,
    /// The incoming member.
    pub member: String,
    /// Their shift's start (Unix ms).
    pub start_ms: i64,
}

/// What handoff messages a schedule sent and owes, so each is sent once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HandoffLog {
    /// No messages for shifts starting before this (the schedule's creation).
    #[serde(default)]
    pub since_ms: i64,
    /// Messages decided (recent ones; older are dropped).
    #[serde(default)]
    pub sent: Vec<HandoffMessage>,
    /// Messages decided but not yet delivered (a crash leaves them for the sweep).
    #[serde(default)]
    pub owed: Vec<HandoffMessage>,
}

/// A stored schedule (a new `version` on each change, overrides included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallSchedule {
    /// Our id.
    pub id: String,
    /// The integration it belongs to.
    #[serde(default)]
    pub integration_id: String,
    /// Version, from 1.
    pub version: u32,
    /// Name.
    pub name: String,
    /// IANA time zone.
    pub timezone: String,
    /// Rotations, base first.
    pub rotations: Vec<Rotation>,
    /// The chat told about handoffs.
    #[serde(default)]
    pub chat: Option<String>,
    /// Minutes of notice before a shift.
    #[serde(default = "default_notice_mins")]
    pub handoff_notice_mins: u32,
    /// Overrides, by start.
    #[serde(default)]
    pub overrides: Vec<Override>,
    /// Handoff messages sent and owed.
    #[serde(default)]
    pub handoff: HandoffLog,
    /// Bumped on every write, handoff bookkeeping included (conditional writes).
    #[serde(default)]
    pub revision: u64,
    /// Creation time.
    #[serde(default)]
    pub created_at: String,
    /// Last change.
    #[serde(default)]
    pub updated_at: String,
}

impl OnCallSchedule {
    /// The schedule's `version` made of `spec`.
    pub fn from_spec(
        integration_id: &str,
        id: String,
        version: u32,
        spec: ScheduleSpec,
        now_ms: i64,
    ) -> Self {
        let now = crate::clock::rfc3339(now_ms);
        Self {
            id,
            integration_id: integration_id.to_string(),
            version,
            name: spec.name.trim().to_string(),
            timezone: spec.timezone.trim().to_string(),
            rotations: spec.rotations,
            chat: spec.chat.filter(|c| !c.trim().is_empty()),
            handoff_notice_mins: spec.handoff_notice_mins,
            overrides: Vec::new(),
            handoff: HandoffLog {
                since_ms: now_ms,
                ..HandoffLog::default()
            },
            revision: 1,
            created_at: now.clone(),
            updated_at: now,
        }
    }

    /// The schedule's zone (UTC if the stored name no longer parses).
    pub fn tz(&self) -> Tz {
        self.timezone.parse().unwrap_or(Tz::UTC)
    }

    /// Every member the schedule names (rotations and overrides), once each.
    pub fn members(&self) -> Vec<String> {
        let mut all: Vec<String> = Vec::new();
        let named = self.rotations.iter().flat_map(|r| r.members.iter());
        for email in named.chain(self.overrides.iter().map(|o| &o.member)) {
            if !all.contains(email) {
                all.push(email.clone());
            }
        }
        all
    }
}

/// Most rotations in a schedule, members in a rotation, windows in a rotation.
pub const MAX_ROTATIONS: usize = 10;
/// Most members in one rotation.
pub const MAX_ROTATION_MEMBERS: usize = 100;
/// Most restrict windows in one rotation.
pub const MAX_RESTRICTS: usize = 14;
/// Most overrides kept on a schedule (ended ones are dropped first).
pub const MAX_OVERRIDES: usize = 200;
/// Longest shift: 12 weeks.
pub const MAX_SHIFT_HOURS: i64 = 12 * 168;
/// Longest override: 31 days.
pub const MAX_OVERRIDE_MS: i64 = 31 * 86_400_000;
/// Longest notice before a shift.
pub const MAX_NOTICE_MINS: u32 = 1440;

/// `YYYY-MM-DDTHH:MM[:SS]` as a local date and time.
pub fn parse_local(text: &str) -> Option<NaiveDateTime> {
    use chrono::Datelike;
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .ok()
        .filter(|t| (YEARS.0..=YEARS.1).contains(&t.year()))
}

/// The years a time given to the API may fall in.
pub const YEARS: (i32, i32) = (1970, 9999);

/// A local time in `tz` as Unix ms: the earlier of two in a fall-back hour, and
/// moved forward past a spring-forward gap (02:30 that never happens is 03:30).
pub fn local_to_ms(tz: Tz, local: NaiveDateTime) -> i64 {
    if let Some(t) = tz.from_local_datetime(&local).earliest() {
        return t.timestamp_millis();
    }
    // In a gap: the offset from before it applies (02:30 EST is 07:30Z, 03:30 EDT).
    for minutes in 1..=180 {
        let Some(after) = local.checked_add_signed(chrono::Duration::minutes(minutes)) else {
            break;
        };
        if let Some(end) = tz.from_local_datetime(&after).earliest() {
            let before = end.timestamp_millis() - 1;
            let offset = DateTime::from_timestamp_millis(before)
                .map(|b| {
                    tz.offset_from_utc_datetime(&b.naive_utc())
                        .fix()
                        .local_minus_utc()
                })
                .unwrap_or_default();
            return local.and_utc().timestamp_millis() - i64::from(offset) * 1000;
        }
    }
    local.and_utc().timestamp_millis()
}

/// Unix ms as a local date and time in `tz`.
pub fn ms_to_local(tz: Tz, ms: i64) -> NaiveDateTime {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .naive_local()
}

/// Unix ms as RFC 3339 with the zone's offset, such as `2026-12-01T09:00:00+08:00`.
pub fn ms_to_rfc3339(tz: Tz, ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .with_timezone(&tz)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// A time given to the API: RFC 3339 (any offset), or local time in `tz`
/// (`YYYY-MM-DDTHH:MM[:SS]`), as Unix ms.
pub fn parse_instant(tz: Tz, text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text.trim()) {
        use chrono::Datelike;
        return (YEARS.0..=YEARS.1)
            .contains(&t.year())
            .then(|| t.timestamp_millis());
    }
    parse_local(text).map(|local| local_to_ms(tz, local))
}

/// Midnight local time of `date` in `tz`, as Unix ms.
pub fn day_start_ms(tz: Tz, date: NaiveDate) -> i64 {
    local_to_ms(tz, date.and_time(NaiveTime::MIN))
}

/// Whoever is on call at `at_ms` in the schedules named by `ids`, once each (a
/// schedule that no longer exists adds nobody).
pub fn members_on_call(schedules: &[OnCallSchedule], ids: &[String], at_ms: i64) -> Vec<String> {
    let mut members: Vec<String> = Vec::new();
    for schedule in ids
        .iter()
        .filter_map(|id| schedules.iter().find(|s| &s.id == id))
    {
        for email in super::oncall_timeline::on_call_at(schedule, at_ms).members {
            if !members.contains(&email) {
                members.push(email);
            }
        }
    }
    members
}

/// Checks a schedule body; `member_known` says whether an email is a member and
/// `chat_known` whether a chat is on the group chat list. Errors name the field.
pub fn validate_schedule(
    spec: &ScheduleSpec,
    member_known: impl Fn(&str) -> bool,
    chat_known: impl Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    if spec.name.trim().is_empty() || spec.name.chars().count() > 100 {
        return Err(ValidationError::new("name", "1–100 characters"));
    }
    if spec.timezone.trim().parse::<Tz>().is_err() {
        return Err(ValidationError::new(
            "timezone",
            format!(
                "{:?} is not an IANA time zone (such as Asia/Shanghai or America/New_York)",
                spec.timezone
            ),
        ));
    }
    if spec.rotations.is_empty() || spec.rotations.len() > MAX_ROTATIONS {
        return Err(ValidationError::new(
            "rotations",
            format!("1–{MAX_ROTATIONS} rotations"),
        ));
    }
    for (i, rotation) in spec.rotations.iter().enumerate() {
        validate_rotation(rotation, &format!("rotations[{i}]"), &member_known)?;
    }
    if let Some(chat) = spec.chat.as_deref().filter(|c| !c.trim().is_empty())
        && !chat_known(chat)
    {
        return Err(ValidationError::new(
            "chat",
            format!("{chat:?} is not on the integration's group chat list"),
        ));
    }
    if spec.handoff_notice_mins > MAX_NOTICE_MINS {
        return Err(ValidationError::new(
            "handoff_notice_mins",
            format!("0–{MAX_NOTICE_MINS} minutes"),
        ));
    }
    Ok(())
}

fn validate_rotation(
    rotation: &Rotation,
    at: &str,
    member_known: &impl Fn(&str) -> bool,
) -> Result<(), ValidationError> {
    if rotation.members.is_empty() || rotation.members.len() > MAX_ROTATION_MEMBERS {
        return Err(ValidationError::new(
            &format!("{at}.members"),
            format!("1–{MAX_ROTATION_MEMBERS} members"),
        ));
    }
    for (j, email) in rotation.members.iter().enumerate() {
        if !member_known(email) {
            return Err(ValidationError::new(
                &format!("{at}.members[{j}]"),
                format!("no member {email:?}: add them under members first"),
            ));
        }
    }
    if rotation.start_local().is_none() {
        return Err(ValidationError::new(
            &format!("{at}.start"),
            "a local date and time, YYYY-MM-DDTHH:MM",
        ));
    }
    let hours = rotation.shift.nominal_hours();
    if !(1..=MAX_SHIFT_HOURS).contains(&hours) {
        return Err(ValidationError::new(
            &format!("{at}.shift"),
            "a shift lasts from 1 hour to 12 weeks: {\"hours\": N}, {\"days\": N} or {\"weeks\": N}",
        ));
    }
    validate_restricts(rotation.restrict.as_deref().unwrap_or_default(), at)
}

/// Windows must parse, last longer than nothing, and not overlap one another.
fn validate_restricts(windows: &[Restrict], at: &str) -> Result<(), ValidationError> {
    if windows.len() > MAX_RESTRICTS {
        return Err(ValidationError::new(
            &format!("{at}.restrict"),
            format!("at most {MAX_RESTRICTS} windows"),
        ));
    }
    // Minutes of the week each window covers, to find overlaps (a window may run
    // past the week's end into Monday).
    const WEEK: i64 = 7 * 1440;
    let mut covered: Vec<(i64, i64, usize)> = Vec::new();
    for (k, window) in windows.iter().enumerate() {
        let field = format!("{at}.restrict[{k}]");
        if window.days.is_empty() {
            return Err(ValidationError::new(&field, "name at least one day"));
        }
        let Some((from, to)) = window.minutes() else {
            return Err(ValidationError::new(
                &field,
                "from and to are HH:MM (00:00–24:00)",
            ));
        };
        if clock_minutes(&window.from) == clock_minutes(&window.to) {
            return Err(ValidationError::new(
                &field,
                "from and to are the same time: the window is empty (use 00:00–24:00 for a whole day)",
            ));
        }
        for day in &window.days {
            let base = i64::from(day.chrono().num_days_from_monday()) * 1440;
            let (start, end) = (base + i64::from(from), base + i64::from(to));
            let clash = covered.iter().find(|(s, e, _)| {
                [-WEEK, 0, WEEK]
                    .iter()
                    .any(|shift| start < e + shift && s + shift < end)
            });
            if let Some((_, _, other)) = clash {
                let message = if *other == k {
                    "the window overlaps itself on consecutive days".to_string()
                } else {
                    format!("overlaps restrict[{other}]")
                };
                return Err(ValidationError::new(&field, message));
            }
            covered.push((start, end, k));
        }
    }
    Ok(())
}

/// Checks an override's times (as Unix ms): the end after the start, at most
/// 31 days, and not over another override (`others`, excluding itself).
pub fn validate_override(
    start_ms: i64,
    end_ms: i64,
    others: &[Override],
) -> Result<(), ValidationError> {
    if end_ms <= start_ms {
        return Err(ValidationError::new(
            "end",
            "the end must be after the start",
        ));
    }
    if end_ms - start_ms > MAX_OVERRIDE_MS {
        return Err(ValidationError::new(
            "end",
            "an override lasts at most 31 days",
        ));
    }
    if let Some(other) = others
        .iter()
        .find(|o| o.start_ms < end_ms && start_ms < o.end_ms)
    {
        return Err(ValidationError::new(
            "start",
            format!("overlaps override {} ({})", other.id, other.member),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_in_a_gap_move_forward_by_the_gap_and_ambiguous_ones_take_the_first() {
        let ny: Tz = "America/New_York".parse().expect("zone");
        let at = |t: &str| local_to_ms(ny, parse_local(t).expect("time"));
        // 2026-03-08 02:30 does not exist in New York: 03:30 EDT = 07:30Z.
        assert_eq!(
            ms_to_rfc3339(Tz::UTC, at("2026-03-08T02:30")),
            "2026-03-08T07:30:00+00:00"
        );
        // 2026-11-01 01:30 happens twice: the first (EDT) = 05:30Z.
        assert_eq!(
            ms_to_rfc3339(Tz::UTC, at("2026-11-01T01:30")),
            "2026-11-01T05:30:00+00:00"
        );
        assert_eq!(
            parse_instant(ny, "2026-12-01T09:00:00+08:00"),
            Some(at("2026-11-30T20:00"))
        );
        // Far-away years are refused, not computed (chrono's edge would panic).
        for text in [
            "+262142-12-31T23:30",
            "0001-01-01T00:00",
            "+262142-12-31T23:30:00-05:00",
        ] {
            assert_eq!(parse_instant(ny, text), None, "{text}");
        }
    }

    #[test]
    fn restrict_windows_must_not_overlap_or_be_empty() {
        let window = |days: &[Weekday], from: &str, to: &str| Restrict {
            days: days.to_vec(),
            from: from.into(),
            to: to.into(),
        };
        let check = |windows: Vec<Restrict>| validate_restricts(&windows, "r").map_err(|e| e.field);
        assert_eq!(
            check(vec![window(&[Weekday::Mon], "09:00", "18:00")]),
            Ok(())
        );
        assert_eq!(
            check(vec![
                window(&[Weekday::Mon], "09:00", "18:00"),
                window(&[Weekday::Mon], "17:00", "20:00")
            ]),
            Err("r.restrict[1]".into())
        );
        // Sunday night into Monday morning overlaps a Monday 08:00 window.
        assert_eq!(
            check(vec![
                window(&[Weekday::Sun], "22:00", "09:00"),
                window(&[Weekday::Mon], "08:00", "10:00")
            ]),
            Err("r.restrict[1]".into())
        );
        assert_eq!(
            check(vec![window(&[Weekday::Tue], "09:00", "09:00")]),
            Err("r.restrict[0]".into())
        );
        assert_eq!(
            check(vec![window(&[Weekday::Tue], "09:00", "25:00")]),
            Err("r.restrict[0]".into())
        );
        assert_eq!(
            check(vec![window(
                &[Weekday::Mon, Weekday::Tue],
                "18:00",
                "09:00"
            )]),
            Ok(()),
            "back-to-back nights do not overlap"
        );
        assert_eq!(
            check(vec![window(
                &[Weekday::Sat, Weekday::Sun],
                "00:00",
                "24:00"
            )]),
            Ok(())
        );
    }
}
