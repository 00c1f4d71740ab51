//! The emulator driven by a tiny fake runtime client over HTTP.

use super::*;

fn url(api: &RuntimeApi, path: &str) -> String {
    format!("http://{}{path}", api.addr())
}

/// A runtime's first `next`: the event and its headers.
async fn first_next(api: &RuntimeApi, client: &reqwest::Client) -> reqwest::Response {
    let next = client.get(url(api, NEXT)).send().await.expect("next");
    assert_eq!(next.status(), 200);
    next
}

#[tokio::test]
async fn hands_out_the_event_once_and_records_the_response() {
    let api = RuntimeApi::start("fn-a", br#"{"hello":1}"#.to_vec())
        .await
        .expect("start");
    let client = reqwest::Client::new();
    assert!(api.record().first_next_at.is_none());

    let next = first_next(&api, &client).await;
    let header = |name: &str| {
        next.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("header {name}"))
    };
    assert_eq!(header("Lambda-Runtime-Aws-Request-Id"), REQUEST_ID);
    assert_eq!(header("Lambda-Runtime-Trace-Id"), TRACE_ID);
    assert_eq!(
        header("Lambda-Runtime-Invoked-Function-Arn"),
        "arn:aws:lambda:us-east-1:123456789012:function:fn-a"
    );
    let deadline: u128 = header("Lambda-Runtime-Deadline-Ms").parse().expect("ms");
    assert!(deadline > epoch_ms_after(Duration::ZERO));
    assert_eq!(next.text().await.expect("body"), r#"{"hello":1}"#);

    // Another invocation id is refused and ends nothing.
    let other = client
        .post(url(&api, "/2018-06-01/runtime/invocation/other/response"))
        .body("x")
        .send()
        .await
        .expect("post");
    assert_eq!(other.status(), 400);
    assert!(api.record().outcome.is_none());

    let posted = client
        .post(url(&api, &RESPONSE.replace("{id}", REQUEST_ID)))
        .body(r#"{"statusCode":200}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 202);
    let record = api.wait_outcome(Duration::from_secs(5)).await;
    let outcome = record.outcome.expect("outcome");
    assert_eq!(outcome.kind, OutcomeKind::Response);
    assert_eq!(&outcome.body[..], br#"{"statusCode":200}"#);
    let (first, sent) = (record.first_next_at.expect("next"), record.event_sent_at);
    assert!(first <= sent.expect("sent") && sent <= Some(outcome.at));
    assert_eq!((record.bad_request_ids, record.aws_calls), (1, 0));

    // The second `next` waits, as in a frozen sandbox.
    let second = client.get(url(&api, NEXT)).send();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), second)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn records_invocation_and_init_errors() {
    let api = RuntimeApi::start("fn-b", b"{}".to_vec())
        .await
        .expect("start");
    let client = reqwest::Client::new();
    first_next(&api, &client).await;
    client
        .post(url(&api, &ERROR.replace("{id}", REQUEST_ID)))
        .header("Lambda-Runtime-Function-Error-Type", "Unhandled")
        .body(r#"{"errorType":"x","errorMessage":"boom"}"#)
        .send()
        .await
        .expect("post");
    let outcome = api.wait_outcome(Duration::from_secs(5)).await.outcome;
    assert_eq!(outcome.map(|o| o.kind), Some(OutcomeKind::Error));

    let api = RuntimeApi::start("fn-c", b"{}".to_vec())
        .await
        .expect("start");
    let posted = client
        .post(url(&api, INIT_ERROR))
        .body(r#"{"errorType":"Runtime.Init","errorMessage":"no config"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 202);
    let record = api.wait_outcome(Duration::from_secs(5)).await;
    assert_eq!(record.outcome.map(|o| o.kind), Some(OutcomeKind::InitError));
    assert!(record.first_next_at.is_none());
}

#[tokio::test]
async fn aws_calls_are_counted_and_refused_without_retry() {
    let api = RuntimeApi::start("fn-d", b"{}".to_vec())
        .await
        .expect("start");
    let answer = reqwest::Client::new()
        .post(url(&api, "/"))
        .header("x-amz-target", "DynamoDB_20120810.GetItem")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 400);
    assert_eq!(
        answer
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok()),
        Some(AWS_STUB_ERROR)
    );
    assert_eq!(api.record().aws_calls, 1);
    // Nothing ended: the wait gives up after its timeout.
    let record = api.wait_outcome(Duration::from_millis(50)).await;
    assert!(record.outcome.is_none());
}
