//! DINGs (ARCHITECTURE.md §9, DingTalk `robot/ding/*`): an escalation layer's
//! urgent notification by app, SMS or phone call, to the layer's members (with
//! `only_unread`, those who have not read their 1:1 message), and its recall when
//! the incident is acknowledged or resolved. Each DING call is a delivery item
//! (`ding` / `<type>:<chunk>`, per round), claimed before it is sent.

use std::collections::{HashMap, HashSet};

use tokio::time::Instant;
use tracing::warn;

use super::{JobError, Notifier, priority_of};
use crate::dingtalk::{AppCredentials, DingSent, DingTalkError};
use crate::domain::delivery::{
    Channel, Delivery, DeliveryKey, DeliveryStep, StepOutcome, StepState, TargetKind,
};
use crate::domain::escalation::{DingRule, RemindType};
use crate::domain::escalation_state::ding_members;
use crate::domain::incident::{Incident, IncidentStatus, RecordKind};
use crate::domain::integration::Integration;
use crate::render;
use crate::store::StoreError;

/// A person to DING: (userId, email).
type Receiver = (String, String);

impl Notifier {
    /// Sends round `round`'s DING of the incident's current layer; returns the
    /// reason to retry when a call failed with something that may pass.
    pub(super) async fn send_dings(
        &self,
        integration: &Integration,
        incident: &Incident,
        round: u32,
        deadline: Instant,
    ) -> Result<Option<String>, JobError> {
        let Some(rule) = incident
            .escalation
            .as_ref()
            .and_then(|e| e.current_layer())
            .and_then(|l| l.ding.clone())
        else {
            return Ok(None);
        };
        if !rule.applies_to(incident.severity) || incident.status != IncidentStatus::Triggered {
            return Ok(None);
        }
        let mut receivers = self.ding_receivers(integration, incident).await?;
        if rule.only_unread {
            let read = self
                .who_read(integration, incident, round, &receivers)
                .await;
            receivers.retain(|(user_id, _)| !read.contains(user_id));
            if receivers.is_empty() {
                self.record(
                    &incident.id,
                    RecordKind::DingSent,
                    None,
                    "no DING: everyone in the layer has read their message".into(),
                )
                .await;
                return Ok(None);
            }
        }
        let mut retry = None;
        let chunks: Vec<&[Receiver]> = receivers.chunks(rule.remind_type.max_receivers()).collect();
        for (i, chunk) in chunks.into_iter().enumerate() {
            let target = format!("{}:{i}", rule.remind_type.label());
            let key = DeliveryKey {
                incident_id: &incident.id,
                round,
                kind: TargetKind::Ding,
                target: &target,
            };
            let now_ms = self.clock.now_ms();
            if !self
                .ledger
                .claim_step(key, DeliveryStep::Alert, now_ms, self.settings.lease_ms())
                .await?
            {
                continue;
            }
            if let Some(reason) = self
                .ding_chunk(integration, incident, &rule, key, chunk, deadline)
                .await?
            {
                retry = Some(reason);
            }
        }
        // Someone may have responded while the DING went out: recall it now (the
        // action's own job may have looked before this DING was recorded).
        if let Some(now) = self.store.get_incident(&incident.id).await?
            && now.status != IncidentStatus::Triggered
        {
            let deliveries = self.ledger.list_deliveries(&now.id).await?;
            self.recall_dings(integration, &now, &deliveries, deadline, &mut retry)
                .await?;
        }
        Ok(retry)
    }

    /// The bound members of the layer (unbound ones were recorded by the round).
    async fn ding_receivers(
        &self,
        integration: &Integration,
        incident: &Incident,
    ) -> Result<Vec<Receiver>, StoreError> {
        let mut receivers = Vec::new();
        for email in ding_members(incident) {
            if let Some(binding) = self
                .store
                .binding_of_member(&integration.id, &email)
                .await?
                && !receivers
                    .iter()
                    .any(|(id, _)| *id == binding.dingtalk_user_id)
            {
                receivers.push((binding.dingtalk_user_id, email));
            }
        }
        Ok(receivers)
    }

    /// Who has read their 1:1 robot message of this round. Cards have no read
    /// receipt, and a failed lookup reads as unread: better one DING too many.
    async fn who_read(
        &self,
        integration: &Integration,
        incident: &Incident,
        round: u32,
        receivers: &[Receiver],
    ) -> HashSet<String> {
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        let mut statuses: HashMap<String, HashSet<String>> = HashMap::new();
        let mut read = HashSet::new();
        for (user_id, _) in receivers {
            let key = DeliveryKey {
                incident_id: &incident.id,
                round,
                kind: TargetKind::User,
                target: user_id,
            };
            let Ok(Some(delivery)) = self.ledger.get_delivery(key).await else {
                continue;
            };
            let (Some(Channel::Robot), Some(query_key)) = (delivery.channel, delivery.alert_ref)
            else {
                continue;
            };
            if !statuses.contains_key(&query_key) {
                let readers = match self.dingtalk.read_status(app, &query_key).await {
                    Ok(list) => list
                        .into_iter()
                        .filter(|r| r.read)
                        .map(|r| r.user_id)
                        .collect(),
                    Err(err) => {
                        warn!(error = %err, "read status unavailable; counting as unread");
                        HashSet::new()
                    }
                };
                statuses.insert(query_key.clone(), readers);
            }
            if statuses
                .get(&query_key)
                .is_some_and(|r| r.contains(user_id))
            {
                read.insert(user_id.clone());
            }
        }
        read
    }

