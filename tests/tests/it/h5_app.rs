//! The H5 app's API through its handler: login-free identity, association, incidents,
//! actions, and the refusals (codes, licences, races, sessions, origins).
//! The list of all open incidents with its filters, notes and the person's language
//! are in `h5_app/views.rs`.

mod views;

use integration_tests::{
    APP, BASE_URL, SESSION_SECRET, TestStack, alert_body, read, record_of, request,
};
use local_stack::sandbox::SandboxUser;
use serde_json::{Value, json};
use shared::infra::session::{Session, SessionKey};

const CID: &str = "cidH5Group000000000001==";
struct H5 {
    stack: TestStack,
    id: String,
}

impl H5 {
    async fn start() -> Self {
        Self::start_with(json!({})).await
    }

    /// A stack whose integration is created with `fields` set in (null: left out of)
    /// the default payload.
    async fn start_with(fields: Value) -> Self {
        let stack = TestStack::start().await;
        let mut payload = stack.create_payload();
        let object = payload.as_object_mut().expect("object");
        for (k, v) in fields.as_object().expect("object") {
            // null leaves a field out (the create default applies).
            if v.is_null() {
                object.remove(k);
            } else {
                object.insert(k.clone(), v.clone());
            }
        }
        let (status, created) = stack
            .admin("POST", "/api/integrations", Some(payload))
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_string();
        stack.install_chat(&id, CID, "值班群").await;
        // Bob's DingTalk profile email is not his member email: he needs a link code.
        stack
            .add_member(&id, "robert@corp.example", "Robert", None)
            .await;
        stack.sandbox.add_user(SandboxUser {
            user_id: "bob0002".into(),
            union_id: "union-bob".into(),
            name: "Bob 李".into(),
            email: Some("bob@gmail.example".into()),
            mobile: None,
        });
        Self { stack, id }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut headers = vec![("content-type", "application/json".to_string())];
        if let Some(token) = token {
            headers.push(("authorization", format!("Bearer {token}")));
        }
        let path = format!("/dingtalk/{}/app/api{path}", self.id);
        read(
            self.stack
                .h5
                .handle(request(
                    method,
                    &path,
                    &headers,
                    body.map(|b| b.to_string().into_bytes()),
                ))
                .await,
        )
    }

    async fn login(&self, user: &str) -> (String, Value) {
        let code = self.stack.sandbox.issue_auth_code(user);
        let (status, body) = self
            .call("POST", "/login", None, Some(json!({"code": code})))
            .await;
        assert_eq!(status, 200, "{body}");
        (body["session"].as_str().expect("session").to_string(), body)
    }

    async fn link_code(&self, email: &str) -> String {
        let (status, body) = self
            .stack
            .admin(
                "POST",
                &format!("/api/integrations/{}/members/{email}/link-code", self.id),
                None,
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["code"].as_str().expect("code").to_string()
    }

    async fn incident_for(&self, member: &str, key: &str) -> String {
        self.raise(
            key,
            "critical",
            json!({"chats": [CID], "members": [member]}),
        )
        .await
    }

    /// Raises alert `key` of `severity` to `targets`; returns its incident's id.
    async fn raise(&self, key: &str, severity: &str, targets: Value) -> String {
        let mut body: Value = serde_json::from_str(&alert_body(
            &self.id,
            key,
            "firing",
            "2026-11-24T01:00:00Z",
            targets,
        ))
        .expect("json");
        body["alert"]["severity"] = json!(severity);
        assert!(
            self.stack
                .deliver(&[(key, body.to_string())])
                .await
                .is_empty()
        );
        self.stack
            .services
            .store
            .list_incidents(&self.id)
            .await
            .expect("list")
            .into_iter()
            .find(|i| i.key == key)
            .expect("incident")
            .id
    }

    /// Logs Bob in and associates him with Robert's member; returns his session.
    async fn robert(&self) -> String {
        let (token, _) = self.login("bob0002").await;
        let code = self.link_code("robert@corp.example").await;
        let (status, me) = self
            .call(
                "POST",
                "/associate",
                Some(&token),
                Some(json!({"code": code})),
            )
            .await;
        assert_eq!(status, 200, "{me}");
        token
    }

    /// Chooses the page's language (`POST /locale {"locale": value}`).
    async fn choose(&self, token: &str, value: Value) -> (u16, Value) {
        self.call(
            "POST",
            "/locale",
            Some(token),
            Some(json!({"locale": value})),
        )
        .await
    }

    /// The ids of a list answer, in order.
    async fn ids(&self, token: &str, query: &str) -> Vec<String> {
        let (status, list) = self
            .call("GET", &format!("/incidents{query}"), Some(token), None)
            .await;
        assert_eq!(status, 200, "{query}: {list}");
        list.as_array()
            .expect("array")
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_string())
            .collect()
    }
}

