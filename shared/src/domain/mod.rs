//! The domain: plain types and pure decisions, with no AWS or HTTP in them
//! (ARCHITECTURE.md §3). Everything else depends on this module, never the reverse.

pub mod bounds;
pub mod budget;
pub mod chat;
pub mod delivery;
pub mod escalation;
pub mod escalation_state;
pub mod handoff;
pub mod incident;
pub mod incident_state;
pub mod integration;
mod integration_fields;
pub mod job;
pub mod locale;
pub mod member;
pub mod oncall_schedule;
pub mod oncall_timeline;
pub mod preflight;
pub mod refusal;
pub mod routing;
pub mod secret;
pub mod silence;
pub mod validation;

pub use chat::{ChatStatus, GroupChat, GroupChatView};
pub use secret::Secret;
pub use validation::ValidationError;
