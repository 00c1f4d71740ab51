//! The shared library behind every function of the DingTalk incident integration:
//! DingTalk callback crypto and open API client, the DynamoDB store, the domain model
//! and the services the Lambda handlers call.

pub mod admin_key;
pub mod api;
pub mod card_callback;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dingtalk;
pub mod directory;
pub mod event_subscription;
pub mod governor;
pub mod h5_app;
pub mod incident;
pub mod incident_actions;
pub mod incident_reader;
pub mod ingest;
pub mod integration;
pub mod integration_center;
pub mod member;
pub mod notifier;
pub mod services;
pub mod session;
pub mod store;

pub use clock::{Clock, FixedClock, SystemClock};
pub use config::Config;
pub use services::Services;
