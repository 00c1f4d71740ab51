//! DingTalk callback cryptography.
//!
//! * HTTP event subscription: SHA-1 request signatures and the AES-256-CBC message envelope
//!   (`random16 || u32_be(len) || message || receiver`, PKCS#7 padded to **32** bytes, IV = key[..16]).
//! * Interactive-card callbacks: `x-ddpaas-signature` = base64(HMAC-SHA256(api_secret, timestamp)).
//!
//! Nothing in this module panics on untrusted input.

use std::fmt;

use aes::Aes256;
use aes::cipher::array::Array;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type Aes256CbcEnc = cbc::Encryptor<Aes256>;
type Aes256CbcDec = cbc::Decryptor<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// AES block size in bytes.
const AES_BLOCK: usize = 16;
/// DingTalk pads the plaintext buffer PKCS#7-style to a multiple of 32 bytes (not 16).
const PAD_BLOCK: usize = 32;
/// Length of the random prefix of every plaintext buffer.
const RANDOM_LEN: usize = 16;
/// Random prefix plus the big-endian `u32` message length.
const HEADER_LEN: usize = RANDOM_LEN + 4;
/// Length of a DingTalk `aes_key`.
const AES_KEY_CHARS: usize = 43;

/// Base64 engine for the `aes_key`: standard alphabet with padding, but tolerant of
/// non-zero trailing bits (43 chars + `=` leaves 2 such bits for many real keys).
const AES_KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Errors of the DingTalk callback crypto. Messages never contain secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The `aes_key` is not 43 chars of `[A-Za-z0-9]` or does not decode to 32 bytes.
    #[error("invalid aes_key: expected 43 alphanumeric characters decoding to 32 bytes")]
    InvalidAesKey,
    /// The request signature does not match.
    #[error("signature mismatch")]
    SignatureMismatch,
    /// The `encrypt` field is not valid standard base64.
    #[error("ciphertext is not valid base64")]
    InvalidBase64,
    /// The ciphertext is empty or not a multiple of the AES block size.
    #[error("ciphertext length is empty or not a multiple of 16")]
    InvalidCiphertextLength,
    /// The decrypted buffer does not end with valid 32-byte-block PKCS#7 padding.
    #[error("invalid padding in decrypted message")]
    InvalidPadding,
    /// The decrypted buffer is too short or its declared message length runs past its end.
    #[error("invalid message length in decrypted message")]
    InvalidLength,
    /// The message or receiver id is not valid UTF-8.
    #[error("decrypted message is not valid UTF-8")]
    InvalidUtf8,
    /// The receiver id in the message is not one of the accepted ids.
    #[error("receiver id does not match")]
    ReceiverMismatch,
    /// The operating system random number generator failed.
    #[error("system random number generator failed")]
    Random,
    /// The message is longer than `u32::MAX` bytes and cannot be encoded.
    #[error("message too long to encrypt")]
    MessageTooLong,
}

/// Signs, verifies, encrypts and decrypts DingTalk HTTP event-subscription callbacks
/// for one app (`token` + `aes_key` from the developer console).
#[derive(Clone)]
pub struct CallbackCrypto {
    token: String,
    key: [u8; 32],
}

impl fmt::Debug for CallbackCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackCrypto")
            .field("token", &"<redacted>")
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A decrypted callback body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext message (usually a JSON event).
    pub message: String,
    /// The receiver id found in the envelope (AppKey or CorpId).
    pub receiver: String,
}

/// The JSON reply DingTalk expects: `{"msg_signature","timeStamp","nonce","encrypt"}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EncryptedReply {
    /// SHA-1 signature over `[token, timeStamp, nonce, encrypt]`.
    pub msg_signature: String,
    /// Our timestamp (serialized as `timeStamp`).
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// Our nonce.
    pub nonce: String,
    /// Base64 ciphertext of the reply message.
    pub encrypt: String,
}

