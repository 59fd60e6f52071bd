//! `errbudget eval --at T --output json` against the backfilled world,
//! every figure compared with the event model (see `expect` for the
//! tolerances).

use serde_json::Value;

use crate::dataset::World;
use crate::events::{DAY, HOUR, MINUTE, T0};
use crate::expect::{assert_all, prometheus_rel, Expected, WINDOWS};
use crate::fixtures::{latency_spec, slo, spec, Slo};
use crate::harness::{self, rfc3339, Workspace};

const MONTH: i64 = 30 * DAY;

fn eval(w: &World, specs: &[(&str, &str)], at: i64) -> Value {
    let ws = Workspace::new();
    let cfg = ws.config(&w.prom.url(), "30s", specs);
    harness::eval_json(&cfg, at)
}

fn expected<'a>(
    w: &'a World,
    service: &'a str,
    slo: &'a str,
    objective: f64,
    at: i64,
) -> Expected<'a> {
    Expected {
        service,
        slo,
        objective_percent: objective,
        period: MONTH,
        labels: vec![("team", "sre")],
        gens: w.service(service),
        at,
        rel: prometheus_rel(),
    }
}

#[test]
fn steady_low_error_rate() {
    let w = World::start();
    let doc = eval(
        &w,
        &[(
            "steady.yaml",
            &spec(
                "steady",
                "sre",
                &[slo("availability", "99.9", "steady", false)],
            ),
        )],
        T0,
    );
    assert_eq!(doc["evaluated_at"], rfc3339(T0), "evaluated_at");
    assert_all(&doc, &[expected(&w, "steady", "availability", 99.9, T0)]);
}

/// An incident 50–70 minutes before T: 30m sees none of it, 1h half of it,
/// 2h all of it, 6h diluted; evaluated again 55 minutes before T0, in the
/// middle of it, when the 5m window burns at ~400× and the page fires.
#[test]
fn incident_seen_differently_by_windows() {
    let w = World::start();
    let s = spec(
        "incident",
        "sre",
        &[slo("availability", "99.9", "incident", false)],
    );
    for at in [T0, T0 - 55 * MINUTE] {
        let doc = eval(&w, &[("incident.yaml", &s)], at);
        let e = expected(&w, "incident", "availability", 99.9, at);
        assert_all(&doc, &[e]);
    }
    // The scenario discriminates: 30m sees only the baseline, 1h half the
    // incident, 2h all of it (twice 1h's bad events), 6h a diluted share.
    let e = expected(&w, "incident", "availability", 99.9, T0);
    let r: Vec<f64> = WINDOWS.iter().map(|(_, s)| e.window_ratio(*s)).collect();
    let bad = |win: i64| crate::events::sum_events(e.gens.iter().copied(), T0, win).1;
    assert!(r[2] > 20.0 * r[1] && r[4] < 0.5 * r[3], "{r:?}");
    assert!(
        bad(2 * HOUR) as f64 > 1.8 * bad(HOUR) as f64,
        "incident must lie half in 1h"
    );
}

/// Between 5-minute boundaries and off the minute and 15 s grids: every
/// window is far edge + 5-minute buckets + head, each the increase between
/// the samples around it, so the figures are as exact as on a boundary.
#[test]
fn instants_between_bucket_boundaries() {
    let w = World::start();
    let specs = [
        spec(
            "incident",
            "sre",
            &[slo("availability", "99.9", "incident", false)],
        ),
        spec(
            "diurnal",
            "sre",
            &[slo("availability", "99", "diurnal", false)],
        ),
        spec(
            "resets",
            "sre",
            &[slo("availability", "99.5", "resets", false)],
        ),
    ];
    for at in [
        T0 - 7 * MINUTE,
        T0 - 22 * MINUTE + 15,
        T0 - 58 * MINUTE - 37,
    ] {
        let doc = eval(
            &w,
            &[
                ("i.yaml", &specs[0]),
                ("d.yaml", &specs[1]),
                ("r.yaml", &specs[2]),
            ],
            at,
        );
        assert_all(
            &doc,
            &[
                expected(&w, "incident", "availability", 99.9, at),
                expected(&w, "diurnal", "availability", 99.0, at),
                expected(&w, "resets", "availability", 99.5, at),
            ],
        );
    }
}

/// `sli.latency` (histogram threshold 0.3 s): the error ratio is the
/// share of requests slower than the threshold, with a slow spell
/// 25–45 minutes before T0; evaluated at T0 and inside the spell.
#[test]
fn latency_histogram_sli() {
    let w = World::start();
    let s = latency_spec("latency", "sre", "latency", "99", "0.3");
    for at in [T0, T0 - 30 * MINUTE] {
        let doc = eval(&w, &[("latency.yaml", &s)], at);
        assert_all(&doc, &[expected(&w, "latency", "latency", 99.0, at)]);
    }
}

