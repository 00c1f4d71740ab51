//! Storm control (ARCHITECTURE.md §2.6): past `storm_threshold` new incidents in a
//! group within the window, further incidents fold into the group's digest instead
//! of a message each. With robot messages the digest is sent once per window; with
//! cards it is one card updated in place at most every 5 s, and a fold that finds
//! the 5 s slot taken queues one trailing refresh, so the card always ends up
//! showing every fold.
//!
//! Economy mode: once the month's DingTalk calls pass 80 % of the quota, `info`
//! alerts fold into the group's digest whatever the storm count, so what is left of
//! the budget goes to warnings and critical alerts.
//!
//! [`StormControl`] decides and counts on the storage ports; the notifier sends.

use std::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};
use tracing::{info, instrument, warn};

use super::{JobError, Notifier};
use crate::clock::rfc3339;
use crate::dingtalk::{AppCredentials, DingTalkError, callback_route_key};
use crate::domain::budget::{Priority, THRESHOLDS, month_of, reaches};
use crate::domain::chat::GroupChat;
use crate::domain::delivery::{
    Channel, DeliveryKey, DeliveryStep, StepOutcome, StepState, TargetKind,
};
use crate::domain::incident::{Incident, OperationRecord, RecordKind, Severity};
use crate::domain::integration::Integration;
use crate::domain::job::Job;
use crate::render::card::{CardDelivery, CardSpace};
use crate::render::robot_markdown::StormDigest;
use crate::render::{self};
use crate::store::ports::{DeliveryLedger, RateCounters};
use crate::store::{Digest, StoreError};

/// Shortest time between two updates of a digest card, in ms.
pub const REFRESH_MS: i64 = 5_000;

/// When a window's digest items may expire (seconds since the epoch).
fn expiry(window: i64, window_secs: i64) -> i64 {
    (window + 2) * window_secs + 3600
}

/// What to do with the group's digest after a fold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestAction {
    /// The window's first fold: send the digest.
    SendFirst,
    /// Update the digest card now (this 5 s slot is ours).
    Update,
    /// This slot's update went out before this fold: refresh once after it.
    RefreshAfter(Duration),
    /// Nothing (robot digests are sent once; a refresh is already queued).
    Nothing,
}

/// What storm control decided for one incident in one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fold {
    /// No storm (and no economy fold): deliver as usual.
    Deliver,
    /// Folded into the group's digest.
    Folded {
        /// The digest after this fold.
        digest: Digest,
        /// The storm window.
        window: i64,
        /// What to do with the digest.
        action: DigestAction,
    },
}

/// Storm decisions and counts, on the storage ports.
pub struct StormControl<'a> {
    /// Storm, usage and once counters.
    pub counters: &'a dyn RateCounters,
    /// Delivery items and records.
    pub ledger: &'a dyn DeliveryLedger,
    /// Now, in Unix ms.
    pub now_ms: i64,
}

