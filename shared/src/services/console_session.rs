//! Admin console sessions (ARCHITECTURE.md §10): the admin key is exchanged for a
//! short, stateless session kept in an HttpOnly `SameSite=Strict` cookie, plus a
//! CSRF token the page keeps in memory and sends in `X-CSRF-Token`.
//!
//! The session token is `v1.<exp secs>.<nonce>.<sig>`, `sig` being HMAC-SHA256 keyed
//! by `SESSION_SECRET` over `console|<exp>|<nonce>|<sha256(admin key)>`, so rotating
//! the admin key ends every session. The CSRF token is HMAC-SHA256 keyed by
//! `SESSION_SECRET` over `csrf|<session token>`. Signing out records the session's
//! nonce in the table until the session's expiry, so a copied cookie ends with it.
//! Served over https the cookie is `__Host-dtc_session` (no other host can set it).
//! Nothing here is ever logged.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::clock::{Clock, rfc3339};
use crate::http::ApiError;
use crate::infra::admin_key::AdminKey;
use crate::infra::crypto::random_nonce;
use crate::store::{Store, StoreError};

/// How long a console session lasts (seconds).
pub const CONSOLE_SESSION_SECS: i64 = 30 * 60;
/// Name of the session cookie over http (local development).
pub const COOKIE_NAME: &str = "dtc_session";
/// Name of the session cookie over https: the `__Host-` prefix makes browsers
/// refuse it unless it is `Secure`, `Path=/` and set without a `Domain`.
pub const SECURE_COOKIE_NAME: &str = "__Host-dtc_session";
/// Partition of the console's sign-out records (not an integration id: ours are hex).
const SIGNOUT_PARTITION: &str = "console";
/// Header carrying the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Why a console sign-in or session was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleSessionError {
    /// Wrong admin key, or a session token we did not issue (401 `unauthorized`).
    #[error("missing or wrong admin key or console session")]
    Unauthorized,
    /// The session is past its expiry (401 `session_expired`).
    #[error("the console session has expired; sign in again")]
    Expired,
    /// A state-changing request with the cookie but without the right CSRF token (403).
    #[error("missing or wrong X-CSRF-Token for this console session")]
    CsrfFailed,
    /// No admin key is configured (503).
    #[error("the admin API is disabled: ADMIN_API_KEY is not configured")]
    AdminDisabled,
    /// No `SESSION_SECRET`: console sessions cannot be issued (503).
    #[error("console sessions are not available: SESSION_SECRET is missing")]
    NoSessionSecret,
    /// The admin key could not be read (503).
    #[error("{0}")]
    KeyUnavailable(String),
    /// The session was signed out (401 `signed_out`).
    #[error("this console session was signed out; sign in again")]
    SignedOut,
    /// The sign-out records could not be read or written (500).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ConsoleSessionError> for ApiError {
    fn from(err: ConsoleSessionError) -> Self {
        let message = err.to_string();
        match err {
            ConsoleSessionError::Unauthorized => ApiError::new(401, "unauthorized", message),
            ConsoleSessionError::Expired => ApiError::new(401, "session_expired", message),
            ConsoleSessionError::CsrfFailed => ApiError::new(403, "csrf_failed", message),
            ConsoleSessionError::AdminDisabled => ApiError::new(503, "admin_api_disabled", message),
            ConsoleSessionError::NoSessionSecret => {
                ApiError::new(503, "console_unavailable", message)
            }
            ConsoleSessionError::KeyUnavailable(_) => {
                ApiError::new(503, "admin_key_unavailable", message)
            }
            ConsoleSessionError::SignedOut => ApiError::new(401, "signed_out", message),
            ConsoleSessionError::Store(e) => ApiError::internal(&e),
        }
    }
}

/// A session just issued: the cookie value, its CSRF token and expiry.
#[derive(Clone)]
pub struct IssuedSession {
    /// The cookie value (a secret: never logged).
    pub token: String,
    /// The CSRF token the page keeps in memory.
    pub csrf: String,
    /// Expiry, Unix seconds.
    pub exp: i64,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuedSession(exp {}, <redacted>)", self.exp)
    }
}

impl IssuedSession {
    /// The JSON answer of `POST`/`GET /console/api/session`.
    pub fn answer(&self) -> serde_json::Value {
        serde_json::json!({"csrf": self.csrf, "expires_at": rfc3339(self.exp * 1000)})
    }
}

/// Issues and checks console sessions.
#[derive(Clone)]
pub struct ConsoleSessions {
    admin_key: Arc<AdminKey>,
    secret: Option<Vec<u8>>,
    clock: Arc<dyn Clock>,
    /// Where sign-outs are recorded (none: sign-out only clears the cookie).
    store: Option<Store>,
}

