//! Template compile, render, sandbox and fallback tests.

use super::*;
use crate::render::fixtures::incident;

fn scope() -> TemplateScope<'static> {
    TemplateScope {
        integration: "支付团队",
        timezone: "Asia/Shanghai",
        locale: Locale::ZhCn,
        base_url: "https://x.example",
        // 2026-11-24T02:14:03Z: 72 minutes after the fixture started.
        now_ms: 1_795_486_443_000,
    }
}

fn templates(title: Option<&str>, body: Option<&str>) -> MessageTemplates {
    MessageTemplates {
        title: title.map(str::to_string),
        body: body.map(str::to_string),
    }
}

#[test]
fn a_template_sees_the_contract_context_and_the_helpers() {
    let t = templates(
        Some("[{{ alert.severity | upper }}] {{ alert.title }} · {{ integration.name }}"),
        Some(
            "**服务**：{{ labels.service }}\n开始：{{ incident.started_at | localtime }}（{{ incident.started_at | duration }}）\n[详情]({{ incident.url }})",
        ),
    );
    let text = render(&t, &incident("d"), scope()).expect("renders");
    assert_eq!(
        text.title.as_deref(),
        Some("[CRITICAL] p99 latency above 2s · 支付团队")
    );
    let body = text.body.expect("body");
    assert!(body.contains("**服务**：payments"), "{body}");
    assert!(
        body.contains("开始：2026-11-24 09:02（1小时12分钟）"),
        "{body}"
    );
    assert!(
        body.contains("https://x.example/dingtalk/int1/app?incident=inc1"),
        "{body}"
    );
}

#[test]
fn compile_errors_name_the_template_and_the_line() {
    let bad = templates(Some("ok"), Some("line one\n{% if x %}\nunclosed"));
    let err = check(&bad).expect_err("invalid");
    assert_eq!(
        (err.field, err.line),
        ("body", 2),
        "the unclosed block: {err}"
    );
    let err = check(&templates(Some("{{ broken"), None)).expect_err("invalid");
    assert_eq!(err.field, "title");
    assert!(
        check(&templates(
            Some("{{ alert.title }}"),
            Some("{% for k, v in labels|items %}{{ k }}{% endfor %}")
        ))
        .is_ok()
    );
}

#[test]
fn no_includes_and_runaway_templates_fail_and_output_is_capped() {
    // No loader: an include cannot read anything.
    let include = templates(None, Some("{% include '/etc/passwd' %}"));
    assert!(check(&include).is_err() || render(&include, &incident("d"), scope()).is_err());
    // Fuel: an endless-looking loop stops.
    let runaway = templates(
        None,
        Some("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"),
    );
    let err = render(&runaway, &incident("d"), scope()).expect_err("out of fuel");
    assert_eq!(err.field, "body");
    // Output is cut at BODY_MAX bytes, and says how much there was.
    let long = templates(None, Some("{% for i in range(2000) %}告警{% endfor %}"));
    let text = render(&long, &incident("d"), scope()).expect("renders");
    assert!(text.body.as_deref().is_some_and(|b| b.len() <= BODY_MAX));
    assert_eq!(text.cut_from, 12_000);
}

#[test]
fn runtime_errors_are_reported_for_the_fallback() {
    let t = templates(None, Some("{{ alert.title | no_such_filter }}"));
    assert!(check(&t).is_err() || render(&t, &incident("d"), scope()).is_err());
    let t = templates(Some("{{ 1 / 0 }}"), None);
    let err = render(&t, &incident("d"), scope()).expect_err("division by zero");
    assert_eq!(err.field, "title");
}

#[test]
fn misspelt_filters_are_refused_on_save_and_empty_output_falls_back() {
    let err = check(&templates(
        None,
        Some("a\n{{ incident.started_at | localtme }}"),
    ))
    .expect_err("unknown filter");
    assert_eq!((err.field, err.line), ("body", 2), "{err}");
    let empty = templates(Some("{{ labels.team }}"), None);
    assert!(check(&empty).is_ok(), "an absent label is no error");
    let err = render(&empty, &incident("d"), scope()).expect_err("renders nothing");
    assert_eq!(err.field, "title");
}

#[test]
fn alert_text_in_the_context_is_data_not_markup() {
    let mut hostile = incident("[认领](https://evil) <font color=red>x</font>");
    hostile.title = "[Ack](dingtalk://evil)".into();
    hostile
        .labels
        .insert("team".into(), "[x](https://evil)".into());
    let t = templates(
        Some("{{ alert.title }}"),
        Some("{{ alert.description }} {{ labels.team }}"),
    );
    let text = render(&t, &hostile, scope()).expect("renders");
    assert!(
        !text.title.as_deref().unwrap_or("").contains("](dingtalk:"),
        "{text:?}"
    );
    assert!(
        !text
            .body
            .as_deref()
            .unwrap_or("")
            .contains("[x](https://evil)"),
        "{text:?}"
    );
}
