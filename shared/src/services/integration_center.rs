//! The integration center: register, show, change and remove integrations, and
//! read their group chat lists (admin API, ARCHITECTURE.md §6.2).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use tracing::info;

use crate::clock::{Clock, rfc3339};
use crate::dingtalk::DingTalkClient;
use crate::domain::integration::{
    Integration, IntegrationChanges, IntegrationView, ingest_token_digest,
};
use crate::domain::{GroupChatView, ValidationError};
use crate::http::ApiError;
use crate::infra::outbound::OutboundPolicy;
use crate::services::event_subscription::refresh_missing_titles;
use crate::store::{Store, StoreError};

/// Why an integration-center call failed.
#[derive(Debug, thiserror::Error)]
pub enum CenterError {
    /// A field failed validation (400, nothing written).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No such integration (404).
    #[error("integration not found")]
    NotFound,
    /// No such resource of an existing integration (404 naming it).
    #[error("{0} not found")]
    Missing(&'static str),
    /// Someone else changed it meanwhile (409).
    #[error("the integration changed meanwhile; read it again and retry")]
    Conflict,
    /// A template does not compile (400 `template_invalid` with the line; nothing saved).
    #[error(transparent)]
    TemplateInvalid(#[from] crate::render::templates::TemplateInvalid),
    /// It is still used elsewhere (409 listing where).
    #[error("{0}")]
    InUse(String, Vec<String>),
    /// Our store failed (500).
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for CenterError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict => Self::Conflict,
            other => Self::Store(other),
        }
    }
}

impl From<CenterError> for ApiError {
    fn from(err: CenterError) -> Self {
        match err {
            CenterError::Invalid(v) => ApiError::invalid_field(v.field.clone(), v.to_string()),
            CenterError::NotFound => ApiError::not_found("integration"),
            CenterError::Missing(what) => ApiError::not_found(what),
            CenterError::Conflict => ApiError::new(409, "conflict", err.to_string()),
            CenterError::InUse(message, used_in) => ApiError::in_use(message, used_in),
            CenterError::TemplateInvalid(t) => ApiError::template_invalid(&t),
            CenterError::Store(e) => ApiError::internal(&e),
        }
    }
}

/// The integration-center service.
#[derive(Clone)]
pub struct IntegrationCenter {
    store: Store,
    dingtalk: DingTalkClient,
    clock: Arc<dyn Clock>,
    outbound_ips: Vec<String>,
    outbound: OutboundPolicy,
}

/// How many missing group titles one chat-list read may look up, and for how long.
const TITLE_REFRESH_LIMIT: usize = 10;
const TITLE_REFRESH_BUDGET: Duration = Duration::from_secs(2);

impl IntegrationCenter {
    /// A service on `store`; `outbound_ips` are shown for DingTalk's allow-list.
    pub fn new(
        store: Store,
        dingtalk: DingTalkClient,
        clock: Arc<dyn Clock>,
        outbound_ips: Vec<String>,
        outbound: OutboundPolicy,
    ) -> Self {
        Self {
            store,
            dingtalk,
            clock,
            outbound_ips,
            outbound,
        }
    }

    /// Refuses a webhook or Alertmanager URL the outbound policy does not allow
    /// (nothing is saved).
    fn check_outbound(&self, changes: &IntegrationChanges) -> Result<(), CenterError> {
        for (field, url) in [
            ("webhook_url", changes.webhook_url()),
            ("alertmanager.url", changes.alertmanager_url()),
        ] {
            if let Some(Err(err)) = url.map(|url| self.outbound.check_url(url)) {
                return Err(ValidationError::new(field, err.to_string()).into());
            }
        }
        Ok(())
    }

    fn view(&self, integration: &Integration, base: &str) -> IntegrationView {
        IntegrationView::new(integration, base, &self.outbound_ips)
    }

    async fn load(&self, id: &str) -> Result<Integration, CenterError> {
        self.store
            .get_integration(id)
            .await?
            .ok_or(CenterError::NotFound)
    }

    /// Registers an integration from a create request. The answer carries the
    /// ingest token, shown this once.
    pub async fn create(&self, body: &Value, base: &str) -> Result<IntegrationView, CenterError> {
        let changes = IntegrationChanges::for_create(body)?;
        if let Some(templates) = changes.templates() {
            crate::render::templates::check(templates)?;
        }
        self.check_outbound(&changes)?;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let ingest_token = new_ingest_token();
        let now = rfc3339(self.clock.now_ms());
        let mut integration = changes.create(id, ingest_token_digest(&ingest_token), &now)?;
        integration.public_base_url = Some(base.to_string());
        let webhook_secret = new_secret("whs_");
        integration.webhook_secret = Some(crate::domain::Secret::new(webhook_secret.clone()));
        self.store.insert_integration(&integration).await?;
        info!(integration_id = %integration.id, "integration created");
        let now_ms = self.clock.now_ms();
        crate::services::preflight::ensure_daily_best_effort(&self.store, &integration.id, now_ms)
            .await;
        let mut view = self.view(&integration, base);
        view.ingest_token = Some(ingest_token);
        view.webhook_secret = Some(webhook_secret);
        Ok(view)
    }

