//! Alertmanager silences from the chat (ARCHITECTURE.md §11): the integration's
//! `alertmanager` setting, the durations offered, the matchers taken from an
//! incident's labels and the silence as the incident remembers it. Pure: the HTTP
//! calls are in `infra::alertmanager`.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::ValidationError;
use super::incident::{Incident, IncidentStatus};
use super::refusal::Refusal;
use super::secret::Secret;

/// The source name of incidents that came from Alertmanager (only those can be silenced).
pub const ALERTMANAGER_SOURCE: &str = "alertmanager";

/// How an integration reaches its Alertmanager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerConfig {
    /// Base URL (the API is under `{url}/api/v2/`).
    pub url: String,
    /// Credentials, if the Alertmanager asks for them.
    #[serde(default)]
    pub auth: AlertmanagerAuth,
}

/// Alertmanager credentials (secrets: sealed at rest, never shown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AlertmanagerAuth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>` (e.g. a proxy in front of Alertmanager).
    Bearer(Secret),
    /// HTTP basic auth (Alertmanager's `--web.config.file` `basic_auth_users`).
    Basic {
        /// User name (shown).
        username: String,
        /// Password (secret).
        password: Secret,
    },
}

impl AlertmanagerAuth {
    /// The secret of these credentials, if any.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Self::None => None,
            Self::Bearer(token) => Some(token),
            Self::Basic { password, .. } => Some(password),
        }
    }

    /// The same credentials with the secret replaced by `secret`.
    pub fn with_secret(&self, secret: Secret) -> Self {
        match self {
            Self::None => Self::None,
            Self::Bearer(_) => Self::Bearer(secret),
            Self::Basic { username, .. } => Self::Basic {
                username: username.clone(),
                password: secret,
            },
        }
    }
}

/// What an API shows of the setting: the URL and the kind of credentials, no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertmanagerView {
    /// Base URL.
    pub url: String,
    /// `none`, `bearer` or `basic`.
    pub auth: String,
    /// The basic-auth user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl AlertmanagerConfig {
    /// Reads the `alertmanager` field of an integration body: `null` clears it,
    /// else `{"url", "auth": null | {"bearer": "…"} | {"basic": {"username", "password"}}}`.
    /// The URL's scheme and address are checked by the outbound policy as well.
    pub fn parse(value: &Value) -> Result<Option<Self>, ValidationError> {
        if value.is_null() {
            return Ok(None);
        }
        let field = "alertmanager";
        let map = value
            .as_object()
            .ok_or_else(|| ValidationError::new(field, "must be an object or null"))?;
        if let Some(unknown) = map.keys().find(|k| !matches!(k.as_str(), "url" | "auth")) {
            return Err(ValidationError::new(
                &format!("alertmanager.{unknown}"),
                "is not a known field",
            ));
        }
        let url = map
            .get("url")
            .and_then(Value::as_str)
            .map(|u| u.trim().trim_end_matches('/'))
            .filter(|u| !u.is_empty() && u.len() <= 2048)
            .ok_or_else(|| ValidationError::new("alertmanager.url", "is required: an https URL"))?;
        let auth = Self::parse_auth(map.get("auth").unwrap_or(&Value::Null))?;
        Ok(Some(Self {
            url: url.to_string(),
            auth,
        }))
    }

    fn parse_auth(value: &Value) -> Result<AlertmanagerAuth, ValidationError> {
        let field = "alertmanager.auth";
        let shape = r#"must be null, {"bearer": "<token>"} or {"basic": {"username", "password"}}"#;
        let secret = |f: &str, v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty() && s.len() <= 4096)
                .filter(|s| !s.starts_with(super::secret::SEALED_PREFIX))
                .map(str::to_string)
                .ok_or_else(|| ValidationError::new(f, "must be a non-empty string"))
        };
        let Some(map) = value.as_object() else {
            return if value.is_null() {
                Ok(AlertmanagerAuth::None)
            } else {
                Err(ValidationError::new(field, shape))
            };
        };
        match (map.len(), map.get("bearer"), map.get("basic")) {
            (1, Some(token), None) => Ok(AlertmanagerAuth::Bearer(Secret::new(secret(
                "alertmanager.auth.bearer",
                Some(token),
            )?))),
            (1, None, Some(basic)) => {
                let username = secret("alertmanager.auth.basic.username", basic.get("username"))?;
                let password = secret("alertmanager.auth.basic.password", basic.get("password"))?;
                Ok(AlertmanagerAuth::Basic {
                    username,
                    password: Secret::new(password),
                })
            }
            _ => Err(ValidationError::new(field, shape)),
        }
    }

    /// What an API may show.
    pub fn view(&self) -> AlertmanagerView {
        let (auth, username) = match &self.auth {
            AlertmanagerAuth::None => ("none", None),
            AlertmanagerAuth::Bearer(_) => ("bearer", None),
            AlertmanagerAuth::Basic { username, .. } => ("basic", Some(username.clone())),
        };
        AlertmanagerView {
            url: self.url.clone(),
            auth: auth.to_string(),
            username,
        }
    }
}

