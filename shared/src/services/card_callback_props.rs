//! Properties of card callback parsing: any body is a click or a `Malformed` error,
//! a valid click survives unrelated changes, and the signature timestamp check
//! answers for any text (it panicked on `i64::MIN`).

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use super::{CardCallbackError, Click, MAX_SKEW_MS, fresh};

const NOW_MS: i64 = 1_795_000_400_000;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config.failure_persistence = None;
    config
}

/// Arbitrary JSON with the keys a click has.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z]{0,8}".prop_map(Value::String),
    ];
    let key = prop_oneof![
        prop::sample::select(vec![
            "outTrackId",
            "userId",
            "content",
            "value",
            "cardPrivateData",
            "params",
            "action",
            "duration",
            "member",
            "incident",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ];
    leaf.prop_recursive(4, 32, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn check(body: &[u8]) {
    match Click::parse(body) {
        Ok(click) => {
            assert!(!click.out_track_id.is_empty() && !click.user_id.is_empty());
        }
        Err(err) => assert!(matches!(err, CardCallbackError::Malformed(_)), "{err:?}"),
    }
}

fn click(content: &Value) -> Value {
    json!({"outTrackId": "inc1-abc", "userId": "u1", "content": content.to_string()})
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bodies_are_clicks_or_malformed(bytes in any::<Vec<u8>>(), value in json_value()) {
        check(&bytes);
        check(value.to_string().as_bytes());
    }

    #[test]
    fn arbitrary_content_is_read_or_malformed(content in json_value(), as_value in any::<bool>()) {
        let mut body = click(&content);
        if as_value {
            body["value"] = body["content"].take();
        }
        check(body.to_string().as_bytes());
        let wrapped = json!({"cardPrivateData": {"params": content.clone()}});
        check(click(&wrapped).to_string().as_bytes());
        let mut params = match content {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        params.insert("action".into(), "ack".into());
        let wrapped = json!({"cardPrivateData": {"params": params}});
        let parsed = Click::parse(click(&wrapped).to_string().as_bytes()).expect("a click");
        prop_assert_eq!(parsed.action, "ack");
    }

    #[test]
    fn params_round_trip(action in any::<String>(), duration in prop::option::of(any::<String>()),
                         member in prop::option::of(any::<String>()), extra in json_value()) {
        let content = json!({"cardPrivateData": {"params": {
            "action": action, "duration": duration, "member": member, "other": extra}}});
        let parsed = Click::parse(click(&content).to_string().as_bytes()).expect("a click");
        prop_assert_eq!(parsed.action, action);
        prop_assert_eq!(parsed.duration, duration);
        prop_assert_eq!(parsed.member, member);
        prop_assert_eq!(parsed.incident, None);
    }

    #[test]
    fn any_timestamp_is_fresh_or_not(
        timestamp in prop_oneof![any::<String>(), any::<i64>().prop_map(|t| t.to_string()),
                                 Just(i64::MIN.to_string()), Just(i64::MAX.to_string())],
        now_ms in prop_oneof![Just(NOW_MS), any::<i64>()],
    ) {
        let _ = fresh(&timestamp, now_ms);
    }

    #[test]
    fn timestamps_within_the_window_are_fresh(offset in -MAX_SKEW_MS..=MAX_SKEW_MS, seconds in any::<bool>()) {
        let sent = NOW_MS + offset;
        prop_assert!(fresh(&sent.to_string(), NOW_MS));
        if seconds {
            // Whole seconds: the truncation moves it by less than a second.
            let secs = sent / 1000;
            prop_assert_eq!(fresh(&format!(" {secs} "), NOW_MS), NOW_MS.abs_diff(secs * 1000) <= MAX_SKEW_MS.unsigned_abs());
        }
        prop_assert!(!fresh(&(NOW_MS + MAX_SKEW_MS + 1 + offset.abs()).to_string(), NOW_MS));
    }
}

/// Regression: `i64::MIN` as the signature timestamp overflowed (`abs`, then `-`).
#[test]
fn extreme_timestamps_are_stale_not_a_panic() {
    for timestamp in [
        i64::MIN.to_string(),
        i64::MAX.to_string(),
        "-99999999999".into(),
    ] {
        assert!(!fresh(&timestamp, NOW_MS), "{timestamp}");
    }
    assert!(!fresh(&NOW_MS.to_string(), i64::MIN));
    assert!(fresh(&(NOW_MS / 1000).to_string(), NOW_MS));
}