/// Busy days, quiet nights and a 50% burst in a quiet hour: the ratio must
/// be weighted by events; the average of per-minute ratios is >10× off
/// (asserted in `selftest::diurnal_model_discriminates_weighting`).
#[test]
fn traffic_weighting_by_events() {
    let w = World::start();
    let doc = eval(
        &w,
        &[(
            "diurnal.yaml",
            &spec(
                "diurnal",
                "sre",
                &[slo("availability", "99", "diurnal", false)],
            ),
        )],
        T0,
    );
    assert_all(&doc, &[expected(&w, "diurnal", "availability", 99.0, T0)]);
}

/// Restarts drop the counters to 0 within the 1h, 6h, 3d and 30d windows.
#[test]
fn counter_resets() {
    let w = World::start();
    let doc = eval(
        &w,
        &[(
            "resets.yaml",
            &spec(
                "resets",
                "sre",
                &[slo("availability", "99.5", "resets", false)],
            ),
        )],
        T0,
    );
    assert_all(&doc, &[expected(&w, "resets", "availability", 99.5, T0)]);
}

/// Counters present but flat: no budget spent. Error ratio 0 (not NaN),
/// remaining 1. docs/interface.md: "No traffic in a window means no budget spent".
#[test]
fn flat_counters_spend_no_budget() {
    let w = World::start();
    let doc = eval(
        &w,
        &[(
            "flat.yaml",
            &spec("flat", "sre", &[slo("availability", "99.9", "flat", false)]),
        )],
        T0,
    );
    let e = expected(&w, "flat", "availability", 99.9, T0);
    let s = e.find(&doc);
    let status = s["status"].as_str().unwrap_or_default();
    assert!(
        status == "ok" || status == "no_data",
        "status {status}: {s}"
    );
    let errs = e.compare(s);
    assert!(errs.is_empty(), "{}", errs.join("\n"));
    assert_eq!(s["error_budget_remaining_ratio"].as_f64(), Some(1.0), "{s}");
}

/// Metrics that do not exist at all: status `no_data` (not `error`: the
/// query succeeded), eval still exits 0 (nothing failed), figures are 0 and
/// the budget is whole — never NaN or null.
#[test]
fn missing_metrics_are_no_data() {
    let w = World::start();
    let doc = eval(
        &w,
        &[(
            "ghost.yaml",
            &spec(
                "ghost",
                "sre",
                &[slo("availability", "99.9", "ghost", false)],
            ),
        )],
        T0,
    );
    let e = expected(&w, "ghost", "availability", 99.9, T0);
    let s = e.find(&doc);
    assert_eq!(s["status"], "no_data", "{s}");
    for (label, _) in WINDOWS {
        assert_eq!(
            s["error_ratio"][label].as_f64(),
            Some(0.0),
            "error_ratio[{label}]: {s}"
        );
        assert_eq!(
            s["burn_rate"][label].as_f64(),
            Some(0.0),
            "burn_rate[{label}]: {s}"
        );
    }
    assert_eq!(s["period_error_ratio"].as_f64(), Some(0.0), "{s}");
    assert_eq!(s["error_budget_remaining_ratio"].as_f64(), Some(1.0), "{s}");
}

/// Several services (and several spec files) in one config: every SLO
/// appears exactly once with its own figures, and the document has the
/// docs/interface.md shape.
#[test]
fn several_services_in_one_config() {
    let w = World::start();
    let a = spec(
        "steady",
        "sre",
        &[slo("availability", "99.9", "steady", false)],
    );
    let b = spec(
        "incident",
        "sre",
        &[
            slo("availability", "99.9", "incident", false),
            slo("availability-loose", "99", "incident", false),
        ],
    );
    let c = spec(
        "diurnal",
        "sre",
        &[slo("availability", "99", "diurnal", false)],
    );
    let d = spec(
        "resets",
        "sre",
        &[slo("availability", "99.5", "resets", false)],
    );
    let doc = eval(
        &w,
        &[
            ("a.yaml", &a),
            ("b.yaml", &b),
            ("c.yaml", &c),
            ("d.yaml", &d),
        ],
        T0,
    );
    assert_eq!(doc["slos"].as_array().map(Vec::len), Some(5), "{doc}");
    assert_shape(&doc);
    assert_all(
        &doc,
        &[
            expected(&w, "steady", "availability", 99.9, T0),
            expected(&w, "incident", "availability", 99.9, T0),
            expected(&w, "incident", "availability-loose", 99.0, T0),
            expected(&w, "diurnal", "availability", 99.0, T0),
            expected(&w, "resets", "availability", 99.5, T0),
        ],
    );
}

/// `period: 28d`: an old incident 29 days before T0 is inside the 30d
/// period but outside 28d, so the two SLOs' period figures differ.
#[test]
fn period_28d() {
    let w = World::start();
    let mut s28 = slo("availability-28d", "99.9", "incident", false);
    s28.period = Some("28d");
    let s30: Slo = slo("availability", "99.9", "incident", false);
    let doc = eval(
        &w,
        &[("incident.yaml", &spec("incident", "sre", &[s28, s30]))],
        T0,
    );
    let mut e28 = expected(&w, "incident", "availability-28d", 99.9, T0);
    e28.period = 28 * DAY;
    let e30 = expected(&w, "incident", "availability", 99.9, T0);
    let (p28, p30) = (e28.period_events(), e30.period_events());
    let r = |(t, b): (u64, u64)| b as f64 / t as f64;
    assert!(
        r(p30) > 1.5 * r(p28),
        "scenario must separate 28d from 30d: {p28:?} {p30:?}"
    );
    assert_all(&doc, &[e28, e30]);
}

