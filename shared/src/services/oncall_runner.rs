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
use crate::domain::handoff::{EARLY_TOLERANCE_MS, decide_due, delivered, missed, next_due, stale};
use crate::domain::incident::{OperationRecord, RecordKind};
use crate::domain::integration::Integration;
use crate::domain::job::Job;
use crate::domain::oncall_schedule::{HandoffKind, HandoffMessage, OnCallSchedule};
use crate::domain::oncall_timeline::on_call_at;
use crate::infra::queue::JobQueue;
use crate::render::oncall_messages::{HandoffText, handoff_notice, now_on_call};
use crate::store::{Store, StoreError};

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

/// A handoff timer is queued for a message due within this long (SQS's longest delay).
const TIMER_HORIZON_MS: i64 = 900_000;
/// How long a run holds a message it is sending.
const LEASE_SECS: i64 = 120;
/// How long a sent message is remembered as sent.
const SENT_SECS: i64 = 3 * 86_400;

/// What became of an owed message.
enum Delivered {
    /// It went out now.
    Sent,
    /// It was sent before, or can never be (recorded): clear it.
    Done,
    /// Another run is sending it: leave it.
    InFlight,
}

fn ignore_conflict(err: StoreError) -> Result<(), StoreError> {
    match err {
        StoreError::Conflict => Ok(()),
        other => Err(other),
    }
}

/// The claim key of one message: the schedule, kind, member and shift start.
fn claim_key(schedule: &OnCallSchedule, message: &HandoffMessage) -> String {
    let kind = match message.kind {
        HandoffKind::Notice => "notice",
        HandoffKind::Announce => "announce",
    };
    format!(
        "HANDOFF#{}#{kind}#{}#{}",
        schedule.id, message.member, message.start_ms
    )
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
    /// Every integration was given its daily timer (once per instance).
    backfilled: Arc<std::sync::atomic::AtomicBool>,
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
            backfilled: Arc::new(std::sync::atomic::AtomicBool::new(false)),
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
            match Box::pin(self.run_handoffs(&schedule.integration_id, &schedule.id))
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
        if let Err(err) = self.backfill_daily().await {
            warn!(error = %err, "daily pre-flight timers not backfilled");
        }
        for timer in self.store.due_daily_timers(now_ms, SWEEP_LIMIT).await? {
            if Instant::now() >= deadline {
                break;
            }
            let span = info_span!("preflight", integration_id = %timer.integration_id);
            match Box::pin(self.daily_report(&timer)).instrument(span).await {
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
        Box::pin(self.run_handoffs(integration_id, schedule_id)).await
    }

    /// Sends what the schedule owes, decides what is due, and moves its place on
    /// the handoff index to the next message. Returns the messages sent.
    async fn run_handoffs(
        &self,
        integration_id: &str,
        schedule_id: &str,
    ) -> Result<usize, StoreError> {
        let integration = self.store.get_integration(integration_id).await?;
        let mut sent = 0;
        for _ in 0..RUN_PASSES {
            let Some(current) = self.store.get_schedule(integration_id, schedule_id).await? else {
                return Ok(sent);
            };
            let now_ms = self.clock.now_ms();
            let Some(integration) = &integration else {
                // Its integration is gone: off the index for good.
                let mut next = current.clone();
                next.revision = current.revision + 1;
                self.store
                    .replace_schedule(&next, current.revision, None)
                    .await
                    .or_else(ignore_conflict)?;
                return Ok(sent);
            };
            if let Some(message) = current.handoff.owed.first().cloned() {
                match self.deliver_once(integration, &current, &message).await? {
                    Delivered::Sent => sent += 1,
                    Delivered::Done => {}
                    Delivered::InFlight => return Ok(sent),
                }
                let next = delivered(&current, &message);
                self.write(&next, current.revision, now_ms).await?;
                continue;
            }
            if let Some((next, missed)) = missed(&current, now_ms) {
                self.write(&next, current.revision, now_ms).await?;
                for message in &missed {
                    let detail = format!(
                        "{} not sent: its time passed before a sweep ran",
                        describe(&current, message)
                    );
                    self.audit(integration, &current, message, detail).await;
                }
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

    /// Writes the schedule at its next due time, and queues a timer when that is
    /// within SQS's longest delay; a lost race is retried by the caller's next pass.
    async fn write(
        &self,
        next: &OnCallSchedule,
        expected: u64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let due = next_due(next, now_ms);
        self.store
            .replace_schedule(next, expected, due)
            .await
            .or_else(ignore_conflict)?;
        if let (Some(jobs), Some(due_ms)) = (&self.jobs, due)
            && due_ms > now_ms
            && due_ms - now_ms <= TIMER_HORIZON_MS
        {
            let job = Job::HandoffTimer {
                integration_id: next.integration_id.clone(),
                schedule_id: next.id.clone(),
                due_ms,
            };
            if let Err(err) = jobs.send_timer(&job, due_ms, now_ms).await {
                warn!(error = %err, "could not queue a handoff timer; the sweep sends it");
            }
        }
        Ok(())
    }

    /// Sends an owed message at most once: a message already sent (a `SENT` claim)
    /// is done; one another run is sending (a 2-minute `LEASE`) is left to it; a
    /// stale one is dropped with a record.
    async fn deliver_once(
        &self,
        integration: &Integration,
        schedule: &OnCallSchedule,
        message: &HandoffMessage,
    ) -> Result<Delivered, StoreError> {
        let key = claim_key(schedule, message);
        let now_secs = self.clock.now_ms() / 1000;
        if self
            .store
            .claimed(&integration.id, &format!("SENT#{key}"), now_secs)
            .await?
        {
            return Ok(Delivered::Done);
        }
        if !self
            .store
            .claim(
                &integration.id,
                &format!("LEASE#{key}"),
                now_secs,
                LEASE_SECS,
            )
            .await?
        {
            return Ok(Delivered::InFlight);
        }
        let outcome = if stale(message, self.clock.now_ms()) {
            Err(SendError::Permanent(
                "too late: the shift began a while ago".into(),
            ))
        } else {
            self.send(integration, schedule, message).await?
        };
        if let Err(SendError::Transient(why)) = &outcome {
            self.store
                .release(&integration.id, &format!("LEASE#{key}"))
                .await?;
            return Err(StoreError::Dynamo(format!("DingTalk: {why}")));
        }
        self.store
            .claim(&integration.id, &format!("SENT#{key}"), now_secs, SENT_SECS)
            .await?;
        let ok = outcome.is_ok();
        let detail = match outcome {
            Ok(()) => format!("{} sent", describe(schedule, message)),
            Err(SendError::Permanent(why) | SendError::Transient(why)) => {
                warn!(error = %why, "handoff message not sent");
                format!("{} not sent: {why}", describe(schedule, message))
            }
        };
        self.audit(integration, schedule, message, detail).await;
        Ok(if ok { Delivered::Sent } else { Delivered::Done })
    }

    /// An audit record of a handoff message (a failure to write it is logged).
    async fn audit(
        &self,
        integration: &Integration,
        schedule: &OnCallSchedule,
        message: &HandoffMessage,
        detail: String,
    ) {
        let now_ms = self.clock.now_ms();
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
        if let Err(err) = self.store.add_audit(&integration.id, now_ms, &record).await {
            warn!(error = %err, "handoff audit record not written");
        }
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

#[path = "oncall_daily.rs"]
mod daily;
