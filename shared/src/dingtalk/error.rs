//! DingTalk API errors, classified by what the caller should do about them
//! (ARCHITECTURE.md §7.5).

use serde_json::Value;

use crate::infra::governor::BudgetError;
use crate::store::StoreError;

/// A failed DingTalk call, by class.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DingTalkError {
    /// The access token is invalid or expired (refresh and retry once).
    #[error("access token invalid or expired ({code})")]
    TokenInvalid {
        /// DingTalk's code.
        code: String,
    },
    /// The Client ID / Client Secret pair was refused.
    #[error("client id or client secret rejected ({code})")]
    InvalidCredentials {
        /// DingTalk's code.
        code: String,
    },
    /// A QPS/QPM limit or a generic throttle (wait about a second and retry).
    #[error("rate limited by DingTalk ({code})")]
    QpsLimited {
        /// DingTalk's code.
        code: String,
    },
    /// The organisation's monthly API quota is used up (do not retry this month).
    #[error("monthly API call quota exhausted ({code})")]
    QuotaExhausted {
        /// DingTalk's code.
        code: String,
    },
    /// The app lacks a permission scope.
    #[error("permission missing ({code}); required scopes: {}", required_scopes.join(", "))]
    PermissionDenied {
        /// DingTalk's code.
        code: String,
        /// Scopes DingTalk says are needed.
        required_scopes: Vec<String>,
    },
    /// No SMS / phone DING quota is left (`ding.serverquota.insufficient`): retrying
    /// will not help; the caller falls back to an in-app DING.
    #[error("no SMS/phone DING quota left ({code}); fall back to an in-app DING")]
    DingQuotaInsufficient {
        /// DingTalk's code.
        code: String,
    },
    /// Not sent: the month is in its reserve, kept for critical alerts.
    #[error(
        "suppressed: quota reserve (the rest of this month's DingTalk calls is kept for critical alerts)"
    )]
    QuotaReserved,
    /// The target (group, robot, user) is invalid, gone or refuses messages.
    #[error("target rejected ({code}): {message}")]
    InvalidTarget {
        /// DingTalk's code.
        code: String,
        /// DingTalk's message.
        message: String,
    },
    /// Any other refusal of the request itself (retrying will not help).
    #[error("request rejected (HTTP {status}, {code}): {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// DingTalk's code.
        code: String,
        /// DingTalk's message.
        message: String,
    },
    /// Network trouble, a timeout or a DingTalk-side failure (retry later).
    #[error("DingTalk unavailable: {0}")]
    Transient(String),
    /// The answer could not be read.
    #[error("unreadable DingTalk answer: {0}")]
    Malformed(String),
    /// Our token cache failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<BudgetError> for DingTalkError {
    fn from(err: BudgetError) -> Self {
        match err {
            BudgetError::QuotaExhausted => Self::QuotaExhausted {
                code: "local.monthly_quota".into(),
            },
            BudgetError::QuotaReserved => Self::QuotaReserved,
            BudgetError::QpsLimited => Self::QpsLimited {
                code: "local.qps".into(),
            },
            BudgetError::Store(err) => Self::Store(err),
        }
    }
}

impl DingTalkError {
    /// Whether the same call may succeed later without any change on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Transient(_)
                | Self::QpsLimited { .. }
                | Self::TokenInvalid { .. }
                | Self::Store(_)
        )
    }

    /// A short machine-readable name of the class (for records and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TokenInvalid { .. } => "token_invalid",
            Self::InvalidCredentials { .. } => "invalid_credentials",
            Self::QpsLimited { .. } => "qps_limited",
            Self::QuotaExhausted { .. } => "quota_exhausted",
            Self::QuotaReserved => "quota_reserved",
            Self::DingQuotaInsufficient { .. } => "ding_quota_insufficient",
            Self::PermissionDenied { .. } => "permission_denied",
            Self::InvalidTarget { .. } => "invalid_target",
            Self::Rejected { .. } => "rejected",
            Self::Transient(_) => "transient",
            Self::Malformed(_) => "malformed",
            Self::Store(_) => "store",
        }
    }
}

