//! `errbudget run` as a user runs it: against a Prometheus whose data ends
//! at the current minute, on a free loopback port, driven over HTTP and by
//! signals.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;

use crate::events::{Generated, Series, Traffic};
use crate::fixtures::{slo, spec};
use crate::harness::day_ending_now;
use crate::harness::{self, poll, Daemon, Prometheus, Workspace};
use crate::http;
use crate::interface::{documented_series, is_sample_of};

/// Documented series with no label values, so no sample, in a daemon with
/// no alert receiver and no `--storage.path`.
const WITHOUT_SAMPLES_HERE: [&str; 8] = [
    "errbudget_notifications_total",
    "slo_deployments_total",
    "errbudget_storage_writes_total",
    "errbudget_storage_last_write_bytes",
    // Calendar periods and maintenance windows only (`compliance` checks
    // them on such an SLO).
    "slo_period_start_timestamp_seconds",
    "slo_period_end_timestamp_seconds",
    "slo_period_excluded_seconds",
    "slo_excluded_seconds",
];

/// A Prometheus whose data ends at the current minute: one day of a steady
/// service, so `errbudget run` has figures at its default "now".
struct Live {
    prom: Prometheus,
    _gens: Vec<Generated>,
}

fn live() -> Live {
    let (prom, gens) = day_ending_now(|_| {
        vec![Series {
            service: "live",
            labels: vec![],
            traffic: Traffic::Steady {
                base: 500,
                spread: 50,
                p: 0.002,
                incidents: vec![],
            },
            resets: vec![],
            histogram: false,
            seed: 11,
        }]
    });
    Live { prom, _gens: gens }
}

fn live_spec(slos: &[&str]) -> String {
    let v: Vec<_> = slos.iter().map(|n| slo(n, "99.9", "live", false)).collect();
    spec("live", "sre", &v)
}

/// `name{labels} value` samples of a text exposition.
pub fn samples(body: &str) -> Vec<(String, BTreeMap<String, String>, String)> {
    let mut out = vec![];
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut map = BTreeMap::new();
        // Label values in these tests hold no `",` sequences.
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            if let Some((k, v)) = pair.split_once("=\"") {
                map.insert(k.trim().to_string(), v.trim_end_matches('"').to_string());
            }
        }
        out.push((name.to_string(), map, value.to_string()));
    }
    out
}

