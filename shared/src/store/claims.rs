//! Idempotency claims and the shared access-token cache.

use super::{Store, StoreError, applied, n, partition, s};

const TOKEN: &str = "TOKEN";

/// An app access token as cached in the table.
#[derive(Clone, PartialEq, Eq)]
pub struct CachedToken {
    /// The token (a secret).
    pub access_token: String,
    /// Client ID it was issued to (a token of old credentials is ignored).
    pub client_id: String,
    /// When DingTalk stops accepting it (Unix ms).
    pub expires_at_ms: i64,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("client_id", &self.client_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Claims `key` for `ttl_secs`: true if this caller is the first (or the earlier
    /// claim expired), false if it was already claimed.
    pub async fn claim(
        &self,
        integration_id: &str,
        key: &str,
        now_secs: i64,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(partition(integration_id)))
            .item("sk", s(format!("SEEN#{key}")))
            .item("expires_at", n(now_secs + ttl_secs))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now_secs))
            .send()
            .await;
        applied(result)
    }

    /// Whether `key` is claimed and the claim has not expired.
    pub async fn claimed(
        &self,
        integration_id: &str,
        key: &str,
        now_secs: i64,
    ) -> Result<bool, StoreError> {
        let item = self
            .get_item(&partition(integration_id), &format!("SEEN#{key}"))
            .await?;
        Ok(item
            .and_then(|i| i.get("expires_at").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse::<i64>().ok()))
            .is_some_and(|expires| expires >= now_secs))
    }

    /// Gives a claim back (the work it guarded failed and should be redone on retry).
    pub async fn release(&self, integration_id: &str, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(format!("SEEN#{key}")))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The cached access token of an integration, if any.
    pub async fn get_cached_token(
        &self,
        integration_id: &str,
    ) -> Result<Option<CachedToken>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(TOKEN))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let get = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
        let expires_at_ms = item
            .get("expires_at_ms")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok());
        Ok(
            match (get("access_token"), get("client_id"), expires_at_ms) {
                (Some(access_token), Some(client_id), Some(expires_at_ms)) => Some(CachedToken {
                    access_token,
                    client_id,
                    expires_at_ms,
                }),
                _ => None,
            },
        )
    }

    /// Caches an access token for every instance.
    pub async fn put_cached_token(
        &self,
        integration_id: &str,
        token: &CachedToken,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(partition(integration_id)))
            .item("sk", s(TOKEN))
            .item("access_token", s(&token.access_token))
            .item("client_id", s(&token.client_id))
            .item("expires_at_ms", n(token.expires_at_ms))
            .item("expires_at", n(token.expires_at_ms.div_euclid(1000) + 60))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Drops the cached token (DingTalk said it is invalid, or the credentials changed).
    pub async fn delete_cached_token(&self, integration_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(TOKEN))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The KMS-encrypted data key that seals stored secrets, if one was made.
    pub async fn get_data_key(&self) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .get_item(DATA_KEY.0, DATA_KEY.1)
            .await?
            .and_then(|item| {
                item.get("blob")
                    .and_then(|b| b.as_b().ok())
                    .map(|b| b.as_ref().to_vec())
            }))
    }

    /// Keeps the KMS-encrypted data key; false when another instance kept one first.
    pub async fn put_data_key(&self, blob: &[u8]) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(DATA_KEY.0))
            .item("sk", s(DATA_KEY.1))
            .item(
                "blob",
                aws_sdk_dynamodb::types::AttributeValue::B(blob.to_vec().into()),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        applied(result)
    }
}

/// The item holding the sealed-secrets data key (encrypted under the KMS key).
const DATA_KEY: (&str, &str) = ("SECRETS", "DATAKEY");
