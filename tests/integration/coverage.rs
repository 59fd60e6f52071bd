//! A 30-day SLO on a Prometheus that holds only the last few minutes of
//! data, as on the first day of an install: errbudget must say how much of
//! the period it holds (`slo_period_coverage_ratio`, `period_coverage_ratio`,
//! `data_since`) and never count more failure than that time can hold.
//! Expected figures come from the generated events.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::events::{openmetrics, Generated, Series, Traffic, HOUR, MINUTE, T0};
use crate::fixtures::{slo, spec};
use crate::harness::{
    backfill, errbudget_bin, eval_json, poll, rfc3339, run_bounded, Daemon, Prometheus, Workspace,
};

const PERIOD: f64 = 30.0 * 86_400.0;
/// 99.9% over 30d.
const BUDGET_RATIO: f64 = 0.001;
const BUDGET_SECS: f64 = PERIOD * BUDGET_RATIO;

/// A service failing 5% of its requests (50 times the budget) from
/// `start` to `end`. Steady on purpose: `rate()` extrapolates the edges of
/// each 5-minute bucket (differently in Prometheus 2 and 3), which over ten
/// minutes of data would blur an incident's minutes, and that accuracy is
/// not what this test is about.
fn young(start: i64, end: i64) -> Generated {
    Series {
        service: "young",
        labels: vec![],
        traffic: Traffic::Steady {
            base: 300,
            spread: 40,
            p: 0.05,
            incidents: vec![],
        },
        resets: vec![],
        seed: 71,
        histogram: false,
    }
    .generate(start, end)
}

fn workspace(prom: &Prometheus) -> (Workspace, std::path::PathBuf) {
    let ws = Workspace::new();
    let cfg = ws.config(
        &prom.url(),
        "2s",
        &[(
            "young.yaml",
            &spec(
                "young",
                "web",
                &[slo("availability", "99.9", "young", false)],
            ),
        )],
    );
    (ws, cfg)
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number: {v}"))
}

/// Checks one instance's figures, evaluated at `at`, against the events in
/// `(since, events_end]` (the data stops at `events_end`).
fn assert_honest(s: &Value, g: &Generated, since: i64, at: i64, events_end: i64) {
    let covered = (at - since) as f64;
    assert_eq!(s["data_since"], rfc3339(since), "{s}");
    let ratio = f(s, "period_coverage_ratio");
    assert!(
        (ratio - covered / PERIOD).abs() < 1e-9,
        "coverage {ratio} vs {} ({}s of data): {s}",
        covered / PERIOD,
        covered
    );
    let (total, bad) = g.events(events_end, events_end - since);
    let err = bad as f64 / total as f64;
    // The events say: `err × covered` seconds of full failure, far less
    // than the 43m budget even though the error ratio is 40× the budget.
    let spent = err * covered;
    assert!(
        err > 20.0 * BUDGET_RATIO,
        "the incident is in the data: {err}"
    );
    let left = f(s, "error_budget_remaining_seconds");
    assert!(
        (BUDGET_SECS - left - spent).abs() <= spent * 0.05,
        "budget left {left}s, events say {}s ({spent}s spent of {BUDGET_SECS}s): {s}",
        BUDGET_SECS - spent
    );
    assert!(
        left >= BUDGET_SECS - covered,
        "more failure counted than {covered}s can hold: {s}"
    );
    // The ratio is the same quantity: the budget left over the budget, so
    // ten minutes at 40× the allowed error ratio leave most of it, and no
    // release freezes for it.
    let remaining = f(s, "error_budget_remaining_ratio");
    let want = (BUDGET_SECS - spent) / BUDGET_SECS;
    assert!(
        (remaining - want).abs() <= (1.0 - want) * 0.05,
        "remaining ratio {remaining} vs {want}: {s}"
    );
    assert!(
        (remaining * BUDGET_SECS - left).abs() <= 1e-6 * BUDGET_SECS,
        "ratio {remaining} and seconds {left} disagree: {s}"
    );
    assert_eq!(s["release_frozen"], false, "{s}");
    // Exhaustion at the 1h rate: the budget left over the error ratio the
    // hour holds (only the covered minutes have traffic).
    let ex = s["error_budget_exhaustion_seconds"]["1h"]
        .as_f64()
        .unwrap_or_else(|| panic!("1h exhaustion: {s}"));
    let want = (BUDGET_SECS - spent) / err;
    assert!(
        (ex - want).abs() <= want * 0.05,
        "exhaustion {ex}s vs {want}s: {s}"
    );
}

