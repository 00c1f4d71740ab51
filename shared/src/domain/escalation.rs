//! Escalation policies (ARCHITECTURE.md §9): ordered layers of targets, each
//! notified when the one before it went unanswered, with repeats, DINGs and an
//! acknowledgement timeout. The types here are the admin API's wire shapes; the
//! run-time state of an incident's escalation is in [`super::escalation_state`].

use serde::{Deserialize, Serialize};

use super::ValidationError;
use super::incident::Severity;

/// How a DING reaches people (`remindType` 1, 2 or 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemindType {
    /// In-app DING (up to 200 receivers a call).
    App,
    /// SMS DING (up to 20 receivers; needs purchased quota).
    Sms,
    /// Phone-call DING (up to 20 receivers; needs purchased quota).
    Call,
}

impl RemindType {
    /// DingTalk's `remindType` code.
    pub fn code(self) -> u8 {
        match self {
            Self::App => 1,
            Self::Sms => 2,
            Self::Call => 3,
        }
    }

    /// Most receivers DingTalk takes in one call.
    pub fn max_receivers(self) -> usize {
        match self {
            Self::App => 200,
            Self::Sms | Self::Call => 20,
        }
    }

    /// The word used in records and on the page.
    pub fn label(self) -> &'static str {
        match self {
            Self::App => "in-app",
            Self::Sms => "SMS",
            Self::Call => "phone",
        }
    }
}

/// When a layer hands over to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EscalateOn {
    /// While nobody has acknowledged the incident.
    #[default]
    Unacknowledged,
    /// While the incident is open, acknowledged or not.
    Unresolved,
}

/// Who a layer notifies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerTargets {
    /// Group chats (openConversationId) from the integration's group chat list.
    #[serde(default)]
    pub chats: Vec<String>,
    /// Members by email: @mentioned in the layer's groups and messaged 1:1.
    #[serde(default)]
    pub members: Vec<String>,
    /// On-call schedules (whoever is on call when the layer fires).
    #[serde(default)]
    pub schedules: Vec<String>,
}

impl LayerTargets {
    fn is_empty(&self) -> bool {
        self.chats.is_empty() && self.members.is_empty() && self.schedules.is_empty()
    }
}

/// A layer's DING: an urgent DingTalk notification (app, SMS or phone call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DingRule {
    /// App, SMS or phone.
    pub remind_type: RemindType,
    /// Severities that DING (all when empty).
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// Only people who have not read the layer's 1:1 message.
    #[serde(default)]
    pub only_unread: bool,
    /// Seconds after the layer's notification.
    #[serde(default)]
    pub after_secs: u32,
}

impl DingRule {
    /// Whether an incident of `severity` gets this DING.
    pub fn applies_to(&self, severity: Severity) -> bool {
        self.severities.is_empty() || self.severities.contains(&severity)
    }
}

/// One layer of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// Who is notified.
    pub targets: LayerTargets,
    /// Seconds until the next layer, while `escalate_on` holds.
    pub escalate_after_secs: u32,
    /// What keeps the escalation going.
    #[serde(default)]
    pub escalate_on: EscalateOn,
    /// An optional DING.
    #[serde(default)]
    pub ding: Option<DingRule>,
}

/// Repeating the layers after the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Repeat {
    /// How many more times (0–10).
    #[serde(default)]
    pub times: u32,
    /// The layer each repeat starts from.
    #[serde(default)]
    pub from_layer: u32,
}

/// The body of `POST`/`PUT …/escalation-policies`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// A name unique in the integration (routes may use it).
    pub name: String,
    /// 1–10 layers.
    pub layers: Vec<Layer>,
    /// Repeats after the last layer.
    #[serde(default)]
    pub repeat: Repeat,
    /// An acknowledged incident returns to triggered after this long (300–86400 s).
    #[serde(default)]
    pub ack_timeout_secs: Option<u32>,
}

/// A stored escalation policy (a new `version` on each change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationPolicy {
    /// Our id.
    pub id: String,
    /// Version, from 1.
    pub version: u32,
    /// Name.
    pub name: String,
    /// Layers.
    pub layers: Vec<Layer>,
    /// Repeats.
    pub repeat: Repeat,
    /// Acknowledgement timeout.
    pub ack_timeout_secs: Option<u32>,
    /// Creation time.
    #[serde(default)]
    pub created_at: String,
    /// Last change.
    #[serde(default)]
    pub updated_at: String,
}

