//! Mobiles an alert @mentions (robot-compatible ingest's `atMobiles`, ARCHITECTURE.md
//! §11.1): each is looked up in DingTalk (`/topapi/v2/user/getbymobile`) and the
//! person added to the alert's targets, as their member when bound (so they are
//! @mentioned, messaged and assigned), else by userId (so the round records that
//! they are not associated). Lookups are cached per warm container; mobiles are
//! never logged or stored unmasked.

use std::collections::HashMap;
use std::sync::Mutex;

use tracing::{info, warn};

use super::Notifier;
use super::alert::AlertNote;
use crate::dingtalk::{AppCredentials, DingTalkError};
use crate::domain::incident::{AlertEvent, RecordKind, masked_mobile};
use crate::domain::integration::Integration;
use crate::store::StoreError;

/// How long a found userId is reused.
const FOUND_TTL_MS: i64 = 60 * 60 * 1000;
/// How long "nobody has this mobile" is believed.
const UNKNOWN_TTL_MS: i64 = 10 * 60 * 1000;
/// Entries kept before the cache starts again.
const MAX_ENTRIES: usize = 10_000;

/// (integration id, mobile).
type MobileKey = (String, String);

/// A userId (None: nobody has the mobile) and when the answer expires (Unix ms).
type MobileAnswer = (Option<String>, i64);

/// Mobile → userId answers, by (integration, mobile), with their expiry.
#[derive(Debug, Default)]
pub(super) struct MobileCache {
    entries: Mutex<HashMap<MobileKey, MobileAnswer>>,
}

impl MobileCache {
    fn get(&self, integration_id: &str, mobile: &str, now_ms: i64) -> Option<Option<String>> {
        let entries = self.entries.lock().ok()?;
        let key = (integration_id.to_string(), mobile.to_string());
        entries
            .get(&key)
            .filter(|(_, until)| *until > now_ms)
            .map(|(user, _)| user.clone())
    }

    fn put(&self, integration_id: &str, mobile: &str, user: Option<String>, now_ms: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let ttl = if user.is_some() {
            FOUND_TTL_MS
        } else {
            UNKNOWN_TTL_MS
        };
        entries.insert(
            (integration_id.to_string(), mobile.to_string()),
            (user, now_ms + ttl),
        );
    }
}

/// The note for a mobile nobody active in the organisation has.
fn unknown_mobile(shown: &str) -> AlertNote {
    (
        RecordKind::UnknownTarget,
        Some(shown.to_string()),
        format!(
            "the alert @mentions the mobile {shown}, which no active member of this DingTalk organisation has: nobody was added for it"
        ),
    )
}

/// The note for a mobile that could not be looked up.
fn lookup_failed(shown: &str, err: &DingTalkError) -> AlertNote {
    let why = match err {
        DingTalkError::PermissionDenied { code, .. } => format!(
            "DingTalk says the app lacks a permission ({code}): grant it qyapi_get_member_by_mobile (根据手机号获取成员) in the developer console"
        ),
        other => other.to_string(),
    };
    (
        RecordKind::Failed,
        Some(shown.to_string()),
        format!(
            "could not look up the @mentioned mobile {shown}: {why}; the alert went out without them"
        ),
    )
}

impl Notifier {
    /// Adds the people behind `event.mention_mobiles` to its targets and empties the
    /// list; returns notes for mobiles nobody has or that could not be looked up.
    /// A failed lookup does not hold the alert back.
    pub(super) async fn add_mentioned_mobiles(
        &self,
        integration: &Integration,
        event: &mut AlertEvent,
    ) -> Result<Vec<AlertNote>, StoreError> {
        let mut notes = Vec::new();
        let mut found = 0;
        for mobile in std::mem::take(&mut event.mention_mobiles) {
            let shown = masked_mobile(&mobile);
            let user_id = match self.user_of_mobile(integration, &mobile).await {
                Ok(Some(user_id)) => user_id,
                Ok(None) => {
                    notes.push(unknown_mobile(&shown));
                    continue;
                }
                Err(err) => {
                    warn!(mobile = %shown, error = %err, "could not look up a mentioned mobile");
                    notes.push(lookup_failed(&shown, &err));
                    continue;
                }
            };
            found += 1;
            let binding = self
                .store
                .binding_of_user(&integration.id, &user_id)
                .await?;
            event
                .targets
                .add_person(&user_id, binding.map(|b| b.member));
        }
        info!(
            found,
            unmatched = notes.len(),
            "mentioned mobiles looked up"
        );
        Ok(notes)
    }

    /// The userId of a mobile: from the cache, else from DingTalk (then cached).
    async fn user_of_mobile(
        &self,
        integration: &Integration,
        mobile: &str,
    ) -> Result<Option<String>, DingTalkError> {
        let now_ms = self.clock.now_ms();
        if let Some(known) = self.mobiles.get(&integration.id, mobile, now_ms) {
            return Ok(known);
        }
        let user = self
            .dingtalk
            .user_id_by_mobile(AppCredentials::from(integration), mobile)
            .await?;
        self.mobiles
            .put(&integration.id, mobile, user.clone(), now_ms);
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_reused_until_they_expire() {
        let cache = MobileCache::default();
        cache.put("int", "13800000001", Some("u1".into()), 0);
        cache.put("int", "13900000000", None, 0);
        assert_eq!(
            cache.get("int", "13800000001", 1),
            Some(Some("u1".to_string()))
        );
        assert_eq!(
            cache.get("other", "13800000001", 1),
            None,
            "per integration"
        );
        assert_eq!(cache.get("int", "13900000000", 1), Some(None));
        assert_eq!(cache.get("int", "13900000000", UNKNOWN_TTL_MS), None);
        assert_eq!(
            cache.get("int", "13800000001", UNKNOWN_TTL_MS),
            Some(Some("u1".to_string()))
        );
        assert_eq!(cache.get("int", "13800000001", FOUND_TTL_MS), None);
    }

    #[test]
    fn notes_name_the_masked_mobile_and_the_missing_permission() {
        let (kind, target, _) = unknown_mobile("138****0001");
        assert_eq!(
            (kind, target.as_deref()),
            (RecordKind::UnknownTarget, Some("138****0001"))
        );
        let denied = DingTalkError::PermissionDenied {
            code: "60011".into(),
            required_scopes: Vec::new(),
        };
        let (kind, _, detail) = lookup_failed("138****0001", &denied);
        assert_eq!(kind, RecordKind::Failed);
        assert!(detail.contains("qyapi_get_member_by_mobile"), "{detail}");
        let (_, _, detail) = lookup_failed("138****0001", &DingTalkError::Transient("x".into()));
        assert!(!detail.contains("qyapi"), "{detail}");
    }
}
