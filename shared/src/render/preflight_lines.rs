//! One pre-flight problem as the daily report in DingTalk says it, in the
//! integration's language: English is the API's own `message` and `fix`; Chinese is
//! said from the problem's facts.

use crate::domain::locale::Locale;
use crate::domain::preflight::{Problem, ProblemFacts};

/// What is wrong, and what to do about it, in `locale`.
pub fn problem_lines(problem: &Problem, locale: Locale) -> (String, String) {
    match locale {
        Locale::EnUs => (problem.message.clone(), problem.fix.clone()),
        Locale::ZhCn => chinese(&problem.facts),
    }
}

fn chinese(facts: &ProblemFacts) -> (String, String) {
    let link_code =
        "给他们发送关联码（POST …/members/{email}/link-code），在 H5 应用中打开，或绑定其钉钉用户";
    match facts {
        ProblemFacts::Gap {
            schedule,
            from,
            until,
            paged,
        } => (
            format!(
                "排班「{schedule}」在 {from} 至 {until} 无人值班：{}",
                if *paged {
                    "届时升级到它的那一级不会通知任何人"
                } else {
                    "目前还没有升级策略通知这个排班"
                }
            ),
            "为这段空档添加临时替班（POST …/schedules/{id}/overrides），或添加不受时段限制的基础轮换".into(),
        ),
        ProblemFacts::OncallUnassociated { email, from } => (
            format!("{email} 从 {from} 起值班，但尚未关联钉钉账号：发给他们的通知和交接提醒无人收到"),
            link_code.into(),
        ),
        ProblemFacts::MemberUnassociated { email } => (
            format!("{email} 会被升级策略通知，但尚未关联钉钉账号：收不到单聊消息，也不会被 @"),
            link_code.into(),
        ),
        ProblemFacts::MemberUnlicensed { email } => (
            format!("{email} 会被通知，但没有许可：无法认领或解决事件"),
            "为其开通许可（POST …/members，\"licensed\": true），或改为通知其他人".into(),
        ),
        ProblemFacts::ScheduleMissing { id } => (
            format!("排班 {id} 已不存在：通过它的那一级不会通知任何人"),
            "修改该级，改用一个存在的排班".into(),
        ),
        ProblemFacts::ChatNotListed { title } => (
            format!("群「{title}」不在群聊列表中"),
            "在该群安装酷应用（群设置 → 酷应用），或修改该级".into(),
        ),
        ProblemFacts::ChatUninstalled { title } => (
            format!("群「{title}」已卸载酷应用：发到那里的消息都收不到"),
            "在该群重新安装酷应用，或修改该级".into(),
        ),
        ProblemFacts::ChatProblem { title, problem } => (
            format!("群「{title}」投递出过问题：{problem}"),
            "确认该群仍然存在、机器人仍在群中；重新安装会清除该问题".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::preflight::ProblemKind;

    fn problem(facts: ProblemFacts) -> Problem {
        Problem {
            kind: ProblemKind::ChatProblem,
            message: "english message".into(),
            fix: "english fix".into(),
            used_in: Vec::new(),
            member: None,
            chat: None,
            schedule: None,
            from: None,
            until: None,
            facts,
        }
    }

    #[test]
    fn every_problem_is_said_in_chinese_with_its_values_and_english_is_the_api_text() {
        let email = || "li@example.com".to_string();
        let title = || "值班群".to_string();
        let all = [
            ProblemFacts::Gap {
                schedule: "Primary".into(),
                from: "2026-12-01T09:00:00+08:00".into(),
                until: "2026-12-01T18:00:00+08:00".into(),
                paged: true,
            },
            ProblemFacts::OncallUnassociated {
                email: email(),
                from: "2026-12-01T09:00:00Z".into(),
            },
            ProblemFacts::MemberUnassociated { email: email() },
            ProblemFacts::MemberUnlicensed { email: email() },
            ProblemFacts::ScheduleMissing { id: "sch-1".into() },
            ProblemFacts::ChatNotListed { title: title() },
            ProblemFacts::ChatUninstalled { title: title() },
            ProblemFacts::ChatProblem {
                title: title(),
                problem: "robot not in group".into(),
            },
        ];
        for facts in all {
            let p = problem(facts.clone());
            assert_eq!(
                problem_lines(&p, Locale::EnUs),
                ("english message".to_string(), "english fix".to_string())
            );
            let (what, fix) = problem_lines(&p, Locale::ZhCn);
            let value = match &facts {
                ProblemFacts::Gap { schedule, .. } => schedule.clone(),
                ProblemFacts::ScheduleMissing { id } => id.clone(),
                ProblemFacts::ChatNotListed { title }
                | ProblemFacts::ChatUninstalled { title }
                | ProblemFacts::ChatProblem { title, .. } => title.clone(),
                ProblemFacts::OncallUnassociated { email, .. }
                | ProblemFacts::MemberUnassociated { email }
                | ProblemFacts::MemberUnlicensed { email } => email.clone(),
            };
            assert!(what.contains(&value), "{what}");
            for line in [&what, &fix] {
                assert!(
                    line.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
                    "{line}"
                );
            }
        }
    }
}
