//! The `incident_changed` job: someone acted on an incident; update its cards in
//! place, recall DINGs once someone responded (and once resolved, send the
//! follow-ups). Older, coalesced jobs stand down.

use tokio::time::Instant;
use tracing::{info, instrument};

use super::{JobError, Notifier};
use crate::domain::incident::IncidentStatus;
use crate::domain::integration::Integration;

impl Notifier {
    /// Runs an `incident_changed` job for incident `incident_id` at `version`.
    #[instrument(skip_all, fields(integration_id = %integration.id, incident_id = %incident_id))]
    pub(super) async fn incident_changed(
        &self,
        integration: &Integration,
        incident_id: &str,
        version: Option<u64>,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let incident = self
            .store
            .get_incident(incident_id)
            .await?
            .ok_or_else(|| JobError::Malformed(format!("unknown incident {incident_id}")))?;
        if version.is_some_and(|v| v < incident.version) {
            info!("a newer change is queued; this update stands down");
            return Ok(());
        }
        if incident.status == IncidentStatus::Resolved {
            return self
                .deliver_resolved(integration, &incident, deadline)
                .await;
        }
        let (ctx, _) = self.render_ctx(integration, &incident);
        let mut retry = None;
        self.update_cards(integration, &incident, &ctx, deadline, &mut retry)
            .await?;
        let deliveries = self.ledger.list_deliveries(&incident.id).await?;
        self.recall_dings(integration, &incident, &deliveries, deadline, &mut retry)
            .await?;
        retry.map_or(Ok(()), |reason| Err(JobError::Retry(reason)))
    }
}
