//! In-memory implementations of the storage ports, for fast logic tests and the
//! bench. The conformance suite holds them to the same behaviour as DynamoDB.
//! TTLs are not enforced (nothing here lives long enough to need it).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::ports::{ChatDirectory, DeliveryLedger, RateCounters};
use super::{Digest, MonthUsage, StoreError};
use crate::domain::budget::AdaptiveLimit;
use crate::domain::chat::GroupChat;
use crate::domain::delivery::{Delivery, DeliveryKey, DeliveryStep, StepOutcome, TargetKind};
use crate::domain::incident::OperationRecord;

/// Titles a storm digest keeps (as in the table).
const DIGEST_NEWEST: usize = 5;

#[derive(Default)]
struct State {
    deliveries: BTreeMap<LedgerKey, (Delivery, Option<i64>)>,
    records: HashMap<String, Vec<(i64, OperationRecord)>>,
    seconds: HashMap<(String, i64), u32>,
    adaptive: HashMap<(String, String), AdaptiveLimit>,
    usage: HashMap<(String, String), MonthUsage>,
    once: HashMap<String, ()>,
    storm: HashMap<String, u64>,
    digests: HashMap<String, Digest>,
    chats: HashMap<String, Vec<GroupChat>>,
}

/// The in-memory store: every port, one lock.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError::Dynamo("in-memory store lock poisoned".into()))
    }

    /// Puts a chat on an integration's group chat list (replacing one with its id).
    pub fn put_chat(&self, chat: GroupChat) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let list = state.chats.entry(chat.integration_id.clone()).or_default();
        list.retain(|c| c.open_conversation_id != chat.open_conversation_id);
        list.push(chat);
        Ok(())
    }
}

/// (incident, kind, target, round).
type LedgerKey = (String, TargetKind, String, u32);

fn delivery_key(key: &DeliveryKey<'_>) -> LedgerKey {
    (
        key.incident_id.to_string(),
        key.kind,
        key.target.to_string(),
        key.round,
    )
}

/// A delivery item as a first claim creates it.
fn blank(key: &DeliveryKey<'_>) -> Delivery {
    Delivery {
        kind: key.kind,
        target: key.target.to_string(),
        alert_state: None,
        alert_ref: None,
        resolved_state: None,
        channel: None,
        card_hash: None,
        last_error: None,
        round: key.round,
        recall_state: None,
    }
}

fn step_state(
    delivery: &Delivery,
    step: DeliveryStep,
) -> Option<crate::domain::delivery::StepState> {
    match step {
        DeliveryStep::Alert => delivery.alert_state,
        DeliveryStep::Resolved => delivery.resolved_state,
        DeliveryStep::Recall => delivery.recall_state,
    }
}

#[async_trait]
impl DeliveryLedger for MemoryStore {
    async fn claim_step(
        &self,
        key: DeliveryKey<'_>,
        step: DeliveryStep,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        let entry = state
            .deliveries
            .entry(delivery_key(&key))
            .or_insert_with(|| (blank(&key), None));
        let leased = entry.1.is_some_and(|until| until >= now_ms);
        if step_state(&entry.0, step).is_some() || leased {
            return Ok(false);
        }
        entry.1 = Some(now_ms + lease_ms);
        Ok(true)
    }

    async fn finish_step(
        &self,
        key: DeliveryKey<'_>,
        outcome: StepOutcome<'_>,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let entry = state
            .deliveries
            .entry(delivery_key(&key))
            .or_insert_with(|| (blank(&key), None));
        let delivery = &mut entry.0;
        match outcome.step {
            DeliveryStep::Alert => {
                delivery.alert_state = Some(outcome.state);
                if let Some(reference) = outcome.reference {
                    delivery.alert_ref = Some(reference.to_string());
                }
            }
            DeliveryStep::Resolved => delivery.resolved_state = Some(outcome.state),
            DeliveryStep::Recall => delivery.recall_state = Some(outcome.state),
        }
        delivery.channel = Some(outcome.channel);
        if let Some(error) = outcome.error {
            delivery.last_error = Some(error.to_string());
        }
        entry.1 = None;
        Ok(())
    }

    async fn release_step(&self, key: DeliveryKey<'_>, error: &str) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if let Some(entry) = state.deliveries.get_mut(&delivery_key(&key)) {
            entry.0.last_error = Some(error.to_string());
            entry.1 = None;
        }
        Ok(())
    }

    async fn set_card_hash(&self, key: DeliveryKey<'_>, hash: &str) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if let Some(entry) = state.deliveries.get_mut(&delivery_key(&key)) {
            entry.0.card_hash = Some(hash.to_string());
        }
        Ok(())
    }

    async fn get_delivery(&self, key: DeliveryKey<'_>) -> Result<Option<Delivery>, StoreError> {
        Ok(self
            .lock()?
            .deliveries
            .get(&delivery_key(&key))
            .map(|(d, _)| d.clone()))
    }

    async fn list_deliveries(&self, incident_id: &str) -> Result<Vec<Delivery>, StoreError> {
        Ok(self
            .lock()?
            .deliveries
            .iter()
            .filter(|((id, _, _, _), _)| id == incident_id)
            .map(|(_, (d, _))| d.clone())
            .collect())
    }

    async fn add_record(
        &self,
        incident_id: &str,
        at_ms: i64,
        record: &OperationRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        let list = state.records.entry(incident_id.to_string()).or_default();
        list.push((at_ms, record.clone()));
        list.sort_by_key(|(at, _)| *at);
        Ok(())
    }

    async fn list_records(&self, incident_id: &str) -> Result<Vec<OperationRecord>, StoreError> {
        Ok(self
            .lock()?
            .records
            .get(incident_id)
            .map(|list| list.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default())
    }
}

