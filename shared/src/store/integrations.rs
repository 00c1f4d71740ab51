//! Integration items. Their secrets are sealed on the way in and opened on the way
//! out when the store has a [`SecretBox`] (ARCHITECTURE.md §5.7).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};

use super::{Item, Store, StoreError, n, partition, s};
use crate::domain::Secret;
use crate::domain::integration::Integration;
use crate::infra::secrets::{SecretBox, SecretsError};

/// The integration with `change` applied to each of its secrets.
fn map_secrets(
    integration: &Integration,
    change: impl Fn(&str) -> Result<String, SecretsError>,
) -> Result<Integration, SecretsError> {
    let one = |secret: &Secret| change(secret.expose()).map(Secret::new);
    let mut mapped = integration.clone();
    mapped.client_secret = one(&integration.client_secret)?;
    mapped.aes_key = one(&integration.aes_key)?;
    mapped.token = one(&integration.token)?;
    mapped.card_api_secret = integration.card_api_secret.as_ref().map(one).transpose()?;
    mapped.webhook_secret = integration.webhook_secret.as_ref().map(one).transpose()?;
    if let Some(am) = &mut mapped.alertmanager
        && let Some(secret) = am.auth.secret()
    {
        am.auth = am.auth.with_secret(one(secret)?);
    }
    Ok(mapped)
}

/// Whether every stored secret of `integration` is sealed.
fn all_sealed(integration: &Integration) -> bool {
    [
        Some(&integration.client_secret),
        Some(&integration.aes_key),
        Some(&integration.token),
        integration.card_api_secret.as_ref(),
        integration.webhook_secret.as_ref(),
        integration
            .alertmanager
            .as_ref()
            .and_then(|am| am.auth.secret()),
    ]
    .into_iter()
    .flatten()
    .all(|secret| SecretBox::is_sealed(secret.expose()))
}

fn sealing_failed(err: SecretsError) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

const CONFIG: &str = "CONFIG";
const LIST_KEY: &str = "INTEGRATIONS";

fn to_item(integration: &Integration) -> Result<Item, StoreError> {
    let mut item: HashMap<String, AttributeValue> =
        serde_dynamo::to_item(integration).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.insert("pk".into(), s(partition(&integration.id)));
    item.insert("sk".into(), s(CONFIG));
    item.insert("gsi1pk".into(), s(LIST_KEY));
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", integration.created_at, integration.id)),
    );
    Ok(item)
}

fn from_item(item: HashMap<String, AttributeValue>) -> Result<Integration, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// The item of an integration, its secrets sealed.
    fn integration_item(&self, integration: &Integration) -> Result<Item, StoreError> {
        match &self.secrets {
            Some(secrets) => {
                to_item(&map_secrets(integration, |v| secrets.seal(v)).map_err(sealing_failed)?)
            }
            None => to_item(integration),
        }
    }

    /// An integration read back, its secrets opened; plain ones (stored before
    /// sealing) are sealed in place, once.
    async fn read_integration(&self, item: Item) -> Result<Integration, StoreError> {
        let stored = from_item(item)?;
        let Some(secrets) = &self.secrets else {
            return Ok(stored);
        };
        let opened = map_secrets(&stored, |v| secrets.open(v)).map_err(sealing_failed)?;
        if !all_sealed(&stored) {
            // Migration: a conflict means someone wrote it meanwhile (sealed, then).
            match self.replace_integration(&opened, opened.version).await {
                Ok(()) | Err(StoreError::Conflict) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "could not seal an integration's stored secrets")
                }
            }
        }
        Ok(opened)
    }

    /// Writes a new integration; `Conflict` if the id is taken.
    pub async fn insert_integration(&self, integration: &Integration) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.integration_item(integration)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Reads an integration (strongly consistent).
    pub async fn get_integration(&self, id: &str) -> Result<Option<Integration>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(partition(id)))
            .key("sk", s(CONFIG))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        match out.item {
            Some(item) => self.read_integration(item).await.map(Some),
            None => Ok(None),
        }
    }

    /// Lists every integration, oldest first (a Query on `gsi1`, never a Scan).
    pub async fn list_integrations(&self) -> Result<Vec<Integration>, StoreError> {
        let mut integrations = Vec::new();
        for item in self.query_gsi1(LIST_KEY, false).await? {
            match self.read_integration(item).await {
                Ok(integration) => integrations.push(integration),
                // One unreadable item must not hide the others.
                Err(StoreError::Corrupt(reason)) => {
                    tracing::error!(%reason, "an integration could not be read; left out of the list")
                }
                Err(err) => return Err(err),
            }
        }
        Ok(integrations)
    }

    /// Replaces an integration if it is still at `expected_version`; `Conflict` otherwise.
    pub async fn replace_integration(
        &self,
        integration: &Integration,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.integration_item(integration)?))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", n(expected_version))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Deletes an integration and every item in its partition. Returns whether it existed.
    pub async fn delete_integration(&self, id: &str) -> Result<bool, StoreError> {
        let mut items = self.query_prefix(id, "").await?;
        let existed = items.iter().any(|item| item.get("sk") == Some(&s(CONFIG)));
        // Incidents live in partitions of their own (with deliveries and records).
        for incident in self.list_incidents(id).await? {
            items.extend(
                self.query_partition(&format!("INC#{}", incident.id), "")
                    .await?,
            );
        }
        self.delete_items(items).await?;
        Ok(existed)
    }

    /// Deletes items (by their keys) in batches of 25, retrying unprocessed ones.
    async fn delete_items(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let mut requests: Vec<WriteRequest> = Vec::with_capacity(items.len());
        for item in items {
            let (Some(pk), Some(sk)) = (item.get("pk"), item.get("sk")) else {
                continue;
            };
            let delete = DeleteRequest::builder()
                .key("pk", pk.clone())
                .key("sk", sk.clone())
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        for chunk in requests.chunks(25) {
            let mut pending = Some(chunk.to_vec());
            let mut attempts = 0;
            while let Some(batch) = pending.take().filter(|b| !b.is_empty()) {
                attempts += 1;
                if attempts > 8 {
                    return Err(StoreError::Dynamo(
                        "batch delete kept leaving items unprocessed".into(),
                    ));
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, batch)
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table));
                if pending.as_ref().is_some_and(|b| !b.is_empty()) {
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempts)).await;
                }
            }
        }
        Ok(())
    }
}
