//! The setup checklist of an integration (`GET /api/integrations/{id}/setup`,
//! ARCHITECTURE.md §10): each step of the DingTalk set-up, checked live or from
//! what we have seen (the `SETUP` marker written by the event callback).

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::dingtalk::{AppCredentials, DingTalkClient};
use crate::domain::delivery::{Channel, StepState};
use crate::domain::integration::{Integration, IntegrationView};
use crate::services::integration_center::CenterError;
use crate::store::{SetupMarks, Store};

/// The event types the app must be subscribed to (as DingTalk names them).
pub const SUBSCRIBED_EVENTS: [&str; 3] = [
    "im_cool_app_install",
    "im_cool_app_uninstall",
    "chat_update_title",
];

/// How many recent incidents are looked at for a successful robot send.
const RECENT_INCIDENTS: usize = 10;

/// One step: `ok` true (done), false (broken), null (not yet known).
#[derive(Debug, Clone, Serialize)]
pub struct SetupStep {
    /// Stable step id.
    pub id: &'static str,
    /// Done, broken or unknown.
    pub ok: Option<bool>,
    /// What was checked, or what to do.
    pub detail: String,
    /// More fields of the step (`seen`, `count`, …).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn step(id: &'static str, ok: Option<bool>, detail: impl Into<String>) -> SetupStep {
    SetupStep {
        id,
        ok,
        detail: detail.into(),
        extra: Map::new(),
    }
}

/// The checklist service.
#[derive(Clone)]
pub struct SetupChecklist {
    store: Store,
    dingtalk: DingTalkClient,
    outbound_ips: Vec<String>,
}

impl SetupChecklist {
    /// A checklist reading `store` and asking DingTalk through `dingtalk`.
    pub fn new(store: Store, dingtalk: DingTalkClient, outbound_ips: Vec<String>) -> Self {
        Self {
            store,
            dingtalk,
            outbound_ips,
        }
    }

    /// The checklist of integration `id`; URLs are built on `base`.
    pub async fn check(&self, id: &str, base: &str) -> Result<Value, CenterError> {
        let integration = self
            .store
            .get_integration(id)
            .await?
            .ok_or(CenterError::NotFound)?;
        let marks = self.store.setup_marks(id).await?;
        let steps = vec![
            self.credentials(&integration).await,
            check_url(&marks),
            events(&marks),
            self.cool_app(id).await?,
            card_callback(&integration),
            self.members(id).await?,
            self.permissions(id, &marks).await?,
        ];
        let view = IntegrationView::new(&integration, base, &self.outbound_ips);
        Ok(json!({"steps": steps, "urls": view.urls}))
    }

    /// Live, but through the shared token cache: the page polls every few seconds,
    /// and a cached token was issued for these credentials (a change of them
    /// forgets it), so only a missing or stale token asks DingTalk again; a refusal
    /// of the same credentials is repeated for 30 s without asking.
    async fn credentials(&self, integration: &Integration) -> SetupStep {
        match self
            .dingtalk
            .token_or_recent_refusal(AppCredentials::from(integration))
            .await
        {
            Ok(_) => step(
                "credentials",
                Some(true),
                "Client ID and Client Secret accepted: DingTalk issued an access token",
            ),
            Err(err) => step(
                "credentials",
                Some(false),
                format!("{err}: check the Client ID / Client Secret of the app"),
            ),
        }
    }

    async fn cool_app(&self, id: &str) -> Result<SetupStep, CenterError> {
        let live = self.store.live_chat_ids(id).await?.len();
        let mut s = if live > 0 {
            step(
                "cool_app",
                Some(true),
                format!("the cool app is installed in {live} group chat(s)"),
            )
        } else {
            step(
                "cool_app",
                Some(false),
                "not installed in any group yet: release the app and add the cool app to a group",
            )
        };
        s.extra.insert("count".into(), json!(live));
        Ok(s)
    }

    async fn members(&self, id: &str) -> Result<SetupStep, CenterError> {
        let bound = self.store.list_bindings(id).await?.len();
        let mut s = if bound > 0 {
            step(
                "members",
                Some(true),
                format!("{bound} member(s) bound to a DingTalk account"),
            )
        } else {
            step(
                "members",
                Some(false),
                "no member is bound to a DingTalk account yet: add members and have them open the H5 app (or use a link code)",
            )
        };
        s.extra.insert("count".into(), json!(bound));
        Ok(s)
    }

