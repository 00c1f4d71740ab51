//! The DingTalk client against the sandbox: shared token cache, refresh on an
//! invalid token, error classes from DingTalk's documented answers, and DING /
//! recall / read status (protocol notes §10).

use std::sync::Arc;

use integration_tests::{APP, TestStack};
use local_stack::sandbox::{Fault, SandboxGroup, SandboxUser};
use shared::dingtalk::{AppCredentials, DingTalkClient, DingTalkError, RemindType, RobotMessage};
use shared::domain::integration::Integration;
use shared::{Services, SystemClock};

const TOKEN_PATH: &str = "/v1.0/oauth2/accessToken";
const QUERY_PATH: &str = "/v1.0/im/sceneGroups/query";

async fn setup() -> (TestStack, Integration) {
    let stack = TestStack::start().await;
    let id = stack.create_integration().await;
    stack.sandbox.add_group(SandboxGroup {
        open_conversation_id: "cidQ==".into(),
        title: "Query me".into(),
        owner_user_id: "o".into(),
        cool_app_code: None,
        disbanded: false,
    });
    let integration = stack
        .services
        .store
        .get_integration(&id)
        .await
        .expect("get")
        .expect("some");
    (stack, integration)
}

/// A second "Lambda instance": its own client and memory, the same table.
fn second_instance(stack: &TestStack) -> DingTalkClient {
    Services::new(
        stack.services.config.clone(),
        &stack.sdk,
        Arc::new(SystemClock),
    )
    .dingtalk
}

#[tokio::test]
async fn one_token_is_shared_by_every_instance() {
    let (stack, integration) = setup().await;
    let app = AppCredentials::from(&integration);
    let first = stack
        .services
        .dingtalk
        .access_token(app)
        .await
        .expect("token");
    let again = stack
        .services
        .dingtalk
        .access_token(app)
        .await
        .expect("token");
    let other = second_instance(&stack)
        .access_token(app)
        .await
        .expect("token");
    assert_eq!(first, again);
    assert_eq!(first, other);
    assert_eq!(stack.sandbox.call_count(TOKEN_PATH), 1);
}

#[tokio::test]
async fn an_invalid_token_is_refreshed_and_the_call_retried_once() {
    let (stack, integration) = setup().await;
    let client = &stack.services.dingtalk;
    let app = AppCredentials::from(&integration);
    client
        .query_scene_group(app, "cidQ==", None)
        .await
        .expect("first");
    stack.sandbox.revoke_tokens();
    let group = client
        .query_scene_group(app, "cidQ==", None)
        .await
        .expect("after refresh");
    assert_eq!(group.title, "Query me");
    assert_eq!(stack.sandbox.call_count(TOKEN_PATH), 2);
    assert_eq!(stack.sandbox.call_count(QUERY_PATH), 3);
    // Another instance picks the refreshed token up from the table.
    second_instance(&stack)
        .query_scene_group(app, "cidQ==", None)
        .await
        .expect("other instance");
    assert_eq!(stack.sandbox.call_count(TOKEN_PATH), 2);
}

#[tokio::test]
async fn documented_failures_are_classified() {
    let (stack, integration) = setup().await;
    let client = &stack.services.dingtalk;
    let app = AppCredentials::from(&integration);
    let cases = [
        (Fault::qps_limited(QUERY_PATH), "qps_limited", true),
        (Fault::quota_exhausted(QUERY_PATH), "quota_exhausted", false),
        (Fault::server_error(QUERY_PATH), "transient", true),
        (
            Fault::new_api(
                QUERY_PATH,
                403,
                "Forbidden.AccessDenied.AccessTokenPermissionDenied",
                "no scope",
            ),
            "permission_denied",
            false,
        ),
        (
            Fault::new_api(QUERY_PATH, 400, "group.disbanded", "gone"),
            "invalid_target",
            false,
        ),
    ];
    for (fault, kind, retryable) in cases {
        stack.sandbox.inject(fault);
        let err = client
            .query_scene_group(app, "cidQ==", None)
            .await
            .expect_err(kind);
        assert_eq!(err.kind(), kind, "{err}");
        assert_eq!(err.is_retryable(), retryable, "{kind}");
    }
    let err = client
        .query_scene_group(app, "cidNoSuch==", None)
        .await
        .expect_err("unknown group");
    assert!(matches!(err, DingTalkError::InvalidTarget { .. }), "{err}");
}

