//! Metrics: an injected sink, so tests can read what production prints as
//! CloudWatch embedded-metric-format (EMF) lines on stdout.
//!
//! Every line publishes its metric twice: per integration (dimension
//! `IntegrationId`) and as one aggregate without dimensions, which the template's
//! alarms and dashboard read without `SEARCH` or a list of integrations. A metric
//! of no integration (an empty id, e.g. a failed escalation sweep) has only the
//! aggregate.

use std::sync::Mutex;

use serde_json::json;

/// One metric value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Integration id (the dimension); empty for a metric of no integration.
    pub integration_id: String,
    /// Metric name (`DingTalkCalls`, `ThrottleWaits`, `Folded`, …).
    pub name: &'static str,
    /// Value.
    pub value: f64,
    /// CloudWatch unit (`Count`, `Percent`).
    pub unit: &'static str,
    /// When, in Unix ms.
    pub at_ms: i64,
}

/// Where metrics go.
pub trait MetricsSink: Send + Sync {
    /// Records one metric.
    fn emit(&self, metric: Metric);
}

/// Emits one metric of `integration_id` stamped with `clock`'s time.
pub fn emit_now(
    sink: &dyn MetricsSink,
    clock: &dyn crate::clock::Clock,
    integration_id: &str,
    (name, value, unit): (&'static str, f64, &'static str),
) {
    sink.emit(Metric {
        integration_id: integration_id.to_string(),
        name,
        value,
        unit,
        at_ms: clock.now_ms(),
    });
}

/// CloudWatch EMF lines on stdout (Lambda ships stdout to CloudWatch).
#[derive(Debug, Default, Clone, Copy)]
pub struct EmfStdout;

impl EmfStdout {
    /// The EMF line of a metric: dimension sets `["IntegrationId"]` and `[]` (the
    /// aggregate), or only `[]` when the metric names no integration.
    pub fn line(metric: &Metric) -> String {
        let per_integration = !metric.integration_id.is_empty();
        let dimensions = if per_integration {
            json!([["IntegrationId"], []])
        } else {
            json!([[]])
        };
        let mut line = json!({
            "_aws": {"Timestamp": metric.at_ms, "CloudWatchMetrics": [{
                "Namespace": "DingTalkIncidents", "Dimensions": dimensions,
                "Metrics": [{"Name": metric.name, "Unit": metric.unit}]}]},
            metric.name: metric.value,
        });
        if per_integration && let Some(fields) = line.as_object_mut() {
            fields.insert("IntegrationId".into(), json!(metric.integration_id));
        }
        line.to_string()
    }
}

impl MetricsSink for EmfStdout {
    fn emit(&self, metric: Metric) {
        println!("{}", Self::line(&metric));
    }
}

/// Drops every metric.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMetrics;

impl MetricsSink for NoMetrics {
    fn emit(&self, _metric: Metric) {}
}

/// Keeps metrics in memory, for tests to assert on.
#[derive(Debug, Default)]
pub struct RecordedMetrics(Mutex<Vec<Metric>>);

impl RecordedMetrics {
    /// Every metric so far.
    pub fn all(&self) -> Vec<Metric> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// The sum of the values of metric `name`.
    pub fn total(&self, name: &str) -> f64 {
        self.all()
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.value)
            .sum()
    }
}

impl MetricsSink for RecordedMetrics {
    fn emit(&self, metric: Metric) {
        if let Ok(mut kept) = self.0.lock() {
            kept.push(metric);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_name_the_metric_and_dimension() {
        let metric = Metric {
            integration_id: "int1".into(),
            name: "Folded",
            value: 1.0,
            unit: "Count",
            at_ms: 5,
        };
        let line: serde_json::Value =
            serde_json::from_str(&EmfStdout::line(&metric)).expect("json");
        assert_eq!(line["Folded"], 1.0);
        assert_eq!(line["IntegrationId"], "int1");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "Folded"
        );
        // Per integration and the aggregate the alarms read.
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["IntegrationId"], []])
        );
        let recorded = RecordedMetrics::default();
        recorded.emit(metric.clone());
        recorded.emit(metric);
        assert_eq!(recorded.total("Folded"), 2.0);
    }

    #[test]
    fn a_metric_of_no_integration_has_only_the_aggregate() {
        let metric = Metric {
            integration_id: String::new(),
            name: "SweepFailures",
            value: 1.0,
            unit: "Count",
            at_ms: 5,
        };
        let line: serde_json::Value =
            serde_json::from_str(&EmfStdout::line(&metric)).expect("json");
        assert_eq!(line["SweepFailures"], 1.0);
        assert!(line.get("IntegrationId").is_none());
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
    }
}
