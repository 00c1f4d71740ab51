//! Incidents and the alert-key pointers that lock them (ARCHITECTURE.md §4, §5.2).
//!
//! - `INT#<integration>` / `ALERTKEY#<key>`: which incident an alert key points at,
//!   `open` or `resolved`, and the source time of the event that set it. The pointer
//!   is the lock: a conditional write on it decides who opens an incident, so one key
//!   has at most one open incident. Opening writes the pointer and the incident in
//!   one transaction (one request instead of a read and two writes; a firing event
//!   tries it first, and a refusal returns the key's pointer, so a repeat costs no
//!   extra request). Resolving writes the incident before the pointer, and the next
//!   event for the key repairs a half-done pair (and pairs written by older versions).
//!   A `resolved` event for a key never seen leaves a resolved pointer without an
//!   incident (kept a week), so an older `firing` event that arrives later stays stale.
//! - `INC#<id>` / `INCIDENT`: the incident (on `gsi1` as `INCIDENTS#<integration>`).
//!
//! What an event does is decided by the pure [`decide`]; this module applies it.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};

use super::{Item, Store, StoreError, applied, from_typed, n, partition, s, typed_item};
use crate::domain::escalation_state::PolicySnapshot;
use crate::domain::incident::{AlertEvent, AlertStatus, Incident};
use crate::domain::incident_state::{
    Decision, KeyPointer, PointerState, decide, merged, new_incident, resolved,
};

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

/// What a transactional open found.
enum Opening {
    /// The pointer and the incident are written.
    Opened,
    /// The key's pointer was not as expected: here it is (none: it is gone), to
    /// decide again.
    Taken(Option<Item>),
    /// A concurrent write won (or the id was taken): read and decide again.
    Raced,
}

/// How long a resolved pointer without an incident is kept, in seconds.
const RESOLVED_MARKER_SECS: i64 = 7 * 86_400;

/// Lost races before an event gives up (and its SQS record is retried).
const APPLY_ATTEMPTS: usize = 8;

fn key_item(integration_id: &str, key: &str) -> (String, String) {
    (partition(integration_id), format!("ALERTKEY#{key}"))
}

/// The partition of an incident and its deliveries and records.
pub(super) fn incident_pk(id: &str) -> String {
    format!("INC#{id}")
}

/// The incident's item; `expires_at` (Unix seconds) is its TTL (see `retention`).
fn incident_item(incident: &Incident, expires_at: Option<i64>) -> Result<Item, StoreError> {
    let mut item = typed_item(incident, incident_pk(&incident.id), "INCIDENT".into())?;
    if let Some(at) = expires_at {
        item.insert("expires_at".into(), n(at));
    }
    item.insert(
        "gsi1pk".into(),
        s(format!("INCIDENTS#{}", incident.integration_id)),
    );
    item.insert(
        "gsi1sk".into(),
        s(format!("{}#{}", incident.opened_at, incident.id)),
    );
    // On the timer index while a step is due or something is owed (sparse).
    if let Some(due) = incident.escalation.as_ref().and_then(|e| e.due_ms()) {
        item.insert("gsi2pk".into(), s(super::escalation::TIMER_KEY));
        item.insert(
            "gsi2sk".into(),
            s(super::escalation::timer_sort_key(due, &incident.id)),
        );
    }
    Ok(item)
}

/// A refused open: the pointer's condition failed (here is what it holds), or the
/// transaction lost a race (decide again); anything else is an error.
fn refused_open<R: std::fmt::Debug>(
    err: SdkError<TransactWriteItemsError, R>,
) -> Result<Opening, StoreError> {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        err.as_service_error()
    {
        let reasons = cancelled.cancellation_reasons();
        let code = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
        if code(0) == "ConditionalCheckFailed" {
            let pointer = reasons.first().and_then(|r| r.item()).cloned();
            return Ok(Opening::Taken(pointer));
        }
        // A concurrent write on either item, or the new id taken: read and decide again.
        if [code(0), code(1)].contains(&"TransactionConflict")
            || code(1) == "ConditionalCheckFailed"
        {
            return Ok(Opening::Raced);
        }
        // Throttling, validation, …: an error of ours (the record is retried).
        return Err(StoreError::Dynamo(format!(
            "incident open refused: {}, {}",
            code(0),
            code(1)
        )));
    }
    Err(StoreError::from_sdk(err))
}