impl EscalationPolicy {
    /// The policy's `version` made of `spec`.
    pub fn from_spec(id: String, version: u32, spec: PolicySpec, now: &str) -> Self {
        Self {
            id,
            version,
            name: spec.name.trim().to_string(),
            layers: spec.layers,
            repeat: spec.repeat,
            ack_timeout_secs: spec.ack_timeout_secs,
            created_at: now.to_string(),
            updated_at: now.to_string(),
        }
    }
}

/// Most layers in a policy.
pub const MAX_LAYERS: usize = 10;
/// Most repeats.
pub const MAX_REPEATS: u32 = 10;
/// Most chats, and members, in a layer.
pub const MAX_LAYER_TARGETS: usize = 50;
/// Shortest and longest wait before the next layer.
pub const ESCALATE_AFTER_SECS: (u32, u32) = (30, 86_400);
/// Shortest wait before an `only_unread` DING.
pub const ONLY_UNREAD_MIN_SECS: u32 = 30;
/// Shortest and longest acknowledgement timeout.
pub const ACK_TIMEOUT_SECS: (u32, u32) = (300, 86_400);

/// What validation needs to know about the integration.
pub trait PolicyDirectory {
    /// Whether `cid` is on the group chat list.
    fn has_chat(&self, cid: &str) -> bool;
    /// Whether `email` is a member.
    fn has_member(&self, email: &str) -> bool;
    /// Whether `id` is a schedule.
    fn has_schedule(&self, id: &str) -> bool;
}

/// Checks a policy body; the error names the field.
pub fn validate_policy(
    spec: &PolicySpec,
    known: &dyn PolicyDirectory,
) -> Result<(), ValidationError> {
    let name = spec.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ValidationError::new("name", "must be 1 to 100 characters"));
    }
    if spec.layers.is_empty() || spec.layers.len() > MAX_LAYERS {
        return Err(ValidationError::new(
            "layers",
            format!("a policy has 1 to {MAX_LAYERS} layers"),
        ));
    }
    for (i, layer) in spec.layers.iter().enumerate() {
        validate_layer(i, layer, known)?;
    }
    if spec.repeat.times > MAX_REPEATS {
        return Err(ValidationError::new(
            "repeat.times",
            format!("must be 0 to {MAX_REPEATS}"),
        ));
    }
    if spec.repeat.from_layer as usize >= spec.layers.len() {
        return Err(ValidationError::new(
            "repeat.from_layer",
            format!(
                "must name one of the {} layers (0 to {})",
                spec.layers.len(),
                spec.layers.len() - 1
            ),
        ));
    }
    if let Some(timeout) = spec.ack_timeout_secs
        && !(ACK_TIMEOUT_SECS.0..=ACK_TIMEOUT_SECS.1).contains(&timeout)
    {
        return Err(ValidationError::new(
            "ack_timeout_secs",
            format!(
                "must be null or {} to {} seconds",
                ACK_TIMEOUT_SECS.0, ACK_TIMEOUT_SECS.1
            ),
        ));
    }
    Ok(())
}