impl CallbackCrypto {
    /// Creates a codec from the console `token` and 43-char `aes_key`.
    ///
    /// # Errors
    /// [`CryptoError::InvalidAesKey`] if `aes_key` is not 43 ASCII alphanumerics decoding to 32 bytes.
    pub fn new(token: &str, aes_key: &str) -> Result<Self, CryptoError> {
        if aes_key.len() != AES_KEY_CHARS || !aes_key.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CryptoError::InvalidAesKey);
        }
        let mut padded = String::with_capacity(AES_KEY_CHARS + 1);
        padded.push_str(aes_key);
        padded.push('=');
        let decoded = AES_KEY_ENGINE
            .decode(padded.as_bytes())
            .map_err(|_| CryptoError::InvalidAesKey)?;
        let key: [u8; 32] = decoded
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::InvalidAesKey)?;
        Ok(Self {
            token: token.to_owned(),
            key,
        })
    }

    /// Lower-case hex SHA-1 of the lexicographically sorted concatenation of
    /// `[token, timestamp, nonce, encrypt]`.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        let mut parts = [self.token.as_str(), timestamp, nonce, encrypt];
        parts.sort_unstable();
        let mut hasher = Sha1::new();
        for part in parts {
            hasher.update(part.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// Checks `signature` (hex, any case, surrounding whitespace ignored) in constant time.
    ///
    /// # Errors
    /// [`CryptoError::SignatureMismatch`] if it does not match.
    pub fn verify_signature(
        &self,
        signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<(), CryptoError> {
        let expected = self.signature(timestamp, nonce, encrypt);
        let given = signature.trim().to_ascii_lowercase();
        if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            Ok(())
        } else {
            Err(CryptoError::SignatureMismatch)
        }
    }

    /// Encrypts `message` for `receiver` with a fresh OS-random 16-byte prefix.
    ///
    /// # Errors
    /// [`CryptoError::Random`] if the OS RNG fails (no weaker fallback is used);
    /// [`CryptoError::MessageTooLong`] if `message` exceeds `u32::MAX` bytes.
    pub fn encrypt(&self, message: &str, receiver: &str) -> Result<String, CryptoError> {
        let mut random = [0u8; RANDOM_LEN];
        getrandom::fill(&mut random).map_err(|_| CryptoError::Random)?;
        self.encrypt_with_random(&random, message, receiver)
    }

    /// Deterministic encryption with a caller-supplied random prefix (for test vectors).
    ///
    /// # Errors
    /// [`CryptoError::MessageTooLong`] if `message` exceeds `u32::MAX` bytes.
    pub fn encrypt_with_random(
        &self,
        random: &[u8; 16],
        message: &str,
        receiver: &str,
    ) -> Result<String, CryptoError> {
        let msg_len = u32::try_from(message.len()).map_err(|_| CryptoError::MessageTooLong)?;
        let unpadded = HEADER_LEN + message.len() + receiver.len();
        let pad = PAD_BLOCK - unpadded % PAD_BLOCK;
        let mut buf = Vec::with_capacity(unpadded + pad);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&msg_len.to_be_bytes());
        buf.extend_from_slice(message.as_bytes());
        buf.extend_from_slice(receiver.as_bytes());
        // `pad` is in 1..=32, so the cast is lossless.
        buf.resize(unpadded + pad, pad as u8);
        self.cbc_encrypt(&mut buf);
        Ok(STANDARD.encode(&buf))
    }

    /// Decrypts a base64 `encrypt` field (surrounding/embedded whitespace tolerated).
    /// The receiver id must equal one of `accepted_receivers`; an empty list accepts any.
    ///
    /// # Errors
    /// [`CryptoError::InvalidBase64`], [`CryptoError::InvalidCiphertextLength`],
    /// [`CryptoError::InvalidPadding`], [`CryptoError::InvalidLength`],
    /// [`CryptoError::InvalidUtf8`] or [`CryptoError::ReceiverMismatch`].
    pub fn decrypt(
        &self,
        encrypt: &str,
        accepted_receivers: &[&str],
    ) -> Result<Decrypted, CryptoError> {
        let compact: Vec<u8> = encrypt
            .bytes()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let mut buf = STANDARD
            .decode(&compact)
            .map_err(|_| CryptoError::InvalidBase64)?;
        if buf.is_empty() || buf.len() % AES_BLOCK != 0 {
            return Err(CryptoError::InvalidCiphertextLength);
        }
        self.cbc_decrypt(&mut buf);
        let plain = strip_padding(&buf)?;
        let (message, receiver) = parse_plaintext(plain)?;
        if !accepted_receivers.is_empty() && !accepted_receivers.contains(&receiver) {
            return Err(CryptoError::ReceiverMismatch);
        }
        Ok(Decrypted {
            message: message.to_owned(),
            receiver: receiver.to_owned(),
        })
    }

    /// Builds the signed, encrypted JSON reply (fresh random prefix) for `message`
    /// (usually `success`) using our `timestamp` and `nonce`.
    ///
    /// # Errors
    /// Those of [`CallbackCrypto::encrypt`].
    pub fn reply(
        &self,
        message: &str,
        receiver: &str,
        timestamp: &str,
        nonce: &str,
    ) -> Result<EncryptedReply, CryptoError> {
        let encrypt = self.encrypt(message, receiver)?;
        Ok(EncryptedReply {
            msg_signature: self.signature(timestamp, nonce, &encrypt),
            time_stamp: timestamp.to_owned(),
            nonce: nonce.to_owned(),
            encrypt,
        })
    }

    /// AES-256-CBC encrypts a block-aligned buffer in place (no padding added).
    fn cbc_encrypt(&self, buf: &mut [u8]) {
        let (key, iv) = self.key_iv();
        let (blocks, _tail) = Array::slice_as_chunks_mut(buf);
        Aes256CbcEnc::new(&key, &iv).encrypt_blocks(blocks);
    }

    /// AES-256-CBC decrypts a block-aligned buffer in place (no padding removed).
    fn cbc_decrypt(&self, buf: &mut [u8]) {
        let (key, iv) = self.key_iv();
        let (blocks, _tail) = Array::slice_as_chunks_mut(buf);
        Aes256CbcDec::new(&key, &iv).decrypt_blocks(blocks);
    }

    /// The AES key and the IV (= first 16 key bytes).
    fn key_iv(
        &self,
    ) -> (
        aes::cipher::Key<Aes256CbcEnc>,
        aes::cipher::Iv<Aes256CbcEnc>,
    ) {
        let mut iv = [0u8; AES_BLOCK];
        iv.copy_from_slice(&self.key[..AES_BLOCK]);
        (Array::from(self.key), Array::from(iv))
    }
}

