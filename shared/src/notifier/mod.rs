//! The notifier: alert events from SQS become incidents and DingTalk messages for
//! group chats and people, each delivered once, every outcome recorded.
//!
//! Exactly-once effect over at-least-once delivery: every (incident, target, step)
//! is claimed with a conditional write before it is sent and completed after, so a
//! redelivered message or a duplicate event never sends twice; a failure that may
//! pass (throttling beyond the time budget, DingTalk or network trouble) releases
//! the claim and fails the SQS record so it is retried.

pub mod render;
mod storm;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tracing::{Instrument, error, info, info_span, warn};

use crate::clock::{Clock, rfc3339};
use crate::dingtalk::{AppCredentials, DingTalkClient, DingTalkError};
use crate::governor::Priority;
use crate::incident::{AlertEvent, Incident, OperationRecord, RecordKind};
use crate::integration::{ChatStatus, GroupChat, Integration};
use crate::store::{AlertApplied, DeliveryStep, StepState, Store, StoreError};
use render::RenderContext;

/// Tunables of the notifier.
#[derive(Debug, Clone)]
pub struct NotifierSettings {
    /// How long a delivery claim blocks other attempts.
    pub lease: Duration,
    /// Wait after a QPS refusal before trying again.
    pub qps_backoff: Duration,
    /// Time kept free before the invocation deadline.
    pub deadline_margin: Duration,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            qps_backoff: Duration::from_millis(1_100),
            deadline_margin: Duration::from_secs(3),
        }
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

/// A problem with one target, recorded once per incident.
#[derive(Debug, Clone)]
struct TargetProblem {
    kind: &'static str,
    target: String,
    record: RecordKind,
    detail: String,
}

/// Targets resolved against the chat list, members and bindings.
#[derive(Debug, Default)]
struct ResolvedTargets {
    chats: Vec<GroupChat>,
    /// (userId, label for records)
    users: Vec<(String, String)>,
    /// (userId, name) of bound members, for @mentions.
    mentions: Vec<(String, String)>,
    problems: Vec<TargetProblem>,
}

/// The notifier service.
#[derive(Clone)]
pub struct Notifier {
    store: Store,
    dingtalk: DingTalkClient,
    clock: Arc<dyn Clock>,
    public_base_url: Option<String>,
    settings: NotifierSettings,
    jobs: Option<JobQueue>,
    http: reqwest::Client,
    /// Reads shared by the records of one SQS batch (None outside a batch).
    batch: Option<Arc<BatchReads>>,
}

/// What the records of one SQS batch read once: integrations and group chat lists
/// (a batch lasts seconds; admin changes apply from the next batch).
#[derive(Default)]
struct BatchReads {
    integrations: ReadOnce<Option<Integration>>,
    chats: ReadOnce<Vec<GroupChat>>,
}

/// Values read at most once per key.
struct ReadOnce<T>(std::sync::Mutex<std::collections::HashMap<String, T>>);

impl<T> Default for ReadOnce<T> {
    fn default() -> Self {
        Self(std::sync::Mutex::default())
    }
}

impl<T: Clone> ReadOnce<T> {
    /// `key`'s value: the one read before, else what `read` gives (then kept).
    async fn get_or_read(
        &self,
        key: &str,
        read: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        if let Some(found) = self.0.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(found);
        }
        let value = read.await?;
        if let Ok(mut kept) = self.0.lock() {
            kept.insert(key.to_string(), value.clone());
        }
        Ok(value)
    }

    /// Drops `key`'s value, so the next use reads it again.
    fn forget(&self, key: &str) {
        if let Ok(mut kept) = self.0.lock() {
            kept.remove(key);
        }
    }
}

/// Where the notifier re-queues jobs (webhook retries).
#[derive(Clone)]
pub struct JobQueue {
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// The alert queue.
    pub queue_url: String,
}

/// Webhook attempts before giving up.
pub const WEBHOOK_ATTEMPTS: u64 = 8;

/// A send's result: a reference (processQueryKey / outTrackId) or an error.
type SendResult = Result<String, DingTalkError>;

impl Notifier {
    /// A notifier; `public_base_url` (else each integration's) builds the H5 links.
    pub fn new(
        store: Store,
        dingtalk: DingTalkClient,
        clock: Arc<dyn Clock>,
        public_base_url: Option<String>,
        settings: NotifierSettings,
        jobs: Option<JobQueue>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            store,
            dingtalk,
            clock,
            public_base_url,
            settings,
            jobs,
            http,
            batch: None,
        }
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
        let read = self.store.list_chats(integration_id);
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

