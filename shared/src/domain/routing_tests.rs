//! Matchers (Alertmanager syntax), route order, the policy label, validation and serde.

use super::*;
use serde_json::json;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse(text: &str) -> Matcher {
    Matcher::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

#[test]
fn each_operator_matches_like_alertmanager() {
    let l = labels(&[("service", "payments"), ("env", "prod-eu"), ("team", "web")]);
    let cases = [
        ("service=payments", true),
        ("service=billing", false),
        ("service!=payments", false),
        ("service!=billing", true),
        ("env=~prod.*", true),
        ("env=~dev.*", false),
        ("env!~\"dev|test\"", true),
        ("env!~prod-.*", false),
        // Case matters.
        ("service=Payments", false),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text).matches(&l), expected, "{text}");
    }
}

#[test]
fn operators_and_values_parse() {
    let cases: [(&str, &str, MatchOp, &str); 12] = [
        ("service=payments", "service", MatchOp::Equal, "payments"),
        (
            "service!=payments",
            "service",
            MatchOp::NotEqual,
            "payments",
        ),
        ("env=~prod.*", "env", MatchOp::Regex, "prod.*"),
        ("env!~prod.*", "env", MatchOp::NotRegex, "prod.*"),
        // `=~` and `!~` are not `=` / `!=` followed by a value starting with `~`.
        ("env=~~x", "env", MatchOp::Regex, "~x"),
        ("  _env_2 =  prod  ", "_env_2", MatchOp::Equal, "prod"),
        ("msg=a b  c", "msg", MatchOp::Equal, "a b  c"),
        ("msg = \" a b \" ", "msg", MatchOp::Equal, " a b "),
        (r#"msg="say \"hi\"""#, "msg", MatchOp::Equal, r#"say "hi""#),
        (r#"msg="back\\slash""#, "msg", MatchOp::Equal, r"back\slash"),
        (r#"msg="two\nlines""#, "msg", MatchOp::Equal, "two\nlines"),
        ("url=a=b!=c", "url", MatchOp::Equal, "a=b!=c"),
    ];
    for (text, name, op, value) in cases {
        let m = parse(text);
        assert_eq!(
            (m.name.as_str(), m.op, m.value.as_str()),
            (name, op, value),
            "{text}"
        );
    }
}

#[test]
fn regexes_are_anchored() {
    let cases = [
        ("env=~prod", "prod", true),
        ("env=~prod", "production", false),
        ("env=~prod", "preprod", false),
        ("env=~prod|dev", "prod", true),
        ("env=~prod|dev", "production", false),
        ("env=~prod|dev", "devel", false),
        ("env!~prod", "production", true),
        ("env=~(?m)prod", "prod\nx", false),
        ("env=~\"prod.*\"", "prod\nx", false),
        ("env=~\"(?s)prod.*\"", "prod\nx", true),
    ];
    for (text, value, expected) in cases {
        assert_eq!(
            parse(text).matches(&labels(&[("env", value)])),
            expected,
            "{text} on {value:?}"
        );
    }
    // A value that would close the group and escape the anchors is refused.
    let err = Matcher::parse("env=~a)|(b").expect_err("escapes the anchors");
    assert!(err.reason.starts_with("invalid regex"), "{err}");
}

#[test]
fn a_missing_label_is_the_empty_string() {
    let none = labels(&[("service", "payments")]);
    let cases = [
        ("team!=db", true),
        ("team=db", false),
        ("team=\"\"", true),
        ("team=", true),
        ("team!=\"\"", false),
        ("team=~.*", true),
        ("team=~.+", false),
        ("team!~.+", true),
        ("team!~db", true),
    ];
    for (text, expected) in cases {
        assert_eq!(parse(text).matches(&none), expected, "{text}");
    }
}

#[test]
fn broken_matchers_say_which_and_why() {
    let cases = [
        ("env=~(", "invalid regex"),
        ("env=~\"[a-\"", "invalid regex"),
        ("env!~a)|(b", "invalid regex"),
        // Hostile: compiles to far more than the size limit.
        (
            "env=~(((a{100}){100}){100})",
            "invalid regex: Compiled regex exceeds size limit",
        ),
        ("9env=prod", "not a label name"),
        ("en-v=prod", "not a label name"),
        ("=prod", "not a label name"),
        ("\"env\"=prod", "not a label name"),
        ("envprod", "no operator"),
        ("", "no operator"),
        ("env!prod", "no operator"),
        ("env=\"prod", "closing"),
        ("env=\"", "closing"),
        ("env=\"a\\x\"", "unknown escape"),
        ("env=\"a\\\"", "backslash"),
        ("env=\"a\"b\"", "unescaped quote"),
    ];
    for (text, says) in cases {
        let err = Matcher::parse(text).expect_err(text);
        assert_eq!(err.matcher, text);
        assert!(err.reason.contains(says), "{text}: {err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("matcher {text:?}: ")),
            "{message}"
        );
        assert!(!message.contains('\n'), "one line: {message:?}");
    }
}

#[test]
fn display_is_canonical_and_parses_back() {
    let cases = [
        ("service=payments", r#"service="payments""#),
        (" team != db ", r#"team!="db""#),
        ("env=~prod.*", r#"env=~"prod.*""#),
        ("env!~\"dev|test\"", r#"env!~"dev|test""#),
        ("msg=\"a \\\"b\\\" \\\\ c\\nd\"", r#"msg="a \"b\" \\ c\nd""#),
        ("team=", r#"team="""#),
    ];
    for (text, canonical) in cases {
        let m = parse(text);
        assert_eq!(m.to_string(), canonical, "{text}");
        assert_eq!(parse(canonical), m, "{text}");
    }
}

#[test]
fn matchers_are_strings_in_json() {
    let m = parse("env=~prod.*");
    assert_eq!(
        serde_json::to_value(&m).expect("json"),
        json!("env=~\"prod.*\"")
    );
    let back: Matcher = serde_json::from_value(json!("env=~prod.*")).expect("parses");
    assert_eq!(back, m);
    assert!(back.matches(&labels(&[("env", "prod-eu")])));
    let err = serde_json::from_value::<Matcher>(json!("env=~(")).expect_err("bad regex");
    assert!(
        err.to_string()
            .contains("matcher \"env=~(\": invalid regex"),
        "{err}"
    );
    assert!(serde_json::from_value::<Matcher>(json!(5)).is_err());
}

fn demo_routes() -> Vec<Route> {
    parse_routes(&json!([
        {"name": "db", "matchers": ["team=db"], "policy": "db-oncall"},
        {"name": "pay critical", "matchers": ["service=~pay.*", "env=~prod.*"],
         "severities": ["critical"], "policy": "payments"},
        {"name": "pay other", "matchers": ["service=~pay.*"],
         "severities": ["warning", "info"], "policy": " payments-low "},
        {"name": "rest", "matchers": [], "policy": "catch-all"}
    ]))
    .expect("routes")
}

#[test]
fn first_matching_route_wins() {
    let routes = demo_routes();
    let cases = [
        (
            vec![("service", "payments"), ("env", "prod")],
            Severity::Critical,
            "payments",
        ),
        (
            vec![("service", "payments"), ("env", "prod")],
            Severity::Warning,
            "payments-low",
        ),
        (
            vec![("service", "payments"), ("env", "prod")],
            Severity::Info,
            "payments-low",
        ),
        // Every matcher must hold.
        (
            vec![("service", "payments"), ("env", "dev")],
            Severity::Critical,
            "catch-all",
        ),
        // The earlier route wins even where a later one matches too.
        (
            vec![("service", "payments"), ("env", "prod"), ("team", "db")],
            Severity::Critical,
            "db-oncall",
        ),
        (vec![], Severity::Info, "catch-all"),
    ];
    for (pairs, severity, policy) in cases {
        assert_eq!(
            route_policy(&routes, &labels(&pairs), severity),
            Some(policy),
            "{pairs:?} {severity:?}"
        );
    }
    let no_catch_all = &routes[..3];
    assert_eq!(
        route_policy(
            no_catch_all,
            &labels(&[("service", "web")]),
            Severity::Critical
        ),
        None
    );
    assert_eq!(route_policy(&[], &labels(&[]), Severity::Critical), None);
}

#[test]
fn the_policy_label_wins_over_routes() {
    let routes = demo_routes();
    // (labels, with the routes, without any route)
    let cases = [
        (
            vec![("team", "db"), (POLICY_LABEL, "special")],
            Some("special"),
            Some("special"),
        ),
        (
            vec![(POLICY_LABEL, " by-id-123 ")],
            Some("by-id-123"),
            Some("by-id-123"),
        ),
        // Empty: the routes decide.
        (
            vec![("team", "db"), (POLICY_LABEL, "")],
            Some("db-oncall"),
            None,
        ),
        (
            vec![("team", "db"), (POLICY_LABEL, "  ")],
            Some("db-oncall"),
            None,
        ),
    ];
    for (pairs, routed, alone) in cases {
        let l = labels(&pairs);
        assert_eq!(
            route_policy(&routes, &l, Severity::Info),
            routed,
            "{pairs:?}"
        );
        assert_eq!(route_policy(&[], &l, Severity::Info), alone, "{pairs:?}");
    }
}

#[test]
fn parse_errors_name_the_field() {
    let cases = [
        (json!({"name": "r"}), "routes", "JSON array"),
        (json!("routes"), "routes", "JSON array"),
        (json!(null), "routes", "JSON array"),
        (
            json!([{"name": "r", "matchers": ["x=~("], "policy": "p"}]),
            "routes[0].matchers[0]",
            "x=~(",
        ),
        (
            json!([{"name": "r", "policy": "p"}, {"name": "s", "matchers": ["a=b", "9x=y"], "policy": "p"}]),
            "routes[1].matchers[1]",
            "9x=y",
        ),
        (
            json!([{"name": "r", "matchers": [5], "policy": "p"}]),
            "routes[0].matchers[0]",
            "string",
        ),
        (
            json!([{"name": "r", "matchers": "a=b", "policy": "p"}]),
            "routes[0]",
            "not a route",
        ),
        (
            json!([{"name": "r", "policy": 7}]),
            "routes[0]",
            "not a route",
        ),
        (json!([{"name": "r"}]), "routes[0]", "policy"),
        (json!([{"policy": "p"}]), "routes[0]", "name"),
        (
            json!([{"name": "r", "policy": "p", "severities": ["urgent"]}]),
            "routes[0]",
            "urgent",
        ),
        (
            json!([{"name": "r", "policy": "p", "severities": "critical"}]),
            "routes[0]",
            "not a route",
        ),
        (
            json!([{"name": "r", "policy": "p"}, 3]),
            "routes[1]",
            "not a route",
        ),
    ];
    for (body, field, says) in cases {
        let err = parse_routes(&body).expect_err(&body.to_string());
        assert_eq!(err.field, field, "{body}");
        assert!(err.message.contains(says), "{body}: {err}");
    }
    assert_eq!(parse_routes(&json!([])).expect("empty list"), Vec::new());
}

#[test]
fn validation_names_the_field() {
    let exists = |p: &str| p == "payments";
    let route = |name: &str| json!({"name": name, "matchers": ["a=b"], "policy": "payments"});
    let many_matchers: Vec<String> = (0..=MAX_MATCHERS).map(|i| format!("l{i}=v")).collect();
    let cases = [
        (
            json!([{"name": "", "policy": "payments"}]),
            "routes[0].name",
            "1 to 100",
        ),
        (
            json!([{"name": "  ", "policy": "payments"}]),
            "routes[0].name",
            "1 to 100",
        ),
        (
            json!([route(&"n".repeat(101))]),
            "routes[0].name",
            "1 to 100",
        ),
        (
            json!([{"name": "r", "matchers": many_matchers, "policy": "payments"}]),
            "routes[0].matchers",
            "at most 20",
        ),
        (
            json!([{"name": "r", "severities": [], "policy": "payments"}]),
            "routes[0].severities",
            "empty",
        ),
        (
            json!([route("a"), route("b"), {"name": "c", "policy": "nobody"}]),
            "routes[2].policy",
            "\"nobody\"",
        ),
        (
            json!(
                (0..=MAX_ROUTES)
                    .map(|i| route(&format!("r{i}")))
                    .collect::<Vec<_>>()
            ),
            "routes",
            "at most 100",
        ),
    ];
    for (body, field, says) in cases {
        let routes = parse_routes(&body).expect("parses");
        let err = validate_routes(&routes, exists).expect_err(field);
        assert_eq!(err.field, field);
        assert!(err.message.contains(says), "{field}: {err}");
    }
    let fine = json!([
        route(&"n".repeat(100)),
        {"name": "r", "matchers": (0..MAX_MATCHERS).map(|i| format!("l{i}=v")).collect::<Vec<_>>(),
         "severities": ["critical"], "policy": " payments "}
    ]);
    validate_routes(&parse_routes(&fine).expect("parses"), exists).expect("valid");
    let most = json!(
        (0..MAX_ROUTES)
            .map(|i| route(&format!("r{i}")))
            .collect::<Vec<_>>()
    );
    validate_routes(&parse_routes(&most).expect("parses"), exists).expect("100 routes");
}

#[test]
fn routes_round_trip_through_json() {
    let routes = demo_routes();
    let value = serde_json::to_value(&routes).expect("json");
    assert_eq!(
        value[0],
        json!({"name": "db", "matchers": ["team=\"db\""], "policy": "db-oncall"})
    );
    assert_eq!(
        value[1]["matchers"],
        json!(["service=~\"pay.*\"", "env=~\"prod.*\""])
    );
    assert_eq!(value[2]["severities"], json!(["warning", "info"]));
    assert!(value[0].get("severities").is_none());
    assert_eq!(parse_routes(&value).expect("again"), routes);
    let text = serde_json::to_string(&routes).expect("text");
    let back: Vec<Route> = serde_json::from_str(&text).expect("serde");
    assert_eq!(back, routes);
}
