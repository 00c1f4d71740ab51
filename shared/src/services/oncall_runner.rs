//! On-call at run time (ARCHITECTURE.md §8): handoff messages and the daily
//! pre-flight report, fired by the same timers and once-a-minute sweep as
//! escalation.
//!
//! A handoff message is decided into the schedule's log with a conditional write
//! (so of two firings one wins), sent, then cleared from `owed`: a crash between
//! leaves it owed and the next sweep sends it. A message that cannot reach anyone
//! (no association, the group lost the cool app) is recorded in the audit log.

use std::sync::Arc;

use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use crate::clock::{Clock, rfc3339};
use crate::dingtalk::{AppCredentials, DingTalkClient, RobotMessage};
use crate::domain::budget::Priority;
use crate::domain::chat::ChatStatus;
use crate::domain::handoff::{EARLY_TOLERANCE_MS, decide_due, delivered, next_due, stale};
use crate::domain::incident::{OperationRecord, RecordKind};
use crate::domain::integration::Integration;
use crate::domain::job::Job;
use crate::domain::oncall_schedule::{HandoffKind, HandoffMessage, OnCallSchedule};
use crate::domain::oncall_timeline::on_call_at;
use crate::domain::preflight::{local_day, next_report_ms};
use crate::infra::queue::JobQueue;
use crate::render::oncall_messages::{HandoffText, handoff_notice, now_on_call, preflight_report};
use crate::services::preflight::{DEFAULT_DAYS, Preflight};
use crate::store::{DailyTimer, Store, StoreError};

/// Schedules, and integrations, one sweep takes on.
const SWEEP_LIMIT: i32 = 100;
/// Read-decide-write passes per schedule and run.
const RUN_PASSES: usize = 8;

/// What one on-call sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnCallSweepReport {
    /// Schedules looked at.
    pub schedules: usize,
    /// Handoff messages sent.
    pub sent: usize,
    /// Pre-flight reports sent.
    pub reports: usize,
    /// Schedules or reports whose run failed (retried by the next sweep).
    pub failed: usize,
}

/// Why a message did not go out.
enum SendError {
    /// It never can (recorded, then dropped).
    Permanent(String),
    /// It may later (kept owed).
    Transient(String),
}

/// Handoff messages and daily pre-flight reports.
#[derive(Clone)]
pub struct OnCallRunner {
    store: Store,
    dingtalk: DingTalkClient,
    clock: Arc<dyn Clock>,
    jobs: Option<JobQueue>,
    public_base_url: Option<String>,
}

impl OnCallRunner {
    /// The runner on `store`, sending through `dingtalk`.
    pub fn new(
        store: Store,
        dingtalk: DingTalkClient,
        clock: Arc<dyn Clock>,
        jobs: Option<JobQueue>,
        public_base_url: Option<String>,
    ) -> Self {
        Self {
            store,
            dingtalk,
            clock,
            jobs,
            public_base_url,
        }
    }

