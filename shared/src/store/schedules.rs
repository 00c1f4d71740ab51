//! On-call schedules and the daily pre-flight timer (ARCHITECTURE.md §8).
//!
//! - `INT#<integration>` / `SCHED#<id>`: a schedule with its overrides and its
//!   handoff cursor. While a handoff message is ahead, it is on the sparse index
//!   `gsi2` under `HANDOFFS`, sorted by when it is due: the sweep's one Query.
//! - `INT#<integration>` / `PREFLIGHT`: the day the pre-flight report was last
//!   sent, on `gsi2` under `DAILY` at the next send time.

use aws_sdk_dynamodb::types::AttributeValue;

use super::escalation::timer_sort_key;
use super::{GSI2, Item, Store, StoreError, applied, from_typed, n, partition, s, typed_item};
use crate::domain::oncall_schedule::OnCallSchedule;

/// The handoff index's partition.
const HANDOFF_KEY: &str = "HANDOFFS";
/// The daily pre-flight index's partition.
const DAILY_KEY: &str = "DAILY";

fn schedule_sk(id: &str) -> String {
    format!("SCHED#{id}")
}

/// The daily pre-flight timer of one integration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DailyTimer {
    /// The integration.
    pub integration_id: String,
    /// The last local day (`YYYY-MM-DD`) the report went out ("" for never).
    #[serde(default)]
    pub sent_day: String,
    /// When it is next due (Unix ms; while a report is owed, when the claim of the
    /// run sending it lapses and another run may send it).
    pub due_ms: i64,
    /// The day's report is decided but not yet sent.
    #[serde(default)]
    pub owed: bool,
}

fn daily_item(timer: &DailyTimer) -> Result<Item, StoreError> {
    let mut item = typed_item(timer, partition(&timer.integration_id), "PREFLIGHT".into())?;
    item.insert("gsi2pk".into(), s(DAILY_KEY));
    item.insert(
        "gsi2sk".into(),
        s(timer_sort_key(timer.due_ms, &timer.integration_id)),
    );
    Ok(item)
}

fn schedule_item(schedule: &OnCallSchedule, due_ms: Option<i64>) -> Result<Item, StoreError> {
    let mut item = typed_item(
        schedule,
        partition(&schedule.integration_id),
        schedule_sk(&schedule.id),
    )?;
    if let Some(due) = due_ms {
        item.insert("gsi2pk".into(), s(HANDOFF_KEY));
        item.insert(
            "gsi2sk".into(),
            s(timer_sort_key(
                due,
                &format!("{}#{}", schedule.integration_id, schedule.id),
            )),
        );
    }
    Ok(item)
}

impl Store {
    /// Stores a new schedule unless its id exists; `due_ms` is its next handoff message.
    pub async fn create_schedule(
        &self,
        schedule: &OnCallSchedule,
        due_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(schedule_item(schedule, due_ms)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Replaces a schedule if it is still at `expected_revision` (`Conflict` if not).
    pub async fn replace_schedule(
        &self,
        schedule: &OnCallSchedule,
        expected_revision: u64,
        due_ms: Option<i64>,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(schedule_item(schedule, due_ms)?))
            .condition_expression("revision = :r")
            .expression_attribute_values(":r", n(expected_revision))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// One schedule.
    pub async fn get_schedule(
        &self,
        integration_id: &str,
        id: &str,
    ) -> Result<Option<OnCallSchedule>, StoreError> {
        self.get_item(&partition(integration_id), &schedule_sk(id))
            .await?
            .map(from_typed)
            .transpose()
    }

    /// Every schedule of an integration.
    pub async fn list_schedules(
        &self,
        integration_id: &str,
    ) -> Result<Vec<OnCallSchedule>, StoreError> {
        self.query_prefix(integration_id, "SCHED#")
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }

    /// Deletes a schedule; false when there was none.
    pub async fn delete_schedule(
        &self,
        integration_id: &str,
        id: &str,
    ) -> Result<bool, StoreError> {
        applied(
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(partition(integration_id)))
                .key("sk", s(schedule_sk(id)))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await,
        )
    }

    /// Schedules with a handoff message due at `now_ms`, oldest first, at most `limit`.
    pub async fn due_schedules(
        &self,
        now_ms: i64,
        limit: i32,
    ) -> Result<Vec<OnCallSchedule>, StoreError> {
        self.due_on_index(HANDOFF_KEY, now_ms, limit)
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }

    /// Items of a timer partition of `gsi2` due at `now_ms`.
    pub(super) async fn due_on_index(
        &self,
        key: &str,
        now_ms: i64,
        limit: i32,
    ) -> Result<Vec<Item>, StoreError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI2)
            .key_condition_expression("gsi2pk = :k AND gsi2sk <= :upper")
            .expression_attribute_values(":k", s(key))
            .expression_attribute_values(":upper", s(format!("{:013}#~", now_ms.max(0))))
            .limit(limit)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(page.items.unwrap_or_default())
    }

    /// Puts an integration's daily pre-flight timer unless it has one.
    pub async fn ensure_daily_timer(&self, timer: &DailyTimer) -> Result<bool, StoreError> {
        let item = daily_item(timer)?;
        applied(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await,
        )
    }

    /// The integrations whose pre-flight report is due at `now_ms`.
    pub async fn due_daily_timers(
        &self,
        now_ms: i64,
        limit: i32,
    ) -> Result<Vec<DailyTimer>, StoreError> {
        self.due_on_index(DAILY_KEY, now_ms, limit)
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }

    /// Moves a daily timer on to `next` if it is still as `current` says (its day,
    /// whether a report is owed, when it is due): false when another run moved it
    /// first.
    pub async fn advance_daily_timer(
        &self,
        current: &DailyTimer,
        next: &DailyTimer,
    ) -> Result<bool, StoreError> {
        let item = daily_item(next)?;
        applied(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("sent_day = :day AND owed = :owed AND due_ms = :due")
                .expression_attribute_values(":day", s(current.sent_day.clone()))
                .expression_attribute_values(":owed", AttributeValue::Bool(current.owed))
                .expression_attribute_values(":due", AttributeValue::N(current.due_ms.to_string()))
                .send()
                .await,
        )
    }
}
