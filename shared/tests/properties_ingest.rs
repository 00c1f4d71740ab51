//! Properties of the ingest parsers: Alertmanager, Grafana and alert-event bodies
//! (`parse_payload`), DingTalk-robot sends and PagerDuty Events v2. Arbitrary JSON,
//! mutated samples and damaged bytes never panic; what is refused is a typed error;
//! what is accepted passes the event contract's validation and survives the bounds.

mod properties_support;

use properties_support::{config, damage, json, mutate, mutations, sample_body, text};
use proptest::prelude::*;
use serde_json::Value;
use shared::domain::bounds;
use shared::domain::incident::AlertEvent;
use shared::services::ingest::parse_payload;
use shared::services::ingest_pagerduty;
use shared::services::ingest_robot::{self, RobotError, RobotParams};

const ID: &str = "7f3c2a1e9b8d4c6f8a0b1c2d3e4f5a6b";
const NOW_MS: i64 = 1_795_000_400_000;

/// An accepted event is valid for its integration and can be bounded and queued.
fn check_accepted(events: &[AlertEvent]) {
    assert!(!events.is_empty());
    for event in events {
        assert_eq!(event.integration_id, ID);
        assert!(event.validate().is_ok(), "{event:?}");
        let mut bounded = event.clone();
        bounds::bound(&mut bounded);
        assert!(serde_json::to_string(&bounded).is_ok());
    }
}

fn check_payload(body: &Value) {
    match parse_payload(body, ID) {
        Ok(events) => check_accepted(&events),
        Err(err) => assert!(!err.field.is_empty() && !err.message.is_empty(), "{err:?}"),
    }
}

fn check_robot(body: &[u8]) {
    match ingest_robot::parse_body(body) {
        Ok(message) => {
            let params = RobotParams::default();
            match ingest_robot::to_event(&message, ID, &params, NOW_MS) {
                Ok(event) => check_accepted(&[event]),
                Err(err) => assert!(matches!(err, RobotError::Param(_)), "{err:?}"),
            }
        }
        Err(err) => {
            assert!(
                matches!(
                    err,
                    RobotError::MissingBody
                        | RobotError::Param(_)
                        | RobotError::MsgtypeNotSupported
                ),
                "{err:?}"
            );
            assert_eq!(err.http_status(), 200);
        }
    }
}

fn check_pagerduty(body: &Value) {
    match ingest_pagerduty::parse_event(body) {
        Ok(event) => {
            if let Some(alert) = event.alert {
                let _ = serde_json::to_string(&alert).expect("serialises");
            }
        }
        Err(reasons) => assert!(!reasons.is_empty() && reasons.iter().all(|r| !r.is_empty())),
    }
}

const SAMPLES: [&str; 3] = [
    "ingest-alertmanager.json",
    "ingest-grafana.json",
    "ingest-alert-event.json",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_json_is_a_payload_or_a_validation_error(body in json()) {
        check_payload(&body);
    }

    #[test]
    fn mutated_samples_are_payloads_or_validation_errors(which in 0usize..3, changes in mutations()) {
        let sample = sample_body(SAMPLES[which]);
        prop_assert!(parse_payload(&sample, ID).is_ok());
        check_payload(&mutate(&sample, &changes));
    }

    #[test]
    fn sample_alerts_with_arbitrary_fields_parse_or_are_refused(
        which in 0usize..2,
        alerts in prop::collection::vec(json(), 0..4),
        status in text(),
        group_key in text(),
    ) {
        let mut sample = sample_body(SAMPLES[which]);
        sample["alerts"] = Value::Array(alerts);
        sample["status"] = status.into();
        sample["groupKey"] = group_key.into();
        check_payload(&sample);
    }

    #[test]
    fn alert_events_with_arbitrary_alerts_parse_or_are_refused(alert in json(), targets in json()) {
        let mut sample = sample_body(SAMPLES[2]);
        sample["alert"] = alert;
        sample["targets"] = targets;
        check_payload(&sample);
    }

    #[test]
    fn arbitrary_robot_bodies_are_messages_or_dingtalk_errors(body in json(), bytes in any::<Vec<u8>>()) {
        check_robot(body.to_string().as_bytes());
        check_robot(&bytes);
    }

    #[test]
    fn mutated_robot_sends_are_messages_or_dingtalk_errors(
        changes in mutations(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        cut in prop::option::of(any::<usize>()),
        msgtype in prop::sample::select(vec!["text", "markdown", "actionCard", "link", "feedCard", "image"]),
    ) {
        let mut sample = sample_body("ingest-robot-send.json");
        prop_assert!(ingest_robot::parse_message(&sample).is_ok());
        sample["msgtype"] = msgtype.into();
        let mutated = mutate(&sample, &changes);
        check_robot(mutated.to_string().as_bytes());
        check_robot(&damage(&sample.to_string(), &edits, cut));
    }

    #[test]
    fn robot_overrides_and_signs_are_checked_without_panics(
        severity in prop::option::of(text()),
        key in prop::option::of(text()),
        status in prop::option::of(text()),
        timestamp in prop::option::of(prop_oneof![text(), any::<i64>().prop_map(|t| t.to_string())]),
        sign in prop::option::of(text()),
        now_ms in prop_oneof![Just(NOW_MS), any::<i64>()],
    ) {
        let sample = sample_body("ingest-robot-send.json");
        let message = ingest_robot::parse_message(&sample).expect("sample");
        let params = RobotParams { severity, key, status, ..RobotParams::default() };
        match ingest_robot::to_event(&message, ID, &params, NOW_MS) {
            Ok(event) => check_accepted(&[event]),
            Err(err) => prop_assert!(matches!(err, RobotError::Param(_)), "{err:?}"),
        }
        if let Err(err) = ingest_robot::check_sign("secret", timestamp.as_deref(), sign.as_deref(), now_ms) {
            prop_assert!(matches!(err, RobotError::InvalidTimestamp | RobotError::SignNotMatch), "{err:?}");
        }
    }

    #[test]
    fn a_robot_sign_verifies_within_the_hour(secret in any::<String>(), offset in -3_600_000i64..=3_600_000) {
        let timestamp = (NOW_MS + offset).to_string();
        let sign = ingest_robot::robot_sign(&secret, &timestamp);
        prop_assert!(ingest_robot::check_sign(&secret, Some(&timestamp), Some(&sign), NOW_MS).is_ok());
    }

    #[test]
    fn arbitrary_pagerduty_events_are_checked_or_listed_invalid(body in json()) {
        check_pagerduty(&body);
    }

    #[test]
    fn mutated_pagerduty_events_are_checked_or_listed_invalid(changes in mutations()) {
        let sample = sample_body("ingest-pagerduty-enqueue.json");
        prop_assert!(ingest_pagerduty::parse_event(&sample).is_ok());
        check_pagerduty(&mutate(&sample, &changes));
    }

    #[test]
    fn pagerduty_details_of_any_shape_are_described(details in json(), word in text()) {
        let _ = ingest_pagerduty::describe_details(&details);
        let _ = ingest_pagerduty::severity_of(&word);
        let _ = ingest_robot::severity_of(&word);
        let _ = ingest_robot::key_of_title(&word);
        let (_, rest) = ingest_robot::strip_markers(&word);
        prop_assert!(word.contains(rest));
        prop_assert!(ingest_robot::first_line(&word, 64).chars().count() <= 64 + 1);
    }
}
