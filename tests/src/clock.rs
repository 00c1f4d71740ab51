//! A clock for tests that must jump ahead while time keeps running (a frozen clock
//! would stop the budget governor's QPS windows).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use shared::{Clock, SystemClock};

/// The system clock plus an offset the test moves forward.
#[derive(Debug, Clone, Default)]
pub struct AheadClock(Arc<AtomicI64>);

impl AheadClock {
    /// Moves the clock forward by `ms`.
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for AheadClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms() + self.0.load(Ordering::SeqCst)
    }
}