#[tokio::test]
async fn link_code_association_then_acting_as_the_member() {
    let h5 = H5::start().await;
    let (token, login) = h5.login("bob0002").await;
    assert!(login["member"].is_null(), "not associated yet: {login}");
    assert_eq!(login["user"]["name"], "Bob 李");

    let code = h5.link_code("robert@corp.example").await;
    let (status, me) = h5
        .call(
            "POST",
            "/associate",
            Some(&token),
            Some(json!({"code": code.to_lowercase()})),
        )
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["member"]["email"], "robert@corp.example");
    assert_eq!(me["associated_via"], "link_code");

    let incident_id = h5.incident_for("robert@corp.example", "h5-ack").await;
    let (status, list) = h5
        .call("GET", "/incidents?view=mine", Some(&token), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], incident_id.as_str());
    let (_, group) = h5
        .call(
            "GET",
            &format!("/incidents?view=group&cid={}", CID.replace('=', "%3D")),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(group[0]["id"], incident_id.as_str());

    let (status, acked) = h5
        .call(
            "POST",
            &format!("/incidents/{incident_id}/actions"),
            Some(&token),
            Some(json!({"action": "ack", "version": 1})),
        )
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["acked_by"], "Robert");
    let (_, detail) = h5
        .call(
            "GET",
            &format!("/incidents/{incident_id}"),
            Some(&token),
            None,
        )
        .await;
    let record = record_of(&detail, "acknowledged");
    assert!(
        record["actor"]
            .as_str()
            .expect("actor")
            .contains("robert@corp.example")
    );

    let (status, snoozed) = h5
        .call(
            "POST",
            &format!("/incidents/{incident_id}/actions"),
            Some(&token),
            Some(json!({"action": "snooze", "duration": "2h"})),
        )
        .await;
    assert_eq!((status, snoozed["snoozed_until"].is_string()), (200, true));
    let (status, resolved) = h5
        .call(
            "POST",
            &format!("/incidents/{incident_id}/actions"),
            Some(&token),
            Some(json!({"action": "resolve"})),
        )
        .await;
    assert_eq!(
        (status, resolved["status"].as_str()),
        (200, Some("resolved"))
    );

    // A second login goes straight to the associated member.
    let (_, again) = h5.login("bob0002").await;
    assert_eq!(again["member"]["email"], "robert@corp.example");
    let (_, audit) = h5
        .stack
        .admin("GET", &format!("/api/integrations/{}/audit", h5.id), None)
        .await;
    assert!(
        audit[0]["detail"]
            .as_str()
            .expect("detail")
            .contains("link_code")
    );

    // Unlink from the page.
    let (status, me) = h5.call("POST", "/unlink", Some(&token), None).await;
    assert_eq!((status, me["member"].is_null()), (200, true));
}

#[tokio::test]
async fn profile_email_matching_one_member_associates_automatically() {
    let h5 = H5::start().await;
    h5.stack
        .add_member(&h5.id, "carol@example.com", "Carol", None)
        .await;
    h5.stack.sandbox.add_user(SandboxUser {
        user_id: "carol0003".into(),
        union_id: "u3".into(),
        name: "Carol".into(),
        email: Some("Carol@Example.com".into()),
        mobile: None,
    });
    let (_, login) = h5.login("carol0003").await;
    assert_eq!(login["member"]["email"], "carol@example.com");
    assert_eq!(login["associated_via"], "profile_match");
}