/// How long a silence from the chat lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SilenceDuration {
    /// One hour.
    OneHour,
    /// Four hours.
    FourHours,
    /// A day.
    OneDay,
}

impl SilenceDuration {
    /// Every duration offered, shortest first.
    pub const ALL: [Self; 3] = [Self::OneHour, Self::FourHours, Self::OneDay];

    /// Parses `1h`, `4h` or `24h`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.tag() == text.trim())
    }

    /// `1h`, `4h` or `24h` (the button parameter).
    pub fn tag(self) -> &'static str {
        match self {
            Self::OneHour => "1h",
            Self::FourHours => "4h",
            Self::OneDay => "24h",
        }
    }

    /// The length in milliseconds.
    pub fn millis(self) -> i64 {
        let hours = match self {
            Self::OneHour => 1,
            Self::FourHours => 4,
            Self::OneDay => 24,
        };
        hours * 3_600_000
    }
}

/// One Alertmanager matcher (always an exact `name="value"` from a label).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Label value.
    pub value: String,
    /// Always false: matchers are exact.
    pub is_regex: bool,
    /// Always true: matchers are equalities.
    pub is_equal: bool,
}

impl Matcher {
    /// `name="value"`, as Alertmanager writes it.
    pub fn display(&self) -> String {
        format!("{}={:?}", self.name, self.value)
    }
}

/// The silence an incident carries (set by Silence, cleared by Unsilence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveSilence {
    /// Alertmanager's silence id.
    pub id: String,
    /// When it ends (RFC 3339).
    pub until: String,
    /// Who created it.
    pub by: String,
    /// The Alertmanager URL it was made in (Unsilence refuses another one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<String>,
}

impl ActiveSilence {
    /// Whether it still runs at `now_ms` (an unreadable end counts as ended).
    pub fn runs_at(&self, now_ms: i64) -> bool {
        chrono::DateTime::parse_from_rfc3339(&self.until)
            .is_ok_and(|end| end.timestamp_millis() > now_ms)
    }
}

/// Whether the incident's labels may have been cut to the bounds (as many as kept,
/// or one as long as kept, give or take a character): a silence from them would
/// match other alerts than the group's.
fn labels_may_be_cut(incident: &Incident) -> bool {
    use crate::domain::bounds::{LABEL_BYTES, LABELS};
    incident.labels.len() >= LABELS
        || incident
            .labels
            .iter()
            .any(|(name, value)| name.len() + value.len() + 4 > LABEL_BYTES)
}

/// Why an incident cannot be silenced: said to the person who asked.
pub fn unsilenceable(incident: &Incident, configured: bool) -> Option<Refusal> {
    if !configured {
        Some(Refusal::NoAlertmanager)
    } else if incident.source.as_deref() != Some(ALERTMANAGER_SOURCE) {
        Some(Refusal::NotFromAlertmanager)
    } else if incident.status == IncidentStatus::Resolved {
        Some(Refusal::AlreadyResolved)
    } else if matchers_of(incident).is_empty() {
        Some(Refusal::NoLabels)
    } else if labels_may_be_cut(incident) {
        Some(Refusal::LabelsCut)
    } else {
        None
    }
}

/// The matchers of a silence for `incident`: one exact matcher per common label of
/// its Alertmanager group (labels with an empty value are left out: they would
/// match every alert without the label).
pub fn matchers_of(incident: &Incident) -> Vec<Matcher> {
    incident
        .labels
        .iter()
        .filter(|(name, value)| !name.is_empty() && !value.is_empty())
        .map(|(name, value)| Matcher {
            name: name.clone(),
            value: value.clone(),
            is_regex: false,
            is_equal: true,
        })
        .collect()
}

