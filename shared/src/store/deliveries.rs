//! Delivery items: `INC#<id>` / `DELIVERY#<kind>#<target>`, what was delivered to one
//! target of an incident (ARCHITECTURE.md §4, §5.1). Each step (alert, resolved) is
//! claimed with a conditional write before it is sent, so a redelivered SQS message
//! never sends twice. Each claim sets the item's `expires_at` (see `retention`).

use super::incidents::incident_pk;
use super::{Store, StoreError, applied, from_typed, n, s};
use crate::domain::delivery::{Delivery, DeliveryKey, DeliveryStep, StepOutcome};

impl Store {
    /// Claims a delivery step for `lease_ms`: true when this caller may send it (it
    /// was never completed and nobody else holds a live claim).
    pub async fn claim_step(
        &self,
        key: DeliveryKey<'_>,
        step: DeliveryStep,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        // Each claim keeps the item for the retention from now (see `retention`).
        let retention = self.incident_retention_secs(key.incident_id).await?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_pk(key.incident_id)))
            .key("sk", s(key.sort_key()))
            .update_expression(
                "SET #kind = :kind, target = :target, #round = :round, lease_until_ms = :lease, expires_at = :expires",
            )
            .condition_expression(
                "attribute_not_exists(#step) AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now)",
            )
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#round", "round")
            .expression_attribute_names("#step", step.field())
            .expression_attribute_values(":kind", s(key.kind.as_str()))
            .expression_attribute_values(":target", s(key.target))
            .expression_attribute_values(":round", n(key.round))
            .expression_attribute_values(":lease", n(now_ms + lease_ms))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(
                ":expires",
                n(now_ms.div_euclid(1000).saturating_add(retention)),
            )
            .send()
            .await;
        applied(result)
    }

    /// Completes a claimed step (sent or given up) and drops the claim.
    pub async fn finish_step(
        &self,
        key: DeliveryKey<'_>,
        outcome: StepOutcome<'_>,
    ) -> Result<(), StoreError> {
        let mut sets = vec!["#step = :state", "channel = :channel"];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_pk(key.incident_id)))
            .key("sk", s(key.sort_key()))
            .expression_attribute_names("#step", outcome.step.field())
            .expression_attribute_values(":state", s(outcome.state.as_str()))
            .expression_attribute_values(":channel", s(outcome.channel.as_str()));
        if let (Some(reference), DeliveryStep::Alert) = (outcome.reference, outcome.step) {
            sets.push("alert_ref = :ref");
            request = request.expression_attribute_values(":ref", s(reference));
        }
        if let Some(error) = outcome.error {
            sets.push("last_error = :err");
            request = request.expression_attribute_values(":err", s(error));
        }
        request
            .update_expression(format!("SET {} REMOVE lease_until_ms", sets.join(", ")))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Drops a claim without completing the step (it will be tried again).
    pub async fn release_step(&self, key: DeliveryKey<'_>, error: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_pk(key.incident_id)))
            .key("sk", s(key.sort_key()))
            .update_expression("SET last_error = :err REMOVE lease_until_ms")
            .expression_attribute_values(":err", s(error))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Remembers the content hash of a card last sent to a target.
    pub async fn set_card_hash(&self, key: DeliveryKey<'_>, hash: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_pk(key.incident_id)))
            .key("sk", s(key.sort_key()))
            .update_expression("SET card_hash = :h")
            .expression_attribute_values(":h", s(hash))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// What was delivered to one target of an incident.
    pub async fn get_delivery(&self, key: DeliveryKey<'_>) -> Result<Option<Delivery>, StoreError> {
        self.get_item(&incident_pk(key.incident_id), &key.sort_key())
            .await?
            .map(from_typed)
            .transpose()
    }

    /// Every delivery item of an incident.
    pub async fn list_deliveries(&self, incident_id: &str) -> Result<Vec<Delivery>, StoreError> {
        self.query_partition(&incident_pk(incident_id), "DELIVERY#")
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }
}
