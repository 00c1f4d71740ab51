//! Acceptance: bad input gets a clear 4xx JSON error and changes nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use integration_tests::{ADMIN_KEY, APP, TestStack, now_ms, read, request};
use local_stack::sandbox::events::{SignedEvent, cool_app_event};
use serde_json::{Value, json};
use shared::infra::crypto::CallbackCrypto;

fn crypto() -> CallbackCrypto {
    CallbackCrypto::new(APP.token, APP.aes_key).expect("crypto")
}

/// A request whose `encrypt` is `encrypt` and whose signature is valid for it.
fn signed_raw(encrypt: &str, timestamp: &str) -> SignedEvent {
    let nonce = "n0nce123".to_string();
    SignedEvent {
        signature: crypto().signature(timestamp, &nonce, encrypt),
        timestamp: timestamp.into(),
        nonce,
        body: json!({ "encrypt": encrypt }),
    }
}

/// Flips bits of one ciphertext byte (CBC: flipping byte i of block k flips byte i
/// of plaintext block k+1).
fn flip(encrypt: &str, index_from_end: Option<usize>, index: usize, mask: u8) -> String {
    let mut bytes = STANDARD.decode(encrypt).expect("b64");
    let at = match index_from_end {
        Some(back) => bytes.len() - back,
        None => index,
    };
    bytes[at] ^= mask;
    STANDARD.encode(bytes)
}

fn install_event() -> Value {
    cool_app_event(
        true,
        APP.corp_id,
        "cidBad==",
        "COOLAPP-1",
        APP.client_id,
        "u1",
        now_ms(),
    )
}

/// One refused callback: name, path and query, body, status and error code.
type Refused = (&'static str, String, Vec<u8>, u16, &'static str);

/// Callbacks whose signature, time, receiver or ciphertext is wrong.
fn crypto_cases(stack: &TestStack, id: &str, good: &SignedEvent) -> Vec<Refused> {
    let now = now_ms().to_string();
    let good_encrypt = good.body["encrypt"].as_str().expect("encrypt").to_string();
    let mut wrong_signature = good.clone();
    wrong_signature.signature = "0".repeat(40);
    let not_json = crypto()
        .encrypt("this is not json", APP.client_id)
        .expect("enc");
    let events: Vec<(&'static str, SignedEvent, u16, &'static str)> = vec![
        ("wrong signature", wrong_signature, 403, "bad_signature"),
        (
            "stale timestamp",
            stack.sign_for(&install_event(), APP.client_id, now_ms() - 3_600_000),
            403,
            "stale_timestamp",
        ),
        (
            "future timestamp",
            stack.sign_for(&install_event(), APP.client_id, now_ms() + 3_600_000),
            403,
            "stale_timestamp",
        ),
        (
            "wrong receiver",
            stack.sign_for(&install_event(), "dingSomeOtherApp0000", now_ms()),
            403,
            "wrong_receiver",
        ),
        (
            "corrupted base64",
            signed_raw("@@not*base64@@", &now),
            400,
            "bad_base64",
        ),
        // Last ciphertext byte of the second-to-last block: flips the pad byte above 32.
        (
            "wrong padding",
            signed_raw(&flip(&good_encrypt, Some(17), 0, 0x80), &now),
            400,
            "bad_padding",
        ),
        // First byte of the first block: flips the high byte of the declared length.
        (
            "wrong length",
            signed_raw(&flip(&good_encrypt, None, 0, 0x7f), &now),
            400,
            "bad_length",
        ),
        (
            "ciphertext not whole blocks",
            signed_raw(&STANDARD.encode([7u8; 15]), &now),
            400,
            "bad_length",
        ),
        (
            "decrypts to non-JSON",
            signed_raw(&not_json, &now),
            400,
            "malformed_event",
        ),
        (
            "timestamp not a number",
            signed_raw(&good_encrypt, "yesterday"),
            400,
            "bad_timestamp",
        ),
    ];
    events
        .into_iter()
        .map(|(name, e, status, code)| {
            let body = e.body.to_string().into_bytes();
            (name, e.path_and_query(id), body, status, code)
        })
        .collect()
}

/// Callbacks whose body, query parameters, integration or size is wrong.
fn envelope_cases(id: &str, good: &SignedEvent) -> Vec<Refused> {
    let path = good.path_and_query(id);
    let body = good.body.to_string().into_bytes();
    let (sig, ts, nonce) = (&good.signature, &good.timestamp, &good.nonce);
    let base = format!("/dingtalk/{id}/events");
    vec![
        (
            "body not JSON",
            path.clone(),
            b"encrypt=abc".to_vec(),
            400,
            "malformed_body",
        ),
        (
            "body without encrypt",
            path.clone(),
            br#"{"other":1}"#.to_vec(),
            400,
            "malformed_body",
        ),
        (
            "empty body",
            path.clone(),
            Vec::new(),
            400,
            "malformed_body",
        ),
        (
            "missing signature",
            format!("{base}?timestamp={ts}&nonce={nonce}"),
            body.clone(),
            400,
            "missing_parameter",
        ),
        (
            "missing timestamp",
            format!("{base}?signature={sig}&nonce={nonce}"),
            body.clone(),
            400,
            "missing_parameter",
        ),
        (
            "missing nonce",
            format!("{base}?signature={sig}&timestamp={ts}"),
            body.clone(),
            400,
            "missing_parameter",
        ),
        (
            "unknown integration",
            good.path_and_query("0000nosuchintegration"),
            body,
            404,
            "not_found",
        ),
        (
            "oversized body",
            path,
            format!("{{\"encrypt\":\"{}\"}}", "A".repeat(70_000)).into_bytes(),
            413,
            "body_too_large",
        ),
    ]
}

