//! Read access to incidents and their operation records, for the admin API and the
//! H5 app. An incident past its retention (`expires_at`) reads as gone, whether or
//! not DynamoDB has deleted it yet.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::clock::Clock;

use crate::domain::delivery::Delivery;
use crate::domain::incident::{Incident, IncidentStatus, OperationRecord};
use crate::services::integration_center::CenterError;
use crate::store::Store;

/// An incident with its timeline and deliveries (`GET /api/incidents/{id}`).
#[derive(Debug, Clone)]
pub struct IncidentDetail {
    /// The incident.
    pub incident: Incident,
    /// Operation records, oldest first.
    pub records: Vec<OperationRecord>,
    /// What was delivered to each target.
    pub deliveries: Vec<Delivery>,
}

impl Serialize for IncidentDetail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut value = incident_json(&self.incident);
        if let Some(object) = value.as_object_mut() {
            let records = serde_json::to_value(&self.records).map_err(serde::ser::Error::custom)?;
            let deliveries =
                serde_json::to_value(&self.deliveries).map_err(serde::ser::Error::custom)?;
            object.insert("records".into(), records);
            object.insert("deliveries".into(), deliveries);
        }
        value.serialize(serializer)
    }
}

/// An incident as the APIs show it: its escalation as the view of
/// ARCHITECTURE.md §9 (policy, version, layer, loop, next step; null without a
/// policy), not the state kept for the timers.
pub fn incident_json(incident: &Incident) -> Value {
    let mut value = serde_json::to_value(incident).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        let view = serde_json::to_value(crate::domain::escalation_state::view(incident))
            .unwrap_or(Value::Null);
        object.insert("escalation".into(), view);
    }
    value
}

/// Incidents as the APIs show them.
pub fn incidents_json(incidents: &[Incident]) -> Value {
    Value::Array(incidents.iter().map(incident_json).collect())
}

/// Reads incidents.
#[derive(Clone)]
pub struct IncidentReader {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl IncidentReader {
    /// A reader on `store`; `clock` says which incidents have expired.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
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
            .list_live_incidents(integration_id, self.clock.now_secs())
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
            .get_live_incident(id, self.clock.now_secs())
            .await?
            .ok_or(CenterError::Missing("incident"))?;
        Ok(IncidentDetail {
            records: self.store.list_records(id).await?,
            deliveries: self.store.list_deliveries(id).await?,
            incident,
        })
    }
}
