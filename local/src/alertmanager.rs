//! A real Alertmanager (Debian's `prometheus-alertmanager`) on a free loopback
//! port: `make dev`'s silence demo and the silence tests' peer. Clustering is off,
//! its data lives in a temporary directory (removed on drop), and it routes every
//! alert to a receiver that sends nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// A running Alertmanager; stopped and its directory removed on drop.
pub struct LocalAlertmanager {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    dir: PathBuf,
    _process: Child,
}

/// Why an Alertmanager could not be started.
#[derive(Debug, thiserror::Error)]
pub enum AlertmanagerStartError {
    /// No binary (install Debian's `prometheus-alertmanager`).
    #[error(
        "no Alertmanager binary: install Debian's prometheus-alertmanager or set ALERTMANAGER_BIN"
    )]
    Missing,
    /// Files or the process.
    #[error("could not start Alertmanager: {0}")]
    Io(#[from] std::io::Error),
    /// It did not answer `/-/ready` in time.
    #[error("Alertmanager did not become ready at {0}")]
    NotReady(String),
}

/// The binary: `ALERTMANAGER_BIN`, else Debian's.
pub fn binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ALERTMANAGER_BIN") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

impl LocalAlertmanager {
    /// Starts one, with basic auth when `basic_auth` gives `(user, bcrypt hash, password)`,
    /// and waits until it is ready.
    pub async fn start(
        basic_auth: Option<(&str, &str, &str)>,
    ) -> Result<Self, AlertmanagerStartError> {
        let binary = binary().ok_or(AlertmanagerStartError::Missing)?;
        let dir =
            std::env::temp_dir().join(format!("alertmanager-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir)?;
        let config = "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n";
        std::fs::write(dir.join("alertmanager.yml"), config)?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut command = Command::new(binary);
        command
            .arg(flag("config.file", &dir.join("alertmanager.yml")))
            .arg(flag("storage.path", &dir.join("data")))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some((user, hash, _)) = basic_auth {
            std::fs::write(
                dir.join("web.yml"),
                format!("basic_auth_users:\n  {user}: {hash}\n"),
            )?;
            command.arg(flag("web.config.file", &dir.join("web.yml")));
        }
        let am = Self {
            url: format!("http://127.0.0.1:{port}"),
            dir,
            _process: command.spawn()?,
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            let mut ready = client.get(format!("{}/-/ready", am.url));
            if let Some((user, _, password)) = basic_auth {
                ready = ready.basic_auth(user, Some(password));
            }
            if ready.send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(am);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(AlertmanagerStartError::NotReady(am.url.clone()))
    }
}

fn flag(name: &str, path: &Path) -> String {
    format!("--{name}={}", path.display())
}

impl Drop for LocalAlertmanager {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