/// `eval` at a fixed instant on ten minutes of backfilled data.
#[test]
fn ten_minutes_of_data_on_a_30d_slo() {
    let at = T0 + 7 * HOUR;
    let start = at - 10 * MINUTE;
    let g = young(start, at);
    let (_tmp, blocks) = backfill(
        &[openmetrics(std::slice::from_ref(&g), start, at + 1)],
        false,
    );
    let prom = Prometheus::start(&blocks);
    let (_ws, cfg) = workspace(&prom);
    let doc = eval_json(&cfg, at);
    let s = &doc["slos"][0];
    assert_eq!(s["status"], "ok", "{s}");
    assert_honest(s, &g, start, at, at);
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A running daemon on data that started 10–15 minutes ago: the series,
/// the JSON and the status page all say how much of the period they hold.
#[test]
fn a_running_daemon_says_how_much_of_the_period_it_holds() {
    let now = unix_now();
    let end = now - now.rem_euclid(MINUTE);
    // Five-minute aligned, so the first bucket errbudget reads starts
    // exactly where the data does.
    let start = (end - 10 * MINUTE) - (end - 10 * MINUTE).rem_euclid(5 * MINUTE);
    let g = young(start, end);
    let (_tmp, blocks) = backfill(
        &[openmetrics(std::slice::from_ref(&g), start, end + 1)],
        false,
    );
    let prom = Prometheus::start(&blocks);
    let (_ws, cfg) = workspace(&prom);
    let daemon = Daemon::start(&cfg);
    let doc: Value = poll(Duration::from_secs(30), || {
        let r = daemon.get("/api/v1/slos");
        let v: Value = serde_json::from_str(&r.body).ok()?;
        (v["slos"][0]["status"] == "ok").then_some(v)
    })
    .unwrap_or_else(|| panic!("no evaluation\n{}", daemon.guard.log_tail()));
    let s = &doc["slos"][0];
    // The instant the figures are for (a 15 s boundary, before the
    // evaluation's own time in `last_success`).
    let at = crate::harness::evaluated_at(&doc);
    assert_honest(s, &g, start, at, end);

    // The release gate reads the same ratio: ten minutes of an incident
    // on a 30-day budget do not freeze releases.
    let (code, out, err) = run_bounded(
        std::process::Command::new(errbudget_bin()).args([
            "gate",
            "--url",
            &format!("http://{}", daemon.addr),
            "--service",
            "young",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "gate: {out}{err}");
    assert!(out.contains("allowed: young/availability"), "{out}");

    // The same answer as JSON, with the figures it rests on: the budget
    // left as the events say (within the bound `assert_honest` uses).
    let (code, out, err) = run_bounded(
        std::process::Command::new(errbudget_bin()).args([
            "gate",
            "--url",
            &format!("http://{}", daemon.addr),
            "--service",
            "young",
            "--output",
            "json",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(code, Some(0), "gate --output json: {out}{err}");
    let answer: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(answer["decision"], "allowed", "{answer}");
    assert_eq!(answer["exit_code"], 0, "{answer}");
    let one = &answer["slos"][0];
    assert_eq!(one["decision"], "allowed", "{answer}");
    assert_eq!(one["release_frozen"], false, "{answer}");
    let (total, bad) = g.events(end, end - start);
    let covered = (crate::harness::evaluated_at(&answer) - start) as f64;
    let spent = bad as f64 / total as f64 * covered;
    let left = f(one, "error_budget_remaining_ratio");
    let want = 1.0 - spent / BUDGET_SECS;
    assert!(
        (left - want).abs() <= 0.05 * spent / BUDGET_SECS,
        "gate's remaining ratio {left}, events say {want}: {answer}"
    );

    let metrics = daemon.get("/metrics").body;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("slo_period_coverage_ratio{"))
        .unwrap_or_else(|| panic!("no slo_period_coverage_ratio:\n{metrics}"));
    let v: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(v > 0.0 && v < 16.0 * 60.0 / PERIOD, "{line}");

    // A later evaluation may have passed a minute boundary since.
    let minutes = (at - start) / 60;
    let held = |text: &str| {
        (minutes..=minutes + 1).any(|m| text.contains(&format!("period holds {m}m of 30d")))
    };
    let page = daemon.get("/slo/young/availability").body;
    assert!(held(&page), "{minutes}m of 30d not on the page:\n{page}");
    assert!(!page.contains("overspent"), "{page}");
    let overview = daemon.get("/").body;
    assert!(
        held(&overview),
        "{minutes}m of 30d not on the overview:\n{overview}"
    );
}
