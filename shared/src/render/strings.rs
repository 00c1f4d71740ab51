//! Every text sent to DingTalk, one typed table per locale (ARCHITECTURE.md §11).
//! A missing string is a compile error (each table is a struct literal); a test
//! checks that no string is empty and that every `{placeholder}` of a string is in
//! both languages. Glossary (zh-CN): firing 告警中, resolved 已恢复; critical 严重,
//! warning 警告, info 提醒; triggered 待处理, acknowledged 处理中, resolved 已解决;
//! Acknowledge 认领, Resolve 解决, Snooze 暂缓, Escalate 升级, Reassign 转派, Details 详情.

use serde::Serialize;

use crate::domain::incident::{IncidentStatus, Severity};
use crate::domain::locale::Locale;

/// The texts of one language. `{name}` marks a value filled in with [`fill`].
#[derive(Debug, Serialize)]
pub struct Strings {
    /// Header word of a firing incident.
    pub firing: &'static str,
    /// Header word of an acknowledged incident.
    pub acknowledged: &'static str,
    /// Header word of a resolved incident.
    pub resolved: &'static str,
    /// Header word of a storm digest card.
    pub storm_label: &'static str,
    /// Severity critical.
    pub critical: &'static str,
    /// Severity warning.
    pub warning: &'static str,
    /// Severity info.
    pub info: &'static str,
    /// Button: acknowledge.
    pub ack: &'static str,
    /// Button: resolve.
    pub resolve: &'static str,
    /// Button: snooze.
    pub snooze: &'static str,
    /// Button: escalate.
    pub escalate: &'static str,
    /// Button: reassign.
    pub reassign: &'static str,
    /// Button: details.
    pub details: &'static str,
    /// Button: silence in Alertmanager for an hour.
    pub silence_1h: &'static str,
    /// Button: silence for four hours.
    pub silence_4h: &'static str,
    /// Button: silence for a day.
    pub silence_24h: &'static str,
    /// Button: expire the silence.
    pub unsilence: &'static str,
    /// Card fact: `{until}` (local time) `{by}`.
    pub silenced_until: &'static str,
    /// Link to the full description.
    pub full_description: &'static str,
    /// More labels or links than shown: `{n}`.
    pub more_in_app: &'static str,
    /// `Started {time}`.
    pub started: &'static str,
    /// ` · resolved {time}`.
    pub resolved_at: &'static str,
    /// ` · acknowledged by {name}`.
    pub acked_by: &'static str,
    /// ` · key {key}`.
    pub key: &'static str,
    /// `Layer {n} of {m}`.
    pub layer_of: &'static str,
    /// `next escalation {time}`.
    pub next_escalation: &'static str,
    /// Every layer was notified.
    pub every_layer_notified: &'static str,
    /// `assignees: {names}`.
    pub assignees: &'static str,
    /// DING: `[{severity}] {title} — not acknowledged yet{layer}. Acknowledge: {url}`.
    pub ding: &'static str,
    /// DING layer part: ` (escalation layer {n} of {m})`.
    pub ding_layer: &'static str,
    /// Resolved follow-up line: `Resolved {time} by {by} · started {started} · key {key}`.
    pub resolved_line: &'static str,
    /// Who resolved when the source did.
    pub by_source: &'static str,
    /// Title prefix of a resolved follow-up.
    pub resolved_title: &'static str,
    /// Link prompt: title.
    pub link_title: &'static str,
    /// Link prompt: text.
    pub link_text: &'static str,
    /// Link prompt: button.
    pub link_button: &'static str,
    /// Usage notice title: `{threshold}`.
    pub usage_title: &'static str,
    /// Usage notice text: `{threshold} {used} {quota} {month} {critical_from} {integration}`.
    pub usage_text: &'static str,
    /// Storm digest title: `{group} {folded}`.
    pub digest_title: &'static str,
    /// Storm digest text: `{folded} {threshold} {window}`.
    pub digest_text: &'static str,
    /// Storm digest: more than listed: `{n}`.
    pub digest_more: &'static str,
    /// Storm digest: the link to the group's incidents.
    pub digest_link: &'static str,
    /// Handoff notice title: `{schedule}`.
    pub handoff_title: &'static str,
    /// Handoff notice: `{schedule} {start} {until} {link}`.
    pub handoff_text: &'static str,
    /// Link text to the person's shifts.
    pub my_shifts: &'static str,
    /// "Now on call" title: `{member}`.
    pub now_on_call_title: &'static str,
    /// "Now on call" text: `{member} {schedule} {start} {until}`.
    pub now_on_call_text: &'static str,
    /// Pre-flight title: `{count}`.
    pub preflight_title: &'static str,
    /// Pre-flight header: `{count} {days} {integration}`.
    pub preflight_text: &'static str,
    /// Pre-flight: more problems than listed: `{n}`.
    pub preflight_more: &'static str,
    /// Card private notice: a button the code does not know.
    pub card_unknown_button: &'static str,
    /// Card private notice: someone acted first.
    pub card_conflict: &'static str,
    /// Card private notice: not associated: `{link}`.
    pub card_not_associated: &'static str,
    /// Card private notice: the associated member is gone.
    pub card_member_gone: &'static str,
    /// Card private notice: not associated, the click is held for 15 minutes: `{link}`.
    pub card_held: &'static str,
    /// Card private notice: Alertmanager failed, nothing changed: `{reason}`.
    pub card_silence_failed: &'static str,
}

