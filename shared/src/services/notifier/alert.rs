//! An alert event: apply it to its incident, then deliver (ARCHITECTURE.md §2.4).

use tokio::time::Instant;
use tracing::{Instrument, info, info_span};

use super::{JobError, Notifier};
use crate::clock::rfc3339;
use crate::domain::bounds;
use crate::domain::incident::{AlertEvent, AlertStatus, Incident, RecordKind};
use crate::domain::integration::Integration;
use crate::store::AlertApplied;

/// A record to write when an alert opens or changes its incident:
/// (kind, target, detail).
pub(super) type AlertNote = (RecordKind, Option<String>, String);

/// Bounds an event at the notifier's door (producers may write to the queue
/// directly) and re-dates a future one to `received_ms` (the message's send time, so
/// a redelivery gets the same date); returns the records to write for it.
fn door_notes(event: &mut AlertEvent, received_ms: i64) -> Vec<AlertNote> {
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
            None,
            format!("oversized alert fields were cut: {}", cut.join("; ")),
        ));
    }
    if !redated.is_empty() {
        notes.push((
            RecordKind::ClockSkew,
            None,
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
            let policy = self.route_policy(&integration, &event).await?;
            let targets = &event.targets;
            // A policy whose layer 0 reaches nobody now (only schedules, in a gap)
            // counts as no targets: the default targets get the alert.
            let first_reaches_nobody = policy.as_ref().is_some_and(|p| {
                p.opening_oncall.is_empty()
                    && p.layers
                        .first()
                        .is_none_or(|l| l.targets.chats.is_empty() && l.targets.members.is_empty())
            });
            if (policy.is_none() || first_reaches_nobody)
                && targets.chats.is_empty()
                && targets.members.is_empty()
                && targets.dingtalk_user_ids.is_empty()
            {
                event.targets = integration.default_targets.clone();
            }
            let now_ms = self.clock.now_ms();
            let mut notes = door_notes(&mut event, sent_ms.unwrap_or(now_ms));
            if event.alert.status == AlertStatus::Firing {
                let mentioned = self.add_mentioned_mobiles(&integration, &mut event).await?;
                notes.extend(mentioned);
            }
            event.mention_mobiles.clear();
            let event_ms = event.occurred_ms(now_ms);
            let applied = self
                .store
                .apply_alert(
                    &event,
                    event_ms,
                    &rfc3339(now_ms),
                    &|| uuid::Uuid::new_v4().simple().to_string(),
                    policy.as_ref(),
                )
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
        notes: &[AlertNote],
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
                let policy = match incident.escalation.as_ref().and_then(|e| e.policy.as_ref()) {
                    Some(p) => format!("; escalation policy {} (version {})", p.name, p.version),
                    None => String::new(),
                };
                self.arm_timers(&incident).await;
                (
                    incident,
                    Some((RecordKind::Opened, format!("opened by {by} alert{policy}"))),
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
            for (kind, target, detail) in notes {
                self.record(&incident.id, *kind, target.clone(), detail.clone())
                    .await;
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

    /// Delivers the alert step (round 0) to every target not yet served, and
    /// updates the cards already out when the incident changed.
    async fn deliver_alert(
        &self,
        integration: &Integration,
        incident: &Incident,
        changed: bool,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let mut retry = self
            .deliver_round(integration, incident, &incident.targets, 0, deadline)
            .await?;
        if changed && integration.card_template_id.is_some() {
            let (ctx, _) = self.render_ctx(integration, incident);
            self.update_cards(integration, incident, &ctx, deadline, &mut retry)
                .await?;
        }
        retry.map_or(Ok(()), |reason| Err(JobError::Retry(reason)))
    }
}
