//! `errbudget convert` end to end: SLOs written for Pyrra and OpenSLO (an
//! SLO, its SLI and its alert policy in separate files, and Sloth's
//! `openslo/v1alpha`) are converted; the original and the converted specs
//! are evaluated against the same Prometheus at the same instant and must
//! give the same figures, which in turn match the generated events.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::dataset::World;
use crate::events::{sum_events, HOUR, T0};
use crate::harness::{self, run_bounded, Workspace};

const PYRRA: &str = r#"apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: routes
  namespace: grouped
spec:
  target: "99"
  window: 30d
  indicator:
    ratio:
      errors:
        metric: http_requests_total{service="grouped",code="500"}
      total:
        metric: http_requests_total{service="grouped"}
      grouping: [route]
---
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: fast
  namespace: latency
spec:
  target: "99"
  window: 28d
  indicator:
    latency:
      success:
        metric: http_request_duration_seconds_bucket{service="latency",le="0.3"}
      total:
        metric: http_request_duration_seconds_count{service="latency"}
---
apiVersion: pyrra.dev/v1alpha1
kind: ServiceLevelObjective
metadata:
  name: native
  namespace: latency
spec:
  target: "99"
  window: 28d
  indicator:
    latencyNative:
      latency: 300ms
      total:
        metric: native_request_duration_seconds{service="latency"}
"#;

const OPENSLO_SLO: &str = r#"apiVersion: openslo/v1
kind: SLO
metadata:
  name: availability
spec:
  service: incident
  indicatorRef: incident-good
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
  alertPolicies:
    - alertPolicyRef: fast-burn
"#;

const OPENSLO_SLI: &str = r#"apiVersion: openslo/v1
kind: SLI
metadata:
  name: incident-good
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec:
          query: sum(http_requests_total{service="incident",code!="500"})
    total:
      metricSource:
        type: Prometheus
        spec:
          query: sum(http_requests_total{service="incident"})
"#;

const OPENSLO_POLICY: &str = r#"- apiVersion: openslo/v1
  kind: AlertPolicy
  metadata:
    name: fast-burn
  spec:
    alertWhenBreaching: true
    conditions:
      - conditionRef: fast
    notificationTargets:
      - targetRef: pager
- apiVersion: openslo/v1
  kind: AlertCondition
  metadata:
    name: fast
  spec:
    severity: page
    condition:
      kind: burnrate
      op: gt
      threshold: 14.4
      lookbackWindow: 1h
      alertAfter: 5m
"#;

const OPENSLO_ALPHA: &str = r#"apiVersion: openslo/v1alpha
kind: SLO
metadata:
  name: steady-requests
spec:
  service: steady
  budgetingMethod: Occurrences
  objectives:
    - ratioMetrics:
        good:
          source: prometheus
          queryType: promql
          query: sum(rate(http_requests_total{service="steady",code!="500"}[{{.window}}]))
        total:
          source: prometheus
          queryType: promql
          query: sum(rate(http_requests_total{service="steady"}[{{.window}}]))
      target: 0.999
  timeWindows:
    - count: 30
      unit: Day
"#;

fn find<'a>(doc: &'a Value, service: &str, slo: &str, route: Option<&str>) -> &'a Value {
    doc["slos"]
        .as_array()
        .and_then(|l| {
            l.iter().find(|s| {
                s["service"] == service
                    && s["slo"] == slo
                    && route.is_none_or(|r| s["labels"]["route"] == r)
            })
        })
        .unwrap_or_else(|| panic!("{service}/{slo} {route:?} missing in {doc:#}"))
}

