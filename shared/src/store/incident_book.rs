//! The incident port (ARCHITECTURE.md §3): what the notifier reads and writes about
//! integrations, members and incidents. [`Store`] implements it on DynamoDB and
//! [`MemoryIncidents`] in memory (for fast logic tests and the bench's in-memory
//! phase); the conformance suite (`conformance::incident_book`) runs on both.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{AlertApplied, Store, StoreError};
use crate::domain::escalation::EscalationPolicy;
use crate::domain::escalation_state::PolicySnapshot;
use crate::domain::incident::{AlertEvent, Incident};
use crate::domain::incident_state::{
    Decision, KeyPointer, PointerState, decide, merged, new_incident, resolved,
};
use crate::domain::integration::Integration;
use crate::domain::member::{Binding, Member};
use crate::domain::oncall_schedule::OnCallSchedule;
use crate::domain::routing::Route;

/// A source of new incident ids.
pub type NewId<'a> = &'a (dyn Fn() -> String + Send + Sync);

/// Integrations, members and incidents, as the notifier uses them.
#[async_trait]
pub trait IncidentBook: Send + Sync {
    /// One integration.
    async fn get_integration(&self, id: &str) -> Result<Option<Integration>, StoreError>;
    /// Applies an alert event to the incident of its key (see `Store::apply_alert`).
    async fn apply_alert(
        &self,
        event: &AlertEvent,
        event_ms: i64,
        now: &str,
        new_id: NewId<'_>,
        policy: Option<&PolicySnapshot>,
    ) -> Result<AlertApplied, StoreError>;
    /// One incident.
    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError>;
    /// Replaces an incident if it is still at `expected_version` (else `Conflict`).
    async fn replace_incident(
        &self,
        incident: &Incident,
        expected_version: u64,
    ) -> Result<(), StoreError>;
    /// Incidents with an escalation step due by `now_ms`, soonest first.
    async fn due_incidents(&self, now_ms: i64, limit: i32) -> Result<Vec<Incident>, StoreError>;
    /// The integration's routes.
    async fn get_routes(&self, integration_id: &str) -> Result<Vec<Route>, StoreError>;
    /// The integration's escalation policies.
    async fn list_policies(
        &self,
        integration_id: &str,
    ) -> Result<Vec<EscalationPolicy>, StoreError>;
    /// The integration's on-call schedules.
    async fn list_schedules(&self, integration_id: &str)
    -> Result<Vec<OnCallSchedule>, StoreError>;
    /// A member by email.
    async fn get_member(
        &self,
        integration_id: &str,
        email: &str,
    ) -> Result<Option<Member>, StoreError>;
    /// A DingTalk user's binding.
    async fn binding_of_user(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Option<Binding>, StoreError>;
    /// A member's binding.
    async fn binding_of_member(
        &self,
        integration_id: &str,
        email: &str,
    ) -> Result<Option<Binding>, StoreError>;
}

#[async_trait]
impl IncidentBook for Store {
    async fn get_integration(&self, id: &str) -> Result<Option<Integration>, StoreError> {
        Store::get_integration(self, id).await
    }
    async fn apply_alert(
        &self,
        event: &AlertEvent,
        event_ms: i64,
        now: &str,
        new_id: NewId<'_>,
        policy: Option<&PolicySnapshot>,
    ) -> Result<AlertApplied, StoreError> {
        Store::apply_alert(self, event, event_ms, now, new_id, policy).await
    }
    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        Store::get_incident(self, id).await
    }
    async fn replace_incident(
        &self,
        incident: &Incident,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        Store::replace_incident(self, incident, expected_version).await
    }
    async fn due_incidents(&self, now_ms: i64, limit: i32) -> Result<Vec<Incident>, StoreError> {
        Store::due_incidents(self, now_ms, limit).await
    }
    async fn get_routes(&self, integration_id: &str) -> Result<Vec<Route>, StoreError> {
        Store::get_routes(self, integration_id).await
    }
    async fn list_policies(
        &self,
        integration_id: &str,
    ) -> Result<Vec<EscalationPolicy>, StoreError> {
        Store::list_policies(self, integration_id).await
    }
    async fn list_schedules(
        &self,
        integration_id: &str,
    ) -> Result<Vec<OnCallSchedule>, StoreError> {
        Store::list_schedules(self, integration_id).await
    }
    async fn get_member(
        &self,
        integration_id: &str,
        email: &str,
    ) -> Result<Option<Member>, StoreError> {
        Store::get_member(self, integration_id, email).await
    }
    async fn binding_of_user(
        &self,
        integration_id: &str,
        user_id: &str,
    ) -> Result<Option<Binding>, StoreError> {
        Store::binding_of_user(self, integration_id, user_id).await
    }
    async fn binding_of_member(
        &self,
        integration_id: &str,
        email: &str,
    ) -> Result<Option<Binding>, StoreError> {
        Store::binding_of_member(self, integration_id, email).await
    }
}

#[derive(Default)]
struct Book {
    integrations: HashMap<String, Integration>,
    pointers: HashMap<(String, String), KeyPointer>,
    incidents: HashMap<String, Incident>,
}

/// The incident port in memory: one lock, so every write is atomic.
#[derive(Default)]
pub struct MemoryIncidents {
    book: Mutex<Book>,
}

