//! Counts the DynamoDB requests a client sends, by operation, with an SDK
//! interceptor (so benches and tests measure store work instead of estimating it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// Requests sent (retries included), by operation (`GetItem`, `UpdateItem`, …).
#[derive(Debug, Clone, Default)]
pub struct StoreRequestCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl StoreRequestCounter {
    /// Requests so far, by operation.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Requests so far.
    pub fn total(&self) -> u64 {
        self.by_operation().values().sum()
    }

    /// Forgets what was counted.
    pub fn reset(&self) {
        if let Ok(mut counts) = self.0.lock() {
            counts.clear();
        }
    }
}

impl Intercept for StoreRequestCounter {
    fn name(&self) -> &'static str {
        "StoreRequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // `x-amz-target: DynamoDB_20120810.GetItem`
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_string();
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(operation).or_default() += 1;
        }
        Ok(())
    }
}