/// Removes PKCS#7 padding with block size 32 (pad byte n in 1..=32, last n bytes all n).
fn strip_padding(buf: &[u8]) -> Result<&[u8], CryptoError> {
    let n = usize::from(*buf.last().ok_or(CryptoError::InvalidPadding)?);
    if n == 0 || n > PAD_BLOCK || n > buf.len() {
        return Err(CryptoError::InvalidPadding);
    }
    let split = buf.len() - n;
    let (plain, pad) = buf.split_at(split);
    if pad.iter().any(|&b| usize::from(b) != n) {
        return Err(CryptoError::InvalidPadding);
    }
    Ok(plain)
}

/// Splits `random16 || u32_be(len) || message || receiver` into (message, receiver).
fn parse_plaintext(plain: &[u8]) -> Result<(&str, &str), CryptoError> {
    let len_bytes: [u8; 4] = plain
        .get(RANDOM_LEN..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(CryptoError::InvalidLength)?;
    let msg_len =
        usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| CryptoError::InvalidLength)?;
    let msg_end = HEADER_LEN
        .checked_add(msg_len)
        .ok_or(CryptoError::InvalidLength)?;
    let message = plain
        .get(HEADER_LEN..msg_end)
        .ok_or(CryptoError::InvalidLength)?;
    let receiver = plain.get(msg_end..).ok_or(CryptoError::InvalidLength)?;
    let message = std::str::from_utf8(message).map_err(|_| CryptoError::InvalidUtf8)?;
    let receiver = std::str::from_utf8(receiver).map_err(|_| CryptoError::InvalidUtf8)?;
    Ok((message, receiver))
}

