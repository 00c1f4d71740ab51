//! The notifier (ARCHITECTURE.md §2.4, §5.1): alert events from SQS become incidents
//! and DingTalk messages for group chats and people, each delivered once, every
//! outcome recorded; internal jobs update cards, call the upstream webhook, prompt
//! people to associate and refresh storm digests.
//!
//! Exactly-once effect over at-least-once delivery: every (incident, target, step)
//! is claimed with a conditional write before it is sent and completed after, so a
//! redelivered message or a duplicate event never sends twice; a failure that may
//! pass (throttling beyond the time budget, DingTalk or network trouble) releases
//! the claim and fails the SQS record so it is retried.
//!
//! One file per job and step: [`alert`], [`rounds`], [`resolved`], [`targets`],
//! [`settle`], [`cards`], [`storm`], [`usage_notice`], [`webhook`], [`link_prompt`],
//! [`incident_changed`], [`escalation`] (timers and the sweep), [`ding`] and
//! [`mentions`] (mobiles an alert @mentions).

mod alert;
mod batch;
mod cards;
mod ding;
pub mod escalation;
mod incident_changed;
mod link_prompt;
mod mentions;
mod resolved;
mod rounds;
mod settle;
pub mod storm;
mod targets;
mod usage_notice;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::StreamExt;
use tokio::time::Instant;
use tracing::{Instrument, error, info, info_span, warn};

use crate::clock::{Clock, rfc3339};
use crate::dingtalk::DingTalkClient;
use crate::domain::budget::Priority;
use crate::domain::chat::GroupChat;
use crate::domain::incident::{Incident, OperationRecord, RecordKind, Severity};
use crate::domain::integration::Integration;
use crate::domain::job::{Job, MessageError, QueueMessage};
use crate::infra::metrics::{MetricsSink, emit_now};
use crate::infra::outbound::OutboundPolicy;
use crate::infra::queue::{JobQueue, RetryBackoff};
use crate::store::ports::{ChatDirectory, DeliveryLedger, RateCounters, TimelineEntry};
use crate::store::{IncidentBook, Store, StoreError};
use batch::BatchScope;

/// Tunables of the notifier.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// How long a delivery claim blocks other attempts.
    pub lease: Duration,
    /// Wait after a QPS refusal before trying again.
    pub qps_backoff: Duration,
    /// Time kept free before the invocation deadline.
    pub deadline_margin: Duration,
    /// How soon a record that failed with something that may pass comes back.
    pub retry: RetryBackoff,
    /// Records of a batch handled at once (records of one incident key stay in order).
    pub concurrency: usize,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            qps_backoff: Duration::from_millis(1_100),
            deadline_margin: Duration::from_secs(3),
            retry: RetryBackoff::default(),
            concurrency: 10,
        }
    }
}

impl NotifierSettings {
    /// The claim lease in ms.
    fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease.as_millis()).unwrap_or(60_000)
    }
}

/// Why a record was not processed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The message can never be processed (malformed, unknown version or integration);
    /// it goes to the DLQ after the redrive count.
    #[error("unprocessable message: {0}")]
    Malformed(String),
    /// Something that may pass; SQS delivers the record again.
    #[error("will retry: {0}")]
    Retry(String),
}

impl From<StoreError> for JobError {
    fn from(err: StoreError) -> Self {
        Self::Retry(err.to_string())
    }
}

impl From<MessageError> for JobError {
    fn from(err: MessageError) -> Self {
        Self::Malformed(err.to_string())
    }
}

/// The storage the notifier works on: the ports of its incident, delivery, storm
/// and usage logic (the one DynamoDB table in production; in memory in tests and
/// the bench's in-memory phase).
#[derive(Clone)]
pub struct NotifierStores {
    /// Integrations, members and incidents.
    pub incidents: Arc<dyn IncidentBook>,
    /// Delivery items and operation records.
    pub ledger: Arc<dyn DeliveryLedger>,
    /// Governor and storm counters.
    pub counters: Arc<dyn RateCounters>,
    /// The group chat list.
    pub chats: Arc<dyn ChatDirectory>,
}

impl NotifierStores {
    /// Every port on the one DynamoDB store.
    pub fn on(store: Store) -> Self {
        let shared = Arc::new(store);
        Self {
            incidents: shared.clone(),
            ledger: shared.clone(),
            counters: shared.clone(),
            chats: shared,
        }
    }
}

