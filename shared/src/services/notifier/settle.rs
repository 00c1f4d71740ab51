//! Settling a claimed delivery step from its outcome (ARCHITECTURE.md §5.1): sent,
//! retried later (the claim is released), or given up with a record that says
//! what to do. Also the QPS backoff and the 1:1 batch send they share.

use tokio::time::Instant;
use tracing::{info, warn};

use super::{JobError, Notifier, priority_of};
use crate::clock::rfc3339;
use crate::dingtalk::{AppCredentials, DingTalkError, RobotMessage};
use crate::domain::delivery::{
    Channel, DeliveryKey, DeliveryStep, StepOutcome, StepState, TargetKind,
};
use crate::domain::incident::{Incident, OperationRecord, RecordKind};
use crate::domain::integration::Integration;
use crate::store::StoreError;
use crate::store::ports::{ChatDirectory, DeliveryLedger};

/// A send's result: a reference (processQueryKey / outTrackId) or an error.
pub(super) type SendResult = Result<String, DingTalkError>;

/// A person a 1:1 message goes to, for one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Recipient {
    /// DingTalk userId.
    pub(super) user_id: String,
    /// How they are named in records.
    pub(super) label: String,
    /// The round the message belongs to.
    pub(super) round: u32,
}

/// One claimed step of one target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Claimed<'a> {
    /// The incident.
    pub incident_id: &'a str,
    /// The notification round.
    pub round: u32,
    /// The kind of target.
    pub kind: TargetKind,
    /// openConversationId or userId.
    pub target: &'a str,
    /// How the target is named in records.
    pub label: &'a str,
    /// The step.
    pub step: DeliveryStep,
    /// How it is sent.
    pub channel: Channel,
}

impl<'a> Claimed<'a> {
    fn key(&self) -> DeliveryKey<'a> {
        DeliveryKey {
            round: self.round,
            incident_id: self.incident_id,
            kind: self.kind,
            target: self.target,
        }
    }
}

/// How a step settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settled {
    /// Delivered.
    Sent,
    /// May pass: the claim is released and the record retried.
    Retry(String),
    /// Given up; `chat_problem` when the group itself refused (robot gone, …).
    Failed {
        /// The group chat was marked with the problem.
        chat_problem: bool,
    },
}

/// What to record for a failure that will not pass, and what to do about it.
pub(crate) fn failure_record(err: &DingTalkError) -> (RecordKind, &'static str) {
    match err {
        DingTalkError::QuotaReserved => (
            RecordKind::Suppressed,
            "the month's remaining DingTalk calls are kept for critical alerts; lower severities resume on the 1st (or raise monthly_quota)",
        ),
        DingTalkError::QuotaExhausted { .. } => (
            RecordKind::QuotaExhausted,
            "the organisation's monthly DingTalk API quota is used up; sending resumes on the 1st, or raise the quota (edition / add-on pack)",
        ),
        DingTalkError::InvalidTarget { .. } => (
            RecordKind::Failed,
            "DingTalk refused this target (robot not in the group, group disbanded or robot stopped); check the group and reinstall the cool app",
        ),
        DingTalkError::PermissionDenied { .. } => (
            RecordKind::Failed,
            "the app lacks a permission: grant it in the DingTalk developer console (qyapi_robot_sendmsg, Card.Instance.Write)",
        ),
        DingTalkError::InvalidCredentials { .. } => (
            RecordKind::Failed,
            "DingTalk refused the app's Client ID / Client Secret: update them in the integration",
        ),
        _ => (RecordKind::Failed, "DingTalk refused the request"),
    }
}

fn sent_what(step: DeliveryStep, channel: Channel) -> &'static str {
    match (step, channel) {
        (DeliveryStep::Alert, Channel::Card) => "card delivered",
        (DeliveryStep::Alert, Channel::Ding) => "DING sent",
        (DeliveryStep::Alert, _) => "message sent",
        (DeliveryStep::Resolved, _) => "resolved follow-up sent",
        (DeliveryStep::Recall, _) => "DING recalled",
    }
}

/// Appends a record; a failure to write it is logged, not fatal (the step it
/// describes is already settled).
pub(crate) async fn best_effort_record(
    ledger: &dyn DeliveryLedger,
    incident_id: &str,
    at_ms: i64,
    record: &OperationRecord,
) {
    if let Err(err) = ledger.add_record(incident_id, at_ms, record).await {
        warn!(error = %err, "could not write an operation record");
    }
}

