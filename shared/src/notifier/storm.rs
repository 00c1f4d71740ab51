//! Storm control: past `storm_threshold` new incidents in a group within the window,
//! further incidents fold into the group's digest instead of a message each. With
//! robot messages the digest is sent once per window; with cards it is one card
//! updated in place at most every 5 s, and a fold that finds the 5 s slot taken
//! queues one trailing refresh, so the card always ends up showing every fold.
//!
//! Economy mode: once the month's DingTalk calls pass 80 % of the quota, `info`
//! alerts fold into the group's digest whatever the storm count, so what is left of
//! the budget goes to warnings and critical alerts.

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tracing::{info, warn};

use super::{JobError, Notifier, callback_route_key, render};
use crate::dingtalk::{AppCredentials, DingTalkError};
use crate::governor::Priority;
use crate::incident::{Incident, RecordKind, Severity};
use crate::integration::{ChatStatus, GroupChat, Integration};
use crate::store::{DeliveryStep, Digest, StepState, StoreError};

/// Shortest time between two updates of a digest card, in ms.
const REFRESH_MS: i64 = 5_000;

/// When a window's digest items may expire (seconds since the epoch).
fn expiry(window: i64, window_secs: i64) -> i64 {
    (window + 2) * window_secs + 3600
}

impl Notifier {
    /// Folds the incident into the group's digest when the group is in a storm;
    /// returns whether it folded.
    pub(super) async fn fold_if_storm(
        &self,
        integration: &Integration,
        incident: &Incident,
        chat: &GroupChat,
        label: &str,
    ) -> Result<bool, StoreError> {
        let now_ms = self.clock.now_ms();
        let window_secs = i64::from(integration.storm_window_secs.max(1));
        let window = now_ms.div_euclid(1000) / window_secs;
        let expires = expiry(window, window_secs);
        let cid = &chat.open_conversation_id;
        let count = self
            .store
            .count_chat_incident(&integration.id, cid, window, expires)
            .await?;
        let storm = count > u64::from(integration.storm_threshold);
        // The usage read is only needed outside a storm.
        let economy = !storm && self.economy_mode(integration, incident, now_ms).await;
        if !storm && !economy {
            return Ok(false);
        }
        self.store
            .finish_step(
                &incident.id,
                "chat",
                cid,
                DeliveryStep::Alert,
                StepState::Sent,
                "digest",
                None,
                None,
            )
            .await?;
        let month = crate::governor::month_of(now_ms, &integration.timezone);
        self.store
            .add_usage(&integration.id, &month, "folded", false)
            .await?;
        crate::governor::emit_metric(&integration.id, "Folded", 1.0, "Count", now_ms);
        let digest = self
            .store
            .push_digest(&integration.id, cid, window, &incident.title, expires)
            .await?;
        self.record(
            incident,
            RecordKind::Folded,
            Some(label.to_string()),
            if economy {
                format!(
                    "economy mode (over {}% of the month's DingTalk calls used): info alert folded into the group's digest ({} folded in this window)",
                    crate::governor::THRESHOLDS[0],
                    digest.folded
                )
            } else {
                format!(
                    "alert storm in this group: folded into the group's digest ({} folded in this window)",
                    digest.folded
                )
            },
        )
        .await;
        let first = self
            .store
            .mark_once(&integration.id, &format!("DIGEST#{cid}#{window}"), expires)
            .await?;
        if first {
            if let Err(err) = self
                .send_digest(integration, chat, window, &digest, true)
                .await
            {
                warn!(error = %err, "storm digest not sent; a refresh job will send it");
                self.queue_digest_refresh(&integration.id, cid, window, true, 1)
                    .await;
            }
            return Ok(true);
        }
        if integration.card_template_id.is_none() {
            return Ok(true);
        }
        let slot = now_ms.div_euclid(REFRESH_MS);
        if self
            .take_update_slot(integration, cid, window, slot)
            .await?
        {
            if let Err(err) = self
                .send_digest(integration, chat, window, &digest, false)
                .await
            {
                warn!(error = %err, "storm digest card not updated");
            }
        } else if self
            .store
            .mark_once(
                &integration.id,
                &format!("DIGESTTAIL#{cid}#{window}#{slot}"),
                expires,
            )
            .await?
        {
            // This slot's update went out before this fold: one refresh after the slot.
            let to_slot_end = (slot + 1) * REFRESH_MS - now_ms;
            let delay = i32::try_from(to_slot_end.div_euclid(1000) + 1).unwrap_or(6);
            self.queue_digest_refresh(&integration.id, cid, window, false, delay)
                .await;
        }
        Ok(true)
    }

    /// Whether an `info` incident is folded to save the month's budget (from 80 %).
    async fn economy_mode(
        &self,
        integration: &Integration,
        incident: &Incident,
        now_ms: i64,
    ) -> bool {
        if incident.severity != Severity::Info {
            return false;
        }
        // Read, not this instance's last-seen total: other instances may have used it.
        let month = crate::governor::month_of(now_ms, &integration.timezone);
        let Ok(usage) = self.store.month_usage(&integration.id, &month).await else {
            return false;
        };
        usage.total * 100 >= integration.monthly_quota.max(1) * crate::governor::THRESHOLDS[0]
    }

    /// Takes the digest card's update slot `slot` (one update per 5 s); false when an
    /// update in that slot went out already.
    async fn take_update_slot(
        &self,
        integration: &Integration,
        cid: &str,
        window: i64,
        slot: i64,
    ) -> Result<bool, StoreError> {
        let window_secs = i64::from(integration.storm_window_secs.max(1));
        self.store
            .mark_once(
                &integration.id,
                &format!("DIGESTUPD#{cid}#{window}#{slot}"),
                expiry(window, window_secs),
            )
            .await
    }

