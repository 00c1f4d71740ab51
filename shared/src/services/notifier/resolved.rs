//! A resolved incident: its cards update in place, and every robot message sent
//! for it gets one resolved follow-up (robot messages cannot be edited).

use tokio::time::Instant;

use super::settle::{Claimed, Recipient};
use super::{JobError, Notifier, priority_of};
use crate::dingtalk::{AppCredentials, RobotMessage};
use crate::domain::chat::GroupChat;
use crate::domain::delivery::{
    Channel, Delivery, DeliveryKey, DeliveryStep, StepState, TargetKind,
};
use crate::domain::incident::Incident;
use crate::domain::integration::Integration;
use crate::render;

/// Whether a delivery still owes a resolved follow-up.
fn owes_follow_up(delivery: &Delivery) -> bool {
    delivery.alert_state == Some(StepState::Sent)
        && delivery.channel == Some(Channel::Robot)
        && delivery.resolved_state.is_none()
}

/// The deliveries that owe a follow-up: one per target, its newest round's, and
/// none for a target that got one already (escalation rounds message a target
/// several times; it hears of the resolve once).
fn follow_ups_owed(deliveries: &[Delivery]) -> Vec<&Delivery> {
    let mut owed: Vec<&Delivery> = Vec::new();
    for delivery in deliveries.iter().filter(|d| owes_follow_up(d)) {
        let same = |d: &&Delivery| d.kind == delivery.kind && d.target == delivery.target;
        if deliveries
            .iter()
            .any(|d| same(&d) && d.resolved_state.is_some())
        {
            continue;
        }
        match owed.iter_mut().find(|d| same(d)) {
            Some(kept) if kept.round < delivery.round => *kept = delivery,
            Some(_) => {}
            None => owed.push(delivery),
        }
    }
    owed
}

impl Notifier {
    /// Updates the cards and sends the follow-ups of a resolved incident.
    pub(super) async fn deliver_resolved(
        &self,
        integration: &Integration,
        incident: &Incident,
        deadline: Instant,
    ) -> Result<(), JobError> {
        let (ctx, _) = self.render_ctx(integration, incident);
        let mut retry = None;
        self.update_cards(integration, incident, &ctx, deadline, &mut retry)
            .await?;
        let message = render::resolved_message(incident, &ctx);
        let chats = self.chats(&integration.id).await?;
        let now_ms = self.clock.now_ms();
        let mut users = Vec::new();
        let deliveries = self.ledger.list_deliveries(&incident.id).await?;
        self.recall_dings(integration, incident, &deliveries, deadline, &mut retry)
            .await?;
        for delivery in follow_ups_owed(&deliveries) {
            let key = DeliveryKey {
                round: delivery.round,
                incident_id: &incident.id,
                kind: delivery.kind,
                target: &delivery.target,
            };
            if !self
                .ledger
                .claim_step(
                    key,
                    DeliveryStep::Resolved,
                    now_ms,
                    self.settings.lease_ms(),
                )
                .await?
            {
                continue;
            }
            if delivery.kind == TargetKind::User {
                users.push(Recipient {
                    user_id: delivery.target.clone(),
                    label: delivery.target.clone(),
                    round: delivery.round,
                });
                continue;
            }
            self.chat_follow_up(
                integration,
                incident,
                delivery,
                (&chats, &message),
                deadline,
                &mut retry,
            )
            .await?;
        }
        let failed = self
            .send_to_users(
                integration,
                incident,
                &users,
                &message,
                DeliveryStep::Resolved,
                deadline,
            )
            .await?;
        retry
            .or(failed)
            .map_or(Ok(()), |reason| Err(JobError::Retry(reason)))
    }

    /// One group's resolved follow-up (claimed by the caller).
    async fn chat_follow_up(
        &self,
        integration: &Integration,
        incident: &Incident,
        delivery: &Delivery,
        (chats, message): (&[GroupChat], &RobotMessage),
        deadline: Instant,
        retry: &mut Option<String>,
    ) -> Result<(), JobError> {
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        let chat = chats
            .iter()
            .find(|c| c.open_conversation_id == delivery.target);
        let label = chat
            .and_then(|c| c.title.clone())
            .unwrap_or_else(|| delivery.target.clone());
        let cool_app = chat.and_then(|c| c.cool_app_code.as_deref());
        let outcome = self
            .with_backoff(deadline, || {
                self.dingtalk
                    .send_group_message(app, &delivery.target, cool_app, message)
            })
            .await;
        let claimed = Claimed {
            incident_id: &incident.id,
            round: delivery.round,
            kind: TargetKind::Chat,
            target: &delivery.target,
            label: &label,
            step: DeliveryStep::Resolved,
            channel: Channel::Robot,
        };
        self.settle(integration, claimed, outcome, retry).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sent_robot_messages_owe_a_follow_up() {
        let base = Delivery {
            kind: TargetKind::Chat,
            target: "cid".into(),
            alert_state: Some(StepState::Sent),
            alert_ref: None,
            resolved_state: None,
            channel: Some(Channel::Robot),
            card_hash: None,
            last_error: None,
            round: 0,
            recall_state: None,
        };
        assert!(owes_follow_up(&base));
        for other in [
            Delivery {
                channel: Some(Channel::Card),
                ..base.clone()
            },
            Delivery {
                channel: Some(Channel::Digest),
                ..base.clone()
            },
            Delivery {
                alert_state: Some(StepState::Failed),
                ..base.clone()
            },
            Delivery {
                resolved_state: Some(StepState::Sent),
                ..base.clone()
            },
        ] {
            assert!(!owes_follow_up(&other), "{other:?}");
        }
    }

    #[test]
    fn a_target_messaged_in_several_rounds_hears_of_the_resolve_once() {
        let sent = |round: u32, resolved: bool| Delivery {
            kind: TargetKind::Chat,
            target: "cid".into(),
            alert_state: Some(StepState::Sent),
            alert_ref: None,
            resolved_state: resolved.then_some(StepState::Sent),
            channel: Some(Channel::Robot),
            card_hash: None,
            last_error: None,
            round,
            recall_state: None,
        };
        let three = [sent(0, false), sent(2, false), sent(1, false)];
        let owed = follow_ups_owed(&three);
        assert_eq!(owed.len(), 1);
        assert_eq!(owed[0].round, 2);
        assert!(follow_ups_owed(&[sent(0, false), sent(1, true)]).is_empty());
    }
}
