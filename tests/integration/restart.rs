//! `run --storage.path`: a restart resumes from the state file, reads only
//! the gap from Prometheus, agrees with a cold start at the same instant,
//! and a page keeps its `startsAt` in Alertmanager; a damaged state file
//! is a cold start with a warning.

use std::ffi::OsStr;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use crate::alerts::burning_world;
use crate::fixtures::{slo, spec};
use crate::harness::Workspace;
use crate::harness::{self, free_port, poll, Alertmanager, Daemon};

/// A value of an unlabelled (or first labelled) series in a scrape.
fn value(body: &str, name: &str, label: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(series, _)| {
            *series == name
                || (series.starts_with(name)
                    && series[name.len()..].starts_with('{')
                    && series.contains(label))
        })
        .and_then(|(_, v)| v.parse().ok())
}

/// `(cycles done, samples read)` from one scrape, so both are of the same
/// moment.
fn cycles_and_samples(d: &Daemon) -> (u64, f64) {
    let m = d.get("/metrics").body;
    let cycles = value(&m, "errbudget_evaluation_duration_seconds_count", "").unwrap_or(0.0);
    let samples = value(&m, "errbudget_prometheus_query_samples_total", "").unwrap_or(0.0);
    (cycles as u64, samples)
}

/// Waits for at least `n` finished cycles; the figures of that scrape.
fn after_cycles(d: &Daemon, n: u64) -> (u64, f64) {
    poll(Duration::from_secs(90), || {
        let c = cycles_and_samples(d);
        (c.0 >= n).then_some(c)
    })
    .unwrap_or_else(|| panic!("{n} cycles not done in 90s\n{}", d.guard.log_tail()))
}

fn start(cfg: &Path, state: &Path) -> Daemon {
    Daemon::start_with_args(
        cfg,
        free_port(),
        &[OsStr::new("--storage.path"), state.as_os_str()],
    )
}

fn stop(mut d: Daemon) {
    d.guard.signal("TERM");
    let st = d.guard.wait_exit(Duration::from_secs(20));
    assert!(
        st.is_some_and(|s| s.success()),
        "errbudget did not stop cleanly: {st:?}\n{}",
        d.guard.log_tail()
    );
}

fn page_1h(am: &Alertmanager) -> Option<Value> {
    am.alerts().into_iter().find(|a| {
        let l = &a["labels"];
        l["long_window"] == "1h" && l["short_window"] == "5m" && a["status"]["state"] == "active"
    })
}

