//! The pre-flight check (ARCHITECTURE.md §8): `GET …/preflight?days=7` gathers
//! the integration's schedules, policies, members, bindings and chats, and lists
//! what would make a page go nowhere (the pure [`find_problems`]).

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;

use crate::clock::{Clock, rfc3339};
use crate::domain::ValidationError;
use crate::domain::integration::Integration;
use crate::domain::preflight::{PreflightInput, Problem, find_problems, next_report_ms};
use crate::services::integration_center::CenterError;
use crate::store::{DailyTimer, Store, StoreError};

/// Days checked when `days` is absent, and at most.
pub const DEFAULT_DAYS: u32 = 7;
/// Most days one check covers.
pub const MAX_DAYS: u32 = 31;

/// A pre-flight report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreflightReport {
    /// The integration.
    pub integration_id: String,
    /// The range checked, from (RFC 3339).
    pub from: String,
    /// … to.
    pub to: String,
    /// Its length in days.
    pub days: u32,
    /// Nothing found.
    pub ok: bool,
    /// What was found.
    pub problems: Vec<Problem>,
}

/// Gives the integration its daily pre-flight timer (the next 09:00 local time)
/// unless it has one. Called when schedules, policies or the check are used.
pub async fn ensure_daily(
    store: &Store,
    integration: &Integration,
    now_ms: i64,
) -> Result<(), StoreError> {
    let timer = DailyTimer {
        integration_id: integration.id.clone(),
        sent_day: String::new(),
        due_ms: next_report_ms(&integration.timezone, now_ms),
        owed: false,
    };
    store.ensure_daily_timer(&timer).await.map(|_| ())
}

/// [`ensure_daily_of`], logging a failure (the sweep's backfill makes up for it).
pub async fn ensure_daily_best_effort(store: &Store, integration_id: &str, now_ms: i64) {
    if let Err(err) = ensure_daily_of(store, integration_id, now_ms).await {
        tracing::warn!(integration_id, error = %err, "daily pre-flight timer not put; the sweep's backfill puts it");
    }
}

/// [`ensure_daily`] for the integration `integration_id`, if it exists.
pub async fn ensure_daily_of(
    store: &Store,
    integration_id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    match store.get_integration(integration_id).await? {
        Some(integration) => ensure_daily(store, &integration, now_ms).await,
        None => Ok(()),
    }
}

/// The pre-flight service.
#[derive(Clone)]
pub struct Preflight {
    store: Store,
    clock: Arc<dyn Clock>,
}

impl Preflight {
    /// The service on `store`.
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// `GET …/preflight?days=`: 1–31 days from now (7 when absent).
    pub async fn check(
        &self,
        integration_id: &str,
        days: Option<&str>,
    ) -> Result<PreflightReport, CenterError> {
        let days = match days.filter(|d| !d.trim().is_empty()) {
            None => DEFAULT_DAYS,
            Some(text) => text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|d| (1..=MAX_DAYS).contains(d))
                .ok_or_else(|| ValidationError::new("days", "a whole number of days, 1–31"))?,
        };
        let integration = self
            .store
            .get_integration(integration_id)
            .await?
            .ok_or(CenterError::NotFound)?;
        ensure_daily(&self.store, &integration, self.clock.now_ms()).await?;
        Ok(self.report(&integration, days).await?)
    }

    /// The report for `days` from now.
    pub async fn report(
        &self,
        integration: &Integration,
        days: u32,
    ) -> Result<PreflightReport, StoreError> {
        let id = &integration.id;
        let (schedules, policies, members, bindings, chats) = futures::try_join!(
            self.store.list_schedules(id),
            self.store.list_policies(id),
            self.store.list_members(id),
            self.store.list_bindings(id),
            self.store.list_chats(id),
        )?;
        let associated: HashSet<String> = bindings.into_iter().map(|b| b.member).collect();
        let from_ms = self.clock.now_ms();
        let to_ms = from_ms + i64::from(days) * 86_400_000;
        let problems = find_problems(&PreflightInput {
            schedules: &schedules,
            policies: &policies,
            members: &members,
            associated: &associated,
            chats: &chats,
            default_chats: &integration.default_targets.chats,
            from_ms,
            to_ms,
        });
        Ok(PreflightReport {
            integration_id: id.clone(),
            from: rfc3339(from_ms),
            to: rfc3339(to_ms),
            days,
            ok: problems.is_empty(),
            problems,
        })
    }
}
