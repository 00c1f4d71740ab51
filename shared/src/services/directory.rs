//! The member directory (on-call accounts) and DingTalk bindings, for the admin API.

use std::sync::Arc;

use serde_json::Value;
use tracing::info;

use crate::clock::{Clock, rfc3339};
use crate::domain::ValidationError;
use crate::domain::integration::is_email;
use crate::domain::locale::Locale;
use crate::domain::member::{Binding, Member};
use crate::services::incident_actions::IncidentActions;
use crate::services::integration_center::CenterError;
use crate::services::replay::{Associated, HeldReplay, Replayed};
use crate::store::Store;

/// The member directory service.
#[derive(Clone)]
pub struct MemberDirectory {
    store: Store,
    clock: Arc<dyn Clock>,
    replay: HeldReplay,
}

impl MemberDirectory {
    /// A directory on `store`; a binding replays the person's held click through
    /// `actions`.
    pub fn new(store: Store, clock: Arc<dyn Clock>, actions: IncidentActions) -> Self {
        let replay = HeldReplay::new(store.clone(), clock.clone(), actions);
        Self {
            store,
            clock,
            replay,
        }
    }

    async fn require_integration(&self, id: &str) -> Result<(), CenterError> {
        match self.store.get_integration(id).await? {
            Some(_) => Ok(()),
            None => Err(CenterError::NotFound),
        }
    }