    /// Handles an SQS batch record by record; failed records are reported for retry.
    pub async fn handle_batch(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let scoped = Self {
            batch: Some(Arc::default()),
            ..self.clone()
        };
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let receive_count = record
                .attributes
                .get("ApproximateReceiveCount")
                .cloned()
                .unwrap_or_default();
            let span = info_span!("sqs_record", message_id = %id, receive_count = %receive_count);
            let result = scoped
                .handle_message(record.body.as_deref().unwrap_or_default(), deadline)
                .instrument(span)
                .await;
            if let Err(err) = result {
                match &err {
                    JobError::Malformed(reason) => {
                        error!(message_id = %id, %reason, "message cannot be processed; it moves to the DLQ after the redrive count")
                    }
                    JobError::Retry(reason) => {
                        warn!(message_id = %id, %reason, "record failed; SQS will deliver it again")
                    }
                }
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }

    /// Handles one message body: an alert event (architecture §4.3).
    pub async fn handle_message(&self, body: &str, deadline: Instant) -> Result<(), JobError> {
        let value: Value = serde_json::from_str(body)
            .map_err(|e| JobError::Malformed(format!("body is not JSON: {e}")))?;
        if let Some(kind) = value.get("type").and_then(Value::as_str) {
            return match kind {
                "incident_changed" => self.incident_changed(&value, deadline).await,
                "webhook" => self.webhook(&value).await,
                "link_prompt" => self.link_prompt(&value).await,
                "digest_refresh" => self.digest_refresh(&value).await,
                other => Err(JobError::Malformed(format!("unknown job type {other:?}"))),
            };
        }
        if let Some(version) = value
            .get("version")
            .and_then(Value::as_u64)
            .filter(|v| *v != 1)
        {
            return Err(JobError::Malformed(format!(
                "unsupported alert event version {version}"
            )));
        }
        let mut event: AlertEvent = serde_json::from_value(value)
            .map_err(|e| JobError::Malformed(format!("not an alert event: {e}")))?;
        event
            .validate()
            .map_err(|e| JobError::Malformed(format!("invalid alert event: {e}")))?;
        let integration = self
            .integration(&event.integration_id)
            .await?
            .ok_or_else(|| {
                JobError::Malformed(format!("unknown integration {}", event.integration_id))
            })?;
        let span = info_span!("alert", integration_id = %integration.id, key = %event.alert.key, incident_id = tracing::field::Empty);
        self.apply(&integration, &mut event, deadline)
            .instrument(span)
            .await
    }

    /// The integration a queued job names in `integration_id`; an unknown one makes
    /// the job unprocessable (it moves to the DLQ after the redrive count).
    async fn job_integration(&self, job: &Value) -> Result<Integration, JobError> {
        let kind = job.get("type").and_then(Value::as_str).unwrap_or("job");
        let id = job
            .get("integration_id")
            .and_then(Value::as_str)
            .ok_or_else(|| JobError::Malformed(format!("{kind} job without integration_id")))?;
        self.integration(id)
            .await?
            .ok_or_else(|| JobError::Malformed(format!("{kind} job for unknown integration {id}")))
    }

    /// `{"type": "incident_changed", "integration_id", "incident_id"}`: someone acted on
    /// an incident; update its cards in place (and, once resolved, send the follow-ups).
    async fn incident_changed(&self, job: &Value, deadline: Instant) -> Result<(), JobError> {
        let field = |name: &str| {
            job.get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Malformed(format!("incident_changed job without {name}")))
        };
        let integration = self.job_integration(job).await?;
        let incident_id = field("incident_id")?;
        let incident = self
            .store
            .get_incident(incident_id)
            .await?
            .ok_or_else(|| JobError::Malformed(format!("unknown incident {incident_id}")))?;
        if job
            .get("version")
            .and_then(Value::as_u64)
            .is_some_and(|v| v < incident.version)
        {
            info!(incident_id = %incident.id, "a newer change is queued; this update stands down");
            return Ok(());
        }
        let span = info_span!("incident_changed", integration_id = %integration.id, incident_id = %incident.id);
        async {
            if incident.status == crate::incident::IncidentStatus::Resolved {
                return self
                    .deliver_resolved(&integration, &incident, deadline)
                    .await;
            }
            let ctx = RenderContext {
                base_url: self.base_url(&integration),
                timezone: &integration.timezone,
                mentions: &[],
            };
            let mut retry = None;
            self.update_cards(&integration, &incident, &ctx, deadline, &mut retry)
                .await?;
            retry.map_or(Ok(()), |reason| Err(JobError::Retry(reason)))
        }
        .instrument(span)
        .await
    }

