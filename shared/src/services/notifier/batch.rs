//! What the records of one SQS batch share: what they read once (integrations, group
//! chat lists, routes, escalation policies and on-call schedules; a batch lasts seconds, so admin changes
//! apply from the next batch), and the operation records written together at its end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::domain::chat::GroupChat;
use crate::domain::escalation::EscalationPolicy;
use crate::domain::integration::Integration;
use crate::domain::oncall_schedule::OnCallSchedule;
use crate::domain::routing::Route;
use crate::store::StoreError;
use crate::store::ports::TimelineEntry;

/// The batch's reads and records.
#[derive(Default)]
pub(super) struct BatchScope {
    pub(super) integrations: ReadOnce<Option<Integration>>,
    pub(super) chats: ReadOnce<Vec<GroupChat>>,
    pub(super) routes: ReadOnce<Vec<Route>>,
    pub(super) policies: ReadOnce<Vec<EscalationPolicy>>,
    pub(super) schedules: ReadOnce<Vec<OnCallSchedule>>,
    /// Operation records to write when the batch ends.
    pub(super) timeline: Mutex<Vec<TimelineEntry>>,
}

impl BatchScope {
    /// Keeps a record for the end of the batch.
    pub(super) fn add_record(&self, entry: TimelineEntry) {
        if let Ok(mut timeline) = self.timeline.lock() {
            timeline.push(entry);
        }
    }

    /// The records kept so far (taken out).
    pub(super) fn take_records(&self) -> Vec<TimelineEntry> {
        self.timeline
            .lock()
            .map(|mut timeline| std::mem::take(&mut *timeline))
            .unwrap_or_default()
    }
}

/// Values read at most once per key: records that need a key at the same time
/// wait for one read (a failed read is tried again by the next caller).
pub(super) struct ReadOnce<T>(Mutex<HashMap<String, Arc<OnceCell<T>>>>);

impl<T> Default for ReadOnce<T> {
    fn default() -> Self {
        Self(Mutex::default())
    }
}

impl<T: Clone> ReadOnce<T> {
    /// `key`'s value: the one read before, else what `read` gives (then kept).
    pub(super) async fn get_or_read(
        &self,
        key: &str,
        read: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let cell = match self.0.lock() {
            Ok(mut kept) => kept.entry(key.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        cell.get_or_try_init(|| read).await.cloned()
    }

    /// Drops `key`'s value, so the next use reads it again.
    pub(super) fn forget(&self, key: &str) {
        if let Ok(mut kept) = self.0.lock() {
            kept.remove(key);
        }
    }
}
