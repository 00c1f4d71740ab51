//! Incidents, their delivery items and operation records.
//!
//! - `INT#<integration>` / `ALERTKEY#<key>`: which incident an alert key points at,
//!   `open` or `resolved`, and the source time of the event that set it. Written in
//!   one transaction with the incident, so one key has at most one open incident.
//! - `INC#<id>` / `INCIDENT`: the incident (on `gsi1` as `INCIDENTS#<integration>`).
//! - `INC#<id>` / `DELIVERY#<kind>#<target>`: what was delivered to one target; each
//!   step (alert, resolved) is claimed with a conditional write before it is sent,
//!   so a redelivered SQS message never sends twice.
//! - `INC#<id>` / `REC#<ms>#<n>`: operation records (the timeline).

use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::{Item, Store, StoreError, from_typed, n, partition, s, typed_item};
use crate::incident::{AlertEvent, AlertStatus, Incident, IncidentStatus, OperationRecord};

/// What applying an alert event did to its incident.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertApplied {
    /// A new incident opened.
    Opened(Incident),
    /// The open incident was updated (`changed`: its content differs now).
    Updated {
        /// The incident after the event.
        incident: Incident,
        /// Whether anything shown changed.
        changed: bool,
    },
    /// The open incident resolved.
    Resolved(Incident),
    /// The incident was already resolved by this or a newer event.
    AlreadyResolved(Incident),
    /// The event is older than what the incident already reflects; nothing changed.
    Stale,
    /// A `resolved` event for a key with no incident.
    NothingOpen,
}

/// A delivery step's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    /// Delivered.
    Sent,
    /// Given up (recorded why).
    Failed,
}

/// The steps delivered to each target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStep {
    /// The alert message or card.
    Alert,
    /// The resolved follow-up (robot messages only; cards update in place).
    Resolved,
}

impl DeliveryStep {
    fn field(self) -> &'static str {
        match self {
            Self::Alert => "alert_state",
            Self::Resolved => "resolved_state",
        }
    }
}

/// What was delivered to one target of an incident.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// `chat` or `user`.
    pub kind: String,
    /// openConversationId or userId.
    pub target: String,
    /// Alert step.
    #[serde(default)]
    pub alert_state: Option<StepState>,
    /// processQueryKey or outTrackId of the alert.
    #[serde(default)]
    pub alert_ref: Option<String>,
    /// Resolved step.
    #[serde(default)]
    pub resolved_state: Option<StepState>,
    /// `robot` or `card`.
    #[serde(default)]
    pub channel: Option<String>,
    /// Hash of the card content last sent (unchanged updates are skipped).
    #[serde(default)]
    pub card_hash: Option<String>,
    /// Last error.
    #[serde(default)]
    pub last_error: Option<String>,
}

fn key_item(integration_id: &str, key: &str) -> (String, String) {
    (partition(integration_id), format!("ALERTKEY#{key}"))
}

fn incident_pk(id: &str) -> String {
    format!("INC#{id}")
}

fn delivery_sk(kind: &str, target: &str) -> String {
    format!("DELIVERY#{kind}#{target}")
}

fn incident_item(incident: &Incident) -> Result<Item, StoreError> {
    let mut item = typed_item(incident, incident_pk(&incident.id), "INCIDENT".into())?;
    item.insert(
        "gsi1pk".into(),
        s(format!("INCIDENTS#{}", incident.integration_id)),
    );
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", incident.opened_at, incident.id)),
    );
    Ok(item)
}

fn transaction_error<E: std::error::Error + 'static>(
    err: aws_sdk_dynamodb::error::SdkError<E>,
) -> StoreError {
    let text = aws_sdk_dynamodb::error::DisplayErrorContext(&err).to_string();
    if text.contains("TransactionCanceled") || text.contains("ConditionalCheckFailed") {
        StoreError::Conflict
    } else {
        StoreError::Dynamo(text)
    }
}

