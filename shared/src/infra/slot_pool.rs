//! Per-second call slots taken together (ARCHITECTURE.md §5.4): the calls of one
//! instance that want a slot of the same counter at the same time queue behind one
//! store request, which takes a slot for each of them in one conditional write. The
//! limit stays exact across instances (the store counts every slot taken); a slot
//! taken for a caller that then finds its second over is simply unused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::StoreError;
use crate::store::ports::RateCounters;

/// Slots taken and not yet handed out, per counter key.
#[derive(Clone)]
pub struct SlotPool {
    counters: Arc<dyn RateCounters>,
    keys: Arc<Mutex<HashMap<String, Arc<KeySlots>>>>,
}

/// One counter's queue and what it holds.
#[derive(Default)]
struct KeySlots {
    /// Callers waiting for the lock.
    waiting: AtomicU32,
    held: tokio::sync::Mutex<Held>,
}

/// Slots held for a second, or the knowledge that it is full.
#[derive(Default)]
struct Held {
    second: i64,
    free: u32,
    full: bool,
}

/// One caller counted as waiting for the lock (uncounted when dropped, also when
/// the caller is cancelled).
struct Waiting<'a>(&'a AtomicU32);

impl<'a> Waiting<'a> {
    fn join(waiting: &'a AtomicU32) -> Self {
        waiting.fetch_add(1, Ordering::SeqCst);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SlotPool {
    /// A pool taking its slots from `counters`.
    pub fn new(counters: Arc<dyn RateCounters>) -> Self {
        Self {
            counters,
            keys: Arc::default(),
        }
    }

    fn slots(&self, key: &str) -> Arc<KeySlots> {
        match self.keys.lock() {
            Ok(mut keys) => keys.entry(key.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Takes one slot of `key`'s second `second` (of `limit`); false when it is full.
    pub async fn take(&self, key: &str, second: i64, limit: u32) -> Result<bool, StoreError> {
        let slots = self.slots(key);
        let queued = Waiting::join(&slots.waiting);
        let mut held = slots.held.lock().await;
        drop(queued);
        let others = slots.waiting.load(Ordering::SeqCst);
        if held.second > second {
            // A caller for a later second went first: take without keeping the rest.
            return Ok(self.counters.take_slots(key, second, limit, 1).await? == 1);
        }
        if held.second == second {
            if held.free > 0 {
                held.free -= 1;
                return Ok(true);
            }
            if held.full {
                return Ok(false);
            }
        }
        let want = others.saturating_add(1).min(limit).max(1);
        let taken = self.counters.take_slots(key, second, limit, want).await?;
        *held = Held {
            second,
            free: taken.saturating_sub(1),
            full: taken < want,
        };
        Ok(taken > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    #[tokio::test]
    async fn queued_callers_share_one_take_and_the_limit_holds() {
        let store = Arc::new(MemoryStore::default());
        let pool = SlotPool::new(store.clone());
        let granted = futures::future::join_all((0..12).map(|_| pool.take("int", 7, 5))).await;
        let granted = granted.into_iter().filter(|g| *g.as_ref().unwrap()).count();
        assert_eq!(granted, 5);
        // The second is known to be full: no more slots, here or through the store.
        assert!(!pool.take("int", 7, 5).await.unwrap());
        assert!(!store.take_second("int", 7, 5).await.unwrap());
        // A new second starts empty.
        assert!(pool.take("int", 8, 5).await.unwrap());
    }
}
