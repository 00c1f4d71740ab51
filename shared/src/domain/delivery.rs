//! Deliveries: what was sent to each target of an incident, step by step
//! (ARCHITECTURE.md §5). The wire names below are what the table stores.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What kind of target a delivery item is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A group chat, by openConversationId.
    Chat,
    /// A person, by DingTalk userId.
    User,
    /// A member that could not be reached (no binding, unknown): only a record.
    Member,
    /// A DING (target: `<remind type>:<chunk>`).
    Ding,
}

impl TargetKind {
    /// The wire name (`chat`, `user`, `member`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::User => "user",
            Self::Member => "member",
            Self::Ding => "ding",
        }
    }
}

/// How a step reached its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A robot message (cannot be edited afterwards).
    Robot,
    /// An interactive card (updated in place).
    Card,
    /// Folded into the group's storm digest.
    Digest,
    /// Nothing was sent (the target has a problem; see the record).
    None,
    /// A DING (in-app, SMS or phone).
    Ding,
}

impl Channel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Robot => "robot",
            Self::Card => "card",
            Self::Digest => "digest",
            Self::None => "none",
            Self::Ding => "ding",
        }
    }
}

/// The steps delivered to each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStep {
    /// The alert message or card.
    Alert,
    /// The resolved follow-up (robot messages only; cards update in place).
    Resolved,
    /// A DING's recall (on acknowledge or resolve).
    Recall,
}

impl DeliveryStep {
    /// The item attribute holding this step's state.
    pub fn field(self) -> &'static str {
        match self {
            Self::Alert => "alert_state",
            Self::Resolved => "resolved_state",
            Self::Recall => "recall_state",
        }
    }
}

/// A delivery step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    /// Delivered.
    Sent,
    /// Given up (recorded why).
    Failed,
}

impl StepState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

/// One target of one notification round of an incident: the key of a delivery item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryKey<'a> {
    /// The incident.
    pub incident_id: &'a str,
    /// The notification round (0: the alert itself; escalation rounds from 1).
    pub round: u32,
    /// The kind of target.
    pub kind: TargetKind,
    /// openConversationId, userId or email.
    pub target: &'a str,
}

/// How a claimed step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome<'a> {
    /// The step.
    pub step: DeliveryStep,
    /// Sent or failed.
    pub state: StepState,
    /// How it went out.
    pub channel: Channel,
    /// processQueryKey or outTrackId (alert step only).
    pub reference: Option<&'a str>,
    /// Why it failed.
    pub error: Option<&'a str>,
}

/// What was delivered to one target of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The kind of target.
    pub kind: TargetKind,
    /// openConversationId, userId or email.
    pub target: String,
    /// Alert step.
    #[serde(default)]
    pub alert_state: Option<StepState>,
    /// processQueryKey or outTrackId of the alert.
    #[serde(default)]
    pub alert_ref: Option<String>,
    /// Resolved step.
    #[serde(default)]
    pub resolved_state: Option<StepState>,
    /// How the alert step went out.
    #[serde(default)]
    pub channel: Option<Channel>,
    /// Hash of the card content last sent (unchanged updates are skipped).
    #[serde(default)]
    pub card_hash: Option<String>,
    /// Last error.
    #[serde(default)]
    pub last_error: Option<String>,
    /// The notification round.
    #[serde(default)]
    pub round: u32,
    /// A DING's recall.
    #[serde(default)]
    pub recall_state: Option<StepState>,
}

impl DeliveryKey<'_> {
    /// The item's sort key: `DELIVERY#<kind>#<target>`, with `#R<round>` after round 0.
    pub fn sort_key(&self) -> String {
        match self.round {
            0 => format!("DELIVERY#{}#{}", self.kind.as_str(), self.target),
            n => format!("DELIVERY#{}#{}#R{n}", self.kind.as_str(), self.target),
        }
    }
}

/// The outTrackId of an incident's card for one target in one round (stable across
/// retries; every round gets a new card, so phones ring again).
pub fn out_track_id(incident_id: &str, kind: TargetKind, target: &str, round: u32) -> String {
    let text = match round {
        0 => format!("{}:{target}", kind.as_str()),
        n => format!("{}:{target}:{n}", kind.as_str()),
    };
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    format!("{incident_id}-{}", &digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_what_the_table_stores() {
        for (kind, name) in [
            (TargetKind::Chat, "chat"),
            (TargetKind::User, "user"),
            (TargetKind::Member, "member"),
        ] {
            assert_eq!(serde_json::to_value(kind).expect("json"), name);
            assert_eq!(kind.as_str(), name);
        }
        for channel in [
            Channel::Robot,
            Channel::Card,
            Channel::Digest,
            Channel::None,
        ] {
            assert_eq!(
                serde_json::to_value(channel).expect("json"),
                channel.as_str()
            );
        }
    }

    #[test]
    fn out_track_ids_are_stable_per_target() {
        let a = out_track_id("inc1", TargetKind::Chat, "cid==", 0);
        assert_eq!(a, out_track_id("inc1", TargetKind::Chat, "cid==", 0));
        assert_ne!(a, out_track_id("inc1", TargetKind::User, "cid==", 0));
        assert_ne!(a, out_track_id("inc1", TargetKind::Chat, "cid==", 1));
        assert!(a.starts_with("inc1-") && a.len() == "inc1-".len() + 16);
    }
}
