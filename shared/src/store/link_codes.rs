//! One-time link codes for self-service account association, and the per-user
//! attempt counter that limits guessing. Codes are stored by digest only.

use sha2::{Digest, Sha256};

use super::{Store, StoreError, n, partition, s};

/// What redeeming a link code gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The code was valid: the member's email.
    Member(String),
    /// No such code, or it expired.
    Invalid,
    /// The code was already used.
    Used,
}

fn code_key(code: &str) -> String {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_uppercase();
    format!(
        "LINKCODE#{}",
        hex::encode(Sha256::digest(normalized.as_bytes()))
    )
}

impl Store {
    /// Stores a link code for `member` until `expires_secs`.
    pub async fn put_link_code(
        &self,
        integration_id: &str,
        code: &str,
        member: &str,
        expires_secs: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(partition(integration_id)))
            .item("sk", s(code_key(code)))
            .item("member", s(member))
            .item("expires_at", n(expires_secs))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Redeems a code once: marks it used if it is valid and unused.
    pub async fn redeem_link_code(
        &self,
        integration_id: &str,
        code: &str,
        now_secs: i64,
    ) -> Result<Redeemed, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(code_key(code)))
            .update_expression("SET used_at = :now")
            .condition_expression(
                "attribute_exists(pk) AND expires_at > :now AND attribute_not_exists(used_at)",
            )
            .expression_attribute_values(":now", n(now_secs))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match result.map_err(StoreError::from_sdk) {
            Ok(out) => Ok(out
                .attributes
                .and_then(|a| a.get("member").and_then(|v| v.as_s().ok()).cloned())
                .map_or(Redeemed::Invalid, Redeemed::Member)),
            Err(StoreError::Conflict) => {
                let item = self
                    .get_item(&partition(integration_id), &code_key(code))
                    .await?;
                let used = item.as_ref().is_some_and(|i| i.contains_key("used_at"));
                let live = item
                    .as_ref()
                    .and_then(|i| i.get("expires_at"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|e| e > now_secs);
                Ok(if used && live {
                    Redeemed::Used
                } else {
                    Redeemed::Invalid
                })
            }
            Err(err) => Err(err),
        }
    }

    /// Counts a link-code attempt by a DingTalk user in the current window; returns
    /// the attempts so far (including this one).
    pub async fn count_link_attempt(
        &self,
        integration_id: &str,
        user_id: &str,
        now_secs: i64,
        window_secs: i64,
    ) -> Result<u64, StoreError> {
        let window = now_secs.div_euclid(window_secs);
        self.add_counter(
            &partition(integration_id),
            &format!("LINKATTEMPT#{user_id}#{window}"),
            "attempts",
            (window + 1) * window_secs + 60,
        )
        .await
    }
}