    /// One integration.
    pub async fn get(&self, id: &str, base: &str) -> Result<IntegrationView, CenterError> {
        Ok(self.view(&self.load(id).await?, base))
    }

    /// Every integration, oldest first.
    pub async fn list(&self, base: &str) -> Result<Vec<IntegrationView>, CenterError> {
        Ok(self
            .store
            .list_integrations()
            .await?
            .iter()
            .map(|i| self.view(i, base))
            .collect())
    }

    /// Applies a PATCH (optimistic concurrency on the stored version).
    pub async fn update(
        &self,
        id: &str,
        body: &Value,
        base: &str,
    ) -> Result<IntegrationView, CenterError> {
        let changes = IntegrationChanges::for_update(body)?;
        if let Some(templates) = changes.templates() {
            crate::render::templates::check(templates)?;
        }
        self.check_outbound(&changes)?;
        let mut integration = self.load(id).await?;
        let expected = integration.version;
        let credentials_changed = changes.changes_credentials();
        changes.apply(&mut integration, &rfc3339(self.clock.now_ms()));
        self.store
            .replace_integration(&integration, expected)
            .await?;
        // Incidents written from now on expire with the new retention.
        self.store.forget_retention(id);
        if credentials_changed {
            self.dingtalk
                .invalidate_token(id)
                .await
                .map_err(|e| CenterError::Store(StoreError::Dynamo(e.to_string())))?;
        }
        info!(integration_id = %id, version = integration.version, "integration updated");
        Ok(self.view(&integration, base))
    }

    /// Issues a new ingest token; the old one stops working at once. The answer
    /// carries the new token, shown this once.
    pub async fn rotate_ingest_token(&self, id: &str) -> Result<Value, CenterError> {
        let token = new_ingest_token();
        let at = self
            .rotate(id, |integration| {
                integration.ingest_token_sha256 = ingest_token_digest(&token);
            })
            .await?;
        info!(integration_id = %id, "ingest token rotated");
        Ok(serde_json::json!({"integration_id": id, "ingest_token": token, "rotated_at": at}))
    }

    /// Issues a new webhook signing secret; webhooks are signed with it from now on.
    /// The answer carries the new secret, shown this once.
    pub async fn rotate_webhook_secret(&self, id: &str) -> Result<Value, CenterError> {
        let secret = new_secret("whs_");
        let at = self
            .rotate(id, |integration| {
                integration.webhook_secret = Some(crate::domain::Secret::new(secret.clone()));
            })
            .await?;
        info!(integration_id = %id, "webhook secret rotated");
        Ok(serde_json::json!({"integration_id": id, "webhook_secret": secret, "rotated_at": at}))
    }

    /// Applies `change` to the stored integration (optimistic concurrency); returns when.
    async fn rotate(
        &self,
        id: &str,
        change: impl FnOnce(&mut Integration),
    ) -> Result<String, CenterError> {
        let mut integration = self.load(id).await?;
        let expected = integration.version;
        let now = rfc3339(self.clock.now_ms());
        change(&mut integration);
        integration.version += 1;
        integration.updated_at = now.clone();
        self.store
            .replace_integration(&integration, expected)
            .await?;
        Ok(now)
    }

    /// Removes an integration with everything stored under it.
    pub async fn delete(&self, id: &str) -> Result<(), CenterError> {
        if !self.store.delete_integration(id).await? {
            return Err(CenterError::NotFound);
        }
        info!(integration_id = %id, "integration deleted");
        Ok(())
    }

    /// Checks the app's credentials, registers our card callback route (with a fresh
    /// apiSecret, stored as a secret) and reports what works and what is missing.
    pub async fn verify(&self, id: &str, base: &str) -> Result<Value, CenterError> {
        let mut integration = self.load(id).await?;
        let app = crate::dingtalk::AppCredentials::from(&integration);
        let mut checks = Vec::new();
        let mut ok = true;
        let mut check = |name: &str, passed: bool, detail: String| {
            ok &= passed;
            checks.push(serde_json::json!({"check": name, "ok": passed, "detail": detail}));
        };
        match self.dingtalk.check_credentials(app).await {
            Ok(()) => check(
                "credentials",
                true,
                "Client ID and Client Secret accepted; access token issued".into(),
            ),
            Err(err) => {
                check(
                    "credentials",
                    false,
                    format!("{err}: check the Client ID / Client Secret"),
                );
                return Ok(serde_json::json!({"ok": false, "checks": checks}));
            }
        }
        let callback_url = crate::domain::integration::IntegrationUrls::new(base, id).card_callback;
        let secret = new_secret("");
        let route_key = crate::dingtalk::callback_route_key(id);
        match self
            .dingtalk
            .register_card_callback(app, &route_key, &callback_url, &secret)
            .await
        {
            Ok(()) => {
                let expected = integration.version;
                integration.card_api_secret = Some(crate::domain::Secret::new(secret));
                integration.updated_at = rfc3339(self.clock.now_ms());
                integration.version += 1;
                self.store
                    .replace_integration(&integration, expected)
                    .await?;
                check(
                    "card_callback",
                    true,
                    format!("route {route_key} → {callback_url}"),
                );
            }
            Err(err) => check(
                "card_callback",
                false,
                format!(
                    "{err}: grant Card.Instance.Write (and the card callback permission) to the app"
                ),
            ),
        }
        for (name, passed, detail) in self.readiness(&integration).await? {
            check(name, passed, detail);
        }
        Ok(serde_json::json!({"ok": ok, "checks": checks}))
    }

