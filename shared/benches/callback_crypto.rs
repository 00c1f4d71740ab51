//! The CPU cost of DingTalk's callback crypto per event (issue #13), beside the
//! Python `dingtalk-sdk` peer (`scripts/bench_crypto_peer.py`), which does the same
//! two operations on the same vector:
//!
//! * `verify_decrypt`: a raw event-callback body (`{"encrypt": …}`, the V4
//!   `chat_update_title` vector of `vectors/dingtalk-crypto.json`, 231 bytes of JSON
//!   inside) parsed, its signature verified and its envelope decrypted and checked
//!   against the accepted receivers, as `EventSubscription::handle` does;
//! * `encrypt_reply`: the signed, encrypted `success` reply.
//!
//! The codec is built once on both sides (key decoding is not measured).
//!
//! Run: `make bench-crypto` (the side-by-side table), or
//! `cargo bench -p shared --bench callback_crypto`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;
use shared::infra::crypto::CallbackCrypto;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/vectors/dingtalk-crypto.json"
));

/// The vector both sides measure (the Python peer reads the same one).
const VECTOR: &str = "V4";

/// One encrypt vector's fields.
struct Vector {
    token: String,
    aes_key: String,
    receiver: String,
    timestamp: String,
    nonce: String,
    msg_signature: String,
    body: String,
}

fn vector() -> Vector {
    let all: Value = serde_json::from_str(VECTORS).expect("vector file is JSON");
    let entry = all["encrypt_vectors"]
        .as_array()
        .and_then(|list| list.iter().find(|e| e["name"] == VECTOR))
        .expect("the vector is in the file");
    let field = |name: &str| entry[name].as_str().expect("string field").to_owned();
    Vector {
        token: field("token"),
        aes_key: field("aes_key"),
        receiver: field("receiver"),
        timestamp: field("timestamp"),
        nonce: field("nonce"),
        msg_signature: field("msg_signature"),
        body: serde_json::json!({ "encrypt": field("encrypt") }).to_string(),
    }
}

/// What the callback does with a request before looking at the event.
fn verify_decrypt(crypto: &CallbackCrypto, v: &Vector, receivers: &[&str]) -> String {
    let body: Value = serde_json::from_str(&v.body).expect("body is JSON");
    let encrypt = body["encrypt"].as_str().expect("encrypt field");
    crypto
        .verify_signature(&v.msg_signature, &v.timestamp, &v.nonce, encrypt)
        .expect("signature verifies");
    crypto
        .decrypt(encrypt, receivers)
        .expect("vector decrypts")
        .message
}

fn bench(c: &mut Criterion) {
    let v = vector();
    let crypto = CallbackCrypto::new(&v.token, &v.aes_key).expect("vector key");
    // The service accepts the app's client id and the corp id.
    let receivers = ["dingOtherClientId", v.receiver.as_str()];
    assert!(verify_decrypt(&crypto, &v, &receivers).contains("chat_update_title"));

    let mut group = c.benchmark_group("callback_crypto");
    group.bench_function("verify_decrypt", |b| {
        b.iter(|| black_box(verify_decrypt(&crypto, black_box(&v), &receivers)))
    });
    group.bench_function("encrypt_reply", |b| {
        b.iter(|| {
            black_box(
                crypto
                    .reply("success", black_box(&v.receiver), &v.timestamp, &v.nonce)
                    .expect("reply"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