/// The notifier service.
#[derive(Clone)]
pub struct Notifier {
    store: Arc<dyn IncidentBook>,
    ledger: Arc<dyn DeliveryLedger>,
    counters: Arc<dyn RateCounters>,
    chat_directory: Arc<dyn ChatDirectory>,
    dingtalk: DingTalkClient,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn MetricsSink>,
    public_base_url: Option<String>,
    settings: NotifierSettings,
    jobs: Option<JobQueue>,
    outbound: OutboundPolicy,
    /// Reads shared by the records of one SQS batch (None outside a batch).
    batch: Option<Arc<BatchScope>>,
    /// Handoff messages and pre-flight reports (None on in-memory ports).
    oncall: Option<crate::services::oncall_runner::OnCallRunner>,
    /// Mobile → userId answers of this warm container.
    mobiles: Arc<mentions::MobileCache>,
}

/// Where the notifier sends and what it reports to.
pub struct NotifierParts {
    /// The DingTalk client.
    pub dingtalk: DingTalkClient,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// The metrics sink.
    pub metrics: Arc<dyn MetricsSink>,
    /// Base of H5 links (else each integration's).
    pub public_base_url: Option<String>,
    /// Where jobs are queued (webhook retries, digest refreshes).
    pub jobs: Option<JobQueue>,
    /// Where calls on a user's behalf (the webhook) may go.
    pub outbound: OutboundPolicy,
}

impl Notifier {
    /// A notifier on `stores`, sending through `parts`.
    pub fn new(stores: NotifierStores, parts: NotifierParts, settings: NotifierSettings) -> Self {
        Self {
            store: stores.incidents,
            ledger: stores.ledger,
            counters: stores.counters,
            chat_directory: stores.chats,
            dingtalk: parts.dingtalk,
            clock: parts.clock,
            metrics: parts.metrics,
            public_base_url: parts.public_base_url,
            settings,
            jobs: parts.jobs,
            outbound: parts.outbound,
            batch: None,
            oncall: None,
            mobiles: Arc::default(),
        }
    }

    /// The same notifier, also sending handoff messages and pre-flight reports.
    pub fn with_oncall(mut self, runner: crate::services::oncall_runner::OnCallRunner) -> Self {
        self.oncall = Some(runner);
        self
    }

