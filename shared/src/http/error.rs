//! The API error shape `{"error": {"code", "message", "field"}}`: a status, a stable
//! code and a message a person can act on. Transport-neutral: services return it,
//! and the HTTP handlers turn it into a response.

use serde_json::json;

/// An error answer: status, machine code, human message, optional field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// The offending request field, for validation errors.
    pub field: Option<String>,
    /// Where a resource that cannot be deleted is still used (409 `in_use`).
    pub used_in: Vec<String>,
    /// The line of a template that does not compile (400 `template_invalid`).
    pub line: Option<usize>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            used_in: Vec::new(),
            line: None,
        }
    }

    /// 400 naming a field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(400, "validation_failed", message)
        }
    }

    /// 409: the resource is still used where `used_in` says.
    pub fn in_use(message: impl Into<String>, used_in: Vec<String>) -> Self {
        Self {
            used_in,
            ..Self::new(409, "in_use", message)
        }
    }

    /// 400: a user template does not compile.
    pub fn template_invalid(err: &crate::render::templates::TemplateInvalid) -> Self {
        Self {
            field: Some(format!("templates.{}", err.field)),
            line: Some(err.line),
            ..Self::new(
                400,
                "template_invalid",
                format!("line {}: {}", err.line, err.message),
            )
        }
    }

    /// 404 for a resource that does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(404, "not_found", format!("{what} not found"))
    }

    /// 500 for our own failure; the cause is logged, not shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            500,
            "internal",
            "internal error; the request can be retried",
        )
    }

    /// The JSON body of this error: `{"error": {"code", "message", "field"?}}`.
    pub fn body(&self) -> serde_json::Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = &self.field {
            error["field"] = field.clone().into();
        }
        if let Some(line) = self.line {
            error["line"] = line.into();
        }
        if !self.used_in.is_empty() {
            error["used_in"] = self.used_in.clone().into();
        }
        json!({ "error": error })
    }
}
