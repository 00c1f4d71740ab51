//! Checks of the integration's fields as an API sends them: each answers the
//! stored value or a [`ValidationError`] naming the field.

use serde_json::Value;

use super::integration::{Edition, Targets, is_email};
use super::locale::{Locale, MessageTemplates};
use super::validation::ValidationError;

pub(super) fn text(
    field: &str,
    value: &Value,
    min: usize,
    max: usize,
) -> Result<String, ValidationError> {
    let s = value
        .as_str()
        .ok_or_else(|| ValidationError::new(field, "must be a string"))?
        .trim();
    let len = s.chars().count();
    if len < min || len > max {
        let message = if min == max {
            format!("must be exactly {min} characters")
        } else if len < min {
            format!("must be at least {min} characters")
        } else {
            format!("must be at most {max} characters")
        };
        return Err(ValidationError::new(field, message));
    }
    if s.starts_with(super::secret::SEALED_PREFIX) {
        // A value that looks sealed would be stored as it is and never open.
        return Err(ValidationError::new(
            field,
            format!("must not start with {:?}", super::secret::SEALED_PREFIX),
        ));
    }
    Ok(s.to_string())
}

pub(super) fn identifier(field: &str, value: &Value) -> Result<String, ValidationError> {
    let s = text(field, value, 1, 128)?;
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(ValidationError::new(
            field,
            "may contain only letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(s)
}

pub(super) fn agent_id(value: &Value) -> Result<String, ValidationError> {
    let s = match value {
        Value::Number(n) if n.is_u64() => n.to_string(),
        Value::String(_) => text("agent_id", value, 1, 32)?,
        _ => {
            return Err(ValidationError::new(
                "agent_id",
                "must be a number or a string of digits",
            ));
        }
    };
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::new("agent_id", "must contain only digits"));
    }
    Ok(s)
}

pub(super) fn whole_number(
    field: &str,
    value: &Value,
    min: u64,
    max: u64,
) -> Result<u64, ValidationError> {
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ValidationError::new(
            field,
            format!("must be a whole number from {min} to {max}"),
        )),
    }
}

pub(super) fn optional(
    field: &str,
    value: &Value,
    max: usize,
) -> Result<Option<String>, ValidationError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        _ => text(field, value, 1, max).map(Some),
    }
}

pub(super) fn targets(value: &Value) -> Result<Targets, ValidationError> {
    let field = "default_targets";
    let targets: Targets = serde_json::from_value(value.clone()).map_err(|_| {
        ValidationError::new(
            field,
            "must be {\"chats\": [..], \"members\": [..], \"dingtalk_user_ids\": [..]} of strings",
        )
    })?;
    let all = targets
        .chats
        .iter()
        .chain(&targets.members)
        .chain(&targets.dingtalk_user_ids);
    if all.clone().any(|t| t.trim().is_empty() || t.len() > 256) {
        return Err(ValidationError::new(
            field,
            "entries must be 1 to 256 characters",
        ));
    }
    if let Some(bad) = targets.members.iter().find(|m| !is_email(m)) {
        return Err(ValidationError::new(
            "default_targets.members",
            format!("{bad:?} is not an email address"),
        ));
    }
    Ok(targets)
}

/// A whole number in `min..=max` that fits a `u32` (the bounds make sure it does).
pub(super) fn small_number(
    field: &str,
    value: &Value,
    min: u32,
    max: u32,
) -> Result<u32, ValidationError> {
    let n = whole_number(field, value, u64::from(min), u64::from(max))?;
    Ok(u32::try_from(n).unwrap_or(max))
}

/// The callback `aes_key`: exactly 43 letters or digits.
pub(super) fn aes_key(value: &Value) -> Result<String, ValidationError> {
    let key = text("aes_key", value, 43, 43)?;
    if !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "aes_key",
            "must be exactly 43 letters or digits",
        ));
    }
    Ok(key)
}

/// The callback `token`: 3 to 32 letters or digits.
pub(super) fn callback_token(value: &Value) -> Result<String, ValidationError> {
    let token = text("token", value, 3, 32)?;
    if !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ValidationError::new(
            "token",
            "must be 3 to 32 letters or digits",
        ));
    }
    Ok(token)
}

/// The DingTalk `edition`.
pub(super) fn edition(value: &Value) -> Result<Edition, ValidationError> {
    let raw = text("edition", value, 1, 32)?;
    Edition::parse(&raw).ok_or_else(|| {
        ValidationError::new("edition", "must be standard, professional or enterprise")
    })
}

/// The `webhook_url`: an http(s) URL with a host, or none.
pub(super) fn webhook_url(value: &Value) -> Result<Option<String>, ValidationError> {
    let f = "webhook_url";
    let url = optional(f, value, 2048)?;
    if let Some(url) = &url {
        let parsed =
            url::Url::parse(url).map_err(|_| ValidationError::new(f, "must be an http(s) URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ValidationError::new(f, "must be an http(s) URL"));
        }
    }
    Ok(url)
}

/// The `timezone`: an IANA zone name.
pub(super) fn timezone(value: &Value) -> Result<String, ValidationError> {
    let tz = text("timezone", value, 1, 64)?;
    if tz.parse::<chrono_tz::Tz>().is_err() {
        return Err(ValidationError::new(
            "timezone",
            "must be an IANA time zone such as Asia/Shanghai",
        ));
    }
    Ok(tz)
}

/// The `locale`: zh-CN or en-US, spelled as such.
pub(super) fn locale(value: &Value) -> Result<Locale, ValidationError> {
    let tag = text("locale", value, 2, 16)?;
    Locale::parse(&tag)
        .filter(|l| l.tag().eq_ignore_ascii_case(&tag))
        .ok_or_else(|| ValidationError::new("locale", "must be zh-CN or en-US"))
}

/// The message `templates`; `null` restores the defaults.
pub(super) fn templates(value: &Value) -> Result<MessageTemplates, ValidationError> {
    if value.is_null() {
        return Ok(MessageTemplates::default());
    }
    serde_json::from_value(value.clone()).map_err(|e| {
        ValidationError::new(
            "templates",
            format!("{{\"title\"?: string, \"body\"?: string}}: {e}"),
        )
    })
}
