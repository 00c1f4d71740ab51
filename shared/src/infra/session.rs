//! H5 app sessions: a signed, expiring bearer token (HMAC-SHA256 with
//! `SESSION_SECRET`). The page keeps it and sends it in `Authorization`; no cookie
//! authenticates, so state-changing calls are not open to CSRF, and every login
//! issues a fresh token (no fixation).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long a session lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;

/// What a session token carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Integration id the session is valid for.
    pub iid: String,
    /// DingTalk userId.
    pub uid: String,
    /// DingTalk display name.
    pub name: String,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Random session id.
    pub sid: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Not a token we issued (bad shape or signature).
    #[error("invalid session token")]
    Invalid,
    /// Issued for another integration.
    #[error("session belongs to another integration")]
    WrongIntegration,
    /// Past its expiry.
    #[error("session expired; open the app again")]
    Expired,
}

/// Signs and verifies session tokens.
#[derive(Clone)]
pub struct SessionKey(Vec<u8>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// A key from the `SESSION_SECRET` value.
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| {
            <Hmac<Sha256> as KeyInit>::new_from_slice(b"-").expect("fixed key")
        });
        mac.update(payload);
        mac
    }

    /// Issues a token for `session`.
    pub fn issue(&self, session: &Session) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).unwrap_or_default());
        let signature =
            URL_SAFE_NO_PAD.encode(self.mac(payload.as_bytes()).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// Verifies a token for integration `iid` at `now_secs`.
    pub fn verify(&self, token: &str, iid: &str, now_secs: i64) -> Result<Session, SessionError> {
        let (payload, signature) = token.trim().split_once('.').ok_or(SessionError::Invalid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| SessionError::Invalid)?;
        self.mac(payload.as_bytes())
            .verify_slice(&signature)
            .map_err(|_| SessionError::Invalid)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| SessionError::Invalid)?;
        let session: Session = serde_json::from_slice(&bytes).map_err(|_| SessionError::Invalid)?;
        if session.iid != iid {
            return Err(SessionError::WrongIntegration);
        }
        if session.exp <= now_secs {
            return Err(SessionError::Expired);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(exp: i64) -> Session {
        Session {
            iid: "i1".into(),
            uid: "u1".into(),
            name: "Alice".into(),
            exp,
            sid: "s".into(),
        }
    }

    #[test]
    fn tokens_verify_and_refuse_forgeries() {
        let key = SessionKey::new("secret-one");
        let token = key.issue(&session(1_000));
        assert_eq!(key.verify(&token, "i1", 999).expect("valid").uid, "u1");
        assert_eq!(key.verify(&token, "i1", 1_000), Err(SessionError::Expired));
        assert_eq!(
            key.verify(&token, "i2", 999),
            Err(SessionError::WrongIntegration)
        );
        assert_eq!(
            SessionKey::new("other").verify(&token, "i1", 999),
            Err(SessionError::Invalid)
        );
        let (payload, signature) = token.split_once('.').expect("dot");
        let forged_payload = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Session {
                uid: "admin".into(),
                ..session(1_000)
            })
            .expect("json"),
        );
        assert_eq!(
            key.verify(&format!("{forged_payload}.{signature}"), "i1", 999),
            Err(SessionError::Invalid)
        );
        assert_eq!(key.verify(payload, "i1", 999), Err(SessionError::Invalid));
        assert_eq!(key.verify("", "i1", 999), Err(SessionError::Invalid));
    }
}
