//! Properties of the routing matchers (`service=payments`, `env=~"prod.*"`) and the
//! routes body: arbitrary text parses or is a `MatcherError`, a parsed matcher's
//! rendering parses back to the same matcher, and matching never panics.

mod properties_support;

use std::collections::BTreeMap;

use properties_support::{config, json, mutate, mutations};
use proptest::prelude::*;
use serde_json::json;
use shared::domain::routing::{MatchOp, Matcher, parse_routes};

fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z_][a-zA-Z0-9_]{0,12}"
}

fn op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["=", "!=", "=~", "!~"])
}

/// A value as written: bare or quoted, with regex syntax and escapes, or anything.
fn written_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z0-9.*+?|()\\[\\]^$ -]{0,16}",
        "[a-z.*\\\\\"n ]{0,12}".prop_map(|v| format!("\"{v}\"")),
        any::<String>().prop_map(|v| format!("\"{v}\"")),
    ]
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(name(), any::<String>(), 0..4)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_is_a_matcher_or_an_error(text in any::<String>(), labels in labels()) {
        match Matcher::parse(&text) {
            Ok(matcher) => {
                let _ = matcher.matches(&labels);
            }
            Err(err) => prop_assert_eq!(err.matcher, text),
        }
    }

    #[test]
    fn a_rendered_matcher_parses_back_to_itself(
        name in name(),
        op in op(),
        value in written_value(),
        spaces in prop::sample::select(vec!["", " ", "  "]),
        labels in labels(),
    ) {
        let written = format!("{spaces}{name}{spaces}{op}{spaces}{value}{spaces}");
        let Ok(matcher) = Matcher::parse(&written) else { return Ok(()) };
        prop_assert_eq!(&matcher.name, &name);
        let rendered = matcher.to_string();
        let again = Matcher::parse(&rendered).expect("a rendered matcher parses");
        prop_assert_eq!(&again, &matcher);
        prop_assert_eq!(again.to_string(), rendered);
        prop_assert_eq!(again.matches(&labels), matcher.matches(&labels));
        // Through JSON (routes are stored as their text).
        let json = serde_json::to_value(&matcher).expect("serialises");
        let back: Matcher = serde_json::from_value(json).expect("deserialises");
        prop_assert_eq!(back, matcher);
    }

    #[test]
    fn equality_matchers_match_exactly_their_value(name in name(), value in any::<String>(), other in any::<String>()) {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let matcher = Matcher::parse(&format!("{name}=\"{escaped}\"")).expect("a quoted value parses");
        prop_assert_eq!(matcher.op, MatchOp::Equal);
        prop_assert_eq!(&matcher.value, &value);
        let with = BTreeMap::from([(name.clone(), value.clone())]);
        prop_assert!(matcher.matches(&with));
        let without = BTreeMap::from([(name.clone(), other.clone())]);
        prop_assert_eq!(matcher.matches(&without), other == value);
        let negated = Matcher::parse(&format!("{name}!=\"{escaped}\"")).expect("parses");
        prop_assert_eq!(negated.matches(&without), other != value);
    }

    #[test]
    fn arbitrary_routes_bodies_are_routes_or_validation_errors(body in json()) {
        if let Err(err) = parse_routes(&body) {
            prop_assert!(!err.field.is_empty() && !err.message.is_empty());
        }
    }

    #[test]
    fn mutated_routes_are_routes_or_validation_errors(changes in mutations()) {
        let valid = json!([
            {"name": "payments", "matchers": ["service=payments", "env=~\"prod.*\""],
             "severities": ["critical"], "policy": "p1"},
            {"name": "rest", "matchers": [], "policy": "p2"}
        ]);
        prop_assert!(parse_routes(&valid).is_ok());
        if let Err(err) = parse_routes(&mutate(&valid, &changes)) {
            prop_assert!(!err.field.is_empty() && !err.message.is_empty());
        }
    }
}
