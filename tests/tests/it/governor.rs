//! The API budget governor: per-second limit across instances, month rollover,
//! quota reserve, storm digests, usage and threshold notices.

use std::collections::HashMap;
use std::sync::Arc;

use integration_tests::{TestStack, alert_body, record_of};
use local_stack::sandbox::{Limits, MessageTarget};
use serde_json::{Value, json};
use shared::services::notifier::NotifierSettings;
use shared::store::ports::RateCounters;
use shared::{FixedClock, Services};

const CID: &str = "cidBudget000000000000001==";
const SEND: &str = "/v1.0/robot/groupMessages/send";

async fn setup(stack: &TestStack, settings: Value) -> String {
    let id = stack.create_integration().await;
    let (status, body) = stack
        .admin("PATCH", &format!("/api/integrations/{id}"), Some(settings))
        .await;
    assert_eq!(status, 200, "{body}");
    stack.install_chat(&id, CID, "Budget group").await;
    id
}

fn alert(id: &str, key: &str, severity: &str) -> String {
    let mut body: Value = serde_json::from_str(&alert_body(
        id,
        key,
        "firing",
        "2026-11-24T01:00:00Z",
        json!({"chats": [CID]}),
    ))
    .expect("json");
    body["alert"]["severity"] = json!(severity);
    body.to_string()
}

fn group_messages(stack: &TestStack) -> Vec<local_stack::sandbox::RobotMessage> {
    stack
        .sandbox
        .messages()
        .into_iter()
        .filter(|m| m.target == MessageTarget::Group(CID.into()))
        .collect()
}

async fn usage(stack: &TestStack, id: &str) -> Value {
    let (status, usage) = stack
        .admin("GET", &format!("/api/integrations/{id}/usage"), None)
        .await;
    assert_eq!(status, 200, "{usage}");
    usage
}

#[tokio::test]
async fn three_instances_of_ten_concurrent_records_never_exceed_the_per_second_limit() {
    let stack = TestStack::start().await;
    let id = setup(&stack, json!({"qps_limit": 4, "storm_threshold": 1000})).await;
    // DingTalk would refuse a fifth call in a second.
    stack.sandbox.set_limits(Limits {
        qps: Some(4),
        monthly_quota: None,
    });
    // Two more instances (Lambda runs several), each handling 10 records at once.
    let instance = || {
        Services::new(
            stack.services.config.clone(),
            &stack.sdk,
            Arc::new(shared::SystemClock),
        )
        .notifier(NotifierSettings {
            concurrency: 10,
            ..NotifierSettings::default()
        })
    };
    let (second, third) = (instance(), instance());
    let deadline = || tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let batch = |from: usize| {
        let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
        for i in from..from + 10 {
            let mut record = aws_lambda_events::event::sqs::SqsMessage::default();
            record.message_id = Some(format!("m{i}"));
            record.body = Some(alert(&id, &format!("k{i}"), "critical"));
            event.records.push(record);
        }
        event
    };
    let (a, b, c, d) = tokio::join!(
        stack.notifier.handle_batch(batch(0), deadline()),
        second.handle_batch(batch(10), deadline()),
        third.handle_batch(batch(20), deadline()),
        third.handle_batch(batch(30), deadline()),
    );
    // SQS delivers failed records again (e.g. a wait that ran past the time budget).
    let mut failed: Vec<String> = [a, b, c, d]
        .into_iter()
        .flat_map(|answer| {
            answer
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
        })
        .collect();
    for _ in 0..10 {
        if failed.is_empty() {
            break;
        }
        let records: Vec<(String, String)> = failed
            .iter()
            .map(|m| {
                let i: usize = m.trim_start_matches('m').parse().unwrap_or(0);
                (m.clone(), alert(&id, &format!("k{i}"), "critical"))
            })
            .collect();
        let refs: Vec<(&str, String)> = records
            .iter()
            .map(|(m, b)| (m.as_str(), b.clone()))
            .collect();
        failed = stack.deliver(&refs).await;
    }
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(group_messages(&stack).len(), 40, "nothing lost");
    let mut per_second: HashMap<i64, usize> = HashMap::new();
    for call in stack.sandbox.calls().iter().filter(|c| c.path == SEND) {
        assert_eq!(call.status, 200, "DingTalk never refused a call: {call:?}");
        *per_second.entry(call.at_ms / 1000).or_default() += 1;
    }
    assert!(per_second.values().all(|n| *n <= 4), "{per_second:?}");
    let usage = usage(&stack, &id).await;
    assert!(usage["throttle_waits"].as_u64().unwrap_or(0) > 0, "{usage}");
}

