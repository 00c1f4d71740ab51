//! Why a person's action on an incident was refused, in words the person reads in
//! their own language: a card's private notice and the H5 app speak the
//! integration's (or the person's chosen) language; logs and records keep English.

use std::fmt;

use super::locale::Locale;

/// A refusal of an action on an incident (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The incident is resolved.
    AlreadyResolved,
    /// The member has no licence.
    NotLicensed {
        /// The member's e-mail address.
        email: String,
    },
    /// Reassign names no member of the integration.
    UnknownMember {
        /// The member id given.
        member: String,
    },
    /// A note is empty or too long.
    NoteLength {
        /// The most characters a note has.
        max: usize,
    },
    /// The store did not resolve the incident (an alert reopened it meanwhile).
    NotResolvable,
    /// Silence and Unsilence go through their own path, never through `change`.
    SilenceApart,
    /// The last escalation step is still being delivered.
    StepStillDelivering,
    /// Escalate on an incident without an escalation policy.
    NoPolicy,
    /// Escalate after the last layer and every repeat.
    LastLayerDone,
    /// The incident has no escalation state to act on.
    NoEscalationState,
    /// Silence in an integration without an Alertmanager.
    NoAlertmanager,
    /// Silence on an incident that did not come from Alertmanager.
    NotFromAlertmanager,
    /// Silence on an incident without labels to match.
    NoLabels,
    /// Silence on an incident whose labels were cut to the bounds.
    LabelsCut,
    /// Unsilence after the integration's Alertmanager was removed.
    AlertmanagerRemoved,
    /// Unsilence of a silence made in another Alertmanager than today's.
    SilenceElsewhere {
        /// The silence id.
        id: String,
    },
    /// Alertmanager gave no answer (connection failed, timed out).
    AlertmanagerUnreachable,
    /// Alertmanager answered with an error status.
    AlertmanagerRefused {
        /// The HTTP status.
        status: u16,
    },
    /// The Alertmanager URL is refused by the outbound rules.
    AlertmanagerUrlRefused,
    /// Alertmanager's answer was not what it answers.
    AlertmanagerBadAnswer,
    /// The incident is past its retention: it no longer exists.
    Gone,
    /// The DingTalk account is not associated with a member yet.
    NotAssociated,
    /// The member the account was associated with was deleted.
    MemberGone,
}

impl Refusal {
    /// The refusal in `locale`'s words.
    pub fn text(&self, locale: Locale) -> String {
        match locale {
            Locale::EnUs => self.english(),
            Locale::ZhCn => self.chinese(),
        }
    }

    fn english(&self) -> String {
        match self {
            Self::AlreadyResolved => "the incident is already resolved".into(),
            Self::NotLicensed { email } => format!(
                "{email} has no licence: ask an admin to license the account before acting on incidents"
            ),
            Self::UnknownMember { member } => {
                format!("no member {member}: reassign to a member of the integration")
            }
            Self::NoteLength { max } => format!("a note has 1 to {max} characters"),
            Self::NotResolvable => "the incident could not be resolved".into(),
            Self::SilenceApart => "silences are applied on their own".into(),
            Self::StepStillDelivering => {
                "the last escalation step is still being delivered: try again in a few seconds"
                    .into()
            }
            Self::NoPolicy => {
                "this incident has no escalation policy: add a route for it, or Reassign it".into()
            }
            Self::LastLayerDone => {
                "the last layer (and every repeat) was already notified: Reassign to someone".into()
            }
            Self::NoEscalationState => "the incident has no escalation state".into(),
            Self::NoAlertmanager => {
                "this integration has no Alertmanager: an admin sets its `alertmanager` URL first"
                    .into()
            }
            Self::NotFromAlertmanager => {
                "only incidents that came from Alertmanager can be silenced".into()
            }
            Self::NoLabels => "the incident has no labels to build matchers from".into(),
            Self::LabelsCut => "the alert's labels were cut to fit (too many or too long), so a silence built from them would not match its alerts: silence it in Alertmanager".into(),
            Self::AlertmanagerRemoved => {
                "this integration has no Alertmanager any more: the silence ends on its own".into()
            }
            Self::SilenceElsewhere { id } => format!(
                "silence {id} was made in another Alertmanager than the integration's now: expire it there"
            ),
            Self::AlertmanagerUnreachable => "Alertmanager could not be reached".into(),
            Self::AlertmanagerRefused { status } => {
                format!("Alertmanager refused the request (HTTP {status})")
            }
            Self::AlertmanagerUrlRefused => {
                "the Alertmanager URL is refused by the outbound rules".into()
            }
            Self::AlertmanagerBadAnswer => "Alertmanager's answer is not a silence id".into(),
            Self::Gone => "the incident no longer exists (past its retention)".into(),
            Self::NotAssociated => {
                "your DingTalk account is not associated yet: enter the link code from your admin"
                    .into()
            }
            Self::MemberGone => "the associated member no longer exists; associate again".into(),
        }
    }

