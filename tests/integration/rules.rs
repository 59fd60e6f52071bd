//! `errbudget rules` evaluated by a real Prometheus (2.x and 3.x, whichever
//! `bins::prometheus()` is) over the backfilled world: the recording rules
//! are backfilled with `promtool tsdb create-blocks-from rules` tier by
//! tier (a rule runs after the rules it reads), then every recorded
//! `slo_*` series is compared at the same instants with the generated
//! events and with `errbudget eval --at`.
//!
//! Tolerances, and why:
//! - Rules against the event model (`TRUTH_REL`, 1e-5 relative, 1e-9
//!   absolute for ratios): samples sit on minute multiples and the rules'
//!   ranges (`W+1ms` for `rate()`, `W−1ms` for sums) select the samples on
//!   both edges of every window on Prometheus 2.x and 3.x, so the figures
//!   are exact but for one case: a counter whose first sample in a range is
//!   exactly 0 makes `rate()` extrapolate to that zero and not by the 1 ms,
//!   which leaves the window's events short by 1 ms / W (1.7e-5 of one
//!   minute's events for an increment, far less of any window).
//! - Rules against `eval` (`EVAL_REL`, 1e-6 relative, same floors): both
//!   count the counter increase the samples prove, on either range
//!   semantics, so they agree to float summation order at every instant,
//!   5-minute-aligned or not; measured 5e-8 at worst. The worst difference
//!   per series is printed (`--no-capture`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::dataset::{World, START};
use crate::events::{Generated, DAY, HOUR, MINUTE, T0};
use crate::fixtures::{latency_spec, slo, spec};
use crate::harness::{self, Prometheus};
use crate::interface::documented_series;
use crate::recorded::{backfill_rules, generate, recordings, tiers};

pub const TRUTH_REL: f64 = 1e-5;
pub const EVAL_REL: f64 = 1e-6;

/// The test SLOs' period: a week keeps the backfill of one-minute
/// increments small; the tiling does not depend on the length.
const PERIOD: i64 = 7 * DAY;

/// One SLO of the scenario and the generated series it reads.
struct Case {
    service: &'static str,
    slo: &'static str,
    objective: f64,
    /// Routes of a grouped SLO (one instance each); empty for one instance.
    routes: Vec<&'static str>,
}

fn cases() -> Vec<Case> {
    let c = |service, slo, objective, routes: Vec<&'static str>| Case {
        service,
        slo,
        objective,
        routes,
    };
    vec![
        c("steady", "availability", 99.9, vec![]),
        c("incident", "availability", 99.9, vec![]),
        c("diurnal", "availability", 99.0, vec![]),
        c("resets", "availability", 99.5, vec![]),
        c("grouped", "availability", 99.0, vec!["/a", "/b", "/c"]),
        c("flat", "availability", 99.9, vec![]),
        c("latency", "latency", 99.0, vec![]),
    ]
}

fn specs() -> Vec<(String, String)> {
    let mut v = vec![];
    for c in cases() {
        let text = if c.service == "latency" {
            latency_spec("latency", "sre", "latency", "99", "0.3")
                .replace("    objective: 99\n", "    objective: 99\n    period: 7d\n")
        } else {
            let mut s = slo(
                c.slo,
                if c.objective == 99.9 {
                    "99.9"
                } else if c.objective == 99.5 {
                    "99.5"
                } else {
                    "99"
                },
                c.service,
                !c.routes.is_empty(),
            );
            s.period = Some("7d");
            spec(c.service, "sre", &[s])
        };
        v.push((format!("{}.yaml", c.service), text));
    }
    v
}

/// Every `slo_*` sample at `t`: (name, labels, value).
fn recorded(prom: &Prometheus, t: i64) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let v = prom.query_raw("{__name__=~\"slo_.+\"}", t, false);
    let mut out = vec![];
    for s in v["data"]["result"].as_array().expect("result") {
        let mut labels: BTreeMap<String, String> = s["metric"]
            .as_object()
            .expect("metric")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        let name = labels.remove("__name__").expect("name");
        let value: f64 = s["value"][1]
            .as_str()
            .and_then(|x| x.parse().ok())
            .expect("sample value");
        out.push((name, labels, value));
    }
    out
}

