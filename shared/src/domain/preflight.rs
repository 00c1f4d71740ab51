//! Pre-flight (ARCHITECTURE.md §8): what would make a page go nowhere in the days
//! ahead, each problem with what to do about it. A pure function of the
//! integration's schedules, policies, members, bindings and chats.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::chat::{ChatStatus, GroupChat};
use super::escalation::EscalationPolicy;
use super::member::Member;
use super::oncall_schedule::{OnCallSchedule, local_to_ms, ms_to_local, ms_to_rfc3339};
use super::oncall_timeline::shifts;

/// The local hour the daily pre-flight report goes out.
pub const PREFLIGHT_HOUR: u32 = 9;

/// Most gaps listed per schedule.
const MAX_GAPS: usize = 10;

/// What kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A stretch of a schedule with nobody on call.
    ScheduleGap,
    /// Someone on call in a schedule has no DingTalk association.
    OncallUnassociated,
    /// A member a policy pages has no DingTalk association.
    MemberUnassociated,
    /// A member a policy pages (or who is on call for one) holds no licence.
    MemberUnlicensed,
    /// A group a layer, schedule or default target names lost the cool app.
    ChatUninstalled,
    /// A group a layer, schedule or default target names had a delivery problem.
    ChatProblem,
    /// A layer names a schedule or chat that no longer exists.
    MissingTarget,
}

/// One problem, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// What is wrong, in a sentence.
    pub message: String,
    /// What to do about it.
    pub fix: String,
    /// Where it is used (policies, layers, schedules).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub used_in: Vec<String>,
    /// The member concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The chat concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat: Option<String>,
    /// The schedule concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// When it starts mattering (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// When it stops (RFC 3339), for gaps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The facts behind `message`, for saying it in another language (not in the API).
    #[serde(skip)]
    pub facts: ProblemFacts,
}

/// What a problem is about, by kind: what the daily report in DingTalk says in the
/// integration's language (the API's `message` and `fix` stay English).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemFacts {
    /// Nobody on call in `schedule` (its name) from `from` to `until`; `paged`: a
    /// policy layer pages it.
    Gap {
        /// The schedule's name.
        schedule: String,
        /// Start (RFC 3339, the schedule's zone).
        from: String,
        /// End.
        until: String,
        /// Whether an escalation policy pages the schedule.
        paged: bool,
    },
    /// `email` is on call from `from` without a DingTalk association.
    OncallUnassociated {
        /// The member.
        email: String,
        /// First shift start (RFC 3339).
        from: String,
    },
    /// `email` is paged by a policy without a DingTalk association.
    MemberUnassociated {
        /// The member.
        email: String,
    },
    /// `email` is paged without a licence.
    MemberUnlicensed {
        /// The member.
        email: String,
    },
    /// A schedule a layer names no longer exists.
    ScheduleMissing {
        /// The schedule id.
        id: String,
    },
    /// A group is not on the group chat list.
    ChatNotListed {
        /// The group's title (or id).
        title: String,
    },
    /// The cool app was uninstalled from a group.
    ChatUninstalled {
        /// The group's title.
        title: String,
    },
    /// A group had a delivery problem.
    ChatProblem {
        /// The group's title.
        title: String,
        /// The problem noted (DingTalk's words).
        problem: String,
    },
}

impl Problem {
    fn new(
        kind: ProblemKind,
        message: String,
        fix: impl Into<String>,
        facts: ProblemFacts,
    ) -> Self {
        Self {
            kind,
            message,
            fix: fix.into(),
            facts,
            used_in: Vec::new(),
            member: None,
            chat: None,
            schedule: None,
            from: None,
            until: None,
        }
    }
}

/// Everything the check looks at.
pub struct PreflightInput<'a> {
    /// Schedules.
    pub schedules: &'a [OnCallSchedule],
    /// Escalation policies.
    pub policies: &'a [EscalationPolicy],
    /// Members.
    pub members: &'a [Member],
    /// Members with a DingTalk association (emails).
    pub associated: &'a HashSet<String>,
    /// The group chat list.
    pub chats: &'a [GroupChat],
    /// The integration's default target chats.
    pub default_chats: &'a [String],
    /// The range checked (Unix ms).
    pub from_ms: i64,
    /// Its end.
    pub to_ms: i64,
}

