//! Retention (issue #19): an integration's incidents, with their operation records
//! and delivery items, expire `retention_days` after their last change, through the
//! table's TTL attribute `expires_at`.
//!
//! - A resolved incident expires at its last update plus the retention; an open one
//!   carries no `expires_at`, so an incident that is still firing (Alertmanager's
//!   repeats change nothing and are not written) never expires under its responders.
//! - Records expire at their own time plus the retention, delivery items at their
//!   last claim plus the retention. An incident open longer than its retention keeps
//!   its item but loses its oldest records and deliveries.
//! - DynamoDB deletes expired items lazily (up to days later, and moto never does),
//!   so the reads that show incidents treat one whose `expires_at` has passed as gone
//!   ([`Store::list_live_incidents`], [`Store::get_live_incident`]).
//!
//! The retention of each integration is remembered for [`RETENTION_CACHE`] (so a
//! write costs no extra read in a warm instance), and which integration an incident
//! belongs to is remembered from the incidents this store wrote or read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::incidents::incident_pk;
use super::{Item, Store, StoreError, from_typed};
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::integration::DEFAULT_RETENTION_DAYS;

/// How long an integration's retention is used before it is read again.
pub const RETENTION_CACHE: Duration = Duration::from_secs(300);

/// Incidents remembered before the map starts over (bounds a warm instance's memory).
const REMEMBERED_INCIDENTS: usize = 20_000;

/// What this store remembers to stamp `expires_at` without extra reads.
#[derive(Debug, Default)]
pub(super) struct RetentionCache {
    /// Integration id → (retention in days, when it was read).
    integrations: Mutex<HashMap<String, (u32, Instant)>>,
    /// Incident id → integration id.
    incidents: Mutex<HashMap<String, String>>,
}

/// Whether an item's `expires_at` (Unix seconds) is at or before `now_secs`.
pub(super) fn expired(item: &Item, now_secs: i64) -> bool {
    item.get("expires_at")
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|at| at <= now_secs)
}

/// Unix seconds of an RFC 3339 time (0 when unreadable).
fn secs_of(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time).map_or(0, |t| t.timestamp())
}

impl Store {
    /// Seconds an item of `integration_id`'s incidents is kept after its last change.
    pub(super) async fn retention_secs(&self, integration_id: &str) -> Result<i64, StoreError> {
        let cached = self
            .retention
            .integrations
            .lock()
            .ok()
            .and_then(|map| map.get(integration_id).copied())
            .filter(|(_, at)| at.elapsed() < RETENTION_CACHE);
        let days = match cached {
            Some((days, _)) => days,
            None => {
                let days = self
                    .get_integration(integration_id)
                    .await?
                    .map_or(DEFAULT_RETENTION_DAYS, |i| i.retention_days);
                if let Ok(mut map) = self.retention.integrations.lock() {
                    map.insert(integration_id.to_string(), (days, Instant::now()));
                }
                days
            }
        };
        Ok(i64::from(days.max(1)) * 86_400)
    }

    /// Forgets what this store remembers of `integration_id`'s retention (after a
    /// change, so the next write reads it again).
    pub fn forget_retention(&self, integration_id: &str) {
        if let Ok(mut map) = self.retention.integrations.lock() {
            map.remove(integration_id);
        }
    }

    /// Remembers which integration `incident` belongs to.
    pub(super) fn remember_incident(&self, incident: &Incident) {
        if let Ok(mut map) = self.retention.incidents.lock() {
            if map.len() >= REMEMBERED_INCIDENTS {
                map.clear();
            }
            map.insert(incident.id.clone(), incident.integration_id.clone());
        }
    }

    /// Seconds the records and deliveries of `incident_id` are kept after they are
    /// written (the default retention for an incident that cannot be found).
    pub(super) async fn incident_retention_secs(
        &self,
        incident_id: &str,
    ) -> Result<i64, StoreError> {
        let known = self
            .retention
            .incidents
            .lock()
            .ok()
            .and_then(|map| map.get(incident_id).cloned());
        let integration_id = match known {
            Some(id) => Some(id),
            None => self
                .get_incident(incident_id)
                .await?
                .map(|i| i.integration_id),
        };
        match integration_id {
            Some(id) => self.retention_secs(&id).await,
            None => Ok(i64::from(DEFAULT_RETENTION_DAYS) * 86_400),
        }
    }

    /// The `expires_at` of an incident as written now: its last update plus the
    /// retention once resolved; none while open.
    pub(super) async fn incident_expiry(
        &self,
        incident: &Incident,
    ) -> Result<Option<i64>, StoreError> {
        self.remember_incident(incident);
        if incident.status != IncidentStatus::Resolved {
            return Ok(None);
        }
        let retention = self.retention_secs(&incident.integration_id).await?;
        Ok(Some(secs_of(&incident.updated_at) + retention))
    }

    /// An integration's incidents that have not expired by `now_secs`, newest first.
    pub async fn list_live_incidents(
        &self,
        integration_id: &str,
        now_secs: i64,
    ) -> Result<Vec<Incident>, StoreError> {
        let incidents = self
            .query_gsi1(&format!("INCIDENTS#{integration_id}"), true)
            .await?
            .into_iter()
            .filter(|item| !expired(item, now_secs))
            .map(from_typed)
            .collect::<Result<Vec<Incident>, StoreError>>()?;
        for incident in &incidents {
            self.remember_incident(incident);
        }
        Ok(incidents)
    }

    /// One incident, unless it has expired by `now_secs`.
    pub async fn get_live_incident(
        &self,
        id: &str,
        now_secs: i64,
    ) -> Result<Option<Incident>, StoreError> {
        match self.get_item(&incident_pk(id), "INCIDENT").await? {
            Some(item) if !expired(&item, now_secs) => {
                let incident: Incident = from_typed(item)?;
                self.remember_incident(&incident);
                Ok(Some(incident))
            }
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::n;

    #[test]
    fn an_item_expires_at_its_expires_at() {
        let mut item = Item::new();
        assert!(!expired(&item, i64::MAX), "no expires_at: kept");
        item.insert("expires_at".into(), n(1_000));
        assert!(!expired(&item, 999));
        assert!(expired(&item, 1_000));
        assert_eq!(secs_of("2026-11-28T00:00:00Z"), 1_795_824_000);
    }
}
