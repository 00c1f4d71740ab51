//! Unit tests of the DingTalk custom-robot ingest: signs, message types, keywords,
//! markers and the events they make.

use super::*;

#[test]
fn sign_follows_dingtalk() {
    // Python: base64(hmac.new(secret, f"{timestamp}\n{secret}", sha256).digest())
    let (secret, at) = ("dti_sample_ingest_token_for_events_only", "1795000400000");
    let sign = robot_sign(secret, at);
    assert_eq!(sign, "PDZv5dWqGGc0y+cDtNeUy+zQOR3ibS3Hi2VXwI2emlA=");
    let now = 1_795_000_400_000;
    let check = |ts: Option<&str>, sign: Option<&str>, now: i64| check_sign(secret, ts, sign, now);
    assert_eq!(check(None, None, now), Ok(()));
    assert_eq!(check(Some(at), Some(&sign), now + 3_599_000), Ok(()));
    assert_eq!(check(Some(at), Some(&sign), now - 3_600_000), Ok(()));
    // An unencoded sign arrives with spaces for its `+`.
    assert_eq!(check(Some(at), Some(&sign.replace('+', " ")), now), Ok(()));
    let stale = Err(RobotError::InvalidTimestamp);
    assert_eq!(check(Some(at), Some(&sign), now + 3_600_001), stale);
    assert_eq!(check(Some("soon"), Some(&sign), now), stale);
    assert_eq!(check(None, Some(&sign), now), stale);
    let wrong = Err(RobotError::SignNotMatch);
    assert_eq!(check_sign("other", Some(at), Some(&sign), now), wrong);
    assert_eq!(check(Some(at), None, now), wrong);
    assert_eq!(check(Some(at), Some("bm90IGl0"), now), wrong);
}

#[test]
fn every_msgtype_gives_a_title_and_a_body() {
    let text = json!({"msgtype": "text", "text": {"content": "  \n磁盘告警 db-1 @13800000001\n详情"},
                      "at": {"atMobiles": ["13800000001", 13900000002_u64], "atUserIds": ["u1", "u1"], "isAtAll": true}});
    let m = parse_message(&text).expect("text");
    assert_eq!(m.title, "磁盘告警 db-1 @13800000001");
    assert_eq!(m.at_mobiles, ["13800000001", "13900000002"]);
    assert_eq!(m.at_user_ids, ["u1"]);
    assert!(m.at_all);
    let card = json!({"msgtype": "actionCard", "actionCard": {"title": "发布失败", "text": "### 发布失败",
                      "btns": [{"title": "查看", "actionURL": "https://ci.example.com/1"}, {"title": "x", "actionURL": "javascript:1"}]}});
    let m = parse_message(&card).expect("card");
    assert_eq!((m.title.as_str(), m.links.len()), ("发布失败", 1));
    let md = json!({"msgtype": "markdown", "markdown": {"text": "## CPU high\nload 9"}});
    assert_eq!(parse_message(&md).expect("md").title, "CPU high");
    let link = json!({"msgtype": "link", "link": {"title": "Build 12", "text": "failed", "messageUrl": "https://ci/12"}});
    assert_eq!(
        parse_message(&link).expect("link").links[0].url,
        "https://ci/12"
    );
    let feed = json!({"msgtype": "feedCard", "feedCard": {"links": [{"title": "a", "messageURL": "https://x/a"}]}});
    assert_eq!(
        parse_message(&feed).expect("feed").text,
        "- [a](https://x/a)\n"
    );
    let long = json!({"msgtype": "text", "text": {"content": "x".repeat(300)}});
    assert_eq!(
        parse_message(&long).expect("long").title.chars().count(),
        TEXT_TITLE_CHARS
    );
}

#[test]
fn bad_messages_are_refused_in_dingtalk_terms() {
    for body in [
        json!({"msgtype": "image", "image": {}}),
        json!({"msgtype": "text", "text": {"content": "  "}}),
        json!({"text": {"content": "x"}}),
        json!([1, 2]),
        json!({"msgtype": "markdown", "markdown": {"title": "t"}}),
        json!({"msgtype": "feedCard", "feedCard": {"links": "no"}}),
    ] {
        let code = parse_message(&body).map_err(|e| e.errcode());
        assert_eq!(code, Err(300_001), "{body}");
    }
    assert_eq!(parse_body(b" "), Err(RobotError::MissingBody));
    assert_eq!(parse_body(b"{oops").map_err(|e| e.errcode()), Err(300_001));
    let voice = parse_message(&json!({"msgtype": "voice"}));
    assert_eq!(voice, Err(RobotError::MsgtypeNotSupported));
    assert_eq!(RobotError::SignNotMatch.errcode(), 310_000);
    assert_eq!(RobotError::Busy("x".into()).http_status(), 503);
    assert_eq!(RobotError::MissingToken.http_status(), 200);
}

