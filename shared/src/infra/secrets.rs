//! Secrets at rest (ARCHITECTURE.md §5.7): the integration's client secret, event
//! aes_key and token, card apiSecret and webhook secret are stored sealed with
//! AES-256-GCM under a data key. In AWS the data key is made by KMS and kept in the
//! table encrypted under the KMS key (envelope encryption: `SECRETS_KMS_KEY_ID`);
//! locally it is `SECRETS_KEY` (base64, 32 bytes), which `make dev` generates.
//! Values stored before sealing existed are read as they are and sealed on the next
//! write (and on first read, by the store).

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

pub use crate::domain::secret::SEALED_PREFIX;

/// Why a secret could not be sealed or opened (ours: 5xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The key is not 32 bytes of base64.
    #[error("the secrets key must be 32 bytes, base64-encoded")]
    BadKey,
    /// A sealed value does not open with this key (wrong key, or tampered with).
    #[error("a stored secret does not open with the configured key")]
    Unopenable,
    /// No randomness for a nonce.
    #[error("no randomness available")]
    NoRandomness,
    /// The KMS data key could not be made or opened.
    #[error("KMS: {0}")]
    Kms(String),
}

/// Seals and opens stored secrets with one data key.
#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(<key redacted>)")
    }
}

impl SecretBox {
    /// A box on a 32-byte data key.
    pub fn new(key: &[u8]) -> Result<Self, SecretsError> {
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| SecretsError::BadKey)?;
        Ok(Self { cipher })
    }

    /// A box on a base64 key (`SECRETS_KEY`).
    pub fn from_base64(text: &str) -> Result<Self, SecretsError> {
        let key = STANDARD
            .decode(text.trim())
            .map_err(|_| SecretsError::BadKey)?;
        Self::new(&key)
    }

    /// A fresh random key, base64 (for `make dev`).
    pub fn generate_key() -> Result<String, SecretsError> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| SecretsError::NoRandomness)?;
        Ok(STANDARD.encode(key))
    }

    /// Whether a stored value is sealed.
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }

    /// Seals a value (a sealed one is returned as it is).
    pub fn seal(&self, plain: &str) -> Result<String, SecretsError> {
        if Self::is_sealed(plain) {
            return Ok(plain.to_string());
        }
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| SecretsError::NoRandomness)?;
        let sealed = self
            .cipher
            .encrypt(&Nonce::from(nonce), plain.as_bytes())
            .map_err(|_| SecretsError::Unopenable)?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!("{SEALED_PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// Opens a stored value; a value stored plain (before sealing) is returned as it is.
    pub fn open(&self, stored: &str) -> Result<String, SecretsError> {
        let Some(text) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| SecretsError::Unopenable)?;
        if bytes.len() < 12 {
            return Err(SecretsError::Unopenable);
        }
        let (nonce, sealed) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| SecretsError::Unopenable)?;
        let plain = self
            .cipher
            .decrypt(&Nonce::from(nonce), sealed)
            .map_err(|_| SecretsError::Unopenable)?;
        String::from_utf8(plain).map_err(|_| SecretsError::Unopenable)
    }
}

/// The data key under KMS key `key_id` (envelope encryption): made once by KMS and
/// kept in the table encrypted, opened by KMS at each cold start.
pub async fn kms_data_key(
    kms: &aws_sdk_kms::Client,
    store: &crate::store::Store,
    key_id: &str,
) -> Result<SecretBox, SecretsError> {
    let kms_error = |e: &dyn std::fmt::Display| SecretsError::Kms(e.to_string());
    let store_error =
        |e: crate::store::StoreError| SecretsError::Kms(format!("data key item: {e}"));
    let blob = match store.get_data_key().await.map_err(store_error)? {
        Some(blob) => blob,
        None => {
            let made = kms
                .generate_data_key()
                .key_id(key_id)
                .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
                .send()
                .await
                .map_err(|e| kms_error(&aws_sdk_kms::error::DisplayErrorContext(e)))?;
            let blob = made
                .ciphertext_blob
                .ok_or(SecretsError::BadKey)?
                .into_inner();
            if !store.put_data_key(&blob).await.map_err(store_error)? {
                // Another instance made one first: use theirs.
                store
                    .get_data_key()
                    .await
                    .map_err(store_error)?
                    .ok_or(SecretsError::BadKey)?
            } else {
                blob
            }
        }
    };
    let opened = kms
        .decrypt()
        .key_id(key_id)
        .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
        .send()
        .await
        .map_err(|e| kms_error(&aws_sdk_kms::error::DisplayErrorContext(e)))?;
    SecretBox::new(opened.plaintext.ok_or(SecretsError::BadKey)?.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_and_hide_the_plain_text() {
        let key = SecretBox::generate_key().expect("key");
        let secrets = SecretBox::from_base64(&key).expect("box");
        let sealed = secrets.seal("sandbox-client-secret-0001").expect("seal");
        assert!(sealed.starts_with(SEALED_PREFIX) && !sealed.contains("sandbox"));
        assert_ne!(
            sealed,
            secrets.seal("sandbox-client-secret-0001").expect("seal"),
            "fresh nonce"
        );
        assert_eq!(
            secrets.open(&sealed).expect("open"),
            "sandbox-client-secret-0001"
        );
        assert_eq!(secrets.seal(&sealed).expect("idempotent"), sealed);
        assert_eq!(
            secrets.open("legacy-plain").expect("legacy"),
            "legacy-plain"
        );
    }

    #[test]
    fn a_wrong_key_or_tampering_is_an_error() {
        let a = SecretBox::from_base64(&SecretBox::generate_key().expect("key")).expect("box");
        let b = SecretBox::from_base64(&SecretBox::generate_key().expect("key")).expect("box");
        let sealed = a.seal("s3cret").expect("seal");
        assert_eq!(b.open(&sealed), Err(SecretsError::Unopenable));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(a.open(&tampered), Err(SecretsError::Unopenable));
        assert!(matches!(
            SecretBox::from_base64("short"),
            Err(SecretsError::BadKey)
        ));
    }
}
