//! `openapi.yaml` and the routers stay in step: every `(method, path)` arm of the
//! functions' routers is a documented operation, every documented operation is an arm
//! of a router, and API Gateway (the template's routes, as `make dev` serves them)
//! sends it to that router's function. The admin function serves the document at
//! `GET /api/openapi.yaml` without the key.
//!
//! The routers are read from their source: the arms `("GET", ["api", "integrations",
//! id, "chats"])` of `match (method, segments)` blocks (an identifier is a path
//! parameter; `rest @ ..` arms only dispatch to another block, whose path prefix
//! [`PREFIXES`] gives), the ingest arms `[...] if post`, and the H5 login check
//! `method == "POST" && api == ["login"]`.

use std::collections::{BTreeSet, HashSet};

use integration_tests::{TestStack, read, request};
use local_stack::gateway::{Function, match_route};

/// An operation: method and path, every path parameter written `{}`.
type Operation = (String, String);

/// The path prefix of each Rust `fn` that holds `match` arms: `(fn name, prefix)`.
type Prefixes = &'static [(&'static str, &'static str)];

/// The router sources, their function, and their [`Prefixes`] (`None`: the arms
/// hold whole paths).
const ROUTERS: &[(&str, Function, Option<Prefixes>)] = &[
    ("functions/admin-api/src/lib.rs", Function::AdminApi, None),
    (
        "functions/admin-api/src/console.rs",
        Function::AdminApi,
        None,
    ),
    ("functions/ingest/src/lib.rs", Function::Ingest, None),
    (
        "functions/event-callback/src/lib.rs",
        Function::EventCallback,
        None,
    ),
    (
        "functions/h5-app/src/lib.rs",
        Function::H5App,
        Some(PREFIXES),
    ),
];

/// The H5 router is nested: `handle` matches under `/dingtalk/{id}/app`, `api` under
/// its `api/`, and `incidents_api` under `api/incidents`.
const PREFIXES: Prefixes = &[
    ("handle", "/dingtalk/{}/app"),
    ("api", "/dingtalk/{}/app/api"),
    ("incidents_api", "/dingtalk/{}/app/api/incidents"),
];

/// Routed but not described, on purpose: the H5 page and its static assets are HTML,
/// JavaScript and CSS for DingTalk's web view, and the admin console page and its
/// assets are HTML, JavaScript and CSS for a browser; neither is an API.
const NOT_AN_API: &[(&str, &str)] = &[
    ("GET", "/dingtalk/{}/app"),
    ("GET", "/dingtalk/{}/app/assets/app.js"),
    ("GET", "/dingtalk/{}/app/assets/app.css"),
    ("GET", "/console"),
    ("GET", "/console/assets/console.js"),
    ("GET", "/console/assets/console.css"),
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

fn repo_file(path: &str) -> String {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// `(method, [segment patterns])` turned into an operation; `None` for a dispatching
/// arm (`rest @ ..`).
fn operation(method: &str, prefix: &str, items: &str) -> Option<Operation> {
    let mut path = prefix.to_string();
    for item in items.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item.contains("..") {
            return None;
        }
        let segment = match item.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
            Some(literal) => literal.to_string(),
            None => {
                assert!(
                    item == "_" || item.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "unexpected segment pattern {item:?}"
                );
                "{}".to_string()
            }
        };
        path.push('/');
        path.push_str(&segment);
    }
    Some((method.to_string(), path))
}

