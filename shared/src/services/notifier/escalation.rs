//! Escalation at run time (ARCHITECTURE.md §9): which policy an alert follows,
//! timers that fire the due step exactly once, the once-a-minute sweep that fires
//! whatever a lost timer message would have, and draining what a step owes (a
//! round of notifications, a DING).
//!
//! A step is decided by the pure [`fire_due`] and written with the incident's
//! version condition, so of two firings (a duplicate timer, the sweep) one wins
//! and the other reads a new epoch and stands down. What the step owes is written
//! with it and cleared only once sent, each target claimed per round.

use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use super::{JobError, Notifier};
use crate::domain::escalation_state::{
    EARLY_TOLERANCE_MS, Fired, PolicySnapshot, fire_due, layer_schedules, round_targets,
    staff_layer,
};
use crate::domain::incident::{AlertEvent, Incident, IncidentStatus, RecordKind};
use crate::domain::integration::Integration;
use crate::domain::job::Job;
use crate::domain::oncall_schedule::members_on_call;
use crate::domain::routing;
use crate::store::StoreError;

/// Rounds of read-decide-write one run makes before it leaves the rest to the
/// next timer or sweep.
const RUN_PASSES: usize = 6;

/// Incidents the sweep takes on per run.
const SWEEP_LIMIT: i32 = 100;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Incidents looked at.
    pub due: usize,
    /// Incidents whose run failed (retried by the next sweep).
    pub failed: usize,
    /// Handoff messages and pre-flight reports (ARCHITECTURE.md §8).
    pub oncall: crate::services::oncall_runner::OnCallSweepReport,
}

impl Notifier {
    /// The policy an alert follows: its `escalation_policy` label, else the first
    /// matching route (ARCHITECTURE.md §9); none when nothing matches.
    pub(super) async fn route_policy(
        &self,
        integration: &Integration,
        event: &AlertEvent,
    ) -> Result<Option<PolicySnapshot>, StoreError> {
        let read = self.store.get_routes(&integration.id);
        let routes = match &self.batch {
            Some(batch) => batch.routes.get_or_read(&integration.id, read).await?,
            None => read.await?,
        };
        let alert = &event.alert;
        let Some(reference) = routing::route_policy(&routes, &alert.labels, alert.severity) else {
            return Ok(None);
        };
        let read = self.store.list_policies(&integration.id);
        let policies = match &self.batch {
            Some(batch) => batch.policies.get_or_read(&integration.id, read).await?,
            None => read.await?,
        };
        let find = |reference: &str| {
            policies
                .iter()
                .find(|p| p.id == reference)
                .or_else(|| policies.iter().find(|p| p.name == reference))
        };
        let mut found = find(reference);
        if found.is_none() && alert.labels.contains_key(routing::POLICY_LABEL) {
            // A label naming no policy: the routes decide, as if it were absent.
            warn!(policy = %reference, "the alert's escalation_policy label names no policy; the routes decide");
            let mut labels = alert.labels.clone();
            labels.remove(routing::POLICY_LABEL);
            found = routing::route_policy(&routes, &labels, alert.severity).and_then(find);
        }
        let Some(mut snapshot) = found.map(PolicySnapshot::from) else {
            return Ok(None);
        };
        if let Some(first) = snapshot.layers.first() {
            let ids = first.targets.schedules.clone();
            snapshot.opening_oncall = self
                .on_call(&integration.id, &ids, self.clock.now_ms())
                .await?;
        }
        Ok(Some(snapshot))
    }

    /// Whoever is on call in `ids` (schedules of the integration) at `at_ms`.
    pub(super) async fn on_call(
        &self,
        integration_id: &str,
        ids: &[String],
        at_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let read = self.store.list_schedules(integration_id);
        let schedules = match &self.batch {
            Some(batch) => batch.schedules.get_or_read(integration_id, read).await?,
            None => read.await?,
        };
        Ok(members_on_call(&schedules, ids, at_ms))
    }

    /// Puts whoever is on call in the layer a fired step notifies on the incident.
    async fn staff(
        &self,
        integration_id: &str,
        incident: &mut Incident,
        new_layer: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let ids = layer_schedules(incident);
        if ids.is_empty() {
            return Ok(());
        }
        let oncall = self.on_call(integration_id, &ids, now_ms).await?;
        if oncall.is_empty() {
            warn!(incident_id = %incident.id, "nobody is on call in the layer's schedules");
            let layer = incident.escalation.as_ref().map_or(0, |e| e.layer + 1);
            self.record(
                &incident.id,
                RecordKind::UnknownTarget,
                Some(ids.join(", ")),
                format!(
                    "layer {layer}: nobody is on call in its schedules now; its other targets are notified (GET …/preflight lists such gaps ahead)"
                ),
            )
            .await;
        }
        staff_layer(incident, &oncall, new_layer);
        Ok(())
    }

