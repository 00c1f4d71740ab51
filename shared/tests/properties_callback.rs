//! Properties of the DingTalk event callback: the crypto (`CallbackCrypto`) and the
//! event parsing behind `POST /dingtalk/{id}/events`. Arbitrary input never panics, bad
//! input is always a typed error, and encrypt → decrypt is the identity.

mod properties_support;

use properties_support::{config, damage, json, mutate, mutations};
use proptest::prelude::*;
use serde_json::{Value, json};
use shared::infra::crypto::{CallbackCrypto, CryptoError};
use shared::services::event_subscription::{
    CallbackError, CallbackQuery, DingTalkEvent, encrypted_field, parse_event,
};

/// DingTalk's published test app keys (the vectors' family).
const TOKEN: &str = "flashdutytoken1";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
const NOW_MS: i64 = 1_795_000_400_000;

fn crypto() -> CallbackCrypto {
    CallbackCrypto::new(TOKEN, AES_KEY).expect("crypto")
}

/// A 43-character aes_key, as the console generates.
fn aes_key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{43}"
}

/// The events DingTalk sends, as valid JSON to mutate.
fn valid_events() -> Vec<Value> {
    let cid = "cidSampleOps0123456789ab==";
    vec![
        json!({"EventType": "check_url"}),
        json!({"EventType": "im_cool_app_install", "EventTime": NOW_MS, "eventId": "e1",
               "coolAppCode": "COOLAPP-1", "robotCode": "ding1", "openConversationId": cid,
               "operateTime": NOW_MS.to_string(), "operator": "0213"}),
        json!({"EventType": "im_cool_app_uninstall", "BizId": "b1", "openConversationId": cid}),
        json!({"EventType": "chat_update_title", "timeStamp": NOW_MS, "title": "支付告警群",
               "openConversationId": cid, "eventId": "e2"}),
    ]
}

/// Only the documented errors of `decrypt`.
fn is_decrypt_error(err: CryptoError) -> bool {
    matches!(
        err,
        CryptoError::InvalidBase64
            | CryptoError::InvalidCiphertextLength
            | CryptoError::InvalidPadding
            | CryptoError::InvalidLength
            | CryptoError::InvalidUtf8
            | CryptoError::ReceiverMismatch
    )
}