    /// `qyapi_chat_manage` from group lookups, `qyapi_robot_sendmsg` from robot sends.
    async fn permissions(&self, id: &str, marks: &SetupMarks) -> Result<SetupStep, CenterError> {
        let chats = self.store.list_chats(id).await?;
        let robot_denied = chats.iter().any(|c| {
            c.problem
                .as_deref()
                .is_some_and(|p| p.to_ascii_lowercase().contains("permission"))
        });
        let robot_ok = !robot_denied && self.robot_sent(id).await?;
        let chat = if marks.get("chat_denied_at") > marks.get("chat_ok_at") {
            Some(false)
        } else if marks.get("chat_ok_at").is_some() {
            Some(true)
        } else {
            None
        };
        let robot = if robot_denied {
            Some(false)
        } else if robot_ok {
            Some(true)
        } else {
            None
        };
        let mut missing = Vec::new();
        let mut unknown = Vec::new();
        for (scope, state) in [("qyapi_chat_manage", chat), ("qyapi_robot_sendmsg", robot)] {
            match state {
                Some(false) => missing.push(scope),
                None => unknown.push(scope),
                Some(true) => {}
            }
        }
        let (ok, detail) = if !missing.is_empty() {
            (
                Some(false),
                format!(
                    "DingTalk refused for lack of permission: grant {} to the app",
                    missing.join(", ")
                ),
            )
        } else if !unknown.is_empty() {
            (
                None,
                format!(
                    "not known until DingTalk is called: {} (a group lookup happens on install, a robot send on the first alert)",
                    unknown.join(", ")
                ),
            )
        } else {
            (
                Some(true),
                "group lookups and robot sends succeeded".to_string(),
            )
        };
        let mut s = step("permissions", ok, detail);
        s.extra.insert(
            "scopes".into(),
            json!({"qyapi_chat_manage": chat, "qyapi_robot_sendmsg": robot}),
        );
        Ok(s)
    }

    /// Whether a robot message or card went out for one of the recent incidents.
    async fn robot_sent(&self, id: &str) -> Result<bool, CenterError> {
        let mut incidents = self.store.list_incidents(id).await?;
        incidents.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
        for incident in incidents.iter().take(RECENT_INCIDENTS) {
            let deliveries = self.store.list_deliveries(&incident.id).await?;
            if deliveries.iter().any(|d| {
                d.alert_state == Some(StepState::Sent)
                    && matches!(d.channel, Some(Channel::Robot | Channel::Card))
            }) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

fn check_url(marks: &SetupMarks) -> SetupStep {
    match marks.get("check_url_at") {
        Some(at) => {
            let mut s = step(
                "check_url",
                Some(true),
                format!("DingTalk verified the event subscription URL (check_url at {at})"),
            );
            s.extra.insert("at".into(), json!(at));
            s
        }
        None => step(
            "check_url",
            Some(false),
            "not yet received: save the event subscription URL (with the token and aes_key) in the DingTalk developer console",
        ),
    }
}

fn events(marks: &SetupMarks) -> SetupStep {
    let mut seen = Map::new();
    let mut missing = Vec::new();
    for kind in SUBSCRIBED_EVENTS {
        let at = marks.get(&format!("seen_{kind}"));
        if at.is_none() {
            missing.push(kind);
        }
        seen.insert(kind.to_string(), json!(at));
    }
    let mut s = if missing.is_empty() {
        step("events", Some(true), "every subscribed event was received")
    } else {
        step(
            "events",
            None,
            format!(
                "not received yet: {} (subscribe to them; they arrive when the cool app is installed, removed or a group renamed)",
                missing.join(", ")
            ),
        )
    };
    s.extra.insert("seen".into(), Value::Object(seen));
    s
}

fn card_callback(integration: &Integration) -> SetupStep {
    if integration.card_api_secret.is_some() {
        step(
            "card_callback",
            Some(true),
            "the card callback route is registered with DingTalk",
        )
    } else {
        step(
            "card_callback",
            Some(false),
            "not registered yet: run Verify (POST …/verify) to register the card callback route",
        )
    }
}
