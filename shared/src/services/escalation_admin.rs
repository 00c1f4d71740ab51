//! Escalation policies and routes of an integration (admin API, ARCHITECTURE.md
//! §9): validated against the group chat list and the members, with a new
//! version on every change (incidents keep the snapshot they opened with).

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::Value;

use crate::clock::{Clock, rfc3339};
use crate::domain::ValidationError;
use crate::domain::escalation::{EscalationPolicy, PolicyDirectory, PolicySpec, validate_policy};
use crate::domain::routing::{self, Route};
use crate::services::integration_center::CenterError;
use crate::store::Store;

/// What a policy may name: the integration's chats, members and schedules.
struct Known {
    chats: HashSet<String>,
    members: HashSet<String>,
    schedules: HashSet<String>,
}

impl PolicyDirectory for Known {
    fn has_chat(&self, cid: &str) -> bool {
        self.chats.contains(cid)
    }
    fn has_member(&self, email: &str) -> bool {
        self.members.contains(&email.trim().to_ascii_lowercase())
    }
    fn has_schedule(&self, id: &str) -> bool {
        self.schedules.contains(id)
    }
}

/// The escalation admin service.
#[derive(Clone)]
pub struct EscalationAdmin {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl EscalationAdmin {
    /// The service on `store`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    async fn require_integration(&self, integration_id: &str) -> Result<(), CenterError> {
        match self.store.get_integration(integration_id).await? {
            Some(_) => Ok(()),
            None => Err(CenterError::NotFound),
        }
    }

    /// Parses and validates a policy body; member emails are normalised.
    async fn spec(&self, integration_id: &str, body: &Value) -> Result<PolicySpec, CenterError> {
        let mut spec: PolicySpec = serde_path_to_error::deserialize(body.clone())
            .map_err(ValidationError::from_json_path)?;
        for layer in &mut spec.layers {
            for email in &mut layer.targets.members {
                *email = email.trim().to_ascii_lowercase();
            }
        }
        let known = Known {
            chats: self.store.live_chat_ids(integration_id).await?,
            members: self.store.member_emails(integration_id).await?,
            schedules: self
                .store
                .list_schedules(integration_id)
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect(),
        };
        validate_policy(&spec, &known)?;
        Ok(spec)
    }

    async fn name_taken(
        &self,
        integration_id: &str,
        name: &str,
        except: &str,
    ) -> Result<(), CenterError> {
        let taken = self
            .store
            .list_policies(integration_id)
            .await?
            .iter()
            .any(|p| p.name == name.trim() && p.id != except);
        if taken {
            return Err(ValidationError::new(
                "name",
                format!("a policy named {name:?} exists already"),
            )
            .into());
        }
        Ok(())
    }

    /// `POST …/escalation-policies`: a new policy at version 1.
    pub async fn create(
        &self,
        integration_id: &str,
        body: &Value,
    ) -> Result<EscalationPolicy, CenterError> {
        self.require_integration(integration_id).await?;
        let spec = self.spec(integration_id, body).await?;
        self.name_taken(integration_id, &spec.name, "").await?;
        let id = format!("pol_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let policy = EscalationPolicy::from_spec(id, 1, spec, &rfc3339(self.clock.now_ms()));
        self.store.create_policy(integration_id, &policy).await?;
        crate::services::preflight::ensure_daily_best_effort(
            &self.store,
            integration_id,
            self.clock.now_ms(),
        )
        .await;
        Ok(policy)
    }

    /// `PUT …/escalation-policies/{id}`: the next version.
    pub async fn replace(
        &self,
        integration_id: &str,
        id: &str,
        body: &Value,
    ) -> Result<EscalationPolicy, CenterError> {
        self.require_integration(integration_id).await?;
        let current = self.get(integration_id, id).await?;
        let spec = self.spec(integration_id, body).await?;
        self.name_taken(integration_id, &spec.name, id).await?;
        if spec.name.trim() != current.name {
            let routes = self.store.get_routes(integration_id).await?;
            if let Some(route) = routes.iter().find(|r| r.policy.trim() == current.name) {
                return Err(ValidationError::new(
                    "name",
                    format!(
                        "route {:?} names this policy {:?}: change the routes first (or name the policy by id there)",
                        route.name, current.name
                    ),
                )
                .into());
            }
        }
        let mut policy = EscalationPolicy::from_spec(
            id.to_string(),
            current.version + 1,
            spec,
            &rfc3339(self.clock.now_ms()),
        );
        policy.created_at = current.created_at;
        self.store.replace_policy(integration_id, &policy).await?;
        Ok(policy)
    }

    /// `GET …/escalation-policies/{id}`.
    pub async fn get(
        &self,
        integration_id: &str,
        id: &str,
    ) -> Result<EscalationPolicy, CenterError> {
        self.require_integration(integration_id).await?;
        self.store
            .get_policy(integration_id, id)
            .await?
            .ok_or(CenterError::Missing("escalation policy"))
    }

    /// `GET …/escalation-policies`, by name.
    pub async fn list(&self, integration_id: &str) -> Result<Vec<EscalationPolicy>, CenterError> {
        self.require_integration(integration_id).await?;
        let mut policies = self.store.list_policies(integration_id).await?;
        policies.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(policies)
    }

    /// `DELETE …/escalation-policies/{id}`: incidents that follow it finish on
    /// their snapshot; routes naming it are refused until changed.
    pub async fn delete(&self, integration_id: &str, id: &str) -> Result<Value, CenterError> {
        self.require_integration(integration_id).await?;
        let policy = self.get(integration_id, id).await?;
        let routes = self.store.get_routes(integration_id).await?;
        if let Some(route) = routes
            .iter()
            .find(|r| r.policy == policy.id || r.policy == policy.name)
        {
            return Err(ValidationError::new(
                "policy",
                format!(
                    "route {:?} uses this policy: change the routes first",
                    route.name
                ),
            )
            .into());
        }
        if !self.store.delete_policy(integration_id, id).await? {
            return Err(CenterError::Missing("escalation policy"));
        }
        Ok(serde_json::json!({"deleted": id}))
    }

    /// `GET …/routes`.
    pub async fn routes(&self, integration_id: &str) -> Result<Vec<Route>, CenterError> {
        self.require_integration(integration_id).await?;
        Ok(self.store.get_routes(integration_id).await?)
    }

    /// `PUT …/routes`: the whole ordered list, each naming an existing policy.
    pub async fn put_routes(
        &self,
        integration_id: &str,
        body: &Value,
    ) -> Result<Vec<Route>, CenterError> {
        self.require_integration(integration_id).await?;
        let routes = routing::parse_routes(body)?;
        let policies = self.store.list_policies(integration_id).await?;
        routing::validate_routes(&routes, |reference| {
            policies
                .iter()
                .any(|p| p.id == reference || p.name == reference)
        })?;
        self.store.put_routes(integration_id, &routes).await?;
        Ok(routes)
    }
}
