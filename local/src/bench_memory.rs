//! The bench's in-memory phase: the notifier on the in-memory stores (incidents,
//! deliveries, counters, chats; the conformance suite holds them to DynamoDB's
//! behaviour) and an in-process queue, against the sandbox over HTTP, so what is
//! measured is the product and DingTalk's limit, not moto. Records that fail come
//! back to the queue, as SQS would redeliver them.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::json;
use shared::Services;
use shared::domain::chat::GroupChat;
use shared::domain::integration::Integration;
use shared::services::notifier::{NotifierSettings, NotifierStores};
use shared::store::memory::MemoryStore;
use shared::store::{IncidentBook, MemoryIncidents};

use crate::sandbox::Sandbox;

/// What the phase measured.
#[derive(Debug)]
pub struct MemoryPhaseReport {
    /// Alerts sent.
    pub alerts: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// DingTalk calls (tokens excluded), by second.
    pub per_second: BTreeMap<i64, usize>,
    /// Calls DingTalk refused for a limit.
    pub limit_errors: usize,
    /// Alerts (distinct keys) whose card reached DingTalk.
    pub delivered: usize,
    /// Queued → card at DingTalk, sorted (ms).
    pub latencies_ms: Vec<i64>,
}

impl MemoryPhaseReport {
    /// Calls per second over every second between the first and the last call (those
    /// two left out, as partial), idle seconds included.
    pub fn sustained_per_second(&self) -> f64 {
        let (Some(first), Some(last)) = (
            self.per_second.keys().next(),
            self.per_second.keys().next_back(),
        ) else {
            return 0.0;
        };
        let seconds = last - first - 1;
        if seconds <= 0 {
            return 0.0;
        }
        let calls: usize = self
            .per_second
            .range(first + 1..*last)
            .map(|(_, calls)| calls)
            .sum();
        calls as f64 / seconds as f64
    }
}

/// How the phase runs.
pub struct MemoryPhase<'a> {
    /// Services (for the DingTalk client and its token cache).
    pub services: &'a Services,
    /// The sandbox (DingTalk).
    pub sandbox: &'a Sandbox,
    /// The integration, as configured for the phase.
    pub integration: Integration,
    /// Its group chats (installed at the sandbox).
    pub chats: Vec<GroupChat>,
    /// Alerts to send, spread over the chats.
    pub alerts: usize,
    /// Notifier instances, each with `pollers` concurrent batches.
    pub instances: usize,
    /// Concurrent batches per instance.
    pub pollers: usize,
}

type Queue = Arc<Mutex<VecDeque<(SqsMessage, i64)>>>;

impl MemoryPhase<'_> {
    /// Runs the phase to an empty queue (or `limit`).
    pub async fn run(self, limit: Duration) -> Result<MemoryPhaseReport, String> {
        let incidents = Arc::new(MemoryIncidents::default());
        incidents
            .put_integration(self.integration.clone())
            .map_err(|e| e.to_string())?;
        let memory = Arc::new(MemoryStore::new());
        for chat in &self.chats {
            memory.put_chat(chat.clone()).map_err(|e| e.to_string())?;
        }
        let queue: Queue = Arc::default();
        let mut queued_ms = HashMap::new();
        for i in 0..self.alerts {
            let key = format!("memory-{i}");
            let cid = &self.chats[i % self.chats.len()].open_conversation_id;
            let body = json!({"version": 1, "integration_id": self.integration.id,
                "alert": {"key": key, "status": "firing", "severity": "critical", "title": format!("{key}: error rate above 5%"),
                          "description": "bench", "labels": {"bench": "true"}, "source": "bench"},
                "targets": {"chats": [cid]}});
            let mut message = SqsMessage::default();
            message.message_id = Some(key.clone());
            message.body = Some(body.to_string());
            queued_ms.insert(key, now_ms());
            if let Ok(mut q) = queue.lock() {
                q.push_back((message, now_ms()));
            }
        }
        let calls_before = self.sandbox.calls().len();
        let started = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..self.instances {
            let stores = NotifierStores {
                incidents: incidents.clone(),
                ledger: memory.clone(),
                counters: memory.clone(),
                chats: memory.clone(),
            };
            let notifier = self
                .services
                .notifier_on(stores, NotifierSettings::default());
            for _ in 0..self.pollers {
                let (notifier, queue) = (notifier.clone(), queue.clone());
                workers.push(tokio::spawn(async move {
                    poll(notifier, queue, started + limit).await
                }));
            }
        }
        for worker in workers {
            worker.await.map_err(|e| e.to_string())?;
        }
        let elapsed = started.elapsed();
        self.report(&incidents, calls_before, elapsed, &queued_ms)
            .await
    }

    async fn report(
        &self,
        incidents: &MemoryIncidents,
        calls_before: usize,
        elapsed: Duration,
        queued_ms: &HashMap<String, i64>,
    ) -> Result<MemoryPhaseReport, String> {
        let (per_second, limit_errors) = call_stats(self.sandbox, calls_before);
        let mut latencies_ms = Vec::new();
        let mut delivered = std::collections::HashSet::new();
        for card in self.sandbox.cards() {
            let Some(incident_id) = card.out_track_id.split('-').next() else {
                continue;
            };
            let Ok(Some(incident)) = incidents.get_incident(incident_id).await else {
                continue;
            };
            if let Some(queued) = queued_ms.get(&incident.key)
                && delivered.insert(incident.key.clone())
            {
                latencies_ms.push(card.created_at_ms - queued);
            }
        }
        latencies_ms.sort_unstable();
        Ok(MemoryPhaseReport {
            alerts: self.alerts,
            elapsed,
            per_second,
            limit_errors,
            delivered: delivered.len(),
            latencies_ms,
        })
    }
}

/// DingTalk calls since the `before`th (tokens left out), by second, and how many
/// DingTalk refused for a limit.
pub fn call_stats(sandbox: &Sandbox, before: usize) -> (BTreeMap<i64, usize>, usize) {
    let calls: Vec<_> = sandbox
        .calls()
        .into_iter()
        .skip(before)
        .filter(|c| c.path != "/v1.0/oauth2/accessToken")
        .collect();
    let limit_errors = calls
        .iter()
        .filter(|c| {
            c.code
                .as_deref()
                .is_some_and(|code| code.starts_with("Forbidden.AccessDenied"))
        })
        .count();
    let mut per_second: BTreeMap<i64, usize> = BTreeMap::new();
    for call in &calls {
        *per_second.entry(call.at_ms / 1000).or_default() += 1;
    }
    (per_second, limit_errors)
}

/// One poller: batches of up to 10 until the queue is empty (failed records go back).
async fn poll(notifier: shared::services::notifier::Notifier, queue: Queue, until: Instant) {
    while Instant::now() < until {
        let batch: Vec<(SqsMessage, i64)> = match queue.lock() {
            Ok(mut q) => {
                let n = q.len().min(10);
                q.drain(..n).collect()
            }
            Err(_) => return,
        };
        if batch.is_empty() {
            return;
        }
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(|(m, _)| m.clone()).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let failed = notifier.handle_batch(event, deadline).await;
        if let Ok(mut q) = queue.lock() {
            for failure in failed.batch_item_failures {
                if let Some(record) = batch
                    .iter()
                    .find(|(m, _)| m.message_id.as_deref() == Some(&failure.item_identifier))
                {
                    q.push_back(record.clone());
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
