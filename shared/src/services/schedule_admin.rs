//! On-call schedules of an integration (admin API, ARCHITECTURE.md §8): validated
//! against the members and the group chat list, with overrides, who is on call
//! and the shifts of a range. Every write puts the schedule on the handoff index
//! at its next handoff message, and queues a timer when that is near.

use std::sync::Arc;

use serde_json::{Value, json};
use tracing::warn;

use crate::clock::Clock;
use crate::domain::ValidationError;
use crate::domain::handoff::next_due;
use crate::domain::job::Job;
use crate::domain::oncall_schedule::{
    MAX_OVERRIDES, OnCallSchedule, Override, ScheduleSpec, ms_to_rfc3339, parse_instant,
    validate_override, validate_schedule,
};
use crate::domain::oncall_timeline::{on_call_at, shifts};
use crate::infra::queue::JobQueue;
use crate::services::integration_center::CenterError;
use crate::store::{Store, StoreError};

/// Longest range `shifts` answers.
const MAX_RANGE_MS: i64 = 93 * 86_400_000;
/// A timer is queued for a handoff message due within this long (SQS's longest
/// delay); later ones are found by the once-a-minute sweep.
const TIMER_HORIZON_MS: i64 = 900_000;
/// Attempts at a write that races the handoff bookkeeping.
const WRITE_PASSES: usize = 5;

/// The schedule admin service.
#[derive(Clone)]
pub struct ScheduleAdmin {
    store: Store,
    clock: Arc<dyn Clock>,
    jobs: Option<JobQueue>,
}

/// A schedule as the API shows it (the handoff bookkeeping left out, times as RFC 3339).
pub fn schedule_view(schedule: &OnCallSchedule) -> Value {
    let tz = schedule.tz();
    json!({
        "id": schedule.id,
        "version": schedule.version,
        "name": schedule.name,
        "timezone": schedule.timezone,
        "rotations": schedule.rotations,
        "chat": schedule.chat,
        "handoff_notice_mins": schedule.handoff_notice_mins,
        "overrides": schedule.overrides.iter().map(|o| override_view(tz, o)).collect::<Vec<_>>(),
        "created_at": schedule.created_at,
        "updated_at": schedule.updated_at,
    })
}

fn override_view(tz: chrono_tz::Tz, o: &Override) -> Value {
    json!({
        "id": o.id,
        "member": o.member,
        "start": ms_to_rfc3339(tz, o.start_ms),
        "end": ms_to_rfc3339(tz, o.end_ms),
    })
}

impl ScheduleAdmin {
    /// The service on `store`; `jobs` queues handoff timers (none: the sweep only).
    pub fn new(store: Store, clock: Arc<dyn Clock>, jobs: Option<JobQueue>) -> Self {
        Self { store, clock, jobs }
    }

    async fn require_integration(&self, integration_id: &str) -> Result<(), CenterError> {
        match self.store.get_integration(integration_id).await? {
            Some(_) => Ok(()),
            None => Err(CenterError::NotFound),
        }
    }

    /// Parses and validates a schedule body; member emails are normalised.
    async fn spec(&self, integration_id: &str, body: &Value) -> Result<ScheduleSpec, CenterError> {
        let mut spec: ScheduleSpec = serde_path_to_error::deserialize(body.clone())
            .map_err(ValidationError::from_json_path)?;
        for rotation in &mut spec.rotations {
            for email in &mut rotation.members {
                *email = email.trim().to_ascii_lowercase();
            }
        }
        let members = self.store.member_emails(integration_id).await?;
        let chats = self.store.live_chat_ids(integration_id).await?;
        validate_schedule(&spec, |m| members.contains(m), |c| chats.contains(c))?;
        Ok(spec)
    }

    async fn name_taken(
        &self,
        integration_id: &str,
        name: &str,
        except: &str,
    ) -> Result<(), CenterError> {
        let schedules = self.store.list_schedules(integration_id).await?;
        if schedules
            .iter()
            .any(|s| s.name == name.trim() && s.id != except)
        {
            return Err(ValidationError::new(
                "name",
                format!("a schedule named {name:?} exists already"),
            )
            .into());
        }
        Ok(())
    }

    /// `POST …/schedules`: a new schedule at version 1.
    pub async fn create(&self, integration_id: &str, body: &Value) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        let spec = self.spec(integration_id, body).await?;
        self.name_taken(integration_id, &spec.name, "").await?;
        let id = format!("sch_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let now_ms = self.clock.now_ms();
        let schedule = OnCallSchedule::from_spec(integration_id, id, 1, spec, now_ms);
        let due = next_due(&schedule, now_ms);
        self.store.create_schedule(&schedule, due).await?;
        self.arm(&schedule, due, now_ms).await;
        crate::services::preflight::ensure_daily_best_effort(
            &self.store,
            integration_id,
            self.clock.now_ms(),
        )
        .await;
        Ok(schedule_view(&schedule))
    }