#[tokio::test]
async fn wrong_credentials_and_unreachable_dingtalk() {
    let (stack, mut integration) = setup().await;
    integration.client_secret = shared::domain::Secret::new("wrong-secret-xxxx");
    let err = stack
        .services
        .dingtalk
        .check_credentials((&integration).into())
        .await
        .expect_err("bad secret");
    assert!(
        matches!(err, DingTalkError::InvalidCredentials { .. }),
        "{err}"
    );

    // To the console's checklist (it polls every few seconds) a refusal is answered
    // from memory for 30 s (same Client ID and Secret); other callers always ask, and
    // new credentials are asked about at once.
    let dingtalk = &stack.services.dingtalk;
    dingtalk
        .invalidate_token(&integration.id)
        .await
        .expect("no cached token");
    let before = stack.sandbox.call_count(TOKEN_PATH);
    let refused = |answer: Result<String, DingTalkError>| {
        matches!(answer, Err(DingTalkError::InvalidCredentials { .. }))
    };
    for _ in 0..3 {
        assert!(refused(
            dingtalk
                .token_or_recent_refusal((&integration).into())
                .await
        ));
    }
    assert_eq!(
        stack.sandbox.call_count(TOKEN_PATH),
        before,
        "the check just now refused these credentials"
    );
    assert!(refused(dingtalk.access_token((&integration).into()).await));
    assert_eq!(
        stack.sandbox.call_count(TOKEN_PATH),
        before + 1,
        "a sender asks"
    );
    integration.client_secret = shared::domain::Secret::new(APP.client_secret);
    dingtalk
        .access_token((&integration).into())
        .await
        .expect("the right secret is asked for at once");
    assert_eq!(stack.sandbox.call_count(TOKEN_PATH), before + 2);

    let mut config = stack.services.config.clone();
    config.dingtalk_api_base = "http://127.0.0.1:9".into();
    let offline = Services::new(config, &stack.sdk, Arc::new(SystemClock));
    let err = offline
        .dingtalk
        .check_credentials((&integration).into())
        .await
        .expect_err("unreachable");
    assert!(err.is_retryable(), "{err}");
    let _ = APP;
}

fn add_people(stack: &TestStack, ids: &[&str]) -> Vec<String> {
    for id in ids {
        stack.sandbox.add_user(SandboxUser {
            user_id: (*id).into(),
            union_id: format!("union-{id}"),
            name: format!("Person {id}"),
            email: None,
            mobile: None,
        });
    }
    ids.iter().map(|id| id.to_string()).collect()
}

