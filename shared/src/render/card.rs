//! Interactive cards: the template's variables (`cardParamMap`), the one content
//! hash that decides whether a card needs an update, and the `createAndDeliver` body.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::strings::fill;
use super::{
    RenderContext, cut, escalation_line, in_dingtalk, incident_url, local_time, markdown_link,
    sanitize, started, status_color, status_line,
};
use crate::domain::incident::{Incident, IncidentStatus};
use crate::domain::silence::{matchers_of, unsilenceable};

/// The interactive card's variables (`cardParamMap`: every value a string of at
/// most 1 KB; see README "Card template").
pub fn card_params(incident: &Incident, ctx: &RenderContext<'_>) -> Map<String, Value> {
    let mut map = Map::new();
    let mut put = |k: &str, v: String| {
        map.insert(k.to_string(), Value::from(cut(&v, 1000).to_string()));
    };
    content_params(incident, ctx, &mut put);
    action_params(incident, ctx, &mut put);
    silence_params(incident, ctx, &mut put);
    map
}

/// What the card says: title, status, severity, description, labels, links, people
/// and times (local to the integration's zone).
fn content_params(
    incident: &Incident,
    ctx: &RenderContext<'_>,
    put: &mut impl FnMut(&str, String),
) {
    let status = match incident.status {
        IncidentStatus::Triggered => "firing",
        IncidentStatus::Acknowledged => "acknowledged",
        IncidentStatus::Resolved => "resolved",
    };
    let labels: Vec<String> = incident
        .labels
        .iter()
        .map(|(k, v)| format!("{}: {}", sanitize::inline(k), sanitize::inline(v)))
        .collect();
    let links: Vec<String> = incident
        .links
        .iter()
        .map(|l| markdown_link(&l.title, &l.url))
        .collect();
    let s = ctx.strings();
    let custom = ctx.custom.as_ref();
    put("incident", incident.id.clone());
    let title = custom.and_then(|c| c.title.clone());
    put(
        "title",
        title.unwrap_or_else(|| sanitize::inline(&incident.title)),
    );
    put("severity", incident.severity.label().to_string());
    put("status", status.to_string());
    put("status_text", status_line(incident, s));
    put("status_label", s.status(incident.status).to_string());
    put("severity_label", s.severity(incident.severity).to_string());
    put("status_color", status_color(incident).to_string());
    put("locale", ctx.locale.tag().to_string());
    let body = custom.and_then(|c| c.body.clone());
    put(
        "description",
        body.unwrap_or_else(|| sanitize::description(&incident.description)),
    );
    put("labels", labels.join(" · "));
    put("links", links.join("  "));
    put("acked_by", incident.acked_by.clone().unwrap_or_default());
    let resolved_by = incident.resolved_by.clone().unwrap_or_default();
    put("resolved_by", resolved_by);
    let snoozed_until = incident.snoozed_until.as_deref();
    put(
        "snoozed_until",
        snoozed_until
            .map(|t| local_time(t, ctx.timezone))
            .unwrap_or_default(),
    );
    put("started_at", local_time(started(incident), ctx.timezone));
    put("updated_at", local_time(&incident.updated_at, ctx.timezone));
    let escalation = escalation_line(incident, ctx.timezone, s).unwrap_or_default();
    put("escalation", escalation);
    put("assignees", incident.assignees.join(", "));
}

/// Which buttons show (by the incident's status and policy), their labels in the
/// integration's language, and the details link.
fn action_params(incident: &Incident, ctx: &RenderContext<'_>, put: &mut impl FnMut(&str, String)) {
    let s = ctx.strings();
    let open = incident.status != IncidentStatus::Resolved;
    let triggered = incident.status == IncidentStatus::Triggered;
    put("show_ack", triggered.to_string());
    put("show_resolve", open.to_string());
    put("show_snooze", open.to_string());
    let has_policy = incident
        .escalation
        .as_ref()
        .is_some_and(|e| e.policy.is_some());
    put("show_escalate", (open && has_policy).to_string());
    put("show_reassign", open.to_string());
    let details = in_dingtalk(&incident_url(ctx.base_url, incident, None));
    put("details_url", details);
    for (key, label) in [
        ("btn_ack", s.ack),
        ("btn_resolve", s.resolve),
        ("btn_snooze", s.snooze),
        ("btn_escalate", s.escalate),
        ("btn_reassign", s.reassign),
        ("btn_details", s.details),
    ] {
        put(key, label.to_string());
    }
}

