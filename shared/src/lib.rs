//! The shared library behind every function of the DingTalk incident integration.
//!
//! Modules follow the architecture (ARCHITECTURE.md §3); dependencies point one way:
//! `domain` ← `store` ← `infra` ← `dingtalk` ← `render` ← `http` ← `services`.
//! - [`domain`]: plain types and pure decisions (no AWS, no HTTP);
//! - [`store`]: the DynamoDB table, and narrow ports with in-memory fakes;
//! - [`infra`]: job queue, governor, metrics, callback crypto, sessions;
//! - [`dingtalk`]: the DingTalk open API client;
//! - [`render`]: one renderer per destination (robot markdown, cards, webhook);
//! - [`http`]: API errors and, with the `lambda-http` feature, request plumbing;
//! - [`services`]: the use cases the Lambda handlers call.

pub mod clock;
pub mod config;
pub mod dingtalk;
pub mod domain;
pub mod http;
pub mod infra;
pub mod render;
pub mod services;
pub mod store;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::Config;
pub use services::Services;
