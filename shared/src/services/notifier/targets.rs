//! Target resolution: an incident's wanted targets against the group chat list,
//! the member directory and the bindings (ARCHITECTURE.md §2.4).

use std::collections::HashSet;

use super::Notifier;
use crate::domain::chat::{ChatStatus, GroupChat};
use crate::domain::delivery::TargetKind;
use crate::domain::incident::RecordKind;
use crate::domain::integration::{Integration, Targets};
use crate::store::StoreError;

/// A problem with one target, recorded once per incident.
#[derive(Debug, Clone)]
pub(super) struct TargetProblem {
    pub(super) kind: TargetKind,
    pub(super) target: String,
    pub(super) record: RecordKind,
    pub(super) detail: String,
}

/// Targets resolved against the chat list, members and bindings.
#[derive(Debug, Default)]
pub(super) struct ResolvedTargets {
    pub(super) chats: Vec<GroupChat>,
    /// (userId, label for records)
    pub(super) users: Vec<(String, String)>,
    /// (userId, name) of bound members, for @mentions.
    pub(super) mentions: Vec<(String, String)>,
    pub(super) problems: Vec<TargetProblem>,
}

/// The installed chat a target entry names (by openConversationId or exact title).
pub(super) fn installed_chat<'a>(chats: &'a [GroupChat], entry: &str) -> Option<&'a GroupChat> {
    chats.iter().find(|c| {
        (c.open_conversation_id == entry || c.title.as_deref() == Some(entry))
            && c.status == ChatStatus::Installed
    })
}

fn not_installed(entry: &str) -> TargetProblem {
    TargetProblem {
        kind: TargetKind::Chat,
        target: entry.to_string(),
        record: RecordKind::NotInstalled,
        detail: format!(
            "cool app not installed in this group ({entry}): install the app's cool app in the group (group settings → cool apps); the group then joins the group chat list"
        ),
    }
}

fn unbound_member(email: &str, known: bool) -> TargetProblem {
    let (record, detail) = if known {
        (
            RecordKind::NotAssociated,
            format!(
                "application not associated: {email} has not linked a DingTalk account; they should open the app once in DingTalk (workbench → the app) to associate it, then they receive alerts"
            ),
        )
    } else {
        (
            RecordKind::UnknownTarget,
            format!("no member {email} in the member directory: add the member first"),
        )
    };
    TargetProblem {
        kind: TargetKind::Member,
        target: email.to_string(),
        record,
        detail,
    }
}

fn unbound_user(user_id: &str) -> TargetProblem {
    TargetProblem {
        kind: TargetKind::User,
        target: user_id.to_string(),
        record: RecordKind::UnknownTarget,
        detail: format!(
            "DingTalk user {user_id} is not bound to a member of this integration: alerts reach only associated people (add the member and have them open the app once)"
        ),
    }
}

impl Notifier {
    /// Resolves wanted targets (an incident's, or an escalation round's).
    pub(super) async fn resolve_targets(
        &self,
        integration: &Integration,
        wanted: &Targets,
    ) -> Result<ResolvedTargets, StoreError> {
        let mut resolved = ResolvedTargets::default();
        if !wanted.chats.is_empty() {
            let chats = self.chats(&integration.id).await?;
            for entry in &wanted.chats {
                match installed_chat(&chats, entry) {
                    Some(chat)
                        if !resolved
                            .chats
                            .iter()
                            .any(|c| c.open_conversation_id == chat.open_conversation_id) =>
                    {
                        resolved.chats.push(chat.clone());
                    }
                    Some(_) => {}
                    None => resolved.problems.push(not_installed(entry)),
                }
            }
        }
        for email in &wanted.members {
            self.resolve_member(integration, email, &mut resolved)
                .await?;
        }
        for user_id in &wanted.dingtalk_user_ids {
            // Only people bound to the integration: an alert cannot page the company.
            match self.store.binding_of_user(&integration.id, user_id).await? {
                Some(_) => resolved.users.push((user_id.clone(), user_id.clone())),
                None => resolved.problems.push(unbound_user(user_id)),
            }
        }
        let mut seen = HashSet::new();
        resolved.users.retain(|(id, _)| seen.insert(id.clone()));
        Ok(resolved)
    }

    async fn resolve_member(
        &self,
        integration: &Integration,
        email: &str,
        resolved: &mut ResolvedTargets,
    ) -> Result<(), StoreError> {
        let member = self.store.get_member(&integration.id, email).await?;
        let Some(binding) = self.store.binding_of_member(&integration.id, email).await? else {
            resolved
                .problems
                .push(unbound_member(email, member.is_some()));
            return Ok(());
        };
        let name = match member {
            Some(member) => member.name,
            None => binding
                .dingtalk_name
                .clone()
                .unwrap_or_else(|| email.to_string()),
        };
        resolved
            .mentions
            .push((binding.dingtalk_user_id.clone(), name));
        resolved
            .users
            .push((binding.dingtalk_user_id, email.to_string()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::sample_chat;

    #[test]
    fn chats_match_by_id_or_exact_title_when_installed() {
        let mut gone = sample_chat("int", "cid-2");
        gone.status = ChatStatus::Uninstalled;
        gone.title = Some("Gone".into());
        let chats = vec![sample_chat("int", "cid-1"), gone];
        assert!(installed_chat(&chats, "cid-1").is_some());
        assert!(installed_chat(&chats, "Ops").is_some());
        assert!(installed_chat(&chats, "ops").is_none());
        assert!(installed_chat(&chats, "cid-2").is_none());
        assert!(installed_chat(&chats, "Gone").is_none());
    }

    #[test]
    fn unbound_members_say_what_to_do() {
        assert_eq!(
            unbound_member("a@x.io", true).record,
            RecordKind::NotAssociated
        );
        assert_eq!(
            unbound_member("a@x.io", false).record,
            RecordKind::UnknownTarget
        );
        assert_eq!(not_installed("cid").kind, TargetKind::Chat);
    }
}
