//! DING (强提醒) and read receipts of 1:1 robot messages (protocol notes §10):
//! `POST /v1.0/robot/ding/send`, `POST /v1.0/robot/ding/recall` and
//! `GET /v1.0/robot/oToMessages/readStatus`. All three are counted calls and go
//! through [`DingTalkClient::call`], so the governor spends budget on them.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use super::{AppCredentials, DingTalkClient, DingTalkError};

/// Path of `RobotSendDing`.
pub const DING_SEND_PATH: &str = "/v1.0/robot/ding/send";
/// Path of `RobotRecallDing`.
pub const DING_RECALL_PATH: &str = "/v1.0/robot/ding/recall";
/// Path of `BatchOTOQuery` (read status of a 1:1 robot message).
pub const READ_STATUS_PATH: &str = "/v1.0/robot/oToMessages/readStatus";

/// The voice DingTalk reads phone DINGs with.
const CALL_VOICE: &str = "Standard_Female_Voice";

pub use crate::domain::escalation::RemindType;

/// What `ding/send` answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DingSent {
    /// `openDingId` (needed to recall it).
    pub open_ding_id: String,
    /// `failedList`: userIds DingTalk did not reach, by reason.
    pub failed: BTreeMap<String, Vec<String>>,
}

/// One receiver's read state of a 1:1 robot message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadInfo {
    /// userId.
    pub user_id: String,
    /// Whether DingTalk reports it `READ` (any other value is unread).
    pub read: bool,
}

/// `failedList` is documented as a map of reason → userIds; be lenient about the
/// value shape (a single string or anything else is kept as text).
fn failed_list(value: Option<&Value>) -> BTreeMap<String, Vec<String>> {
    let Some(map) = value.and_then(Value::as_object) else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(reason, ids)| {
            let ids = match ids {
                Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))
                    .collect(),
                Value::String(s) => vec![s.clone()],
                Value::Null => Vec::new(),
                other => vec![other.to_string()],
            };
            (reason.clone(), ids)
        })
        .collect()
}

/// Parses a `ding/send` answer.
fn ding_sent(value: &Value) -> Result<DingSent, DingTalkError> {
    let open_ding_id = value
        .get("openDingId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| DingTalkError::Malformed("ding/send answer without openDingId".into()))?;
    Ok(DingSent {
        open_ding_id: open_ding_id.to_string(),
        failed: failed_list(value.get("failedList")),
    })
}

/// Parses a `readStatus` answer (`messageReadInfoList`).
fn read_infos(value: &Value) -> Result<Vec<ReadInfo>, DingTalkError> {
    let list = match value.get("messageReadInfoList") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(DingTalkError::Malformed(
                "messageReadInfoList is not a list".into(),
            ));
        }
    };
    Ok(list
        .iter()
        .filter_map(|entry| {
            let user_id = entry.get("userId").and_then(Value::as_str)?;
            Some(ReadInfo {
                user_id: user_id.to_string(),
                read: entry.get("readStatus").and_then(Value::as_str) == Some("READ"),
            })
        })
        .collect())
}

/// The `ding/send` body.
fn ding_body(robot_code: &str, receivers: &[String], remind: RemindType, content: &str) -> Value {
    let mut body = json!({
        "robotCode": robot_code,
        "remindType": remind.code(),
        "receiverUserIdList": receivers,
        "content": content,
    });
    if remind == RemindType::Call {
        body["callVoice"] = Value::from(CALL_VOICE);
    }
    body
}

impl DingTalkClient {
    /// `POST /v1.0/robot/ding/send` from the app's robot (robotCode = Client ID).
    ///
    /// `ding.serverquota.insufficient` (no SMS/phone quota) comes back as
    /// [`DingTalkError::DingQuotaInsufficient`]: send an in-app DING instead. More
    /// receivers than [`RemindType::max_receivers`] are refused by DingTalk
    /// (`ding.receivercount.limit`); this method does not split the list.
    pub async fn send_ding(
        &self,
        app: AppCredentials<'_>,
        receivers: &[String],
        remind: RemindType,
        content: &str,
    ) -> Result<DingSent, DingTalkError> {
        let body = ding_body(app.client_id, receivers, remind, content);
        let value = self
            .call(app, Method::POST, DING_SEND_PATH, Some(&body))
            .await?;
        ding_sent(&value)
    }