/// `sum by (route)`: each route is its own instance carrying `route`.
#[test]
fn grouped_by_route() {
    let w = World::start();
    let doc = eval(
        &w,
        &[(
            "grouped.yaml",
            &spec(
                "grouped",
                "sre",
                &[slo("availability", "99", "grouped", true)],
            ),
        )],
        T0,
    );
    let instances = doc["slos"].as_array().map(Vec::len);
    assert_eq!(instances, Some(3), "one instance per route: {doc}");
    let exp: Vec<Expected> = ["/a", "/b", "/c"]
        .into_iter()
        .map(|route| Expected {
            labels: vec![("team", "sre"), ("route", route)],
            gens: vec![w.route("grouped", route)],
            ..expected(&w, "grouped", "availability", 99.0, T0)
        })
        .collect();
    assert_all(&doc, &exp);
}

/// Field types of the docs/interface.md JSON document.
fn assert_shape(doc: &Value) {
    assert!(doc["evaluated_at"].is_string(), "evaluated_at: {doc}");
    for s in doc["slos"].as_array().expect("slos") {
        for f in ["service", "slo", "status"] {
            assert!(s[f].is_string(), "{f}: {s}");
        }
        assert!(s["labels"].is_object(), "labels: {s}");
        for f in [
            "objective",
            "period_seconds",
            "period_error_ratio",
            "error_budget_remaining_ratio",
            "error_budget_seconds",
            "error_budget_remaining_seconds",
        ] {
            assert!(s[f].is_number(), "{f}: {s}");
        }
        for f in ["error_ratio", "burn_rate"] {
            let o = s[f].as_object().unwrap_or_else(|| panic!("{f}: {s}"));
            assert!(o.values().all(Value::is_number), "{f}: {s}");
        }
        assert!(
            s["period_events"]["total"].is_number(),
            "period_events: {s}"
        );
        assert!(s["period_events"]["bad"].is_number(), "period_events: {s}");
        assert!(s["release_frozen"].is_boolean(), "release_frozen: {s}");
        for a in s["alerts"]
            .as_array()
            .unwrap_or_else(|| panic!("alerts: {s}"))
        {
            assert!(
                a["severity"].is_string() && a["firing"].is_boolean(),
                "alert: {a}"
            );
            assert!(
                a["long_window"].is_string() && a["short_window"].is_string(),
                "alert: {a}"
            );
            assert!(a["burn_rate_threshold"].is_number(), "alert: {a}");
        }
    }
}

pub fn assert_contract_shape(doc: &Value) {
    assert_shape(doc)
}

/// The range semantics a Prometheus build must have, from its own
/// `--version` output (independent of errbudget's probes): 2.x closed
/// ranges, 3.x left-open ones (the `anchored` modifier needs a feature flag
/// these tests do not set).
fn prometheus_semantics(bin: &str) -> &'static str {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{bin} --version: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let version = text
        .split_whitespace()
        .skip_while(|w| *w != "version")
        .nth(1)
        .unwrap_or_else(|| panic!("no version in {text:?}"));
    match version.split('.').next() {
        Some("2") => "closed",
        Some("3") => "left_open",
        _ => panic!("unknown Prometheus version {version}"),
    }
}

/// `errbudget_backend_info` on a running daemon: what it detected by
/// probing, on the Prometheus and the VictoriaMetrics under test.
#[test]
fn backend_semantics_detected_by_probing() {
    let prom = harness::Prometheus::start_with(None, "scrape_configs: []\n");
    let vm = harness::VictoriaMetrics::start();
    // VictoriaMetrics documents its base (the last sample before the range)
    // for every version; its Debian builds print no version.
    let cases = [
        (
            prom.url(),
            crate::bins::prometheus(),
            "prometheus",
            prometheus_semantics(crate::bins::prometheus()),
        ),
        (
            vm.url(),
            crate::bins::victoria_metrics(),
            "victoriametrics",
            "last_sample_before",
        ),
    ];
    for (url, bin, product, want) in cases {
        let ws = Workspace::new();
        let s = spec(
            "steady",
            "sre",
            &[slo("availability", "99.9", "steady", false)],
        );
        let cfg = ws.config(&url, "1s", &[("s.yaml", &s)]);
        let daemon = harness::Daemon::start(&cfg);
        let line = harness::poll(std::time::Duration::from_secs(30), || {
            let body = daemon.get("/metrics").body;
            body.lines()
                .find(|l| l.starts_with("errbudget_backend_info{"))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| {
            panic!(
                "no errbudget_backend_info for {bin} ({})\n{}",
                crate::bins::backends(),
                daemon.guard.log_tail()
            )
        });
        assert!(
            line.contains(&format!("semantics=\"{want}\""))
                && line.contains(&format!("product=\"{product}\""))
                && line.ends_with(" 1"),
            "{bin}: {line}"
        );
    }
}
