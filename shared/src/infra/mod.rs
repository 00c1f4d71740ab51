//! Infrastructure the services run on: the job queue, the API budget governor,
//! metrics, DingTalk callback crypto, H5 sessions and the admin key
//! (ARCHITECTURE.md §3).

pub mod admin_key;
pub mod alertmanager;
pub mod crypto;
pub mod governor;
pub mod metrics;
pub mod outbound;
pub mod queue;
pub mod secrets;
pub mod session;
pub mod slot_pool;
pub mod store_requests;