#[tokio::test]
async fn the_month_rolls_over_on_the_first_in_the_integration_time_zone() {
    // 23:59 on November 30th in Shanghai.
    let clock = FixedClock::at_ms(
        chrono::DateTime::parse_from_rfc3339("2026-11-30T15:59:00Z")
            .expect("t")
            .timestamp_millis(),
    );
    let stack = TestStack::start_with_clock(Arc::new(clock.clone())).await;
    let id = setup(&stack, json!({"monthly_quota": 2, "qps_limit": 1000})).await;
    // The install's title lookup already used one call of November.
    assert!(
        stack
            .deliver(&[("a", alert(&id, "a", "critical"))])
            .await
            .is_empty()
    );
    assert!(
        stack
            .deliver(&[("b", alert(&id, "b", "critical"))])
            .await
            .is_empty()
    );
    assert_eq!(group_messages(&stack).len(), 1, "the quota of 2 is used up");
    assert_eq!(usage(&stack, &id).await["month"], "2026-11");
    clock.set_ms(
        chrono::DateTime::parse_from_rfc3339("2026-11-30T16:01:00Z")
            .expect("t")
            .timestamp_millis(),
    );
    assert!(
        stack
            .deliver(&[("c", alert(&id, "c", "critical"))])
            .await
            .is_empty()
    );
    assert_eq!(
        group_messages(&stack).len(),
        2,
        "December has a fresh quota"
    );
    let december = usage(&stack, &id).await;
    assert_eq!(
        (december["month"].as_str(), december["calls"].as_u64()),
        (Some("2026-12"), Some(1))
    );
}

#[tokio::test]
async fn the_reserve_keeps_the_last_ten_percent_for_critical_alerts() {
    let stack = TestStack::start().await;
    let id = setup(
        &stack,
        json!({"monthly_quota": 10, "storm_threshold": 1000}),
    )
    .await;
    for i in 0..8 {
        assert!(
            stack
                .deliver(&[("w", alert(&id, &format!("w{i}"), "warning"))])
                .await
                .is_empty()
        );
    }
    // 1 title lookup + 8 messages = 9 calls: the reserve (the 10th) is for critical alerts.
    assert!(
        stack
            .deliver(&[("w9", alert(&id, "w9", "warning"))])
            .await
            .is_empty(),
        "no retry storm"
    );
    assert!(
        stack
            .deliver(&[("c1", alert(&id, "c1", "critical"))])
            .await
            .is_empty()
    );
    assert_eq!(
        group_messages(&stack).len(),
        8 + 1,
        "8 warnings and the critical one (no default targets: no notice)"
    );
    let detail = stack.incident_by_key(&id, "w9").await;
    let suppressed = record_of(&detail, "suppressed");
    assert!(
        suppressed["detail"]
            .as_str()
            .expect("detail")
            .contains("quota reserve")
    );
    let usage = usage(&stack, &id).await;
    assert_eq!(usage["suppressed"], 1);
    assert_eq!(usage["calls"], 10);
}