/// HMAC-SHA256 of `timestamp` keyed by `api_secret`.
fn card_callback_mac(api_secret: &str, timestamp: &str) -> HmacSha256 {
    // HMAC accepts keys of any length; `new_from_slice` only fails for fixed-size-key MACs.
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(api_secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(timestamp.as_bytes());
    mac
}

/// `base64(HMAC-SHA256(key = api_secret, msg = timestamp))`: the card callback header
/// `x-ddpaas-signature` for `x-ddpaas-signature-timestamp`.
pub fn card_callback_signature(api_secret: &str, timestamp: &str) -> String {
    STANDARD.encode(
        card_callback_mac(api_secret, timestamp)
            .finalize()
            .into_bytes(),
    )
}

/// Verifies a card callback `x-ddpaas-signature` in constant time (surrounding whitespace ignored).
/// Only the timestamp is covered: callers must also check its freshness.
pub fn verify_card_callback_signature(api_secret: &str, timestamp: &str, signature: &str) -> bool {
    let expected = card_callback_signature(api_secret, timestamp);
    bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes()))
}

/// Random nonce of `len` chars from `[A-Za-z0-9]` (for replies).
///
/// Uses the OS RNG; nonces need not be secret, so if the OS RNG fails it falls back to
/// SHA-256 of the current time, a process-wide counter and the process id rather than panicking.
pub fn random_nonce(len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // Largest multiple of 62 that fits a byte: reject bytes >= 248 to avoid modulo bias.
    const LIMIT: u8 = 248;
    let mut out = String::with_capacity(len);
    let mut fallback_round: u64 = 0;
    while out.len() < len {
        let mut bytes = [0u8; 64];
        if getrandom::fill(&mut bytes).is_err() {
            bytes = fallback_bytes(fallback_round);
            fallback_round = fallback_round.wrapping_add(1);
        }
        for b in bytes {
            if out.len() == len {
                break;
            }
            if b < LIMIT {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    out
}

/// Non-cryptographic fallback bytes for [`random_nonce`].
fn fallback_bytes(round: u64) -> [u8; 64] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut out = [0u8; 64];
    for (i, chunk) in out.chunks_mut(32).enumerate() {
        let digest = Sha256::new()
            .chain_update(nanos.to_le_bytes())
            .chain_update(count.to_le_bytes())
            .chain_update(round.to_le_bytes())
            .chain_update(std::process::id().to_le_bytes())
            .chain_update([u8::try_from(i).unwrap_or_default()])
            .finalize();
        chunk.copy_from_slice(&digest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const VECTORS: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/vectors/dingtalk-crypto.json"
    ));

    fn vectors() -> Value {
        serde_json::from_str(VECTORS).expect("vector file is valid JSON")
    }

    fn s<'a>(v: &'a Value, field: &str) -> &'a str {
        v[field]
            .as_str()
            .unwrap_or_else(|| panic!("missing string field {field}"))
    }

    fn entries<'a>(v: &'a Value, field: &str) -> &'a [Value] {
        let list = v[field].as_array().expect("vector list");
        assert!(!list.is_empty(), "{field} is empty");
        list
    }

    const V2_TOKEN: &str = "flashduty_token_1";
    const V2_KEY: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
    const V2_RECEIVER: &str = "dingabcdefghijklmnop";

    fn v2() -> CallbackCrypto {
        CallbackCrypto::new(V2_TOKEN, V2_KEY).unwrap()
    }

    /// Encrypts an arbitrary block-aligned buffer without any framing or padding.
    fn raw_ciphertext(c: &CallbackCrypto, mut buf: Vec<u8>) -> String {
        assert_eq!(buf.len() % AES_BLOCK, 0);
        c.cbc_encrypt(&mut buf);
        STANDARD.encode(&buf)
    }

    #[test]
    fn encrypt_vectors_match() {
        let v = vectors();
        for e in entries(&v, "encrypt_vectors") {
            let name = s(e, "name");
            let c = CallbackCrypto::new(s(e, "token"), s(e, "aes_key")).unwrap();
            let random: [u8; 16] = s(e, "random").as_bytes().try_into().unwrap();
            let enc = c
                .encrypt_with_random(&random, s(e, "plaintext"), s(e, "receiver"))
                .unwrap();
            assert_eq!(enc, s(e, "encrypt"), "{name} encrypt");
            let sig = c.signature(s(e, "timestamp"), s(e, "nonce"), &enc);
            assert_eq!(sig, s(e, "msg_signature"), "{name} signature");
            c.verify_signature(&sig, s(e, "timestamp"), s(e, "nonce"), &enc)
                .unwrap();
            let d = c.decrypt(&enc, &[s(e, "receiver")]).unwrap();
            assert_eq!(d.message, s(e, "plaintext"), "{name} decrypt");
            assert_eq!(d.receiver, s(e, "receiver"), "{name} receiver");
        }
    }

    #[test]
    fn decrypt_only_vectors_match() {
        let v = vectors();
        for e in entries(&v, "decrypt_only_vectors") {
            let name = s(e, "name");
            let c = CallbackCrypto::new(s(e, "token"), s(e, "aes_key")).unwrap();
            c.verify_signature(
                s(e, "msg_signature"),
                s(e, "timestamp"),
                s(e, "nonce"),
                s(e, "encrypt"),
            )
            .unwrap_or_else(|err| panic!("{name}: {err}"));
            let d = c
                .decrypt(s(e, "encrypt"), &["someOtherAppKey", s(e, "receiver")])
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(d.message, s(e, "plaintext"), "{name}");
            assert_eq!(d.receiver, s(e, "receiver"), "{name}");
        }
    }

    #[test]
    fn card_callback_vectors_match() {
        let v = vectors();
        for e in entries(&v, "card_callback_signatures") {
            let (secret, ts, sig) = (s(e, "api_secret"), s(e, "timestamp"), s(e, "signature"));
            assert_eq!(card_callback_signature(secret, ts), sig);
            assert!(verify_card_callback_signature(secret, ts, sig));
            assert!(!verify_card_callback_signature(secret, "1", sig));
            assert!(!verify_card_callback_signature("other", ts, sig));
            assert!(!verify_card_callback_signature(secret, ts, ""));
        }
    }

    #[test]
    fn signature_is_case_insensitive_and_rejects_wrong() {
        let v = vectors();
        let e = &entries(&v, "encrypt_vectors")[0];
        let c = CallbackCrypto::new(s(e, "token"), s(e, "aes_key")).unwrap();
        let (ts, nonce, enc) = (s(e, "timestamp"), s(e, "nonce"), s(e, "encrypt"));
        let sig = s(e, "msg_signature");
        c.verify_signature(&sig.to_ascii_uppercase(), ts, nonce, enc)
            .unwrap();
        let mut wrong = sig.to_owned();
        wrong.replace_range(0..1, if sig.starts_with('0') { "1" } else { "0" });
        for bad in [wrong.as_str(), "", &sig[..39], "zz"] {
            assert_eq!(
                c.verify_signature(bad, ts, nonce, enc),
                Err(CryptoError::SignatureMismatch)
            );
        }
        assert_eq!(
            c.verify_signature(sig, "1445827045068", nonce, enc),
            Err(CryptoError::SignatureMismatch)
        );
    }

    #[test]
    fn wrong_receiver_is_rejected() {
        let c = v2();
        let enc = c.encrypt("success", V2_RECEIVER).unwrap();
        assert_eq!(
            c.decrypt(&enc, &["dingOther", "dingabcdefghijklmno"]),
            Err(CryptoError::ReceiverMismatch)
        );
        // Empty accepted set accepts any receiver.
        assert_eq!(c.decrypt(&enc, &[]).unwrap().receiver, V2_RECEIVER);
    }

    #[test]
    fn corrupted_base64_is_rejected() {
        let c = v2();
        let enc = c.encrypt("success", V2_RECEIVER).unwrap();
        for bad in [
            format!("{}!", &enc[..enc.len() - 1]),
            format!("*{enc}"),
            enc[..enc.len() - 1].to_owned(),
            "=abc".to_owned(),
        ] {
            assert_eq!(c.decrypt(&bad, &[]), Err(CryptoError::InvalidBase64));
        }
    }

    #[test]
    fn whitespace_around_and_inside_base64_is_tolerated() {
        let c = v2();
        let enc = c.encrypt("success", V2_RECEIVER).unwrap();
        let wrapped = format!("\n {}\n{} \r\n", &enc[..20], &enc[20..]);
        assert_eq!(
            c.decrypt(&wrapped, &[V2_RECEIVER]).unwrap().message,
            "success"
        );
    }

    #[test]
    fn bad_ciphertext_length_is_rejected() {
        let c = v2();
        for len in [0usize, 15, 17, 31] {
            let enc = STANDARD.encode(vec![7u8; len]);
            assert_eq!(
                c.decrypt(&enc, &[]),
                Err(CryptoError::InvalidCiphertextLength),
                "len {len}"
            );
        }
    }

    #[test]
    fn bad_padding_is_rejected() {
        let c = v2();
        let mut cases = Vec::new();
        // Last byte 0.
        let mut buf = vec![1u8; 64];
        buf[63] = 0;
        cases.push(buf);
        // Last byte 33 (> 32).
        let mut buf = vec![33u8; 64];
        buf[0] = 1;
        cases.push(buf);
        // Pad byte 20 but not all of the last 20 bytes equal 20.
        let mut buf = vec![20u8; 64];
        buf[50] = 19;
        cases.push(buf);
        // Pad byte 32 larger than a 16-byte buffer.
        cases.push(vec![32u8; 16]);
        for buf in cases {
            let enc = raw_ciphertext(&c, buf);
            assert_eq!(c.decrypt(&enc, &[]), Err(CryptoError::InvalidPadding));
        }
    }

    #[test]
    fn bad_declared_length_is_rejected() {
        let c = v2();
        // Declared length 1000 with 3 message bytes.
        let mut buf = vec![b'r'; 16];
        buf.extend_from_slice(&1000u32.to_be_bytes());
        buf.extend_from_slice(b"abc");
        let pad = PAD_BLOCK - buf.len() % PAD_BLOCK;
        buf.resize(buf.len() + pad, pad as u8);
        let enc = raw_ciphertext(&c, buf);
        assert_eq!(c.decrypt(&enc, &[]), Err(CryptoError::InvalidLength));
        // u32::MAX declared length.
        let mut buf = vec![b'r'; 16];
        buf.extend_from_slice(&u32::MAX.to_be_bytes());
        buf.resize(32, b'x');
        buf.extend_from_slice(&[32u8; 32]);
        let enc = raw_ciphertext(&c, buf);
        assert_eq!(c.decrypt(&enc, &[]), Err(CryptoError::InvalidLength));
        // Buffer shorter than 20 after unpadding (only 16 bytes of content).
        let mut buf = vec![b'r'; 16];
        buf.resize(32, 16);
        let enc = raw_ciphertext(&c, buf);
        assert_eq!(c.decrypt(&enc, &[]), Err(CryptoError::InvalidLength));
        // Whole buffer is padding.
        let enc = raw_ciphertext(&c, vec![32u8; 32]);
        assert_eq!(c.decrypt(&enc, &[]), Err(CryptoError::InvalidLength));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let c = v2();
        let mut buf = vec![b'r'; 16];
        buf.extend_from_slice(&2u32.to_be_bytes());
        buf.extend_from_slice(&[0xff, 0xfe]);
        buf.extend_from_slice(V2_RECEIVER.as_bytes());
        let pad = PAD_BLOCK - buf.len() % PAD_BLOCK;
        buf.resize(buf.len() + pad, pad as u8);
        let enc = raw_ciphertext(&c, buf);
        assert_eq!(c.decrypt(&enc, &[]), Err(CryptoError::InvalidUtf8));
    }

    #[test]
    fn invalid_aes_key_is_rejected() {
        let bad = [
            "",
            &V2_KEY[..42],
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP+",
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP=",
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP-",
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPé",
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR",
        ];
        for key in bad {
            assert_eq!(
                CallbackCrypto::new("t", key).map(|_| ()),
                Err(CryptoError::InvalidAesKey),
                "{key:?}"
            );
        }
        // Non-zero trailing bits must be accepted (official doc key).
        CallbackCrypto::new("123456", "4g5j64qlyl3zvetqxz5jiocdr586fn2zvjpa8zls3ij").unwrap();
    }

    #[test]
    fn non_ascii_round_trip() {
        let c = v2();
        let msg = "{\"Title\":\"告警群-生产环境 🚨\",\"x\":\"é\"}";
        let enc = c.encrypt(msg, V2_RECEIVER).unwrap();
        let d = c.decrypt(&enc, &[V2_RECEIVER]).unwrap();
        assert_eq!(d.message, msg);
        assert_eq!(d.receiver, V2_RECEIVER);
        // Fresh random prefix each time.
        assert_ne!(enc, c.encrypt(msg, V2_RECEIVER).unwrap());
    }

    #[test]
    fn round_trip_all_pad_sizes() {
        let c = v2();
        for len in 0..80 {
            let msg = "m".repeat(len);
            let enc = c.encrypt(&msg, "rcv").unwrap();
            let d = c.decrypt(&enc, &["rcv"]).unwrap();
            assert_eq!(d.message, msg);
            assert_eq!(d.receiver, "rcv");
        }
    }

    #[test]
    fn reply_verifies_and_decrypts() {
        let c = v2();
        let nonce = random_nonce(16);
        let r = c
            .reply("success", V2_RECEIVER, "1700000000000", &nonce)
            .unwrap();
        assert_eq!(r.time_stamp, "1700000000000");
        assert_eq!(r.nonce, nonce);
        c.verify_signature(&r.msg_signature, &r.time_stamp, &r.nonce, &r.encrypt)
            .unwrap();
        assert_eq!(
            c.decrypt(&r.encrypt, &[V2_RECEIVER]).unwrap().message,
            "success"
        );
        let json: Value = serde_json::to_value(&r).unwrap();
        let obj = json.as_object().unwrap();
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["encrypt", "msg_signature", "nonce", "timeStamp"]);
        let back: EncryptedReply = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn random_nonce_shape() {
        for len in [0usize, 1, 16, 100] {
            let n = random_nonce(len);
            assert_eq!(n.len(), len);
            assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(random_nonce(16), random_nonce(16));
        let f = fallback_bytes(0);
        assert_ne!(f[..32], f[32..]);
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = CallbackCrypto::new("supersecrettoken", V2_KEY).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("supersecrettoken"));
        assert!(!dbg.contains(&format!("{:?}", c.key[0..4].to_vec())));
        assert!(dbg.contains("redacted"));
    }

    #[test]
    fn decrypt_never_panics_on_random_input() {
        let c = v2();
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for i in 0..2000u32 {
            let len = usize::try_from(next() % 160).unwrap();
            // Half the cases block-aligned so that decryption and unpadding are exercised.
            let len = if i % 2 == 0 { len / 16 * 16 } else { len };
            let bytes: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
            let _ = c.decrypt(&STANDARD.encode(&bytes), &[V2_RECEIVER]);
            // Random plaintext with a valid 32-byte pad, so the length parser sees random data.
            if len % 16 == 0 && len > 0 {
                let mut plain = bytes.clone();
                plain.truncate(len / 32 * 32);
                let pad = usize::try_from(next() % 32 + 1).unwrap();
                plain.resize(plain.len() + pad, pad as u8);
                plain.resize(plain.len().div_ceil(16) * 16, pad as u8);
                let _ = c.decrypt(&raw_ciphertext(&c, plain), &[]);
            }
        }
    }
}