/// The problems found, by kind.
pub fn find_problems(input: &PreflightInput<'_>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let used_by = schedule_users(input.policies);
    let mut oncall_first: BTreeMap<String, (i64, Vec<String>)> = BTreeMap::new();
    for schedule in input.schedules {
        let timeline = shifts(schedule, input.from_ms, input.to_ms);
        let users = used_by.get(&schedule.id).cloned().unwrap_or_default();
        problems.extend(gaps(schedule, &timeline, input, &users));
        for shift in &timeline {
            let entry = oncall_first
                .entry(shift.member.clone())
                .or_insert((shift.start_ms, Vec::new()));
            entry.0 = entry.0.min(shift.start_ms);
            let place = format!("schedule {:?}", schedule.name);
            if !entry.1.contains(&place) {
                entry.1.push(place);
            }
        }
    }
    let members: HashMap<&str, &Member> = input
        .members
        .iter()
        .map(|m| (m.email.as_str(), m))
        .collect();
    for (email, (first_ms, places)) in &oncall_first {
        if !input.associated.contains(email) {
            let mut p = Problem::new(
                ProblemKind::OncallUnassociated,
                format!(
                    "{email} is on call from {} but has no DingTalk association: their pages and handoff notices reach nobody",
                    crate::clock::rfc3339(*first_ms)
                ),
                "send them a link code (POST …/members/{email}/link-code) to open in the H5 app, or bind their DingTalk user (PUT …/bindings/{userId})",
                ProblemFacts::OncallUnassociated {
                    email: email.clone(),
                    from: crate::clock::rfc3339(*first_ms),
                },
            );
            p.member = Some(email.clone());
            p.from = Some(crate::clock::rfc3339(*first_ms));
            p.used_in = places.clone();
            problems.push(p);
        }
    }
    problems.extend(policy_member_problems(
        input,
        &members,
        &oncall_first,
        &used_by,
    ));
    problems.extend(chat_problems(input));
    for (id, places) in &used_by {
        if !input.schedules.iter().any(|s| &s.id == id) {
            let mut p = Problem::new(
                ProblemKind::MissingTarget,
                format!("schedule {id} no longer exists: the layer pages nobody through it"),
                "change the layer to name an existing schedule",
                ProblemFacts::ScheduleMissing { id: id.clone() },
            );
            p.schedule = Some(id.clone());
            p.used_in = places.clone();
            problems.push(p);
        }
    }
    problems.sort_by_key(|p| p.kind);
    problems
}

/// Which policy layers page each schedule.
fn schedule_users(policies: &[EscalationPolicy]) -> HashMap<String, Vec<String>> {
    let mut users: HashMap<String, Vec<String>> = HashMap::new();
    for policy in policies {
        for (i, layer) in policy.layers.iter().enumerate() {
            for id in &layer.targets.schedules {
                users
                    .entry(id.clone())
                    .or_default()
                    .push(format!("escalation policy {:?} layers[{i}]", policy.name));
            }
        }
    }
    users
}

/// The stretches of `[from, to)` with nobody on call.
fn gaps(
    schedule: &OnCallSchedule,
    timeline: &[crate::domain::oncall_timeline::Shift],
    input: &PreflightInput<'_>,
    users: &[String],
) -> Vec<Problem> {
    let tz = schedule.tz();
    let mut holes = Vec::new();
    let mut cursor = input.from_ms;
    for shift in timeline {
        if shift.start_ms > cursor {
            holes.push((cursor, shift.start_ms));
        }
        cursor = cursor.max(shift.end_ms);
    }
    if cursor < input.to_ms {
        holes.push((cursor, input.to_ms));
    }
    holes
        .into_iter()
        .take(MAX_GAPS)
        .map(|(from, until)| {
            let paged = if users.is_empty() {
                "no escalation policy pages this schedule yet".to_string()
            } else {
                "a layer paging it notifies nobody then".to_string()
            };
            let mut p = Problem::new(
                ProblemKind::ScheduleGap,
                format!(
                    "schedule {:?} has nobody on call from {} to {}: {paged}",
                    schedule.name,
                    ms_to_rfc3339(tz, from),
                    ms_to_rfc3339(tz, until)
                ),
                "add an override for the gap (POST …/schedules/{id}/overrides), or a base rotation without restrict windows",
                ProblemFacts::Gap {
                    schedule: schedule.name.clone(),
                    from: ms_to_rfc3339(tz, from),
                    until: ms_to_rfc3339(tz, until),
                    paged: !users.is_empty(),
                },
            );
            p.schedule = Some(schedule.id.clone());
            p.from = Some(ms_to_rfc3339(tz, from));
            p.until = Some(ms_to_rfc3339(tz, until));
            p.used_in = users.to_vec();
            p
        })
        .collect()
}

