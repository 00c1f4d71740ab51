//! Counts the DynamoDB requests a client sends, by operation, with an SDK
//! interceptor (so benches and tests measure store work instead of estimating it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;

/// Requests sent (retries included), by operation (`GetItem`, `UpdateItem`, …) and
/// by operation and item kind (`UpdateItem RATE/QPS`: the key's leading words).
#[derive(Debug, Clone, Default)]
pub struct StoreRequestCounter(
    Arc<Mutex<BTreeMap<String, u64>>>,
    Arc<Mutex<BTreeMap<String, u64>>>,
);

impl StoreRequestCounter {
    /// Requests so far, by operation.
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Requests so far, by operation and item kind (for finding where work goes).
    pub fn by_item_kind(&self) -> BTreeMap<String, u64> {
        self.1.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Requests so far.
    pub fn total(&self) -> u64 {
        self.by_operation().values().sum()
    }

    /// Forgets what was counted.
    pub fn reset(&self) {
        for map in [&self.0, &self.1] {
            if let Ok(mut counts) = map.lock() {
                counts.clear();
            }
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
        let kind = context
            .request()
            .body()
            .bytes()
            .map(item_kind)
            .unwrap_or_default();
        if let Ok(mut counts) = self.1.lock() {
            *counts.entry(format!("{operation} {kind}")).or_default() += 1;
        }
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(operation).or_default() += 1;
        }
        Ok(())
    }
}

/// The leading word of a request's partition and sort keys (`RATE/QPS`), or of the
/// index a query uses.
fn item_kind(body: &[u8]) -> String {
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let lead = |v: &serde_json::Value| {
        v.as_str()
            .map(|s| s.split(['#', ':']).next().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let key = request.get("Key").or_else(|| request.get("Item"));
    match key {
        Some(key) => format!("{}/{}", lead(&key["pk"]["S"]), lead(&key["sk"]["S"])),
        None => request
            .get("IndexName")
            .and_then(|i| i.as_str())
            .unwrap_or("table")
            .to_string(),
    }
}
