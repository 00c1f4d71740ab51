//! The H5 app's service: login-free DingTalk identity, account association (link
//! codes, or an exact profile-email match) and the person's language; the incidents
//! seen and acted on by the associated member are in [`super::h5_incidents`].

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::clock::{Clock, rfc3339};
use crate::dingtalk::{AppCredentials, DingTalkClient, DingTalkError};
use crate::domain::incident::{Incident, OperationRecord, RecordKind};
use crate::domain::integration::Integration;
use crate::domain::locale::Locale;
use crate::domain::member::{Binding, Member};
use crate::domain::refusal::Refusal;
use crate::http::ApiError;
use crate::infra::session::{SESSION_SECONDS, Session, SessionError, SessionKey};
use crate::services::incident_actions::IncidentActions;
use crate::services::replay::{HeldView, Replayed};
use crate::store::{Redeemed, Store, StoreError};

/// Wrong link codes a person may enter per 15 minutes.
pub const MAX_LINK_ATTEMPTS: u64 = 5;
const ATTEMPT_WINDOW_SECS: i64 = 900;

/// Why an H5 call failed.
#[derive(Debug, thiserror::Error)]
pub enum H5Error {
    /// No valid session, or DingTalk refused the auth code.
    #[error("{0}")]
    Unauthorized(String),
    /// Not associated, or not licensed.
    #[error("{0}")]
    Forbidden(String),
    /// No such integration or incident.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A field is wrong.
    #[error("{1}")]
    Invalid(&'static str, String),
    /// Someone acted first; the incident as it is now.
    #[error("the incident changed meanwhile; here is its current state")]
    Conflict(Box<Incident>),
    /// Too many wrong link codes.
    #[error("too many wrong codes; wait 15 minutes and ask for a new code")]
    TooManyAttempts,
    /// Nothing is held for an associated person: they act directly.
    #[error("your account is associated: act on the incident directly")]
    AlreadyAssociated,
    /// DingTalk or configuration trouble on our side.
    #[error("{0}")]
    Unavailable(String),
    /// Our store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<H5Error> for ApiError {
    fn from(err: H5Error) -> Self {
        let message = err.to_string();
        match err {
            H5Error::Unauthorized(_) => ApiError::new(401, "unauthorized", message),
            H5Error::Forbidden(_) => ApiError::new(403, "forbidden", message),
            H5Error::NotFound(_) => ApiError::new(404, "not_found", message),
            H5Error::Invalid(field, _) => ApiError::invalid_field(field, message),
            H5Error::Conflict(_) => ApiError::new(409, "conflict", message),
            H5Error::TooManyAttempts => ApiError::new(429, "too_many_attempts", message),
            H5Error::AlreadyAssociated => ApiError::new(409, "already_associated", message),
            H5Error::Unavailable(_) => ApiError::new(503, "unavailable", message),
            H5Error::Store(e) => ApiError::internal(&e),
        }
    }
}

impl From<SessionError> for H5Error {
    fn from(err: SessionError) -> Self {
        Self::Unauthorized(err.to_string())
    }
}

/// A member as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    /// Email.
    pub email: String,
    /// Name.
    pub name: String,
    /// Licensed to act.
    pub licensed: bool,
}

/// Who is using the page.
#[derive(Debug, Clone, Serialize)]
pub struct Me {
    /// DingTalk identity.
    pub user: Value,
    /// The associated member, if any.
    pub member: Option<MemberView>,
    /// How the association was made.
    pub associated_via: Option<String>,
    /// The page's language: the one the person chose, else the integration's.
    pub locale: Locale,
    /// Not associated yet: the action they clicked, held until they associate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<HeldView>,
    /// In the answer to an association (link code, or profile email at login):
    /// what became of the action they held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Replayed>,
}

/// The answer to a login.
#[derive(Debug, Clone, Serialize)]
pub struct LoginAnswer {
    /// Bearer token for the app API.
    pub session: String,
    /// When it expires (RFC 3339).
    pub expires_at: String,
    /// Who.
    #[serde(flatten)]
    pub me: Me,
}

/// The H5 app service.
#[derive(Clone)]
pub struct H5App {
    pub(super) store: Store,
    dingtalk: DingTalkClient,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) actions: IncidentActions,
    sessions: Option<SessionKey>,
}

impl H5App {
    /// The service; without a session key, logins answer 503.
    pub fn new(
        store: Store,
        dingtalk: DingTalkClient,
        clock: Arc<dyn Clock>,
        actions: IncidentActions,
        sessions: Option<SessionKey>,
    ) -> Self {
        Self {
            store,
            dingtalk,
            clock,
            actions,
            sessions,
        }
    }

    /// The integration (404 when unknown).
    pub async fn integration(&self, id: &str) -> Result<Integration, H5Error> {
        self.store
            .get_integration(id)
            .await?
            .ok_or(H5Error::NotFound("integration"))
    }

    fn key(&self) -> Result<&SessionKey, H5Error> {
        self.sessions.as_ref().ok_or_else(|| {
            H5Error::Unavailable("the app is not configured: SESSION_SECRET is missing".into())
        })
    }