    /// `{"type": "webhook", …, "attempt", "event"}`: tells the upstream system about an
    /// action taken in DingTalk. Signed with the integration's webhook secret:
    /// `X-Incident-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
    /// with `X-Incident-Timestamp`. Failures are re-queued with exponential delay.
    async fn webhook(&self, job: &Value) -> Result<(), JobError> {
        use hmac::{Hmac, KeyInit, Mac};
        let integration = self.job_integration(job).await?;
        let (Some(url), Some(secret)) = (
            integration.webhook_url.clone(),
            integration.webhook_secret.clone(),
        ) else {
            info!(integration_id = %integration.id, "no webhook configured; dropped");
            return Ok(());
        };
        let incident_id = job_text(job, "incident_id");
        let attempt = job.get("attempt").and_then(Value::as_u64).unwrap_or(1);
        let body = job.get("event").cloned().unwrap_or(Value::Null).to_string();
        let timestamp = self.clock.now_secs().to_string();
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
            .map_err(|e| JobError::Malformed(e.to_string()))?;
        mac.update(format!("{timestamp}.{body}").as_bytes());
        let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let outcome = self
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-incident-timestamp", &timestamp)
            .header("x-incident-signature", &signature)
            .body(body)
            .send()
            .await;
        let (ok, detail) = match outcome {
            Ok(r) if r.status().is_success() => (
                true,
                format!(
                    "webhook delivered (attempt {attempt}, HTTP {})",
                    r.status().as_u16()
                ),
            ),
            Ok(r) => (
                false,
                format!("webhook attempt {attempt} got HTTP {}", r.status().as_u16()),
            ),
            Err(e) => (
                false,
                format!("webhook attempt {attempt} failed: {}", e.without_url()),
            ),
        };
        let now_ms = self.clock.now_ms();
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind: RecordKind::Webhook,
            target: None,
            detail: detail.clone(),
            actor: None,
        };
        if let Err(err) = self.store.add_record(&incident_id, now_ms, &record).await {
            warn!(error = %err, "could not record the webhook attempt");
        }
        if ok {
            return Ok(());
        }
        if attempt >= WEBHOOK_ATTEMPTS {
            error!(%incident_id, "webhook given up after {WEBHOOK_ATTEMPTS} attempts");
            return Ok(());
        }
        let Some(jobs) = &self.jobs else {
            return Err(JobError::Retry(detail));
        };
        let mut next = job.clone();
        next["attempt"] = Value::from(attempt + 1);
        let delay = (5_i32 << (attempt.min(8) - 1)).min(900);
        jobs.sqs
            .send_message()
            .queue_url(&jobs.queue_url)
            .message_body(next.to_string())
            .delay_seconds(delay)
            .send()
            .await
            .map_err(|e| {
                JobError::Retry(format!(
                    "could not re-queue the webhook: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }

    /// `{"type": "link_prompt", "integration_id", "user_id"}`: a 1:1 message asking a
    /// DingTalk user who clicked a card button to associate their account.
    async fn link_prompt(&self, job: &Value) -> Result<(), JobError> {
        let integration = self.job_integration(job).await?;
        let user_id = job_text(job, "user_id");
        let app_url = format!(
            "{}/dingtalk/{}/app",
            self.base_url(&integration),
            integration.id
        );
        let message = crate::dingtalk::RobotMessage {
            msg_key: "sampleActionCard".into(),
            msg_param: json!({
                "title": "Associate your account",
                "text": "### Associate your on-call account\n\nYou pressed a button on an alert card, but your DingTalk account is not associated with an on-call account yet. Open the app once to associate it; then the buttons work for you.",
                "singleTitle": "Open the app",
                "singleURL": render::in_dingtalk(&app_url),
            }),
        };
        match self
            .dingtalk
            .send_one_to_one(
                AppCredentials::from(&integration),
                std::slice::from_ref(&user_id),
                &message,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.is_retryable() => Err(JobError::Retry(err.to_string())),
            Err(err) => {
                warn!(error = %err, "link prompt not sent");
                Ok(())
            }
        }
    }

    async fn apply(
        &self,
        integration: &Integration,
        event: &mut AlertEvent,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let targets = &event.targets;
        if targets.chats.is_empty()
            && targets.members.is_empty()
            && targets.dingtalk_user_ids.is_empty()
        {
            event.targets = integration.default_targets.clone();
        }
        let now_ms = self.clock.now_ms();
        let now = rfc3339(now_ms);
        let event_ms = event.occurred_ms(now_ms);
        let applied = self
            .store
            .apply_alert(event, event_ms, &now, || {
                uuid::Uuid::new_v4().simple().to_string()
            })
            .await?;
        let result = self.deliver_applied(integration, applied, deadline).await;
        self.check_usage_thresholds(integration).await;
        result
    }

    /// Sends a one-time notice to the integration's default targets when the month's
    /// DingTalk calls cross 80 % and again at 95 % of the quota.
    async fn check_usage_thresholds(&self, integration: &Integration) {
        let now_ms = self.clock.now_ms();
        let month = crate::governor::month_of(now_ms, &integration.timezone);
        let quota = integration.monthly_quota.max(1);
        let lowest = crate::governor::THRESHOLDS[0];
        if let Some(seen) = self
            .dingtalk
            .governor()
            .and_then(|g| g.month_total_seen(&integration.id, &month))
            && seen * 100 < quota * lowest
        {
            return;
        }
        let Ok(usage) = self.store.month_usage(&integration.id, &month).await else {
            return;
        };
        for threshold in crate::governor::THRESHOLDS {
            if usage.total * 100 < quota * threshold {
                continue;
            }
            let key = format!("THRESHOLD#{month}#{threshold}");
            if !matches!(
                self.store
                    .mark_once(&integration.id, &key, now_ms / 1000 + 40 * 86_400)
                    .await,
                Ok(true)
            ) {
                continue;
            }
            warn!(integration_id = %integration.id, threshold, calls = usage.total, quota, "DingTalk API usage threshold crossed");
            crate::governor::emit_metric(
                &integration.id,
                "QuotaThresholdCrossed",
                threshold as f64,
                "Percent",
                now_ms,
            );
            let text = format!(
                "### <font color=#F58B00>⚠️ DingTalk API budget: {threshold}% used</font>\n\n{} of {quota} calls this month ({month}) are used. From 80%, info alerts fold into each group's digest; from {}%, only critical alerts are sent and lower severities are recorded as suppressed. See GET /api/integrations/{}/usage for the burn rate and projected exhaustion; raise monthly_quota if your DingTalk edition allows more.",
                usage.total,
                100 - crate::governor::DEFAULT_RESERVE_PERCENT,
                integration.id
            );
            let message = crate::dingtalk::RobotMessage {
                msg_key: "sampleMarkdown".into(),
                msg_param: json!({"title": format!("DingTalk API budget {threshold}% used"), "text": text}),
            };
            let app = AppCredentials::from(integration).with_priority(Priority::Critical);
            let chats = self.chats(&integration.id).await.unwrap_or_default();
            for target in &integration.default_targets.chats {
                let chat = chats.iter().find(|c| {
                    (&c.open_conversation_id == target
                        || c.title.as_deref() == Some(target.as_str()))
                        && c.status == ChatStatus::Installed
                });
                if let Some(chat) = chat
                    && let Err(err) = self
                        .dingtalk
                        .send_group_message(
                            app,
                            &chat.open_conversation_id,
                            chat.cool_app_code.as_deref(),
                            &message,
                        )
                        .await
                {
                    warn!(error = %err, "usage notice not sent to a group");
                }
            }
            let mut users = integration.default_targets.dingtalk_user_ids.clone();
            for email in &integration.default_targets.members {
                if let Ok(Some(binding)) =
                    self.store.binding_of_member(&integration.id, email).await
                {
                    users.push(binding.dingtalk_user_id);
                }
            }
            if !users.is_empty()
                && let Err(err) = self.dingtalk.send_one_to_one(app, &users, &message).await
            {
                warn!(error = %err, "usage notice not sent to people");
            }
        }
    }

    async fn deliver_applied(
        &self,
        integration: &Integration,
        applied: AlertApplied,
        deadline: Instant,
    ) -> Result<(), JobError> {
        match applied {
            AlertApplied::Opened(incident) => {
                tracing::Span::current().record("incident_id", incident.id.as_str());
                info!("incident opened");
                self.record(
                    &incident,
                    RecordKind::Opened,
                    None,
                    format!(
                        "opened by {} alert",
                        incident.source.as_deref().unwrap_or("an")
                    ),
                )
                .await;
                self.deliver_alert(integration, &incident, false, deadline)
                    .await
            }
            AlertApplied::Updated { incident, changed } => {
                tracing::Span::current().record("incident_id", incident.id.as_str());
                if changed {
                    info!("incident updated");
                    self.record(
                        &incident,
                        RecordKind::Updated,
                        None,
                        "a new firing event changed the incident".into(),
                    )
                    .await;
                }
                self.deliver_alert(integration, &incident, changed, deadline)
                    .await
            }
            AlertApplied::Resolved(incident) => {
                tracing::Span::current().record("incident_id", incident.id.as_str());
                info!("incident resolved");
                self.record(
                    &incident,
                    RecordKind::Resolved,
                    None,
                    "resolved at the source".into(),
                )
                .await;
                self.deliver_resolved(integration, &incident, deadline)
                    .await
            }
            AlertApplied::AlreadyResolved(incident) => {
                tracing::Span::current().record("incident_id", incident.id.as_str());
                self.deliver_resolved(integration, &incident, deadline)
                    .await
            }
            AlertApplied::Stale => {
                info!("event older than the incident's state; ignored");
                Ok(())
            }
            AlertApplied::NothingOpen => {
                info!("resolved event for a key with no incident; ignored");
                Ok(())
            }
        }
    }

    fn base_url<'a>(&'a self, integration: &'a Integration) -> &'a str {
        self.public_base_url
            .as_deref()
            .or(integration.public_base_url.as_deref())
            .unwrap_or("")
    }

    async fn record(
        &self,
        incident: &Incident,
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
        if let Err(err) = self.store.add_record(&incident.id, now_ms, &record).await {
            warn!(error = %err, "could not write an operation record");
        }
    }

    async fn resolve_targets(
        &self,
        integration: &Integration,
        incident: &Incident,
    ) -> Result<ResolvedTargets, StoreError> {
        let mut resolved = ResolvedTargets::default();
        let wanted = &incident.targets;
        if !wanted.chats.is_empty() {
            let chats = self.chats(&integration.id).await?;
            for entry in &wanted.chats {
                let matches: Vec<&GroupChat> = chats
                    .iter()
                    .filter(|c| {
                        &c.open_conversation_id == entry
                            || c.title.as_deref() == Some(entry.as_str())
                    })
                    .collect();
                match matches.iter().find(|c| c.status == ChatStatus::Installed) {
                    Some(chat) if !resolved.chats.iter().any(|c| c.open_conversation_id == chat.open_conversation_id) => {
                        resolved.chats.push((*chat).clone());
                    }
                    Some(_) => {}
                    None => resolved.problems.push(TargetProblem {
                        kind: "chat",
                        target: entry.clone(),
                        record: RecordKind::NotInstalled,
                        detail: format!(
                            "cool app not installed in this group ({entry}): install the app's cool app in the group (group settings → cool apps); the group then joins the group chat list"
                        ),
                    }),
                }
            }
        }
        for email in &wanted.members {
            match self.store.binding_of_member(&integration.id, email).await? {
                Some(binding) => {
                    let name = match self.store.get_member(&integration.id, email).await? {
                        Some(member) => member.name,
                        None => binding
                            .dingtalk_name
                            .clone()
                            .unwrap_or_else(|| email.clone()),
                    };
                    resolved
                        .mentions
                        .push((binding.dingtalk_user_id.clone(), name));
                    resolved
                        .users
                        .push((binding.dingtalk_user_id, email.clone()));
                }
                None => {
                    let known = self
                        .store
                        .get_member(&integration.id, email)
                        .await?
                        .is_some();
                    resolved.problems.push(if known {
                        TargetProblem {
                            kind: "member",
                            target: email.clone(),
                            record: RecordKind::NotAssociated,
                            detail: format!(
                                "application not associated: {email} has not linked a DingTalk account; they should open the app once in DingTalk (workbench → the app) to associate it, then they receive alerts"
                            ),
                        }
                    } else {
                        TargetProblem {
                            kind: "member",
                            target: email.clone(),
                            record: RecordKind::UnknownTarget,
                            detail: format!("no member {email} in the member directory: add the member first"),
                        }
                    });
                }
            }
        }
        for user_id in &wanted.dingtalk_user_ids {
            resolved.users.push((user_id.clone(), user_id.clone()));
        }
        let mut seen = std::collections::HashSet::new();
        resolved.users.retain(|(id, _)| seen.insert(id.clone()));
        Ok(resolved)
    }

    /// Retries QPS refusals within the time budget.
    async fn with_backoff<T, F, Fut>(&self, deadline: Instant, send: F) -> Result<T, DingTalkError>
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
                    let jitter = Duration::from_millis(u64::from(rand_u8()) * 2);
                    tokio::time::sleep(self.settings.qps_backoff + jitter).await;
                }
                other => return other,
            }
        }
    }