    /// Queues a `digest_refresh` job (`create`: the first digest send failed).
    async fn queue_digest_refresh(
        &self,
        integration_id: &str,
        cid: &str,
        window: i64,
        create: bool,
        delay_secs: i32,
    ) {
        let Some(jobs) = &self.jobs else {
            warn!(
                integration_id,
                "no job queue: the storm digest refresh is skipped"
            );
            return;
        };
        let job = json!({"type": "digest_refresh", "integration_id": integration_id,
                         "chat": cid, "window": window, "create": create});
        if let Err(err) = jobs
            .sqs
            .send_message()
            .queue_url(&jobs.queue_url)
            .message_body(job.to_string())
            .delay_seconds(delay_secs.clamp(0, 900))
            .send()
            .await
        {
            warn!(integration_id, error = %aws_sdk_sqs::error::DisplayErrorContext(err), "storm digest refresh not queued");
        }
    }

    /// `{"type": "digest_refresh", "integration_id", "chat", "window", "create"}`:
    /// brings a group's digest up to date (or sends it, when `create`).
    pub(super) async fn digest_refresh(&self, job: &Value) -> Result<(), JobError> {
        let integration = self.job_integration(job).await?;
        let (Some(cid), Some(window)) = (
            job.get("chat").and_then(Value::as_str),
            job.get("window").and_then(Value::as_i64),
        ) else {
            return Err(JobError::Malformed(
                "digest_refresh job without chat or window".into(),
            ));
        };
        let create = job.get("create").and_then(Value::as_bool).unwrap_or(false);
        let chats = self.chats(&integration.id).await?;
        let Some(chat) = chats
            .iter()
            .find(|c| c.open_conversation_id == cid && c.status == ChatStatus::Installed)
        else {
            info!(integration_id = %integration.id, "the group left; its digest is not refreshed");
            return Ok(());
        };
        let Some(digest) = self.store.get_digest(&integration.id, cid, window).await? else {
            return Ok(());
        };
        let slot = self.clock.now_ms().div_euclid(REFRESH_MS);
        if !create
            && !self
                .take_update_slot(&integration, cid, window, slot)
                .await?
        {
            // An update in this slot already shows these folds.
            return Ok(());
        }
        match self
            .send_digest(&integration, chat, window, &digest, create)
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if err.is_retryable() => Err(JobError::Retry(format!("storm digest: {err}"))),
            Err(err) => {
                warn!(integration_id = %integration.id, error = %err, "storm digest refresh refused");
                Ok(())
            }
        }
    }

    async fn send_digest(
        &self,
        integration: &Integration,
        chat: &GroupChat,
        window: i64,
        digest: &Digest,
        first: bool,
    ) -> Result<(), DingTalkError> {
        let (folded, newest) = (digest.folded, &digest.newest);
        let app = AppCredentials::from(integration).with_priority(Priority::Critical);
        let cid = &chat.open_conversation_id;
        let group = chat.title.clone().unwrap_or_else(|| cid.clone());
        let link = render::in_dingtalk(&format!(
            "{}/dingtalk/{}/app?view=group&cid={}",
            self.base_url(integration),
            integration.id,
            url::form_urlencoded::byte_serialize(cid.as_bytes()).collect::<String>()
        ));
        let mut list: String = newest.iter().map(|t| format!("- {t}\n")).collect();
        let rest = folded.saturating_sub(newest.len() as u64);
        if rest > 0 {
            list.push_str(&format!("- … and {rest} more\n"));
        }
        let text = format!(
            "### <font color=#D83931>🌪 Alert storm</font>\n\nMore than {} new incidents in {} s in this group: further alerts are folded here instead of one message each (and info alerts too while over 80% of the month's DingTalk calls are used).\n\n**{folded} folded**, newest first:\n\n{list}\n[Open the group's incidents]({link})",
            integration.storm_threshold, integration.storm_window_secs
        );
        let title = format!("🌪 Alert storm in {group}: {folded} folded");
        if integration.card_template_id.is_some() {
            let digest_id = hex::encode(Sha256::digest(
                format!("{}:{cid}:{window}", integration.id).as_bytes(),
            ));
            let out_track_id = format!("digest-{}", &digest_id[..24]);
            let mut params = Map::new();
            for (k, v) in [
                ("title", title.as_str()),
                ("description", text.as_str()),
                ("status", "storm"),
                ("severity", "Critical"),
                ("show_ack", "false"),
                ("show_resolve", "false"),
                ("show_snooze", "false"),
                ("details_url", link.as_str()),
            ] {
                params.insert(k.into(), Value::from(v));
            }
            if !first {
                return self.dingtalk.update_card(app, &out_track_id, &params).await;
            }
            let body = json!({
                "cardTemplateId": integration.card_template_id.clone().unwrap_or_default(),
                "outTrackId": out_track_id, "callbackType": "HTTP",
                "callbackRouteKey": callback_route_key(&integration.id),
                "cardData": {"cardParamMap": params}, "userIdType": 1,
                "openSpaceId": format!("dtv1.card//IM_GROUP.{cid}"),
                "imGroupOpenSpaceModel": {"supportForward": true},
                "imGroupOpenDeliverModel": {"robotCode": chat.robot_code.clone().unwrap_or_else(|| integration.client_id.clone())},
            });
            return self.dingtalk.create_and_deliver_card(app, &body).await;
        }
        let message = crate::dingtalk::RobotMessage {
            msg_key: "sampleMarkdown".into(),
            msg_param: json!({"title": title, "text": text}),
        };
        self.dingtalk
            .send_group_message(app, cid, chat.cool_app_code.as_deref(), &message)
            .await
            .map(|_| ())
    }
}