    /// Queues the incident's escalation timers; a failure is left to the sweep.
    pub(super) async fn arm_timers(&self, incident: &Incident) {
        let Some(jobs) = &self.jobs else {
            return;
        };
        if let Err(err) = jobs.arm_escalation(incident, self.clock.now_ms()).await {
            warn!(error = %err, "could not queue an escalation timer; the sweep fires it");
        }
    }

    /// An `escalation_timer` job: early (a hop of a long wait) → queued again for
    /// the rest; due → the step, if the incident is still at `epoch`.
    pub(super) async fn escalation_timer(
        &self,
        integration: &Integration,
        incident_id: &str,
        epoch: u64,
        due_ms: i64,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let now_ms = self.clock.now_ms();
        if now_ms + EARLY_TOLERANCE_MS < due_ms
            && let Some(jobs) = &self.jobs
        {
            let job = Job::EscalationTimer {
                integration_id: integration.id.clone(),
                incident_id: incident_id.to_string(),
                epoch,
                due_ms,
            };
            return jobs
                .send_timer(&job, due_ms, now_ms)
                .await
                .map_err(|e| JobError::Retry(e.to_string()));
        }
        self.run_escalation(integration, incident_id, Some(epoch), deadline)
            .await
    }

    /// Fires every overdue step (the safety net for lost timer messages). Each
    /// failed incident, and a sweep that fails as a whole, counts one `SweepFailures`.
    pub async fn sweep(&self, deadline: Instant) -> Result<SweepReport, JobError> {
        let swept = self.sweep_due(deadline).await;
        if swept.is_err() {
            self.metric("", "SweepFailures", 1.0, "Count");
        }
        swept
    }

    async fn sweep_due(&self, deadline: Instant) -> Result<SweepReport, JobError> {
        let due = self
            .store
            .due_incidents(self.clock.now_ms(), SWEEP_LIMIT)
            .await?;
        let mut report = SweepReport {
            due: due.len(),
            ..SweepReport::default()
        };
        for incident in due {
            if Instant::now() + self.settings.deadline_margin > deadline {
                break;
            }
            let Some(integration) = self.integration(&incident.integration_id).await? else {
                // Its integration is gone: take it off the timer index for good.
                self.stop_timers(&incident).await?;
                continue;
            };
            let span =
                info_span!("sweep", integration_id = %integration.id, incident_id = %incident.id);
            let run = self.run_escalation(&integration, &incident.id, None, deadline);
            if let Err(err) = run.instrument(span).await {
                warn!(incident_id = %incident.id, error = %err, "escalation step failed; the next sweep retries it");
                self.metric(&integration.id, "SweepFailures", 1.0, "Count");
                report.failed += 1;
            }
        }
        if let Some(runner) = &self.oncall {
            let margin = deadline
                .checked_sub(self.settings.deadline_margin)
                .unwrap_or(deadline);
            report.oncall = Box::pin(runner.sweep(margin)).await?;
        }
        Ok(report)
    }

