//! The workspace integration tests, one test binary (one link, one executable on
//! disk instead of thirty): each module is one area, against the moto server of
//! `make test` and the DingTalk sandbox.

mod admin_api;
mod admin_key;
mod bad_input;
mod binary_smoke;
mod cards;
mod conformance;
mod console;
mod dingtalk_client;
mod dlq;
mod escalation;
mod event_subscription;
mod governor;
mod h5_app;
mod incident_store;
mod ingest;
mod ingest_compat;
mod local_stack;
mod notifier;
mod notifier_metrics;
mod openapi;
mod presentation;
mod queue_jobs;
mod replay;
mod retention;
mod sample_events;
mod schedules;
mod silences;
mod store_requests;
mod trust_boundaries;