/// Simplified Chinese.
pub static ZH_CN: Strings = Strings {
    firing: "告警中",
    acknowledged: "处理中",
    resolved: "已恢复",
    storm_label: "告警风暴",
    critical: "严重",
    warning: "警告",
    info: "提醒",
    ack: "✋ 认领",
    resolve: "✅ 解决",
    snooze: "💤 暂缓",
    escalate: "⏫ 升级",
    reassign: "👉 转派",
    details: "📄 详情",
    silence_1h: "🔕 静默 1 小时",
    silence_4h: "🔕 静默 4 小时",
    silence_24h: "🔕 静默 24 小时",
    unsilence: "🔔 取消静默",
    silenced_until: "🔕 已在 Alertmanager 静默至 {until}（{by}）",
    full_description: "完整描述",
    more_in_app: "… 另有 {n} 项，请在应用中查看",
    started: "开始于 {time}",
    resolved_at: " · 恢复于 {time}",
    acked_by: " · 认领人 {name}",
    key: " · 告警键 {key}",
    layer_of: "⏫ 第 {n}/{m} 层",
    next_escalation: "下次升级 {time}",
    every_layer_notified: "所有层级均已通知",
    assignees: "处理人：{names}",
    ding: "🚨 [{severity}] {title} — 尚未认领{layer}。认领：{url}",
    ding_layer: "（升级第 {n}/{m} 层）",
    resolved_line: "{time} 由 {by} 解决 · 开始于 {started} · 告警键 {key}",
    by_source: "告警源",
    resolved_title: "[已恢复]",
    link_title: "关联您的账号",
    link_text: "### 关联您的值班账号\n\n您点击了告警卡片上的按钮，但您的钉钉账号尚未关联值班账号。请打开一次应用完成关联，之后按钮即可使用。",
    link_button: "打开应用",
    usage_title: "钉钉接口用量已达 {threshold}%",
    usage_text: "### <font color=#F58B00>⚠️ 钉钉接口用量已达 {threshold}%</font>\n\n本月（{month}）已使用 {used} / {quota} 次调用。达到 80% 后，提醒级告警将折叠进各群的汇总消息；达到 {critical_from}% 后只发送严重告警，其余级别记录为已抑制。燃烧速率与预计耗尽时间见 GET /api/integrations/{integration}/usage；如您的钉钉版本允许，可调高 monthly_quota。",
    digest_title: "🌪 告警风暴：{group}，已折叠 {folded} 个",
    digest_text: "### <font color=#D83931>🌪 告警风暴</font>\n\n本群 {window} 秒内新故障超过 {threshold} 个：后续告警折叠到这里，不再逐条发送（本月钉钉调用超过 80% 时，提醒级告警也会折叠）。\n\n**已折叠 {folded} 个**，最新的在前：\n\n",
    digest_more: "- … 另有 {n} 个\n",
    digest_link: "查看本群故障",
    handoff_title: "即将值班：{schedule}",
    handoff_text: "### <font color=#F58B00>🕘 您即将值班</font>\n\n**{schedule}**：您的班次从 {start} 开始，到 {until} 结束。\n\n期间使用该排班的升级层级会通知您。{link}",
    my_shifts: "查看我的班次",
    now_on_call_title: "当前值班：{member}",
    now_on_call_text: "### 📟 当前值班：{member}\n\n**{schedule}**，{start} 至 {until}。",
    preflight_title: "值班预检：{count} 个问题",
    preflight_text: "### <font color=#F58B00>🛫 值班预检：未来 {days} 天有 {count} 个问题</font>\n\n**{integration}**：以下问题会让告警无人接收。\n",
    preflight_more: "\n\n… 另有 {n} 个：GET /api/integrations/{{id}}/preflight",
    card_unknown_button: "未知按钮；请更新卡片模板（见 README）",
    card_conflict: "已有人先操作；这是当前状态。",
    card_not_associated: "您的钉钉账号尚未关联：请先打开一次应用（{link}）完成关联，然后再次点击按钮。",
    card_member_gone: "您关联的值班账号已不存在；请打开应用重新关联。",
    card_held: "您的钉钉账号尚未关联，这次点击已为您保留 15 分钟：请在 15 分钟内打开应用（{link}）完成关联，之后将以您的名义自动执行。",
    card_silence_failed: "Alertmanager 操作失败，未做任何更改：{reason}。请稍后重试，或在 Alertmanager 中操作。",
};

