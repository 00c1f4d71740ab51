//! An alert event: apply it to its incident, then deliver (ARCHITECTURE.md §2.4).

use tokio::time::Instant;
use tracing::{Instrument, info, info_span};

use super::cards::CardTarget;
use super::settle::Claimed;
use super::targets::ResolvedTargets;
use super::{JobError, Notifier, priority_of};
use crate::clock::rfc3339;
use crate::dingtalk::AppCredentials;
use crate::domain::bounds;
use crate::domain::chat::GroupChat;
use crate::domain::delivery::{
    Channel, DeliveryKey, DeliveryStep, StepOutcome, StepState, TargetKind,
};
use crate::domain::incident::{AlertEvent, Incident, RecordKind};
use crate::domain::integration::Integration;
use crate::render::{self, RenderContext};
use crate::store::AlertApplied;

/// Bounds an event at the notifier's door (producers may write to the queue
/// directly) and re-dates a future one to `received_ms` (the message's send time, so
/// a redelivery gets the same date); returns the records to write for it.
fn door_notes(event: &mut AlertEvent, received_ms: i64) -> Vec<(RecordKind, String)> {
    let said = event.alert.occurred_at.clone().unwrap_or_default();
    bounds::redate(event, received_ms);
    bounds::bound(event);
    let mut notes = Vec::new();
    let (redated, cut): (Vec<&String>, Vec<&String>) = event
        .truncated
        .iter()
        .partition(|note| *note == bounds::REDATED_NOTE);
    if !cut.is_empty() {
        let cut: Vec<&str> = cut.iter().map(|n| n.as_str()).collect();
        notes.push((
            RecordKind::Truncated,
            format!("oversized alert fields were cut: {}", cut.join("; ")),
        ));
    }
    if !redated.is_empty() {
        notes.push((
            RecordKind::ClockSkew,
            format!("the event was dated {said}, more than 5 minutes ahead; the time of receipt is used (check the sender's clock)"),
        ));
    }
    notes
}

fn kind_of(record: &Option<(RecordKind, String)>) -> Option<RecordKind> {
    record.as_ref().map(|(kind, _)| *kind)
}

impl Notifier {
    /// Applies an alert event and delivers what it changed.
    pub(super) async fn alert(
        &self,
        mut event: AlertEvent,
        sent_ms: Option<i64>,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let integration = self
            .integration(&event.integration_id)
            .await?
            .ok_or_else(|| {
                JobError::Malformed(format!("unknown integration {}", event.integration_id))
            })?;
        let span = info_span!("alert", integration_id = %integration.id, key = %event.alert.key, incident_id = tracing::field::Empty);
        async {
            let targets = &event.targets;
            if targets.chats.is_empty()
                && targets.members.is_empty()
                && targets.dingtalk_user_ids.is_empty()
            {
                event.targets = integration.default_targets.clone();
            }
            let now_ms = self.clock.now_ms();
            let notes = door_notes(&mut event, sent_ms.unwrap_or(now_ms));
            let event_ms = event.occurred_ms(now_ms);
            let applied = self
                .store
                .apply_alert(&event, event_ms, &rfc3339(now_ms), || {
                    uuid::Uuid::new_v4().simple().to_string()
                })
                .await?;
            let result = self
                .deliver_applied(&integration, applied, &notes, deadline)
                .await;
            self.check_usage_thresholds(&integration).await;
            result
        }
        .instrument(span)
        .await
    }

    async fn deliver_applied(
        &self,
        integration: &Integration,
        applied: AlertApplied,
        notes: &[(RecordKind, String)],
        deadline: Instant,
    ) -> Result<(), JobError> {
        let (incident, record) = match applied {
            AlertApplied::Stale => {
                info!("event older than the incident's state; ignored");
                return Ok(());
            }
            AlertApplied::NothingOpen => {
                info!("resolved event for a key with no incident; ignored");
                return Ok(());
            }
            AlertApplied::Opened(incident) => {
                let by = incident.source.as_deref().unwrap_or("an").to_string();
                (
                    incident,
                    Some((RecordKind::Opened, format!("opened by {by} alert"))),
                )
            }
            AlertApplied::Updated { incident, changed } => {
                let record = changed.then(|| {
                    (
                        RecordKind::Updated,
                        "a new firing event changed the incident".to_string(),
                    )
                });
                (incident, record)
            }
            AlertApplied::Resolved(incident) => (
                incident,
                Some((RecordKind::Resolved, "resolved at the source".to_string())),
            ),
            AlertApplied::AlreadyResolved(incident) => (incident, None),
        };
        tracing::Span::current().record("incident_id", incident.id.as_str());
        let changed = record
            .as_ref()
            .is_some_and(|(kind, _)| *kind == RecordKind::Updated);
        if let Some((kind, detail)) = record.clone() {
            info!(record = ?kind, "incident changed");
            self.record(&incident.id, kind, None, detail).await;
        }
        if matches!(
            kind_of(&record),
            Some(RecordKind::Opened | RecordKind::Updated)
        ) {
            // Once per change, not for every repeat of the same alert.
            for (kind, detail) in notes {
                self.record(&incident.id, *kind, None, detail.clone()).await;
            }
        }
        if incident.status == crate::domain::incident::IncidentStatus::Resolved {
            return self
                .deliver_resolved(integration, &incident, deadline)
                .await;
        }
        self.deliver_alert(integration, &incident, changed, deadline)
            .await
    }

