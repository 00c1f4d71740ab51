//! Silence and Unsilence (ARCHITECTURE.md §11): a real Alertmanager silence made
//! from an incident's labels, remembered on the incident (`silence`) and in its
//! timeline (`silenced` / `unsilenced`). Alertmanager is called before anything is
//! written; when it fails, nothing changes but a `failed` record, and the person is
//! told why. A silence made while someone else silenced the same incident is
//! expired again, so an incident never holds two.

use tracing::{info, warn};

use super::{Action, ActionError, IncidentActions};
use crate::clock::rfc3339;
use crate::domain::incident::{Incident, OperationRecord, RecordKind};
use crate::domain::member::Member;
use crate::domain::refusal::Refusal;
use crate::domain::silence::{
    ActiveSilence, AlertmanagerConfig, Matcher, SilenceDuration, matchers_of, silence_body,
    unsilenceable,
};
use crate::infra::alertmanager::AlertmanagerError;
use crate::infra::crypto::random_nonce;
use crate::render::incident_url;
use crate::store::StoreError;

/// How often a silence write is retried against concurrent changes of the incident.
const WRITE_ATTEMPTS: usize = 5;

/// What the person is told when Alertmanager failed (the record keeps the English).
fn refusal_of(err: &AlertmanagerError) -> Refusal {
    match err {
        AlertmanagerError::Blocked(_) => Refusal::AlertmanagerUrlRefused,
        AlertmanagerError::Unreachable(_) | AlertmanagerError::NoAnswer(_) => {
            Refusal::AlertmanagerUnreachable
        }
        AlertmanagerError::Refused { status, .. } => {
            Refusal::AlertmanagerRefused { status: *status }
        }
        AlertmanagerError::BadAnswer => Refusal::AlertmanagerBadAnswer,
    }
}

/// Whether the incident's silence still runs at `now_ms`.
pub fn silence_active(incident: &Incident, now_ms: i64) -> bool {
    incident
        .silence
        .as_ref()
        .is_some_and(|silence| silence.runs_at(now_ms))
}

impl IncidentActions {
    /// Applies Silence or Unsilence to `current` as `actor`.
    pub(super) async fn silence(
        &self,
        current: Incident,
        actor: &Member,
        action: &Action,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        let integration = self
            .store
            .get_integration(&current.integration_id)
            .await?
            .ok_or(ActionError::NotFound)?;
        let base = integration.public_base_url.clone().unwrap_or_default();
        let config = integration.alertmanager.clone();
        match (action, config) {
            (Action::Silence(duration), config) => {
                if let Some(why) = unsilenceable(&current, config.is_some()) {
                    return Err(ActionError::NotApplicable(why));
                }
                if silence_active(&current, now_ms) {
                    return Ok(current);
                }
                let Some(config) = config else {
                    return Err(ActionError::NotApplicable(Refusal::NoAlertmanager));
                };
                let link = incident_url(&base, &current, None);
                self.create_silence(current, actor, (&config, *duration, &link), now_ms)
                    .await
            }
            (_, _) if current.silence.is_none() => Ok(current),
            (_, None) => Err(ActionError::NotApplicable(Refusal::AlertmanagerRemoved)),
            (_, Some(config)) => self.expire(current, actor, &config, now_ms).await,
        }
    }

    async fn create_silence(
        &self,
        current: Incident,
        actor: &Member,
        (config, duration, link): (&AlertmanagerConfig, SilenceDuration, &str),
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        let who = format!("{} <{}>", actor.name, actor.email);
        let matchers = matchers_of(&current);
        let until = rfc3339(now_ms + duration.millis());
        // The marker finds the silence again if Alertmanager made it but its answer
        // was lost (a timeout): adopted, never left behind untracked.
        let marker = format!("dtinc-{}", random_nonce(16));
        let comment = format!(
            "{} — silenced from DingTalk by {} for {}: {link} [{marker}]",
            current.title.chars().take(200).collect::<String>(),
            actor.name,
            duration.tag()
        );
        let body = silence_body(&matchers, (&rfc3339(now_ms), &until), &who, &comment);
        let id = match self.alertmanager.create_silence(config, &body).await {
            Ok(id) => id,
            Err(err) => match self.made_anyway(config, &matchers, &marker, &err).await {
                Some(id) => id,
                None => {
                    let why = format!("silence for {} not created: {err}", duration.tag());
                    return Err(self.failed(&current, &who, (why, &err), now_ms).await);
                }
            },
        };
        let silence = ActiveSilence {
            id: id.clone(),
            until: until.clone(),
            by: actor.name.clone(),
            alertmanager: Some(config.url.clone()),
        };
        let written = self
            .write_silence(current, Some(silence), now_ms, |fresh| {
                silence_active(fresh, now_ms)
            })
            .await;
        let next = match written {
            Ok((next, true)) => next,
            Ok((fresh, false)) => {
                self.discard(config, &id).await;
                return Ok(fresh);
            }
            Err(err) => {
                self.discard(config, &id).await;
                return Err(err);
            }
        };
        let shown: Vec<String> = matchers.iter().map(Matcher::display).collect();
        let detail = format!(
            "silenced for {} until {until} by {who}; matchers: {}",
            duration.tag(),
            shown.join(", ")
        );
        self.done(&next, RecordKind::Silenced, (&id, &detail, &who), now_ms)
            .await?;
        Ok(next)
    }