    fn chinese(&self) -> String {
        match self {
            Self::AlreadyResolved => "该事件已解决".into(),
            Self::NotLicensed { email } => {
                format!("{email} 没有许可：请管理员为该账号开通许可后再处理事件")
            }
            Self::UnknownMember { member } => {
                format!("没有成员 {member}：请转派给本集成的成员")
            }
            Self::NoteLength { max } => format!("备注须为 1 到 {max} 个字符"),
            Self::NotResolvable => "该事件未能解决".into(),
            Self::SilenceApart => "静默需单独操作".into(),
            Self::StepStillDelivering => "上一级升级通知仍在发送中，请几秒后再试".into(),
            Self::NoPolicy => "该事件没有升级策略：请为它添加路由，或转派".into(),
            Self::LastLayerDone => "最后一级（及每次重复）均已通知：请转派给某人".into(),
            Self::NoEscalationState => "该事件没有升级状态".into(),
            Self::NoAlertmanager => {
                "本集成没有 Alertmanager：请管理员先设置其 `alertmanager` 地址".into()
            }
            Self::NotFromAlertmanager => "只有来自 Alertmanager 的事件才能静默".into(),
            Self::NoLabels => "该事件没有可用于匹配的标签".into(),
            Self::LabelsCut => {
                "告警标签过多或过长，已被截断，据此创建的静默无法准确匹配：请在 Alertmanager 中静默"
                    .into()
            }
            Self::AlertmanagerRemoved => "本集成已不再配置 Alertmanager：静默到期后自行结束".into(),
            Self::SilenceElsewhere { id } => {
                format!("静默 {id} 创建于另一个 Alertmanager（不是本集成现在的）：请在那里使其失效")
            }
            Self::AlertmanagerUnreachable => "无法连接 Alertmanager".into(),
            Self::AlertmanagerRefused { status } => {
                format!("Alertmanager 拒绝了请求（HTTP {status}）")
            }
            Self::AlertmanagerUrlRefused => "Alertmanager 地址不符合出站规则，已被拒绝".into(),
            Self::AlertmanagerBadAnswer => "Alertmanager 的应答不是静默 ID".into(),
            Self::Gone => "该事件已超过保留期，不复存在".into(),
            Self::NotAssociated => "你的钉钉账号还没有关联：请输入管理员给你的关联码".into(),
            Self::MemberGone => "关联的成员已不存在，请重新关联".into(),
        }
    }
}

/// English, for logs and records.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.english())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Refusal> {
        vec![
            Refusal::AlreadyResolved,
            Refusal::NotLicensed {
                email: "li@example.com".into(),
            },
            Refusal::UnknownMember {
                member: "m1".into(),
            },
            Refusal::NoteLength { max: 2000 },
            Refusal::NotResolvable,
            Refusal::SilenceApart,
            Refusal::StepStillDelivering,
            Refusal::NoPolicy,
            Refusal::LastLayerDone,
            Refusal::NoEscalationState,
            Refusal::NoAlertmanager,
            Refusal::NotFromAlertmanager,
            Refusal::NoLabels,
            Refusal::LabelsCut,
            Refusal::AlertmanagerRemoved,
            Refusal::SilenceElsewhere { id: "s-1".into() },
            Refusal::AlertmanagerUnreachable,
            Refusal::AlertmanagerRefused { status: 503 },
            Refusal::AlertmanagerUrlRefused,
            Refusal::AlertmanagerBadAnswer,
            Refusal::Gone,
            Refusal::NotAssociated,
            Refusal::MemberGone,
        ]
    }

    #[test]
    fn every_refusal_reads_in_both_languages_with_its_values() {
        for refusal in all() {
            let zh = refusal.text(Locale::ZhCn);
            let en = refusal.text(Locale::EnUs);
            assert_eq!(en, refusal.to_string());
            assert_ne!(zh, en, "{refusal:?} is not translated");
            assert!(
                zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                "{zh}"
            );
            for value in ["li@example.com", "m1", "2000", "s-1", "503"] {
                assert_eq!(zh.contains(value), en.contains(value), "{refusal:?}");
            }
        }
    }
}
