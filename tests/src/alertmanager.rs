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
