//! Integration items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};

use super::{Item, Store, StoreError, n, partition, s};
use crate::domain::integration::Integration;

const CONFIG: &str = "CONFIG";
const LIST_KEY: &str = "INTEGRATIONS";

fn to_item(integration: &Integration) -> Result<HashMap<String, AttributeValue>, StoreError> {
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
    /// Writes a new integration; `Conflict` if the id is taken.
    pub async fn insert_integration(&self, integration: &Integration) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(integration)?))
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
        out.item.map(from_item).transpose()
    }

    /// Lists every integration, oldest first (a Query on `gsi1`, never a Scan).
    pub async fn list_integrations(&self) -> Result<Vec<Integration>, StoreError> {
        self.query_gsi1(LIST_KEY, false)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
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
            .set_item(Some(to_item(integration)?))
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