impl StormControl<'_> {
    /// Counts the incident for the group and folds it when the group is in a storm
    /// (or economy mode applies); a fold completes the group's alert step.
    pub async fn fold(
        &self,
        integration: &Integration,
        incident: &Incident,
        cid: &str,
        label: &str,
    ) -> Result<Fold, StoreError> {
        let window_secs = i64::from(integration.storm_window_secs.max(1));
        let window = self.now_ms.div_euclid(1000) / window_secs;
        let expires = expiry(window, window_secs);
        let id = &integration.id;
        let count = self
            .counters
            .count_chat_incident(id, cid, window, expires)
            .await?;
        let storm = count > u64::from(integration.storm_threshold);
        // The usage read is only needed outside a storm.
        let economy = !storm && self.economy_mode(integration, incident).await;
        if !storm && !economy {
            return Ok(Fold::Deliver);
        }
        let key = DeliveryKey {
            round: 0,
            incident_id: &incident.id,
            kind: TargetKind::Chat,
            target: cid,
        };
        let folded = StepOutcome {
            step: DeliveryStep::Alert,
            state: StepState::Sent,
            channel: Channel::Digest,
            reference: None,
            error: None,
        };
        self.ledger.finish_step(key, folded).await?;
        let month = month_of(self.now_ms, &integration.timezone);
        self.counters.add_usage(id, &month, "folded", false).await?;
        let digest = self
            .counters
            .push_digest(id, cid, window, &incident.title, expires)
            .await?;
        let detail = if economy {
            format!(
                "economy mode (over {}% of the month's DingTalk calls used): info alert folded into the group's digest ({} folded in this window)",
                THRESHOLDS[0], digest.folded
            )
        } else {
            format!(
                "alert storm in this group: folded into the group's digest ({} folded in this window)",
                digest.folded
            )
        };
        let record = OperationRecord {
            at: rfc3339(self.now_ms),
            kind: RecordKind::Folded,
            target: Some(label.to_string()),
            detail,
            actor: None,
        };
        super::settle::best_effort_record(self.ledger, &incident.id, self.now_ms, &record).await;
        let action = self
            .digest_action(integration, cid, window, expires)
            .await?;
        Ok(Fold::Folded {
            digest,
            window,
            action,
        })
    }

    async fn digest_action(
        &self,
        integration: &Integration,
        cid: &str,
        window: i64,
        expires: i64,
    ) -> Result<DigestAction, StoreError> {
        let id = &integration.id;
        if self
            .counters
            .mark_once(id, &format!("DIGEST#{cid}#{window}"), expires)
            .await?
        {
            return Ok(DigestAction::SendFirst);
        }
        if integration.card_template_id.is_none() {
            return Ok(DigestAction::Nothing);
        }
        let slot = self.now_ms.div_euclid(REFRESH_MS);
        if self
            .take_update_slot(integration, cid, window, slot)
            .await?
        {
            return Ok(DigestAction::Update);
        }
        if self
            .counters
            .mark_once(id, &format!("DIGESTTAIL#{cid}#{window}#{slot}"), expires)
            .await?
        {
            let to_slot_end = (slot + 1) * REFRESH_MS - self.now_ms;
            let secs = u64::try_from(to_slot_end.div_euclid(1000) + 1).unwrap_or(6);
            return Ok(DigestAction::RefreshAfter(Duration::from_secs(secs)));
        }
        Ok(DigestAction::Nothing)
    }

    /// Whether an `info` incident is folded to save the month's budget (from 80 %).
    async fn economy_mode(&self, integration: &Integration, incident: &Incident) -> bool {
        if incident.severity != Severity::Info {
            return false;
        }
        // Read, not this instance's last-seen total: other instances may have used it.
        let month = month_of(self.now_ms, &integration.timezone);
        match self.counters.month_usage(&integration.id, &month).await {
            Ok(usage) => reaches(usage.total, integration.monthly_quota, THRESHOLDS[0]),
            Err(_) => false,
        }
    }

    /// Takes the digest card's update slot `slot` (one update per 5 s); false when an
    /// update in that slot went out already.
    pub async fn take_update_slot(
        &self,
        integration: &Integration,
        cid: &str,
        window: i64,
        slot: i64,
    ) -> Result<bool, StoreError> {
        let window_secs = i64::from(integration.storm_window_secs.max(1));
        self.counters
            .mark_once(
                &integration.id,
                &format!("DIGESTUPD#{cid}#{window}#{slot}"),
                expiry(window, window_secs),
            )
            .await
    }
}

