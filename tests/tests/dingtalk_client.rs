//! The DingTalk client against the sandbox: shared token cache, refresh on an
//! invalid token, and error classes from DingTalk's documented answers.

use std::sync::Arc;

use integration_tests::{APP, TestStack};
use local_stack::sandbox::{Fault, SandboxGroup};
use shared::dingtalk::{AppCredentials, DingTalkClient, DingTalkError};
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
