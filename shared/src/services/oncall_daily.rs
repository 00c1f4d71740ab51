//! The daily pre-flight report (ARCHITECTURE.md §10), in two phases so that a day's
//! report is sent once and never lost: the sweep marks the day's report owed with a
//! conditional write on the timer (of two sweeps, one wins) that also claims it for
//! [`OWED_LEASE_MS`], sends it, then clears the mark. A failure leaves it owed; once
//! the claim lapses, the next sweep claims it the same way and sends it (the same
//! day). A sweep running meanwhile does not see it as due, so it is never sent twice.

use std::sync::atomic::Ordering;

use tracing::{info, warn};

use super::{OnCallRunner, SendError};
use crate::clock::rfc3339;
use crate::dingtalk::{AppCredentials, RobotMessage};
use crate::domain::budget::Priority;
use crate::domain::incident::{OperationRecord, RecordKind};
use crate::domain::integration::Integration;
use crate::domain::preflight::{local_day, next_report_ms};
use crate::render::oncall_messages::preflight_report;
use crate::services::preflight::{DEFAULT_DAYS, Preflight, ensure_daily};
use crate::store::{DailyTimer, StoreError};

/// How long the run that claimed an owed report has to send it before another run
/// may (longer than a notifier invocation may last).
pub const OWED_LEASE_MS: i64 = 5 * 60 * 1000;

impl OnCallRunner {
    /// Gives every integration its daily timer, once per instance (integrations
    /// made before the pre-flight check existed have none).
    pub(super) async fn backfill_daily(&self) -> Result<(), StoreError> {
        if self.backfilled.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        for integration in self.store.list_integrations().await? {
            ensure_daily(&self.store, &integration, now_ms).await?;
        }
        Ok(())
    }

    /// Runs a due daily timer: decides today's report (once), sends what is owed,
    /// or moves a timer that is early or already done to its next time. True when
    /// a report went out.
    pub(super) async fn daily_report(&self, timer: &DailyTimer) -> Result<bool, StoreError> {
        let Some(integration) = self.store.get_integration(&timer.integration_id).await? else {
            return Ok(false);
        };
        let now_ms = self.clock.now_ms();
        let today = local_day(&integration.timezone, now_ms);
        let moved_on = |sent_day: String| DailyTimer {
            integration_id: timer.integration_id.clone(),
            sent_day,
            due_ms: next_report_ms(&integration.timezone, now_ms),
            owed: false,
        };
        if timer.owed {
            if timer.sent_day != today {
                // Owed since an earlier day: stale, dropped.
                self.store
                    .advance_daily_timer(timer, &moved_on(timer.sent_day.clone()))
                    .await?;
                return Ok(false);
            }
            // Claimed again (the first run's claim lapsed): one run sends it.
            let claimed = DailyTimer {
                due_ms: now_ms + OWED_LEASE_MS,
                ..timer.clone()
            };
            if !self.store.advance_daily_timer(timer, &claimed).await? {
                return Ok(false);
            }
            return self
                .send_owed(&integration, &claimed, moved_on(today))
                .await;
        }
        if timer.sent_day == today {
            // Already sent today (a time zone change, say): on to the next time.
            self.store
                .advance_daily_timer(timer, &moved_on(today))
                .await?;
            return Ok(false);
        }
        let owed = DailyTimer {
            integration_id: timer.integration_id.clone(),
            sent_day: today.clone(),
            due_ms: now_ms + OWED_LEASE_MS,
            owed: true,
        };
        if !self.store.advance_daily_timer(timer, &owed).await? {
            return Ok(false);
        }
        self.send_owed(&integration, &owed, moved_on(today)).await
    }

    /// Sends the owed report (when there are problems and default targets), then
    /// clears the mark; a retryable failure that reached nobody leaves it owed.
    async fn send_owed(
        &self,
        integration: &Integration,
        owed: &DailyTimer,
        done: DailyTimer,
    ) -> Result<bool, StoreError> {
        let targets = &integration.default_targets;
        let nobody = targets.chats.is_empty()
            && targets.members.is_empty()
            && targets.dingtalk_user_ids.is_empty();
        let preflight = Preflight::new(self.store.clone(), self.clock.clone());
        let report = preflight.report(integration, DEFAULT_DAYS).await?;
        let mut sent = 0;
        if !nobody && !report.ok {
            let message = preflight_report(
                &integration.name,
                DEFAULT_DAYS,
                &report.problems,
                integration.locale,
            );
            let (reached, retry) = self.send_to_defaults(integration, &message).await?;
            if reached == 0 && retry {
                return Err(StoreError::Dynamo(
                    "DingTalk refused the pre-flight report; the next sweep sends it".into(),
                ));
            }
            sent = reached;
            let now_ms = self.clock.now_ms();
            let record = OperationRecord {
                at: rfc3339(now_ms),
                kind: RecordKind::Preflight,
                target: None,
                detail: format!(
                    "pre-flight report of {} problems sent to {reached} default targets",
                    report.problems.len()
                ),
                actor: None,
            };
            if let Err(err) = self.store.add_audit(&integration.id, now_ms, &record).await {
                warn!(error = %err, "pre-flight audit record not written");
            }
        }
        if !self.store.advance_daily_timer(owed, &done).await? {
            info!("the pre-flight timer moved meanwhile");
        }
        Ok(sent > 0)
    }

    /// Sends `message` to the integration's default targets: the number reached,
    /// and whether a failure may pass on a retry.
    async fn send_to_defaults(
        &self,
        integration: &Integration,
        message: &RobotMessage,
    ) -> Result<(usize, bool), StoreError> {
        let app = AppCredentials::from(integration).with_priority(Priority::Critical);
        let (mut reached, mut retry) = (0, false);
        for cid in &integration.default_targets.chats {
            match self.announce(app, &integration.id, cid, message).await? {
                Ok(()) => reached += 1,
                Err(SendError::Permanent(why)) => {
                    warn!(error = %why, "pre-flight report not sent to a group");
                }
                Err(SendError::Transient(why)) => {
                    warn!(error = %why, "pre-flight report not sent to a group");
                    retry = true;
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
                Err(err) => {
                    warn!(error = %err, "pre-flight report not sent to people");
                    retry |= err.is_retryable();
                }
            }
        }
        Ok((reached, retry))
    }
}