/// Reads a pointer item.
fn pointer_of(item: &Item) -> Result<KeyPointer, StoreError> {
    let text = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().or_else(|_| v.as_n()).ok())
            .cloned()
    };
    let state = text("state")
        .as_deref()
        .and_then(PointerState::parse)
        .ok_or_else(|| StoreError::Corrupt("alert key pointer without a state".into()))?;
    Ok(KeyPointer {
        state,
        incident_id: text("incident_id"),
        event_ms: text("event_ms").and_then(|v| v.parse().ok()).unwrap_or(0),
    })
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
        policy: Option<&PolicySnapshot>,
    ) -> Result<AlertApplied, StoreError> {
        let (pk, sk) = key_item(&event.integration_id, &event.alert.key);
        // Most firing events of a key never seen open an incident: try that first.
        let mut known = None;
        if event.alert.status == AlertStatus::Firing {
            let incident = new_incident(new_id(), event, event_ms, now, policy);
            match self.open_incident(&incident, event, event_ms, None).await? {
                Opening::Opened => return Ok(AlertApplied::Opened(incident)),
                Opening::Taken(pointer) => known = Some(pointer),
                Opening::Raced => {}
            }
        }
        for _ in 0..APPLY_ATTEMPTS {
            let item = match known.take() {
                Some(item) => item,
                None => self.get_item(&pk, &sk).await?,
            };
            let pointer = item.map(|item| pointer_of(&item)).transpose()?;
            let incident = match pointer.as_ref().and_then(|p| p.incident_id.as_deref()) {
                Some(id) => self.get_incident(id).await?,
                None => None,
            };
            let decision = decide(
                event.alert.status,
                event_ms,
                pointer.as_ref(),
                incident.as_ref(),
                |open| merged(open, event, event_ms, now),
            );
            match self
                .apply_decision(decision, (event, event_ms, now), &new_id, policy)
                .await
            {
                Ok(Some(applied)) => return Ok(applied),
                Ok(None) | Err(StoreError::Conflict) => continue,
                Err(err) => return Err(err),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Carries out one decision; `None` means: read and decide again.
    async fn apply_decision(
        &self,
        decision: Decision,
        (event, event_ms, now): (&AlertEvent, i64, &str),
        new_id: &impl Fn() -> String,
        policy: Option<&PolicySnapshot>,
    ) -> Result<Option<AlertApplied>, StoreError> {
        let applied = match decision {
            Decision::Open { after_resolved_ms } => {
                let incident = new_incident(new_id(), event, event_ms, now, policy);
                match self
                    .open_incident(&incident, event, event_ms, after_resolved_ms)
                    .await?
                {
                    Opening::Opened => AlertApplied::Opened(incident),
                    Opening::Taken(_) | Opening::Raced => return Ok(None),
                }
            }
            Decision::Update { next, changed } => {
                self.replace_incident(&next, next.version.saturating_sub(1))
                    .await?;
                AlertApplied::Updated {
                    incident: *next,
                    changed,
                }
            }
            Decision::Unchanged(open) => AlertApplied::Updated {
                incident: *open,
                changed: false,
            },
            Decision::Resolve(open) => {
                self.resolve_incident(&open, event_ms, now, "source")
                    .await?
            }
            Decision::AlreadyResolved(done) => AlertApplied::AlreadyResolved(*done),
            Decision::Stale => AlertApplied::Stale,
            Decision::NothingOpen => AlertApplied::NothingOpen,
            Decision::RememberResolved => {
                let (pk, sk) = key_item(&event.integration_id, &event.alert.key);
                self.put_resolved_marker(&pk, &sk, event_ms).await?;
                AlertApplied::NothingOpen
            }
            Decision::RepairPointer(done) => {
                self.point_at_resolved(&done).await?;
                return Ok(None);
            }
            Decision::WriteMissing { incident_id } => {
                // An open pointer whose incident is not written (yet, or its opener
                // stopped): write it from this event; a resolve is then applied anew.
                let incident = self
                    .create_incident(&new_incident(incident_id, event, event_ms, now, policy))
                    .await?;
                if event.alert.status != crate::domain::incident::AlertStatus::Firing {
                    return Ok(None);
                }
                AlertApplied::Opened(incident)
            }
            Decision::Corrupt(reason) => {
                return Err(StoreError::Corrupt(format!(
                    "alert key {}: {reason}",
                    event.alert.key
                )));
            }
        };
        Ok(Some(applied))
    }

    /// Writes the key's pointer (new, or replacing the resolved one of
    /// `resolved_before_ms`) and the incident in one transaction.
    async fn open_incident(
        &self,
        incident: &Incident,
        event: &AlertEvent,
        event_ms: i64,
        resolved_before_ms: Option<i64>,
    ) -> Result<Opening, StoreError> {
        let (pk, sk) = key_item(&event.integration_id, &event.alert.key);
        let mut pointer = Put::builder()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("incident_id", s(&incident.id))
            .item("state", s(PointerState::Open.as_str()))
            .item("event_ms", n(event_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        pointer = match resolved_before_ms {
            None => pointer.condition_expression("attribute_not_exists(pk)"),
            Some(ms) => pointer
                .condition_expression("#state = :resolved AND event_ms = :before")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":resolved", s(PointerState::Resolved.as_str()))
                .expression_attribute_values(":before", n(ms)),
        };
        let expires_at = self.incident_expiry(incident).await?;
        let create = Put::builder()
            .table_name(&self.table)
            .set_item(Some(incident_item(incident, expires_at)?))
            .condition_expression("attribute_not_exists(pk)");
        let built = |put: aws_sdk_dynamodb::types::builders::PutBuilder| {
            put.build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(|err| StoreError::Dynamo(err.to_string()))
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(built(pointer)?)
            .transact_items(built(create)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Opening::Opened),
            Err(err) => refused_open(err),
        }
    }

    /// Writes a new incident unless one with its id exists.
    async fn create_incident(&self, incident: &Incident) -> Result<Incident, StoreError> {
        let expires_at = self.incident_expiry(incident).await?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(incident_item(incident, expires_at)?))
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
            .item("state", s(PointerState::Resolved.as_str()))
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
    /// The resolved pointer expires with the incident (and not before a week after
    /// the event, like a marker); opening the key again replaces the whole item, so an
    /// open pointer never carries an expiry.
    async fn point_at_resolved(&self, done: &Incident) -> Result<(), StoreError> {
        let (pk, sk) = key_item(&done.integration_id, &done.key);
        let marker_until = done.last_event_ms.div_euclid(1000) + RESOLVED_MARKER_SECS;
        let expires_at = self
            .incident_expiry(done)
            .await?
            .map_or(marker_until, |at| at.max(marker_until));
        // Not applied: someone else moved it already.
        applied(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression("SET #state = :resolved, event_ms = :t, expires_at = :exp")
                .condition_expression("incident_id = :id AND #state = :open")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":resolved", s(PointerState::Resolved.as_str()))
                .expression_attribute_values(":open", s(PointerState::Open.as_str()))
                .expression_attribute_values(":t", n(done.last_event_ms))
                .expression_attribute_values(":exp", n(expires_at))
                .expression_attribute_values(":id", s(&done.id))
                .send()
                .await,
        )
        .map(|_| ())
    }

    /// Resolves an open incident (by the source, or by a person's action).
    pub async fn resolve_incident(
        &self,
        open: &Incident,
        event_ms: i64,
        now: &str,
        by: &str,
    ) -> Result<AlertApplied, StoreError> {
        let next = resolved(open, event_ms, now, by);
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
        let expires_at = self.incident_expiry(incident).await?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(incident_item(incident, expires_at)?))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", n(expected_version))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// The incident an alert key points at (the open one, or the last resolved one
    /// while its pointer lasts): two reads, never a list of the integration's incidents.
    pub async fn incident_of_key(
        &self,
        integration_id: &str,
        key: &str,
    ) -> Result<Option<Incident>, StoreError> {
        let (pk, sk) = key_item(integration_id, key);
        let Some(item) = self.get_item(&pk, &sk).await? else {
            return Ok(None);
        };
        match pointer_of(&item)?.incident_id {
            Some(id) => self.get_incident(&id).await,
            None => Ok(None),
        }
    }

    /// One incident, expired or not (shown to people: [`Store::get_live_incident`]).
    pub async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let incident: Option<Incident> = self
            .get_item(&incident_pk(id), "INCIDENT")
            .await?
            .map(from_typed)
            .transpose()?;
        if let Some(incident) = &incident {
            self.remember_incident(incident);
        }
        Ok(incident)
    }

    /// An integration's incidents, newest first (a Query on `gsi1`), expired or not
    /// (shown to people: [`Store::list_live_incidents`]).
    pub async fn list_incidents(&self, integration_id: &str) -> Result<Vec<Incident>, StoreError> {
        self.list_live_incidents(integration_id, i64::MIN).await
    }
}
