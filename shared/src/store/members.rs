//! Members and bindings. A binding is two items written in one transaction, so
//! both directions (userId → member, member → userId) always agree.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::{Item, Store, StoreError, applied, from_typed, partition, s, typed_item};
use crate::domain::locale::Locale;
use crate::domain::member::{Binding, Member};

/// Attribute of a binding item holding the language its person chose in the H5 app.
const LOCALE_ATTRIBUTE: &str = "locale";

fn member_key(email: &str) -> String {
    format!("MEMBER#{}", email.to_lowercase())
}

fn user_key(user_id: &str) -> String {
    format!("BINDING#USER#{user_id}")
}

fn reverse_key(email: &str) -> String {
    format!("BINDING#MEMBER#{}", email.to_lowercase())
}

impl Store {
    /// Creates or replaces a member.
    pub async fn put_member(
        &self,
        integration_id: &str,
        member: &Member,
    ) -> Result<(), StoreError> {
        let item = typed_item(member, partition(integration_id), member_key(&member.email))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// One member by email.
    pub async fn get_member(
        &self,
        integration_id: &str,
        email: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.get_item(&partition(integration_id), &member_key(email))
            .await?
            .map(from_typed)
            .transpose()
    }

    /// Deletes a member (their binding is removed separately).
    pub async fn delete_member(&self, integration_id: &str, email: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(member_key(email)))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The emails of an integration's members (what policies and schedules may name).
    pub async fn member_emails(
        &self,
        integration_id: &str,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        Ok(self
            .list_members(integration_id)
            .await?
            .into_iter()
            .map(|m| m.email)
            .collect())
    }

    /// Every member of an integration.
    pub async fn list_members(&self, integration_id: &str) -> Result<Vec<Member>, StoreError> {
        self.query_prefix(integration_id, "MEMBER#")
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }

    /// The binding of a DingTalk user, if any.
    pub async fn binding_of_user(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Option<Binding>, StoreError> {
        self.get_item(&partition(integration_id), &user_key(user_id))
            .await?
            .map(from_typed)
            .transpose()
    }

    /// The binding of a DingTalk user with the language they chose in the H5 app
    /// (`None`: they follow the integration's), if they are bound.
    pub async fn binding_and_locale(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Option<(Binding, Option<Locale>)>, StoreError> {
        let Some(item) = self
            .get_item(&partition(integration_id), &user_key(user_id))
            .await?
        else {
            return Ok(None);
        };
        let locale = item
            .get(LOCALE_ATTRIBUTE)
            .and_then(|v| v.as_s().ok())
            .and_then(|tag| Locale::parse(tag));
        Ok(Some((from_typed(item)?, locale)))
    }

    /// Remembers on a DingTalk user's binding the language they chose in the H5 app
    /// (`None` clears it: they follow the integration's again). Returns false when
    /// the user is not bound (nothing written).
    pub async fn set_binding_locale(
        &self,
        integration_id: &str,
        user_id: &str,
        locale: Option<Locale>,
    ) -> Result<bool, StoreError> {
        let update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(partition(integration_id)))
            .key("sk", s(user_key(user_id)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#locale", LOCALE_ATTRIBUTE);
        let update = match locale {
            Some(locale) => update
                .update_expression("SET #locale = :locale")
                .expression_attribute_values(":locale", s(locale.tag())),
            None => update.update_expression("REMOVE #locale"),
        };
        applied(update.send().await)
    }

    /// The binding of a member, if any.
    pub async fn binding_of_member(
        &self,
        integration_id: &str,
        email: &str,
    ) -> Result<Option<Binding>, StoreError> {
        let Some(reverse) = self
            .get_item(&partition(integration_id), &reverse_key(email))
            .await?
        else {
            return Ok(None);
        };
        let Some(user_id) = reverse
            .get("dingtalk_user_id")
            .and_then(|v| v.as_s().ok())
            .cloned()
        else {
            return Ok(None);
        };
        self.binding_of_user(integration_id, &user_id).await
    }

    /// Every binding of an integration.
    pub async fn list_bindings(&self, integration_id: &str) -> Result<Vec<Binding>, StoreError> {
        self.query_prefix(integration_id, "BINDING#USER#")
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }

    /// Binds a DingTalk user to a member, replacing any earlier binding of either.
    /// Returns the bindings it replaced.
    pub async fn bind(
        &self,
        integration_id: &str,
        binding: &Binding,
    ) -> Result<Vec<Binding>, StoreError> {
        let pk = partition(integration_id);
        let mut replaced = Vec::new();
        let mut writes = Vec::new();
        // The language the person chose stays with them when they are bound again.
        let mut kept_locale = None;
        if let Some(item) = self
            .get_item(&pk, &user_key(&binding.dingtalk_user_id))
            .await?
        {
            kept_locale = item.get(LOCALE_ATTRIBUTE).cloned();
            let old: Binding = from_typed(item)?;
            if old.member != binding.member {
                writes.push(delete(&self.table, &pk, &reverse_key(&old.member))?);
                replaced.push(old);
            }
        }
        if let Some(old) = self
            .binding_of_member(integration_id, &binding.member)
            .await?
            && old.dingtalk_user_id != binding.dingtalk_user_id
        {
            writes.push(delete(&self.table, &pk, &user_key(&old.dingtalk_user_id))?);
            replaced.push(old);
        }
        let mut forward = typed_item(binding, pk.clone(), user_key(&binding.dingtalk_user_id))?;
        if let Some(locale) = kept_locale {
            forward.insert(LOCALE_ATTRIBUTE.into(), locale);
        }
        let mut reverse = Item::new();
        reverse.insert("pk".into(), s(&pk));
        reverse.insert("sk".into(), s(reverse_key(&binding.member)));
        reverse.insert("dingtalk_user_id".into(), s(&binding.dingtalk_user_id));
        for item in [forward, reverse] {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(|e| StoreError::Dynamo(e.to_string()))?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(|e| {
                StoreError::Dynamo(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
            })?;
        Ok(replaced)
    }

    /// Removes a DingTalk user's binding; returns it if there was one.
    pub async fn unbind(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Option<Binding>, StoreError> {
        let Some(binding) = self.binding_of_user(integration_id, user_id).await? else {
            return Ok(None);
        };
        let pk = partition(integration_id);
        let writes = vec![
            delete(&self.table, &pk, &user_key(user_id))?,
            delete(&self.table, &pk, &reverse_key(&binding.member))?,
        ];
        self.client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await
            .map_err(|e| {
                StoreError::Dynamo(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
            })?;
        Ok(Some(binding))
    }
}

fn delete(table: &str, pk: &str, sk: &str) -> Result<TransactWriteItem, StoreError> {
    let delete = Delete::builder()
        .table_name(table)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .build()
        .map_err(|e| StoreError::Dynamo(e.to_string()))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

impl Store {
    /// Appends a record to the integration's audit log (binding changes).
    pub async fn add_audit(
        &self,
        integration_id: &str,
        at_ms: i64,
        record: &crate::domain::incident::OperationRecord,
    ) -> Result<(), StoreError> {
        self.append_record(&partition(integration_id), "AUDIT", at_ms, record)
            .await
    }

    /// The integration's audit log, oldest first.
    pub async fn list_audit(
        &self,
        integration_id: &str,
    ) -> Result<Vec<crate::domain::incident::OperationRecord>, StoreError> {
        self.records_under(&partition(integration_id), "AUDIT")
            .await
    }
}