/// Members named by policies: not associated, or not licensed (on-call members of
/// paged schedules included for the licence).
fn policy_member_problems(
    input: &PreflightInput<'_>,
    members: &HashMap<&str, &Member>,
    oncall_first: &BTreeMap<String, (i64, Vec<String>)>,
    used_by: &HashMap<String, Vec<String>>,
) -> Vec<Problem> {
    let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for policy in input.policies {
        for (i, layer) in policy.layers.iter().enumerate() {
            for email in &layer.targets.members {
                named
                    .entry(email.clone())
                    .or_default()
                    .push(format!("escalation policy {:?} layers[{i}]", policy.name));
            }
        }
    }
    let mut problems = Vec::new();
    for (email, places) in &named {
        if !input.associated.contains(email) {
            let mut p = Problem::new(
                ProblemKind::MemberUnassociated,
                format!(
                    "{email} is paged by an escalation policy but has no DingTalk association: they get no 1:1 message and no @mention"
                ),
                "send them a link code (POST …/members/{email}/link-code), or bind their DingTalk user",
                ProblemFacts::MemberUnassociated {
                    email: email.clone(),
                },
            );
            p.member = Some(email.clone());
            p.used_in = places.clone();
            problems.push(p);
        }
    }
    let paged_schedules: HashSet<&str> = input
        .schedules
        .iter()
        .filter(|s| used_by.contains_key(&s.id))
        .map(|s| s.name.as_str())
        .collect();
    let mut unlicensed: BTreeMap<String, Vec<String>> = named;
    for (email, (_, places)) in oncall_first {
        let paged: Vec<String> = places
            .iter()
            .filter(|p| {
                paged_schedules
                    .iter()
                    .any(|n| **p == format!("schedule {n:?}"))
            })
            .cloned()
            .collect();
        if !paged.is_empty() {
            unlicensed.entry(email.clone()).or_default().extend(paged);
        }
    }
    for (email, places) in unlicensed {
        if members.get(email.as_str()).is_some_and(|m| !m.licensed) {
            let mut p = Problem::new(
                ProblemKind::MemberUnlicensed,
                format!(
                    "{email} is paged but holds no licence: they cannot acknowledge or resolve"
                ),
                "give them a licence (POST …/members with \"licensed\": true), or page someone else",
                ProblemFacts::MemberUnlicensed {
                    email: email.clone(),
                },
            );
            p.member = Some(email.clone());
            p.used_in = places;
            problems.push(p);
        }
    }
    problems
}

/// Chats named by layers, schedules and default targets that cannot receive.
fn chat_problems(input: &PreflightInput<'_>) -> Vec<Problem> {
    let mut named: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for policy in input.policies {
        for (i, layer) in policy.layers.iter().enumerate() {
            for cid in &layer.targets.chats {
                named
                    .entry(cid.clone())
                    .or_default()
                    .push(format!("escalation policy {:?} layers[{i}]", policy.name));
            }
        }
    }
    for schedule in input.schedules {
        if let Some(cid) = &schedule.chat {
            named.entry(cid.clone()).or_default().push(format!(
                "schedule {:?} (handoff announcements)",
                schedule.name
            ));
        }
    }
    for cid in input.default_chats {
        named
            .entry(cid.clone())
            .or_default()
            .push("default_targets".into());
    }
    let mut problems = Vec::new();
    for (cid, places) in named {
        let chat = input
            .chats
            .iter()
            .find(|c| c.open_conversation_id == cid || c.title.as_deref() == Some(cid.as_str()));
        let title = chat
            .and_then(|c| c.title.clone())
            .unwrap_or_else(|| cid.clone());
        let mut p = match chat {
            None => Problem::new(
                ProblemKind::MissingTarget,
                format!("group {title:?} is not on the group chat list"),
                "install the cool app in the group (group settings → cool apps), or change the layer",
                ProblemFacts::ChatNotListed {
                    title: title.clone(),
                },
            ),
            Some(c) if c.status == ChatStatus::Uninstalled => Problem::new(
                ProblemKind::ChatUninstalled,
                format!(
                    "the cool app was uninstalled from group {title:?}: nothing posted there arrives"
                ),
                "install the cool app in the group again, or change the layer",
                ProblemFacts::ChatUninstalled {
                    title: title.clone(),
                },
            ),
            Some(GroupChat {
                problem: Some(problem),
                ..
            }) => Problem::new(
                ProblemKind::ChatProblem,
                format!("group {title:?} had a delivery problem: {problem}"),
                "check the group still exists and its robot is in it; a new install clears the problem",
                ProblemFacts::ChatProblem {
                    title: title.clone(),
                    problem: problem.clone(),
                },
            ),
            Some(_) => continue,
        };
        p.chat = Some(cid);
        p.used_in = places;
        problems.push(p);
    }
    problems
}

/// The local date of `ms` in `timezone` (`YYYY-MM-DD`).
pub fn local_day(timezone: &str, ms: i64) -> String {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::Tz::UTC);
    ms_to_local(tz, ms).date().to_string()
}

/// The next 09:00 local time in `timezone` after `ms`.
pub fn next_report_ms(timezone: &str, ms: i64) -> i64 {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::Tz::UTC);
    let local = ms_to_local(tz, ms);
    let at = chrono::NaiveTime::from_hms_opt(PREFLIGHT_HOUR, 0, 0).unwrap_or_default();
    let today = local_to_ms(tz, local.date().and_time(at));
    if today > ms {
        return today;
    }
    let tomorrow = local.date().succ_opt().unwrap_or(local.date());
    local_to_ms(tz, tomorrow.and_time(at))
}

#[cfg(test)]
#[path = "preflight_tests.rs"]
mod tests;
