//! `make dev`: runs the whole product locally until Ctrl-C.

use local_stack::stack::{DevSettings, start};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
                "info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn".into()
            }),
        )
        .init();
    let settings = DevSettings::from_lookup(|name| std::env::var(name).ok())?;
    let stack = start(settings).await?;
    let base = &stack.public_base_url;
    let local = format!("http://{}", stack.addr);
    println!("\nDingTalk incident integration: local stack running\n");
    println!("  admin API        {local}/api/integrations");
    let (key, generated) = &stack.admin_api_key;
    if *generated {
        println!("  admin key        {key}   (generated; set ADMIN_API_KEY to choose one)");
    } else {
        println!("  admin key        from ADMIN_API_KEY");
    }
    match (&stack.moto, &stack.aws_endpoint_url) {
        (Some(_), url) => println!(
            "  DynamoDB/SQS     {url}  (moto server started for this run; state is lost on exit)"
        ),
        (None, url) => println!("  DynamoDB/SQS     {url}  (AWS_ENDPOINT_URL)"),
    }
    println!("  queue            {}", stack.queue_url);
    if stack.sandbox.is_some() {
        println!("  DingTalk         built-in sandbox  {local}/sandbox");
    } else {
        println!("  DingTalk         DINGTALK_API_BASE / DINGTALK_OAPI_BASE");
    }
    if let Some(demo) = &stack.demo {
        println!("\n  demo integration {}", demo.id);
        println!("    event subscription  {base}/dingtalk/{}/events", demo.id);
        println!("    H5 home             {base}/dingtalk/{}/app", demo.id);
        println!(
            "    chat list           curl -H \"Authorization: Bearer $ADMIN_KEY\" {local}/api/integrations/{}/chats   (ADMIN_KEY: the admin key above)",
            demo.id
        );
        if let Some(token) = &demo.ingest_token {
            println!("    ingest token        {token}");
            println!(
                "    robot-compatible    curl -X POST '{local}/api/integrations/{}/robot/send?access_token={token}' -H 'content-type: application/json' -d '{{\"msgtype\":\"text\",\"text\":{{\"content\":\"【告警】磁盘满 db-1 严重 @13800000002\"}}}}'   (@13800000002 is Bob: he is found by mobile and paged)",
                demo.id
            );
        }
        println!(
            "    escalation          critical alerts follow \"demo-escalation\": Alice, then after 30 s Bob and whoever is on call in \"demo-oncall\", with a phone DING"
        );
        println!(
            "    on-call             \"demo-oncall\": Carol and Bob take turns every hour (notice 5 min before); GET {local}/api/integrations/{}/preflight",
            demo.id
        );
        match &stack.alertmanager {
            Some(am) => println!(
                "    silences            a real Alertmanager at {} (no auth): Silence 1h/4h/24h on cards of alerts from Alertmanager; see README \"Silence from the chat\"",
                am.url
            ),
            None => println!(
                "    silences            off: install Debian's prometheus-alertmanager (make dev does) for the Silence buttons"
            ),
        }
        println!("\n  Open {local}/sandbox and install the cool app in a group.");
    }
    println!("\nCtrl-C stops everything.\n");
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = wait_for_term() => {}
    }
    println!("stopping");
    drop(stack);
    Ok(())
}

async fn wait_for_term() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}