#[tokio::test]
async fn wrong_used_and_expired_codes_and_too_many_attempts() {
    let h5 = H5::start().await;
    let (token, _) = h5.login("bob0002").await;
    let associate = |code: String| {
        let token = token.clone();
        let h5 = &h5;
        async move {
            h5.call(
                "POST",
                "/associate",
                Some(&token),
                Some(json!({"code": code})),
            )
            .await
        }
    };
    let (status, body) = associate("WRONG234".into()).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("code"))
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("wrong or expired")
    );

    // Expired: a code whose 15 minutes are over.
    let now = shared::Clock::now_secs(&shared::SystemClock);
    h5.stack
        .services
        .store
        .put_link_code(&h5.id, "EXPIRED2", "robert@corp.example", now - 1)
        .await
        .expect("put");
    let (status, body) = associate("EXPIRED2".into()).await;
    assert_eq!(status, 400, "{body}");

    // Used: the same code twice.
    let code = h5.link_code("robert@corp.example").await;
    assert_eq!(associate(code.clone()).await.0, 200);
    let (status, body) = associate(code).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("already used"),
        "{body}"
    );

    // Guessing is cut off after 5 attempts in 15 minutes, even for a good code.
    let good = h5.link_code("robert@corp.example").await;
    for _ in 0..2 {
        associate("GUESS234".into()).await;
    }
    let (status, body) = associate(good).await;
    assert_eq!(status, 429, "{body}");
}

#[tokio::test]
async fn unlicensed_and_unassociated_people_cannot_act() {
    let h5 = H5::start().await;
    let incident_id = h5.incident_for("robert@corp.example", "lic").await;
    let (token, _) = h5.login("bob0002").await;
    let path = format!("/incidents/{incident_id}/actions");
    let (status, body) = h5
        .call("POST", &path, Some(&token), Some(json!({"action": "ack"})))
        .await;
    assert_eq!(status, 403, "not associated: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("link code")
    );

    let (status, _) = h5
        .stack
        .admin(
            "POST",
            &format!("/api/integrations/{}/members", h5.id),
            Some(json!({"email": "robert@corp.example", "name": "Robert", "licensed": false})),
        )
        .await;
    assert_eq!(status, 200);
    let code = h5.link_code("robert@corp.example").await;
    assert_eq!(
        h5.call(
            "POST",
            "/associate",
            Some(&token),
            Some(json!({"code": code}))
        )
        .await
        .0,
        200
    );
    let (status, body) = h5
        .call("POST", &path, Some(&token), Some(json!({"action": "ack"})))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("no licence")
    );
    let incident = h5
        .stack
        .services
        .store
        .get_incident(&incident_id)
        .await
        .expect("get")
        .expect("some");
    assert_eq!(
        incident.status,
        shared::domain::incident::IncidentStatus::Triggered,
        "nothing changed"
    );
}

