//! Robot messages (group and 1:1), interactive cards, the card callback route, and
//! the user lookups of the H5 login (protocol notes §3–§6). All go through
//! [`DingTalkClient::call`] or [`DingTalkClient::call_oapi`].

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AppCredentials, DingTalkClient, DingTalkError};

/// A robot message: `msgKey` and its parameters (sent as the JSON string `msgParam`).
#[derive(Debug, Clone, PartialEq)]
pub struct RobotMessage {
    /// `sampleMarkdown`, `sampleActionCard4`, …
    pub msg_key: String,
    /// The parameters.
    pub msg_param: Value,
}

impl RobotMessage {
    /// `msgParam` as DingTalk wants it: a JSON string.
    pub fn param_string(&self) -> String {
        self.msg_param.to_string()
    }
}

/// What `oToMessages/batchSend` answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchSendResult {
    /// processQueryKey of the batch.
    #[serde(default)]
    pub process_query_key: String,
    /// userIds DingTalk does not know.
    #[serde(default)]
    pub invalid_staff_id_list: Vec<String>,
    /// userIds DingTalk throttled (retry them later).
    #[serde(default)]
    pub flow_controlled_staff_id_list: Vec<String>,
}

impl DingTalkClient {
    /// `POST /v1.0/robot/groupMessages/send`; returns the processQueryKey.
    pub async fn send_group_message(
        &self,
        app: AppCredentials<'_>,
        open_conversation_id: &str,
        cool_app_code: Option<&str>,
        message: &RobotMessage,
    ) -> Result<String, DingTalkError> {
        let mut body = json!({
            "msgKey": message.msg_key,
            "msgParam": message.param_string(),
            "openConversationId": open_conversation_id,
            "robotCode": app.client_id,
        });
        if let Some(code) = cool_app_code {
            body["coolAppCode"] = Value::from(code);
        }
        let value = self
            .call(
                app,
                Method::POST,
                "/v1.0/robot/groupMessages/send",
                Some(&body),
            )
            .await?;
        Ok(value
            .get("processQueryKey")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// `POST /v1.0/robot/oToMessages/batchSend` to at most 20 people.
    pub async fn send_one_to_one(
        &self,
        app: AppCredentials<'_>,
        user_ids: &[String],
        message: &RobotMessage,
    ) -> Result<BatchSendResult, DingTalkError> {
        let body = json!({
            "robotCode": app.client_id,
            "userIds": user_ids,
            "msgKey": message.msg_key,
            "msgParam": message.param_string(),
        });
        let value = self
            .call(
                app,
                Method::POST,
                "/v1.0/robot/oToMessages/batchSend",
                Some(&body),
            )
            .await?;
        serde_json::from_value(value).map_err(|e| DingTalkError::Malformed(e.to_string()))
    }

    /// `POST /v1.0/card/instances/createAndDeliver` with a ready body; fails unless
    /// every space reports success.
    pub async fn create_and_deliver_card(
        &self,
        app: AppCredentials<'_>,
        body: &Value,
    ) -> Result<(), DingTalkError> {
        let value = self
            .call(
                app,
                Method::POST,
                "/v1.0/card/instances/createAndDeliver",
                Some(body),
            )
            .await?;
        let failed = value
            .pointer("/result/deliverResults")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|r| r.get("success").and_then(Value::as_bool) != Some(true));
        match failed {
            None => Ok(()),
            Some(result) => Err(DingTalkError::InvalidTarget {
                code: "deliverResults".into(),
                message: result
                    .get("errorMsg")
                    .and_then(Value::as_str)
                    .unwrap_or("card not delivered")
                    .to_string(),
            }),
        }
    }

    /// `PUT /v1.0/card/instances`: updates the shared card data by key.
    pub async fn update_card(
        &self,
        app: AppCredentials<'_>,
        out_track_id: &str,
        params: &serde_json::Map<String, Value>,
    ) -> Result<(), DingTalkError> {
        let body = json!({
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": params},
            "cardUpdateOptions": {"updateCardDataByKey": true, "updatePrivateDataByKey": true},
            "userIdType": 1,
        });
        self.call(app, Method::PUT, "/v1.0/card/instances", Some(&body))
            .await
            .map(|_| ())
    }
}

/// Who a login-free auth code belongs to (`/topapi/v2/user/getuserinfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DingTalkUser {
    /// userId.
    pub userid: String,
    /// unionId.
    #[serde(default)]
    pub unionid: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

/// A person's profile (`/topapi/v2/user/get`), as far as association needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct DingTalkProfile {
    /// Email, if visible to the app.
    #[serde(default)]
    pub email: String,
    /// Enterprise email, if any.
    #[serde(default)]
    pub org_email: String,
    /// Mobile, if visible to the app.
    #[serde(default)]
    pub mobile: String,
}

impl DingTalkClient {
    /// Exchanges a login-free auth code (5 minutes, single use) for the user.
    pub async fn user_by_auth_code(
        &self,
        app: AppCredentials<'_>,
        code: &str,
    ) -> Result<DingTalkUser, DingTalkError> {
        let value = self
            .call_oapi(app, "/topapi/v2/user/getuserinfo", &json!({"code": code}))
            .await?;
        serde_json::from_value(value.get("result").cloned().unwrap_or(Value::Null))
            .map_err(|e| DingTalkError::Malformed(e.to_string()))
    }

    /// A user's profile (needs the `qyapi_get_member` permission).
    pub async fn user_profile(
        &self,
        app: AppCredentials<'_>,
        user_id: &str,
    ) -> Result<DingTalkProfile, DingTalkError> {
        let value = self
            .call_oapi(app, "/topapi/v2/user/get", &json!({"userid": user_id}))
            .await?;
        serde_json::from_value(value.get("result").cloned().unwrap_or(Value::Null))
            .map_err(|e| DingTalkError::Malformed(e.to_string()))
    }

    /// The userId of the organisation's active member with this mobile
    /// (`/topapi/v2/user/getbymobile`, permission `qyapi_get_member_by_mobile`);
    /// None when nobody active has it (`60121`: unknown, or has left).
    pub async fn user_id_by_mobile(
        &self,
        app: AppCredentials<'_>,
        mobile: &str,
    ) -> Result<Option<String>, DingTalkError> {
        let answer = self
            .call_oapi(
                app,
                "/topapi/v2/user/getbymobile",
                &json!({"mobile": mobile}),
            )
            .await;
        let value = match answer {
            Err(DingTalkError::PermissionDenied { code, .. }) if code == "60121" => {
                return Ok(None);
            }
            other => other?,
        };
        value
            .pointer("/result/userid")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(|id| Some(id.to_string()))
            .ok_or_else(|| DingTalkError::Malformed("getbymobile answered no userid".into()))
    }
}

impl DingTalkClient {
    /// `POST /v1.0/card/callbacks/register` (forceUpdate: one route key ↔ our URL).
    pub async fn register_card_callback(
        &self,
        app: AppCredentials<'_>,
        route_key: &str,
        callback_url: &str,
        api_secret: &str,
    ) -> Result<(), DingTalkError> {
        let body = json!({
            "callbackRouteKey": route_key,
            "callbackUrl": callback_url,
            "apiSecret": api_secret,
            "forceUpdate": true,
        });
        self.call(
            app,
            Method::POST,
            "/v1.0/card/callbacks/register",
            Some(&body),
        )
        .await
        .map(|_| ())
    }
}
