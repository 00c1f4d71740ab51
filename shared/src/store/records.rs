//! Operation records: `INC#<id>` / `REC#<ms>#<n>`, an incident's timeline, and the
//! time-ordered record helper the audit log shares (ARCHITECTURE.md §4).

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};

use super::incidents::incident_pk;
use super::ports::TimelineEntry;
use super::{Store, StoreError, applied, from_typed, n, s, typed_item};
use crate::domain::incident::OperationRecord;

/// How long the first error of an SQS message is kept: SQS's longest retention
/// (14 days) plus a day, so it outlives the message on the dead-letter queue.
const FIRST_ERROR_SECS: i64 = 15 * 86_400;

/// Why an SQS message first failed (shown by the dead-letter queue peek).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstError {
    /// The reason, as the notifier logged it.
    pub reason: String,
    /// When (ms).
    pub at_ms: i64,
}

/// `<prefix>#<ms>#<random>`: time order, and no two records collide.
fn record_sort_key(prefix: &str, at_ms: i64) -> String {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{prefix}#{at_ms:013}#{suffix}")
}

impl Store {
    /// Appends an operation record to an incident's timeline; it expires with the
    /// integration's retention after `at_ms` (see `retention`).
    pub async fn add_record(
        &self,
        incident_id: &str,
        at_ms: i64,
        record: &OperationRecord,
    ) -> Result<(), StoreError> {
        let item = self.timeline_item(incident_id, at_ms, record).await?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// A record's item under its incident, with its `expires_at`.
    async fn timeline_item(
        &self,
        incident_id: &str,
        at_ms: i64,
        record: &OperationRecord,
    ) -> Result<super::Item, StoreError> {
        let retention = self.incident_retention_secs(incident_id).await?;
        let mut item = typed_item(
            record,
            incident_pk(incident_id),
            record_sort_key("REC", at_ms),
        )?;
        item.insert(
            "expires_at".into(),
            n(at_ms.div_euclid(1000).saturating_add(retention)),
        );
        Ok(item)
    }

    /// Appends records of any incidents, 25 to a `BatchWriteItem` (what DynamoDB
    /// leaves unprocessed is sent again, a few times). A chunk that fails is written
    /// one record at a time, so one bad record costs only itself; the first error is
    /// returned after every record was tried.
    pub async fn add_records(&self, entries: &[TimelineEntry]) -> Result<(), StoreError> {
        let mut first_error = None;
        for chunk in entries.chunks(25) {
            let mut writes = Vec::with_capacity(chunk.len());
            for entry in chunk {
                let item = self
                    .timeline_item(&entry.incident_id, entry.at_ms, &entry.record)
                    .await?;
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|err| StoreError::Dynamo(err.to_string()))?;
                writes.push(WriteRequest::builder().put_request(put).build());
            }
            if self.write_all(writes).await.is_ok() {
                continue;
            }
            for entry in chunk {
                if let Err(err) = self
                    .add_record(&entry.incident_id, entry.at_ms, &entry.record)
                    .await
                {
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Sends one `BatchWriteItem`, then what it left unprocessed, with a short backoff.
    async fn write_all(&self, mut writes: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..5u64 {
            let out = self
                .client
                .batch_write_item()
                .request_items(self.table.clone(), writes)
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            writes = out
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            if writes.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
        }
        Err(StoreError::Dynamo(format!(
            "{} records left unprocessed by BatchWriteItem",
            writes.len()
        )))
    }

    /// An incident's timeline, oldest first.
    pub async fn list_records(
        &self,
        incident_id: &str,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        self.records_under(&incident_pk(incident_id), "REC").await
    }

    /// Appends a record under `pk` with sort key `<prefix>#<ms>#<random>` (time order).
    pub(super) async fn append_record(
        &self,
        pk: &str,
        prefix: &str,
        at_ms: i64,
        record: &OperationRecord,
    ) -> Result<(), StoreError> {
        let item = typed_item(record, pk.to_string(), record_sort_key(prefix, at_ms))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The records under `pk` with `prefix`, oldest first.
    pub(super) async fn records_under(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        self.query_partition(pk, &format!("{prefix}#"))
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }
}

impl Store {
    /// Remembers why SQS message `message_id` failed, unless a reason is already
    /// kept (the first failure wins); kept [`FIRST_ERROR_SECS`].
    pub async fn note_first_error(
        &self,
        message_id: &str,
        reason: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let reason: String = reason.chars().take(1000).collect();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("MSGERR#{message_id}")))
            .item("sk", s("FIRST_ERROR"))
            .item("reason", s(reason))
            .item("at_ms", n(at_ms))
            .item("expires_at", n(at_ms.div_euclid(1000) + FIRST_ERROR_SECS))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        applied(result).map(|_| ())
    }

    /// The first error kept for `message_id`, if any.
    pub async fn first_error(&self, message_id: &str) -> Result<Option<FirstError>, StoreError> {
        let Some(item) = self
            .get_item(&format!("MSGERR#{message_id}"), "FIRST_ERROR")
            .await?
        else {
            return Ok(None);
        };
        let reason = item
            .get("reason")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let at_ms = item
            .get("at_ms")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Some(FirstError { reason, at_ms }))
    }
}