impl Notifier {
    fn storm_control(&self) -> StormControl<'_> {
        StormControl {
            counters: self.counters.as_ref(),
            ledger: self.ledger.as_ref(),
            now_ms: self.clock.now_ms(),
        }
    }

    /// Folds the incident into the group's digest when the group is in a storm;
    /// returns whether it folded.
    pub(super) async fn fold_if_storm(
        &self,
        integration: &Integration,
        incident: &Incident,
        chat: &GroupChat,
        label: &str,
    ) -> Result<bool, StoreError> {
        let cid = &chat.open_conversation_id;
        let Fold::Folded {
            digest,
            window,
            action,
        } = self
            .storm_control()
            .fold(integration, incident, cid, label)
            .await?
        else {
            return Ok(false);
        };
        self.metric(&integration.id, "Folded", 1.0, "Count");
        match action {
            DigestAction::SendFirst => {
                if let Err(err) = self
                    .send_digest(integration, chat, window, &digest, true)
                    .await
                {
                    warn!(error = %err, "storm digest not sent; a refresh job will send it");
                    self.queue_digest_refresh(
                        &integration.id,
                        cid,
                        window,
                        true,
                        Duration::from_secs(1),
                    )
                    .await;
                }
            }
            DigestAction::Update => {
                if let Err(err) = self
                    .send_digest(integration, chat, window, &digest, false)
                    .await
                {
                    warn!(error = %err, "storm digest card not updated");
                }
            }
            DigestAction::RefreshAfter(delay) => {
                self.queue_digest_refresh(&integration.id, cid, window, false, delay)
                    .await;
            }
            DigestAction::Nothing => {}
        }
        Ok(true)
    }

    /// Queues a `digest_refresh` job (`create`: the first digest send failed).
    async fn queue_digest_refresh(
        &self,
        integration_id: &str,
        cid: &str,
        window: i64,
        create: bool,
        delay: Duration,
    ) {
        let Some(jobs) = &self.jobs else {
            warn!(
                integration_id,
                "no job queue: the storm digest refresh is skipped"
            );
            return;
        };
        let job = Job::DigestRefresh {
            integration_id: integration_id.to_string(),
            chat: cid.to_string(),
            window,
            create,
        };
        if let Err(err) = jobs.send_job(&job, delay).await {
            warn!(integration_id, error = %err, "storm digest refresh not queued");
        }
    }

    /// The `digest_refresh` job: brings a group's digest up to date (or sends it,
    /// when `create`).
    #[instrument(skip_all, fields(integration_id = %integration.id, window))]
    pub(super) async fn digest_refresh(
        &self,
        integration: &Integration,
        cid: &str,
        window: i64,
        create: bool,
    ) -> Result<(), JobError> {
        let chats = self.chats(&integration.id).await?;
        let Some(chat) =
            super::targets::installed_chat(&chats, cid).filter(|c| c.open_conversation_id == cid)
        else {
            info!("the group left; its digest is not refreshed");
            return Ok(());
        };
        let Some(digest) = self
            .counters
            .get_digest(&integration.id, cid, window)
            .await?
        else {
            return Ok(());
        };
        let slot = self.clock.now_ms().div_euclid(REFRESH_MS);
        if !create
            && !self
                .storm_control()
                .take_update_slot(integration, cid, window, slot)
                .await?
        {
            // An update in this slot already shows these folds.
            return Ok(());
        }
        match self
            .send_digest(integration, chat, window, &digest, create)
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if err.is_retryable() => Err(JobError::Retry(format!("storm digest: {err}"))),
            Err(err) => {
                warn!(error = %err, "storm digest refresh refused");
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
        let app = AppCredentials::from(integration).with_priority(Priority::Critical);
        let cid = &chat.open_conversation_id;
        let group = chat.title.clone().unwrap_or_else(|| cid.clone());
        let link = render::in_dingtalk(&format!(
            "{}/dingtalk/{}/app?view=group&cid={}",
            self.base_url(integration),
            integration.id,
            url::form_urlencoded::byte_serialize(cid.as_bytes()).collect::<String>()
        ));
        let storm = StormDigest {
            group: &group,
            folded: digest.folded,
            newest: &digest.newest,
            threshold: integration.storm_threshold,
            window_secs: integration.storm_window_secs,
            link: &link,
            strings: crate::render::strings::Strings::of(integration.locale),
        };
        let Some(template_id) = integration.card_template_id.as_deref() else {
            let message = storm.message();
            return self
                .dingtalk
                .send_group_message(app, cid, chat.cool_app_code.as_deref(), &message)
                .await
                .map(|_| ());
        };
        let digest_id = hex::encode(Sha256::digest(
            format!("{}:{cid}:{window}", integration.id).as_bytes(),
        ));
        let track = format!("digest-{}", &digest_id[..24]);
        let (title, text) = (storm.title(), storm.text());
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
            ("status_label", storm.strings.storm_label),
            ("severity_label", storm.strings.critical),
            ("status_color", "#D83931"),
            ("btn_details", storm.strings.details),
            ("locale", integration.locale.tag()),
        ] {
            params.insert(k.into(), Value::from(v));
        }
        if !first {
            return self.dingtalk.update_card(app, &track, &params).await;
        }
        let route = callback_route_key(&integration.id);
        let delivery = CardDelivery {
            template_id,
            out_track_id: &track,
            callback_route_key: &route,
            robot_code: chat.robot_code.as_deref().unwrap_or(&integration.client_id),
            space: CardSpace::Group { cid, mentions: &[] },
        };
        self.dingtalk
            .create_and_deliver_card(app, &delivery.body(&params))
            .await
    }
}

#[cfg(test)]
#[path = "storm_tests.rs"]
mod tests;