/// The name of the last `fn` declared before `at`.
fn fn_at(source: &str, at: usize) -> String {
    let before = &source[..at];
    let start = before.rfind("fn ").map(|i| i + 3).unwrap_or_default();
    before[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The `[ … ]` that ends just before `at` (no nested brackets in a path pattern).
fn slice_before(source: &str, at: usize) -> Option<(usize, &str)> {
    let before = source[..at].trim_end().strip_suffix(']')?;
    let open = before.rfind('[')?;
    Some((open, &before[open + 1..]))
}

/// Every `(method, path)` arm of one router source, with the `fn` holding it.
fn arms(source: &str) -> Vec<(String, String, String)> {
    // One space for every run of whitespace, so multi-line arms read like one-liners.
    let text = source
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace("[ ", "[");
    let mut found = Vec::new();
    let mut push = |at: usize, method: &str, items: &str| {
        found.push((fn_at(&text, at), method.to_string(), items.to_string()));
    };
    // `("GET", [ … ])` (rustfmt may leave a trailing comma: `[ …, ], ) =>`).
    for (at, _) in text.match_indices("(\"") {
        let rest = &text[at + 2..];
        let Some(method) = METHODS
            .iter()
            .find(|m| rest.starts_with(&format!("{m}\", [")))
        else {
            continue;
        };
        let after = &rest[method.len() + 4..];
        let Some(close) = after.find(']') else {
            continue;
        };
        let tail = after[close + 1..].trim_start();
        let tail = tail.strip_prefix(',').unwrap_or(tail).trim_start();
        if tail.starts_with(") =>") {
            push(at, method, &after[..close]);
        }
    }
    // `[ … ] if post =>` (the ingest router).
    for (at, _) in text.match_indices(" if post =>") {
        if let Some((open, items)) = slice_before(&text, at) {
            push(open, "POST", items);
        }
    }
    // `method == "POST" && api == ["login"]` (the H5 login, before the session check).
    for (at, _) in text.match_indices("method == \"") {
        let rest = &text[at + 11..];
        let Some((method, rest)) = rest.split_once('"') else {
            continue;
        };
        if let Some(items) = rest
            .strip_prefix(" && api == [")
            .and_then(|r| r.split_once(']'))
        {
            push(at, method, items.0);
        }
    }
    found
}

/// Every operation the routers serve, with its function.
fn routed() -> HashSet<(String, String, Function)> {
    let mut all = HashSet::new();
    for (file, function, prefixes) in ROUTERS {
        let source = repo_file(file);
        for (name, method, items) in arms(&source) {
            let prefix = match prefixes {
                None => "",
                Some(table) => table
                    .iter()
                    .find(|(f, _)| *f == name)
                    .map(|(_, p)| *p)
                    .unwrap_or_else(|| {
                        panic!("{file}: fn {name} routes; add its path prefix to PREFIXES")
                    }),
            };
            if let Some((method, path)) = operation(&method, prefix, &items) {
                all.insert((method, path, *function));
            }
        }
    }
    all
}

/// `{anything}` → `{}`.
fn normalise(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

/// The operations of `openapi.yaml`: the keys under `paths:` (two spaces in) and
/// their methods (four spaces in). The document keeps that block layout; the
/// structure itself is checked by openapi-spec-validator and schemathesis in
/// `scripts/schemathesis.sh`.
fn documented() -> BTreeSet<Operation> {
    let doc = repo_file("openapi.yaml");
    let mut in_paths = false;
    let mut path = None::<String>;
    let mut all = BTreeSet::new();
    for line in doc.lines() {
        if !line.starts_with(' ') && !line.is_empty() && !line.starts_with('#') {
            in_paths = line == "paths:";
            continue;
        }
        if !in_paths {
            continue;
        }
        if let Some(key) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
            path = Some(normalise(&format!("/{key}")));
        } else if let Some(method) = line
            .strip_prefix("    ")
            .and_then(|l| l.strip_suffix(':'))
            .map(str::to_ascii_uppercase)
            .filter(|m| METHODS.contains(&m.as_str()))
        {
            let path = path.clone().expect("a method before any path");
            all.insert((method, path));
        }
    }
    all
}

#[test]
fn the_router_reader_finds_every_kind_of_arm() {
    let routed = routed();
    let has = |method: &str, path: &str, function: Function| {
        routed.contains(&(method.to_string(), path.to_string(), function))
    };
    // A one-line arm, a multi-line (rustfmt) arm, `if post`, the H5 login check, and
    // each nested H5 block.
    assert!(has("GET", "/api/integrations/{}/chats", Function::AdminApi));
    assert!(has(
        "DELETE",
        "/api/integrations/{}/schedules/{}/overrides/{}",
        Function::AdminApi
    ));
    assert!(has(
        "POST",
        "/api/integrations/{}/pagerduty/v2/enqueue",
        Function::Ingest
    ));
    assert!(has("POST", "/dingtalk/{}/app/api/login", Function::H5App));
    assert!(has("GET", "/dingtalk/{}/app/api/me", Function::H5App));
    assert!(has(
        "POST",
        "/dingtalk/{}/app/api/incidents/{}/actions",
        Function::H5App
    ));
    assert!(has("POST", "/dingtalk/{}/cards", Function::EventCallback));
    assert!(
        routed.len() >= 50,
        "{} operations: {routed:?}",
        routed.len()
    );
    assert!(documented().len() >= 45);
}

#[test]
fn every_routed_operation_is_documented_and_every_documented_one_is_routed() {
    let routed = routed();
    let served: BTreeSet<Operation> = routed
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .filter(|(m, p)| !NOT_AN_API.contains(&(m.as_str(), p.as_str())))
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "in openapi.yaml but no router serves it: {unrouted:?}"
    );
    // The exclusions are still routes (else they should go).
    for (method, path) in NOT_AN_API {
        assert!(
            routed
                .iter()
                .any(|(m, p, _)| (m.as_str(), p.as_str()) == (*method, *path)),
            "{method} {path} is no longer routed: drop it from NOT_AN_API"
        );
    }
}

#[test]
fn api_gateway_sends_every_documented_operation_to_the_function_that_routes_it() {
    for (method, path, function) in routed() {
        let concrete = path.replace("{}", "x1");
        let gateway = match_route(&method, &concrete);
        assert_eq!(
            gateway.map(|(_, f)| f),
            Some(function),
            "{method} {path}: template.yaml (and local/src/gateway.rs) send it to {gateway:?}"
        );
    }
}

#[tokio::test]
async fn the_admin_function_serves_the_document_without_the_key() {
    let stack = TestStack::start().await;
    let response = stack
        .admin
        .handle(request("GET", "/api/openapi.yaml", &[], None))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/yaml")
    );
    let body = match response.body() {
        lambda_http::Body::Text(t) => t.clone(),
        lambda_http::Body::Binary(b) => String::from_utf8(b.clone()).expect("utf-8"),
        _ => String::new(),
    };
    assert_eq!(body, repo_file("openapi.yaml"));
    assert_eq!(body, admin_api::OPENAPI_YAML);

    // Everything else still needs the key.
    let (status, answer) = read(
        stack
            .admin
            .handle(request("GET", "/api/integrations", &[], None))
            .await,
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
}