/// Labels that tell instances apart: service, slo, spec and group labels.
fn instance_key(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let drop = [
        "window",
        "kind",
        "severity",
        "long_window",
        "short_window",
        "objective",
        "period",
        "sli_type",
        "description",
    ];
    labels
        .iter()
        .filter(|(k, _)| !drop.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn json_key(s: &Value) -> BTreeMap<String, String> {
    let mut k: BTreeMap<String, String> = s["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    k.insert(
        "service".into(),
        s["service"].as_str().unwrap_or_default().into(),
    );
    k.insert("slo".into(), s["slo"].as_str().unwrap_or_default().into());
    k
}

/// What `eval` says for one recorded sample; `None` if it has no such figure.
fn eval_value(s: &Value, name: &str, labels: &BTreeMap<String, String>) -> Option<f64> {
    let l = |k: &str| labels.get(k).map(String::as_str).unwrap_or_default();
    let num = |v: &Value| -> Option<f64> {
        match v {
            Value::Null => Some(f64::INFINITY),
            v => v.as_f64(),
        }
    };
    let alert = || {
        s["alerts"].as_array()?.iter().find(|a| {
            a["severity"] == l("severity")
                && a["long_window"] == l("long_window")
                && a["short_window"] == l("short_window")
        })
    };
    match name {
        "slo_info" => Some(1.0),
        "slo_objective_ratio" => s["objective"].as_f64(),
        "slo_period_seconds" => s["period_seconds"].as_f64(),
        "slo_error_budget_seconds" => s["error_budget_seconds"].as_f64(),
        "slo_error_ratio" => s["error_ratio"][l("window")].as_f64(),
        "slo_burn_rate" => s["burn_rate"][l("window")].as_f64(),
        "slo_error_budget_exhaustion_seconds" => {
            num(&s["error_budget_exhaustion_seconds"][l("window")])
        }
        "slo_period_error_ratio" => s["period_error_ratio"].as_f64(),
        "slo_period_coverage_ratio" => s["period_coverage_ratio"].as_f64(),
        "slo_error_budget_remaining_ratio" => s["error_budget_remaining_ratio"].as_f64(),
        "slo_error_budget_remaining_seconds" => s["error_budget_remaining_seconds"].as_f64(),
        "slo_period_events" => s["period_events"][l("kind")].as_f64(),
        "slo_release_frozen" => s["release_frozen"].as_bool().map(|b| b as u8 as f64),
        "slo_alert_firing" => alert()?["firing"].as_bool().map(|b| b as u8 as f64),
        "slo_alert_burn_rate_threshold" => alert()?["burn_rate_threshold"].as_f64(),
        "slo_evaluation_success" => Some((s["status"] != "error") as u8 as f64),
        "slo_last_evaluation_timestamp_seconds" => None,
        _ => None,
    }
}

/// The model's figure for one recorded sample, where the model has one.
fn model_value(
    case: &Case,
    gens: &[&Generated],
    name: &str,
    labels: &BTreeMap<String, String>,
    t: i64,
    threshold: Option<f64>,
) -> Option<f64> {
    let span = |w: i64| w.min(t - START);
    let events = |w: i64| -> (f64, f64) {
        gens.iter().fold((0.0, 0.0), |(a, b), g| {
            let (tot, bad) = g.events(t, span(w));
            (a + tot as f64, b + bad as f64)
        })
    };
    let ratio = |(tot, bad): (f64, f64)| if tot > 0.0 { bad / tot } else { 0.0 };
    let budget = (100.0 - case.objective) / 100.0;
    let period = PERIOD;
    let window = |k: &str| -> Option<i64> {
        crate::expect::WINDOWS
            .iter()
            .find(|(l, _)| *l == k)
            .map(|(_, s)| *s)
    };
    // The recorded increments start with the data: until a period has
    // passed, only `t − START` of it is covered, and only the failure of
    // that time is spent (budget seconds − error ratio × covered seconds).
    let covered = span(period) as f64;
    let budget_seconds = period as f64 * budget;
    let remaining_seconds = budget_seconds - ratio(events(period)) * covered;
    let remaining = remaining_seconds / budget_seconds;
    let l = |k: &str| labels.get(k).map(String::as_str).unwrap_or_default();
    match name {
        "slo_error_ratio" => Some(ratio(events(window(l("window"))?))),
        "slo_burn_rate" => Some(ratio(events(window(l("window"))?)) / budget),
        "slo_period_error_ratio" => Some(ratio(events(period))),
        "slo_error_budget_remaining_ratio" => Some(remaining),
        "slo_error_budget_remaining_seconds" => Some(remaining_seconds),
        "slo_period_coverage_ratio" => Some(covered / period as f64),
        "slo_error_budget_exhaustion_seconds" => {
            let err = ratio(events(window(l("window"))?));
            Some(if remaining_seconds <= 0.0 {
                0.0
            } else if err <= 0.0 {
                f64::INFINITY
            } else {
                remaining_seconds / err
            })
        }
        "slo_period_events" => {
            let (tot, bad) = events(period);
            Some(if l("kind") == "bad" { bad } else { tot })
        }
        "slo_release_frozen" => Some((remaining < 0.0) as u8 as f64),
        "slo_alert_firing" => {
            let f = threshold?;
            let burn = |w: &str| window(w).map(|w| ratio(events(w)) / budget);
            Some((burn(l("long_window"))? > f && burn(l("short_window"))? > f) as u8 as f64)
        }
        _ => None,
    }
}

/// |a − b| relative to b, with an absolute floor for figures near 0.
fn rel_err(a: f64, b: f64, floor: f64) -> f64 {
    if a == b || (a.is_infinite() && b.is_infinite() && a.signum() == b.signum()) {
        return 0.0;
    }
    (a - b).abs() / b.abs().max(floor)
}

/// The scale below which a difference is measured absolutely: the
/// remaining budget in units of the whole budget (it crosses 0), the time
/// to exhaustion in periods, counts in events.
fn floor_for(name: &str, budget_seconds: f64) -> f64 {
    match name {
        "slo_period_coverage_ratio" => 1.0,
        "slo_error_budget_remaining_ratio" => 1.0,
        "slo_error_budget_remaining_seconds" => budget_seconds,
        "slo_error_budget_exhaustion_seconds" => PERIOD as f64,
        "slo_period_events" => 1.0,
        "slo_error_ratio" | "slo_period_error_ratio" => 1e-6,
        "slo_burn_rate" => 1e-3,
        "slo_alert_firing" | "slo_release_frozen" => 1.0,
        _ => 1e-9,
    }
}

fn prometheus_major(prom: &Prometheus) -> u32 {
    let r = crate::http::get(prom.addr, "/api/v1/status/buildinfo").expect("buildinfo");
    let v: Value = serde_json::from_str(&r.body).expect("buildinfo JSON");
    v["data"]["version"]
        .as_str()
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .expect("version")
}

#[test]
fn recorded_series_match_the_model_and_eval_on_this_prometheus() {
    let world = World::start();
    let raw_blocks = {
        // The world's Prometheus serves a hard-linked copy of the cached
        // blocks; read the cache itself.
        let days = crate::events::openmetrics_days(&world.gens, START, T0);
        harness::backfill(&days, true).1
    };
    let ws = harness::Workspace::new();
    let specs = specs();
    let spec_refs: Vec<(&str, &str)> = specs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let cfg_rules = ws.config(&world.prom.url(), "30s", &spec_refs);
    let text = generate(&cfg_rules, &[]);
    let rules = recordings(&text);
    let tiers = tiers(&rules);
    assert!(tiers.len() >= 4, "{} tiers", tiers.len());
    assert!(tiers[0]
        .iter()
        .all(|r| r.record.ends_with(":increment") || !r.record.starts_with("errbudget:")));

    // Around the incidents before T0, and once two days after the data
    // starts: the period then holds only what was recorded.
    let early = START + 2 * DAY + 3 * HOUR;
    let instants = [
        T0 - 70 * MINUTE,
        T0 - 25 * MINUTE,
        T0 - 7 * MINUTE,
        T0,
        early,
    ];
    // The increments from the start of the data (for `early`) and one
    // period before the first instant; everything else at the instants.
    let spans = |tier: usize, _: &crate::recorded::Recording| {
        if tier == 0 {
            vec![(START, early), (T0 - 75 * MINUTE - PERIOD, T0)]
        } else {
            vec![(early - 5 * MINUTE, early), (T0 - 75 * MINUTE, T0)]
        }
    };
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let prom = backfill_rules(&raw_blocks, &tiers, spans, work.path());
    let major = prometheus_major(&prom);
    let cfg = ws.config(&prom.url(), "30s", &spec_refs);

    let mut failures = vec![];
    // Worst relative difference per series: rules vs model, rules vs eval.
    let mut worst: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for &t in &instants {
        let doc = harness::eval_json(&cfg, t);
        let by_key: BTreeMap<BTreeMap<String, String>, &Value> = doc["slos"]
            .as_array()
            .expect("slos")
            .iter()
            .map(|s| (json_key(s), s))
            .collect();
        let samples = recorded(&prom, t);
        for (name, labels, value) in &samples {
            seen.insert(name.clone());
            let key = instance_key(labels);
            let Some(s) = by_key.get(&key) else {
                failures.push(format!("{name}{labels:?} at {t}: no such instance in eval"));
                continue;
            };
            let case = cases()
                .into_iter()
                .find(|c| c.service == key["service"])
                .expect("case");
            let gens: Vec<&Generated> = match key.get("route") {
                Some(r) => vec![world.route(case.service, r)],
                None => world.service(case.service),
            };
            let floor = floor_for(name, s["error_budget_seconds"].as_f64().unwrap_or(1.0));
            let id = format!("{name}{labels:?} at {}", t - T0);
            let threshold = eval_value(s, "slo_alert_burn_rate_threshold", labels);
            let model = model_value(&case, &gens, name, labels, t, threshold);
            let model_err = model.map(|m| rel_err(*value, m, floor));
            if let (Some(m), Some(e)) = (model, model_err) {
                if e > TRUTH_REL {
                    failures.push(format!("{id}: rules {value}, model {m} (rel {e:.2e})"));
                }
            }
            let w = worst.entry(name.clone()).or_insert((0.0, 0.0));
            w.0 = w.0.max(model_err.unwrap_or(0.0));
            if name == "slo_last_evaluation_timestamp_seconds" {
                if *value != t as f64 {
                    failures.push(format!("{id}: {value}, want the instant {t}"));
                }
                continue;
            }
            if name == "slo_info" {
                let want = [
                    (
                        "objective",
                        format!("{}", s["objective"].as_f64().unwrap_or_default()),
                    ),
                    ("period", "7d".to_string()),
                    (
                        "sli_type",
                        s["sli_type"].as_str().unwrap_or_default().into(),
                    ),
                    (
                        "description",
                        s["description"].as_str().unwrap_or_default().into(),
                    ),
                ];
                for (k, v) in want {
                    if labels.get(k) != Some(&v) {
                        failures.push(format!("{id}: label {k} {:?}, want {v:?}", labels.get(k)));
                    }
                }
            }
            let Some(e) = eval_value(s, name, labels) else {
                failures.push(format!("{id}: eval has no such figure"));
                continue;
            };
            let diff = rel_err(*value, e, floor);
            w.1 = w.1.max(diff);
            // eval counts the increase the samples prove on both range
            // semantics, as the rules do: the two agree at every instant.
            if diff > EVAL_REL {
                failures.push(format!("{id}: rules {value}, eval {e} (rel {diff:.2e})"));
            }
        }
        // Every eval instance has its recorded twin.
        for key in by_key.keys() {
            if !samples
                .iter()
                .any(|(n, l, _)| n == "slo_info" && &instance_key(l) == key)
            {
                failures.push(format!("eval instance {key:?} at {t} has no slo_info"));
            }
        }
    }
    failures.extend(dashboard_failures(&prom, T0));
    let slo_series = documented_series().into_iter().map(|(n, _)| n);
    // Rules refuse calendar periods and maintenance windows, so their
    // series are never recorded.
    let daemon_only = [
        "slo_period_start_timestamp_seconds",
        "slo_period_end_timestamp_seconds",
        "slo_period_excluded_seconds",
        "slo_excluded_seconds",
        // Deploys are told to the daemon, not computed from the SLI.
        "slo_deployments_total",
    ];
    for name in slo_series.filter(|n| n.starts_with("slo_") && !daemon_only.contains(&n.as_str())) {
        if !seen.contains(name.as_str()) {
            failures.push(format!("{name} never recorded"));
        }
    }
    for (name, (m, e)) in &worst {
        eprintln!("rules-vs-model/eval prometheus {major}: {name}: model {m:.2e}, eval {e:.2e}");
    }
    assert!(
        failures.is_empty(),
        "{} mismatches on Prometheus {major} ({}):\n{}",
        failures.len(),
        crate::bins::backends(),
        failures.join("\n")
    );
}

/// Every panel query and variable of both dashboards, run at `t` against a
/// Prometheus holding only the recorded series (no errbudget anywhere):
/// each must answer with data.
fn dashboard_failures(prom: &Prometheus, t: i64) -> Vec<String> {
    use crate::dashboards::{expand, load, panels, FILES};
    let vars: BTreeMap<&str, String> = BTreeMap::from([
        ("service", "incident".to_string()),
        ("slo", "availability".to_string()),
        ("team", ".*".to_string()),
        ("__range", "1h".to_string()),
        ("__rate_interval", "1m".to_string()),
        ("__interval", "15s".to_string()),
        ("__from", ((t - 3_600) * 1_000).to_string()),
        ("__to", (t * 1_000).to_string()),
    ]);
    let mut failures = vec![];
    for file in FILES {
        let d = load(file);
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            let Some(q) = v["query"]
                .as_str()
                .filter(|q| q.starts_with("label_values("))
            else {
                continue;
            };
            let inner = &expand(q, &vars)["label_values(".len()..];
            let (selector, label) = inner
                .trim_end_matches(')')
                .rsplit_once(',')
                .expect("label_values(selector, label)");
            let path = format!(
                "/api/v1/label/{}/values?match[]={}",
                label.trim(),
                crate::http::encode(selector.trim())
            );
            let r = crate::http::get(prom.addr, &path).expect("label values");
            let values: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            if values["data"].as_array().is_none_or(|a| a.is_empty()) {
                failures.push(format!("{file}: variable {q}: no values ({})", r.body));
            }
        }
        for p in panels(&d) {
            for target in p["targets"].as_array().into_iter().flatten() {
                let expr = expand(target["expr"].as_str().unwrap_or_default(), &vars);
                let instant = target["instant"].as_bool() == Some(true);
                let (path, body) = if instant {
                    (
                        "/api/v1/query",
                        format!("query={}&time={t}", crate::http::encode(&expr)),
                    )
                } else {
                    (
                        "/api/v1/query_range",
                        format!(
                            "query={}&start={}&end={t}&step=60",
                            crate::http::encode(&expr),
                            t - 600
                        ),
                    )
                };
                let r = crate::http::post(prom.addr, path, &body).expect("panel query");
                let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
                let has_data = v["data"]["result"].as_array().is_some_and(|a| {
                    a.iter().any(|s| {
                        s.get("value").is_some()
                            || s["values"].as_array().is_some_and(|x| !x.is_empty())
                    })
                });
                // Rules refuse calendar periods: those panels show their
                // noValue here.
                let calendar_only = p["title"]
                    .as_str()
                    .is_some_and(|t| crate::dashboards::CALENDAR_ONLY.contains(&t));
                if r.status != 200 || has_data == calendar_only {
                    failures.push(format!(
                        "{file} panel {:?} {}: {} on rules alone: {expr} ({} {})",
                        p["title"],
                        target["refId"],
                        if calendar_only { "data" } else { "no data" },
                        r.status,
                        r.body
                    ));
                }
            }
        }
    }
    failures
}