    /// `POST /v1.0/robot/ding/recall`: withdraws a DING this app's robot sent.
    pub async fn recall_ding(
        &self,
        app: AppCredentials<'_>,
        open_ding_id: &str,
    ) -> Result<(), DingTalkError> {
        let body = json!({"robotCode": app.client_id, "openDingId": open_ding_id});
        self.call(app, Method::POST, DING_RECALL_PATH, Some(&body))
            .await
            .map(|_| ())
    }

    /// `GET /v1.0/robot/oToMessages/readStatus`: who has read a 1:1 robot message
    /// (by the processQueryKey `oToMessages/batchSend` returned; works 24 h).
    pub async fn read_status(
        &self,
        app: AppCredentials<'_>,
        process_query_key: &str,
    ) -> Result<Vec<ReadInfo>, DingTalkError> {
        let path = read_status_path(app.client_id, process_query_key);
        let value = self.call(app, Method::GET, &path, None).await?;
        read_infos(&value)
    }
}

/// `readStatus` path with its URL-encoded query (keys hold `+`, `/` and `=`).
fn read_status_path(robot_code: &str, process_query_key: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("robotCode", robot_code)
        .append_pair("processQueryKey", process_query_key)
        .finish();
    format!("{READ_STATUS_PATH}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remind_types() {
        assert_eq!(
            [RemindType::App, RemindType::Sms, RemindType::Call].map(RemindType::code),
            [1, 2, 3]
        );
        assert_eq!(RemindType::App.max_receivers(), 200);
        assert_eq!(RemindType::Sms.max_receivers(), 20);
        assert_eq!(RemindType::Call.max_receivers(), 20);
        assert_eq!(RemindType::Call.label(), "phone");
        assert_eq!(
            serde_json::to_value(RemindType::Call).expect("json"),
            json!("call")
        );
        let sms: RemindType = serde_json::from_value(json!("sms")).expect("parse");
        assert_eq!(sms, RemindType::Sms);
    }

    #[test]
    fn ding_bodies() {
        let to = ["u1".to_string(), "u2".to_string()];
        let call = ding_body("dingrobot", &to, RemindType::Call, "wake up");
        assert_eq!(
            call,
            json!({"robotCode": "dingrobot", "remindType": 3, "receiverUserIdList": ["u1", "u2"],
                   "content": "wake up", "callVoice": "Standard_Female_Voice"})
        );
        let app = ding_body("dingrobot", &to, RemindType::App, "x");
        assert_eq!(app["remindType"], 1);
        assert!(app.get("callVoice").is_none());
    }

    #[test]
    fn ding_answers() {
        let sent = ding_sent(&json!({"openDingId": "d1", "failedList": {
            "notExist": ["u9", "u8"], "odd": "u7", "none": null}}))
        .expect("sent");
        assert_eq!(sent.open_ding_id, "d1");
        assert_eq!(sent.failed["notExist"], ["u9", "u8"]);
        assert_eq!(sent.failed["odd"], ["u7"]);
        assert!(sent.failed["none"].is_empty());
        let bare = ding_sent(&json!({"openDingId": "d2"})).expect("sent");
        assert!(bare.failed.is_empty());
        assert!(matches!(
            ding_sent(&json!({})),
            Err(DingTalkError::Malformed(_))
        ));
    }

    #[test]
    fn read_answers() {
        let infos = read_infos(&json!({"sendStatus": "SUCCESS", "messageReadInfoList": [
            {"name": "A", "userId": "a", "readStatus": "READ", "readTimestamp": 1},
            {"name": "B", "userId": "b", "readStatus": "UNREAD"},
            {"name": "C", "userId": "c", "readStatus": "SOMETHING_NEW"},
            {"name": "no id"}]}))
        .expect("infos");
        let got: Vec<_> = infos.iter().map(|i| (i.user_id.as_str(), i.read)).collect();
        assert_eq!(got, [("a", true), ("b", false), ("c", false)]);
        assert!(
            read_infos(&json!({"sendStatus": "SUCCESS"}))
                .expect("empty")
                .is_empty()
        );
        assert!(read_infos(&json!({"messageReadInfoList": 3})).is_err());
    }

    #[test]
    fn read_status_query_is_encoded() {
        let path = read_status_path("ding robot", "ab+c/d==");
        assert_eq!(
            path,
            "/v1.0/robot/oToMessages/readStatus?robotCode=ding+robot&processQueryKey=ab%2Bc%2Fd%3D%3D"
        );
    }
}