#[test]
fn severity_keywords() {
    for (text, severity) in [
        ("【严重】支付失败", Severity::Critical),
        ("[P1] checkout", Severity::Critical),
        ("P10 build done", Severity::Info),
        ("Disk WARNING on db-1", Severity::Warning),
        ("警告：磁盘 80%", Severity::Warning),
        ("build passed", Severity::Info),
    ] {
        assert_eq!(severity_of(text), severity, "{text}");
    }
}

#[test]
fn markers_decide_status_and_key() {
    for (title, resolved, rest) in [
        ("【告警】CPU high on db-1", false, "CPU high on db-1"),
        ("【恢复】CPU high on db-1", true, "CPU high on db-1"),
        ("[FIRING:2] [P1] CPU high", false, "CPU high"),
        ("✅ [RESOLVED] CPU high", true, "CPU high"),
        ("Resolved in 5m 3s: CPU high", true, "CPU high"),
        ("告警恢复：CPU high", true, "CPU high"),
        ("OK: CPU high", true, "CPU high"),
        ("Okta: login failures", false, "Okta: login failures"),
        ("High CPU: db-1", false, "High CPU: db-1"),
        (
            "Recovery time high: db-1",
            false,
            "Recovery time high: db-1",
        ),
        ("Problem: disk full", false, "disk full"),
        ("Service not OK", false, "Service not OK"),
        ("[payments] CPU high", false, "[payments] CPU high"),
        ("[恢复", false, "[恢复"),
    ] {
        assert_eq!(strip_markers(title), (resolved, rest), "{title}");
    }
    let key = key_of_title("【告警】CPU  high on db-1");
    assert_eq!(key, key_of_title("【恢复】cpu high on db-1"));
    assert_ne!(key, key_of_title("CPU high on db-2"));
    assert!(key_of_title("【恢复】").starts_with("robot-"));
}

/// Query parameters (an empty one left out).
fn params(severity: &str, key: &str, status: &str) -> RobotParams {
    let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
    RobotParams {
        severity: some(severity),
        key: some(key),
        status: some(status),
        ..RobotParams::default()
    }
}

#[test]
fn events_take_overrides_and_mask_mobiles() {
    let message = parse_message(&json!({"msgtype": "markdown",
        "markdown": {"title": "【恢复】CPU", "text": "ok"}, "at": {"atMobiles": ["13800000001"]}}))
    .expect("message");
    let event = to_event(&message, "int1", &params("", "", ""), 0).expect("event");
    assert_eq!(event.alert.status, AlertStatus::Resolved);
    assert_eq!(event.alert.labels["at_mobiles"], "138****0001");
    assert_eq!(event.alert.source.as_deref(), Some(ROBOT_SOURCE));
    let event = to_event(&message, "int1", &params("critical", "cpu-1", "firing"), 0);
    let alert = event.expect("event").alert;
    assert_eq!(
        (alert.status, alert.severity, alert.key.as_str()),
        (AlertStatus::Firing, Severity::Critical, "cpu-1")
    );
    let long = "k".repeat(300);
    for bad in [
        params("loud", "", ""),
        params("", "", "maybe"),
        params("", &long, ""),
    ] {
        let refused = to_event(&message, "int1", &bad, 0).map_err(|e| e.errcode());
        assert_eq!(refused, Err(300_001));
    }
    assert_eq!(masked_mobile("123"), "***");
}

#[test]
fn firing_mentions_hand_their_mobiles_to_the_notifier() {
    let body = json!({"msgtype": "text", "text": {"content": "磁盘告警 @13800000001"},
                      "at": {"atMobiles": ["+86-13900000002", "abc", "12", "13800000001"]}});
    let message = parse_message(&body).expect("text");
    let event = to_event(&message, "int1", &params("", "", ""), 0).expect("event");
    assert_eq!(event.mention_mobiles, ["+86-13900000002", "13800000001"]);
    assert_eq!(
        event.alert.labels["at_mobiles"],
        "+86****0002,***,**,138****0001"
    );
    let resolved = to_event(&message, "int1", &params("", "", "resolved"), 0).expect("event");
    assert!(
        resolved.mention_mobiles.is_empty(),
        "a recovery pages nobody"
    );
}

#[test]
fn mobiles_in_the_text_are_masked_and_the_key_stays_the_same() {
    assert_eq!(
        masked_mentions("磁盘告警 @13800000001 @+8613900000002, @bob @12345 a@13800000003x"),
        "磁盘告警 @138****0001 @+86****0002, @bob @12345 a@13800000003x"
    );
    let body = json!({"msgtype": "text", "text": {"content": "【告警】磁盘满 @13800000001\n详情"}});
    let message = parse_message(&body).expect("text");
    let event = to_event(&message, "int1", &params("", "", ""), 0).expect("event");
    assert_eq!(event.alert.title, "【告警】磁盘满 @138****0001");
    assert_eq!(event.alert.description, "【告警】磁盘满 @138****0001\n详情");
    assert_eq!(event.alert.key, key_of_title("【告警】磁盘满 @13800000001"));
    assert_eq!(event.mention_mobiles, ["13800000001"]);
}