    /// Delivers the alert step to every target not yet served.
    async fn deliver_alert(
        &self,
        integration: &Integration,
        incident: &Incident,
        changed: bool,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let targets = self.resolve_targets(integration, incident).await?;
        self.record_problems(incident, &targets).await?;
        let ctx = RenderContext {
            base_url: self.base_url(integration),
            timezone: &integration.timezone,
            mentions: &targets.mentions,
        };
        let card_mode = integration.card_template_id.is_some();
        let mut retry = None;
        for chat in &targets.chats {
            self.deliver_to_chat(integration, incident, chat, &ctx, deadline, &mut retry)
                .await?;
        }
        let claimed = self.claim_users(incident, &targets.users).await?;
        if card_mode {
            for (user_id, label) in &claimed {
                let outcome = self
                    .send_card(
                        integration,
                        incident,
                        &ctx,
                        CardTarget {
                            kind: TargetKind::User,
                            id: user_id,
                            robot_code: None,
                        },
                        deadline,
                    )
                    .await;
                let claimed = Claimed {
                    incident_id: &incident.id,
                    kind: TargetKind::User,
                    target: user_id,
                    label,
                    step: DeliveryStep::Alert,
                    channel: Channel::Card,
                };
                self.settle(integration, claimed, outcome, &mut retry)
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
            let failed = self
                .send_to_users(
                    integration,
                    incident,
                    &claimed,
                    &direct,
                    DeliveryStep::Alert,
                    deadline,
                )
                .await?;
            retry = retry.or(failed);
        }
        if changed && card_mode {
            self.update_cards(integration, incident, &ctx, deadline, &mut retry)
                .await?;
        }
        retry.map_or(Ok(()), |reason| Err(JobError::Retry(reason)))
    }

    /// Records each unreachable target once per incident.
    async fn record_problems(
        &self,
        incident: &Incident,
        targets: &ResolvedTargets,
    ) -> Result<(), JobError> {
        let now_ms = self.clock.now_ms();
        for problem in &targets.problems {
            let key = DeliveryKey {
                incident_id: &incident.id,
                kind: problem.kind,
                target: &problem.target,
            };
            if !self
                .ledger
                .claim_step(key, DeliveryStep::Alert, now_ms, self.settings.lease_ms())
                .await?
            {
                continue;
            }
            let outcome = StepOutcome {
                step: DeliveryStep::Alert,
                state: StepState::Failed,
                channel: Channel::None,
                reference: None,
                error: Some(&problem.detail),
            };
            self.ledger.finish_step(key, outcome).await?;
            self.record(
                &incident.id,
                problem.record,
                Some(problem.target.clone()),
                problem.detail.clone(),
            )
            .await;
        }
        Ok(())
    }

    /// The alert step for one group: folded into a storm digest, a card, or a message.
    async fn deliver_to_chat(
        &self,
        integration: &Integration,
        incident: &Incident,
        chat: &GroupChat,
        ctx: &RenderContext<'_>,
        deadline: Instant,
        retry: &mut Option<String>,
    ) -> Result<(), JobError> {
        let cid = &chat.open_conversation_id;
        let key = DeliveryKey {
            incident_id: &incident.id,
            kind: TargetKind::Chat,
            target: cid,
        };
        let now_ms = self.clock.now_ms();
        if !self
            .ledger
            .claim_step(key, DeliveryStep::Alert, now_ms, self.settings.lease_ms())
            .await?
        {
            return Ok(());
        }
        let label = chat.title.clone().unwrap_or_else(|| cid.clone());
        if self
            .fold_if_storm(integration, incident, chat, &label)
            .await?
        {
            return Ok(());
        }
        let (channel, outcome) = if integration.card_template_id.is_some() {
            let robot = chat.robot_code.as_deref();
            let outcome = self
                .send_card(
                    integration,
                    incident,
                    ctx,
                    CardTarget {
                        kind: TargetKind::Chat,
                        id: cid,
                        robot_code: robot,
                    },
                    deadline,
                )
                .await;
            (Channel::Card, outcome)
        } else {
            let app = AppCredentials::from(integration).with_priority(priority_of(incident));
            let message = render::alert_message(incident, ctx);
            let cool_app = chat.cool_app_code.as_deref();
            let outcome = self
                .with_backoff(deadline, || {
                    self.dingtalk
                        .send_group_message(app, cid, cool_app, &message)
                })
                .await;
            (Channel::Robot, outcome)
        };
        let claimed = Claimed {
            incident_id: &incident.id,
            kind: TargetKind::Chat,
            target: cid,
            label: &label,
            step: DeliveryStep::Alert,
            channel,
        };
        self.settle(integration, claimed, outcome, retry).await?;
        Ok(())
    }

    /// Claims the alert step of each person; returns those this caller may send to.
    async fn claim_users(
        &self,
        incident: &Incident,
        users: &[(String, String)],
    ) -> Result<Vec<(String, String)>, JobError> {
        let now_ms = self.clock.now_ms();
        let mut claimed = Vec::new();
        for (user_id, label) in users {
            let key = DeliveryKey {
                incident_id: &incident.id,
                kind: TargetKind::User,
                target: user_id,
            };
            if self
                .ledger
                .claim_step(key, DeliveryStep::Alert, now_ms, self.settings.lease_ms())
                .await?
            {
                claimed.push((user_id.clone(), label.clone()));
            }
        }
        Ok(claimed)
    }
}