/// The `POST /api/v2/silences` body.
pub fn silence_body(
    matchers: &[Matcher],
    (starts_at, ends_at): (&str, &str),
    created_by: &str,
    comment: &str,
) -> Value {
    json!({
        "matchers": matchers,
        "startsAt": starts_at,
        "endsAt": ends_at,
        "createdBy": created_by,
        "comment": comment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::incident;

    #[test]
    fn the_setting_reads_every_auth_shape_and_refuses_the_rest() {
        let none = AlertmanagerConfig::parse(&json!({"url": "https://am.example.com/"}))
            .expect("ok")
            .expect("set");
        assert_eq!(none.url, "https://am.example.com");
        assert_eq!(none.auth, AlertmanagerAuth::None);
        let bearer = AlertmanagerConfig::parse(
            &json!({"url": "https://am.example.com", "auth": {"bearer": "tok"}}),
        )
        .expect("ok")
        .expect("set");
        assert_eq!(bearer.auth.secret().map(Secret::expose), Some("tok"));
        assert_eq!(bearer.view().auth, "bearer");
        let basic = AlertmanagerConfig::parse(&json!({"url": "https://am.example.com",
            "auth": {"basic": {"username": "ops", "password": "pw"}}}))
        .expect("ok")
        .expect("set");
        assert_eq!(basic.view().username.as_deref(), Some("ops"));
        assert!(
            !format!("{basic:?}").contains("pw"),
            "Debug hides the password"
        );
        assert_eq!(AlertmanagerConfig::parse(&Value::Null).expect("ok"), None);
        for (bad, field) in [
            (json!("https://x"), "alertmanager"),
            (json!({}), "alertmanager.url"),
            (
                json!({"url": "https://x", "extra": 1}),
                "alertmanager.extra",
            ),
            (
                json!({"url": "https://x", "auth": "tok"}),
                "alertmanager.auth",
            ),
            (
                json!({"url": "https://x", "auth": {"bearer": ""}}),
                "alertmanager.auth.bearer",
            ),
            (
                json!({"url": "https://x", "auth": {"basic": {"username": "u"}}}),
                "alertmanager.auth.basic.password",
            ),
            (
                json!({"url": "https://x", "auth": {"bearer": "a", "basic": {}}}),
                "alertmanager.auth",
            ),
        ] {
            let err = AlertmanagerConfig::parse(&bad).expect_err("refused");
            assert_eq!(err.field, field, "{bad}");
        }
    }

    #[test]
    fn durations_are_the_three_offered() {
        assert_eq!(
            SilenceDuration::parse("4h"),
            Some(SilenceDuration::FourHours)
        );
        assert_eq!(SilenceDuration::parse("2h"), None);
        assert_eq!(SilenceDuration::OneDay.millis(), 86_400_000);
    }

    #[test]
    fn matchers_come_from_the_labels_and_only_alertmanager_incidents_qualify() {
        let mut inc = incident("x");
        inc.source = Some(ALERTMANAGER_SOURCE.into());
        inc.labels = [
            ("alertname", "DiskFull"),
            ("instance", "db-1"),
            ("empty", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let matchers = matchers_of(&inc);
        assert_eq!(
            matchers.iter().map(Matcher::display).collect::<Vec<_>>(),
            [r#"alertname="DiskFull""#, r#"instance="db-1""#]
        );
        assert_eq!(unsilenceable(&inc, true), None);
        assert!(unsilenceable(&inc, false).is_some());
        let body = silence_body(&matchers, ("a", "b"), "Alice", "c");
        assert_eq!(body["matchers"][0]["isEqual"], true);
        assert_eq!(body["matchers"][0]["isRegex"], false);
        inc.source = Some("grafana".into());
        assert!(unsilenceable(&inc, true).is_some());
        inc.source = Some(ALERTMANAGER_SOURCE.into());
        inc.labels.clear();
        assert!(unsilenceable(&inc, true).is_some());
    }

    #[test]
    fn labels_cut_to_the_bounds_are_not_silenced() {
        use crate::domain::bounds::{LABEL_BYTES, LABELS};
        let mut inc = incident("x");
        inc.source = Some(ALERTMANAGER_SOURCE.into());
        inc.labels
            .insert("query".into(), "q".repeat(LABEL_BYTES - 5 - 20));
        assert_eq!(unsilenceable(&inc, true), None, "long, but whole");
        inc.labels
            .insert("query".into(), "q".repeat(LABEL_BYTES - 5));
        assert_eq!(unsilenceable(&inc, true), Some(Refusal::LabelsCut));
        inc.labels = (0..LABELS)
            .map(|n| (format!("l{n}"), "v".to_string()))
            .collect();
        assert_eq!(unsilenceable(&inc, true), Some(Refusal::LabelsCut));
        inc.labels.pop_last();
        assert_eq!(unsilenceable(&inc, true), None);
    }
}
