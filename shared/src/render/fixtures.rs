//! Sample incidents for the renderers' tests.

use std::collections::BTreeMap;

use super::RenderContext;
use crate::domain::incident::{Incident, IncidentStatus, Severity};
use crate::domain::integration::Targets;

pub fn incident(description: &str) -> Incident {
    Incident {
        id: "inc1".into(),
        integration_id: "int1".into(),
        key: "k".into(),
        status: IncidentStatus::Triggered,
        severity: Severity::Critical,
        title: "p99 latency above 2s".into(),
        description: description.into(),
        labels: BTreeMap::from([("service".into(), "payments".into())]),
        links: vec![],
        source: None,
        targets: Targets::default(),
        opened_at: "2026-11-24T01:02:03Z".into(),
        started_at: None,
        updated_at: "2026-11-24T01:02:03Z".into(),
        resolved_at: None,
        acked_by: None,
        resolved_by: None,
        snoozed_until: None,
        last_event_ms: 0,
        event_count: 1,
        version: 1,
        assignees: Vec::new(),
        escalation: None,
        silence: None,
    }
}

pub fn ctx<'a>(mentions: &'a [(String, String)]) -> RenderContext<'a> {
    RenderContext {
        base_url: "https://x.example",
        timezone: "Asia/Shanghai",
        mentions,
        locale: crate::domain::locale::Locale::EnUs,
        custom: None,
        silence_ready: false,
        now_ms: None,
    }
}
