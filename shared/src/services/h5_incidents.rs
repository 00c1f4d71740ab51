//! The H5 app's incidents (ARCHITECTURE.md §9): every open incident of the
//! integration an associated member can see, with filters (mine / all, severity,
//! group chat), the group chats they went to, who is on call, one incident with its
//! timeline, actions and notes.

use serde_json::{Value, json};

use crate::domain::chat::ChatStatus;
use crate::domain::incident::{Incident, IncidentStatus, OperationRecord, Severity};
use crate::domain::locale::Locale;
use crate::domain::silence::{Matcher, SilenceDuration, matchers_of, unsilenceable};
use crate::infra::session::Session;
use crate::services::h5_app::{H5App, H5Error};
use crate::services::incident_actions::{Action, ActionError};
use crate::services::incident_reader::{IncidentDetail, IncidentReader, incident_json};

/// How many resolved incidents the group view adds after the open ones.
const GROUP_RESOLVED: usize = 20;

/// Which incidents the list shows (`GET …/app/api/incidents?view=&severity=&cid=`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ListQuery<'a> {
    /// `all`: every open incident of the integration; `mine` (the default): the
    /// open ones sent or assigned to me; `group`: those sent to group `cid`, open
    /// ones first, then its latest resolved ones.
    pub view: Option<&'a str>,
    /// `critical`, `warning` or `info`: only that severity.
    pub severity: Option<&'a str>,
    /// A group chat's openConversationId: only incidents sent to it.
    pub cid: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    All,
    Mine,
    Group,
}

impl ListQuery<'_> {
    fn parse(&self) -> Result<(View, Option<Severity>, Option<&str>), H5Error> {
        let view = match self.view.unwrap_or_default() {
            "" | "mine" => View::Mine,
            "all" => View::All,
            "group" => View::Group,
            _ => {
                return Err(H5Error::Invalid(
                    "view",
                    "view must be all, mine or group".into(),
                ));
            }
        };
        let severity = match self.severity.unwrap_or_default() {
            "" => None,
            "critical" => Some(Severity::Critical),
            "warning" => Some(Severity::Warning),
            "info" => Some(Severity::Info),
            _ => {
                return Err(H5Error::Invalid(
                    "severity",
                    "severity must be critical, warning or info".into(),
                ));
            }
        };
        let cid = self.cid.filter(|c| !c.is_empty());
        if view == View::Group && cid.is_none() {
            return Err(H5Error::Invalid(
                "cid",
                "the group view needs the group's openConversationId".into(),
            ));
        }
        Ok((view, severity, cid))
    }
}

/// Whether an incident went to a group chat (named by its id or its title).
fn sent_to(incident: &Incident, cid: &str, title: Option<&String>) -> bool {
    incident
        .targets
        .chats
        .iter()
        .any(|c| c == cid || Some(c) == title)
}