    /// After a create that got no answer: the silence Alertmanager made anyway, if
    /// it can be found by its marker.
    async fn made_anyway(
        &self,
        config: &AlertmanagerConfig,
        matchers: &[Matcher],
        marker: &str,
        err: &AlertmanagerError,
    ) -> Option<String> {
        if !matches!(err, AlertmanagerError::NoAnswer(_)) {
            return None;
        }
        match self
            .alertmanager
            .find_marked_silence(config, matchers, marker)
            .await
        {
            Ok(Some(id)) => {
                info!(silence = %id, "the silence was made though its answer was lost: adopted");
                Some(id)
            }
            Ok(None) => None,
            Err(lookup) => {
                warn!(error = %lookup, "could not ask Alertmanager whether the silence was made");
                None
            }
        }
    }

    async fn expire(
        &self,
        current: Incident,
        actor: &Member,
        config: &AlertmanagerConfig,
        now_ms: i64,
    ) -> Result<Incident, ActionError> {
        let who = format!("{} <{}>", actor.name, actor.email);
        let Some(silence) = current.silence.clone() else {
            return Ok(current);
        };
        if silence
            .alertmanager
            .as_ref()
            .is_some_and(|url| *url != config.url)
        {
            return Err(ActionError::NotApplicable(Refusal::SilenceElsewhere {
                id: silence.id.clone(),
            }));
        }
        if let Err(err) = self.alertmanager.expire_silence(config, &silence.id).await {
            let why = format!("silence {} not expired: {err}", silence.id);
            return Err(self.failed(&current, &who, (why, &err), now_ms).await);
        }
        let (next, written) = self
            .write_silence(current, None, now_ms, |fresh| {
                fresh.silence.as_ref().is_none_or(|s| s.id != silence.id)
            })
            .await?;
        if written {
            let detail = format!("unsilenced by {who}");
            self.done(
                &next,
                RecordKind::Unsilenced,
                (&silence.id, &detail, &who),
                now_ms,
            )
            .await?;
        }
        Ok(next)
    }

    /// Writes `silence` on the incident (conditional on its version). After a
    /// concurrent change it re-reads: if `settled` says the fresh incident already
    /// shows the outcome, that incident is returned unwritten (`false`).
    async fn write_silence(
        &self,
        mut current: Incident,
        silence: Option<ActiveSilence>,
        now_ms: i64,
        settled: impl Fn(&Incident) -> bool,
    ) -> Result<(Incident, bool), ActionError> {
        for _ in 0..WRITE_ATTEMPTS {
            let mut next = current.clone();
            next.silence = silence.clone();
            next.updated_at = rfc3339(now_ms);
            next.version = current.version + 1;
            match self.store.replace_incident(&next, current.version).await {
                Ok(()) => return Ok((next, true)),
                Err(StoreError::Conflict) => {}
                Err(err) => return Err(err.into()),
            }
            current = self
                .store
                .get_incident(&current.id)
                .await?
                .ok_or(ActionError::NotFound)?;
            if settled(&current) {
                return Ok((current, false));
            }
        }
        Err(ActionError::Conflict(Box::new(current)))
    }

    /// Expires a silence this action made but could not record (best effort: it
    /// ends on its own at its end time).
    async fn discard(&self, config: &AlertmanagerConfig, id: &str) {
        if let Err(err) = self.alertmanager.expire_silence(config, id).await {
            warn!(silence_id = id, error = %err, "could not expire a surplus silence");
        }
    }

    /// Records a failed call (`failed`, the reason in words) and returns the error
    /// to show.
    async fn failed(
        &self,
        incident: &Incident,
        who: &str,
        (why, err): (String, &AlertmanagerError),
        now_ms: i64,
    ) -> ActionError {
        warn!(integration_id = %incident.integration_id, incident_id = %incident.id, reason = %why, "Alertmanager call failed");
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind: RecordKind::Failed,
            target: Some("alertmanager".into()),
            detail: why.clone(),
            actor: Some(who.to_string()),
        };
        match self.store.add_record(&incident.id, now_ms, &record).await {
            Ok(()) => ActionError::Upstream(refusal_of(err)),
            Err(err) => ActionError::Store(err),
        }
    }

    /// The record, the card update and the upstream webhook of a silence change.
    async fn done(
        &self,
        next: &Incident,
        kind: RecordKind,
        (silence_id, detail, who): (&str, &str, &str),
        now_ms: i64,
    ) -> Result<(), ActionError> {
        info!(integration_id = %next.integration_id, incident_id = %next.id, silence_id, kind = ?kind, "silence applied");
        let record = OperationRecord {
            at: rfc3339(now_ms),
            kind,
            target: Some(silence_id.to_string()),
            detail: detail.to_string(),
            actor: Some(who.to_string()),
        };
        self.store.add_record(&next.id, now_ms, &record).await?;
        self.queue_change(next).await;
        if self
            .store
            .get_integration(&next.integration_id)
            .await?
            .is_some_and(|i| i.webhook_url.is_some())
        {
            let upstream = if kind == RecordKind::Silenced {
                "silenced"
            } else {
                "unsilenced"
            };
            self.queue_webhook(next, upstream, detail).await;
        }
        Ok(())
    }
}