    /// Sends every due handoff message and pre-flight report.
    pub async fn sweep(&self, deadline: Instant) -> Result<OnCallSweepReport, StoreError> {
        let now_ms = self.clock.now_ms();
        let mut report = OnCallSweepReport::default();
        let due = self.store.due_schedules(now_ms, SWEEP_LIMIT).await?;
        report.schedules = due.len();
        for schedule in due {
            if Instant::now() >= deadline {
                break;
            }
            let span = info_span!("handoffs", integration_id = %schedule.integration_id, schedule_id = %schedule.id);
            match self
                .run_handoffs(&schedule.integration_id, &schedule.id)
                .instrument(span)
                .await
            {
                Ok(sent) => report.sent += sent,
                Err(err) => {
                    warn!(schedule_id = %schedule.id, error = %err, "handoff run failed; the next sweep retries it");
                    report.failed += 1;
                }
            }
        }
        for timer in self.store.due_daily_timers(now_ms, SWEEP_LIMIT).await? {
            if Instant::now() >= deadline {
                break;
            }
            let span = info_span!("preflight", integration_id = %timer.integration_id);
            match self.daily_report(&timer).instrument(span).await {
                Ok(sent) => report.reports += usize::from(sent),
                Err(err) => {
                    warn!(integration_id = %timer.integration_id, error = %err, "pre-flight report failed; the next sweep retries it");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    /// A `handoff_timer` job: early (a hop) → queued again; due → the run.
    pub async fn handoff_timer(
        &self,
        integration_id: &str,
        schedule_id: &str,
        due_ms: i64,
    ) -> Result<usize, StoreError> {
        let now_ms = self.clock.now_ms();
        if now_ms + EARLY_TOLERANCE_MS < due_ms
            && let Some(jobs) = &self.jobs
        {
            let job = Job::HandoffTimer {
                integration_id: integration_id.to_string(),
                schedule_id: schedule_id.to_string(),
                due_ms,
            };
            jobs.send_timer(&job, due_ms, now_ms)
                .await
                .map_err(|e| StoreError::Dynamo(format!("queue: {e}")))?;
            return Ok(0);
        }
        self.run_handoffs(integration_id, schedule_id).await
    }

    /// Sends what the schedule owes, decides what is due, and moves its place on
    /// the handoff index to the next message. Returns the messages sent.
    async fn run_handoffs(
        &self,
        integration_id: &str,
        schedule_id: &str,
    ) -> Result<usize, StoreError> {
        let Some(integration) = self.store.get_integration(integration_id).await? else {
            return Ok(0);
        };
        let mut sent = 0;
        for _ in 0..RUN_PASSES {
            let Some(current) = self.store.get_schedule(integration_id, schedule_id).await? else {
                return Ok(sent);
            };
            let now_ms = self.clock.now_ms();
            if let Some(message) = current.handoff.owed.first().cloned() {
                if self.deliver(&integration, &current, &message).await? {
                    sent += 1;
                }
                let next = delivered(&current, &message);
                self.write(&next, current.revision, now_ms).await?;
                continue;
            }
            match decide_due(&current, now_ms) {
                Some((next, messages)) => {
                    info!(due = messages.len(), "handoff messages due");
                    self.write(&next, current.revision, now_ms).await?;
                }
                None => {
                    // Nothing due: move the schedule to its next message on the index.
                    let mut next = current.clone();
                    next.revision = current.revision + 1;
                    self.write(&next, current.revision, now_ms).await?;
                    return Ok(sent);
                }
            }
        }
        Ok(sent)
    }

    /// Writes the schedule at its next due time; a lost race is retried by the
    /// caller's next pass (it reads again).
    async fn write(
        &self,
        next: &OnCallSchedule,
        expected: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let due = next_due(next, now_ms);
        match self.store.replace_schedule(next, expected, due).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Sends one message: true when it went out. Permanent failures are recorded
    /// and dropped; transient ones are errors while the message is still useful.
    async fn deliver(
        &self,
        integration: &Integration,
        schedule: &OnCallSchedule,
        message: &HandoffMessage,
    ) -> Result<bool, StoreError> {
        let result = self.send(integration, schedule, message).await?;
        let now_ms = self.clock.now_ms();
        let (detail, ok) = match result {
            Ok(()) => (format!("{} sent", describe(schedule, message)), true),
            Err(SendError::Permanent(why)) => (
                format!("{} not sent: {why}", describe(schedule, message)),
                false,
            ),
            Err(SendError::Transient(why)) if !stale(message, now_ms) => {
                // Kept owed: the next sweep tries again while it is still useful.
                return Err(StoreError::Dynamo(format!("DingTalk: {why}")));
            }
            Err(SendError::Transient(why)) => (
                format!("{} not sent in time: {why}", describe(schedule, message)),
                false,
            ),
        };
        if !ok {
            warn!(%detail, "handoff message failed");
        }
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind: RecordKind::Handoff,
            target: Some(match message.kind {
                HandoffKind::Notice => message.member.clone(),
                HandoffKind::Announce => schedule.chat.clone().unwrap_or_default(),
            }),
            detail,
            actor: None,
        };
        self.store
            .add_audit(&integration.id, now_ms, &record)
            .await?;
        Ok(ok)
    }

    async fn send(
        &self,
        integration: &Integration,
        schedule: &OnCallSchedule,
        message: &HandoffMessage,
    ) -> Result<Result<(), SendError>, StoreError> {
        let app = AppCredentials::from(integration).with_priority(Priority::Critical);
        let name = self
            .store
            .get_member(&integration.id, &message.member)
            .await?
            .map_or_else(|| message.member.clone(), |m| m.name);
        let shift = on_call_at(schedule, message.start_ms);
        let until_ms = if shift.members.contains(&message.member) {
            shift.until_ms
        } else {
            message.start_ms
        };
        let app_url = format!(
            "{}/dingtalk/{}/app?view=shifts",
            self.base_url(integration),
            integration.id
        );
        let text = HandoffText {
            schedule: &schedule.name,
            member: &name,
            start_ms: message.start_ms,
            until_ms,
            tz: schedule.tz(),
            app_url: &app_url,
            strings: crate::render::strings::Strings::of(integration.locale),
        };
        Ok(match message.kind {
            HandoffKind::Notice => {
                let Some(binding) = self
                    .store
                    .binding_of_member(&integration.id, &message.member)
                    .await?
                else {
                    return Ok(Err(SendError::Permanent(format!(
                        "{} has no DingTalk association (send them a link code)",
                        message.member
                    ))));
                };
                let users = [binding.dingtalk_user_id];
                self.dingtalk
                    .send_one_to_one(app, &users, &handoff_notice(&text))
                    .await
                    .map(|_| ())
                    .map_err(classify)
            }
            HandoffKind::Announce => {
                let cid = schedule.chat.clone().unwrap_or_default();
                self.announce(app, &integration.id, &cid, &now_on_call(&text))
                    .await?
            }
        })
    }

    async fn announce(
        &self,
        app: AppCredentials<'_>,
        integration_id: &str,
        cid: &str,
        message: &RobotMessage,
    ) -> Result<Result<(), SendError>, StoreError> {
        let chats = self.store.list_chats(integration_id).await?;
        let Some(chat) = chats
            .iter()
            .find(|c| c.open_conversation_id == cid && c.status == ChatStatus::Installed)
        else {
            return Ok(Err(SendError::Permanent(
                "the group has not installed the cool app (or it was uninstalled)".into(),
            )));
        };
        Ok(self
            .dingtalk
            .send_group_message(app, cid, chat.cool_app_code.as_deref(), message)
            .await
            .map(|_| ())
            .map_err(classify))
    }

    fn base_url(&self, integration: &Integration) -> String {
        self.public_base_url
            .clone()
            .unwrap_or_else(|| integration.public_base_url.clone().unwrap_or_default())
    }
}

fn classify(err: crate::dingtalk::DingTalkError) -> SendError {
    if err.is_retryable() {
        SendError::Transient(err.to_string())
    } else {
        SendError::Permanent(err.to_string())
    }
}

fn describe(schedule: &OnCallSchedule, message: &HandoffMessage) -> String {
    match message.kind {
        HandoffKind::Notice => format!(
            "handoff notice of schedule {:?} to {} (shift at {})",
            schedule.name,
            message.member,
            rfc3339(message.start_ms)
        ),
        HandoffKind::Announce => format!(
            "\"now on call: {}\" of schedule {:?} (at {})",
            message.member,
            schedule.name,
            rfc3339(message.start_ms)
        ),
    }
}

impl OnCallRunner {
    /// Sends the day's pre-flight report once (the timer is moved on first, with
    /// a condition on the day, so of two sweeps one sends it).
    async fn daily_report(&self, timer: &DailyTimer) -> Result<bool, StoreError> {
        let Some(integration) = self.store.get_integration(&timer.integration_id).await? else {
            return Ok(false);
        };
        let now_ms = self.clock.now_ms();
        let today = local_day(&integration.timezone, now_ms);
        let next = DailyTimer {
            integration_id: timer.integration_id.clone(),
            sent_day: today.clone(),
            due_ms: next_report_ms(&integration.timezone, now_ms),
        };
        if timer.sent_day == today || !self.store.advance_daily_timer(timer, &next).await? {
            return Ok(false);
        }
        let targets = &integration.default_targets;
        if targets.chats.is_empty()
            && targets.members.is_empty()
            && targets.dingtalk_user_ids.is_empty()
        {
            return Ok(false);
        }
        let preflight = Preflight::new(self.store.clone(), self.clock.clone());
        let report = preflight.report(&integration, DEFAULT_DAYS).await?;
        if report.ok {
            return Ok(false);
        }
        let message = preflight_report(
            &integration.name,
            DEFAULT_DAYS,
            &report.problems,
            crate::render::strings::Strings::of(integration.locale),
        );
        let sent = self.send_to_defaults(&integration, &message).await?;
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind: RecordKind::Preflight,
            target: None,
            detail: format!(
                "pre-flight report of {} problems sent to {sent} default targets",
                report.problems.len()
            ),
            actor: None,
        };
        self.store
            .add_audit(&integration.id, now_ms, &record)
            .await?;
        Ok(sent > 0)
    }

    /// Sends `message` to the integration's default targets; the number reached.
    async fn send_to_defaults(
        &self,
        integration: &Integration,
        message: &RobotMessage,
    ) -> Result<usize, StoreError> {
        let app = AppCredentials::from(integration).with_priority(Priority::Critical);
        let mut reached = 0;
        for cid in &integration.default_targets.chats {
            match self.announce(app, &integration.id, cid, message).await? {
                Ok(()) => reached += 1,
                Err(SendError::Permanent(why) | SendError::Transient(why)) => {
                    warn!(error = %why, "pre-flight report not sent to a group");
                }
            }
        }
        let mut users = integration.default_targets.dingtalk_user_ids.clone();
        for email in &integration.default_targets.members {
            if let Some(binding) = self.store.binding_of_member(&integration.id, email).await? {
                users.push(binding.dingtalk_user_id);
            }
        }
        if !users.is_empty() {
            match self.dingtalk.send_one_to_one(app, &users, message).await {
                Ok(_) => reached += users.len(),
                Err(err) => warn!(error = %err, "pre-flight report not sent to people"),
            }
        }
        Ok(reached)
    }
}
