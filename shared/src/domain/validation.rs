//! Validation errors that name the offending request field.

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    /// The offending field (JSON name).
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl ValidationError {
    /// A validation error on `field`.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}