pub fn value_of(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<String> {
    samples(body)
        .into_iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
}

fn wait_ready(d: &Daemon) {
    let ok = poll(Duration::from_secs(60), || {
        (d.get("/-/ready").status == 200).then_some(())
    });
    assert!(
        ok.is_some(),
        "/-/ready not 200 within 60s\n{}",
        d.guard.log_tail()
    );
}

fn slo_names(d: &Daemon) -> Vec<String> {
    let r = d.get("/api/v1/slos");
    assert_eq!(r.status, 200, "/api/v1/slos: {}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("/api/v1/slos JSON");
    v["slos"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["slo"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Health, readiness, `/metrics` (every docs/interface.md series, promtool-clean),
/// `/api/v1/slos` (docs/interface.md shape, same figures as `eval` at the same
/// instant), `/` answers.
#[test]
fn serves_contract_endpoints() {
    let lw = live();
    let ws = Workspace::new();
    let cfg = ws.config(
        &lw.prom.url(),
        "2s",
        &[("live.yaml", &live_spec(&["availability"]))],
    );
    let d = Daemon::start(&cfg);
    wait_ready(&d);

    let m = d.get("/metrics");
    assert_eq!(m.status, 200);
    let names: Vec<String> = samples(&m.body).into_iter().map(|s| s.0).collect();
    let documented = documented_series();
    let missing: Vec<&str> = documented
        .iter()
        .filter(|(n, _)| !WITHOUT_SAMPLES_HERE.contains(&n.as_str()))
        .filter(|(n, kind)| !names.iter().any(|x| is_sample_of(x, n, kind)))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "documented series {missing:?} not exposed in:\n{}",
        m.body
    );
    let undocumented: BTreeSet<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|x| x.starts_with("slo_") || x.starts_with("errbudget_"))
        .filter(|x| !documented.iter().any(|(n, kind)| is_sample_of(x, n, kind)))
        .collect();
    assert!(
        undocumented.is_empty(),
        "exposed series {undocumented:?} are not in docs/interface.md"
    );
    for line in m.body.lines() {
        let Some((name, kind)) = line.strip_prefix("# TYPE ").and_then(|t| t.split_once(' '))
        else {
            continue;
        };
        if let Some((_, doc_kind)) = documented.iter().find(|(n, _)| n == name) {
            assert_eq!(kind, doc_kind, "# TYPE of {name} vs docs/interface.md");
        }
    }
    for (name, labels, _) in samples(&m.body).iter().filter(|s| s.0.starts_with("slo_")) {
        assert_eq!(
            labels.get("service").map(String::as_str),
            Some("live"),
            "{name} {labels:?}"
        );
        assert_eq!(
            labels.get("slo").map(String::as_str),
            Some("availability"),
            "{name} {labels:?}"
        );
        assert_eq!(
            labels.get("team").map(String::as_str),
            Some("sre"),
            "spec label on {name}"
        );
    }
    assert_eq!(
        value_of(
            &m.body,
            "slo_evaluation_success",
            &[("slo", "availability")]
        )
        .as_deref(),
        Some("1")
    );
    let (code, out) = harness::promtool_with_stdin(&["check", "metrics"], &m.body);
    assert!(
        code == Some(0) && out.trim().is_empty(),
        "promtool check metrics: {code:?}\n{out}"
    );

    let api = d.get("/api/v1/slos");
    assert_eq!(api.status, 200);
    let doc: Value = serde_json::from_str(&api.body).expect("/api/v1/slos JSON");
    crate::eval::assert_contract_shape(&doc);
    assert_eq!(slo_names(&d), vec!["availability".to_string()]);

    // The daemon and `eval` at the same instant over the same data agree.
    let ev = harness::eval_json(&cfg, harness::evaluated_at(&doc));
    let (a, b) = (&doc["slos"][0], &ev["slos"][0]);
    for f in ["period_error_ratio", "error_budget_remaining_ratio"] {
        let (x, y) = (
            a[f].as_f64().unwrap_or(f64::NAN),
            b[f].as_f64().unwrap_or(f64::NAN),
        );
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(1e-9),
            "{f}: daemon {x}, eval {y}"
        );
    }

    assert_eq!(d.get("/").status, 200, "status page");
}

/// A broken config is rejected by `POST /-/reload` (500, old SLOs still
/// served, `errbudget_config_last_reload_successful` 0); SIGHUP after the
/// fix loads it; SIGTERM ends the process with 0 within 5 s.
#[test]
fn reload_keeps_old_config_then_sighup_and_sigterm() {
    let lw = live();
    let ws = Workspace::new();
    let cfg = ws.config(
        &lw.prom.url(),
        "1s",
        &[("live.yaml", &live_spec(&["availability"]))],
    );
    let mut d = Daemon::start(&cfg);
    wait_ready(&d);

    let broken = live_spec(&["availability"]).replace("objective: 99.9", "objective: 120");
    std::fs::write(ws.path("slos/live.yaml"), broken).expect("write broken spec");
    let r = http::post(d.addr, "/-/reload", "").expect("POST /-/reload");
    assert_eq!(r.status, 500, "reload of a broken config: {}", r.body);
    assert!(!r.body.trim().is_empty(), "500 must carry the errors");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        slo_names(&d),
        vec!["availability".to_string()],
        "old SLOs kept"
    );
    let m = d.get("/metrics").body;
    assert_eq!(
        value_of(&m, "errbudget_config_last_reload_successful", &[]).as_deref(),
        Some("0"),
        "{m}"
    );
    assert_eq!(
        value_of(&m, "slo_evaluation_success", &[("slo", "availability")]).as_deref(),
        Some("1")
    );

    std::fs::write(
        ws.path("slos/live.yaml"),
        live_spec(&["availability", "availability-2"]),
    )
    .expect("write fixed spec");
    d.guard.signal("HUP");
    let reloaded = poll(Duration::from_secs(30), || {
        let names = slo_names(&d);
        let m = d.get("/metrics").body;
        (names.len() == 2
            && value_of(&m, "errbudget_config_last_reload_successful", &[]).as_deref() == Some("1"))
        .then_some(names)
    });
    assert!(
        reloaded.is_some(),
        "SIGHUP did not load the fixed config\n{}",
        d.guard.log_tail()
    );

    d.guard.signal("TERM");
    let st = d.guard.wait_exit(Duration::from_secs(5));
    assert!(
        st.is_some(),
        "still running 5s after SIGTERM\n{}",
        d.guard.log_tail()
    );
    assert_eq!(
        st.and_then(|s| s.code()),
        Some(0),
        "exit status after SIGTERM"
    );
}

/// Prometheus unreachable from the start: `/metrics` still answers with
/// `slo_evaluation_success 0`, and `eval` exits 1.
#[test]
fn prometheus_down() {
    let closed = format!("http://127.0.0.1:{}", harness::free_port());
    let ws = Workspace::new();
    let cfg = ws.config(
        &closed,
        "1s",
        &[("live.yaml", &live_spec(&["availability"]))],
    );
    let d = Daemon::start(&cfg);
    let zero = poll(Duration::from_secs(30), || {
        let m = d.get("/metrics");
        (m.status == 200
            && value_of(
                &m.body,
                "slo_evaluation_success",
                &[("slo", "availability")],
            )
            .as_deref()
                == Some("0"))
        .then_some(())
    });
    assert!(
        zero.is_some(),
        "no slo_evaluation_success 0\n{}",
        d.get("/metrics").body
    );
    assert_eq!(d.get("/-/healthy").status, 200);

    let (code, out, err) = harness::eval(&cfg, 1_790_812_800);
    assert_eq!(code, Some(1), "eval against a closed port\n{out}\n{err}");
    // The JSON still lists the SLO, as `error` with the reason.
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("eval JSON: {e}\n{out}"));
    let s = &doc["slos"][0];
    assert_eq!(s["status"], "error", "{s}");
    assert!(
        s["error"].as_str().is_some_and(|m| !m.is_empty()),
        "error message: {s}"
    );
}

