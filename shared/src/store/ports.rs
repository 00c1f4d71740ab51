//! Narrow storage ports (ARCHITECTURE.md §3): what the delivery, governor and storm
//! logic needs from the store, and nothing more. [`Store`](super::Store) implements
//! them on DynamoDB and [`memory`](super::memory) in memory; one conformance suite
//! (`conformance`, feature `testing`) runs on both, so the two cannot drift.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::{Digest, MonthUsage, StoreError};
use crate::domain::budget::AdaptiveLimit;
use crate::domain::chat::GroupChat;
use crate::domain::delivery::{Delivery, DeliveryKey, DeliveryStep, StepOutcome};
use crate::domain::incident::OperationRecord;

/// Delivery items and operation records of incidents: exactly-once sending.
#[async_trait]
pub trait DeliveryLedger: Send + Sync {
    /// Claims `step` of `key` for `lease_ms`: true when this caller may send it (it
    /// was never completed and nobody holds a live claim).
    async fn claim_step(
        &self,
        key: DeliveryKey<'_>,
        step: DeliveryStep,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Completes a claimed step (sent or given up) and drops the claim.
    async fn finish_step(
        &self,
        key: DeliveryKey<'_>,
        outcome: StepOutcome<'_>,
    ) -> Result<(), StoreError>;
    /// Drops a claim without completing the step (it will be tried again).
    async fn release_step(&self, key: DeliveryKey<'_>, error: &str) -> Result<(), StoreError>;
    /// Remembers the content hash of the card last sent to a target.
    async fn set_card_hash(&self, key: DeliveryKey<'_>, hash: &str) -> Result<(), StoreError>;
    /// What was delivered to one target.
    async fn get_delivery(&self, key: DeliveryKey<'_>) -> Result<Option<Delivery>, StoreError>;
    /// Every delivery item of an incident.
    async fn list_deliveries(&self, incident_id: &str) -> Result<Vec<Delivery>, StoreError>;
    /// Appends an operation record to an incident's timeline.
    async fn add_record(
        &self,
        incident_id: &str,
        at_ms: i64,
        record: &OperationRecord,
    ) -> Result<(), StoreError>;
    /// Appends several records (of any incidents) with as few writes as it can.
    async fn add_records(&self, entries: &[TimelineEntry]) -> Result<(), StoreError> {
        for entry in entries {
            self.add_record(&entry.incident_id, entry.at_ms, &entry.record)
                .await?;
        }
        Ok(())
    }
    /// An incident's timeline, oldest first.
    async fn list_records(&self, incident_id: &str) -> Result<Vec<OperationRecord>, StoreError>;
    /// Remembers why SQS message `message_id` failed, unless a reason is kept
    /// already (the dead-letter queue peek shows it); in memory nothing is kept.
    async fn note_first_error(
        &self,
        _message_id: &str,
        _reason: &str,
        _at_ms: i64,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An operation record waiting to be written.
#[derive(Debug, Clone)]
pub struct TimelineEntry {
    /// Its incident.
    pub incident_id: String,
    /// When it happened (ms).
    pub at_ms: i64,
    /// The record.
    pub record: OperationRecord,
}

/// Governor and storm counters, shared by every instance.
#[async_trait]
pub trait RateCounters: Send + Sync {
    /// Takes up to `want` calls from second `second`'s budget of `limit` for `key`
    /// (an integration, or `<integration>#<api kind>`); returns how many were taken.
    async fn take_slots(
        &self,
        key: &str,
        second: i64,
        limit: u32,
        want: u32,
    ) -> Result<u32, StoreError>;
    /// Takes one call from second `second`'s budget of `limit`; false when full.
    async fn take_second(&self, key: &str, second: i64, limit: u32) -> Result<bool, StoreError> {
        Ok(self.take_slots(key, second, limit, 1).await? == 1)
    }
    /// An API's learned per-second limit (ARCHITECTURE.md §5.4), if any.
    async fn adaptive_limit(
        &self,
        integration_id: &str,
        kind: &str,
    ) -> Result<Option<AdaptiveLimit>, StoreError>;
    /// Sets an API's learned limit, unless another instance set it less than
    /// `gap_ms` before `learned.since_ms`; true when applied.
    async fn lower_adaptive_limit(
        &self,
        integration_id: &str,
        kind: &str,
        learned: AdaptiveLimit,
        gap_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Adds one to month `month`'s `field` (and to its total when `counted`);
    /// returns the month's total after the change.
    async fn add_usage(
        &self,
        integration_id: &str,
        month: &str,
        field: &str,
        counted: bool,
    ) -> Result<u64, StoreError> {
        let counts = BTreeMap::from([(field.to_string(), 1)]);
        self.add_usage_counts(integration_id, month, &counts, u64::from(counted))
            .await
    }
    /// Adds several counts to month `month` in one write (`counted` of them to the
    /// total); returns the month's total after the change.
    async fn add_usage_counts(
        &self,
        integration_id: &str,
        month: &str,
        counts: &BTreeMap<String, u64>,
        counted: u64,
    ) -> Result<u64, StoreError>;
    /// Month `month`'s usage.
    async fn month_usage(
        &self,
        integration_id: &str,
        month: &str,
    ) -> Result<MonthUsage, StoreError>;
    /// Marks a one-time event: true for the first caller only.
    async fn mark_once(
        &self,
        integration_id: &str,
        key: &str,
        expires_secs: i64,
    ) -> Result<bool, StoreError>;
    /// Counts a new incident for a group in storm window `window`; returns the count.
    async fn count_chat_incident(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
        expires_secs: i64,
    ) -> Result<u64, StoreError>;
    /// Adds a title to a group's digest for `window`; returns the digest after it.
    async fn push_digest(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
        title: &str,
        expires_secs: i64,
    ) -> Result<Digest, StoreError>;
    /// A group's digest for `window`, if anything folded into it.
    async fn get_digest(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
    ) -> Result<Option<Digest>, StoreError>;
}

/// The group chat list as delivery sees it.
#[async_trait]
pub trait ChatDirectory: Send + Sync {
    /// The integration's group chat list.
    async fn list_chats(&self, integration_id: &str) -> Result<Vec<GroupChat>, StoreError>;
    /// Marks a chat with the delivery problem DingTalk reported; unknown chats are ignored.
    async fn mark_chat_problem(
        &self,
        integration_id: &str,
        open_conversation_id: &str,
        problem: &str,
        now: &str,
    ) -> Result<(), StoreError>;
}

/// The DynamoDB store behind each port (inherent methods do the work).
mod dynamo {
    use super::*;
    use crate::store::Store;

    #[async_trait]
    impl DeliveryLedger for Store {
        async fn claim_step(
            &self,
            key: DeliveryKey<'_>,
            step: DeliveryStep,
            now_ms: i64,
            lease_ms: i64,
        ) -> Result<bool, StoreError> {
            Store::claim_step(self, key, step, now_ms, lease_ms).await
        }
        async fn finish_step(
            &self,
            key: DeliveryKey<'_>,
            outcome: StepOutcome<'_>,
        ) -> Result<(), StoreError> {
            Store::finish_step(self, key, outcome).await
        }
        async fn release_step(&self, key: DeliveryKey<'_>, error: &str) -> Result<(), StoreError> {
            Store::release_step(self, key, error).await
        }
        async fn set_card_hash(&self, key: DeliveryKey<'_>, hash: &str) -> Result<(), StoreError> {
            Store::set_card_hash(self, key, hash).await
        }
        async fn get_delivery(&self, key: DeliveryKey<'_>) -> Result<Option<Delivery>, StoreError> {
            Store::get_delivery(self, key).await
        }
        async fn list_deliveries(&self, incident_id: &str) -> Result<Vec<Delivery>, StoreError> {
            Store::list_deliveries(self, incident_id).await
        }
        async fn add_record(
            &self,
            incident_id: &str,
            at_ms: i64,
            record: &OperationRecord,
        ) -> Result<(), StoreError> {
            Store::add_record(self, incident_id, at_ms, record).await
        }
        async fn add_records(&self, entries: &[TimelineEntry]) -> Result<(), StoreError> {
            Store::add_records(self, entries).await
        }
        async fn list_records(
            &self,
            incident_id: &str,
        ) -> Result<Vec<OperationRecord>, StoreError> {
            Store::list_records(self, incident_id).await
        }
        async fn note_first_error(
            &self,
            message_id: &str,
            reason: &str,
            at_ms: i64,
        ) -> Result<(), StoreError> {
            Store::note_first_error(self, message_id, reason, at_ms).await
        }
    }

    #[async_trait]
    impl RateCounters for Store {
        async fn take_slots(
            &self,
            key: &str,
            second: i64,
            limit: u32,
            want: u32,
        ) -> Result<u32, StoreError> {
            Store::take_slots(self, key, second, limit, want).await
        }
        async fn adaptive_limit(
            &self,
            integration_id: &str,
            kind: &str,
        ) -> Result<Option<AdaptiveLimit>, StoreError> {
            Store::adaptive_limit(self, integration_id, kind).await
        }
        async fn lower_adaptive_limit(
            &self,
            integration_id: &str,
            kind: &str,
            learned: AdaptiveLimit,
            gap_ms: i64,
        ) -> Result<bool, StoreError> {
            Store::lower_adaptive_limit(self, integration_id, kind, learned, gap_ms).await
        }
        async fn add_usage_counts(
            &self,
            integration_id: &str,
            month: &str,
            counts: &BTreeMap<String, u64>,
            counted: u64,
        ) -> Result<u64, StoreError> {
            Store::add_usage_counts(self, integration_id, month, counts, counted).await
        }
        async fn month_usage(
            &self,
            integration_id: &str,
            month: &str,
        ) -> Result<MonthUsage, StoreError> {
            Store::month_usage(self, integration_id, month).await
        }
        async fn mark_once(
            &self,
            integration_id: &str,
            key: &str,
            expires_secs: i64,
        ) -> Result<bool, StoreError> {
            Store::mark_once(self, integration_id, key, expires_secs).await
        }
        async fn count_chat_incident(
            &self,
            integration_id: &str,
            chat: &str,
            window: i64,
            expires_secs: i64,
        ) -> Result<u64, StoreError> {
            Store::count_chat_incident(self, integration_id, chat, window, expires_secs).await
        }
        async fn push_digest(
            &self,
            integration_id: &str,
            chat: &str,
            window: i64,
            title: &str,
            expires_secs: i64,
        ) -> Result<Digest, StoreError> {
            Store::push_digest(self, integration_id, chat, window, title, expires_secs).await
        }
        async fn get_digest(
            &self,
            integration_id: &str,
            chat: &str,
            window: i64,
        ) -> Result<Option<Digest>, StoreError> {
            Store::get_digest(self, integration_id, chat, window).await
        }
    }

    #[async_trait]
    impl ChatDirectory for Store {
        async fn list_chats(&self, integration_id: &str) -> Result<Vec<GroupChat>, StoreError> {
            Store::list_chats(self, integration_id).await
        }
        async fn mark_chat_problem(
            &self,
            integration_id: &str,
            open_conversation_id: &str,
            problem: &str,
            now: &str,
        ) -> Result<(), StoreError> {
            Store::mark_chat_problem(self, integration_id, open_conversation_id, problem, now).await
        }
    }
}