    /// Handles an SQS batch: records of different incident keys concurrently (at
    /// most `settings.concurrency` at once), records of one key in their order.
    /// Failed records are reported for retry.
    pub async fn handle_batch(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let scope = Arc::new(BatchScope::default());
        let scoped = Self {
            batch: Some(scope.clone()),
            ..self.clone()
        };
        let order: Vec<String> = event
            .records
            .iter()
            .map(|r| r.message_id.clone().unwrap_or_default())
            .collect();
        let mut groups: Vec<(String, Vec<SqsMessage>)> = Vec::new();
        for record in event.records {
            let key = ordering_key(&record);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, records)) => records.push(record),
                None => groups.push((key, vec![record])),
            }
        }
        let handled = futures::stream::iter(groups)
            .map(|(_, records)| scoped.handle_in_order(records, deadline))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect::<Vec<Vec<String>>>();
        // Month usage is counted in memory during the batch and written once.
        let mut failed: Vec<String> = match self.dingtalk.governor() {
            Some(governor) => governor.batched_usage(handled).await,
            None => handled.await,
        }
        .into_iter()
        .flatten()
        .collect();
        let records = scope.take_records();
        if let Err(err) = self.ledger.add_records(&records).await {
            warn!(error = %err, count = records.len(), "could not write the batch's operation records");
        }
        // Reported in the batch's order, whatever order they finished in.
        failed.sort_by_key(|id| order.iter().position(|o| o == id));
        let mut response = SqsBatchResponse::default();
        for id in failed {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Handles records one after another; returns the ids of those that failed.
    async fn handle_in_order(&self, records: Vec<SqsMessage>, deadline: Instant) -> Vec<String> {
        let mut failed = Vec::new();
        for record in records {
            if let Err(id) = self.handle_one(record, deadline).await {
                failed.push(id);
            }
        }
        failed
    }

    /// Handles one record; a failure is logged and its id returned.
    async fn handle_one(&self, record: SqsMessage, deadline: Instant) -> Result<(), String> {
        let id = record.message_id.clone().unwrap_or_default();
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .cloned()
            .unwrap_or_default();
        let span = info_span!("sqs_record", message_id = %id, receive_count = %receive_count);
        let sent_ms = record
            .attributes
            .get("SentTimestamp")
            .and_then(|t| t.parse::<i64>().ok());
        let body = record.body.as_deref().unwrap_or_default();
        let Err(err) = self
            .handle_record(body, sent_ms, deadline)
            .instrument(span)
            .await
        else {
            return Ok(());
        };
        match &err {
            JobError::Malformed(reason) => {
                error!(message_id = %id, %reason, "message cannot be processed; it moves to the DLQ after the redrive count")
            }
            JobError::Retry(reason) => {
                warn!(message_id = %id, %reason, "record failed; SQS will deliver it again");
                let count = receive_count.parse().unwrap_or(1);
                self.retry_soon(record.receipt_handle.as_deref(), count)
                    .await;
            }
        }
        // The first reason is kept for the dead-letter queue peek (GET /api/dlq).
        let noted = match id.is_empty() {
            true => Ok(()),
            false => {
                let now_ms = self.clock.now_ms();
                self.ledger
                    .note_first_error(&id, &err.to_string(), now_ms)
                    .await
            }
        };
        if let Err(store_err) = noted {
            warn!(message_id = %id, error = %store_err, "could not keep the record's first error");
        }
        Err(id)
    }

    /// Handles one message body: an alert event or a job (ARCHITECTURE.md §6.4).
    pub async fn handle_message(&self, body: &str, deadline: Instant) -> Result<(), JobError> {
        self.handle_record(body, None, deadline).await
    }

    /// Handles one message body sent at `sent_ms` (SQS `SentTimestamp`, when known).
    pub async fn handle_record(
        &self,
        body: &str,
        sent_ms: Option<i64>,
        deadline: Instant,
    ) -> Result<(), JobError> {
        match QueueMessage::parse(body)? {
            QueueMessage::Alert(event) => self.alert(*event, sent_ms, deadline).await,
            QueueMessage::Job(job) => self.job(job, deadline).await,
        }
    }

    /// Shortens a failed record's wait to the retry backoff (else it would wait the
    /// queue's whole visibility timeout).
    async fn retry_soon(&self, receipt_handle: Option<&str>, receive_count: u32) {
        let (Some(jobs), Some(receipt)) = (&self.jobs, receipt_handle) else {
            return;
        };
        let jitter = f64::from(settle::rand_u8()) / 256.0;
        let delay = self.settings.retry.delay(receive_count, jitter);
        match jobs.retry_after(receipt, delay).await {
            Ok(()) => info!(delay_secs = delay.as_secs(), "record comes back soon"),
            Err(err) => {
                warn!(error = %err, "could not shorten the retry; the visibility timeout applies")
            }
        }
    }

    async fn job(&self, job: Job, deadline: Instant) -> Result<(), JobError> {
        let integration = self.job_integration(&job).await?;
        match job {
            Job::IncidentChanged {
                incident_id,
                version,
                ..
            } => {
                self.incident_changed(&integration, &incident_id, version, deadline)
                    .await
            }
            Job::Webhook {
                incident_id,
                attempt,
                event,
                ..
            } => {
                self.webhook(&integration, &incident_id, attempt, event)
                    .await
            }
            Job::LinkPrompt { user_id, .. } => self.link_prompt(&integration, &user_id).await,
            Job::DigestRefresh {
                chat,
                window,
                create,
                ..
            } => {
                self.digest_refresh(&integration, &chat, window, create)
                    .await
            }
            Job::EscalationTimer {
                incident_id,
                epoch,
                due_ms,
                ..
            } => {
                let span = info_span!("escalation_timer", integration_id = %integration.id, incident_id = %incident_id, epoch);
                self.escalation_timer(&integration, &incident_id, epoch, due_ms, deadline)
                    .instrument(span)
                    .await
            }
            Job::HandoffTimer {
                schedule_id,
                due_ms,
                ..
            } => {
                let Some(runner) = &self.oncall else {
                    return Err(JobError::Retry("this notifier sends no handoffs".into()));
                };
                let span = info_span!("handoff_timer", integration_id = %integration.id, schedule_id = %schedule_id);
                runner
                    .handoff_timer(&integration.id, &schedule_id, due_ms)
                    .instrument(span)
                    .await
                    .map(|_| ())
                    .map_err(JobError::from)
            }
        }
    }

    /// The integration a job names; an unknown one makes the job unprocessable.
    async fn job_integration(&self, job: &Job) -> Result<Integration, JobError> {
        let id = job.integration_id();
        self.integration(id).await?.ok_or_else(|| {
            JobError::Malformed(format!("{} job for unknown integration {id}", job.kind()))
        })
    }

    /// The integration `id`, read once per batch.
    async fn integration(&self, id: &str) -> Result<Option<Integration>, StoreError> {
        let read = self.store.get_integration(id);
        match &self.batch {
            Some(batch) => batch.integrations.get_or_read(id, read).await,
            None => read.await,
        }
    }

    /// The integration's group chat list, read once per batch.
    async fn chats(&self, integration_id: &str) -> Result<Vec<GroupChat>, StoreError> {
        let read = self.chat_directory.list_chats(integration_id);
        match &self.batch {
            Some(batch) => batch.chats.get_or_read(integration_id, read).await,
            None => read.await,
        }
    }

    /// Forgets the batch's chat list of an integration (a chat's state changed).
    fn forget_chats(&self, integration_id: &str) {
        if let Some(batch) = &self.batch {
            batch.chats.forget(integration_id);
        }
    }

    /// How `incident` is rendered for `integration`: its language, and what its
    /// templates make of the incident (a failing template: the built-in text, and
    /// the failure, for the caller to record).
    fn render_ctx<'a>(
        &'a self,
        integration: &'a Integration,
        incident: &Incident,
    ) -> (
        crate::render::RenderContext<'a>,
        Option<crate::render::templates::TemplateFailed>,
    ) {
        let base_url = self.base_url(integration);
        let (ctx, failed) = crate::render::RenderContext::for_incident(
            integration,
            base_url,
            incident,
            self.clock.now_ms(),
        );
        if let Some(failed) = &failed {
            warn!(incident_id = %incident.id, error = %failed, "template failed; the built-in text is used");
        }
        (ctx, failed)
    }

    fn base_url<'a>(&'a self, integration: &'a Integration) -> &'a str {
        self.public_base_url
            .as_deref()
            .or(integration.public_base_url.as_deref())
            .unwrap_or("")
    }

    /// Appends an operation record (in a batch: written with the batch's others when
    /// it ends); a failure to write it is logged, not fatal.
    async fn record(
        &self,
        incident_id: &str,
        kind: RecordKind,
        target: Option<String>,
        detail: String,
    ) {
        let now_ms = self.clock.now_ms();
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind,
            target,
            detail,
            actor: None,
        };
        self.keep_record(incident_id, now_ms, record).await;
    }

    /// Writes a record now, or with the batch's others when it ends.
    async fn keep_record(&self, incident_id: &str, now_ms: i64, record: OperationRecord) {
        if let Some(batch) = &self.batch {
            batch.add_record(TimelineEntry {
                incident_id: incident_id.to_string(),
                at_ms: now_ms,
                record,
            });
            return;
        }
        if let Err(err) = self.ledger.add_record(incident_id, now_ms, &record).await {
            warn!(error = %err, "could not write an operation record");
        }
    }

    fn metric(&self, integration_id: &str, name: &'static str, value: f64, unit: &'static str) {
        emit_now(
            self.metrics.as_ref(),
            self.clock.as_ref(),
            integration_id,
            (name, value, unit),
        );
    }
}

/// What orders a record against others of its batch: the alert key of an alert
/// event, the incident of a job; anything else stands alone.
fn ordering_key(record: &SqsMessage) -> String {
    let standalone = || {
        format!(
            "message:{}",
            record.message_id.as_deref().unwrap_or_default()
        )
    };
    let Some(body) = record.body.as_deref() else {
        return standalone();
    };
    match QueueMessage::parse(body) {
        Ok(QueueMessage::Alert(event)) => {
            format!("alert:{}:{}", event.integration_id, event.alert.key)
        }
        Ok(QueueMessage::Job(job)) => match job.incident_id() {
            Some(incident) => format!("incident:{incident}"),
            None => standalone(),
        },
        Err(_) => standalone(),
    }
}

/// Critical incidents may use the quota reserve.
fn priority_of(incident: &Incident) -> Priority {
    if incident.severity == Severity::Critical {
        Priority::Critical
    } else {
        Priority::Normal
    }
}
