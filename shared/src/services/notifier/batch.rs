//! What the records of one SQS batch read once: integrations, group chat lists,
//! routes and escalation policies
//! (a batch lasts seconds; admin changes apply from the next batch).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::chat::GroupChat;
use crate::domain::escalation::EscalationPolicy;
use crate::domain::integration::Integration;
use crate::domain::routing::Route;
use crate::store::StoreError;

/// The batch's reads.
#[derive(Default)]
pub(super) struct BatchReads {
    pub(super) integrations: ReadOnce<Option<Integration>>,
    pub(super) chats: ReadOnce<Vec<GroupChat>>,
    pub(super) routes: ReadOnce<Vec<Route>>,
    pub(super) policies: ReadOnce<Vec<EscalationPolicy>>,
}

/// Values read at most once per key.
pub(super) struct ReadOnce<T>(Mutex<HashMap<String, T>>);

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
        if let Some(found) = self.0.lock().ok().and_then(|m| m.get(key).cloned()) {
            return Ok(found);
        }
        let value = read.await?;
        if let Ok(mut kept) = self.0.lock() {
            kept.insert(key.to_string(), value.clone());
        }
        Ok(value)
    }

    /// Drops `key`'s value, so the next use reads it again.
    pub(super) fn forget(&self, key: &str) {
        if let Ok(mut kept) = self.0.lock() {
            kept.remove(key);
        }
    }
}
