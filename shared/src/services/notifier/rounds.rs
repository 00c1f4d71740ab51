//! A notification round (ARCHITECTURE.md §5.1, §9): the alert itself (round 0) or
//! an escalation's re-notification (a layer, a reassigned member), each target
//! claimed per round so that every round is new cards and messages (phones ring
//! again) and no round is sent twice.

use tokio::time::Instant;

use super::cards::CardTarget;
use super::settle::{Claimed, Recipient};
use super::targets::ResolvedTargets;
use super::{JobError, Notifier, priority_of};
use crate::dingtalk::AppCredentials;
use crate::domain::chat::GroupChat;
use crate::domain::delivery::{
    Channel, DeliveryKey, DeliveryStep, StepOutcome, StepState, TargetKind,
};
use crate::domain::incident::Incident;
use crate::domain::incident::RecordKind;
use crate::domain::integration::{Integration, Targets};
use crate::render::{self, RenderContext};

/// A group of a round.
#[derive(Clone, Copy)]
struct RoundTarget<'a> {
    chat: &'a GroupChat,
    round: u32,
}

impl Notifier {
    /// Delivers round `round` of an incident to `wanted`; returns the reason to
    /// retry when a send failed with something that may pass.
    pub(super) async fn deliver_round(
        &self,
        integration: &Integration,
        incident: &Incident,
        wanted: &Targets,
        round: u32,
        deadline: Instant,
    ) -> Result<Option<String>, JobError> {
        let targets = self.resolve_targets(integration, wanted).await?;
        self.record_problems(incident, &targets, round).await?;
        let (ctx, failed) = self.render_ctx(integration, incident);
        let ctx = ctx.mentioning(&targets.mentions);
        if let Some(failed) = failed {
            // Once per incident version and round, whatever the repeats and retries.
            let key = format!(
                "TEMPLATE_FAILED#{}#{}#{round}",
                incident.id, incident.version
            );
            let now_s = self.clock.now_ms() / 1000;
            if matches!(
                self.counters
                    .mark_once(&integration.id, &key, now_s + 86_400)
                    .await,
                Ok(true)
            ) {
                self.record(
                    &incident.id,
                    RecordKind::TemplateFailed,
                    None,
                    format!("{failed}; the built-in text is used (round {round})"),
                )
                .await;
            }
        }
        let mut retry = None;
        for chat in &targets.chats {
            let to = RoundTarget { chat, round };
            self.deliver_to_chat(integration, incident, to, &ctx, deadline, &mut retry)
                .await?;
        }
        let claimed = self.claim_users(incident, &targets.users, round).await?;
        if integration.card_template_id.is_some() {
            for Recipient { user_id, label, .. } in &claimed {
                let to = CardTarget {
                    kind: TargetKind::User,
                    id: user_id,
                    robot_code: None,
                    round,
                };
                let outcome = self
                    .send_card(integration, incident, &ctx, to, deadline)
                    .await;
                let claimed = Claimed {
                    incident_id: &incident.id,
                    round,
                    kind: TargetKind::User,
                    target: user_id,
                    label,
                    step: DeliveryStep::Alert,
                    channel: Channel::Card,
                };
                self.settle(integration, claimed, outcome, &mut retry)
                    .await?;
            }
        } else {
            let direct = render::alert_message(incident, &ctx.clone().mentioning(&[]));
            let failed = self
                .send_to_users(
                    integration,
                    incident,
                    &claimed,
                    &direct,
                    DeliveryStep::Alert,
                    deadline,
                )
                .await?;
            retry = retry.or(failed);
        }
        Ok(retry)
    }

    /// Records each unreachable target once per incident and round.
    async fn record_problems(
        &self,
        incident: &Incident,
        targets: &ResolvedTargets,
        round: u32,
    ) -> Result<(), JobError> {
        let now_ms = self.clock.now_ms();
        for problem in &targets.problems {
            let key = DeliveryKey {
                round,
                incident_id: &incident.id,
                kind: problem.kind,
                target: &problem.target,
            };
            if !self
                .ledger
                .claim_step(key, DeliveryStep::Alert, now_ms, self.settings.lease_ms())
                .await?
            {
                continue;
            }
            let outcome = StepOutcome {
                step: DeliveryStep::Alert,
                state: StepState::Failed,
                channel: Channel::None,
                reference: None,
                error: Some(&problem.detail),
            };
            self.ledger.finish_step(key, outcome).await?;
            self.record(
                &incident.id,
                problem.record,
                Some(problem.target.clone()),
                problem.detail.clone(),
            )
            .await;
        }
        Ok(())
    }

    /// One group's round: folded into a storm digest (the alert only), a card, or
    /// a message.
    async fn deliver_to_chat(
        &self,
        integration: &Integration,
        incident: &Incident,
        to: RoundTarget<'_>,
        ctx: &RenderContext<'_>,
        deadline: Instant,
        retry: &mut Option<String>,
    ) -> Result<(), JobError> {
        let RoundTarget { chat, round } = to;
        let cid = &chat.open_conversation_id;
        let key = DeliveryKey {
            round,
            incident_id: &incident.id,
            kind: TargetKind::Chat,
            target: cid,
        };
        let now_ms = self.clock.now_ms();
        if !self
            .ledger
            .claim_step(key, DeliveryStep::Alert, now_ms, self.settings.lease_ms())
            .await?
        {
            return Ok(());
        }
        let label = chat.title.clone().unwrap_or_else(|| cid.clone());
        // Escalation rounds never fold: they are the page that was not answered.
        if round == 0
            && self
                .fold_if_storm(integration, incident, chat, &label)
                .await?
        {
            return Ok(());
        }
        let (channel, outcome) = if integration.card_template_id.is_some() {
            let robot = chat.robot_code.as_deref();
            let outcome = self
                .send_card(
                    integration,
                    incident,
                    ctx,
                    CardTarget {
                        kind: TargetKind::Chat,
                        id: cid,
                        robot_code: robot,
                        round,
                    },
                    deadline,
                )
                .await;
            (Channel::Card, outcome)
        } else {
            let app = AppCredentials::from(integration).with_priority(priority_of(incident));
            let message = render::alert_message(incident, ctx);
            let cool_app = chat.cool_app_code.as_deref();
            let outcome = self
                .with_backoff(deadline, || {
                    self.dingtalk
                        .send_group_message(app, cid, cool_app, &message)
                })
                .await;
            (Channel::Robot, outcome)
        };
        let claimed = Claimed {
            incident_id: &incident.id,
            round,
            kind: TargetKind::Chat,
            target: cid,
            label: &label,
            step: DeliveryStep::Alert,
            channel,
        };
        self.settle(integration, claimed, outcome, retry).await?;
        Ok(())
    }

    /// Claims each person's round; returns those this caller may send to.
    async fn claim_users(
        &self,
        incident: &Incident,
        users: &[(String, String)],
        round: u32,
    ) -> Result<Vec<Recipient>, JobError> {
        let now_ms = self.clock.now_ms();
        let mut claimed = Vec::new();
        for (user_id, label) in users {
            let key = DeliveryKey {
                round,
                incident_id: &incident.id,
                kind: TargetKind::User,
                target: user_id,
            };
            if self
                .ledger
                .claim_step(key, DeliveryStep::Alert, now_ms, self.settings.lease_ms())
                .await?
            {
                claimed.push(Recipient {
                    user_id: user_id.clone(),
                    label: label.clone(),
                    round,
                });
            }
        }
        Ok(claimed)
    }
}
