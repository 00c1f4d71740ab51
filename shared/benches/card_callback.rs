//! What a card click costs us in CPU on the largest incident we accept (ARCHITECTURE.md
//! §5.8): the answer's card parameters and their content hash, the robot message, and
//! bounding a probe-sized alert (10,000 labels) at the door. The callback must answer
//! DingTalk within 2 s; before the bounds, a 10,000-label incident took 5.2 s.
//!
//! Run: `make bench-callback` (or `cargo bench -p shared --bench card_callback`).

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use shared::domain::bounds;
use shared::domain::incident::{Alert, AlertEvent, AlertStatus, Incident, Link, Severity};
use shared::domain::incident_state::new_incident;
use shared::domain::integration::Targets;
use shared::render::{self, RenderContext};

fn event(labels: usize, links: usize, description: usize) -> AlertEvent {
    AlertEvent {
        version: 1,
        integration_id: "int".into(),
        alert: Alert {
            key: "bench".into(),
            status: AlertStatus::Firing,
            severity: Severity::Critical,
            title: "告警 ".repeat(200),
            description: "**d** [r](https://x.example) <b>x</b> ".repeat(description / 40),
            labels: (0..labels)
                .map(|n| (format!("label{n:05}"), "v".repeat(9 * 1024)))
                .collect::<BTreeMap<_, _>>(),
            links: (0..links)
                .map(|n| Link {
                    title: "l".repeat(1024),
                    url: format!("https://links.example/{n}"),
                })
                .collect(),
            source: Some("alertmanager".into()),
            occurred_at: None,
        },
        targets: Targets::default(),
        truncated: Vec::new(),
        mention_mobiles: Vec::new(),
    }
}

/// The largest incident the bounds let through.
fn largest() -> Incident {
    let mut probe = event(10_000, 800, 900_000);
    bounds::bound(&mut probe);
    new_incident("inc".into(), &probe, 0, "2026-11-28T00:00:00Z", None)
}

fn bench(c: &mut Criterion) {
    let incident = largest();
    let ctx = RenderContext {
        base_url: "https://incidents.example",
        timezone: "Asia/Shanghai",
        mentions: &[],
        locale: shared::domain::locale::Locale::ZhCn,
        custom: None,
        silence_ready: false,
        now_ms: Some(1_795_860_000_000),
    };
    c.bench_function(
        "card answer: params + content hash, largest incident",
        |b| {
            b.iter(|| {
                let params = render::card_params(black_box(&incident), &ctx);
                black_box(render::content_hash(&params))
            })
        },
    );
    c.bench_function("robot message, largest incident", |b| {
        b.iter(|| black_box(render::alert_message(black_box(&incident), &ctx)))
    });
    c.bench_function("bound a probe-sized alert (10,000 labels of 9 KiB)", |b| {
        b.iter_batched(
            || event(10_000, 800, 900_000),
            |mut probe| black_box(bounds::bound(&mut probe)),
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