#[async_trait]
impl RateCounters for MemoryStore {
    async fn take_slots(
        &self,
        key: &str,
        second: i64,
        limit: u32,
        want: u32,
    ) -> Result<u32, StoreError> {
        let mut state = self.lock()?;
        let calls = state.seconds.entry((key.to_string(), second)).or_default();
        let taken = want.min(limit.saturating_sub(*calls));
        *calls += taken;
        Ok(taken)
    }

    async fn adaptive_limit(
        &self,
        integration_id: &str,
        kind: &str,
    ) -> Result<Option<AdaptiveLimit>, StoreError> {
        let key = (integration_id.to_string(), kind.to_string());
        Ok(self.lock()?.adaptive.get(&key).copied())
    }

    async fn lower_adaptive_limit(
        &self,
        integration_id: &str,
        kind: &str,
        learned: AdaptiveLimit,
        gap_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        let key = (integration_id.to_string(), kind.to_string());
        if state
            .adaptive
            .get(&key)
            .is_some_and(|have| have.since_ms >= learned.since_ms - gap_ms)
        {
            return Ok(false);
        }
        state.adaptive.insert(key, learned);
        Ok(true)
    }

    async fn add_usage_counts(
        &self,
        integration_id: &str,
        month: &str,
        counts: &BTreeMap<String, u64>,
        counted: u64,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock()?;
        let usage = state
            .usage
            .entry((integration_id.to_string(), month.to_string()))
            .or_default();
        for (field, count) in counts {
            match field.as_str() {
                "throttle_wait" => usage.throttle_waits += count,
                "suppressed" => usage.suppressed += count,
                "folded" => usage.folded += count,
                kind => *usage.by_kind.entry(kind.to_string()).or_default() += count,
            }
        }
        usage.total += counted;
        Ok(usage.total)
    }

    async fn month_usage(
        &self,
        integration_id: &str,
        month: &str,
    ) -> Result<MonthUsage, StoreError> {
        Ok(self
            .lock()?
            .usage
            .get(&(integration_id.to_string(), month.to_string()))
            .cloned()
            .unwrap_or_default())
    }

    async fn mark_once(
        &self,
        integration_id: &str,
        key: &str,
        _expires_secs: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock()?;
        Ok(state
            .once
            .insert(format!("{integration_id}#{key}"), ())
            .is_none())
    }

    async fn count_chat_incident(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
        _expires_secs: i64,
    ) -> Result<u64, StoreError> {
        let mut state = self.lock()?;
        let count = state
            .storm
            .entry(format!("{integration_id}#{chat}#{window}"))
            .or_default();
        *count += 1;
        Ok(*count)
    }

    async fn push_digest(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
        title: &str,
        _expires_secs: i64,
    ) -> Result<Digest, StoreError> {
        let mut state = self.lock()?;
        let digest = state
            .digests
            .entry(format!("{integration_id}#{chat}#{window}"))
            .or_insert_with(|| Digest {
                folded: 0,
                newest: Vec::new(),
            });
        digest.folded += 1;
        digest.newest.insert(0, title.to_string());
        digest.newest.truncate(DIGEST_NEWEST);
        Ok(digest.clone())
    }

    async fn get_digest(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
    ) -> Result<Option<Digest>, StoreError> {
        Ok(self
            .lock()?
            .digests
            .get(&format!("{integration_id}#{chat}#{window}"))
            .cloned())
    }
}

#[async_trait]
impl ChatDirectory for MemoryStore {
    async fn list_chats(&self, integration_id: &str) -> Result<Vec<GroupChat>, StoreError> {
        Ok(self
            .lock()?
            .chats
            .get(integration_id)
            .cloned()
            .unwrap_or_default())
    }

    async fn mark_chat_problem(
        &self,
        integration_id: &str,
        open_conversation_id: &str,
        problem: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let mut state = self.lock()?;
        if let Some(chat) = state.chats.get_mut(integration_id).and_then(|list| {
            list.iter_mut()
                .find(|c| c.open_conversation_id == open_conversation_id)
        }) {
            chat.problem = Some(problem.to_string());
            chat.updated_at = now.to_string();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_fake_meets_the_contract() {
        let store = MemoryStore::new();
        super::super::conformance::ledger(&store).await;
        super::super::conformance::counters(&store).await;
        let chat = super::super::conformance::sample_chat("int-c", "cid-c");
        store.put_chat(chat).expect("put");
        super::super::conformance::chats(&store, "int-c", "cid-c").await;
    }
}
