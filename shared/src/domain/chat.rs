//! Group chats of an integration's group chat list (where the cool app is installed).

use serde::{Deserialize, Serialize};

/// Installation state of our cool app in a group chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatStatus {
    /// The cool app is installed: the group can receive alerts.
    Installed,
    /// The cool app was removed: kept for the record, receives nothing.
    Uninstalled,
}

/// A group chat in an integration's group chat list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChat {
    /// Owning integration.
    pub integration_id: String,
    /// DingTalk openConversationId (the key).
    pub open_conversation_id: String,
    /// Group name, once known.
    pub title: Option<String>,
    /// Installed or uninstalled.
    pub status: ChatStatus,
    /// coolAppCode from the install event (needed to post and to query the group).
    pub cool_app_code: Option<String>,
    /// robotCode from the install event.
    pub robot_code: Option<String>,
    /// DingTalk userId of whoever last installed or uninstalled.
    pub operator: Option<String>,
    /// RFC 3339 time of the latest install.
    pub installed_at: Option<String>,
    /// RFC 3339 time of the latest uninstall.
    pub uninstalled_at: Option<String>,
    /// RFC 3339 time of the last change.
    pub updated_at: String,
    /// DingTalk event time (ms) of the event that set `status`.
    pub status_event_ms: i64,
    /// DingTalk event time (ms) of the event that set `title` (0 when looked up).
    pub title_event_ms: i64,
    /// The last delivery problem DingTalk reported for this group (robot removed,
    /// group disbanded, …), if any.
    pub problem: Option<String>,
}

/// What the chat list API shows of a group chat (ARCHITECTURE.md §6.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChatView {
    /// openConversationId.
    pub open_conversation_id: String,
    /// Group name (null until known).
    pub title: Option<String>,
    /// installed / uninstalled.
    pub status: ChatStatus,
    /// Latest install time.
    pub installed_at: Option<String>,
    /// Latest uninstall time.
    pub uninstalled_at: Option<String>,
    /// Last change.
    pub updated_at: String,
    /// The last delivery problem DingTalk reported, if any.
    pub problem: Option<String>,
}

impl From<&GroupChat> for GroupChatView {
    fn from(chat: &GroupChat) -> Self {
        Self {
            open_conversation_id: chat.open_conversation_id.clone(),
            title: chat.title.clone(),
            status: chat.status,
            installed_at: chat.installed_at.clone(),
            uninstalled_at: chat.uninstalled_at.clone(),
            updated_at: chat.updated_at.clone(),
            problem: chat.problem.clone(),
        }
    }
}