/// What `parse_event` accepted is consistent with the message.
fn check_envelope(message: &str) {
    match parse_event(message, NOW_MS) {
        Ok(envelope) => {
            assert!(!envelope.event_type.is_empty());
            assert!(!envelope.dedupe_key.is_empty());
            match &envelope.event {
                DingTalkEvent::CheckUrl => assert_eq!(envelope.event_type, "check_url"),
                DingTalkEvent::CoolApp {
                    open_conversation_id,
                    ..
                }
                | DingTalkEvent::TitleChanged {
                    open_conversation_id,
                    ..
                } => assert!(!open_conversation_id.is_empty()),
                DingTalkEvent::Other(kind) => assert_eq!(kind, &envelope.event_type),
            }
        }
        Err(err) => assert!(matches!(err, CallbackError::MalformedEvent), "{err:?}"),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn encrypt_then_decrypt_is_the_identity(
        key in aes_key(),
        token in any::<String>(),
        random in any::<[u8; 16]>(),
        message in any::<String>(),
        receiver in any::<String>(),
    ) {
        let crypto = CallbackCrypto::new(&token, &key).expect("43 alphanumerics are a key");
        let encrypt = crypto.encrypt_with_random(&random, &message, &receiver).expect("encrypt");
        let decrypted = crypto.decrypt(&encrypt, &[receiver.as_str()]).expect("decrypt");
        prop_assert_eq!(&decrypted.message, &message);
        prop_assert_eq!(&decrypted.receiver, &receiver);
        // The signature verifies, in any case, and fails for another timestamp.
        let signature = crypto.signature("1795000400000", "nonce", &encrypt);
        prop_assert!(crypto.verify_signature(&signature.to_uppercase(), "1795000400000", "nonce", &encrypt).is_ok());
        prop_assert_eq!(
            crypto.verify_signature(&signature, "1795000400001", "nonce", &encrypt),
            Err(CryptoError::SignatureMismatch)
        );
    }

    #[test]
    fn a_reply_decrypts_to_its_message(message in any::<String>(), receiver in "[a-z0-9]{0,24}") {
        let crypto = crypto();
        let reply = crypto.reply(&message, &receiver, "1795000400000", "n0nce").expect("reply");
        prop_assert!(crypto.verify_signature(&reply.msg_signature, &reply.time_stamp, &reply.nonce, &reply.encrypt).is_ok());
        prop_assert_eq!(crypto.decrypt(&reply.encrypt, &[]).expect("decrypt").message, message);
    }

    #[test]
    fn any_key_text_builds_a_codec_or_is_refused(key in any::<String>(), short in "[A-Za-z0-9]{0,50}") {
        for key in [key, short] {
            match CallbackCrypto::new("t", &key) {
                Ok(_) => prop_assert!(key.len() == 43 && key.bytes().all(|b| b.is_ascii_alphanumeric())),
                Err(err) => prop_assert_eq!(err, CryptoError::InvalidAesKey),
            }
        }
    }

    #[test]
    fn arbitrary_text_never_decrypts_by_accident(encrypt in any::<String>()) {
        match crypto().decrypt(&encrypt, &["dingabcdefghijklmnop"]) {
            Ok(d) => prop_assert_eq!(d.receiver, "dingabcdefghijklmnop"),
            Err(err) => prop_assert!(is_decrypt_error(err), "{err:?}"),
        }
    }

    #[test]
    fn arbitrary_ciphertext_blocks_are_a_typed_error(
        blocks in prop::collection::vec(any::<[u8; 16]>(), 0..12),
        extra in prop::collection::vec(any::<u8>(), 0..3),
    ) {
        use base64::Engine as _;
        let mut bytes: Vec<u8> = blocks.concat();
        bytes.extend(extra);
        let encrypt = base64::engine::general_purpose::STANDARD.encode(&bytes);
        if let Err(err) = crypto().decrypt(&encrypt, &[]) {
            prop_assert!(is_decrypt_error(err), "{err:?}");
        }
    }

    #[test]
    fn damaged_ciphertext_is_a_typed_error_or_still_for_us(
        message in any::<String>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in prop::option::of(any::<usize>()),
    ) {
        let crypto = crypto();
        let encrypt = crypto.encrypt_with_random(&[7; 16], &message, "dingabcdefghijklmnop").expect("encrypt");
        let damaged = String::from_utf8_lossy(&damage(&encrypt, &edits, cut)).into_owned();
        match crypto.decrypt(&damaged, &["dingabcdefghijklmnop"]) {
            Ok(d) => prop_assert_eq!(d.receiver, "dingabcdefghijklmnop"),
            Err(err) => prop_assert!(is_decrypt_error(err), "{err:?}"),
        }
    }

    #[test]
    fn signatures_of_arbitrary_text_verify_only_themselves(
        parts in prop::collection::vec(any::<String>(), 3),
        given in any::<String>(),
    ) {
        let crypto = crypto();
        let expected = crypto.signature(&parts[0], &parts[1], &parts[2]);
        prop_assert_eq!(expected.len(), 40);
        let result = crypto.verify_signature(&given, &parts[0], &parts[1], &parts[2]);
        prop_assert_eq!(result.is_ok(), given.trim().to_ascii_lowercase() == expected);
    }

    #[test]
    fn arbitrary_bodies_give_the_encrypt_field_or_are_malformed(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
        value in json(),
        encrypt in any::<String>(),
    ) {
        for body in [bytes, serde_json::to_vec(&value).expect("json")] {
            match encrypted_field(&body) {
                Ok(found) => {
                    let parsed: Value = serde_json::from_slice(&body).expect("was JSON");
                    prop_assert_eq!(parsed["encrypt"].as_str(), Some(found.as_str()));
                }
                Err(err) => prop_assert!(matches!(err, CallbackError::MalformedBody)),
            }
        }
        let body = serde_json::to_vec(&json!({"encrypt": encrypt})).expect("json");
        prop_assert_eq!(encrypted_field(&body).ok(), Some(encrypt));
    }

    #[test]
    fn arbitrary_messages_parse_or_are_malformed(message in any::<String>()) {
        check_envelope(&message);
    }

    #[test]
    fn arbitrary_json_events_parse_or_are_malformed(value in json()) {
        check_envelope(&value.to_string());
    }

    #[test]
    fn mutated_events_parse_or_are_malformed(which in 0usize..4, changes in mutations()) {
        let valid = &valid_events()[which];
        prop_assert!(parse_event(&valid.to_string(), NOW_MS).is_ok());
        check_envelope(&mutate(valid, &changes).to_string());
    }

    #[test]
    fn event_times_of_any_size_parse(
        time in prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), Just(-100_000_000_000i64)],
        field in prop::sample::select(vec!["EventTime", "eventTime", "operateTime", "timeStamp"]),
        as_text in any::<bool>(),
    ) {
        let cid = "cid==";
        let mut event = json!({"EventType": "im_cool_app_install", "openConversationId": cid, "title": "t"});
        event[field] = if as_text { time.to_string().into() } else { time.into() };
        check_envelope(&event.to_string());
        event["EventType"] = "chat_update_title".into();
        check_envelope(&event.to_string());
    }

    #[test]
    fn query_parameters_are_read_or_named_missing(
        params in prop::collection::btree_map(
            prop::sample::select(vec!["msg_signature", "signature", "timestamp", "timeStamp", "nonce", "other"]),
            any::<String>(),
            0..6,
        ),
    ) {
        match CallbackQuery::from_params(|name| params.get(name).cloned()) {
            Ok(query) => {
                prop_assert!(!query.signature.is_empty() && !query.timestamp.is_empty() && !query.nonce.is_empty());
            }
            Err(err) => prop_assert!(matches!(err, CallbackError::MissingParameter(_)), "{err:?}"),
        }
    }
}

/// Regression: an event time of `i64::MIN` (seconds or milliseconds) overflowed the
/// seconds → milliseconds conversion (`abs`) and panicked.
#[test]
fn the_smallest_event_time_is_not_a_panic() {
    for field in ["EventTime", "operateTime"] {
        let event = json!({"EventType": "im_cool_app_install", "openConversationId": "cid==",
                           field: i64::MIN});
        let envelope = parse_event(&event.to_string(), NOW_MS).expect("parses");
        assert_eq!(envelope.event_ms, i64::MIN);
    }
}
