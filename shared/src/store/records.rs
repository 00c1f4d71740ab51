//! Operation records: `INC#<id>` / `REC#<ms>#<n>`, an incident's timeline, and the
//! time-ordered record helper the audit log shares (ARCHITECTURE.md §4).

use super::incidents::incident_pk;
use super::{Store, StoreError, from_typed, typed_item};
use crate::domain::incident::OperationRecord;

impl Store {
    /// Appends an operation record to an incident's timeline.
    pub async fn add_record(
        &self,
        incident_id: &str,
        at_ms: i64,
        record: &OperationRecord,
    ) -> Result<(), StoreError> {
        self.append_record(&incident_pk(incident_id), "REC", at_ms, record)
            .await
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
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let item = typed_item(
            record,
            pk.to_string(),
            format!("{prefix}#{at_ms:013}#{suffix}"),
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
