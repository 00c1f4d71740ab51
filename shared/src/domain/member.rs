//! Members (on-call accounts, by email) and their bindings to DingTalk users.

use serde::{Deserialize, Serialize};

/// An on-call account of the member directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Email (lower case): the member's id.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Whether the member holds a licence (may act on incidents).
    pub licensed: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// A DingTalk user bound to a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    /// DingTalk userId.
    pub dingtalk_user_id: String,
    /// Member email.
    pub member: String,
    /// DingTalk display name, when known.
    #[serde(default)]
    pub dingtalk_name: Option<String>,
    /// How it was made (`admin`, `link_code`, `profile_match`).
    pub via: String,
    /// When.
    pub bound_at: String,
}
