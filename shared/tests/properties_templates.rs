//! Properties of user templates (minijinja, sandboxed): any text, and templates built
//! from Jinja pieces (loops, recursion, big strings, filters), compile or are a
//! `TemplateInvalid`, and render within the fuel and size limits or are a
//! `TemplateFailed`, on incidents made from arbitrary alerts.

mod properties_support;

use properties_support::{config, json, sample_body};
use proptest::prelude::*;
use shared::domain::incident::Incident;
use shared::domain::incident_state::new_incident;
use shared::domain::locale::{Locale, MessageTemplates};
use shared::render::templates::{BODY_MAX, TITLE_MAX, TemplateScope, check, render};
use shared::services::ingest::parse_payload;

const ID: &str = "7f3c2a1e9b8d4c6f8a0b1c2d3e4f5a6b";

/// Pieces of templates, valid and not, cheap and expensive.
const PIECES: &[&str] = &[
    "{{ alert.title }}",
    "{{ alert.severity | upper }}",
    "{{ labels.service }}",
    "{{ labels | tojson }}",
    "{{ incident.started_at | localtime }}",
    "{{ incident.started_at | duration }}",
    "{{ incident.url }}",
    "{{ integration.name }}",
    "{{ alert.description }}",
    "{% for l in alert.links %}[{{ l.title }}]({{ l.url }}){% endfor %}",
    "{% for k, v in labels|items %}{{ k }}={{ v }} {% endfor %}",
    "{% for i in range(100000) %}{{ i }}{% endfor %}",
    "{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}",
    "{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}",
    "{{ 'ab' * 1000000 }}",
    "{{ range(10) | list * 1000 }}",
    "{% if alert.status == 'firing' %}🔥{% else %}✅{% endif %}",
    "{% if %}",
    "{% endfor %}",
    "{{ nosuchvar.deeper }}",
    "{{ x | nosuchfilter }}",
    "{{ 1 / 0 }}",
    "{{ 'x' ~ none ~ 1.5 }}",
    "{% set x = [1, 2] %}{{ x[5] }}",
    "{% include 'other' %}",
    "{{ self }}",
    "{{ '%s' | format(alert) }}",
    "\n",
    "告警",
    "{#",
    "{{",
    "}}",
    "{%",
];

fn template() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        3 => prop::collection::vec(
            prop_oneof![4 => prop::sample::select(PIECES).prop_map(str::to_string), 1 => any::<String>()],
            1..6,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn templates() -> impl Strategy<Value = MessageTemplates> {
    (prop::option::of(template()), prop::option::of(template()))
        .prop_map(|(title, body)| MessageTemplates { title, body })
}

fn scope(now_ms: i64, locale: Locale) -> TemplateScope<'static> {
    TemplateScope {
        integration: "支付团队",
        timezone: "Asia/Shanghai",
        locale,
        base_url: "https://x.example",
        now_ms,
    }
}

/// An incident from the Alertmanager sample, with arbitrary labels and annotations.
fn incident(labels: &serde_json::Value) -> Incident {
    let mut body = sample_body("ingest-alertmanager.json");
    if labels.is_object() {
        body["commonLabels"] = labels.clone();
        body["commonAnnotations"] = labels.clone();
    }
    let events = parse_payload(&body, ID)
        .or_else(|_| parse_payload(&sample_body("ingest-alertmanager.json"), ID))
        .expect("sample parses");
    new_incident("inc-1".into(), &events[0], 0, "2026-11-18T20:05:00Z", None)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn templates_compile_or_are_invalid(t in templates()) {
        if let Err(err) = check(&t) {
            prop_assert!(err.field == "title" || err.field == "body");
            prop_assert!(err.line >= 1 && !err.message.is_empty());
        }
    }

    #[test]
    fn templates_render_within_the_limits_or_fail(
        t in templates(),
        labels in json(),
        now_ms in prop_oneof![Just(1_795_000_400_000i64), any::<i64>()],
        zh in any::<bool>(),
    ) {
        let locale = if zh { Locale::ZhCn } else { Locale::EnUs };
        match render(&t, &incident(&labels), scope(now_ms, locale)) {
            Ok(text) => {
                prop_assert_eq!(text.title.is_some(), t.title.is_some());
                prop_assert_eq!(text.body.is_some(), t.body.is_some());
                if let Some(title) = &text.title {
                    prop_assert!(title.len() <= TITLE_MAX && !title.contains('\n'));
                }
                if let Some(body) = &text.body {
                    prop_assert!(body.len() <= BODY_MAX);
                }
            }
            Err(err) => {
                prop_assert!(err.field == "title" || err.field == "body");
                prop_assert!(!err.message.is_empty());
            }
        }
    }
}
