//! Escalation policies, routes and the timer index (ARCHITECTURE.md §4, §9).
//!
//! - `INT#<integration>` / `POLICY#<id>`: the policy's current version (incidents
//!   keep a snapshot of the version they opened with, so edits and deletes never
//!   change a running escalation).
//! - `INT#<integration>` / `ROUTES`: the ordered routes.
//! - Incidents with a step due (or something owed) are on the sparse index `gsi2`
//!   under `TIMERS`, sorted by due time: the sweep's one Query.

use super::{Item, Store, StoreError, applied, from_typed, n, partition, s, typed_item};
use crate::domain::escalation::EscalationPolicy;
use crate::domain::incident::Incident;
use crate::domain::routing::Route;

/// The timer index's partition.
pub(super) const TIMER_KEY: &str = "TIMERS";

/// The timer index's sort key: the due time (ms, zero-padded) and the incident.
pub(super) fn timer_sort_key(due_ms: i64, incident_id: &str) -> String {
    format!("{:013}#{incident_id}", due_ms.max(0))
}

fn policy_sk(id: &str) -> String {
    format!("POLICY#{id}")
}

/// The stored routes.
#[derive(serde::Serialize, serde::Deserialize)]
struct RoutesItem {
    routes: Vec<Route>,
}

impl Store {
    /// Stores a new policy (version 1) unless its id exists.
    pub async fn create_policy(
        &self,
        integration_id: &str,
        policy: &EscalationPolicy,
    ) -> Result<(), StoreError> {
        let item = typed_item(policy, partition(integration_id), policy_sk(&policy.id))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Replaces a policy if it is still at the version before `policy.version`.
    pub async fn replace_policy(
        &self,
        integration_id: &str,
        policy: &EscalationPolicy,
    ) -> Result<(), StoreError> {
        let item = typed_item(policy, partition(integration_id), policy_sk(&policy.id))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(policy.version.saturating_sub(1)))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// One policy.
    pub async fn get_policy(
        &self,
        integration_id: &str,
        id: &str,
    ) -> Result<Option<EscalationPolicy>, StoreError> {
        self.get_item(&partition(integration_id), &policy_sk(id))
            .await?
            .map(from_typed)
            .transpose()
    }

    /// Every policy of an integration.
    pub async fn list_policies(
        &self,
        integration_id: &str,
    ) -> Result<Vec<EscalationPolicy>, StoreError> {
        self.query_prefix(integration_id, "POLICY#")
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }

    /// Deletes a policy; false when there was none.
    pub async fn delete_policy(&self, integration_id: &str, id: &str) -> Result<bool, StoreError> {
        applied(
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(partition(integration_id)))
                .key("sk", s(policy_sk(id)))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await,
        )
    }

    /// The integration's routes (empty when none were set).
    pub async fn get_routes(&self, integration_id: &str) -> Result<Vec<Route>, StoreError> {
        Ok(self
            .get_item(&partition(integration_id), "ROUTES")
            .await?
            .map(from_typed::<RoutesItem>)
            .transpose()?
            .map(|item| item.routes)
            .unwrap_or_default())
    }

    /// Replaces the integration's routes.
    pub async fn put_routes(
        &self,
        integration_id: &str,
        routes: &[Route],
    ) -> Result<(), StoreError> {
        let item = typed_item(
            &RoutesItem {
                routes: routes.to_vec(),
            },
            partition(integration_id),
            "ROUTES".into(),
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Incidents whose escalation step is due at `now_ms` (or owes something),
    /// oldest due first, at most `limit` (one Query on the sparse timer index).
    pub async fn due_incidents(
        &self,
        now_ms: i64,
        limit: i32,
    ) -> Result<Vec<Incident>, StoreError> {
        self.due_on_index(TIMER_KEY, now_ms, limit)
            .await?
            .into_iter()
            .map(|item: Item| from_typed(item))
            .collect()
    }
}
