//! The shape of an Alertmanager (v4) or Grafana alerting webhook, checked before it
//! is read: every field the document (`openapi.yaml` `AlertmanagerWebhook`) names
//! must have its type there, so a malformed payload is a 400 naming the field
//! instead of an incident built from what could be read. Other fields are free.

use serde_json::Value;

use crate::domain::validation::ValidationError;

/// Top-level fields that are strings.
const TOP_STRINGS: [&str; 4] = ["version", "groupKey", "receiver", "externalURL"];
/// Top-level fields that are objects of strings.
const TOP_MAPS: [&str; 3] = ["groupLabels", "commonLabels", "commonAnnotations"];
/// Fields of each alert that are strings.
const ALERT_STRINGS: [&str; 4] = ["startsAt", "endsAt", "generatorURL", "fingerprint"];
/// Fields of each alert that are objects of strings.
const ALERT_MAPS: [&str; 2] = ["labels", "annotations"];

/// Checks `body` (a JSON object with `alerts`) against the webhook's documented shape.
///
/// # Errors
/// The first field with the wrong type, by its path (`alerts[0].fingerprint`).
pub(super) fn check_alertmanager_shape(body: &Value) -> Result<(), ValidationError> {
    check_fields(body, "", &TOP_STRINGS, &TOP_MAPS)?;
    let alerts = body
        .get("alerts")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ValidationError::new("alerts", "must be a non-empty array of alerts"))?;
    for (i, alert) in alerts.iter().enumerate() {
        let path = format!("alerts[{i}].");
        if !alert.is_object() {
            return Err(ValidationError::new(
                &format!("alerts[{i}]"),
                "must be an object",
            ));
        }
        check_fields(alert, &path, &ALERT_STRINGS, &ALERT_MAPS)?;
    }
    Ok(())
}

fn check_fields(
    value: &Value,
    path: &str,
    strings: &[&str],
    maps: &[&str],
) -> Result<(), ValidationError> {
    let field = |name: &str| format!("{path}{name}");
    match value.get("status") {
        None => {}
        Some(Value::String(s)) if s == "firing" || s == "resolved" => {}
        Some(_) => {
            return Err(ValidationError::new(
                &field("status"),
                "must be \"firing\" or \"resolved\"",
            ));
        }
    }
    for name in strings {
        if value.get(*name).is_some_and(|v| !v.is_string()) {
            return Err(ValidationError::new(&field(name), "must be a string"));
        }
    }
    for name in maps {
        let Some(map) = value.get(*name) else {
            continue;
        };
        let strings_only = map
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string));
        if !strings_only {
            return Err(ValidationError::new(
                &field(name),
                "must be an object of strings",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_documented_field_must_have_its_type() {
        let good = json!({"version": "4", "status": "firing", "commonLabels": {"a": "b"},
            "alerts": [{"status": "resolved", "labels": {"x": "y"}, "fingerprint": "f1"}], "extra": 1});
        assert!(check_alertmanager_shape(&good).is_ok());
        for (bad, field) in [
            (
                json!({"alerts": [{"fingerprint": {}}]}),
                "alerts[0].fingerprint",
            ),
            (
                json!({"alerts": [{"labels": {"a": 1}}]}),
                "alerts[0].labels",
            ),
            (
                json!({"alerts": [{"status": "pending"}]}),
                "alerts[0].status",
            ),
            (json!({"alerts": [1]}), "alerts[0]"),
            (json!({"alerts": []}), "alerts"),
            (json!({"alerts": [{}], "groupKey": 7}), "groupKey"),
            (
                json!({"alerts": [{}], "commonAnnotations": []}),
                "commonAnnotations",
            ),
        ] {
            let err = check_alertmanager_shape(&bad).expect_err("refused");
            assert_eq!(err.field, field, "{bad}");
        }
    }
}