/// The Silence buttons (while open, on an Alertmanager incident of an integration
/// with an Alertmanager, and not silenced), Unsilence, the matchers a silence would
/// use, and the silence's end.
fn silence_params(
    incident: &Incident,
    ctx: &RenderContext<'_>,
    put: &mut impl FnMut(&str, String),
) {
    let s = ctx.strings();
    let silenceable = ctx.silence_ready && unsilenceable(incident, true).is_none();
    // A silence past its end (known when rendered with a clock) shows as ended.
    let silenced = incident
        .silence
        .as_ref()
        .filter(|silence| ctx.now_ms.is_none_or(|now| silence.runs_at(now)));
    put(
        "show_silence",
        (silenceable && silenced.is_none()).to_string(),
    );
    put(
        "show_unsilence",
        (ctx.silence_ready && silenced.is_some()).to_string(),
    );
    let matchers: Vec<String> = if silenceable && silenced.is_none() {
        matchers_of(incident)
            .iter()
            .map(|m| sanitize::inline(&m.display()))
            .collect()
    } else {
        Vec::new()
    };
    put("silence_matchers", matchers.join(", "));
    put(
        "silenced_until",
        silenced
            .map(|silence| {
                fill(
                    s.silenced_until,
                    &[
                        ("until", &local_time(&silence.until, ctx.timezone)),
                        ("by", &sanitize::inline(&silence.by)),
                    ],
                )
            })
            .unwrap_or_default(),
    );
    for (key, label) in [
        ("btn_silence_1h", s.silence_1h),
        ("btn_silence_4h", s.silence_4h),
        ("btn_silence_24h", s.silence_24h),
        ("btn_unsilence", s.unsilence),
    ] {
        put(key, label.to_string());
    }
}

/// The content hash of a card's parameters: equal hashes need no update.
pub fn content_hash(params: &Map<String, Value>) -> String {
    hex::encode(Sha256::digest(
        Value::Object(params.clone()).to_string().as_bytes(),
    ))
}

/// Where a card goes: a group (with @mentions) or one person's robot chat.
#[derive(Debug, Clone, Copy)]
pub enum CardSpace<'a> {
    /// A group chat, by openConversationId, with the people to @mention.
    Group {
        /// openConversationId.
        cid: &'a str,
        /// (userId, name) to @mention.
        mentions: &'a [(String, String)],
    },
    /// A person's 1:1 chat with the robot, by userId.
    Person(&'a str),
}

/// A `POST /v1.0/card/instances/createAndDeliver` request.
#[derive(Debug, Clone, Copy)]
pub struct CardDelivery<'a> {
    /// The card template.
    pub template_id: &'a str,
    /// Our stable id of this card instance.
    pub out_track_id: &'a str,
    /// The card callback route key.
    pub callback_route_key: &'a str,
    /// The robot that delivers it.
    pub robot_code: &'a str,
    /// Where it goes.
    pub space: CardSpace<'a>,
}