impl ConsoleSessions {
    /// Sessions signed with `session_secret`, tied to `admin_key`.
    pub fn new(
        admin_key: Arc<AdminKey>,
        session_secret: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            admin_key,
            secret: session_secret
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec()),
            clock,
            store: None,
        }
    }

    /// Records sign-outs in `store` and refuses signed-out sessions.
    pub fn with_sign_outs(mut self, store: Store) -> Self {
        self.store = Some(store);
        self
    }

    /// The admin key's value, or why there is none.
    async fn expected_key(&self) -> Result<String, ConsoleSessionError> {
        match self.admin_key.expected().await {
            Ok(Some(key)) => Ok(key.expose().to_string()),
            Ok(None) => Err(ConsoleSessionError::AdminDisabled),
            Err(err) => Err(ConsoleSessionError::KeyUnavailable(err.to_string())),
        }
    }

    /// Constant-time check of a presented admin key (digests equalise the lengths).
    pub async fn check_admin_key(&self, presented: &str) -> Result<(), ConsoleSessionError> {
        let expected = self.expected_key().await?;
        let presented = presented.trim();
        let matches: bool = Sha256::digest(presented.as_bytes())
            .ct_eq(&Sha256::digest(expected.as_bytes()))
            .into();
        if presented.is_empty() || !matches {
            return Err(ConsoleSessionError::Unauthorized);
        }
        Ok(())
    }

    fn mac(&self, payload: &str) -> Result<Hmac<Sha256>, ConsoleSessionError> {
        let secret = self
            .secret
            .as_deref()
            .ok_or(ConsoleSessionError::NoSessionSecret)?;
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .map_err(|_| ConsoleSessionError::NoSessionSecret)?;
        mac.update(payload.as_bytes());
        Ok(mac)
    }

    fn signed_payload(exp: i64, nonce: &str, key: &str) -> String {
        format!("console|{exp}|{nonce}|{}", hex::encode(Sha256::digest(key)))
    }

    fn csrf_of(&self, token: &str) -> Result<String, ConsoleSessionError> {
        let mac = self.mac(&format!("csrf|{token}"))?;
        Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// Exchanges the admin key for a new session (a fresh nonce every time).
    pub async fn sign_in(&self, presented: &str) -> Result<IssuedSession, ConsoleSessionError> {
        self.check_admin_key(presented).await?;
        self.issue_until(self.clock.now_secs() + CONSOLE_SESSION_SECS)
            .await
    }

    /// Issues a session expiring at `exp` (Unix seconds) for the current admin key.
    pub async fn issue_until(&self, exp: i64) -> Result<IssuedSession, ConsoleSessionError> {
        let key = self.expected_key().await?;
        let nonce = random_nonce(24);
        let sig = self
            .mac(&Self::signed_payload(exp, &nonce, &key))?
            .finalize()
            .into_bytes();
        let token = format!("v1.{exp}.{nonce}.{}", URL_SAFE_NO_PAD.encode(sig));
        let csrf = self.csrf_of(&token)?;
        Ok(IssuedSession { token, csrf, exp })
    }

    /// Verifies a session cookie value: forged or garbled → `Unauthorized`, past its
    /// expiry → `Expired`.
    pub async fn verify(&self, token: &str) -> Result<IssuedSession, ConsoleSessionError> {
        let key = self.expected_key().await?;
        let parts: Vec<&str> = token.trim().split('.').collect();
        let [version, exp, nonce, sig] = parts.as_slice() else {
            return Err(ConsoleSessionError::Unauthorized);
        };
        let exp: i64 = exp
            .parse()
            .ok()
            .filter(|n: &i64| n.to_string() == *exp)
            .ok_or(ConsoleSessionError::Unauthorized)?;
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| ConsoleSessionError::Unauthorized)?;
        if *version != "v1" || nonce.is_empty() {
            return Err(ConsoleSessionError::Unauthorized);
        }
        self.mac(&Self::signed_payload(exp, nonce, &key))?
            .verify_slice(&sig)
            .map_err(|_| ConsoleSessionError::Unauthorized)?;
        let now = self.clock.now_secs();
        if exp <= now {
            return Err(ConsoleSessionError::Expired);
        }
        if let Some(store) = &self.store
            && store
                .claimed(SIGNOUT_PARTITION, &format!("signout#{nonce}"), now)
                .await?
        {
            return Err(ConsoleSessionError::SignedOut);
        }
        let token = token.trim().to_string();
        let csrf = self.csrf_of(&token)?;
        Ok(IssuedSession { token, csrf, exp })
    }

    /// Signs a session out (its CSRF token required): it is refused from now on,
    /// wherever its cookie was copied. A session already invalid has nothing to end.
    pub async fn sign_out(
        &self,
        token: &str,
        csrf_header: Option<&str>,
    ) -> Result<(), ConsoleSessionError> {
        match self.authorize(token, "DELETE", csrf_header).await {
            Ok(()) => {}
            Err(
                ConsoleSessionError::Unauthorized
                | ConsoleSessionError::Expired
                | ConsoleSessionError::SignedOut,
            ) => return Ok(()),
            Err(other) => return Err(other),
        }
        let parts: Vec<&str> = token.trim().split('.').collect();
        let (Some(store), [_, exp, nonce, _]) = (&self.store, parts.as_slice()) else {
            return Ok(());
        };
        let now = self.clock.now_secs();
        let exp = exp.parse::<i64>().unwrap_or(now);
        store
            .claim(
                SIGNOUT_PARTITION,
                &format!("signout#{nonce}"),
                now,
                (exp - now).max(0) + 60,
            )
            .await?;
        Ok(())
    }

    /// Verifies the cookie and, unless `method` is GET or HEAD, the CSRF header.
    pub async fn authorize(
        &self,
        token: &str,
        method: &str,
        csrf_header: Option<&str>,
    ) -> Result<(), ConsoleSessionError> {
        let session = self.verify(token).await?;
        if matches!(method, "GET" | "HEAD") {
            return Ok(());
        }
        let presented = csrf_header.unwrap_or_default().trim();
        let matches: bool = Sha256::digest(presented.as_bytes())
            .ct_eq(&Sha256::digest(session.csrf.as_bytes()))
            .into();
        if presented.is_empty() || !matches {
            return Err(ConsoleSessionError::CsrfFailed);
        }
        Ok(())
    }
}