impl MemoryIncidents {
    fn lock(&self) -> Result<MutexGuard<'_, Book>, StoreError> {
        self.book
            .lock()
            .map_err(|_| StoreError::Dynamo("in-memory store lock poisoned".into()))
    }

    /// Adds or replaces an integration.
    pub fn put_integration(&self, integration: Integration) -> Result<(), StoreError> {
        self.lock()?
            .integrations
            .insert(integration.id.clone(), integration);
        Ok(())
    }

    /// Carries out one decision on the locked book; `None`: decide again.
    fn apply(
        book: &mut Book,
        decision: Decision,
        (event, event_ms, now): (&AlertEvent, i64, &str),
        new_id: NewId<'_>,
        policy: Option<&PolicySnapshot>,
    ) -> Result<Option<AlertApplied>, StoreError> {
        let key = (event.integration_id.clone(), event.alert.key.clone());
        let point = |state, incident_id: Option<&str>, event_ms| KeyPointer {
            state,
            incident_id: incident_id.map(str::to_string),
            event_ms,
        };
        Ok(Some(match decision {
            Decision::Open { .. } => {
                let incident = new_incident(new_id(), event, event_ms, now, policy);
                let pointer = point(PointerState::Open, Some(&incident.id), event_ms);
                book.pointers.insert(key, pointer);
                book.incidents.insert(incident.id.clone(), incident.clone());
                AlertApplied::Opened(incident)
            }
            Decision::Update { next, changed } => {
                book.incidents.insert(next.id.clone(), (*next).clone());
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
                let next = resolved(&open, event_ms, now, "source");
                let pointer = point(PointerState::Resolved, Some(&next.id), next.last_event_ms);
                book.pointers.insert(key, pointer);
                book.incidents.insert(next.id.clone(), next.clone());
                AlertApplied::Resolved(next)
            }
            Decision::AlreadyResolved(done) => AlertApplied::AlreadyResolved(*done),
            Decision::Stale => AlertApplied::Stale,
            Decision::NothingOpen => AlertApplied::NothingOpen,
            Decision::RememberResolved => {
                book.pointers
                    .insert(key, point(PointerState::Resolved, None, event_ms));
                AlertApplied::NothingOpen
            }
            Decision::RepairPointer(done) => {
                let pointer = point(PointerState::Resolved, Some(&done.id), done.last_event_ms);
                book.pointers.insert(key, pointer);
                return Ok(None);
            }
            Decision::WriteMissing { incident_id } => {
                let incident = new_incident(incident_id, event, event_ms, now, policy);
                book.incidents.insert(incident.id.clone(), incident);
                return Ok(None);
            }
            Decision::Corrupt(reason) => return Err(StoreError::Corrupt(reason)),
        }))
    }
}

#[async_trait]
impl IncidentBook for MemoryIncidents {
    async fn get_integration(&self, id: &str) -> Result<Option<Integration>, StoreError> {
        Ok(self.lock()?.integrations.get(id).cloned())
    }
    async fn apply_alert(
        &self,
        event: &AlertEvent,
        event_ms: i64,
        now: &str,
        new_id: NewId<'_>,
        policy: Option<&PolicySnapshot>,
    ) -> Result<AlertApplied, StoreError> {
        let mut book = self.lock()?;
        let key = (event.integration_id.clone(), event.alert.key.clone());
        for _ in 0..3 {
            let pointer = book.pointers.get(&key).cloned();
            let incident = pointer
                .as_ref()
                .and_then(|p| p.incident_id.as_ref())
                .and_then(|id| book.incidents.get(id))
                .cloned();
            let decision = decide(
                event.alert.status,
                event_ms,
                pointer.as_ref(),
                incident.as_ref(),
                |open| merged(open, event, event_ms, now),
            );
            let at = (event, event_ms, now);
            if let Some(applied) = Self::apply(&mut book, decision, at, new_id, policy)? {
                return Ok(applied);
            }
        }
        Err(StoreError::Conflict)
    }
    async fn get_incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        Ok(self.lock()?.incidents.get(id).cloned())
    }
    async fn replace_incident(
        &self,
        incident: &Incident,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        let mut book = self.lock()?;
        match book.incidents.get(&incident.id) {
            Some(have) if have.version == expected_version => {
                book.incidents.insert(incident.id.clone(), incident.clone());
                Ok(())
            }
            _ => Err(StoreError::Conflict),
        }
    }
    async fn due_incidents(&self, now_ms: i64, limit: i32) -> Result<Vec<Incident>, StoreError> {
        let book = self.lock()?;
        let due_of = |i: &Incident| i.escalation.as_ref().and_then(|e| e.due_ms());
        let mut due: Vec<Incident> = book
            .incidents
            .values()
            .filter(|i| due_of(i).is_some_and(|d| d <= now_ms))
            .cloned()
            .collect();
        due.sort_by_key(|i| (due_of(i), i.id.clone()));
        due.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(due)
    }
    async fn get_routes(&self, _integration_id: &str) -> Result<Vec<Route>, StoreError> {
        Ok(Vec::new())
    }
    async fn list_policies(
        &self,
        _integration_id: &str,
    ) -> Result<Vec<EscalationPolicy>, StoreError> {
        Ok(Vec::new())
    }
    async fn list_schedules(
        &self,
        _integration_id: &str,
    ) -> Result<Vec<OnCallSchedule>, StoreError> {
        Ok(Vec::new())
    }
    async fn get_member(
        &self,
        _integration_id: &str,
        _email: &str,
    ) -> Result<Option<Member>, StoreError> {
        Ok(None)
    }
    async fn binding_of_user(
        &self,
        _integration_id: &str,
        _user_id: &str,
    ) -> Result<Option<Binding>, StoreError> {
        Ok(None)
    }
    async fn binding_of_member(
        &self,
        _integration_id: &str,
        _email: &str,
    ) -> Result<Option<Binding>, StoreError> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_incidents_meet_the_incident_book_contract() {
        super::super::conformance::incident_book(&super::MemoryIncidents::default()).await;
    }
}
