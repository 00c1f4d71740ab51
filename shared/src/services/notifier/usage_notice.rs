//! Usage notices: a one-time message to the integration's default targets when the
//! month's DingTalk calls cross 80 % and again at 95 % of the quota.

use tracing::warn;

use super::Notifier;
use super::targets::installed_chat;
use crate::dingtalk::AppCredentials;
use crate::domain::budget::{DEFAULT_RESERVE_PERCENT, Priority, THRESHOLDS, month_of, reaches};
use crate::domain::integration::Integration;
use crate::render::robot_markdown::{UsageNotice, usage_notice};
use crate::render::strings::Strings;

impl Notifier {
    /// Sends each threshold's notice once, when the month's usage has crossed it.
    pub(super) async fn check_usage_thresholds(&self, integration: &Integration) {
        let now_ms = self.clock.now_ms();
        let month = month_of(now_ms, &integration.timezone);
        let quota = integration.monthly_quota;
        let seen = self
            .dingtalk
            .governor()
            .and_then(|g| g.month_total_seen(&integration.id, &month));
        if seen.is_some_and(|seen| !reaches(seen, quota, THRESHOLDS[0])) {
            return;
        }
        let Ok(usage) = self.counters.month_usage(&integration.id, &month).await else {
            return;
        };
        // The store lacks this batch's calls until it ends; the governor counts them.
        let total = usage.total.max(seen.unwrap_or(0));
        for threshold in THRESHOLDS {
            if !reaches(total, quota, threshold) {
                continue;
            }
            let key = format!("THRESHOLD#{month}#{threshold}");
            let first = self
                .counters
                .mark_once(&integration.id, &key, now_ms / 1000 + 40 * 86_400)
                .await;
            if !matches!(first, Ok(true)) {
                continue;
            }
            warn!(integration_id = %integration.id, threshold, calls = total, quota, "DingTalk API usage threshold crossed");
            self.metric(
                &integration.id,
                "QuotaThresholdCrossed",
                threshold as f64,
                "Percent",
            );
            let notice = UsageNotice {
                threshold,
                used: total,
                quota: quota.max(1),
                month: &month,
                critical_only_from: 100 - DEFAULT_RESERVE_PERCENT,
                integration_id: &integration.id,
            };
            self.send_usage_notice(
                integration,
                &usage_notice(&notice, Strings::of(integration.locale)),
            )
            .await;
        }
    }

    async fn send_usage_notice(
        &self,
        integration: &Integration,
        message: &crate::dingtalk::RobotMessage,
    ) {
        let app = AppCredentials::from(integration).with_priority(Priority::Critical);
        let chats = self.chats(&integration.id).await.unwrap_or_default();
        for target in &integration.default_targets.chats {
            let Some(chat) = installed_chat(&chats, target) else {
                continue;
            };
            let cool_app = chat.cool_app_code.as_deref();
            if let Err(err) = self
                .dingtalk
                .send_group_message(app, &chat.open_conversation_id, cool_app, message)
                .await
            {
                warn!(error = %err, "usage notice not sent to a group");
            }
        }
        let mut users = integration.default_targets.dingtalk_user_ids.clone();
        for email in &integration.default_targets.members {
            if let Ok(Some(binding)) = self.store.binding_of_member(&integration.id, email).await {
                users.push(binding.dingtalk_user_id);
            }
        }
        if !users.is_empty()
            && let Err(err) = self.dingtalk.send_one_to_one(app, &users, message).await
        {
            warn!(error = %err, "usage notice not sent to people");
        }
    }
}
