//! `errbudget backtest` on the backfilled world (`dataset.rs`): the
//! `incident` service's 20-minute 40% error burst must be reported as the
//! page the policy implies, when the event model says it starts and ends,
//! with the budget at the end of the replay matching the model; the
//! `steady` service, without incidents, must report no alert.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::dataset::World;
use crate::events::{sum_events, Generated, DAY, HOUR, MINUTE, T0};
use crate::expect::prometheus_rel;
use crate::fixtures::{slo, spec};
use crate::harness::{errbudget_bin, rfc3339, run_bounded, Workspace};

/// The default policy at a 30d period: (severity, long, short, factor).
const POLICY: [(&str, &str, i64, &str, i64, f64); 4] = [
    ("page", "1h", HOUR, "5m", 5 * MINUTE, 14.4),
    ("page", "6h", 6 * HOUR, "30m", 30 * MINUTE, 6.0),
    ("ticket", "1d", DAY, "2h", 2 * HOUR, 3.0),
    ("ticket", "3d", 3 * DAY, "6h", 6 * HOUR, 1.0),
];
const STEP: i64 = MINUTE;
const FROM: i64 = T0 - 3 * HOUR;

fn ratio(gens: &[&Generated], t: i64, w: i64) -> f64 {
    let (total, bad) = sum_events(gens.iter().copied(), t, w);
    if total == 0 {
        0.0
    } else {
        bad as f64 / total as f64
    }
}

/// Episodes (severity, long, short, start, end) the model implies when the
/// decision (both windows' burn rate above the factor, no pending time) is
/// replayed at every step of [FROM, T0].
fn model_episodes(
    gens: &[&Generated],
    budget: f64,
) -> Vec<(String, String, String, i64, Option<i64>)> {
    let mut out = vec![];
    for (sev, long, lw, short, sw, f) in POLICY {
        let mut open: Option<i64> = None;
        let mut t = FROM;
        while t <= T0 {
            let on = ratio(gens, t, lw) / budget > f && ratio(gens, t, sw) / budget > f;
            match (open, on) {
                (None, true) => open = Some(t),
                (Some(s), false) => {
                    out.push((sev.into(), long.into(), short.into(), s, Some(t)));
                    open = None;
                }
                _ => {}
            }
            t += STEP;
        }
        if let Some(s) = open {
            out.push((sev.into(), long.into(), short.into(), s, None));
        }
    }
    out
}

fn unix(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    humantime::parse_rfc3339_weak(s)
        .unwrap_or_else(|e| panic!("time {s}: {e}"))
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

#[test]
fn backtest_reports_the_incident_page_and_no_alert_for_a_calm_history() {
    let world = World::start();
    let ws = Workspace::new();
    let cfg = ws.config(
        &world.prom.url(),
        "30s",
        &[
            (
                "incident.yaml",
                &spec(
                    "incident",
                    "sre",
                    &[slo("availability", "99.5", "incident", false)],
                ),
            ),
            (
                "steady.yaml",
                &spec(
                    "steady",
                    "sre",
                    &[slo("availability", "99.9", "steady", false)],
                ),
            ),
        ],
    );
    let started = std::time::Instant::now();
    let (code, out, err) = run_bounded(
        Command::new(errbudget_bin())
            .arg("backtest")
            .arg("-c")
            .arg(&cfg)
            .args(["--from", &rfc3339(FROM), "--to", &rfc3339(T0)])
            .args(["--step", "1m", "--output", "json"]),
        Duration::from_secs(120),
    );
    eprintln!(
        "backtest of 3h at 1m steps took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(0), "backtest exit code\n{out}\n{err}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("JSON: {e}\n{out}"));
    assert_eq!(doc["step_seconds"], 60, "{doc}");
    let find = |service: &str| -> &Value {
        doc["slos"]
            .as_array()
            .expect("slos")
            .iter()
            .find(|s| s["service"] == service)
            .unwrap_or_else(|| panic!("{service} not in {doc}"))
    };

    // The calm history: no alert at all.
    let steady = find("steady");
    assert_eq!(steady["alerts"], Value::Array(vec![]), "{steady}");
    let steady_gens = world.service("steady");
    assert!(
        model_episodes(&steady_gens, 0.001).is_empty(),
        "the model of `steady` must be calm for this check to mean anything"
    );

    // The incident: 40% errors in minutes ending in (T0−70m, T0−50m] over
    // a 0.1% baseline, objective 99.5% (b = 0.005).
    let gens = world.service("incident");
    let (budget, e, p0) = (0.005, 0.4, 0.001);
    let incident_start = T0 - 70 * MINUTE;
    let want = model_episodes(&gens, budget);
    // The policy's theory: the 1h window passes f·b once the incident has
    // taken d of it, (e·d + p0·(W − d))/W > f·b, d > (f·b − p0)·W/(e − p0);
    // the 5m window much sooner; the 6h and longer pairs never fire (their
    // long windows peak at 0.4·20/360 = 0.022 < 6·b = 0.03).
    let th = (14.4 * budget - p0) * HOUR as f64 / (e - p0);
    let th_short = (14.4 * budget - p0) * (5 * MINUTE) as f64 / (e - p0);
    let th = th.max(th_short);
    assert_eq!(want.len(), 1, "the model implies one page: {want:?}");
    let inc = find("incident");
    let got = inc["alerts"].as_array().expect("alerts");
    assert_eq!(got.len(), 1, "one alert for the incident: {inc}");
    let a = &got[0];
    let (sev, long, short, start, end) = &want[0];
    assert_eq!(a["severity"], sev.as_str(), "{a}");
    assert_eq!(a["long_window"], long.as_str(), "{a}");
    assert_eq!(a["short_window"], short.as_str(), "{a}");
    assert_eq!(a["alertname"], "incidentHighErrorRate", "{a}");
    let got_start = unix(&a["start"]);
    eprintln!(
        "backtest: page 1h/5m starts {}s after the incident (theory {th:.0}s, model {}s), \
         ends {:?}s after it ended (model {:?}s)",
        got_start - incident_start,
        start - incident_start,
        a["end"]
            .as_str()
            .map(|_| unix(&a["end"]) - (T0 - 50 * MINUTE)),
        end.map(|t| t - (T0 - 50 * MINUTE)),
    );
    // Within one step of the model's replay, and within one step past the
    // theoretical detection delay.
    assert!(
        (got_start - start).abs() <= STEP,
        "start {} vs model {start}",
        a["start"]
    );
    let delay = (got_start - incident_start) as f64;
    assert!(
        delay >= th - STEP as f64 && delay <= th + STEP as f64,
        "start {delay}s after the incident, theory {th:.0}s ± one step"
    );
    let end = end.expect("the model's page ends before T0");
    assert!(!a["end"].is_null() && a["ongoing"] == false, "{a}");
    assert!(
        (unix(&a["end"]) - end).abs() <= STEP,
        "end {} vs model {end}",
        a["end"]
    );

    // Budget left at the end of the replay (T0), as `expect.rs` checks
    // `eval`: the period ratio's tolerance propagated to the remaining ratio.
    let (total, bad) = sum_events(gens.iter().copied(), T0, 30 * DAY);
    let pr = bad as f64 / total as f64;
    let remaining = 1.0 - pr / budget;
    let tol = prometheus_rel() * pr / budget + 1e-9;
    let got_rem = inc["error_budget_remaining_ratio"]
        .as_f64()
        .unwrap_or_else(|| panic!("remaining ratio: {inc}"));
    assert!(
        (got_rem - remaining).abs() <= tol,
        "remaining {got_rem} vs model {remaining} (±{tol})"
    );
}