impl H5App {
    /// The incidents of the list, as the API shows them plus `"mine": true|false`
    /// (sent or assigned to me). Open ones are sorted most severe first, then newest.
    /// Readers are members: an unassociated person sees nothing (403).
    pub async fn incidents(
        &self,
        session: &Session,
        query: ListQuery<'_>,
    ) -> Result<Value, H5Error> {
        let (view, severity, cid) = query.parse()?;
        let member = self.member_of(session).await?;
        let now_secs = self.clock.now_secs();
        let live = self.store.list_live_incidents(&session.iid, now_secs);
        let (all, chat) = futures::try_join!(live, async {
            match cid {
                Some(cid) => self.store.get_chat(&session.iid, cid).await,
                None => Ok(None),
            }
        })?;
        let title = chat.and_then(|c| c.title);
        let mine = |i: &Incident| {
            i.targets.members.contains(&member.email)
                || i.assignees.contains(&member.email)
                || i.targets.dingtalk_user_ids.contains(&session.uid)
        };
        let (mut open, resolved): (Vec<Incident>, Vec<Incident>) = all
            .into_iter()
            .filter(|i| cid.is_none_or(|c| sent_to(i, c, title.as_ref())))
            .filter(|i| severity.is_none_or(|s| i.severity == s))
            .partition(|i| i.status != IncidentStatus::Resolved);
        if view == View::Mine {
            open.retain(|i| mine(i));
        }
        open.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then_with(|| b.opened_at.cmp(&a.opened_at))
        });
        let resolved = resolved.into_iter().take(if view == View::Group {
            GROUP_RESOLVED
        } else {
            0
        });
        Ok(Value::Array(
            open.into_iter()
                .chain(resolved)
                .map(|i| {
                    let mut value = incident_json(&i);
                    value["mine"] = json!(mine(&i));
                    value
                })
                .collect(),
        ))
    }

    /// The group chats of the list's group filter: `[{cid, title, open}]`, with the
    /// number of open incidents sent to each; the integration's installed groups and
    /// any other group open incidents went to, busiest first.
    pub async fn groups(&self, session: &Session) -> Result<Value, H5Error> {
        self.member_of(session).await?;
        let (incidents, chats) = futures::try_join!(
            self.store.list_incidents(&session.iid),
            self.store.list_chats(&session.iid),
        )?;
        let open: Vec<&Incident> = incidents
            .iter()
            .filter(|i| i.status != IncidentStatus::Resolved)
            .collect();
        let mut groups: Vec<(usize, &str, Option<&String>)> = chats
            .iter()
            .map(|chat| {
                let cid = chat.open_conversation_id.as_str();
                let count = open
                    .iter()
                    .filter(|i| sent_to(i, cid, chat.title.as_ref()))
                    .count();
                (count, cid, chat.title.as_ref(), chat.status)
            })
            .filter(|(count, _, _, status)| *count > 0 || *status == ChatStatus::Installed)
            .map(|(count, cid, title, _)| (count, cid, title))
            .collect();
        groups.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.2.cmp(&b.2)));
        Ok(Value::Array(
            groups
                .into_iter()
                .map(|(open, cid, title)| json!({"cid": cid, "title": title, "open": open}))
                .collect(),
        ))
    }

    /// "Who is on call" (the schedules announcing in group `cid`, or all) and the
    /// person's shifts in the next 14 days.
    pub async fn oncall(&self, session: &Session, cid: Option<&str>) -> Result<Value, H5Error> {
        use crate::domain::oncall_schedule::ms_to_rfc3339;
        use crate::domain::oncall_timeline::{on_call_at, shifts};
        let member = self.member_of(session).await?;
        let (schedules, members, chats) = futures::try_join!(
            self.store.list_schedules(&session.iid),
            self.store.list_members(&session.iid),
            self.store.list_chats(&session.iid),
        )?;
        let name_of = |email: &str| {
            members
                .iter()
                .find(|m| m.email == email)
                .map_or_else(|| email.to_string(), |m| m.name.clone())
        };
        let now_ms = self.clock.now_ms();
        let horizon = now_ms + 14 * 86_400_000;
        let cid = cid.filter(|c| !c.is_empty());
        let mut board = Vec::new();
        let mut mine = Vec::new();
        for schedule in &schedules {
            let tz = schedule.tz();
            let timeline = shifts(schedule, now_ms, horizon);
            for shift in timeline.iter().filter(|s| s.member == member.email) {
                mine.push((
                    shift.start_ms,
                    json!({"schedule": schedule.name, "start": ms_to_rfc3339(tz, shift.start_ms),
                    "end": ms_to_rfc3339(tz, shift.end_ms), "source": shift.source}),
                ));
            }
            if cid.is_some() && schedule.chat.as_deref() != cid {
                continue;
            }
            let now = on_call_at(schedule, now_ms);
            let next = timeline
                .iter()
                .find(|s| s.start_ms >= now.until_ms && !now.members.contains(&s.member));
            let chat_title = schedule.chat.as_ref().map(|c| {
                chats
                    .iter()
                    .find(|g| &g.open_conversation_id == c)
                    .and_then(|g| g.title.clone())
                    .unwrap_or_else(|| c.clone())
            });
            board.push(json!({
                "id": schedule.id, "name": schedule.name, "chat": chat_title,
                "now": now.members.iter().map(|e| json!({"email": e, "name": name_of(e)})).collect::<Vec<_>>(),
                "until": ms_to_rfc3339(tz, now.until_ms),
                "next": next.map(|s| json!({"email": s.member, "name": name_of(&s.member), "start": ms_to_rfc3339(tz, s.start_ms)})),
            }));
        }
        // By instant: schedules in different zones carry different offsets.
        mine.sort_by_key(|(start_ms, _)| *start_ms);
        let mine: Vec<Value> = mine.into_iter().map(|(_, shift)| shift).collect();
        Ok(json!({"schedules": board, "my_shifts": mine}))
    }

    /// One incident with its timeline.
    pub async fn incident(
        &self,
        session: &Session,
        incident_id: &str,
    ) -> Result<IncidentDetail, H5Error> {
        self.member_of(session).await?;
        let detail = IncidentReader::new(self.store.clone(), self.clock.clone())
            .detail(incident_id)
            .await
            .map_err(|_| H5Error::NotFound("incident"))?;
        if detail.incident.integration_id != session.iid {
            return Err(H5Error::NotFound("incident"));
        }
        Ok(detail)
    }

    /// What a Silence would do, for the page to show before the person confirms:
    /// `{"available", "reason", "matchers": ["name=\"value\"", …], "durations",
    /// "silence": {"id", "until", "by"} | null}`.
    pub async fn silence_preview(
        &self,
        session: &Session,
        incident_id: &str,
    ) -> Result<Value, H5Error> {
        let (_, chosen) = self.member_and_choice(session).await?;
        let incident = self
            .store
            .get_incident(incident_id)
            .await?
            .filter(|i| i.integration_id == session.iid)
            .ok_or(H5Error::NotFound("incident"))?;
        let integration = self.integration(&session.iid).await?;
        let reason = unsilenceable(&incident, integration.alertmanager.is_some());
        let locale = chosen.unwrap_or(integration.locale);
        let matchers: Vec<String> = matchers_of(&incident)
            .iter()
            .map(Matcher::display)
            .collect();
        Ok(json!({
            "available": reason.is_none() && incident.silence.is_none(),
            "reason": reason.map(|why| why.text(locale)),
            "matchers": matchers,
            "durations": SilenceDuration::ALL.map(SilenceDuration::tag),
            "silence": incident.silence,
        }))
    }

    /// Applies an action as the session's member (bound and licensed).
    pub async fn act(
        &self,
        session: &Session,
        incident_id: &str,
        action: &str,
        (duration, member): (Option<&str>, Option<&str>),
        version: Option<u64>,
    ) -> Result<Incident, H5Error> {
        let action = Action::parse(action, duration, member).ok_or_else(|| {
            H5Error::Invalid(
                "action",
                "action must be ack, resolve, snooze (30m, 2h, 24h), escalate, reassign (with a member), silence (1h, 4h, 24h) or unsilence".into(),
            )
        })?;
        let (member, chosen) = self.member_and_choice(session).await?;
        match self
            .actions
            .apply(&session.iid, incident_id, &member, action, version)
            .await
        {
            Ok(incident) => Ok(incident),
            Err(err) => {
                let locale = self.page_locale(session, chosen).await;
                Err(action_error(err, "action", locale))
            }
        }
    }

    /// Adds a note (1 to [`crate::services::incident_actions::MAX_NOTE_CHARS`]
    /// characters after trimming) to an incident as the session's member: a `note`
    /// record in its timeline, and the upstream webhook `incident.note_added`. Any
    /// associated member may write one.
    pub async fn add_note(
        &self,
        session: &Session,
        incident_id: &str,
        text: Option<&str>,
    ) -> Result<OperationRecord, H5Error> {
        let (member, chosen) = self.member_and_choice(session).await?;
        let text = text.unwrap_or_default();
        match self
            .actions
            .add_note(&session.iid, incident_id, &member, text)
            .await
        {
            Ok(record) => Ok(record),
            Err(err) => Err(action_error(
                err,
                "text",
                self.page_locale(session, chosen).await,
            )),
        }
    }
}

/// An action's refusal as the app answers it, in the page's language; `field` names
/// what was not applicable.
fn action_error(err: ActionError, field: &'static str, locale: Locale) -> H5Error {
    match err {
        ActionError::NotFound => H5Error::NotFound("incident"),
        ActionError::NotAllowed(why) => H5Error::Forbidden(why.text(locale)),
        ActionError::Conflict(now) => H5Error::Conflict(now),
        ActionError::NotApplicable(why) => H5Error::Invalid(field, why.text(locale)),
        ActionError::Upstream(why) => H5Error::Unavailable(why.text(locale)),
        ActionError::Store(e) => H5Error::Store(e),
    }
}