#[tokio::test]
async fn a_stale_concurrent_action_loses_and_sees_the_new_state() {
    let h5 = H5::start().await;
    let incident_id = h5.incident_for("robert@corp.example", "race").await;
    let (token, _) = h5.login("bob0002").await;
    let code = h5.link_code("robert@corp.example").await;
    h5.call(
        "POST",
        "/associate",
        Some(&token),
        Some(json!({"code": code})),
    )
    .await;
    let path = format!("/incidents/{incident_id}/actions");
    // Two people looked at version 1; the first acknowledges, the second resolves from the same view.
    let (status, _) = h5
        .call(
            "POST",
            &path,
            Some(&token),
            Some(json!({"action": "ack", "version": 1})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = h5
        .call(
            "POST",
            &path,
            Some(&token),
            Some(json!({"action": "resolve", "version": 1})),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["incident"]["status"], "acknowledged");
    assert_eq!(body["incident"]["version"], 2);
}

#[tokio::test]
async fn forged_expired_and_foreign_sessions_are_refused() {
    let h5 = H5::start().await;
    let (token, _) = h5.login("bob0002").await;
    let expired = SessionKey::new(SESSION_SECRET).issue(&Session {
        iid: h5.id.clone(),
        uid: "bob0002".into(),
        name: "Bob".into(),
        exp: 1,
        sid: "s".into(),
    });
    let forged = SessionKey::new("guessed-secret").issue(&Session {
        iid: h5.id.clone(),
        uid: "bob0002".into(),
        name: "Bob".into(),
        exp: i64::MAX,
        sid: "s".into(),
    });
    let foreign = SessionKey::new(SESSION_SECRET).issue(&Session {
        iid: "other".into(),
        uid: "bob0002".into(),
        name: "Bob".into(),
        exp: i64::MAX,
        sid: "s".into(),
    });
    let tampered = format!("{}x", token);
    for bad in [
        expired.as_str(),
        forged.as_str(),
        foreign.as_str(),
        tampered.as_str(),
        "",
        "garbage",
    ] {
        let (status, body) = h5.call("GET", "/me", Some(bad), None).await;
        assert_eq!(status, 401, "{bad}: {body}");
    }
    let (status, _) = h5.call("GET", "/me", None, None).await;
    assert_eq!(status, 401);
    // A login code can be used once only.
    let code = h5.stack.sandbox.issue_auth_code("bob0002");
    assert_eq!(
        h5.call("POST", "/login", None, Some(json!({"code": code})))
            .await
            .0,
        200
    );
    assert_eq!(
        h5.call("POST", "/login", None, Some(json!({"code": code})))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn cross_origin_posts_are_refused_and_the_page_holds_no_secrets() {
    let h5 = H5::start().await;
    let (token, _) = h5.login("bob0002").await;
    let headers = [
        ("content-type", "application/json".to_string()),
        ("authorization", format!("Bearer {token}")),
        ("origin", "https://evil.example".to_string()),
    ];
    let path = format!("/dingtalk/{}/app/api/unlink", h5.id);
    let (status, body) = read(
        h5.stack
            .h5
            .handle(request("POST", &path, &headers, None))
            .await,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("cross_origin"))
    );
    let ours = [
        ("origin", BASE_URL.to_string()),
        ("authorization", format!("Bearer {token}")),
    ];
    assert_eq!(
        read(
            h5.stack
                .h5
                .handle(request("POST", &path, &ours, None))
                .await
        )
        .0,
        200
    );

    let page = h5
        .stack
        .h5
        .handle(request(
            "GET",
            &format!("/dingtalk/{}/app", h5.id),
            &[],
            None,
        ))
        .await;
    assert_eq!(page.status().as_u16(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = match page.body() {
        lambda_http::Body::Text(t) => t.clone(),
        _ => String::new(),
    };
    assert!(html.contains(APP.corp_id) && html.contains(APP.client_id));
    for secret in [APP.client_secret, APP.aes_key, APP.token, SESSION_SECRET] {
        assert!(!html.contains(secret));
    }
    let unknown = h5
        .stack
        .h5
        .handle(request("GET", "/dingtalk/nosuch/app", &[], None))
        .await;
    assert_eq!(unknown.status().as_u16(), 404);
}

#[tokio::test]
async fn unassociated_people_read_no_incidents() {
    let h5 = H5::start().await;
    let incident_id = h5.incident_for("robert@corp.example", "h5-private").await;
    let (token, _) = h5.login("bob0002").await;
    let group = format!("/incidents?view=group&cid={}", CID.replace('=', "%3D"));
    let detail = format!("/incidents/{incident_id}");
    let paths = [
        group.as_str(),
        detail.as_str(),
        "/incidents?view=mine",
        "/incidents?view=all",
        "/incidents?view=all&severity=critical",
        "/groups",
    ];
    for path in paths {
        let (status, body) = h5.call("GET", path, Some(&token), None).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
        assert!(
            !body.to_string().contains("h5-private"),
            "nothing of the incident leaks"
        );
    }
    let notes = format!("/incidents/{incident_id}/notes");
    let (status, body) = h5
        .call(
            "POST",
            &notes,
            Some(&token),
            Some(json!({"text": "me too"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = h5
        .call(
            "POST",
            "/locale",
            Some(&token),
            Some(json!({"locale": "en-US"})),
        )
        .await;
    assert_eq!(status, 403, "no binding to remember a language on");
    let (_, detail) = h5
        .stack
        .admin("GET", &format!("/api/incidents/{incident_id}"), None)
        .await;
    assert!(
        detail["records"]
            .as_array()
            .expect("records")
            .iter()
            .all(|r| r["kind"] != "note"),
        "no note written"
    );
}