#[tokio::test]
async fn bad_callbacks_are_refused_and_change_nothing() {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    let baseline = stack.item_count().await;
    let good = stack.sign(&install_event());
    let mut cases = crypto_cases(&stack, &id, &good);
    cases.extend(envelope_cases(&id, &good));
    for (name, path_and_query, bytes, status, code) in cases {
        let (got, body) = stack.post_callback(&path_and_query, bytes).await;
        assert_eq!(got, status, "{name}: {body}");
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        assert_eq!(stack.item_count().await, baseline, "{name} wrote something");
    }

    // Wrong content type, and wrong methods/routes.
    let wrong_type = stack
        .callback
        .handle(request(
            "POST",
            &good.path_and_query(&id),
            &[("content-type", "text/plain".into())],
            Some(good.body.to_string().into_bytes()),
        ))
        .await;
    assert_eq!(read(wrong_type).0, 415);
    let get = stack
        .callback
        .handle(request("GET", &good.path_and_query(&id), &[], None))
        .await;
    assert_eq!(read(get).0, 405);
    let elsewhere = stack
        .callback
        .handle(request("POST", "/nowhere", &[], None))
        .await;
    assert_eq!(read(elsewhere).0, 404);
    assert_eq!(stack.item_count().await, baseline);

    // The good request still works afterwards, and the bad ones wrote no claim that blocks it.
    assert_eq!(stack.post_event(&id, &good).await.0, 200);
}

/// Create payloads with one wrong or missing field, and the field the 400 names.
fn invalid_create_cases(valid: &Value) -> Vec<(&'static str, Value, &'static str)> {
    let with = |field: &str, value: Value| {
        let mut body = valid.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid.clone();
        body.as_object_mut().expect("object").remove(field);
        body
    };
    vec![
        (
            "aes_key too short",
            with("aes_key", json!("abc")),
            "aes_key",
        ),
        (
            "aes_key 44 chars",
            with("aes_key", json!("a".repeat(44))),
            "aes_key",
        ),
        (
            "aes_key symbol",
            with("aes_key", json!(format!("{}+", "a".repeat(42)))),
            "aes_key",
        ),
        ("token too short", with("token", json!("ab")), "token"),
        (
            "token too long",
            with("token", json!("a".repeat(33))),
            "token",
        ),
        ("token symbol", with("token", json!("tok-en")), "token"),
        (
            "agent_id letters",
            with("agent_id", json!("abc")),
            "agent_id",
        ),
        ("client_id empty", with("client_id", json!("")), "client_id"),
        ("corp_id number", with("corp_id", json!(5)), "corp_id"),
        (
            "edition unknown",
            with("edition", json!("platinum")),
            "edition",
        ),
        ("qps zero", with("qps_limit", json!(0)), "qps_limit"),
        (
            "quota negative",
            with("monthly_quota", json!(-1)),
            "monthly_quota",
        ),
        (
            "timezone unknown",
            with("timezone", json!("Asia/Atlantis")),
            "timezone",
        ),
        (
            "webhook not http",
            with("webhook_url", json!("javascript:alert(1)")),
            "webhook_url",
        ),
        (
            "targets wrong shape",
            with("default_targets", json!(["cid"])),
            "default_targets",
        ),
        (
            "target member not email",
            with("default_targets", json!({"members": ["bob"]})),
            "default_targets.members",
        ),
        ("unknown field", with("colour", json!("red")), "colour"),
        ("missing name", without("name"), "name"),
        (
            "missing client_secret",
            without("client_secret"),
            "client_secret",
        ),
        ("missing aes_key", without("aes_key"), "aes_key"),
        ("missing token", without("token"), "token"),
        ("not an object", json!([1, 2]), "body"),
    ]
}

#[tokio::test]
async fn invalid_create_payloads_are_refused_and_write_nothing() {
    let stack = TestStack::start().await;
    let baseline = stack.item_count().await;
    let valid = stack.create_payload();
    let cases = invalid_create_cases(&valid);
    for (name, body, field) in cases {
        let (status, answer) = stack.admin("POST", "/api/integrations", Some(body)).await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert_eq!(answer["error"]["code"], "validation_failed", "{name}");
        assert_eq!(answer["error"]["field"], field, "{name}: {answer}");
        assert_eq!(stack.item_count().await, baseline, "{name} wrote something");
    }

    let raw = |body: &[u8], headers: Vec<(&str, String)>| {
        request("POST", "/api/integrations", &headers, Some(body.to_vec()))
    };
    let auth = || ("authorization", format!("Bearer {ADMIN_KEY}"));
    let not_json = stack.admin.handle(raw(b"{name:", vec![auth()])).await;
    let (status, body) = read(not_json);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let wrong_type = stack
        .admin
        .handle(raw(
            b"{}",
            vec![
                auth(),
                ("content-type", "application/x-www-form-urlencoded".into()),
            ],
        ))
        .await;
    assert_eq!(read(wrong_type).0, 415);
    let huge = stack
        .admin
        .handle(raw(&vec![b' '; 300 * 1024], vec![auth()]))
        .await;
    assert_eq!(read(huge).0, 413);
    for headers in [
        vec![],
        vec![("authorization", "Bearer wrong-key".to_string())],
        vec![("authorization", ADMIN_KEY.to_string())],
        vec![("authorization", format!("Basic {ADMIN_KEY}"))],
    ] {
        let (status, body) = read(
            stack
                .admin
                .handle(raw(valid.to_string().as_bytes(), headers))
                .await,
        );
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    assert_eq!(stack.item_count().await, baseline);
}
