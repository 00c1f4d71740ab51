//! A real Alertmanager (Debian's `prometheus-alertmanager`, installed by `make
//! test`; started by [`local_stack::alertmanager`]) with basic auth, for the silence
//! tests, and a client that reads what it holds.

use local_stack::alertmanager::LocalAlertmanager;
use serde_json::Value;

/// The basic-auth user of every test Alertmanager.
pub const USER: &str = "ops";
/// Its password.
pub const PASSWORD: &str = "am-test-password";
/// The password's bcrypt hash (cost 4), as Alertmanager's web config wants it.
const PASSWORD_BCRYPT: &str = "$2b$04$fwZCfSjL7rXgJw.OfnTjI.CRXcHbjj/0renyRlLxYEgrKeiwUY/VO";

/// A running Alertmanager with basic auth.
pub struct RealAlertmanager {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _running: LocalAlertmanager,
    http: reqwest::Client,
}

impl RealAlertmanager {
    /// Starts one and waits until it is ready.
    pub async fn start() -> Self {
        let running = LocalAlertmanager::start(Some((USER, PASSWORD_BCRYPT, PASSWORD)))
            .await
            .unwrap_or_else(|err| panic!("{err} (`make test` installs it)"));
        Self {
            url: running.url.clone(),
            _running: running,
            http: reqwest::Client::new(),
        }
    }

    /// GET `path` (under `/api/v2`) with the credentials.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/v2{path}", self.url))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("Alertmanager answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Posts alerts (`POST /api/v2/alerts`), as Prometheus does.
    pub async fn post_alerts(&self, alerts: &Value) {
        let status = self
            .http
            .post(format!("{}/api/v2/alerts", self.url))
            .basic_auth(USER, Some(PASSWORD))
            .json(alerts)
            .send()
            .await
            .expect("Alertmanager answers")
            .status();
        assert!(status.is_success(), "alerts refused: {status}");
    }

    /// Every silence it holds.
    pub async fn silences(&self) -> Vec<Value> {
        let (status, body) = self.get("/silences").await;
        assert_eq!(status, 200, "{body}");
        body.as_array().cloned().unwrap_or_default()
    }
}

/// A TCP proxy in front of an Alertmanager that holds back the answer to every
/// `POST` for `delay` (the request itself goes through at once): Alertmanager makes
/// the silence, the caller's timeout fires before it hears so.
pub struct SlowAnswers {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl SlowAnswers {
    /// Starts a proxy to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str, delay: std::time::Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let upstream = upstream.trim_start_matches("http://").to_string();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    let _ = relay(client, &upstream, delay).await;
                });
            }
        });
        Self { url, task }
    }
}

impl Drop for SlowAnswers {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: the request straight through, the answer late when it is a POST.
async fn relay(
    client: tokio::net::TcpStream,
    upstream: &str,
    delay: std::time::Duration,
) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = tokio::net::TcpStream::connect(upstream).await?;
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let mut first = vec![0u8; 16 * 1024];
    let n = client_read.read(&mut first).await?;
    let is_post = first[..n].starts_with(b"POST ");
    server_write.write_all(&first[..n]).await?;
    let upload = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    });
    let mut answer = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let n = server_read.read(&mut chunk).await?;
    answer.extend_from_slice(&chunk[..n]);
    if is_post {
        tokio::time::sleep(delay).await;
    }
    client_write.write_all(&answer).await?;
    tokio::io::copy(&mut server_read, &mut client_write).await?;
    upload.abort();
    Ok(())
}
