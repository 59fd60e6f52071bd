//! Other Prometheus-compatible query APIs (docs/interface.md: "any
//! Prometheus-compatible query API"): the same world in VictoriaMetrics,
//! the same expected figures.

use std::time::Duration;

use crate::dataset::{world, START};
use crate::events::{openmetrics, sum_events, Generated, HOUR, T0};
use crate::expect::{assert_all, Expected, REL};
use crate::fixtures::{slo, spec};
use crate::harness::{self, poll, VictoriaMetrics, Workspace};

/// MetricsQL's `rate()` takes the last sample before (T−W, T] as its base
/// and does not extrapolate, so at minute-aligned instants it too counts
/// exactly the events in (T−W, T]: the tolerances of `expect` apply as is.
#[test]
fn victoria_metrics_backend() {
    let gens: Vec<Generated> = world()
        .into_iter()
        .filter(|s| ["steady", "incident", "resets", "grouped"].contains(&s.service))
        .map(|s| s.generate(START, T0))
        .collect();
    let vm = VictoriaMetrics::start();
    vm.import(&openmetrics(&gens, START, T0 + 1));
    // Imported rows become searchable shortly after the flush: wait until
    // the 1h increase matches the model (bounded).
    let (total, _) = sum_events(
        gens.iter().filter(|g| g.series.service == "steady"),
        T0,
        HOUR,
    );
    let seen = poll(Duration::from_secs(30), || {
        let q = "sum(increase(http_requests_total{service=\"steady\"}[1h]))";
        vm.query_value(q, T0)
            .filter(|v| (v - total as f64).abs() < 0.5)
    });
    assert!(
        seen.is_some(),
        "VictoriaMetrics never returned the modelled 1h count {total}"
    );

    let ws = Workspace::new();
    let specs = [
        spec(
            "steady",
            "sre",
            &[slo("availability", "99.9", "steady", false)],
        ),
        spec(
            "incident",
            "sre",
            &[slo("availability", "99.9", "incident", false)],
        ),
        spec(
            "resets",
            "sre",
            &[slo("availability", "99.5", "resets", false)],
        ),
    ];
    let cfg = ws.config(
        &vm.url(),
        "30s",
        &[
            ("s.yaml", &specs[0]),
            ("i.yaml", &specs[1]),
            ("r.yaml", &specs[2]),
        ],
    );
    let doc = harness::eval_json(&cfg, T0);
    let pick = |name: &str| {
        gens.iter()
            .filter(|g| g.series.service == name)
            .collect::<Vec<_>>()
    };
    let exp = |service: &'static str, objective: f64| Expected {
        service,
        slo: "availability",
        objective_percent: objective,
        period: 30 * 86_400,
        labels: vec![("team", "sre")],
        gens: pick(service),
        at: T0,
        rel: REL,
    };
    assert_all(
        &doc,
        &[
            exp("steady", 99.9),
            exp("incident", 99.9),
            exp("resets", 99.5),
        ],
    );
}