#[test]
fn converted_specs_evaluate_like_the_originals() {
    let w = World::start();
    let original = Workspace::new();
    let cfg = original.config(
        &w.prom.url(),
        "30s",
        &[
            ("pyrra.yaml", PYRRA),
            ("slo.yaml", OPENSLO_SLO),
            ("sli.yaml", OPENSLO_SLI),
            ("policy.yaml", OPENSLO_POLICY),
            ("alpha.yaml", OPENSLO_ALPHA),
        ],
    );
    let (code, converted, err) = run_bounded(
        Command::new(harness::errbudget_bin())
            .args(["convert", "--config.file"])
            .arg(&cfg),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "convert failed:\n{err}");
    assert!(
        converted.contains("version: \"prometheus/v1\""),
        "{converted}"
    );
    let moved = Workspace::new();
    let cfg2 = moved.config(&w.prom.url(), "30s", &[("converted.yaml", &converted)]);

    let a = harness::eval_json(&cfg, T0);
    let b = harness::eval_json(&cfg2, T0);
    let count = a["slos"].as_array().map_or(0, Vec::len);
    // 3 routes, latency, native, incident, steady.
    assert_eq!(count, 7, "{a:#}");
    // The world has no native histograms: Prometheus accepts the
    // histogram_count / histogram_fraction queries and finds no series.
    assert_eq!(find(&a, "latency", "native", None)["status"], "no_data");
    for s in a["slos"].as_array().into_iter().flatten() {
        let route = s["labels"]["route"].as_str();
        let other = find(
            &b,
            s["service"].as_str().unwrap_or_default(),
            s["slo"].as_str().unwrap_or_default(),
            route,
        );
        assert_eq!(s, other, "original and converted differ\n{converted}");
        if s["slo"] != "native" {
            assert_eq!(s["status"], "ok", "{s:#}");
        }
    }

    // Against the generated events: the 2h error ratio of each kind (every
    // incident lies inside it), counted as the increase between the samples
    // around (T0−2h, T0] on every backend: the tolerance of the accuracy
    // tests (`expect`).
    let ratio = |(total, bad): (u64, u64)| bad as f64 / total as f64;
    let checks = [
        (
            "grouped",
            "routes",
            Some("/c"),
            ratio(sum_events([w.route("grouped", "/c")], T0, 2 * HOUR)),
        ),
        (
            "latency",
            "fast",
            None,
            ratio(sum_events(w.service("latency"), T0, 2 * HOUR)),
        ),
        (
            "incident",
            "availability",
            None,
            ratio(sum_events(w.service("incident"), T0, 2 * HOUR)),
        ),
        (
            "steady",
            "steady-requests-0",
            None,
            ratio(sum_events(w.service("steady"), T0, 2 * HOUR)),
        ),
    ];
    for (service, slo, route, want) in checks {
        let got = find(&a, service, slo, route)["error_ratio"]["2h"]
            .as_f64()
            .unwrap_or(f64::NAN);
        assert!(
            (got - want).abs() <= crate::expect::prometheus_rel() * want,
            "{service}/{slo} 2h: {got} vs events {want}"
        );
    }
    // The OpenSLO condition became one page pair, 1h/5m at 14.4.
    let alerts = &find(&a, "incident", "availability", None)["alerts"];
    assert_eq!(alerts.as_array().map_or(0, Vec::len), 1, "{alerts:#}");
    assert_eq!(alerts[0]["long_window"], "1h");
    assert_eq!(alerts[0]["short_window"], "5m");
    assert_eq!(alerts[0]["burn_rate_threshold"], 14.4);
}

/// `check DIR` reads every `.yml` / `.yaml` below it, as Sloth reads
/// `-i DIR`, and skips other files.
#[test]
fn check_reads_directories() {
    let ws = Workspace::new();
    let nested = ws.path("specs/openslo");
    std::fs::create_dir_all(&nested).expect("mkdir");
    std::fs::write(ws.path("specs/pyrra.yaml"), PYRRA).expect("write");
    std::fs::write(nested.join("slo.yml"), OPENSLO_SLO).expect("write");
    std::fs::write(nested.join("sli.yaml"), OPENSLO_SLI).expect("write");
    std::fs::write(nested.join("policy.yaml"), OPENSLO_POLICY).expect("write");
    std::fs::write(ws.path("specs/notes.txt"), "not: [a spec").expect("write");
    let (code, out, err) = run_bounded(
        Command::new(harness::errbudget_bin())
            .arg("check")
            .arg(ws.path("specs")),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.trim(), "OK: 4 SLOs");
}