/// Completes a claimed step from its outcome; returns how it settled and the
/// record to write for it (none for a retry).
pub(crate) async fn settle_step(
    ledger: &dyn DeliveryLedger,
    chats: &dyn ChatDirectory,
    integration_id: &str,
    now_ms: i64,
    claimed: Claimed<'_>,
    outcome: SendResult,
) -> Result<(Settled, Option<OperationRecord>), StoreError> {
    let record = |kind: RecordKind, detail: String| OperationRecord {
        at: rfc3339(now_ms),
        kind,
        target: Some(claimed.label.to_string()),
        detail,
        actor: None,
    };
    let finish = |state, reference, error| StepOutcome {
        step: claimed.step,
        state,
        channel: claimed.channel,
        reference,
        error,
    };
    match outcome {
        Ok(reference) => {
            ledger
                .finish_step(
                    claimed.key(),
                    finish(StepState::Sent, Some(&reference), None),
                )
                .await?;
            let detail = format!(
                "{} ({})",
                sent_what(claimed.step, claimed.channel),
                claimed.kind.as_str()
            );
            Ok((Settled::Sent, Some(record(RecordKind::Sent, detail))))
        }
        Err(err) if err.is_retryable() => {
            warn!(target = %claimed.label, error = %err, "delivery will be retried");
            ledger.release_step(claimed.key(), &err.to_string()).await?;
            Ok((Settled::Retry(format!("{}: {err}", claimed.label)), None))
        }
        Err(err) => {
            let text = err.to_string();
            ledger
                .finish_step(claimed.key(), finish(StepState::Failed, None, Some(&text)))
                .await?;
            let chat_problem = claimed.kind == TargetKind::Chat
                && matches!(err, DingTalkError::InvalidTarget { .. });
            if chat_problem {
                chats
                    .mark_chat_problem(integration_id, claimed.target, &text, &rfc3339(now_ms))
                    .await?;
            }
            let (kind, fix) = failure_record(&err);
            let failed = record(kind, format!("{err}: {fix}"));
            Ok((Settled::Failed { chat_problem }, Some(failed)))
        }
    }
}

impl Notifier {
    /// Settles a claimed step; a retryable failure sets `retry`.
    pub(super) async fn settle(
        &self,
        integration: &Integration,
        claimed: Claimed<'_>,
        outcome: SendResult,
        retry: &mut Option<String>,
    ) -> Result<(), StoreError> {
        let now_ms = self.clock.now_ms();
        let incident_id = claimed.incident_id;
        let (settled, record) = settle_step(
            self.ledger.as_ref(),
            self.chat_directory.as_ref(),
            &integration.id,
            now_ms,
            claimed,
            outcome,
        )
        .await?;
        if let Some(record) = record {
            self.keep_record(incident_id, now_ms, record).await;
        }
        match settled {
            Settled::Retry(reason) => *retry = Some(reason),
            Settled::Failed { chat_problem: true } => self.forget_chats(&integration.id),
            Settled::Sent => self.metric(&integration.id, "Deliveries", 1.0, "Count"),
            Settled::Failed { .. } => {}
        }
        Ok(())
    }

    /// Retries QPS refusals within the time budget.
    pub(super) async fn with_backoff<T, F, Fut>(
        &self,
        deadline: Instant,
        send: F,
    ) -> Result<T, DingTalkError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, DingTalkError>>,
    {
        loop {
            match send().await {
                Err(DingTalkError::QpsLimited { code })
                    if Instant::now()
                        + self.settings.qps_backoff
                        + self.settings.deadline_margin
                        < deadline =>
                {
                    info!(%code, "throttled by DingTalk; waiting for the next window");
                    let jitter = std::time::Duration::from_millis(u64::from(rand_u8()) * 2);
                    tokio::time::sleep(self.settings.qps_backoff + jitter).await;
                }
                other => return other,
            }
        }
    }

    /// 1:1 robot messages to claimed people, 20 a call.
    pub(super) async fn send_to_users(
        &self,
        integration: &Integration,
        incident: &Incident,
        users: &[Recipient],
        message: &RobotMessage,
        step: DeliveryStep,
        deadline: Instant,
    ) -> Result<Option<String>, JobError> {
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        let mut retry = None;
        for chunk in users.chunks(20) {
            let ids: Vec<String> = chunk.iter().map(|r| r.user_id.clone()).collect();
            let result = self
                .with_backoff(deadline, || {
                    self.dingtalk.send_one_to_one(app, &ids, message)
                })
                .await;
            for Recipient {
                user_id,
                label,
                round,
            } in chunk
            {
                let outcome = match &result {
                    Ok(sent) if sent.invalid_staff_id_list.contains(user_id) => {
                        Err(DingTalkError::InvalidTarget {
                            code: "invalidStaffIdList".into(),
                            message: "DingTalk does not know this userId".into(),
                        })
                    }
                    Ok(sent) if sent.flow_controlled_staff_id_list.contains(user_id) => {
                        Err(DingTalkError::QpsLimited {
                            code: "flowControlledStaffIdList".into(),
                        })
                    }
                    Ok(sent) => Ok(sent.process_query_key.clone()),
                    Err(err) => Err(err.clone()),
                };
                let claimed = Claimed {
                    incident_id: &incident.id,
                    round: *round,
                    kind: TargetKind::User,
                    target: user_id,
                    label,
                    step,
                    channel: Channel::Robot,
                };
                self.settle(integration, claimed, outcome, &mut retry)
                    .await?;
            }
        }
        Ok(retry)
    }
}

/// A random byte (jitter).
pub(super) fn rand_u8() -> u8 {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    byte[0]
}

#[cfg(test)]
#[path = "settle_tests.rs"]
mod tests;