/// English.
pub static EN_US: Strings = Strings {
    firing: "FIRING",
    acknowledged: "ACKNOWLEDGED",
    resolved: "RESOLVED",
    storm_label: "ALERT STORM",
    critical: "critical",
    warning: "warning",
    info: "info",
    ack: "✋ Acknowledge",
    resolve: "✅ Resolve",
    snooze: "💤 Snooze",
    escalate: "⏫ Escalate",
    reassign: "👉 Reassign",
    details: "📄 Details",
    silence_1h: "🔕 Silence 1h",
    silence_4h: "🔕 Silence 4h",
    silence_24h: "🔕 Silence 24h",
    unsilence: "🔔 Unsilence",
    silenced_until: "🔕 Silenced in Alertmanager until {until} ({by})",
    full_description: "Full description",
    more_in_app: "… {n} more in the app",
    started: "Started {time}",
    resolved_at: " · resolved {time}",
    acked_by: " · acknowledged by {name}",
    key: " · key {key}",
    layer_of: "⏫ Layer {n} of {m}",
    next_escalation: "next escalation {time}",
    every_layer_notified: "every layer notified",
    assignees: "assignees: {names}",
    ding: "🚨 [{severity}] {title} — not acknowledged yet{layer}. Acknowledge: {url}",
    ding_layer: " (escalation layer {n} of {m})",
    resolved_line: "Resolved {time} by {by} · started {started} · key {key}",
    by_source: "source",
    resolved_title: "[Resolved]",
    link_title: "Associate your account",
    link_text: "### Associate your on-call account\n\nYou pressed a button on an alert card, but your DingTalk account is not associated with an on-call account yet. Open the app once to associate it; then the buttons work for you.",
    link_button: "Open the app",
    usage_title: "DingTalk API budget {threshold}% used",
    usage_text: "### <font color=#F58B00>⚠️ DingTalk API budget: {threshold}% used</font>\n\n{used} of {quota} calls this month ({month}) are used. From 80%, info alerts fold into each group's digest; from {critical_from}%, only critical alerts are sent and lower severities are recorded as suppressed. See GET /api/integrations/{integration}/usage for the burn rate and projected exhaustion; raise monthly_quota if your DingTalk edition allows more.",
    digest_title: "🌪 Alert storm in {group}: {folded} folded",
    digest_text: "### <font color=#D83931>🌪 Alert storm</font>\n\nMore than {threshold} new incidents in {window} s in this group: further alerts are folded here instead of one message each (and info alerts too while over 80% of the month's DingTalk calls are used).\n\n**{folded} folded**, newest first:\n\n",
    digest_more: "- … and {n} more\n",
    digest_link: "Open the group's incidents",
    handoff_title: "On call soon: {schedule}",
    handoff_text: "### <font color=#F58B00>🕘 You are on call soon</font>\n\n**{schedule}**: your shift starts {start} and runs until {until}.\n\nPages of escalation layers that use this schedule come to you then. {link}",
    my_shifts: "See your next shifts",
    now_on_call_title: "Now on call: {member}",
    now_on_call_text: "### 📟 Now on call: {member}\n\n**{schedule}**, from {start} until {until}.",
    preflight_title: "Pre-flight: {count} problems",
    preflight_text: "### <font color=#F58B00>🛫 Pre-flight: {count} problems in the next {days} days</font>\n\n**{integration}**: these would make a page go nowhere.\n",
    preflight_more: "\n\n…and {n} more: GET /api/integrations/{{id}}/preflight",
    card_unknown_button: "Unknown button; update the card template (see README)",
    card_conflict: "Someone acted first; this is the current state.",
    card_not_associated: "Your DingTalk account is not associated yet: open the app once ({link}) to associate it, then press the button again.",
    card_member_gone: "Your associated account no longer exists; open the app to associate again.",
    card_held: "Your DingTalk account is not associated yet, so your click is held for 15 minutes: open the app ({link}) and associate within 15 minutes, and it is then applied in your name.",
    card_silence_failed: "Alertmanager failed and nothing changed: {reason}. Try again later, or act in Alertmanager.",
};

