//! The sandbox's DING and read-status endpoints over HTTP, and the page's
//! "mark as read" button.

use serde_json::{Value, json};

use super::*;
use crate::sandbox::{Fault, Limits, SandboxApp, SandboxUser, page};

const APP: &str = "dingsandboxtestapp01";
const OTHER: &str = "dingsandboxotherapp1";

struct Running {
    sandbox: Sandbox,
    base: String,
    http: reqwest::Client,
}

fn user(user_id: &str) -> SandboxUser {
    SandboxUser {
        user_id: user_id.into(),
        union_id: format!("union-{user_id}"),
        name: format!("Name <{user_id}>"),
        email: None,
        mobile: None,
    }
}

async fn start() -> Running {
    let sandbox = Sandbox::new();
    for key in [APP, OTHER] {
        sandbox.add_app(SandboxApp {
            app_key: key.into(),
            app_secret: format!("{key}-secret"),
            corp_id: "dingcorp".into(),
        });
    }
    for id in ["u1", "u2", "u3"] {
        sandbox.add_user(user(id));
    }
    let router = axum::Router::new()
        .nest("/sandbox", page::router(sandbox.clone()))
        .merge(sandbox.api_router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    Running {
        sandbox,
        base,
        http: reqwest::Client::new(),
    }
}

impl Running {
    async fn token(&self, app_key: &str) -> String {
        let answer: Value = self
            .http
            .post(format!("{}/v1.0/oauth2/accessToken", self.base))
            .json(&json!({"appKey": app_key, "appSecret": format!("{app_key}-secret")}))
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        answer["accessToken"].as_str().expect("token").to_string()
    }

    /// A call as `app_key`: (status, body).
    async fn call(&self, app_key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = self.token(app_key).await;
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(body) => self.http.post(url).json(&body),
            None => self.http.get(url),
        };
        let response = request
            .header("x-acs-dingtalk-access-token", token)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn ding(&self, remind: u8, receivers: &[&str]) -> (u16, Value) {
        let body = json!({"robotCode": APP, "remindType": remind,
                          "receiverUserIdList": receivers, "content": "wake up"});
        self.call(APP, DING_SEND_PATH, Some(body)).await
    }

    async fn read_status(&self, key: &str) -> (u16, Value) {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("robotCode", APP)
            .append_pair("processQueryKey", key)
            .finish();
        self.call(APP, &format!("{READ_STATUS_PATH}?{query}"), None)
            .await
    }
}

fn many(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}")).collect()
}

#[tokio::test]
async fn dings_are_validated_like_dingtalk() {
    let s = start().await;
    let body =
        json!({"robotCode": OTHER, "remindType": 1, "receiverUserIdList": ["u1"], "content": "x"});
    let (status, answer) = s.call(APP, DING_SEND_PATH, Some(body)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalid.chatbotId"))
    );
    let (status, answer) = s.ding(4, &["u1"]).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalidParameter.remindType"))
    );
    let sms: Vec<String> = many(21);
    let sms: Vec<&str> = sms.iter().map(String::as_str).collect();
    for remind in [2, 3] {
        let (status, answer) = s.ding(remind, &sms).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("ding.receivercount.limit"))
        );
    }
    let app: Vec<String> = many(201);
    let app: Vec<&str> = app.iter().map(String::as_str).collect();
    assert_eq!(s.ding(1, &app).await.0, 400);
    let (status, answer) = s.ding(1, &app[..200]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["failedList"][UNKNOWN_USER_REASON]
            .as_array()
            .map(Vec::len),
        Some(200)
    );
    assert!(s.dings()[0].receivers.is_empty());
    let refused: Vec<_> = s
        .sandbox
        .calls()
        .into_iter()
        .filter(|c| c.path == DING_SEND_PATH && c.status == 400)
        .filter_map(|c| c.code)
        .collect();
    assert_eq!(refused.len(), 5, "{refused:?}");
}

impl std::ops::Deref for Running {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.sandbox
    }
}

#[tokio::test]
async fn sms_and_phone_dings_need_quota() {
    let s = start().await;
    assert!(s.ding_call_quota());
    s.set_ding_call_quota(false);
    for remind in [2, 3] {
        let (status, answer) = s.ding(remind, &["u1"]).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("ding.serverquota.insufficient"))
        );
    }
    let (status, answer) = s.ding(1, &["u1", "nobody"]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["failedList"][UNKNOWN_USER_REASON], json!(["nobody"]));
    let dings = s.dings();
    assert_eq!(dings.len(), 1);
    assert_eq!(
        (dings[0].remind, dings[0].receivers.clone()),
        (1, vec!["u1".to_string()])
    );
    assert_eq!(
        dings[0].open_ding_id,
        answer["openDingId"].as_str().expect("id")
    );
    s.set_ding_call_quota(true);
    assert_eq!(s.ding(3, &["u2"]).await.0, 200);
}