    /// Completes a claimed step from its outcome; a retryable failure releases the
    /// claim and sets `retry`.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &self,
        integration: &Integration,
        incident: &Incident,
        kind: &str,
        target: &str,
        label: &str,
        step: DeliveryStep,
        channel: &str,
        outcome: SendResult,
        retry: &mut Option<String>,
    ) -> Result<(), StoreError> {
        match outcome {
            Ok(reference) => {
                self.store
                    .finish_step(
                        &incident.id,
                        kind,
                        target,
                        step,
                        StepState::Sent,
                        channel,
                        Some(&reference),
                        None,
                    )
                    .await?;
                let what = match (step, channel) {
                    (DeliveryStep::Alert, "card") => "card delivered",
                    (DeliveryStep::Alert, _) => "message sent",
                    (DeliveryStep::Resolved, _) => "resolved follow-up sent",
                };
                self.record(
                    incident,
                    RecordKind::Sent,
                    Some(label.to_string()),
                    format!("{what} ({kind})"),
                )
                .await;
            }
            Err(err) if err.is_retryable() => {
                warn!(target = %label, error = %err, "delivery will be retried");
                self.store
                    .release_step(&incident.id, kind, target, &err.to_string())
                    .await?;
                *retry = Some(format!("{label}: {err}"));
            }
            Err(err) => {
                self.store
                    .finish_step(
                        &incident.id,
                        kind,
                        target,
                        step,
                        StepState::Failed,
                        channel,
                        None,
                        Some(&err.to_string()),
                    )
                    .await?;
                let (record, fix) = match &err {
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
                };
                if kind == "chat" && matches!(err, DingTalkError::InvalidTarget { .. }) {
                    self.forget_chats(&integration.id);
                    self.store
                        .mark_chat_problem(
                            &integration.id,
                            target,
                            &err.to_string(),
                            &rfc3339(self.clock.now_ms()),
                        )
                        .await?;
                }
                self.record(
                    incident,
                    record,
                    Some(label.to_string()),
                    format!("{err}: {fix}"),
                )
                .await;
            }
        }
        Ok(())
    }

    async fn deliver_alert(
        &self,
        integration: &Integration,
        incident: &Incident,
        changed: bool,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let targets = self.resolve_targets(integration, incident).await?;
        let now_ms = self.clock.now_ms();
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(60_000);
        for problem in &targets.problems {
            if self
                .store
                .claim_step(
                    &incident.id,
                    problem.kind,
                    &problem.target,
                    DeliveryStep::Alert,
                    now_ms,
                    lease,
                )
                .await?
            {
                self.store
                    .finish_step(
                        &incident.id,
                        problem.kind,
                        &problem.target,
                        DeliveryStep::Alert,
                        StepState::Failed,
                        "none",
                        None,
                        Some(&problem.detail),
                    )
                    .await?;
                self.record(
                    incident,
                    problem.record,
                    Some(problem.target.clone()),
                    problem.detail.clone(),
                )
                .await;
            }
        }
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        let ctx = RenderContext {
            base_url: self.base_url(integration),
            timezone: &integration.timezone,
            mentions: &targets.mentions,
        };
        let card_mode = integration.card_template_id.is_some();
        let channel = if card_mode { "card" } else { "robot" };
        let mut retry = None;
        let message = render::alert_message(incident, &ctx);
        for chat in &targets.chats {
            let cid = &chat.open_conversation_id;
            if !self
                .store
                .claim_step(
                    &incident.id,
                    "chat",
                    cid,
                    DeliveryStep::Alert,
                    now_ms,
                    lease,
                )
                .await?
            {
                continue;
            }
            let label = chat.title.clone().unwrap_or_else(|| cid.clone());
            if self
                .fold_if_storm(integration, incident, chat, &label)
                .await?
            {
                continue;
            }
            let outcome = if card_mode {
                let body = self.card_body(
                    integration,
                    incident,
                    &ctx,
                    "chat",
                    cid,
                    chat.robot_code.as_deref(),
                );
                let out_track_id = out_track_id(incident, "chat", cid);
                self.with_backoff(deadline, || async {
                    self.create_card(app, &body, &out_track_id).await
                })
                .await
            } else {
                let robot_cool_app = chat.cool_app_code.as_deref();
                self.with_backoff(deadline, || {
                    self.dingtalk
                        .send_group_message(app, cid, robot_cool_app, &message)
                })
                .await
            };
            self.settle(
                integration,
                incident,
                "chat",
                cid,
                &label,
                DeliveryStep::Alert,
                channel,
                outcome,
                &mut retry,
            )
            .await?;
        }
        let mut claimed = Vec::new();
        for (user_id, label) in &targets.users {
            if self
                .store
                .claim_step(
                    &incident.id,
                    "user",
                    user_id,
                    DeliveryStep::Alert,
                    now_ms,
                    lease,
                )
                .await?
            {
                claimed.push((user_id.clone(), label.clone()));
            }
        }
        if card_mode {
            for (user_id, label) in &claimed {
                let body = self.card_body(integration, incident, &ctx, "user", user_id, None);
                let out_track_id = out_track_id(incident, "user", user_id);
                let outcome = self
                    .with_backoff(deadline, || async {
                        self.create_card(app, &body, &out_track_id).await
                    })
                    .await;
                self.settle(
                    integration,
                    incident,
                    "user",
                    user_id,
                    label,
                    DeliveryStep::Alert,
                    channel,
                    outcome,
                    &mut retry,
                )
                .await?;
            }
        } else {
            let direct = render::alert_message(
                incident,
                &RenderContext {
                    mentions: &[],
                    ..ctx.clone()
                },
            );
            self.send_to_users(
                integration,
                incident,
                &claimed,
                &direct,
                DeliveryStep::Alert,
                deadline,
                &mut retry,
            )
            .await?;
        }
        if changed && card_mode {
            self.update_cards(integration, incident, &ctx, deadline, &mut retry)
                .await?;
        }
        retry.map_or(Ok(()), |reason| Err(JobError::Retry(reason)))
    }

    async fn deliver_resolved(
        &self,
        integration: &Integration,
        incident: &Incident,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let ctx = RenderContext {
            base_url: self.base_url(integration),
            timezone: &integration.timezone,
            mentions: &[],
        };
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        let mut retry = None;
        self.update_cards(integration, incident, &ctx, deadline, &mut retry)
            .await?;
        let deliveries = self.store.list_deliveries(&incident.id).await?;
        let now_ms = self.clock.now_ms();
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(60_000);
        let message = render::resolved_message(incident, &ctx);
        let chats = self.chats(&integration.id).await?;
        let mut users = Vec::new();
        for delivery in deliveries.iter().filter(|d| {
            d.alert_state == Some(StepState::Sent)
                && d.channel.as_deref() == Some("robot")
                && d.resolved_state.is_none()
        }) {
            if !self
                .store
                .claim_step(
                    &incident.id,
                    &delivery.kind,
                    &delivery.target,
                    DeliveryStep::Resolved,
                    now_ms,
                    lease,
                )
                .await?
            {
                continue;
            }
            if delivery.kind == "user" {
                users.push((delivery.target.clone(), delivery.target.clone()));
                continue;
            }
            let chat = chats
                .iter()
                .find(|c| c.open_conversation_id == delivery.target);
            let label = chat
                .and_then(|c| c.title.clone())
                .unwrap_or_else(|| delivery.target.clone());
            let cool_app = chat.and_then(|c| c.cool_app_code.as_deref());
            let outcome = self
                .with_backoff(deadline, || {
                    self.dingtalk
                        .send_group_message(app, &delivery.target, cool_app, &message)
                })
                .await;
            self.settle(
                integration,
                incident,
                "chat",
                &delivery.target,
                &label,
                DeliveryStep::Resolved,
                "robot",
                outcome,
                &mut retry,
            )
            .await?;
        }
        self.send_to_users(
            integration,
            incident,
            &users,
            &message,
            DeliveryStep::Resolved,
            deadline,
            &mut retry,
        )
        .await?;
        retry.map_or(Ok(()), |reason| Err(JobError::Retry(reason)))
    }

    /// 1:1 robot messages, 20 people a call.
    #[allow(clippy::too_many_arguments)]
    async fn send_to_users(
        &self,
        integration: &Integration,
        incident: &Incident,
        users: &[(String, String)],
        message: &crate::dingtalk::RobotMessage,
        step: DeliveryStep,
        deadline: Instant,
        retry: &mut Option<String>,
    ) -> Result<(), StoreError> {
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        for chunk in users.chunks(20) {
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
            let result = self
                .with_backoff(deadline, || {
                    self.dingtalk.send_one_to_one(app, &ids, message)
                })
                .await;
            for (user_id, label) in chunk {
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
                    Err(err) => Err(clone_error(err)),
                };
                self.settle(
                    integration,
                    incident,
                    "user",
                    user_id,
                    label,
                    step,
                    "robot",
                    outcome,
                    retry,
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn create_card(
        &self,
        app: AppCredentials<'_>,
        body: &Value,
        out_track_id: &str,
    ) -> SendResult {
        match self.dingtalk.create_and_deliver_card(app, body).await {
            Ok(()) => Ok(out_track_id.to_string()),
            // A retry after a crash between send and bookkeeping: the card exists.
            Err(DingTalkError::Rejected { code, .. }) if code == "param.outTrackIdDuplicated" => {
                Ok(out_track_id.to_string())
            }
            Err(err) => Err(err),
        }
    }

    fn card_body(
        &self,
        integration: &Integration,
        incident: &Incident,
        ctx: &RenderContext<'_>,
        kind: &str,
        target: &str,
        robot_code: Option<&str>,
    ) -> Value {
        let robot_code = robot_code.unwrap_or(&integration.client_id);
        let mut body = json!({
            "cardTemplateId": integration.card_template_id.clone().unwrap_or_default(),
            "outTrackId": out_track_id(incident, kind, target),
            "callbackType": "HTTP",
            "callbackRouteKey": callback_route_key(&integration.id),
            "cardData": {"cardParamMap": render::card_params(incident, ctx)},
            "userIdType": 1,
        });
        if kind == "chat" {
            let at: Map<String, Value> = ctx
                .mentions
                .iter()
                .map(|(id, name)| (id.clone(), Value::from(name.clone())))
                .collect();
            body["openSpaceId"] = Value::from(format!("dtv1.card//IM_GROUP.{target}"));
            body["imGroupOpenSpaceModel"] = json!({"supportForward": true});
            body["imGroupOpenDeliverModel"] = json!({"robotCode": robot_code, "atUserIds": at});
        } else {
            body["openSpaceId"] = Value::from(format!("dtv1.card//IM_ROBOT.{target}"));
            body["imRobotOpenSpaceModel"] = json!({"supportForward": true});
            body["imRobotOpenDeliverModel"] =
                json!({"spaceType": "IM_ROBOT", "robotCode": robot_code});
        }
        body
    }

    /// Updates every delivered card of an incident in place, skipping unchanged ones.
    async fn update_cards(
        &self,
        integration: &Integration,
        incident: &Incident,
        ctx: &RenderContext<'_>,
        deadline: Instant,
        retry: &mut Option<String>,
    ) -> Result<(), StoreError> {
        let params = render::card_params(incident, ctx);
        let hash = hex::encode(Sha256::digest(
            Value::Object(params.clone()).to_string().as_bytes(),
        ));
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        for delivery in self.store.list_deliveries(&incident.id).await? {
            if delivery.channel.as_deref() != Some("card")
                || delivery.alert_state != Some(StepState::Sent)
            {
                continue;
            }
            if delivery.card_hash.as_deref() == Some(hash.as_str()) {
                continue;
            }
            let Some(out_track_id) = delivery.alert_ref.clone() else {
                continue;
            };
            let outcome = self
                .with_backoff(deadline, || {
                    self.dingtalk.update_card(app, &out_track_id, &params)
                })
                .await;
            match outcome {
                Ok(_) => {
                    self.store
                        .set_card_hash(&incident.id, &delivery.kind, &delivery.target, &hash)
                        .await?;
                    self.record(
                        incident,
                        RecordKind::CardUpdated,
                        Some(delivery.target.clone()),
                        "card updated in place".into(),
                    )
                    .await;
                }
                Err(err) if err.is_retryable() => {
                    *retry = Some(format!("card {out_track_id}: {err}"))
                }
                Err(err) => {
                    self.record(
                        incident,
                        RecordKind::Failed,
                        Some(delivery.target.clone()),
                        format!("card update failed: {err}"),
                    )
                    .await
                }
            }
        }
        Ok(())
    }
}

/// Critical incidents may use the quota reserve.
/// A job's text field (empty when missing).
fn job_text(job: &Value, name: &str) -> String {
    job.get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn priority_of(incident: &Incident) -> Priority {
    if incident.severity == crate::incident::Severity::Critical {
        Priority::Critical
    } else {
        Priority::Normal
    }
}

/// The card callback route key of an integration.
pub fn callback_route_key(integration_id: &str) -> String {
    format!("dtinc-{integration_id}")
}

/// The outTrackId of an incident's card for one target (stable across retries).
pub fn out_track_id(incident: &Incident, kind: &str, target: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("{kind}:{target}").as_bytes()));
    format!("{}-{}", incident.id, &digest[..16])
}

fn rand_u8() -> u8 {
    let mut byte = [0u8; 1];
    let _ = getrandom::fill(&mut byte);
    byte[0]
}

/// A copy of an error for each person of a failed batch.
fn clone_error(err: &DingTalkError) -> DingTalkError {
    match err {
        DingTalkError::TokenInvalid { code } => DingTalkError::TokenInvalid { code: code.clone() },
        DingTalkError::InvalidCredentials { code } => {
            DingTalkError::InvalidCredentials { code: code.clone() }
        }
        DingTalkError::QpsLimited { code } => DingTalkError::QpsLimited { code: code.clone() },
        DingTalkError::QuotaExhausted { code } => {
            DingTalkError::QuotaExhausted { code: code.clone() }
        }
        DingTalkError::PermissionDenied {
            code,
            required_scopes,
        } => DingTalkError::PermissionDenied {
            code: code.clone(),
            required_scopes: required_scopes.clone(),
        },
        DingTalkError::InvalidTarget { code, message } => DingTalkError::InvalidTarget {
            code: code.clone(),
            message: message.clone(),
        },
        DingTalkError::Rejected {
            status,
            code,
            message,
        } => DingTalkError::Rejected {
            status: *status,
            code: code.clone(),
            message: message.clone(),
        },
        DingTalkError::QuotaReserved => DingTalkError::QuotaReserved,
        DingTalkError::Transient(m) => DingTalkError::Transient(m.clone()),
        DingTalkError::Malformed(m) => DingTalkError::Malformed(m.clone()),
        DingTalkError::Store(e) => DingTalkError::Transient(e.to_string()),
    }
}
