//! The H5 app's service: login-free DingTalk identity, account association (link
//! codes, or an exact profile-email match), and incidents seen and acted on by the
//! associated member.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::clock::{Clock, rfc3339};
use crate::dingtalk::{AppCredentials, DingTalkClient, DingTalkError};
use crate::domain::incident::{Incident, IncidentStatus, OperationRecord, RecordKind};
use crate::domain::integration::Integration;
use crate::domain::member::{Binding, Member};
use crate::http::ApiError;
use crate::infra::session::{SESSION_SECONDS, Session, SessionError, SessionKey};
use crate::services::incident_actions::{Action, ActionError, IncidentActions};
use crate::services::incident_reader::{IncidentDetail, IncidentReader};
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
    store: Store,
    dingtalk: DingTalkClient,
    clock: Arc<dyn Clock>,
    actions: IncidentActions,
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
    /// automatically when the DingTalk profile's email matches exactly one member.
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
        if self
            .store
            .binding_of_user(integration_id, &user.userid)
            .await?
            .is_none()
        {
            self.associate_by_profile(&integration, &user.userid, &user.name)
                .await?;
        }
        let now = self.clock.now_secs();
        let session = Session {
            iid: integration_id.to_string(),
            uid: user.userid.clone(),
            name: user.name.clone(),
            exp: now + SESSION_SECONDS,
            sid: uuid::Uuid::new_v4().simple().to_string(),
        };
        info!(integration_id, "H5 login");
        Ok(LoginAnswer {
            session: key.issue(&session),
            expires_at: rfc3339(session.exp * 1000),
            me: self.me(&session).await?,
        })
    }

    async fn associate_by_profile(
        &self,
        integration: &Integration,
        user_id: &str,
        name: &str,
    ) -> Result<(), H5Error> {
        let profile = match self
            .dingtalk
            .user_profile(AppCredentials::from(integration), user_id)
            .await
        {
            Ok(profile) => profile,
            Err(DingTalkError::PermissionDenied { .. } | DingTalkError::Rejected { .. }) => {
                return Ok(());
            }
            Err(err) => {
                warn!(error = %err, "profile lookup failed; association by profile skipped");
                return Ok(());
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
        }
        Ok(())
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

    /// Who the session belongs to.
    pub async fn me(&self, session: &Session) -> Result<Me, H5Error> {
        let binding = self
            .store
            .binding_of_user(&session.iid, &session.uid)
            .await?;
        let member = match &binding {
            Some(b) => self.store.get_member(&session.iid, &b.member).await?,
            None => None,
        };
        Ok(Me {
            user: json!({"userid": session.uid, "name": session.name}),
            member: member.map(|m| MemberView {
                email: m.email,
                name: m.name,
                licensed: m.licensed,
            }),
            associated_via: binding.map(|b| b.via),
        })
    }

    /// Associates the session's DingTalk user with a member by a one-time link code.
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
        self.me(session).await
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

    async fn member_of(&self, session: &Session) -> Result<Member, H5Error> {
        let binding = self
            .store
            .binding_of_user(&session.iid, &session.uid)
            .await?
            .ok_or_else(|| H5Error::Forbidden("your DingTalk account is not associated yet: enter the link code from your admin".into()))?;
        self.store
            .get_member(&session.iid, &binding.member)
            .await?
            .ok_or_else(|| {
                H5Error::Forbidden("the associated member no longer exists; associate again".into())
            })
    }

    /// Incidents for the page: `mine` (open ones sent to me) or `group` (sent to a group chat).
    pub async fn incidents(
        &self,
        session: &Session,
        view: &str,
        chat: Option<&str>,
    ) -> Result<Vec<Incident>, H5Error> {
        // Readers are members: an unassociated person sees nothing (403).
        let member = self.member_of(session).await?;
        let all = self.store.list_incidents(&session.iid).await?;
        match view {
            "group" => {
                let cid = chat.filter(|c| !c.is_empty()).ok_or_else(|| {
                    H5Error::Invalid(
                        "cid",
                        "the group view needs the group's openConversationId".into(),
                    )
                })?;
                let title = self
                    .store
                    .get_chat(&session.iid, cid)
                    .await?
                    .and_then(|c| c.title);
                let (open, resolved): (Vec<Incident>, Vec<Incident>) = all
                    .into_iter()
                    .filter(|i| {
                        i.targets
                            .chats
                            .iter()
                            .any(|c| c == cid || Some(c) == title.as_ref())
                    })
                    .partition(|i| i.status != IncidentStatus::Resolved);
                Ok(open
                    .into_iter()
                    .chain(resolved.into_iter().take(20))
                    .collect())
            }
            _ => Ok(all
                .into_iter()
                .filter(|i| i.status != IncidentStatus::Resolved)
                .filter(|i| {
                    i.targets.members.contains(&member.email)
                        || i.assignees.contains(&member.email)
                        || i.targets.dingtalk_user_ids.contains(&session.uid)
                })
                .collect()),
        }
    }

    /// "Who is on call" (the schedules announcing in group `cid`, or all) and the
    /// person's shifts in the next 14 days.
    pub async fn oncall(&self, session: &Session, cid: Option<&str>) -> Result<Value, H5Error> {
        use crate::domain::oncall_schedule::ms_to_rfc3339;
        use crate::domain::oncall_timeline::{on_call_at, shifts};
        let member = self.member_of(session).await?;
        let (schedules, members, chats) = futures::try_join!(
            self.store.list_schedules(&session.iid),
            self.store.list_members(&session.iid),
            self.store.list_chats(&session.iid),
        )?;
        let name_of = |email: &str| {
            members
                .iter()
                .find(|m| m.email == email)
                .map_or_else(|| email.to_string(), |m| m.name.clone())
        };
        let now_ms = self.clock.now_ms();
        let horizon = now_ms + 14 * 86_400_000;
        let cid = cid.filter(|c| !c.is_empty());
        let mut board = Vec::new();
        let mut mine = Vec::new();
        for schedule in &schedules {
            let tz = schedule.tz();
            let timeline = shifts(schedule, now_ms, horizon);
            for shift in timeline.iter().filter(|s| s.member == member.email) {
                mine.push(
                    json!({"schedule": schedule.name, "start": ms_to_rfc3339(tz, shift.start_ms),
                    "end": ms_to_rfc3339(tz, shift.end_ms), "source": shift.source}),
                );
            }
            if cid.is_some() && schedule.chat.as_deref() != cid {
                continue;
            }
            let now = on_call_at(schedule, now_ms);
            let next = timeline
                .iter()
                .find(|s| s.start_ms >= now.until_ms && !now.members.contains(&s.member));
            let chat_title = schedule.chat.as_ref().map(|c| {
                chats
                    .iter()
                    .find(|g| &g.open_conversation_id == c)
                    .and_then(|g| g.title.clone())
                    .unwrap_or_else(|| c.clone())
            });
            board.push(json!({
                "id": schedule.id, "name": schedule.name, "chat": chat_title,
                "now": now.members.iter().map(|e| json!({"email": e, "name": name_of(e)})).collect::<Vec<_>>(),
                "until": ms_to_rfc3339(tz, now.until_ms),
                "next": next.map(|s| json!({"email": s.member, "name": name_of(&s.member), "start": ms_to_rfc3339(tz, s.start_ms)})),
            }));
        }
        mine.sort_by(|a, b| a["start"].as_str().cmp(&b["start"].as_str()));
        Ok(json!({"schedules": board, "my_shifts": mine}))
    }

    /// One incident with its timeline.
    pub async fn incident(
        &self,
        session: &Session,
        incident_id: &str,
    ) -> Result<IncidentDetail, H5Error> {
        self.member_of(session).await?;
        let detail = IncidentReader::new(self.store.clone())
            .detail(incident_id)
            .await
            .map_err(|_| H5Error::NotFound("incident"))?;
        if detail.incident.integration_id != session.iid {
            return Err(H5Error::NotFound("incident"));
        }
        Ok(detail)
    }

    /// Applies an action as the session's member (bound and licensed).
    pub async fn act(
        &self,
        session: &Session,
        incident_id: &str,
        action: &str,
        (duration, member): (Option<&str>, Option<&str>),
        version: Option<u64>,
    ) -> Result<Incident, H5Error> {
        let action = Action::parse(action, duration, member).ok_or_else(|| {
            H5Error::Invalid(
                "action",
                "action must be ack, resolve, snooze (30m, 2h, 24h), escalate or reassign (with a member)".into(),
            )
        })?;
        let member = self.member_of(session).await?;
        self.actions
            .apply(&session.iid, incident_id, &member, action, version)
            .await
            .map_err(|err| match err {
                ActionError::NotFound => H5Error::NotFound("incident"),
                ActionError::NotAllowed(m) => H5Error::Forbidden(m),
                ActionError::Conflict(now) => H5Error::Conflict(now),
                ActionError::NotApplicable(m) => H5Error::Invalid("action", m),
                ActionError::Store(e) => H5Error::Store(e),
            })
    }
}