impl Strings {
    /// The table of `locale`.
    pub fn of(locale: Locale) -> &'static Strings {
        match locale {
            Locale::ZhCn => &ZH_CN,
            Locale::EnUs => &EN_US,
        }
    }

    /// A severity's word.
    pub fn severity(&self, severity: Severity) -> &'static str {
        match severity {
            Severity::Critical => self.critical,
            Severity::Warning => self.warning,
            Severity::Info => self.info,
        }
    }

    /// A status header word (firing, acknowledged, resolved).
    pub fn status(&self, status: IncidentStatus) -> &'static str {
        match status {
            IncidentStatus::Triggered => self.firing,
            IncidentStatus::Acknowledged => self.acknowledged,
            IncidentStatus::Resolved => self.resolved,
        }
    }
}

/// `text` with each `{name}` replaced by its value, in one pass (a value is never
/// read again, so braces in it stay as they are); `{{` and `}}` are literal braces.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(end) = tail.find('}').filter(|_| tail.starts_with('{'))
            && let Some((_, value)) = values.iter().find(|(name, _)| *name == &tail[1..end])
        {
            out.push_str(value);
            rest = &tail[end + 1..];
            continue;
        }
        out.push_str(&tail[..1]);
        rest = &tail[1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(text: &str) -> Vec<String> {
        let mut names: Vec<String> = text
            .replace("{{", "")
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn both_languages_have_every_string_with_the_same_placeholders() {
        let zh = serde_json::to_value(&ZH_CN).expect("zh");
        let en = serde_json::to_value(&EN_US).expect("en");
        let (zh, en) = (zh.as_object().expect("map"), en.as_object().expect("map"));
        assert_eq!(zh.keys().collect::<Vec<_>>(), en.keys().collect::<Vec<_>>());
        for (key, zh_text) in zh {
            let (zh_text, en_text) = (
                zh_text.as_str().unwrap_or(""),
                en[key].as_str().unwrap_or(""),
            );
            assert!(!zh_text.is_empty() && !en_text.is_empty(), "{key} is empty");
            assert_eq!(placeholders(zh_text), placeholders(en_text), "{key}");
        }
    }

    #[test]
    fn the_glossary_holds() {
        assert_eq!(ZH_CN.status(IncidentStatus::Triggered), "告警中");
        assert_eq!(ZH_CN.status(IncidentStatus::Resolved), "已恢复");
        assert_eq!(ZH_CN.severity(Severity::Critical), "严重");
        assert!(ZH_CN.ack.contains("认领") && ZH_CN.reassign.contains("转派"));
        assert_eq!(fill("a {x} {{b}}", &[("x", "1")]), "a 1 {b}");
        // Values are not read again: braces and placeholders in them stay.
        assert_eq!(
            fill(
                "{title} {url}",
                &[("title", "{{x}} {url}"), ("url", "https://u")]
            ),
            "{{x}} {url} https://u"
        );
    }
}
