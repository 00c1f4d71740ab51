//! The admin key kept in SSM Parameter Store (`ADMIN_API_KEY=ssm:<name>`), on moto.

use std::sync::Arc;

use admin_api::AdminApi;
use aws_sdk_ssm::types::ParameterType;
use integration_tests::{read, request, sdk_config};
use shared::{Config, Services, SystemClock};

const KEY: &str = "ssm-held-admin-key-0123456789abcdef";

async fn admin_with(setting: &str) -> AdminApi {
    let sdk = sdk_config().await;
    let setting = setting.to_string();
    let config = Config::from_lookup(|name| match name {
        "TABLE_NAME" => Some(format!("admin-key-{}", uuid::Uuid::new_v4().simple())),
        "QUEUE_URL" => Some("http://local/123456789012/unused".into()),
        "ADMIN_API_KEY" => Some(setting.clone()),
        _ => None,
    })
    .expect("config");
    let services = Services::new(config, &sdk, Arc::new(SystemClock));
    services.store.ensure_table().await.expect("table");
    AdminApi::new(&services)
}

async fn list(api: &AdminApi, key: &str) -> (u16, serde_json::Value) {
    read(
        api.handle(request(
            "GET",
            "/api/integrations",
            &[("authorization", format!("Bearer {key}"))],
            None,
        ))
        .await,
    )
}

async fn put_parameter(name: &str, value: &str) {
    aws_sdk_ssm::Client::new(&sdk_config().await)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("put parameter");
}

#[tokio::test]
async fn the_admin_key_can_live_in_ssm() {
    let name = format!(
        "/dingtalk-incidents/{}/admin-key",
        uuid::Uuid::new_v4().simple()
    );
    put_parameter(&name, KEY).await;
    let api = admin_with(&format!("ssm:{name}")).await;
    let (status, body) = list(&api, KEY).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = list(&api, "ssm-held-admin-key-wrong-0000000000").await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = list(&api, &format!("ssm:{name}")).await;
    assert_eq!(status, 401, "the parameter name is not the key");
}

#[tokio::test]
async fn a_missing_or_short_parameter_disables_the_api_with_a_clear_error() {
    let api = admin_with("ssm:/dingtalk-incidents/no-such-parameter").await;
    let (status, body) = list(&api, KEY).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "admin_key_unavailable");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/dingtalk-incidents/no-such-parameter"),
        "{body}"
    );

    let name = format!(
        "/dingtalk-incidents/{}/short",
        uuid::Uuid::new_v4().simple()
    );
    put_parameter(&name, "short").await;
    let api = admin_with(&format!("ssm:{name}")).await;
    let (status, body) = list(&api, "short").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        !body.to_string().contains("\"short\""),
        "the value is never shown"
    );
}