    /// Checks a bearer token.
    pub fn authenticate(
        &self,
        integration_id: &str,
        token: Option<&str>,
    ) -> Result<Session, H5Error> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(|| {
            H5Error::Unauthorized("no session; open the app inside DingTalk".into())
        })?;
        Ok(self
            .key()?
            .verify(token, integration_id, self.clock.now_secs())?)
    }

    /// Exchanges a login-free auth code for a session; associates the account
    /// automatically when the DingTalk profile's email matches exactly one member
    /// (and then replays the action they held, if any: the answer's `replayed`).
    pub async fn login(&self, integration_id: &str, code: &str) -> Result<LoginAnswer, H5Error> {
        let integration = self.integration(integration_id).await?;
        let key = self.key()?.clone();
        if code.trim().is_empty() || code.len() > 256 {
            return Err(H5Error::Invalid("code", "auth code missing".into()));
        }
        let app = AppCredentials::from(&integration);
        let user = match self.dingtalk.user_by_auth_code(app, code.trim()).await {
            Ok(user) => user,
            Err(err) if err.is_retryable() => {
                return Err(H5Error::Unavailable(format!(
                    "DingTalk is unavailable, try again: {err}"
                )));
            }
            Err(err) => {
                warn!(integration_id, error = %err, "auth code refused");
                return Err(H5Error::Unauthorized(
                    "DingTalk refused the login code (expired or already used); reopen the app"
                        .into(),
                ));
            }
        };
        let associated = if self
            .store
            .binding_of_user(integration_id, &user.userid)
            .await?
            .is_none()
        {
            self.associate_by_profile(&integration, &user.userid, &user.name)
                .await?
        } else {
            None
        };
        let now = self.clock.now_secs();
        let session = Session {
            iid: integration_id.to_string(),
            uid: user.userid.clone(),
            name: user.name.clone(),
            exp: now + SESSION_SECONDS,
            sid: uuid::Uuid::new_v4().simple().to_string(),
        };
        info!(integration_id, "H5 login");
        let replayed = match &associated {
            Some(member) => self.replay(&session, member).await,
            None => None,
        };
        let mut me = self.me(&session).await?;
        me.replayed = replayed;
        Ok(LoginAnswer {
            session: key.issue(&session),
            expires_at: rfc3339(session.exp * 1000),
            me,
        })
    }

    /// The member the profile's email associated the person with, if one did.
    async fn associate_by_profile(
        &self,
        integration: &Integration,
        user_id: &str,
        name: &str,
    ) -> Result<Option<Member>, H5Error> {
        let profile = match self
            .dingtalk
            .user_profile(AppCredentials::from(integration), user_id)
            .await
        {
            Ok(profile) => profile,
            Err(DingTalkError::PermissionDenied { .. } | DingTalkError::Rejected { .. }) => {
                return Ok(None);
            }
            Err(err) => {
                warn!(error = %err, "profile lookup failed; association by profile skipped");
                return Ok(None);
            }
        };
        let mut emails: Vec<String> = [profile.email, profile.org_email]
            .into_iter()
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty())
            .collect();
        emails.dedup();
        let mut matches = Vec::new();
        for email in &emails {
            if let Some(member) = self.store.get_member(&integration.id, email).await? {
                matches.push(member);
            }
        }
        if let [member] = matches.as_slice() {
            self.bind(&integration.id, user_id, name, member, "profile_match")
                .await?;
            return Ok(matches.pop());
        }
        Ok(None)
    }

    async fn bind(
        &self,
        integration_id: &str,
        user_id: &str,
        name: &str,
        member: &Member,
        via: &str,
    ) -> Result<(), H5Error> {
        let now_ms = self.clock.now_ms();
        let binding = Binding {
            dingtalk_user_id: user_id.to_string(),
            member: member.email.clone(),
            dingtalk_name: Some(name.to_string()),
            via: via.to_string(),
            bound_at: rfc3339(now_ms),
        };
        self.store.bind(integration_id, &binding).await?;
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind: RecordKind::Binding,
            target: Some(member.email.clone()),
            detail: format!(
                "DingTalk user {name} ({user_id}) associated with {} via {via}",
                member.email
            ),
            actor: Some(name.to_string()),
        };
        self.store
            .add_audit(integration_id, now_ms, &record)
            .await?;
        info!(integration_id, via, "account associated");
        Ok(())
    }

    /// Who the session belongs to, and the page's language.
    pub async fn me(&self, session: &Session) -> Result<Me, H5Error> {
        let (found, integration) = futures::try_join!(
            self.store.binding_and_locale(&session.iid, &session.uid),
            self.store.get_integration(&session.iid),
        )?;
        let (binding, chosen) = found.map_or((None, None), |(b, l)| (Some(b), l));
        let member = match &binding {
            Some(b) => self.store.get_member(&session.iid, &b.member).await?,
            None => None,
        };
        let locale = chosen.or(integration.map(|i| i.locale)).unwrap_or_default();
        let held = match &binding {
            Some(_) => None,
            None => self.held_view(&session.iid, &session.uid).await?,
        };
        Ok(Me {
            user: json!({"userid": session.uid, "name": session.name}),
            member: member.map(|m| MemberView {
                email: m.email,
                name: m.name,
                licensed: m.licensed,
            }),
            associated_via: binding.map(|b| b.via),
            locale,
            held,
            replayed: None,
        })
    }

    /// Remembers on the person's binding the language they chose in the page
    /// (`"zh-CN"` or `"en-US"`; `null` follows the integration's again). Only an
    /// associated person has a binding to remember it on (403 otherwise).
    pub async fn set_locale(
        &self,
        session: &Session,
        value: Option<&Value>,
    ) -> Result<Me, H5Error> {
        let invalid = || {
            H5Error::Invalid(
                "locale",
                "locale must be \"zh-CN\" or \"en-US\" (null: follow the integration's)".into(),
            )
        };
        let locale = match value {
            Some(Value::Null) => None,
            Some(Value::String(tag)) => Some(
                Locale::parse(tag)
                    .filter(|l| l.tag().eq_ignore_ascii_case(tag))
                    .ok_or_else(invalid)?,
            ),
            _ => return Err(invalid()),
        };
        if !self
            .store
            .set_binding_locale(&session.iid, &session.uid, locale)
            .await?
        {
            return Err(self.refused(session, Refusal::NotAssociated).await);
        }
        info!(integration_id = %session.iid, locale = locale.map_or("integration", Locale::tag), "H5 language chosen");
        self.me(session).await
    }

    /// Associates the session's DingTalk user with a member by a one-time link code,
    /// then replays the action they held, if any (the answer's `replayed`).
    pub async fn associate(&self, session: &Session, code: &str) -> Result<Me, H5Error> {
        let now = self.clock.now_secs();
        let attempts = self
            .store
            .count_link_attempt(&session.iid, &session.uid, now, ATTEMPT_WINDOW_SECS)
            .await?;
        if attempts > MAX_LINK_ATTEMPTS {
            return Err(H5Error::TooManyAttempts);
        }
        let email = match self.store.redeem_link_code(&session.iid, code, now).await? {
            Redeemed::Member(email) => email,
            Redeemed::Used => {
                return Err(H5Error::Invalid(
                    "code",
                    "this code was already used; ask an admin for a new one".into(),
                ));
            }
            Redeemed::Invalid => {
                return Err(H5Error::Invalid(
                    "code",
                    "wrong or expired code; codes are valid for 15 minutes".into(),
                ));
            }
        };
        let member = self
            .store
            .get_member(&session.iid, &email)
            .await?
            .ok_or_else(|| {
                H5Error::Invalid("code", "the member of this code no longer exists".into())
            })?;
        self.bind(
            &session.iid,
            &session.uid,
            &session.name,
            &member,
            "link_code",
        )
        .await?;
        let replayed = self.replay(session, &member).await;
        let mut me = self.me(session).await?;
        me.replayed = replayed;
        Ok(me)
    }

    /// Removes the session user's association.
    pub async fn unlink(&self, session: &Session) -> Result<Me, H5Error> {
        if let Some(binding) = self.store.unbind(&session.iid, &session.uid).await? {
            let now_ms = self.clock.now_ms();
            let record = OperationRecord {
                at: rfc3339(now_ms),
                kind: RecordKind::Binding,
                target: Some(binding.member.clone()),
                detail: format!(
                    "DingTalk user {} ({}) unlinked from {}",
                    session.name, session.uid, binding.member
                ),
                actor: Some(session.name.clone()),
            };
            self.store.add_audit(&session.iid, now_ms, &record).await?;
        }
        self.me(session).await
    }

    /// The page's language, for refusals: `chosen` (the person's choice, read with
    /// their binding), else the integration's (English when it cannot be read).
    pub(super) async fn page_locale(&self, session: &Session, chosen: Option<Locale>) -> Locale {
        if let Some(chosen) = chosen {
            return chosen;
        }
        match self.store.get_integration(&session.iid).await {
            Ok(Some(integration)) => integration.locale,
            _ => Locale::default(),
        }
    }

    /// The session's associated member (403 when not associated).
    pub(super) async fn member_of(&self, session: &Session) -> Result<Member, H5Error> {
        Ok(self.member_and_choice(session).await?.0)
    }

    /// The session's associated member and the language they chose in the page (one
    /// read of their binding; 403 when not associated).
    pub(super) async fn member_and_choice(
        &self,
        session: &Session,
    ) -> Result<(Member, Option<Locale>), H5Error> {
        let Some((binding, chosen)) = self
            .store
            .binding_and_locale(&session.iid, &session.uid)
            .await?
        else {
            return Err(self.refused(session, Refusal::NotAssociated).await);
        };
        let Some(member) = self.store.get_member(&session.iid, &binding.member).await? else {
            let locale = self.page_locale(session, chosen).await;
            return Err(H5Error::Forbidden(Refusal::MemberGone.text(locale)));
        };
        Ok((member, chosen))
    }

    /// A 403 saying `why` in the language of the integration (the person, not
    /// associated, has chosen none).
    async fn refused(&self, session: &Session, why: Refusal) -> H5Error {
        H5Error::Forbidden(why.text(self.page_locale(session, None).await))
    }
}
