//! Read access to incidents and their operation records, for the admin API.

use serde::Serialize;

use crate::domain::delivery::Delivery;
use crate::domain::incident::{Incident, IncidentStatus, OperationRecord};
use crate::services::integration_center::CenterError;
use crate::store::Store;

/// An incident with its timeline and deliveries (`GET /api/incidents/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct IncidentDetail {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// Operation records, oldest first.
    pub records: Vec<OperationRecord>,
    /// What was delivered to each target.
    pub deliveries: Vec<Delivery>,
}

/// Reads incidents.
#[derive(Clone)]
pub struct IncidentReader {
    store: Store,
}

impl IncidentReader {
    /// A reader on `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Incidents of an integration, newest first, filtered by key and status.
    pub async fn list(
        &self,
        integration_id: &str,
        key: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<Incident>, CenterError> {
        if self.store.get_integration(integration_id).await?.is_none() {
            return Err(CenterError::NotFound);
        }
        let status = match status {
            None | Some("") => None,
            Some("triggered") => Some(IncidentStatus::Triggered),
            Some("acknowledged") => Some(IncidentStatus::Acknowledged),
            Some("resolved") => Some(IncidentStatus::Resolved),
            Some(_) => {
                return Err(crate::domain::ValidationError::new(
                    "status",
                    "must be triggered, acknowledged or resolved",
                )
                .into());
            }
        };
        Ok(self
            .store
            .list_incidents(integration_id)
            .await?
            .into_iter()
            .filter(|i| key.is_none_or(|k| k.is_empty() || i.key == k))
            .filter(|i| status.is_none_or(|s| i.status == s))
            .collect())
    }

    /// One incident with its records.
    pub async fn detail(&self, id: &str) -> Result<IncidentDetail, CenterError> {
        let incident = self
            .store
            .get_incident(id)
            .await?
            .ok_or(CenterError::Missing("incident"))?;
        Ok(IncidentDetail {
            records: self.store.list_records(id).await?,
            deliveries: self.store.list_deliveries(id).await?,
            incident,
        })
    }
}