fn unix(v: &Value) -> f64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    humantime::parse_rfc3339_weak(s)
        .unwrap_or_else(|e| panic!("time {s}: {e}"))
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// Every figure of two `slos` entries, numbers to 1e-9 relative; the
/// alert state (`firing`) is the decider's, not a figure.
fn assert_same_figures(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                "{path}: restarted {x} vs cold {y}"
            );
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: Vec<_> = x
                .keys()
                .filter(|k| *k != "firing" && *k != "last_success")
                .collect();
            let other: Vec<_> = y
                .keys()
                .filter(|k| *k != "firing" && *k != "last_success")
                .collect();
            assert_eq!(keys, other, "{path}: keys");
            for k in keys {
                assert_same_figures(&x[k], &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: length");
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                assert_same_figures(p, q, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn a_restart_reads_only_the_gap_agrees_with_a_cold_start_and_keeps_the_pages_start() {
    let prom = burning_world();
    let am = Alertmanager::start();
    let ws = Workspace::new();
    let state = ws.path("state");
    // Re-sent every 2 s, so Alertmanager lets the page lapse (endsAt 8 s
    // ahead) while errbudget is down: its start after the restart is then
    // the one errbudget sends, not one Alertmanager remembered.
    let extra = format!(
        "alerting:\n  alertmanagers:\n    - url: {}\n  resend_interval: 2s\n",
        am.url()
    );
    let specs = [(
        "burning.yaml",
        spec(
            "burning",
            "sre",
            &[slo("availability", "99.9", "burning", false)],
        ),
    )];
    let specs: Vec<(&str, &str)> = specs.iter().map(|(n, s)| (*n, s.as_str())).collect();
    let cfg = ws.config_with(&prom.url(), "5s", &extra, &specs);

    let first = start(&cfg, &state);
    let (n, cold) = after_cycles(&first, 1);
    assert_eq!(n, 1, "the first scrape after the first cycle came too late");
    let (n, later) = after_cycles(&first, 3);
    let steady = (later - cold) / (n - 1) as f64;
    let page = poll(Duration::from_secs(60), || page_1h(&am)).unwrap_or_else(|| {
        panic!(
            "no 1h/5m page: {:?}\n{}",
            am.alerts(),
            first.guard.log_tail()
        )
    });
    let starts_at = unix(&page["startsAt"]);
    stop(first);
    assert!(harness::poll(Duration::from_secs(1), || state
        .join("errbudget.state")
        .is_file()
        .then_some(()))
    .is_some());

    // Down until Alertmanager has resolved the page.
    let lapsed = poll(Duration::from_secs(30), || {
        page_1h(&am).is_none().then_some(())
    });
    assert!(lapsed.is_some(), "the page never lapsed: {:?}", am.alerts());

    let second = start(&cfg, &state);
    let (n, restarted) = after_cycles(&second, 1);
    assert_eq!(n, 1, "the first scrape after the first cycle came too late");
    println!(
        "samples read: cold start first cycle {cold}, steady cycle {steady:.0}, restart first cycle {restarted}"
    );
    // A cold start reads the period; a restart reads only the gap's
    // buckets and the slices a regular cycle reads.
    assert!(cold > steady, "cold {cold}, steady {steady}");
    assert!(
        restarted <= 0.05 * cold,
        "restart read {restarted} samples (steady {steady}, cold {cold})"
    );
    assert!(
        second
            .guard
            .log_tail()
            .contains("resuming from the stored state"),
        "{}",
        second.guard.log_tail()
    );

    // The same figures as a cold `eval` at the instant it evaluated.
    let api: Value = serde_json::from_str(&second.get("/api/v1/slos").body).expect("JSON");
    let cold_eval = harness::eval_json(&cfg, harness::evaluated_at(&api));
    assert_same_figures(&api["slos"], &cold_eval["slos"], "slos");

    // The page comes back with the start it had before the restart.
    let again = poll(Duration::from_secs(30), || page_1h(&am))
        .unwrap_or_else(|| panic!("no page after the restart\n{}", second.guard.log_tail()));
    assert_eq!(
        unix(&again["startsAt"]),
        starts_at,
        "startsAt before the restart {}, after {}",
        page["startsAt"],
        again["startsAt"]
    );
    let m = second.get("/metrics").body;
    assert!(
        value(&m, "errbudget_storage_writes_total", "outcome=\"success\"")
            .is_some_and(|v| v >= 1.0),
        "{m}"
    );
    stop(second);
}

#[test]
fn a_damaged_state_file_is_a_cold_start_with_a_warning() {
    let prom = burning_world();
    let ws = Workspace::new();
    let state = ws.path("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    let file = state.join("errbudget.state");
    std::fs::write(&file, b"ERRBSTAT\x01\x00\x00\x00garbage").expect("write");
    let spec_text = spec(
        "burning",
        "sre",
        &[slo("availability", "99.9", "burning", false)],
    );
    let cfg = ws.config(&prom.url(), "5s", &[("burning.yaml", &spec_text)]);
    let d = start(&cfg, &state);
    let (_, samples) = after_cycles(&d, 1);
    let log = d.guard.log_tail();
    assert!(
        log.contains("ignoring the stored state")
            && log.contains("truncated: 19 bytes of 24")
            && log.contains("errbudget.state"),
        "{log}"
    );
    let m = d.get("/metrics").body;
    assert_eq!(
        value(&m, "slo_evaluation_success", "slo=\"availability\""),
        Some(1.0),
        "{m}"
    );
    assert!(samples > 0.0);
    // The first cycle replaced it with a valid file.
    let written = poll(Duration::from_secs(10), || {
        std::fs::read(&file)
            .ok()
            .filter(|b| b.len() > 24 && b.starts_with(b"ERRBSTAT"))
    });
    assert!(written.is_some(), "state file not rewritten");
    stop(d);
}

/// A write that fails (here the temporary file's name is taken by a
/// directory, which fails as root too, as a full disk would) is a warning
/// and a metric; evaluation goes on.
#[test]
fn a_failing_state_write_does_not_stop_evaluation() {
    let prom = burning_world();
    let ws = Workspace::new();
    let state = ws.path("state");
    std::fs::create_dir_all(state.join(".errbudget.state.tmp")).expect("mkdir");
    let spec_text = spec(
        "burning",
        "sre",
        &[slo("availability", "99.9", "burning", false)],
    );
    let cfg = ws.config(&prom.url(), "1s", &[("burning.yaml", &spec_text)]);
    let d = start(&cfg, &state);
    after_cycles(&d, 1);
    let m = poll(Duration::from_secs(30), || {
        let m = d.get("/metrics").body;
        value(&m, "errbudget_storage_writes_total", "outcome=\"failure\"")
            .is_some_and(|v| v >= 1.0)
            .then_some(m)
    })
    .unwrap_or_else(|| panic!("no failed write counted\n{}", d.guard.log_tail()));
    assert_eq!(
        value(&m, "slo_evaluation_success", "slo=\"availability\""),
        Some(1.0),
        "{m}"
    );
    let (cycles, _) = cycles_and_samples(&d);
    after_cycles(&d, cycles + 2);
    let log = d.guard.log_tail();
    assert!(log.contains("cannot write the state file"), "{log}");
    assert!(!state.join("errbudget.state").exists());
    stop(d);
}
