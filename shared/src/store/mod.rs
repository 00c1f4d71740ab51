//! The one DynamoDB table (pk/sk strings, GSI `gsi1`, TTL attribute `expires_at`).
//!
//! Items (all of one integration share the partition `INT#<id>`, so deleting an
//! integration is one Query, and no hot path scans):
//! - `CONFIG`: the integration (also on `gsi1` under `INTEGRATIONS` for listing)
//! - `CHAT#<openConversationId>`: a group chat of the group chat list
//! - `SEEN#<key>`: an idempotency claim (event id, message id) with a TTL
//! - `TOKEN`: the app access token shared by every Lambda instance
//! - `POLICY#<id>`, `ROUTES`: escalation policies and routes (see `escalation`)
//! - `SCHED#<id>`, `PREFLIGHT`: on-call schedules and the daily pre-flight timer (see `schedules`)
//! - `HELD#<userId>`: a click held for 15 minutes until its person associates (see `held_actions`)
//! - `MSGERR#<message id>` / `FIRST_ERROR`: why an SQS message first failed (see `records`)
//! - `SETUP`: what the setup checklist learned by watching (see `setup`)

mod chats;
mod claims;
#[cfg(any(test, feature = "testing"))]
pub mod conformance;
mod deliveries;
mod escalation;
mod held_actions;
mod incident_book;
mod incidents;
mod integrations;
mod link_codes;
mod members;
pub mod memory;
pub mod ports;
mod records;
mod retention;
mod schedules;
mod setup;
mod usage;

use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};

pub use chats::{ChatInstall, ChatWrite};
pub use claims::CachedToken;
pub use held_actions::HeldAction;
pub use incident_book::{IncidentBook, MemoryIncidents, NewId};
pub use incidents::AlertApplied;
pub use link_codes::Redeemed;
pub use records::FirstError;
pub use schedules::DailyTimer;
pub use setup::SetupMarks;
pub use usage::{Digest, MonthUsage};

/// A store failure. `Conflict` is a lost conditional write; the rest are ours (5xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A conditional write found the item in another state.
    #[error("the item changed concurrently")]
    Conflict,
    /// DynamoDB could not be reached or refused the call.
    #[error("DynamoDB: {0}")]
    Dynamo(String),
    /// An item in the table could not be read back as its type.
    #[error("stored item is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
        R: std::fmt::Debug,
    {
        match err.as_service_error().and_then(|e| e.code()) {
            // A write that met an item's in-flight transaction lost a race too.
            Some("ConditionalCheckFailedException" | "TransactionConflictException") => {
                Self::Conflict
            }
            Some(code) => Self::Dynamo(format!(
                "{code}: {}",
                err.as_service_error()
                    .and_then(|e| e.message())
                    .unwrap_or_default()
            )),
            None => Self::Dynamo(DisplayErrorContext(&err).to_string()),
        }
    }
}

/// A conditional write's outcome: true when it applied, false when its condition
/// did not hold; other failures are errors.
fn applied<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match result.map_err(StoreError::from_sdk) {
        Ok(_) => Ok(true),
        Err(StoreError::Conflict) => Ok(false),
        Err(err) => Err(err),
    }
}

/// The DynamoDB-backed store.
#[derive(Debug, Clone)]
pub struct Store {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Seals the integrations' secrets at rest (None: stored as given).
    secrets: Option<std::sync::Arc<crate::infra::secrets::SecretBox>>,
    /// Retentions and incident owners remembered for `expires_at` (see `retention`).
    retention: std::sync::Arc<retention::RetentionCache>,
}

/// Name of the secondary index used for listings.
pub const GSI1: &str = "gsi1";
/// Name of the sparse secondary index of due escalation steps (the sweep's).
pub const GSI2: &str = "gsi2";

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn partition(integration_id: &str) -> String {
    format!("INT#{integration_id}")
}

type Item = std::collections::HashMap<String, AttributeValue>;

/// Serialises `value` as an item under `pk`/`sk`.
fn typed_item<T: serde::Serialize>(value: &T, pk: String, sk: String) -> Result<Item, StoreError> {
    let mut item: Item =
        serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.insert("pk".into(), s(pk));
    item.insert("sk".into(), s(sk));
    Ok(item)
}

/// Reads an item back as `T` (key attributes are ignored).
fn from_typed<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// A store on `table` through `client`.
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            secrets: None,
            retention: Default::default(),
        }
    }

    /// The same store, sealing the integrations' secrets with `secrets`.
    pub fn with_secrets(mut self, secrets: crate::infra::secrets::SecretBox) -> Self {
        self.secrets = Some(std::sync::Arc::new(secrets));
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (keys, `gsi1`, TTL) unless it exists. For the local stack and tests;
    /// deployed tables come from template.yaml.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        if self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .is_ok()
        {
            return Ok(());
        }
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))
        };
        let gsi = |name: &str, hash: &str, range: &str| {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?)
            .attribute_definitions(attr("gsi1pk")?)
            .attribute_definitions(attr("gsi1sk")?)
            .attribute_definitions(attr("gsi2pk")?)
            .attribute_definitions(attr("gsi2sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .global_secondary_indexes(gsi(GSI1, "gsi1pk", "gsi1sk")?)
            .global_secondary_indexes(gsi(GSI2, "gsi2pk", "gsi2sk")?)
            .send()
            .await;
        if let Err(err) = created {
            let code = err.as_service_error().and_then(|e| {
                aws_sdk_dynamodb::error::ProvideErrorMetadata::code(e).map(str::to_string)
            });
            if code.as_deref() != Some("ResourceInUseException") {
                return Err(StoreError::from_sdk(err));
            }
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expires_at")
                    .enabled(true)
                    .build()
                    .map_err(|e| StoreError::Dynamo(e.to_string()))?,
            )
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Every item under `key` on `gsi1` (newest first when `newest_first`).
    async fn query_gsi1(&self, key: &str, newest_first: bool) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(GSI1)
                .key_condition_expression("gsi1pk = :k")
                .expression_attribute_values(":k", s(key))
                .scan_index_forward(!newest_first)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// Reads one item.
    async fn get_item(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?
            .item)
    }

    /// Every item of an integration's partition with a sort key starting with `prefix`
    /// (the whole partition for an empty prefix).
    async fn query_prefix(
        &self,
        integration_id: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_partition(&partition(integration_id), prefix)
            .await
    }

    /// Every item of partition `pk` with a sort key starting with `prefix`.
    async fn query_partition(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start);
            query = if prefix.is_empty() {
                query.key_condition_expression("pk = :pk")
            } else {
                query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let page = query.send().await.map_err(StoreError::from_sdk)?;
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}
