//! Strategies the property tests share: bounded case counts, arbitrary JSON values
//! (with the keys the parsers look for, so they reach past the first check) and
//! mutations of valid payloads.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Number, Value};

/// Cases per property: 256, or `PROPTEST_CASES` when set (proptest reads it itself).
pub fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    // Failures are turned into unit tests by hand, not kept in regression files.
    config.failure_persistence = None;
    config
}

/// Object keys the parsers under test read, plus a few arbitrary ones.
const KEYS: &[&str] = &[
    "EventType",
    "eventType",
    "eventId",
    "EventId",
    "BizId",
    "bizId",
    "EventTime",
    "eventTime",
    "openConversationId",
    "OpenConversationId",
    "operateTime",
    "timeStamp",
    "TimeStamp",
    "title",
    "Title",
    "coolAppCode",
    "robotCode",
    "operator",
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
    "encrypt",
    "version",
    "alert",
    "alerts",
    "key",
    "status",
    "severity",
    "description",
    "labels",
    "annotations",
    "links",
    "url",
    "source",
    "occurred_at",
    "targets",
    "chats",
    "members",
    "integration_id",
    "groupKey",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "startsAt",
    "endsAt",
    "fingerprint",
    "generatorURL",
    "externalURL",
    "orgId",
    "state",
    "message",
    "truncatedAlerts",
    "dashboardURL",
    "silenceURL",
    "values",
    "msgtype",
    "text",
    "markdown",
    "actionCard",
    "link",
    "feedCard",
    "at",
    "atMobiles",
    "atUserIds",
    "isAtAll",
    "btns",
    "singleTitle",
    "singleURL",
    "messageUrl",
    "picUrl",
    "event_action",
    "dedup_key",
    "routing_key",
    "payload",
    "summary",
    "custom_details",
    "component",
    "group",
    "class",
    "timestamp",
    "images",
    "client",
    "client_url",
    "dingtalk_chat",
    "dingtalk_member",
    "alertname",
    "",
    "x",
    "🔥",
    "名字",
];

/// Text that is sometimes plain, sometimes shaped like the fields' values.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[a-z0-9_=!~\"\\\\ .*+?()\\[\\]{}|^$-]{0,24}",
        1 => prop_oneof![
            Just("firing".to_string()),
            Just("resolved".to_string()),
            Just("critical".to_string()),
            Just("trigger".to_string()),
            Just("acknowledge".to_string()),
            Just("resolve".to_string()),
            Just("check_url".to_string()),
            Just("im_cool_app_install".to_string()),
            Just("im_cool_app_uninstall".to_string()),
            Just("chat_update_title".to_string()),
            Just("2026-11-18T20:05:00Z".to_string()),
            Just("0001-01-01T00:00:00Z".to_string()),
            Just("-9223372036854775808".to_string()),
            Just("9223372036854775807".to_string()),
            Just("1".to_string()),
            Just("{}".to_string()),
        ],
    ]
}

/// Numbers including the edges (i64/u64 extremes, huge and tiny floats).
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(-1),
            Just(0),
            Just(1),
            Just(99_999_999_999),
            Just(100_000_000_000),
            Just(-100_000_000_000),
        ]
        .prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from(u64::MAX)),
    ]
}

/// An arbitrary JSON value, at most a few levels deep and a few dozen nodes.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// An object key: mostly one the parsers read.
pub fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(KEYS).prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// One change to a JSON document.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Replace the node at (index mod node count) with a value.
    Replace(usize, Value),
    /// Remove the node at (index mod node count) from its parent.
    Remove(usize),
    /// Insert a key into the object at (index mod node count).
    Insert(usize, String, Value),
}

/// A list of mutations.
pub fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        3 => (any::<usize>(), json()).prop_map(|(at, v)| Mutation::Replace(at, v)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), key(), json()).prop_map(|(at, k, v)| Mutation::Insert(at, k, v)),
    ];
    prop::collection::vec(one, 1..4)
}

/// Every node's JSON pointer (the root is "").
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let escaped = k.replace('~', "~0").replace('/', "~1");
                pointers(v, format!("{at}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Applies `mutations` to a copy of `value`.
pub fn mutate(value: &Value, mutations: &[Mutation]) -> Value {
    let mut value = value.clone();
    for mutation in mutations {
        let mut all = Vec::new();
        pointers(&value, String::new(), &mut all);
        let pick = |at: usize| all[at % all.len()].clone();
        match mutation {
            Mutation::Replace(at, new) => {
                if let Some(node) = value.pointer_mut(&pick(*at)) {
                    *node = new.clone();
                }
            }
            Mutation::Remove(at) => {
                let pointer = pick(*at);
                let Some((parent, last)) = pointer.rsplit_once('/') else {
                    continue;
                };
                let last = last.replace("~1", "/").replace("~0", "~");
                match value.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&last);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = last.parse::<usize>()
                            && i < items.len()
                        {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            Mutation::Insert(at, k, new) => {
                if let Some(Value::Object(map)) = value.pointer_mut(&pick(*at)) {
                    map.insert(k.clone(), new.clone());
                }
            }
        }
    }
    value
}

/// Byte-level damage to a text: (position, byte) replacements and a truncation.
pub fn damage(text: &str, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for (at, byte) in edits {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = *byte;
        }
    }
    if let Some(cut) = cut {
        bytes.truncate(cut % (bytes.len() + 1));
    }
    bytes
}

/// A sample event's request body, parsed (the `body` of an API Gateway event in `events/`).
pub fn sample_body(file: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(file);
    let event: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("sample event")).expect("JSON");
    let body = event["body"].as_str().expect("body");
    serde_json::from_str(body).expect("body is JSON")
}