    /// Drains what the incident owes, then fires its due step (at `epoch`, when
    /// a timer names one).
    async fn run_escalation(
        &self,
        integration: &Integration,
        incident_id: &str,
        epoch: Option<u64>,
        deadline: Instant,
    ) -> Result<(), JobError> {
        for _ in 0..RUN_PASSES {
            let Some(incident) = self
                .store
                .get_incident(incident_id)
                .await?
                .filter(|i| i.integration_id == integration.id)
            else {
                info!(incident_id, "timer for an unknown incident; nothing to do");
                return Ok(());
            };
            let Some(esc) = incident.escalation.as_ref() else {
                return Ok(());
            };
            if esc.undelivered.is_some() || esc.ding_owed.is_some() {
                self.drain(integration, &incident, deadline).await?;
                continue;
            }
            let now_ms = self.clock.now_ms();
            let Some((mut next, fired)) = fire_due(&incident, epoch, now_ms) else {
                return Ok(());
            };
            let new_layer = matches!(fired, Fired::Escalated { .. });
            self.staff(&integration.id, &mut next, new_layer, now_ms)
                .await?;
            match self.store.replace_incident(&next, incident.version).await {
                Ok(()) => {
                    self.after_fired(integration, &next, &fired).await;
                    self.queue_changed(&next).await;
                }
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Records a fired step, arms the next timer and tells the upstream system.
    async fn after_fired(&self, integration: &Integration, incident: &Incident, fired: &Fired) {
        let esc = incident.escalation.as_ref();
        let layers = esc
            .and_then(|e| e.policy.as_ref())
            .map_or(0, |p| p.layers.len());
        let record = match fired {
            Fired::Escalated {
                layer, loop_count, ..
            } => Some((
                RecordKind::Escalated,
                format!(
                    "nobody responded in time: escalated to layer {} of {layers}{}",
                    layer + 1,
                    if *loop_count > 0 {
                        format!(" (repeat {loop_count})")
                    } else {
                        String::new()
                    }
                ),
            )),
            Fired::Exhausted => Some((
                RecordKind::Escalated,
                "every layer and repeat was notified and nobody responded: escalation ended (acknowledge, reassign or escalate by hand)".to_string(),
            )),
            Fired::AckTimeout { .. } => Some((
                RecordKind::AckTimeout,
                "acknowledged but not resolved within the policy's ack timeout: triggered again, the current layer notified again".to_string(),
            )),
            Fired::SnoozeEnded { .. } => Some((
                RecordKind::SnoozeEnded,
                "the snooze ended: triggered again and notified again".to_string(),
            )),
            Fired::Ding { .. } | Fired::Rescheduled => None,
        };
        if let Some((kind, detail)) = record {
            info!(record = ?kind, "escalation step fired");
            self.record(&incident.id, kind, None, detail).await;
        }
        self.arm_timers(incident).await;
        if matches!(fired, Fired::Escalated { .. }) {
            self.metric(&integration.id, "Escalations", 1.0, "Count");
            self.queue_upstream(integration, incident, "escalated", "escalation policy")
                .await;
        }
    }

    /// Queues the upstream webhook event `incident.<kind>` when one is configured.
    async fn queue_upstream(
        &self,
        integration: &Integration,
        incident: &Incident,
        kind: &str,
        actor: &str,
    ) {
        let (Some(jobs), Some(_)) = (&self.jobs, &integration.webhook_url) else {
            return;
        };
        let job = crate::render::webhook_payload::webhook_job(incident, kind, actor);
        if let Err(err) = jobs.send_job(&job, std::time::Duration::ZERO).await {
            warn!(error = %err, "could not queue the upstream webhook");
        }
    }

    /// Sends what a step owes (a round, a DING), then clears it; a failure that may
    /// pass leaves it owed (the record, or the next sweep, retries).
    async fn drain(
        &self,
        integration: &Integration,
        incident: &Incident,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let Some(esc) = incident.escalation.as_ref() else {
            return Ok(());
        };
        let mut retry = None;
        if incident.status != IncidentStatus::Resolved {
            if let Some(round) = &esc.undelivered {
                let wanted = round_targets(incident, round);
                retry = self
                    .deliver_round(integration, incident, &wanted, round.n, deadline)
                    .await?;
                if integration.card_template_id.is_some() {
                    let (ctx, _) = self.render_ctx(integration, incident);
                    self.update_cards(integration, incident, &ctx, deadline, &mut retry)
                        .await?;
                }
            }
            if let Some(round) = esc.ding_owed {
                let failed = self
                    .send_dings(integration, incident, round, deadline)
                    .await?;
                retry = retry.or(failed);
            }
        }
        if let Some(reason) = retry {
            return Err(JobError::Retry(reason));
        }
        self.clear_owed(incident).await
    }

    /// Clears the owed round and DING that `sent` had (unless a newer step replaced them).
    async fn clear_owed(&self, sent: &Incident) -> Result<(), JobError> {
        let Some(owed) = sent.escalation.as_ref() else {
            return Ok(());
        };
        for _ in 0..RUN_PASSES {
            let Some(current) = self.store.get_incident(&sent.id).await? else {
                return Ok(());
            };
            let mut next = current.clone();
            let Some(esc) = next.escalation.as_mut() else {
                return Ok(());
            };
            let mut changed = false;
            if esc.undelivered.is_some() && esc.undelivered == owed.undelivered {
                esc.undelivered = None;
                changed = true;
            }
            if esc.ding_owed.is_some() && esc.ding_owed == owed.ding_owed {
                esc.ding_owed = None;
                changed = true;
            }
            if !changed {
                return Ok(());
            }
            next.version = current.version + 1;
            match self.store.replace_incident(&next, current.version).await {
                Ok(()) => {
                    self.queue_changed(&next).await;
                    return Ok(());
                }
                Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(JobError::Retry("the incident kept changing".into()))
    }

    /// This write superseded an action's `incident_changed` job (which stands
    /// down for older versions): queue one for the new version, so its cards are
    /// updated and its DINGs recalled.
    async fn queue_changed(&self, incident: &Incident) {
        let (Some(jobs), false) = (&self.jobs, incident.status == IncidentStatus::Triggered) else {
            return;
        };
        let job = Job::IncidentChanged {
            integration_id: incident.integration_id.clone(),
            incident_id: incident.id.clone(),
            version: Some(incident.version),
        };
        if let Err(err) = jobs.send_job(&job, std::time::Duration::ZERO).await {
            warn!(error = %err, "could not queue the card update; the next change brings it");
        }
    }

    /// Takes an incident off the timer index (its integration was deleted).
    async fn stop_timers(&self, incident: &Incident) -> Result<(), JobError> {
        let mut next = incident.clone();
        if let Some(esc) = next.escalation.as_mut() {
            esc.next = None;
            esc.undelivered = None;
            esc.ding_owed = None;
        }
        next.version = incident.version.saturating_add(1);
        match self.store.replace_incident(&next, incident.version).await {
            Ok(()) | Err(StoreError::Conflict) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}