/// The session cookie's name: `__Host-` prefixed when served over https.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

/// The `Set-Cookie` value that stores `token` for 30 minutes.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={CONSOLE_SESSION_SECS}{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that clears the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// The session cookie's value among `Cookie` header values, if any (only the name
/// of this mode: over https a plain `dtc_session` another host set is ignored).
pub fn cookie_value<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
    secure: bool,
) -> Option<&'a str> {
    let wanted = cookie_name(secure);
    cookie_headers
        .into_iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == wanted && !value.is_empty())
        .map(|(_, value)| value.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::domain::Secret;

    fn sessions(key: &str, clock: &FixedClock) -> ConsoleSessions {
        ConsoleSessions::new(
            Arc::new(AdminKey::Given(Secret::new(key))),
            Some("session-secret"),
            Arc::new(clock.clone()),
        )
    }

    #[tokio::test]
    async fn sessions_expire_check_csrf_and_end_with_the_key() {
        let clock = FixedClock::at_ms(1_000_000_000);
        let s = sessions("admin-key-0123456789abcdef", &clock);
        assert_eq!(
            s.sign_in("wrong").await.err(),
            Some(ConsoleSessionError::Unauthorized)
        );
        let issued = s
            .sign_in("admin-key-0123456789abcdef")
            .await
            .expect("signed in");
        assert!(issued.token.starts_with("v1."));
        assert_eq!(
            s.verify(&issued.token).await.expect("valid").csrf,
            issued.csrf
        );
        assert!(s.authorize(&issued.token, "GET", None).await.is_ok());
        assert_eq!(
            s.authorize(&issued.token, "POST", Some("nope")).await,
            Err(ConsoleSessionError::CsrfFailed)
        );
        assert!(
            s.authorize(&issued.token, "POST", Some(&issued.csrf))
                .await
                .is_ok()
        );
        let padded = issued.token.replace("v1.", "v1.+");
        assert_eq!(
            s.verify(&padded).await.err(),
            Some(ConsoleSessionError::Unauthorized),
            "only the canonical expiry verifies"
        );
        let forged = issued.token.replace("v1.", "v1.9");
        assert_eq!(
            s.verify(&forged).await.err(),
            Some(ConsoleSessionError::Unauthorized)
        );
        let rotated = sessions("another-admin-key-0123456789", &clock);
        assert_eq!(
            rotated.verify(&issued.token).await.err(),
            Some(ConsoleSessionError::Unauthorized)
        );
        clock.advance_ms(CONSOLE_SESSION_SECS * 1000);
        assert_eq!(
            s.verify(&issued.token).await.err(),
            Some(ConsoleSessionError::Expired)
        );
    }

    #[test]
    fn cookies_are_parsed() {
        assert_eq!(
            cookie_value(["a=1; dtc_session=v1.2.n.s", "b=2"], false),
            Some("v1.2.n.s")
        );
        assert_eq!(cookie_value(["dtc_session="], false), None);
        // Over https only the __Host- cookie counts: another host can set a plain one.
        assert_eq!(cookie_value(["dtc_session=v1.2.n.s"], true), None);
        assert_eq!(
            cookie_value(["__Host-dtc_session=v1.2.n.s"], true),
            Some("v1.2.n.s")
        );
        assert!(session_cookie("t", true).starts_with("__Host-dtc_session=t;"));
        assert!(session_cookie("t", true).ends_with("; Secure"));
        assert!(clear_cookie(true).starts_with("__Host-dtc_session=;"));
    }
}
