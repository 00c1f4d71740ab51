//! Governor counters: calls per app per second (conditional, so exact across every
//! Lambda instance) and per app per month (by kind), plus one-time marks and storm
//! counters. The churning per-second, per-window and one-time items live in
//! partitions of their own (with a TTL), away from the integration's partition.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use super::{Store, StoreError, applied, n, partition, s};
use crate::domain::budget::AdaptiveLimit;

/// Month-to-date usage as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthUsage {
    /// All counted calls.
    pub total: u64,
    /// Calls by kind (`message`, `card`, `card_update`, `group_query`, …).
    pub by_kind: BTreeMap<String, u64>,
    /// Calls refused locally because they would break the per-second limit (waits).
    pub throttle_waits: u64,
    /// Messages suppressed by the quota reserve.
    pub suppressed: u64,
    /// Alerts folded into storm digests.
    pub folded: u64,
}

impl Store {
    /// Atomically adds one to `attribute` of item `pk`/`sk` (created with a TTL) and
    /// returns the new value.
    pub(super) async fn add_counter(
        &self,
        pk: &str,
        sk: &str,
        attribute: &str,
        expires_secs: i64,
    ) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("ADD #counter :one SET expires_at = :exp")
            .expression_attribute_names("#counter", attribute)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":exp", n(expires_secs))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out
            .attributes
            .and_then(|a| {
                a.get(attribute)
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(1))
    }

    /// Takes up to `want` calls from second `second`'s budget of `limit` in one
    /// conditional write (fewer when fewer are left: a refusal returns the count, and
    /// what is left is asked for, until none is); returns how many were taken.
    pub async fn take_slots(
        &self,
        key: &str,
        second: i64,
        limit: u32,
        want: u32,
    ) -> Result<u32, StoreError> {
        let mut want = want.min(limit);
        // Each refusal returns the count: ask for what is left until none is.
        for _ in 0..=limit {
            if want == 0 {
                break;
            }
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(format!("RATE#{key}#{second}")))
                .key("sk", s("QPS"))
                .update_expression("ADD calls :want SET expires_at = :exp")
                .condition_expression("attribute_not_exists(calls) OR calls <= :room")
                .expression_attribute_values(":want", n(want))
                .expression_attribute_values(":room", n(limit - want))
                .expression_attribute_values(":exp", n(second + 120))
                .return_values_on_condition_check_failure(
                    aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match result {
                Ok(_) => return Ok(want),
                Err(err) => {
                    let Some(UpdateItemError::ConditionalCheckFailedException(failed)) =
                        err.as_service_error()
                    else {
                        return Err(StoreError::from_sdk(err));
                    };
                    let calls = failed
                        .item()
                        .and_then(|item| item.get("calls"))
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse::<u32>().ok())
                        .unwrap_or(limit);
                    want = want.min(limit.saturating_sub(calls));
                }
            }
        }
        Ok(0)
    }

    /// An API's learned per-second limit: `ADAPT#<iid>#<kind>` / `ADAPT`.
    pub async fn adaptive_limit(
        &self,
        integration_id: &str,
        kind: &str,
    ) -> Result<Option<AdaptiveLimit>, StoreError> {
        let Some(item) = self
            .get_item(&format!("ADAPT#{integration_id}#{kind}"), "ADAPT")
            .await?
        else {
            return Ok(None);
        };
        let number = |name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        Ok(match (number("limit"), number("since_ms")) {
            (Some(limit), Some(since_ms)) => Some(AdaptiveLimit {
                limit: u32::try_from(limit).unwrap_or(1),
                since_ms,
            }),
            _ => None,
        })
    }

    /// Sets an API's learned limit unless it was set less than `gap_ms` before
    /// (one decrease per burst, however many instances saw the refusals). It
    /// expires a day after, by which time probing has restored the configured limit.
    pub async fn lower_adaptive_limit(
        &self,
        integration_id: &str,
        kind: &str,
        learned: AdaptiveLimit,
        gap_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("ADAPT#{integration_id}#{kind}")))
            .item("sk", s("ADAPT"))
            .item("limit", n(learned.limit))
            .item("since_ms", n(learned.since_ms))
            .item("expires_at", n(learned.since_ms / 1000 + 86_400))
            .condition_expression("attribute_not_exists(since_ms) OR since_ms < :cutoff")
            .expression_attribute_values(":cutoff", n(learned.since_ms - gap_ms))
            .send()
            .await;
        applied(result)
    }

    /// Adds several counts to month `month`'s counters in one write (`counted` of
    /// them to the total); returns the month's total after the change.
    pub async fn add_usage_counts(
        &self,
        integration_id: &str,
        month: &str,
        counts: &BTreeMap<String, u64>,
        counted: u64,
    ) -> Result<u64, StoreError> {
        let mut adds = vec!["#total :counted".to_string()];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(format!("USAGE#{month}")))
            .expression_attribute_names("#total", "total")
            .expression_attribute_values(":counted", n(counted))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        for (i, (field, count)) in counts.iter().enumerate() {
            adds.push(format!("#f{i} :c{i}"));
            request = request
                .expression_attribute_names(format!("#f{i}"), format!("n_{field}"))
                .expression_attribute_values(format!(":c{i}"), n(*count));
        }
        let out = request
            .update_expression(format!("ADD {}", adds.join(", ")))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(out
            .attributes
            .and_then(|a| {
                a.get("total")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0))
    }

    /// Month `month`'s usage.
    pub async fn month_usage(
        &self,
        integration_id: &str,
        month: &str,
    ) -> Result<MonthUsage, StoreError> {
        let Some(item) = self
            .get_item(&partition(integration_id), &format!("USAGE#{month}"))
            .await?
        else {
            return Ok(MonthUsage::default());
        };
        let number = |v: &aws_sdk_dynamodb::types::AttributeValue| {
            v.as_n()
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut usage = MonthUsage {
            total: item.get("total").map(number).unwrap_or(0),
            ..MonthUsage::default()
        };
        for (name, value) in &item {
            match name.strip_prefix("n_") {
                Some("throttle_wait") => usage.throttle_waits = number(value),
                Some("suppressed") => usage.suppressed = number(value),
                Some("folded") => usage.folded = number(value),
                Some(kind) => {
                    usage.by_kind.insert(kind.to_string(), number(value));
                }
                None => {}
            }
        }
        Ok(usage)
    }

    /// Marks a one-time event (threshold notice, digest) once: true for the first caller.
    pub async fn mark_once(
        &self,
        integration_id: &str,
        key: &str,
        expires_secs: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("ONCE#{integration_id}#{key}")))
            .item("sk", s("ONCE"))
            .item("expires_at", n(expires_secs))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        applied(result)
    }

    /// Counts a new incident for a group chat in window `window`; returns the count.
    pub async fn count_chat_incident(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
        expires_secs: i64,
    ) -> Result<u64, StoreError> {
        self.add_counter(
            &format!("STORM#{integration_id}#{chat}#{window}"),
            "COUNT",
            "incidents",
            expires_secs,
        )
        .await
    }

    /// Adds an incident title to a group's storm digest for `window`; returns how many
    /// incidents the digest holds and the newest titles (newest first). The item stays
    /// small however big the storm: a counter and a ring of the newest titles.
    pub async fn push_digest(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
        title: &str,
        expires_secs: i64,
    ) -> Result<Digest, StoreError> {
        let (pk, sk) = digest_key(integration_id, chat, window);
        let folded = self.add_counter(&pk, &sk, "folded", expires_secs).await?;
        let slot = folded % DIGEST_NEWEST;
        let placed = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(&pk))
            .key("sk", s(&sk))
            .update_expression("SET #title = :title, #seq = :seq")
            .condition_expression("attribute_not_exists(#seq) OR #seq < :seq")
            .expression_attribute_names("#title", format!("title_{slot}"))
            .expression_attribute_names("#seq", format!("seq_{slot}"))
            .expression_attribute_values(":title", s(title))
            .expression_attribute_values(":seq", n(folded))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
            .map_err(StoreError::from_sdk);
        match placed {
            Ok(out) => Ok(digest_of(&out.attributes.unwrap_or_default())),
            // A newer title took the slot first.
            Err(StoreError::Conflict) => Ok(self
                .get_digest(integration_id, chat, window)
                .await?
                .unwrap_or(Digest {
                    folded,
                    newest: Vec::new(),
                })),
            Err(err) => Err(err),
        }
    }

    /// A group's storm digest for `window`, if anything folded into it.
    pub async fn get_digest(
        &self,
        integration_id: &str,
        chat: &str,
        window: i64,
    ) -> Result<Option<Digest>, StoreError> {
        let (pk, sk) = digest_key(integration_id, chat, window);
        Ok(self.get_item(&pk, &sk).await?.map(|item| digest_of(&item)))
    }
}

/// Titles a storm digest keeps.
const DIGEST_NEWEST: u64 = 5;

/// A group's storm digest for one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// Incidents folded into it.
    pub folded: u64,
    /// The newest titles, newest first.
    pub newest: Vec<String>,
}

fn digest_key(integration_id: &str, chat: &str, window: i64) -> (String, String) {
    (
        format!("DIGEST#{integration_id}#{chat}#{window}"),
        "DIGEST".into(),
    )
}

fn digest_of(item: &super::Item) -> Digest {
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let mut ring: Vec<(u64, String)> = (0..DIGEST_NEWEST)
        .filter_map(|slot| {
            let seq = number(&format!("seq_{slot}"))?;
            let title = item.get(&format!("title_{slot}"))?.as_s().ok()?.clone();
            Some((seq, title))
        })
        .collect();
    ring.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    Digest {
        folded: number("folded").unwrap_or(0),
        newest: ring.into_iter().map(|(_, title)| title).collect(),
    }
}