/// The integration's counted calls of one kind, as the usage API reports them.
async fn used(stack: &TestStack, integration_id: &str, kind: &str) -> u64 {
    let (status, usage) = stack
        .admin(
            "GET",
            &format!("/api/integrations/{integration_id}/usage"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{usage}");
    usage["by_kind"][kind].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn dings_round_trip_and_are_recorded() {
    let (stack, integration) = setup().await;
    let client = &stack.services.dingtalk;
    let app = AppCredentials::from(&integration);
    let people = add_people(&stack, &["u1", "u2"]);
    let mut to = people.clone();
    to.push("nobody".into());
    let sent = client
        .send_ding(app, &to, RemindType::App, "Disk full on db-1")
        .await
        .expect("app DING");
    assert!(!sent.open_ding_id.is_empty());
    assert_eq!(
        sent.failed.values().flatten().collect::<Vec<_>>(),
        ["nobody"]
    );
    let call = client
        .send_ding(app, &people[..1], RemindType::Call, "Wake up: db-1")
        .await
        .expect("phone DING");
    assert!(call.failed.is_empty());
    let dings = stack.sandbox.dings();
    assert_eq!(dings.len(), 2);
    assert_eq!(dings[0].open_ding_id, sent.open_ding_id);
    assert_eq!(dings[0].app_key, APP.client_id);
    assert_eq!(
        (dings[0].remind, dings[0].receivers.clone()),
        (1, people.clone())
    );
    assert_eq!(dings[0].content, "Disk full on db-1");
    assert_eq!(
        (dings[1].open_ding_id.as_str(), dings[1].remind),
        (call.open_ding_id.as_str(), 3)
    );
    assert!(dings.iter().all(|d| !d.recalled));
    // Counted calls, through the governor.
    assert_eq!(used(&stack, &integration.id, "ding").await, 2);
}

#[tokio::test]
async fn a_call_ding_without_quota_says_so_and_an_app_ding_still_works() {
    let (stack, integration) = setup().await;
    let client = &stack.services.dingtalk;
    let app = AppCredentials::from(&integration);
    let people = add_people(&stack, &["u1"]);
    stack.sandbox.set_ding_call_quota(false);
    for remind in [RemindType::Call, RemindType::Sms] {
        let err = client
            .send_ding(app, &people, remind, "wake up")
            .await
            .expect_err("no quota");
        assert!(
            matches!(&err, DingTalkError::DingQuotaInsufficient { code } if code == "ding.serverquota.insufficient"),
            "{err}"
        );
        assert!(!err.is_retryable());
    }
    client
        .send_ding(app, &people, RemindType::App, "wake up")
        .await
        .expect("in-app fallback");
    let dings = stack.sandbox.dings();
    assert_eq!(dings.iter().map(|d| d.remind).collect::<Vec<_>>(), [1]);
}

#[tokio::test]
async fn too_many_receivers_are_refused_with_the_limit_code() {
    let (stack, integration) = setup().await;
    let client = &stack.services.dingtalk;
    let app = AppCredentials::from(&integration);
    let ids: Vec<String> = (0..=RemindType::Sms.max_receivers())
        .map(|i| format!("user{i}"))
        .collect();
    assert_eq!(ids.len(), 21);
    let err = client
        .send_ding(app, &ids, RemindType::Sms, "too many")
        .await
        .expect_err("21 SMS receivers");
    assert!(
        matches!(&err, DingTalkError::Rejected { status: 400, code, .. } if code == "ding.receivercount.limit"),
        "{err}"
    );
    assert!(!err.is_retryable());
    client
        .send_ding(app, &ids, RemindType::App, "in-app takes 200")
        .await
        .expect("21 in-app receivers");
    assert_eq!(stack.sandbox.dings().len(), 1);
}

#[tokio::test]
async fn a_recalled_ding_is_marked_and_an_unknown_one_refused() {
    let (stack, integration) = setup().await;
    let client = &stack.services.dingtalk;
    let app = AppCredentials::from(&integration);
    let people = add_people(&stack, &["u1"]);
    let sent = client
        .send_ding(app, &people, RemindType::Call, "wake up")
        .await
        .expect("DING");
    client
        .recall_ding(app, &sent.open_ding_id)
        .await
        .expect("recall");
    assert!(stack.sandbox.dings()[0].recalled);
    let err = client
        .recall_ding(app, "no-such-ding")
        .await
        .expect_err("unknown DING");
    assert!(
        matches!(&err, DingTalkError::Rejected { code, .. } if code == "recall.ding.exception"),
        "{err}"
    );
    assert_eq!(used(&stack, &integration.id, "ding_recall").await, 2);
}

#[tokio::test]
async fn read_status_is_unread_until_the_person_reads_it() {
    let (stack, integration) = setup().await;
    let client = &stack.services.dingtalk;
    let app = AppCredentials::from(&integration);
    let people = add_people(&stack, &["u1", "u2"]);
    let message = RobotMessage {
        msg_key: "sampleText".into(),
        msg_param: serde_json::json!({"content": "Disk full on db-1"}),
    };
    let sent = client
        .send_one_to_one(app, &people, &message)
        .await
        .expect("1:1 message");
    let key = sent.process_query_key;
    // Like DingTalk's, the sandbox's keys need URL-encoding.
    assert!(
        key.contains('+') && key.contains('/') && key.contains('='),
        "{key}"
    );
    let state = |infos: Vec<shared::dingtalk::ReadInfo>| -> Vec<(String, bool)> {
        infos.into_iter().map(|i| (i.user_id, i.read)).collect()
    };
    let before = client.read_status(app, &key).await.expect("read status");
    assert_eq!(
        state(before),
        [("u1".to_string(), false), ("u2".to_string(), false)]
    );
    stack.sandbox.mark_read(&key, "u2");
    let after = client.read_status(app, &key).await.expect("read status");
    assert_eq!(
        state(after),
        [("u1".to_string(), false), ("u2".to_string(), true)]
    );
    let err = client
        .read_status(app, "unknown+key/==")
        .await
        .expect_err("unknown key");
    assert_eq!(err.kind(), "rejected", "{err}");
    assert_eq!(used(&stack, &integration.id, "read_status").await, 3);
}
