//! Incidents, their delivery items and operation records.
//!
//! - `INT#<integration>` / `ALERTKEY#<key>`: which incident an alert key points at,
//!   `open` or `resolved`, and the source time of the event that set it. The pointer
//!   is the lock: a conditional write on it decides who opens an incident, so one key
//!   has at most one open incident. No transactions (they cost twice, and every step
//!   below is safe to interrupt): an incident is written after its pointer on open,
//!   before it on resolve, and the next event for the key repairs a half-done pair.
//!   A `resolved` event for a key never seen leaves a resolved pointer without an
//!   incident (kept a week), so an older `firing` event that arrives later stays stale.
//! - `INC#<id>` / `INCIDENT`: the incident (on `gsi1` as `INCIDENTS#<integration>`).
//! - `INC#<id>` / `DELIVERY#<kind>#<target>`: what was delivered to one target; each
//!   step (alert, resolved) is claimed with a conditional write before it is sent,
//!   so a redelivered SQS message never sends twice.
//! - `INC#<id>` / `REC#<ms>#<n>`: operation records (the timeline).

use serde::{Deserialize, Serialize};

use super::{Item, Store, StoreError, applied, from_typed, n, partition, s, typed_item};
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

/// How long a resolved pointer without an incident is kept, in seconds.
const RESOLVED_MARKER_SECS: i64 = 7 * 86_400;

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

/// A new, triggered incident made from an alert event.
fn new_incident(id: String, event: &AlertEvent, event_ms: i64, now: &str) -> Incident {
    let alert = &event.alert;
    Incident {
        id,
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
    }
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
        for _ in 0..8 {
            let pointer = self.get_item(&pk, &sk).await?;
            let field = |name: &str| {
                pointer
                    .as_ref()
                    .and_then(|p| p.get(name))
                    .and_then(|v| v.as_s().or_else(|_| v.as_n()).ok())
                    .cloned()
            };
            let state = field("state");
            let pointed_ms: i64 = field("event_ms").and_then(|v| v.parse().ok()).unwrap_or(0);
            let pointed_id = field("incident_id");
            let pointed = match &pointed_id {
                Some(id) => self.get_incident(id).await?,
                None => None,
            };
            if let (Some("open"), Some(done)) = (state.as_deref(), &pointed)
                && done.status == IncidentStatus::Resolved
            {
                // A resolve stopped between its two writes: finish it, then look again.
                self.point_at_resolved(done).await?;
                continue;
            }
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
                (AlertStatus::Resolved, Some("resolved"), None) => {
                    return Ok(AlertApplied::NothingOpen);
                }
                (AlertStatus::Resolved, Some(_), Some(open)) if event_ms >= open.last_event_ms => {
                    self.resolve_incident(&open, event_ms, now, "source").await
                }
                (AlertStatus::Resolved, Some(_), Some(_)) => return Ok(AlertApplied::Stale),
                (AlertStatus::Resolved, Some(_), None) if event_ms < pointed_ms => {
                    return Ok(AlertApplied::Stale);
                }
                (_, Some(_), None) => {
                    // An open pointer whose incident is not written (yet, or its opener
                    // stopped): write it from this event; the loop then applies the event.
                    let Some(id) = pointed_id else {
                        return Err(StoreError::Corrupt(format!(
                            "alert key {} has an open pointer without an incident id",
                            event.alert.key
                        )));
                    };
                    match self
                        .create_incident(&new_incident(id, event, event_ms, now))
                        .await
                    {
                        Ok(incident) if event.alert.status == AlertStatus::Firing => {
                            return Ok(AlertApplied::Opened(incident));
                        }
                        Ok(_) | Err(StoreError::Conflict) => continue,
                        Err(err) => return Err(err),
                    }
                }
                (AlertStatus::Resolved, None, _) => {
                    // Remember the resolve, so an older firing event arriving later is stale.
                    match self.put_resolved_marker(&pk, &sk, event_ms).await {
                        Ok(()) => return Ok(AlertApplied::NothingOpen),
                        Err(err) => Err(err),
                    }
                }
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
        let incident = new_incident(new_id(), event, event_ms, now);
        let (pk, sk) = key_item(&event.integration_id, &event.alert.key);
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("incident_id", s(&incident.id))
            .item("state", s("open"))
            .item("event_ms", n(event_ms));
        request = match resolved_before_ms {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(ms) => request
                .condition_expression("#state = :resolved AND event_ms = :before")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":resolved", s("resolved"))
                .expression_attribute_values(":before", n(ms)),
        };
        request.send().await.map_err(StoreError::from_sdk)?;
        // Lost to a repair by a concurrent event (Conflict): the caller looks again.
        let incident = self.create_incident(&incident).await?;
        Ok(AlertApplied::Opened(incident))
    }

    /// Writes a new incident unless one with its id exists.
    async fn create_incident(&self, incident: &Incident) -> Result<Incident, StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(incident_item(incident)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(incident.clone())
    }

    /// A resolved pointer without an incident, for a key first seen resolved. It
    /// expires a week after the event (an older firing event is not expected later).
    async fn put_resolved_marker(
        &self,
        pk: &str,
        sk: &str,
        event_ms: i64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("state", s("resolved"))
            .item("event_ms", n(event_ms))
            .item(
                "expires_at",
                n(event_ms.div_euclid(1000) + RESOLVED_MARKER_SECS),
            )
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Moves the key's pointer to `resolved` for a resolved incident it still names.
    async fn point_at_resolved(&self, done: &Incident) -> Result<(), StoreError> {
        let (pk, sk) = key_item(&done.integration_id, &done.key);
        // Not applied: someone else moved it already.
        applied(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression("SET #state = :resolved, event_ms = :t")
                .condition_expression("incident_id = :id AND #state = :open")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":resolved", s("resolved"))
                .expression_attribute_values(":open", s("open"))
                .expression_attribute_values(":t", n(done.last_event_ms))
                .expression_attribute_values(":id", s(&done.id))
                .send()
                .await,
        )
        .map(|_| ())
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
        // The incident first: if we stop before the pointer moves, the next event
        // for the key sees a resolved incident behind an open pointer and moves it.
        self.replace_incident(&next, open.version).await?;
        self.point_at_resolved(&next).await?;
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
        applied(result)
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

    /// What was delivered to one target of an incident.
    pub async fn get_delivery(
        &self,
        incident_id: &str,
        kind: &str,
        target: &str,
    ) -> Result<Option<Delivery>, StoreError> {
        self.get_item(&incident_pk(incident_id), &delivery_sk(kind, target))
            .await?
            .map(from_typed)
            .transpose()
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