#[tokio::test]
async fn from_80_percent_info_alerts_fold_into_the_digest() {
    let stack = TestStack::start().await;
    let id = setup(
        &stack,
        json!({"monthly_quota": 100, "storm_threshold": 1000}),
    )
    .await;
    assert!(
        stack
            .deliver(&[("i1", alert(&id, "info-early", "info"))])
            .await
            .is_empty()
    );
    assert_eq!(
        group_messages(&stack).len(),
        1,
        "below 80 %, info alerts are sent"
    );
    let integration = stack
        .services
        .store
        .get_integration(&id)
        .await
        .expect("read")
        .expect("integration");
    let month =
        shared::domain::budget::month_of(integration_tests::now_ms(), &integration.timezone);
    while stack
        .services
        .store
        .add_usage(&id, &month, "card", true)
        .await
        .expect("usage")
        < 80
    {}
    assert!(
        stack
            .deliver(&[("i2", alert(&id, "info-late", "info"))])
            .await
            .is_empty()
    );
    assert!(
        stack
            .deliver(&[("w1", alert(&id, "warning-late", "warning"))])
            .await
            .is_empty()
    );
    let messages = group_messages(&stack);
    assert_eq!(
        messages.len(),
        3,
        "the early info alert, the digest, the warning"
    );
    let digest = messages[1].msg_param["text"].as_str().unwrap_or_default();
    assert!(digest.contains("info-late is failing"), "{digest}");
    let warning = messages[2].msg_param["text"].as_str().unwrap_or_default();
    assert!(warning.contains("warning-late is failing"), "{warning}");
    let detail = stack.incident_by_key(&id, "info-late").await;
    let folded = record_of(&detail, "folded");
    assert!(
        folded["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("economy mode"),
        "{folded}"
    );
}

#[tokio::test]
async fn a_storm_folds_into_one_digest_per_group() {
    let stack = TestStack::start().await;
    let id = setup(
        &stack,
        json!({"storm_threshold": 3, "storm_window_secs": 3600}),
    )
    .await;
    for i in 0..10 {
        assert!(
            stack
                .deliver(&[("s", alert(&id, &format!("storm{i}"), "critical"))])
                .await
                .is_empty()
        );
    }
    let messages = group_messages(&stack);
    assert_eq!(messages.len(), 4, "3 alerts, then one digest");
    let digest = messages[3].msg_param["text"].as_str().expect("text");
    assert!(
        digest.contains("Alert storm") && digest.contains("storm3 is failing"),
        "{digest}"
    );
    let (_, incidents) = stack
        .admin("GET", &format!("/api/integrations/{id}/incidents"), None)
        .await;
    assert_eq!(
        incidents.as_array().map(Vec::len),
        Some(10),
        "every alert is an incident"
    );
    let usage = usage(&stack, &id).await;
    assert_eq!(usage["folded"], 7);
}

#[tokio::test]
async fn a_digest_card_ends_up_showing_every_fold() {
    let stack = TestStack::start().await;
    let id = setup(
        &stack,
        json!({"storm_threshold": 2, "storm_window_secs": 3600, "card_template_id": "tpl-incident.schema"}),
    )
    .await;
    // One batch: the folds come faster than the digest card may be updated (every 5 s).
    let records: Vec<(String, String)> = (0..9)
        .map(|i| {
            (
                format!("m{i}"),
                alert(&id, &format!("cardstorm{i}"), "critical"),
            )
        })
        .collect();
    let refs: Vec<(&str, String)> = records
        .iter()
        .map(|(i, b)| (i.as_str(), b.clone()))
        .collect();
    assert!(stack.deliver(&refs).await.is_empty());
    stack.run_jobs().await;
    let digests: Vec<_> = stack
        .sandbox
        .cards()
        .into_iter()
        .filter(|c| c.out_track_id.starts_with("digest-"))
        .collect();
    assert_eq!(digests.len(), 1, "one digest card per group and window");
    let data = &digests[0].card_data;
    let title = data["title"].as_str().unwrap_or_default();
    let text = data["description"].as_str().unwrap_or_default();
    assert!(title.contains("7 folded"), "{title}");
    let direct: Vec<String> = stack
        .sandbox
        .cards()
        .into_iter()
        .filter(|c| !c.out_track_id.starts_with("digest-"))
        .map(|c| {
            c.card_data["title"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        direct.len(),
        2,
        "the first two alerts got cards of their own"
    );
    // Records run concurrently, so which alerts came first varies; the digest lists
    // the five newest folds and counts the rest.
    let listed: Vec<String> = (0..9)
        .map(|i| format!("cardstorm{i} is failing"))
        .filter(|t| text.contains(t.as_str()))
        .collect();
    assert_eq!(listed.len(), 5, "{text}");
    assert!(listed.iter().all(|t| !direct.contains(t)), "{text}");
    assert!(text.contains("and 2 more"), "{text}");
}

#[tokio::test]
async fn usage_reports_burn_and_warns_once_at_80_and_95_percent() {
    let stack = TestStack::start().await;
    let id = setup(
        &stack,
        json!({"monthly_quota": 40, "storm_threshold": 1000, "default_targets": {"chats": [CID]}}),
    )
    .await;
    for i in 0..36 {
        assert!(
            stack
                .deliver(&[("m", alert(&id, &format!("u{i}"), "critical"))])
                .await
                .is_empty()
        );
    }
    let notices: Vec<String> = group_messages(&stack)
        .iter()
        .filter_map(|m| {
            m.msg_param["title"]
                .as_str()
                .filter(|t| t.starts_with("DingTalk API budget"))
                .map(String::from)
        })
        .collect();
    assert_eq!(
        notices,
        [
            "DingTalk API budget 80% used",
            "DingTalk API budget 95% used"
        ]
    );
    let usage = usage(&stack, &id).await;
    assert_eq!(usage["limits"]["monthly_quota"], 40);
    assert!(usage["percent"].as_f64().unwrap_or(0.0) >= 95.0, "{usage}");
    assert!(usage["burn_rate_per_day"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(usage["projected_exhaustion"].is_string(), "{usage}");
    assert_eq!(
        usage["by_kind"]["message"].as_u64(),
        Some(usage["calls"].as_u64().unwrap_or(0) - 1)
    );
}

#[tokio::test]
async fn a_lower_real_limit_is_learned_after_a_few_refusals() {
    let stack = TestStack::start().await;
    let id = setup(&stack, json!({"qps_limit": 20, "storm_threshold": 1000})).await;
    // DingTalk's real limit for this API is 5 a second, under the configured 20.
    stack.sandbox.set_limits(Limits {
        qps: Some(5),
        monthly_quota: None,
    });
    let mut pending: Vec<(String, String)> = (0..40)
        .map(|i| (format!("m{i}"), alert(&id, &format!("a{i}"), "critical")))
        .collect();
    for _ in 0..20 {
        if pending.is_empty() {
            break;
        }
        let refs: Vec<(&str, String)> = pending
            .iter()
            .take(10)
            .map(|(m, b)| (m.as_str(), b.clone()))
            .collect();
        let failed = stack.deliver(&refs).await;
        let done: Vec<String> = refs
            .iter()
            .map(|(m, _)| m.to_string())
            .filter(|m| !failed.contains(m))
            .collect();
        pending.retain(|(m, _)| !done.contains(m));
    }
    assert!(pending.is_empty(), "nothing lost: {pending:?}");
    assert_eq!(group_messages(&stack).len(), 40);
    let sends: Vec<_> = stack
        .sandbox
        .calls()
        .into_iter()
        .filter(|c| c.path == SEND)
        .collect();
    let refused: Vec<usize> = sends
        .iter()
        .enumerate()
        .filter(|(_, c)| c.status != 200)
        .map(|(i, _)| i)
        .collect();
    // At most the two seconds before the limit is learned: (18 − 5) + (9 − 5) = 17.
    // Slots taken together send a second's calls at once, so the first refusal comes
    // back after more of them than when each call took its own slot (then ≤ 12).
    assert!(
        !refused.is_empty() && refused.len() <= 17,
        "a handful of refusals: {refused:?}"
    );
    assert!(
        refused.iter().all(|i| *i < sends.len() - 15),
        "then none: {refused:?} of {}",
        sends.len()
    );
}