/// The incident an alert event makes: the old one with the event's content.
fn merged(old: &Incident, event: &AlertEvent, event_ms: i64, now: &str) -> Incident {
    let alert = &event.alert;
    let mut next = old.clone();
    next.severity = alert.severity;
    next.title = alert.title.clone();
    next.description = alert.description.clone();
    next.labels = alert.labels.clone();
    next.links = alert.links.clone();
    next.source = alert.source.clone().or(next.source);
    for (have, add) in [
        (&mut next.targets.chats, &event.targets.chats),
        (&mut next.targets.members, &event.targets.members),
        (
            &mut next.targets.dingtalk_user_ids,
            &event.targets.dingtalk_user_ids,
        ),
    ] {
        for target in add {
            if !have.contains(target) {
                have.push(target.clone());
            }
        }
    }
    next.last_event_ms = next.last_event_ms.max(event_ms);
    next.updated_at = now.to_string();
    next
}

/// Whether two incidents differ in what people see.
fn shown_differs(a: &Incident, b: &Incident) -> bool {
    (
        a.severity,
        &a.title,
        &a.description,
        &a.labels,
        &a.links,
        &a.targets,
        a.status,
    ) != (
        b.severity,
        &b.title,
        &b.description,
        &b.labels,
        &b.links,
        &b.targets,
        b.status,
    )
}

impl Store {
    /// Applies an alert event to the incident of its key (creating, updating or
    /// resolving it); events older than the stored state change nothing.
    pub async fn apply_alert(
        &self,
        event: &AlertEvent,
        event_ms: i64,
        now: &str,
        new_id: impl Fn() -> String,
    ) -> Result<AlertApplied, StoreError> {
        let (pk, sk) = key_item(&event.integration_id, &event.alert.key);
        for _ in 0..5 {
            let pointer = self.get_item(&pk, &sk).await?;
            let state = pointer
                .as_ref()
                .and_then(|p| p.get("state"))
                .and_then(|v| v.as_s().ok())
                .cloned();
            let pointed_ms: i64 = pointer
                .as_ref()
                .and_then(|p| p.get("event_ms"))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let pointed_id = pointer
                .as_ref()
                .and_then(|p| p.get("incident_id"))
                .and_then(|v| v.as_s().ok())
                .cloned();
            let pointed = match &pointed_id {
                Some(id) => self.get_incident(id).await?,
                None => None,
            };
            let result = match (event.alert.status, state.as_deref(), pointed) {
                (AlertStatus::Firing, None, _) => {
                    self.open_incident(event, event_ms, now, &new_id, None)
                        .await
                }
                (AlertStatus::Firing, Some("resolved"), _) if event_ms > pointed_ms => {
                    self.open_incident(event, event_ms, now, &new_id, Some(pointed_ms))
                        .await
                }
                (AlertStatus::Firing, Some("resolved"), _) => return Ok(AlertApplied::Stale),
                (AlertStatus::Firing, Some(_), Some(open)) => {
                    self.update_incident(&open, event, event_ms, now).await
                }
                (AlertStatus::Resolved, Some("resolved"), Some(done)) => {
                    return Ok(if event_ms >= pointed_ms {
                        AlertApplied::AlreadyResolved(done)
                    } else {
                        AlertApplied::Stale
                    });
                }
                (AlertStatus::Resolved, Some(_), Some(open)) if event_ms >= open.last_event_ms => {
                    self.resolve_incident(&open, event_ms, now, "source").await
                }
                (AlertStatus::Resolved, Some(_), Some(_)) => return Ok(AlertApplied::Stale),
                (AlertStatus::Resolved, _, _) => return Ok(AlertApplied::NothingOpen),
                (AlertStatus::Firing, Some(_), None) => Err(StoreError::Corrupt(format!(
                    "alert key {} points at a missing incident",
                    event.alert.key
                ))),
            };
            match result {
                Err(StoreError::Conflict) => continue,
                other => return other,
            }
        }
        Err(StoreError::Conflict)
    }

