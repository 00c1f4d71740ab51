//! Not deployed. The DingTalk sandbox (a simulator of the parts of DingTalk's open
//! API this product calls, speaking its documented wire format and error bodies)
//! and the helpers that act as DingTalk towards our callbacks.

pub mod alertmanager;
pub mod bench_memory;
pub mod coldstart;
pub mod gateway;
pub mod runtime_api;
pub mod sandbox;
pub mod smoke;
pub mod sqs_source;
pub mod stack;