#[tokio::test]
async fn only_the_sending_robot_recalls() {
    let s = start().await;
    let (_, sent) = s.ding(3, &["u1"]).await;
    let id = sent["openDingId"].as_str().expect("id").to_string();
    let (status, answer) = s
        .call(
            OTHER,
            DING_RECALL_PATH,
            Some(json!({"robotCode": OTHER, "openDingId": id})),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("recall.ding.exception"))
    );
    assert!(!s.dings()[0].recalled);
    for _ in 0..2 {
        let (status, answer) = s
            .call(
                APP,
                DING_RECALL_PATH,
                Some(json!({"robotCode": APP, "openDingId": id})),
            )
            .await;
        assert_eq!(
            (status, answer["openDingId"].as_str()),
            (200, Some(id.as_str()))
        );
    }
    assert!(s.dings()[0].recalled);
    let (status, answer) = s
        .call(
            APP,
            DING_RECALL_PATH,
            Some(json!({"robotCode": APP, "openDingId": "nope"})),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("recall.ding.exception"))
    );
}

#[tokio::test]
async fn ding_calls_are_guarded_and_counted() {
    let s = start().await;
    let (status, _) = s
        .http
        .post(format!("{}{DING_SEND_PATH}", s.base))
        .json(&json!({}))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .expect("send");
    assert_eq!(status, 401);
    s.inject(Fault::new_api(
        DING_SEND_PATH,
        403,
        "toomuch.msg",
        "too many",
    ));
    let (status, answer) = s.ding(1, &["u1"]).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (403, Some("toomuch.msg"))
    );
    assert_eq!(s.ding(1, &["u1"]).await.0, 200);
    let used = s.monthly_usage(APP);
    assert_eq!(used, 1, "the fault is not counted, the DING is");
    s.set_limits(Limits {
        qps: None,
        monthly_quota: Some(used),
    });
    let (status, answer) = s.read_status("any").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (403, Some("Forbidden.AccessDenied.ApiCountLimitForOrg"))
    );
}

/// Sends a 1:1 message to u1 and u2; returns its processQueryKey.
async fn one_to_one(s: &Running) -> String {
    let body = json!({"robotCode": APP, "userIds": ["u1", "u2"], "msgKey": "sampleText",
                      "msgParam": "{\"content\":\"hi\"}"});
    let (status, answer) = s
        .call(APP, "/v1.0/robot/oToMessages/batchSend", Some(body))
        .await;
    assert_eq!(status, 200, "{answer}");
    answer["processQueryKey"].as_str().expect("key").to_string()
}

#[tokio::test]
async fn read_status_follows_mark_read() {
    let s = start().await;
    let key = one_to_one(&s).await;
    assert!(
        key.contains('+') && key.contains('/') && key.ends_with('='),
        "{key}"
    );
    let (status, answer) = s.read_status(&key).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sendStatus"], "SUCCESS");
    let states = |a: &Value| -> Vec<(String, String)> {
        a["messageReadInfoList"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| {
                (
                    i["userId"].as_str().unwrap_or("").into(),
                    i["readStatus"].as_str().unwrap_or("").into(),
                )
            })
            .collect()
    };
    let expect = |u1: &str, u2: &str| {
        vec![
            ("u1".to_string(), u1.to_string()),
            ("u2".to_string(), u2.to_string()),
        ]
    };
    assert_eq!(states(&answer), expect("UNREAD", "UNREAD"));
    assert_eq!(answer["messageReadInfoList"][0]["name"], "Name <u1>");
    s.mark_read(&key, "u2");
    s.mark_read(&key, "u3"); // not a receiver: ignored
    assert!(s.read_at(&key, "u3").is_none());
    let (_, answer) = s.read_status(&key).await;
    assert_eq!(states(&answer), expect("UNREAD", "READ"));
    assert!(answer["messageReadInfoList"][1]["readTimestamp"].as_i64() > Some(0));
    let (status, answer) = s.read_status("no-such-key").await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("invalidParameter.processQueryKey"))
    );
}

#[tokio::test]
async fn the_page_shows_dings_and_marks_messages_read() {
    let s = start().await;
    let key = one_to_one(&s).await;
    let (_, sent) = s.ding(3, &["u1"]).await;
    let id = sent["openDingId"].as_str().expect("id").to_string();
    s.call(
        APP,
        DING_RECALL_PATH,
        Some(json!({"robotCode": APP, "openDingId": id})),
    )
    .await;
    s.ding(2, &["u1"]).await;
    let page = |s: &Running| {
        let request = s.http.get(format!("{}/sandbox", s.base));
        async move {
            request
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("text")
        }
    };
    let html = page(&s).await;
    assert!(
        html.contains(&format!("📞 phone DING from {APP}")),
        "{html}"
    );
    assert!(html.contains("💬 SMS DING"));
    assert!(html.contains("<b class=bad>recalled</b>"));
    assert!(html.contains("Name &lt;u1&gt;"));
    assert_eq!(html.matches("Mark as read").count(), 2);
    let response = s
        .http
        .post(format!("{}/sandbox/actions/mark-read", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("process_query_key", &key)
                .append_pair("user_id", "u1")
                .finish(),
        )
        .send()
        .await
        .expect("mark read");
    assert!(response.status().is_success());
    assert!(s.read_at(&key, "u1").is_some());
    assert!(s.read_at(&key, "u2").is_none());
    let html = page(&s).await;
    assert_eq!(html.matches("Mark as read").count(), 1);
    assert!(html.contains("data-read=true>read</span>"));
}