    async fn open_incident(
        &self,
        event: &AlertEvent,
        event_ms: i64,
        now: &str,
        new_id: &impl Fn() -> String,
        resolved_before_ms: Option<i64>,
    ) -> Result<AlertApplied, StoreError> {
        let alert = &event.alert;
        let incident = Incident {
            id: new_id(),
            integration_id: event.integration_id.clone(),
            key: alert.key.clone(),
            status: IncidentStatus::Triggered,
            severity: alert.severity,
            title: alert.title.clone(),
            description: alert.description.clone(),
            labels: alert.labels.clone(),
            links: alert.links.clone(),
            source: alert.source.clone(),
            targets: event.targets.clone(),
            opened_at: now.to_string(),
            started_at: Some(crate::clock::rfc3339(event_ms)),
            updated_at: now.to_string(),
            resolved_at: None,
            acked_by: None,
            resolved_by: None,
            snoozed_until: None,
            last_event_ms: event_ms,
            event_count: 1,
            version: 1,
        };
        let (pk, sk) = key_item(&event.integration_id, &alert.key);
        let mut pointer = Item::new();
        pointer.insert("pk".into(), s(pk));
        pointer.insert("sk".into(), s(sk));
        pointer.insert("incident_id".into(), s(&incident.id));
        pointer.insert("state".into(), s("open"));
        pointer.insert("event_ms".into(), n(event_ms));
        let mut put_pointer = Put::builder()
            .table_name(&self.table)
            .set_item(Some(pointer));
        put_pointer = match resolved_before_ms {
            None => put_pointer.condition_expression("attribute_not_exists(pk)"),
            Some(ms) => put_pointer
                .condition_expression("#state = :resolved AND event_ms = :before")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":resolved", s("resolved"))
                .expression_attribute_values(":before", n(ms)),
        };
        let put_incident = Put::builder()
            .table_name(&self.table)
            .set_item(Some(incident_item(&incident)?))
            .condition_expression("attribute_not_exists(pk)");
        let build = |p: aws_sdk_dynamodb::types::builders::PutBuilder| {
            p.build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| StoreError::Dynamo(e.to_string()))
        };
        self.client
            .transact_write_items()
            .transact_items(build(put_pointer)?)
            .transact_items(build(put_incident)?)
            .send()
            .await
            .map_err(transaction_error)?;
        Ok(AlertApplied::Opened(incident))
    }

    async fn update_incident(
        &self,
        open: &Incident,
        event: &AlertEvent,
        event_ms: i64,
        now: &str,
    ) -> Result<AlertApplied, StoreError> {
        if event_ms < open.last_event_ms {
            return Ok(AlertApplied::Stale);
        }
        let mut next = merged(open, event, event_ms, now);
        let changed = shown_differs(open, &next);
        if !changed && event_ms == open.last_event_ms {
            // The same event again (a redelivery): nothing to write.
            return Ok(AlertApplied::Updated {
                incident: open.clone(),
                changed: false,
            });
        }
        next.event_count = open.event_count.saturating_add(1);
        next.version = open.version + 1;
        self.replace_incident(&next, open.version).await?;
        Ok(AlertApplied::Updated {
            incident: next,
            changed,
        })
    }

    /// Resolves an open incident (by the source, or by a person's action).
    pub async fn resolve_incident(
        &self,
        open: &Incident,
        event_ms: i64,
        now: &str,
        by: &str,
    ) -> Result<AlertApplied, StoreError> {
        let mut next = open.clone();
        next.status = IncidentStatus::Resolved;
        next.resolved_at = Some(now.to_string());
        next.resolved_by = Some(by.to_string());
        next.updated_at = now.to_string();
        next.last_event_ms = open.last_event_ms.max(event_ms);
        next.version = open.version + 1;
        let (pk, sk) = key_item(&open.integration_id, &open.key);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(incident_item(&next)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(open.version))
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("SET #state = :resolved, event_ms = :t")
            .condition_expression("incident_id = :id")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":resolved", s("resolved"))
            .expression_attribute_values(":t", n(next.last_event_ms))
            .expression_attribute_values(":id", s(&open.id))
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await
            .map_err(transaction_error)?;
        Ok(AlertApplied::Resolved(next))
    }

    /// Replaces an incident if it is still at `expected_version`.
    pub async fn replace_incident(
        &self,
        incident: &Incident,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(incident_item(incident)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(expected_version))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// One incident.
    pub async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        self.get_item(&incident_pk(id), "INCIDENT")
            .await?
            .map(from_typed)
            .transpose()
    }

    /// An integration's incidents, newest first (a Query on `gsi1`).
    pub async fn list_incidents(&self, integration_id: &str) -> Result<Vec<Incident>, StoreError> {
        self.query_gsi1(&format!("INCIDENTS#{integration_id}"), true)
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }

    /// Claims a delivery step for `lease_ms`: true when this caller may send it (it
    /// was never completed and nobody else holds a live claim).
    pub async fn claim_step(
        &self,
        incident_id: &str,
        kind: &str,
        target: &str,
        step: DeliveryStep,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_pk(incident_id)))
            .key("sk", s(delivery_sk(kind, target)))
            .update_expression("SET #kind = :kind, target = :target, lease_until_ms = :lease")
            .condition_expression(
                "attribute_not_exists(#step) AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now)",
            )
            .expression_attribute_names("#kind", "kind")
            .expression_attribute_names("#step", step.field())
            .expression_attribute_values(":kind", s(kind))
            .expression_attribute_values(":target", s(target))
            .expression_attribute_values(":lease", n(now_ms + lease_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match result.map_err(StoreError::from_sdk) {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Completes a claimed step (sent or given up) and drops the claim.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_step(
        &self,
        incident_id: &str,
        kind: &str,
        target: &str,
        step: DeliveryStep,
        state: StepState,
        channel: &str,
        reference: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut sets = vec!["#step = :state", "channel = :channel"];
        let state_text = match state {
            StepState::Sent => "sent",
            StepState::Failed => "failed",
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_pk(incident_id)))
            .key("sk", s(delivery_sk(kind, target)))
            .expression_attribute_names("#step", step.field())
            .expression_attribute_values(":state", s(state_text))
            .expression_attribute_values(":channel", s(channel));
        if let (Some(reference), DeliveryStep::Alert) = (reference, step) {
            sets.push("alert_ref = :ref");
            request = request.expression_attribute_values(":ref", s(reference));
        }
        if let Some(error) = error {
            sets.push("last_error = :err");
            request = request.expression_attribute_values(":err", s(error));
        }
        request
            .update_expression(format!("SET {} REMOVE lease_until_ms", sets.join(", ")))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Drops a claim without completing the step (it will be tried again).
    pub async fn release_step(
        &self,
        incident_id: &str,
        kind: &str,
        target: &str,
        error: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_pk(incident_id)))
            .key("sk", s(delivery_sk(kind, target)))
            .update_expression("SET last_error = :err REMOVE lease_until_ms")
            .expression_attribute_values(":err", s(error))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Remembers the content hash of a card last sent to a target.
    pub async fn set_card_hash(
        &self,
        incident_id: &str,
        kind: &str,
        target: &str,
        hash: &str,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(incident_pk(incident_id)))
            .key("sk", s(delivery_sk(kind, target)))
            .update_expression("SET card_hash = :h")
            .expression_attribute_values(":h", s(hash))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Every delivery item of an incident.
    pub async fn list_deliveries(&self, incident_id: &str) -> Result<Vec<Delivery>, StoreError> {
        self.query_partition(&incident_pk(incident_id), "DELIVERY#")
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }

    /// Appends an operation record to an incident's timeline.
    pub async fn add_record(
        &self,
        incident_id: &str,
        at_ms: i64,
        record: &OperationRecord,
    ) -> Result<(), StoreError> {
        self.append_record(&incident_pk(incident_id), "REC", at_ms, record)
            .await
    }

    /// An incident's timeline, oldest first.
    pub async fn list_records(
        &self,
        incident_id: &str,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        self.records_under(&incident_pk(incident_id), "REC").await
    }

    /// Appends a record under `pk` with sort key `<prefix>#<ms>#<random>` (time order).
    pub(super) async fn append_record(
        &self,
        pk: &str,
        prefix: &str,
        at_ms: i64,
        record: &OperationRecord,
    ) -> Result<(), StoreError> {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let item = typed_item(
            record,
            pk.to_string(),
            format!("{prefix}#{at_ms:013}#{suffix}"),
        )?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The records under `pk` with `prefix`, oldest first.
    pub(super) async fn records_under(
        &self,
        pk: &str,
        prefix: &str,
    ) -> Result<Vec<OperationRecord>, StoreError> {
        self.query_partition(pk, &format!("{prefix}#"))
            .await?
            .into_iter()
            .map(from_typed)
            .collect()
    }
}