    /// Sends one claimed DING call (falling back to an in-app DING when SMS or
    /// phone quota is missing) and settles it.
    async fn ding_chunk(
        &self,
        integration: &Integration,
        incident: &Incident,
        rule: &DingRule,
        key: DeliveryKey<'_>,
        chunk: &[Receiver],
        deadline: Instant,
    ) -> Result<Option<String>, JobError> {
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        let ids: Vec<String> = chunk.iter().map(|(id, _)| id.clone()).collect();
        let names: Vec<&str> = chunk.iter().map(|(_, email)| email.as_str()).collect();
        let content = render::robot_markdown::ding_text(
            incident,
            self.base_url(integration),
            crate::render::strings::Strings::of(integration.locale),
        );
        let mut remind = rule.remind_type;
        let mut outcome = self
            .with_backoff(deadline, || {
                self.dingtalk.send_ding(app, &ids, remind, &content)
            })
            .await;
        if let Err(DingTalkError::DingQuotaInsufficient { .. }) = &outcome
            && remind != RemindType::App
        {
            self.record(
                &incident.id,
                RecordKind::DingFailed,
                Some(names.join(", ")),
                format!("no {} DING quota (ding.serverquota.insufficient): fell back to an in-app DING; buy SMS/phone DING quota in DingTalk to ring phones", remind.label()),
            )
            .await;
            remind = RemindType::App;
            outcome = self
                .with_backoff(deadline, || {
                    self.dingtalk.send_ding(app, &ids, remind, &content)
                })
                .await;
        }
        self.settle_ding(incident, key, remind, &names, outcome)
            .await
    }

    /// Completes a DING call's item from its outcome, with its record.
    async fn settle_ding(
        &self,
        incident: &Incident,
        key: DeliveryKey<'_>,
        remind: RemindType,
        names: &[&str],
        outcome: Result<DingSent, DingTalkError>,
    ) -> Result<Option<String>, JobError> {
        let finish = |state, reference, error| StepOutcome {
            step: DeliveryStep::Alert,
            state,
            channel: Channel::Ding,
            reference,
            error,
        };
        match outcome {
            Ok(sent) => {
                self.ledger
                    .finish_step(key, finish(StepState::Sent, Some(&sent.open_ding_id), None))
                    .await?;
                self.metric(&incident.integration_id, "Deliveries", 1.0, "Count");
                let failed: Vec<String> = sent.failed.values().flatten().cloned().collect();
                let detail = if failed.is_empty() {
                    format!("{} DING sent", remind.label())
                } else {
                    format!(
                        "{} DING sent; DingTalk could not reach {}",
                        remind.label(),
                        failed.join(", ")
                    )
                };
                self.record(
                    &incident.id,
                    RecordKind::DingSent,
                    Some(names.join(", ")),
                    detail,
                )
                .await;
                Ok(None)
            }
            Err(err) if err.is_retryable() => {
                self.ledger.release_step(key, &err.to_string()).await?;
                Ok(Some(format!("DING: {err}")))
            }
            Err(err) => {
                let text = err.to_string();
                self.ledger
                    .finish_step(key, finish(StepState::Failed, None, Some(&text)))
                    .await?;
                self.record(
                    &incident.id,
                    RecordKind::DingFailed,
                    Some(names.join(", ")),
                    format!("{text}: DINGs need the Premium.Ding.Write permission and a Professional or Enterprise edition"),
                )
                .await;
                Ok(None)
            }
        }
    }

    /// Recalls every DING of an acknowledged or resolved incident not yet recalled.
    pub(super) async fn recall_dings(
        &self,
        integration: &Integration,
        incident: &Incident,
        deliveries: &[Delivery],
        deadline: Instant,
        retry: &mut Option<String>,
    ) -> Result<(), JobError> {
        if incident.status == IncidentStatus::Triggered {
            return Ok(());
        }
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        for delivery in deliveries.iter().filter(|d| {
            d.kind == TargetKind::Ding
                && d.alert_state == Some(StepState::Sent)
                && d.recall_state.is_none()
        }) {
            let Some(ding_id) = delivery.alert_ref.as_deref() else {
                continue;
            };
            let key = DeliveryKey {
                incident_id: &incident.id,
                round: delivery.round,
                kind: TargetKind::Ding,
                target: &delivery.target,
            };
            let now_ms = self.clock.now_ms();
            if !self
                .ledger
                .claim_step(key, DeliveryStep::Recall, now_ms, self.settings.lease_ms())
                .await?
            {
                continue;
            }
            let outcome = self
                .with_backoff(deadline, || self.dingtalk.recall_ding(app, ding_id))
                .await;
            let (state, kind, detail) = match outcome {
                Ok(()) => (
                    StepState::Sent,
                    RecordKind::DingRecalled,
                    "DING recalled: someone responded".to_string(),
                ),
                Err(err) if err.is_retryable() => {
                    self.ledger.release_step(key, &err.to_string()).await?;
                    *retry = Some(format!("DING recall: {err}"));
                    continue;
                }
                Err(err) => (
                    StepState::Failed,
                    RecordKind::DingFailed,
                    format!("the DING could not be recalled: {err}"),
                ),
            };
            let done = StepOutcome {
                step: DeliveryStep::Recall,
                state,
                channel: Channel::Ding,
                reference: None,
                error: None,
            };
            self.ledger.finish_step(key, done).await?;
            self.record(&incident.id, kind, Some(delivery.target.clone()), detail)
                .await;
        }
        Ok(())
    }
}