const QPS_CODES: [&str; 5] = [
    "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
    "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi",
    "Forbidden.AccessDenied.QpsLimitForApi",
    "Forbidden",
    // DING: over about 6,000 DINGs a minute per robot.
    "toomuch.msg",
];

/// The robot (or what it sends to) is wrong: `invalid.chatbotId` is a robotCode that
/// is not this app's robot.
const TARGET_CODES: [&str; 7] = [
    "group.disbanded",
    "bot.stopped",
    "invalid.openConversationId",
    "invalidParameter.openConversationId",
    "resource.not.found",
    "chatbot.notExist",
    "invalid.chatbotId",
];

/// No SMS / phone DING quota left.
const DING_QUOTA_CODE: &str = "ding.serverquota.insufficient";

// Other DING refusals (`ding.receivercount.limit`: too many receivers;
// `recall.ding.exception`: unknown DING or not this robot's) are `Rejected`.

/// Classifies a new-API (api.dingtalk.com) answer that was not a success.
pub fn classify_new_api(status: u16, body: &str) -> DingTalkError {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if let Some(err) = ip_ban(&json) {
        return err;
    }
    let code = json
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let message = json
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let with_status = || {
        if code.is_empty() {
            format!("HTTP {status}")
        } else {
            code.clone()
        }
    };
    if status == 401 || code == "InvalidAuthentication" || code == "InvalidAccessToken" {
        return DingTalkError::TokenInvalid {
            code: with_status(),
        };
    }
    if code == "invalidClientIdOrSecret" || code == "invalidClientId" {
        return DingTalkError::InvalidCredentials { code };
    }
    if status == 429
        || QPS_CODES.contains(&code.as_str())
        || code.eq_ignore_ascii_case("system.busy")
        || code == "systemBusy"
    {
        return DingTalkError::QpsLimited {
            code: with_status(),
        };
    }
    if code == "Forbidden.AccessDenied.ApiCountLimitForOrg" {
        return DingTalkError::QuotaExhausted { code };
    }
    if code == DING_QUOTA_CODE {
        return DingTalkError::DingQuotaInsufficient { code };
    }
    if code == "Forbidden.AccessDenied.AccessTokenPermissionDenied" {
        let required_scopes = json
            .pointer("/accessdenieddetail/requiredScopes")
            .and_then(Value::as_array)
            .map(|scopes| {
                scopes
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        return DingTalkError::PermissionDenied {
            code,
            required_scopes,
        };
    }
    if status >= 500 {
        return DingTalkError::Transient(format!("HTTP {status} {code}"));
    }
    if code.starts_with("invalidParameter.robotCode") || TARGET_CODES.contains(&code.as_str()) {
        return DingTalkError::InvalidTarget { code, message };
    }
    DingTalkError::Rejected {
        status,
        code: with_status(),
        message,
    }
}

/// Classifies an old-API (oapi.dingtalk.com) answer with a non-zero `errcode`.
pub fn classify_old_api(errcode: i64, errmsg: &str) -> DingTalkError {
    let code = errcode.to_string();
    match errcode {
        40014 | 42001 | 40001 => DingTalkError::TokenInvalid { code },
        40089 | 40091 | 40096 => DingTalkError::InvalidCredentials { code },
        90018 | 90002 | 90006 => DingTalkError::QpsLimited { code },
        90020 => DingTalkError::QuotaExhausted { code },
        60011 | 60020 | 60121 => DingTalkError::PermissionDenied {
            code,
            required_scopes: Vec::new(),
        },
        15 | 88 | -1 => DingTalkError::Transient(format!("errcode {errcode}: {errmsg}")),
        _ => DingTalkError::Rejected {
            status: 200,
            code,
            message: errmsg.to_string(),
        },
    }
}

/// The IP-level ban DingTalk answers with when an IP sends too much (status 1111).
fn ip_ban(json: &Value) -> Option<DingTalkError> {
    (json.get("status").and_then(Value::as_i64) == Some(1111)).then(|| DingTalkError::QpsLimited {
        code: "ip_banned".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_api_classes() {
        let cases = [
            (401, r#"{}"#, "token_invalid"),
            (
                400,
                r#"{"code":"InvalidAuthentication","message":"x"}"#,
                "token_invalid",
            ),
            (
                400,
                r#"{"code":"invalidClientIdOrSecret"}"#,
                "invalid_credentials",
            ),
            (
                403,
                r#"{"code":"Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"}"#,
                "qps_limited",
            ),
            (
                403,
                r#"{"code":"Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"}"#,
                "qps_limited",
            ),
            (
                403,
                r#"{"code":"Forbidden.AccessDenied.QpsLimitForApi"}"#,
                "qps_limited",
            ),
            (429, r#"{"code":"system.busy"}"#, "qps_limited"),
            (
                403,
                r#"{"code":"Forbidden.AccessDenied.ApiCountLimitForOrg"}"#,
                "quota_exhausted",
            ),
            (
                403,
                r#"{"code":"Forbidden.AccessDenied.AccessTokenPermissionDenied","accessdenieddetail":{"requiredScopes":["qyapi_chat_manage"]}}"#,
                "permission_denied",
            ),
            (
                400,
                r#"{"code":"invalidParameter.robotCode.notExist"}"#,
                "invalid_target",
            ),
            (400, r#"{"code":"group.disbanded"}"#, "invalid_target"),
            (400, r#"{"code":"bot.stopped"}"#, "invalid_target"),
            (
                400,
                r#"{"code":"invalidParameter.msgParam.tooLong"}"#,
                "rejected",
            ),
            (502, "<html>bad gateway</html>", "transient"),
            (504, "", "transient"),
            (
                200,
                r#"{"status":1111,"wait":5,"punish":"deny"}"#,
                "qps_limited",
            ),
        ];
        for (status, body, kind) in cases {
            assert_eq!(
                classify_new_api(status, body).kind(),
                kind,
                "{status} {body}"
            );
        }
        let DingTalkError::PermissionDenied {
            required_scopes, ..
        } = classify_new_api(
            403,
            r#"{"code":"Forbidden.AccessDenied.AccessTokenPermissionDenied","accessdenieddetail":{"requiredScopes":["a","b"]}}"#,
        )
        else {
            panic!("not a permission error");
        };
        assert_eq!(required_scopes, ["a", "b"]);
    }

    #[test]
    fn ding_classes() {
        let cases = [
            (
                400,
                r#"{"code":"ding.serverquota.insufficient","message":"no quota"}"#,
                "ding_quota_insufficient",
                false,
            ),
            (403, r#"{"code":"toomuch.msg"}"#, "qps_limited", true),
            (400, r#"{"code":"toomuch.msg"}"#, "qps_limited", true),
            (
                400,
                r#"{"code":"ding.receivercount.limit"}"#,
                "rejected",
                false,
            ),
            (
                400,
                r#"{"code":"invalid.chatbotId"}"#,
                "invalid_target",
                false,
            ),
            (
                400,
                r#"{"code":"recall.ding.exception"}"#,
                "rejected",
                false,
            ),
        ];
        for (status, body, kind, retryable) in cases {
            let err = classify_new_api(status, body);
            assert_eq!(err.kind(), kind, "{status} {body}");
            assert_eq!(err.is_retryable(), retryable, "{status} {body}");
        }
        let DingTalkError::DingQuotaInsufficient { code } =
            classify_new_api(400, r#"{"code":"ding.serverquota.insufficient"}"#)
        else {
            panic!("not a DING quota error");
        };
        assert_eq!(code, "ding.serverquota.insufficient");
        let DingTalkError::Rejected { status, code, .. } =
            classify_new_api(400, r#"{"code":"ding.receivercount.limit"}"#)
        else {
            panic!("not rejected");
        };
        assert_eq!((status, code.as_str()), (400, "ding.receivercount.limit"));
    }

    #[test]
    fn old_api_classes() {
        assert_eq!(classify_old_api(40014, "").kind(), "token_invalid");
        assert_eq!(classify_old_api(42001, "").kind(), "token_invalid");
        assert_eq!(classify_old_api(90018, "").kind(), "qps_limited");
        assert_eq!(classify_old_api(90002, "").kind(), "qps_limited");
        assert_eq!(classify_old_api(90020, "").kind(), "quota_exhausted");
        assert_eq!(classify_old_api(88, "").kind(), "transient");
        assert_eq!(classify_old_api(33012, "bad").kind(), "rejected");
    }
}