impl CardDelivery<'_> {
    /// The request body, with `params` as the card's variables.
    pub fn body(&self, params: &Map<String, Value>) -> Value {
        let mut body = json!({
            "cardTemplateId": self.template_id,
            "outTrackId": self.out_track_id,
            "callbackType": "HTTP",
            "callbackRouteKey": self.callback_route_key,
            "cardData": {"cardParamMap": params},
            "userIdType": 1,
        });
        match self.space {
            CardSpace::Group { cid, mentions } => {
                let at: Map<String, Value> = mentions
                    .iter()
                    .map(|(id, name)| (id.clone(), Value::from(name.clone())))
                    .collect();
                body["openSpaceId"] = Value::from(format!("dtv1.card//IM_GROUP.{cid}"));
                body["imGroupOpenSpaceModel"] = json!({"supportForward": true});
                body["imGroupOpenDeliverModel"] =
                    json!({"robotCode": self.robot_code, "atUserIds": at});
            }
            CardSpace::Person(user_id) => {
                body["openSpaceId"] = Value::from(format!("dtv1.card//IM_ROBOT.{user_id}"));
                body["imRobotOpenSpaceModel"] = json!({"supportForward": true});
                body["imRobotOpenDeliverModel"] =
                    json!({"spaceType": "IM_ROBOT", "robotCode": self.robot_code});
            }
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::{ctx, incident};

    #[test]
    fn card_params_are_short_strings() {
        let params = card_params(&incident(&"x".repeat(5000)), &ctx(&[]));
        assert!(
            params
                .values()
                .all(|v| v.as_str().is_some_and(|s| s.len() <= 1000))
        );
        assert_eq!(params["status"], "firing");
        assert_eq!(params["show_ack"], "true");
    }

    #[test]
    fn a_silence_past_its_end_shows_as_ended_when_the_card_knows_the_time() {
        let mut silenced = incident("x");
        silenced.source = Some("alertmanager".into());
        silenced.labels = [("alertname".to_string(), "DiskFull".to_string())].into();
        silenced.silence = Some(crate::domain::silence::ActiveSilence {
            id: "s-1".into(),
            until: "2026-11-28T10:00:00Z".into(),
            by: "Alice".into(),
            alertmanager: None,
        });
        let mut at = ctx(&[]);
        at.silence_ready = true;
        let end_ms = 1_795_860_000_000; // 2026-11-28T10:00:00Z
        for (now_ms, running) in [
            (None, true),
            (Some(end_ms - 1), true),
            (Some(end_ms), false),
        ] {
            at.now_ms = now_ms;
            let params = card_params(&silenced, &at);
            assert_eq!(params["show_unsilence"], running.to_string(), "{now_ms:?}");
            assert_eq!(params["show_silence"], (!running).to_string(), "{now_ms:?}");
            let until = params["silenced_until"].as_str().unwrap_or_default();
            assert_eq!(until.contains("Alice"), running, "{now_ms:?}");
        }
    }

    #[test]
    fn a_zh_cn_critical_firing_card_speaks_chinese_and_en_us_is_unchanged() {
        let mut zh = ctx(&[]);
        zh.locale = crate::domain::locale::Locale::ZhCn;
        let params = card_params(&incident("x"), &zh);
        assert!(
            params["status_text"]
                .as_str()
                .is_some_and(|t| t.contains("告警中") && t.contains("严重"))
        );
        assert_eq!(params["status_label"], "告警中");
        assert_eq!(params["severity_label"], "严重");
        assert_eq!(params["btn_ack"], "✋ 认领");
        assert_eq!(params["status"], "firing", "API values stay English");
        let mut resolved = incident("x");
        resolved.status = IncidentStatus::Resolved;
        let params = card_params(&resolved, &zh);
        assert!(
            params["status_text"]
                .as_str()
                .is_some_and(|t| t.contains("已恢复"))
        );
        let en = card_params(&incident("x"), &ctx(&[]));
        assert!(
            en["status_text"]
                .as_str()
                .is_some_and(|t| t.contains("FIRING · critical"))
        );
        assert_eq!(en["btn_ack"], "✋ Acknowledge");
    }

    #[test]
    fn equal_content_has_equal_hash() {
        let a = card_params(&incident("x"), &ctx(&[]));
        let mut b = a.clone();
        assert_eq!(content_hash(&a), content_hash(&b));
        b.insert("title".into(), Value::from("other"));
        assert_ne!(content_hash(&a), content_hash(&b));
    }

    #[test]
    fn group_cards_mention_and_person_cards_go_to_the_robot_chat() {
        let mentions = vec![("u1".to_string(), "Alice".to_string())];
        let delivery = CardDelivery {
            template_id: "tpl",
            out_track_id: "inc-1",
            callback_route_key: "dtinc-int",
            robot_code: "robot",
            space: CardSpace::Group {
                cid: "cid==",
                mentions: &mentions,
            },
        };
        let body = delivery.body(&Map::new());
        assert_eq!(body["openSpaceId"], "dtv1.card//IM_GROUP.cid==");
        assert_eq!(body["imGroupOpenDeliverModel"]["atUserIds"]["u1"], "Alice");
        let body = CardDelivery {
            space: CardSpace::Person("u1"),
            ..delivery
        }
        .body(&Map::new());
        assert_eq!(body["openSpaceId"], "dtv1.card//IM_ROBOT.u1");
        assert_eq!(body["imRobotOpenDeliverModel"]["spaceType"], "IM_ROBOT");
    }
}