fn validate_layer(
    i: usize,
    layer: &Layer,
    known: &dyn PolicyDirectory,
) -> Result<(), ValidationError> {
    let field = |name: &str| format!("layers[{i}].{name}");
    let targets = &layer.targets;
    if targets.is_empty() {
        return Err(ValidationError::new(
            &field("targets"),
            "a layer needs at least one chat, member or schedule",
        ));
    }
    if targets.chats.len() > MAX_LAYER_TARGETS || targets.members.len() > MAX_LAYER_TARGETS {
        return Err(ValidationError::new(
            &field("targets"),
            format!("at most {MAX_LAYER_TARGETS} chats and {MAX_LAYER_TARGETS} members a layer"),
        ));
    }
    if let Some(chat) = targets.chats.iter().find(|c| !known.has_chat(c)) {
        return Err(ValidationError::new(
            &field("targets.chats"),
            format!(
                "{chat:?} is not on the integration's group chat list (install the cool app in the group first)"
            ),
        ));
    }
    if let Some(email) = targets.members.iter().find(|m| !known.has_member(m)) {
        return Err(ValidationError::new(
            &field("targets.members"),
            format!("no member {email:?}: add the member first"),
        ));
    }
    if let Some(id) = targets.schedules.iter().find(|s| !known.has_schedule(s)) {
        return Err(ValidationError::new(
            &field("targets.schedules"),
            format!("no schedule {id:?}"),
        ));
    }
    let (low, high) = ESCALATE_AFTER_SECS;
    if !(low..=high).contains(&layer.escalate_after_secs) {
        return Err(ValidationError::new(
            &field("escalate_after_secs"),
            format!("must be {low} to {high} seconds"),
        ));
    }
    if let Some(ding) = &layer.ding {
        if ding.after_secs >= layer.escalate_after_secs {
            return Err(ValidationError::new(
                &field("ding.after_secs"),
                "must be shorter than escalate_after_secs (the DING belongs to this layer)",
            ));
        }
        if ding.only_unread && ding.after_secs < ONLY_UNREAD_MIN_SECS {
            return Err(ValidationError::new(
                &field("ding.after_secs"),
                format!(
                    "with only_unread, at least {ONLY_UNREAD_MIN_SECS} s: people need time to read their message"
                ),
            ));
        }
        if i > 0 && targets.members.is_empty() && targets.schedules.is_empty() {
            return Err(ValidationError::new(
                &field("ding"),
                "a DING goes to the layer's members: add members (or schedules) to the layer",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Known;

    impl PolicyDirectory for Known {
        fn has_chat(&self, cid: &str) -> bool {
            cid == "cid-ops=="
        }
        fn has_member(&self, email: &str) -> bool {
            email == "alice@example.com"
        }
        fn has_schedule(&self, _: &str) -> bool {
            false
        }
    }

    fn spec(value: serde_json::Value) -> PolicySpec {
        serde_json::from_value(value).expect("spec")
    }

    fn good() -> serde_json::Value {
        json!({"name": "payments", "layers": [
            {"targets": {"chats": ["cid-ops=="]}, "escalate_after_secs": 60},
            {"targets": {"members": ["alice@example.com"]}, "escalate_after_secs": 300,
             "ding": {"remind_type": "call", "severities": ["critical"], "after_secs": 30}}],
            "repeat": {"times": 2, "from_layer": 1}, "ack_timeout_secs": 1800})
    }

    #[test]
    fn the_contract_example_is_valid() {
        let spec = spec(good());
        assert!(validate_policy(&spec, &Known).is_ok());
        let ding = spec.layers[1].ding.as_ref().expect("ding");
        assert!(ding.applies_to(Severity::Critical) && !ding.applies_to(Severity::Info));
        assert_eq!(ding.remind_type.code(), 3);
    }

    #[test]
    fn bad_policies_name_the_field() {
        let cases = [
            ("/name", json!(" "), "name"),
            ("/layers", json!([]), "layers"),
            ("/layers/0/targets", json!({}), "layers[0].targets"),
            (
                "/layers/0/targets/chats/0",
                json!("cid-other=="),
                "layers[0].targets.chats",
            ),
            (
                "/layers/1/targets/members/0",
                json!("bob@example.com"),
                "layers[1].targets.members",
            ),
            (
                "/layers/1/targets",
                json!({"schedules": ["s1"]}),
                "layers[1].targets.schedules",
            ),
            (
                "/layers/0/escalate_after_secs",
                json!(10),
                "layers[0].escalate_after_secs",
            ),
            (
                "/layers/0/escalate_after_secs",
                json!(90_000),
                "layers[0].escalate_after_secs",
            ),
            (
                "/layers/1/ding/after_secs",
                json!(300),
                "layers[1].ding.after_secs",
            ),
            ("/repeat/times", json!(11), "repeat.times"),
            ("/repeat/from_layer", json!(2), "repeat.from_layer"),
            ("/ack_timeout_secs", json!(60), "ack_timeout_secs"),
        ];
        for (pointer, value, field) in cases {
            let mut body = good();
            *body.pointer_mut(pointer).expect(pointer) = value;
            let err = validate_policy(&spec(body), &Known).expect_err(pointer);
            assert_eq!(err.field, field, "{pointer}: {err}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut body = good();
        body["layers"][0]["wait"] = json!(5);
        assert!(serde_json::from_value::<PolicySpec>(body).is_err());
    }
}