    /// The setup checks that need no DingTalk call: card template, groups, members.
    async fn readiness(
        &self,
        integration: &Integration,
    ) -> Result<Vec<(&'static str, bool, String)>, CenterError> {
        let id = &integration.id;
        let template = match &integration.card_template_id {
            Some(t) => (true, format!("cards use template {t}")),
            None => (false, "no card_template_id: alerts go out as robot messages with link buttons (set one for in-place cards)".into()),
        };
        let chats = self.store.list_chats(id).await?;
        let installed = chats
            .iter()
            .filter(|c| c.status == crate::domain::ChatStatus::Installed)
            .count();
        let bindings = self.store.list_bindings(id).await?.len();
        let members = self.store.list_members(id).await?.len();
        Ok(vec![
            ("card_template", template.0, template.1),
            (
                "group_chats",
                installed > 0,
                format!(
                    "{installed} group chat(s) have the cool app installed; install it in a group to add it"
                ),
            ),
            (
                "members",
                members > 0,
                format!(
                    "{bindings} of {members} member(s) associated with DingTalk; the others should open the app once"
                ),
            ),
        ])
    }

    /// Month-to-date DingTalk calls by kind, limits, burn rate and projected exhaustion.
    pub async fn usage(&self, id: &str) -> Result<Value, CenterError> {
        use chrono::{Datelike, TimeZone};
        let integration = self.load(id).await?;
        let now_ms = self.clock.now_ms();
        let month = crate::domain::budget::month_of(now_ms, &integration.timezone);
        let usage = self.store.month_usage(id, &month).await?;
        let tz: chrono_tz::Tz = integration
            .timezone
            .parse()
            .unwrap_or(chrono_tz::Asia::Shanghai);
        let now = chrono::DateTime::from_timestamp_millis(now_ms)
            .unwrap_or_default()
            .with_timezone(&tz);
        let start = tz
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .earliest()
            .unwrap_or(now);
        let next = if now.month() == 12 {
            tz.with_ymd_and_hms(now.year() + 1, 1, 1, 0, 0, 0)
        } else {
            tz.with_ymd_and_hms(now.year(), now.month() + 1, 1, 0, 0, 0)
        }
        .earliest()
        .unwrap_or(now);
        let elapsed_days = ((now - start).num_seconds() as f64 / 86_400.0).max(1.0 / 24.0);
        let month_days = (next - start).num_seconds() as f64 / 86_400.0;
        let burn = usage.total as f64 / elapsed_days;
        let quota = integration.monthly_quota;
        let remaining = quota.saturating_sub(usage.total);
        let exhaustion = (burn > 0.0)
            .then(|| now + chrono::Duration::seconds((remaining as f64 / burn * 86_400.0) as i64))
            .filter(|t| *t < next)
            .map(|t| t.format("%Y-%m-%d").to_string());
        let round = |x: f64| (x * 100.0).round() / 100.0;
        Ok(serde_json::json!({
            "month": month,
            "calls": usage.total,
            "by_kind": usage.by_kind,
            "limits": {
                "qps": integration.qps_limit,
                "monthly_quota": quota,
                "reserve_percent": crate::domain::budget::DEFAULT_RESERVE_PERCENT,
                "reserve_from": quota * (100 - crate::domain::budget::DEFAULT_RESERVE_PERCENT) / 100,
            },
            "percent": round(usage.total as f64 * 100.0 / quota.max(1) as f64),
            "burn_rate_per_day": round(burn),
            "projected_month_total": (burn * month_days).round() as u64,
            "projected_exhaustion": exhaustion,
            "throttle_waits": usage.throttle_waits,
            "suppressed": usage.suppressed,
            "folded": usage.folded,
        }))
    }

    /// The group chat list, filling in titles that could not be looked up at install.
    pub async fn list_chats(&self, id: &str) -> Result<Vec<GroupChatView>, CenterError> {
        let integration = self.load(id).await?;
        let mut chats = self.store.list_chats(id).await?;
        refresh_missing_titles(
            &self.store,
            &self.dingtalk,
            self.clock.as_ref(),
            &integration,
            &mut chats,
            TITLE_REFRESH_LIMIT,
            TITLE_REFRESH_BUDGET,
        )
        .await;
        chats.sort_by(|a, b| a.installed_at.cmp(&b.installed_at));
        Ok(chats.iter().map(GroupChatView::from).collect())
    }
}

/// A fresh ingest bearer token: `dti_` and 32 random bytes, base64url.
fn new_ingest_token() -> String {
    new_secret("dti_")
}

/// `prefix` and 32 random bytes, base64url.
fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source is a broken machine; fall back to two v4 UUIDs (also random).
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}
