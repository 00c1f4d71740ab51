//! Interactive cards: creating one per target, and updating every card of an
//! incident in place when it changes (unchanged cards are skipped by content hash).

use tokio::time::Instant;

use super::settle::SendResult;
use super::{Notifier, priority_of};
use crate::dingtalk::{AppCredentials, DingTalkError, callback_route_key};
use crate::domain::delivery::{Channel, DeliveryKey, StepState, TargetKind, out_track_id};
use crate::domain::incident::{Incident, RecordKind};
use crate::domain::integration::Integration;
use crate::render::card::{CardDelivery, CardSpace};
use crate::render::{self, RenderContext};
use crate::store::StoreError;

/// Who a card goes to.
#[derive(Debug, Clone, Copy)]
pub(super) struct CardTarget<'a> {
    /// Group or person.
    pub(super) kind: TargetKind,
    /// openConversationId or userId.
    pub(super) id: &'a str,
    /// The group's robot (else the app's own).
    pub(super) robot_code: Option<&'a str>,
    /// The notification round (a new card each round).
    pub(super) round: u32,
}

impl Notifier {
    /// Creates and delivers the incident's card for one target (with QPS backoff).
    pub(super) async fn send_card(
        &self,
        integration: &Integration,
        incident: &Incident,
        ctx: &RenderContext<'_>,
        to: CardTarget<'_>,
        deadline: Instant,
    ) -> SendResult {
        let CardTarget {
            kind,
            id: target,
            robot_code,
            round,
        } = to;
        let track = out_track_id(&incident.id, kind, target, round);
        let route = callback_route_key(&integration.id);
        let space = match kind {
            TargetKind::Chat => CardSpace::Group {
                cid: target,
                mentions: ctx.mentions,
            },
            TargetKind::User | TargetKind::Member | TargetKind::Ding => CardSpace::Person(target),
        };
        let delivery = CardDelivery {
            template_id: integration.card_template_id.as_deref().unwrap_or_default(),
            out_track_id: &track,
            callback_route_key: &route,
            robot_code: robot_code.unwrap_or(&integration.client_id),
            space,
        };
        let body = delivery.body(&render::card_params(incident, ctx));
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        self.with_backoff(deadline, || async {
            match self.dingtalk.create_and_deliver_card(app, &body).await {
                Ok(()) => Ok(track.clone()),
                // A retry after a crash between send and bookkeeping: the card exists.
                Err(DingTalkError::Rejected { code, .. })
                    if code == "param.outTrackIdDuplicated" =>
                {
                    Ok(track.clone())
                }
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Updates every delivered card of an incident in place, skipping unchanged ones.
    pub(super) async fn update_cards(
        &self,
        integration: &Integration,
        incident: &Incident,
        ctx: &RenderContext<'_>,
        deadline: Instant,
        retry: &mut Option<String>,
    ) -> Result<(), StoreError> {
        let params = render::card_params(incident, ctx);
        let hash = render::content_hash(&params);
        let app = AppCredentials::from(integration).with_priority(priority_of(incident));
        for delivery in self.ledger.list_deliveries(&incident.id).await? {
            if delivery.channel != Some(Channel::Card)
                || delivery.alert_state != Some(StepState::Sent)
                || delivery.card_hash.as_deref() == Some(hash.as_str())
            {
                continue;
            }
            let Some(track) = delivery.alert_ref.clone() else {
                continue;
            };
            let outcome = self
                .with_backoff(deadline, || self.dingtalk.update_card(app, &track, &params))
                .await;
            let target = Some(delivery.target.clone());
            match outcome {
                Ok(_) => {
                    let key = DeliveryKey {
                        round: delivery.round,
                        incident_id: &incident.id,
                        kind: delivery.kind,
                        target: &delivery.target,
                    };
                    self.ledger.set_card_hash(key, &hash).await?;
                    self.record(
                        &incident.id,
                        RecordKind::CardUpdated,
                        target,
                        "card updated in place".into(),
                    )
                    .await;
                }
                Err(err) if err.is_retryable() => *retry = Some(format!("card {track}: {err}")),
                Err(err) => {
                    self.record(
                        &incident.id,
                        RecordKind::Failed,
                        target,
                        format!("card update failed: {err}"),
                    )
                    .await
                }
            }
        }
        Ok(())
    }
}