/// Prometheus goes away after the first evaluation: the last figures stay
/// exposed (a dashboard never goes blank), success drops to 0 and the
/// last-evaluation timestamp stops moving.
#[test]
fn keeps_last_figures_when_prometheus_goes_away() {
    let mut lw = live();
    let ws = Workspace::new();
    let cfg = ws.config(
        &lw.prom.url(),
        "1s",
        &[("live.yaml", &live_spec(&["availability"]))],
    );
    let d = Daemon::start(&cfg);
    wait_ready(&d);
    let before = d.get("/metrics").body;
    let ratio = value_of(
        &before,
        "slo_period_error_ratio",
        &[("slo", "availability")],
    );
    assert!(ratio.is_some(), "{before}");

    if let Some(mut c) = lw.prom.guard.child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let after = poll(Duration::from_secs(30), || {
        let m = d.get("/metrics").body;
        (value_of(&m, "slo_evaluation_success", &[("slo", "availability")]).as_deref() == Some("0"))
            .then_some(m)
    })
    .unwrap_or_else(|| panic!("success never dropped to 0\n{}", d.guard.log_tail()));
    assert_eq!(
        value_of(&after, "slo_period_error_ratio", &[("slo", "availability")]),
        ratio
    );
    let ts = value_of(
        &after,
        "slo_last_evaluation_timestamp_seconds",
        &[("slo", "availability")],
    );
    std::thread::sleep(Duration::from_secs(3));
    let later = d.get("/metrics").body;
    assert_eq!(
        value_of(
            &later,
            "slo_last_evaluation_timestamp_seconds",
            &[("slo", "availability")]
        ),
        ts,
        "timestamp of the last successful evaluation must not advance"
    );
    assert_eq!(
        value_of(&later, "slo_period_error_ratio", &[("slo", "availability")]),
        ratio
    );
}