    /// `PUT …/schedules/{sid}`: the next version (overrides and handoff log kept).
    pub async fn replace(
        &self,
        integration_id: &str,
        id: &str,
        body: &Value,
    ) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        let spec = self.spec(integration_id, body).await?;
        self.name_taken(integration_id, &spec.name, id).await?;
        let written = self
            .modify(integration_id, id, |current, now_ms| {
                let mut next = OnCallSchedule::from_spec(
                    integration_id,
                    id.to_string(),
                    current.version + 1,
                    spec.clone(),
                    now_ms,
                );
                next.created_at = current.created_at.clone();
                next.overrides = current.overrides.clone();
                next.handoff = current.handoff.clone();
                Ok(next)
            })
            .await?;
        Ok(schedule_view(&written))
    }

    /// Reads, changes and writes a schedule under its revision, retrying races with
    /// the handoff bookkeeping; then re-indexes and arms its next handoff.
    async fn modify(
        &self,
        integration_id: &str,
        id: &str,
        change: impl Fn(&OnCallSchedule, i64) -> Result<OnCallSchedule, CenterError>,
    ) -> Result<OnCallSchedule, CenterError> {
        for _ in 0..WRITE_PASSES {
            let current = self.get_stored(integration_id, id).await?;
            let now_ms = self.clock.now_ms();
            let mut next = change(&current, now_ms)?;
            next.revision = current.revision + 1;
            next.updated_at = crate::clock::rfc3339(now_ms);
            let due = next_due(&next, now_ms);
            match self
                .store
                .replace_schedule(&next, current.revision, due)
                .await
            {
                Ok(()) => {
                    self.arm(&next, due, now_ms).await;
                    return Ok(next);
                }
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(CenterError::Conflict)
    }

    /// Queues a handoff timer when the next message is due within SQS's longest
    /// delay; a failure is left to the sweep.
    async fn arm(&self, schedule: &OnCallSchedule, due: Option<i64>, now_ms: i64) {
        let (Some(jobs), Some(due_ms)) = (&self.jobs, due) else {
            return;
        };
        if due_ms - now_ms > TIMER_HORIZON_MS {
            return;
        }
        let job = Job::HandoffTimer {
            integration_id: schedule.integration_id.clone(),
            schedule_id: schedule.id.clone(),
            due_ms,
        };
        if let Err(err) = jobs.send_timer(&job, due_ms, now_ms).await {
            warn!(error = %err, schedule_id = %schedule.id, "could not queue a handoff timer; the sweep sends it");
        }
    }

    async fn get_stored(
        &self,
        integration_id: &str,
        id: &str,
    ) -> Result<OnCallSchedule, CenterError> {
        self.store
            .get_schedule(integration_id, id)
            .await?
            .ok_or(CenterError::Missing("schedule"))
    }

    /// `GET …/schedules/{sid}`.
    pub async fn get(&self, integration_id: &str, id: &str) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        Ok(schedule_view(&self.get_stored(integration_id, id).await?))
    }

    /// `GET …/schedules`, by name.
    pub async fn list(&self, integration_id: &str) -> Result<Vec<Value>, CenterError> {
        self.require_integration(integration_id).await?;
        let mut schedules = self.store.list_schedules(integration_id).await?;
        schedules.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(schedules.iter().map(schedule_view).collect())
    }

    /// `DELETE …/schedules/{sid}`: refused (409) while a policy's layer names it.
    pub async fn delete(&self, integration_id: &str, id: &str) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        self.get_stored(integration_id, id).await?;
        let mut used_in = Vec::new();
        for policy in self.store.list_policies(integration_id).await? {
            for (i, layer) in policy.layers.iter().enumerate() {
                if layer.targets.schedules.iter().any(|s| s == id) {
                    used_in.push(format!("escalation policy {:?} layers[{i}]", policy.name));
                }
            }
        }
        if !used_in.is_empty() {
            return Err(CenterError::InUse(
                "escalation policies page this schedule: change them first".into(),
                used_in,
            ));
        }
        if !self.store.delete_schedule(integration_id, id).await? {
            return Err(CenterError::Missing("schedule"));
        }
        Ok(json!({"deleted": id}))
    }

    /// `POST …/schedules/{sid}/overrides` `{member, start, end}`: someone takes over.
    pub async fn add_override(
        &self,
        integration_id: &str,
        id: &str,
        body: &Value,
    ) -> Result<Value, CenterError> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            member: String,
            start: String,
            end: String,
        }
        self.require_integration(integration_id).await?;
        let body: Body = serde_path_to_error::deserialize(body.clone())
            .map_err(ValidationError::from_json_path)?;
        let member = body.member.trim().to_ascii_lowercase();
        if self
            .store
            .get_member(integration_id, &member)
            .await?
            .is_none()
        {
            return Err(ValidationError::new(
                "member",
                format!("no member {member:?}: add them under members first"),
            )
            .into());
        }
        let oid = format!("ovr_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let written = self
            .modify(integration_id, id, |current, now_ms| {
                let tz = current.tz();
                let start = parse_instant(tz, &body.start).ok_or_else(|| {
                    ValidationError::new("start", "RFC 3339, or local time YYYY-MM-DDTHH:MM")
                })?;
                let end = parse_instant(tz, &body.end).ok_or_else(|| {
                    ValidationError::new("end", "RFC 3339, or local time YYYY-MM-DDTHH:MM")
                })?;
                if end <= now_ms {
                    return Err(ValidationError::new("end", "the override is already over").into());
                }
                let mut next = current.clone();
                next.overrides.retain(|o| o.end_ms > now_ms);
                validate_override(start, end, &next.overrides)?;
                if next.overrides.len() >= MAX_OVERRIDES {
                    return Err(ValidationError::new("start", "too many overrides ahead").into());
                }
                next.overrides.push(Override {
                    id: oid.clone(),
                    member: member.clone(),
                    start_ms: start,
                    end_ms: end,
                });
                next.overrides.sort_by_key(|o| o.start_ms);
                next.version = current.version + 1;
                Ok(next)
            })
            .await?;
        let created = written
            .overrides
            .iter()
            .find(|o| o.id == oid)
            .ok_or(CenterError::Conflict)?;
        Ok(override_view(written.tz(), created))
    }

    /// `DELETE …/schedules/{sid}/overrides/{oid}`.
    pub async fn delete_override(
        &self,
        integration_id: &str,
        id: &str,
        oid: &str,
    ) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        self.modify(integration_id, id, |current, _| {
            if !current.overrides.iter().any(|o| o.id == oid) {
                return Err(CenterError::Missing("override"));
            }
            let mut next = current.clone();
            next.overrides.retain(|o| o.id != oid);
            next.version = current.version + 1;
            Ok(next)
        })
        .await?;
        Ok(json!({"deleted": oid}))
    }

    /// `GET …/schedules/{sid}/oncall?at=`: who is on call at `at` (now when absent).
    pub async fn oncall(
        &self,
        integration_id: &str,
        id: &str,
        at: Option<&str>,
    ) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        let schedule = self.get_stored(integration_id, id).await?;
        let tz = schedule.tz();
        let at_ms = match at.filter(|a| !a.trim().is_empty()) {
            Some(text) => parse_instant(tz, text).ok_or_else(|| {
                ValidationError::new("at", "RFC 3339, such as 2026-12-01T09:00:00+08:00")
            })?,
            None => self.clock.now_ms(),
        };
        let now = on_call_at(&schedule, at_ms);
        Ok(json!({
            "members": now.members,
            "from": ms_to_rfc3339(tz, now.from_ms),
            "until": ms_to_rfc3339(tz, now.until_ms),
        }))
    }

    /// `GET …/schedules/{sid}/shifts?from=&to=` (default: the next 7 days; at most 93).
    pub async fn shifts(
        &self,
        integration_id: &str,
        id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        let schedule = self.get_stored(integration_id, id).await?;
        let tz = schedule.tz();
        let parse = |field: &str, text: Option<&str>, default: i64| match text
            .filter(|t| !t.trim().is_empty())
        {
            Some(text) => parse_instant(tz, text).ok_or_else(|| {
                ValidationError::new(field, "RFC 3339, such as 2026-12-01T09:00:00+08:00")
            }),
            None => Ok(default),
        };
        let from_ms = parse("from", from, self.clock.now_ms())?;
        let to_ms = parse("to", to, from_ms + 7 * 86_400_000)?;
        if to_ms <= from_ms {
            return Err(ValidationError::new("to", "to must be after from").into());
        }
        if to_ms - from_ms > MAX_RANGE_MS {
            return Err(ValidationError::new("to", "at most 93 days at a time").into());
        }
        let list: Vec<Value> = shifts(&schedule, from_ms, to_ms)
            .iter()
            .map(|s| {
                json!({
                    "member": s.member,
                    "start": ms_to_rfc3339(tz, s.start_ms),
                    "end": ms_to_rfc3339(tz, s.end_ms),
                    "source": s.source,
                })
            })
            .collect();
        Ok(Value::Array(list))
    }
}