    /// Creates or updates a member from `{email, name?, licensed?}`.
    pub async fn put_member(
        &self,
        integration_id: &str,
        body: &Value,
    ) -> Result<Member, CenterError> {
        self.require_integration(integration_id).await?;
        let map = body
            .as_object()
            .ok_or_else(|| ValidationError::new("body", "must be a JSON object"))?;
        if let Some(unknown) = map
            .keys()
            .find(|k| !matches!(k.as_str(), "email" | "name" | "licensed"))
        {
            return Err(ValidationError::new(unknown, "is not a known field").into());
        }
        let email = map
            .get("email")
            .and_then(Value::as_str)
            .map(|e| e.trim().to_lowercase())
            .filter(|e| is_email(e))
            .ok_or_else(|| ValidationError::new("email", "must be an email address"))?;
        let name = match map.get("name") {
            None | Some(Value::Null) => email.split('@').next().unwrap_or_default().to_string(),
            Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 128 => {
                n.trim().to_string()
            }
            Some(_) => {
                return Err(ValidationError::new("name", "must be 1 to 128 characters").into());
            }
        };
        let licensed = match map.get("licensed") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(ValidationError::new("licensed", "must be true or false").into()),
        };
        let now = rfc3339(self.clock.now_ms());
        let created_at = self
            .store
            .get_member(integration_id, &email)
            .await?
            .map_or_else(|| now.clone(), |m| m.created_at);
        let member = Member {
            email,
            name,
            licensed,
            created_at,
            updated_at: now,
        };
        self.store.put_member(integration_id, &member).await?;
        info!(integration_id, "member saved");
        Ok(member)
    }

    /// Every member.
    pub async fn members(&self, integration_id: &str) -> Result<Vec<Member>, CenterError> {
        self.require_integration(integration_id).await?;
        Ok(self.store.list_members(integration_id).await?)
    }

    /// Every binding.
    pub async fn bindings(&self, integration_id: &str) -> Result<Vec<Binding>, CenterError> {
        self.require_integration(integration_id).await?;
        Ok(self.store.list_bindings(integration_id).await?)
    }

    /// Binds a DingTalk user to a member from `{member: email}` (admin association),
    /// then applies the action they clicked while not associated, if they hold one
    /// (replay after association, as in the H5 app): what became of it.
    pub async fn bind(
        &self,
        integration_id: &str,
        user_id: &str,
        body: &Value,
    ) -> Result<(Binding, Option<Replayed>), CenterError> {
        self.require_integration(integration_id).await?;
        if user_id.is_empty()
            || user_id.len() > 64
            || !user_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(
                ValidationError::new("dingtalk_user_id", "must be a DingTalk userId").into(),
            );
        }
        let email = body
            .get("member")
            .and_then(Value::as_str)
            .map(|e| e.trim().to_lowercase())
            .ok_or_else(|| ValidationError::new("member", "must be the member's email"))?;
        let Some(member) = self.store.get_member(integration_id, &email).await? else {
            return Err(ValidationError::new(
                "member",
                format!("no member {email}: add the member first"),
            )
            .into());
        };
        let binding = Binding {
            dingtalk_user_id: user_id.to_string(),
            member: email,
            dingtalk_name: None,
            via: "admin".into(),
            bound_at: rfc3339(self.clock.now_ms()),
        };
        self.store.bind(integration_id, &binding).await?;
        info!(integration_id, "binding saved");
        let who = Associated {
            integration_id,
            user_id,
            name: user_id,
            locale: Locale::EnUs,
        };
        let replayed = self.replay.replay(who, &member).await;
        Ok((binding, replayed))
    }

    /// Issues a one-time link code for a member: 8 characters, valid 15 minutes,
    /// single use (the member enters it in the H5 app to associate DingTalk).
    pub async fn link_code(&self, integration_id: &str, email: &str) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        let email = email.trim().to_lowercase();
        if self
            .store
            .get_member(integration_id, &email)
            .await?
            .is_none()
        {
            return Err(CenterError::Missing("member"));
        }
        const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| {
            CenterError::Store(crate::store::StoreError::Dynamo(format!(
                "no randomness: {e}"
            )))
        })?;
        let code: String = bytes
            .iter()
            .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
            .collect();
        let expires = self.clock.now_secs() + 900;
        self.store
            .put_link_code(integration_id, &code, &email, expires)
            .await?;
        info!(integration_id, "link code issued");
        Ok(
            serde_json::json!({"code": code, "member": email, "expires_at": rfc3339(expires * 1000)}),
        )
    }

    /// The audit log of binding changes.
    pub async fn audit(
        &self,
        integration_id: &str,
    ) -> Result<Vec<crate::domain::incident::OperationRecord>, CenterError> {
        self.require_integration(integration_id).await?;
        Ok(self.store.list_audit(integration_id).await?)
    }

    /// Removes a binding.
    pub async fn unbind(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Binding, CenterError> {
        self.require_integration(integration_id).await?;
        self.store
            .unbind(integration_id, user_id)
            .await?
            .ok_or(CenterError::NotFound)
    }

    /// `DELETE …/members/{email}`: refused (409, listing where) while a schedule
    /// or an escalation policy names the member; their binding goes with them.
    pub async fn delete_member(
        &self,
        integration_id: &str,
        email: &str,
    ) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        let email = email.trim().to_lowercase();
        if self
            .store
            .get_member(integration_id, &email)
            .await?
            .is_none()
        {
            return Err(CenterError::Missing("member"));
        }
        let used_in = self.member_uses(integration_id, &email).await?;
        if !used_in.is_empty() {
            return Err(CenterError::InUse(
                format!("{email} is in schedules or escalation policies: take them out first"),
                used_in,
            ));
        }
        if let Some(binding) = self.store.binding_of_member(integration_id, &email).await? {
            self.store
                .unbind(integration_id, &binding.dingtalk_user_id)
                .await?;
        }
        self.store.delete_member(integration_id, &email).await?;
        info!(integration_id, "member deleted");
        Ok(serde_json::json!({"deleted": email}))
    }

    /// Where a member is named: schedule rotations and overrides still ahead,
    /// and policy layers.
    async fn member_uses(
        &self,
        integration_id: &str,
        email: &str,
    ) -> Result<Vec<String>, CenterError> {
        let now_ms = self.clock.now_ms();
        let mut used_in = Vec::new();
        for schedule in self.store.list_schedules(integration_id).await? {
            for (i, rotation) in schedule.rotations.iter().enumerate() {
                if rotation.members.iter().any(|m| m == email) {
                    used_in.push(format!("schedule {:?} rotations[{i}]", schedule.name));
                }
            }
            for o in &schedule.overrides {
                if o.member == email && o.end_ms > now_ms {
                    used_in.push(format!("schedule {:?} override {}", schedule.name, o.id));
                }
            }
        }
        for policy in self.store.list_policies(integration_id).await? {
            for (i, layer) in policy.layers.iter().enumerate() {
                if layer.targets.members.iter().any(|m| m == email) {
                    used_in.push(format!("escalation policy {:?} layers[{i}]", policy.name));
                }
            }
        }
        Ok(used_in)
    }
}
