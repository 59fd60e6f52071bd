//! Expected figures from the event model and their comparison with
//! errbudget's JSON (docs/interface.md "JSON").
//!
//! Tolerances, and why:
//! - Every figure, at every instant (`REL`, 1e-9 relative): samples sit
//!   on minute multiples, and errbudget counts every window as the counter
//!   increase between the samples on its two sides (the window's far edge,
//!   its 5-minute buckets and the head since the last final bucket, which
//!   tile, or a direct query). An instant between two minutes sees the
//!   events up to the minute before it, as the model counts them
//!   (`Generated::events`). No `rate()` extrapolation happens (see
//!   `selftest`) and nothing is pro rata, so only float summation order is
//!   left. Any real error fails, on every backend. Absolute floor 1e-12
//!   for ratios of 0.
//! - Prometheus 3.x before `anchored` (`REL_LEFT_OPEN`, 1e-7): a piece
//!   reaches its first step through a 1 ms longer range, and where the
//!   counter is exactly 0 there (a bad counter after a reset) Prometheus
//!   does not extrapolate over that millisecond, so the piece is short by
//!   1 ms / its length of its own events. Only pieces starting at 0 lose
//!   it; over these scenarios' resets that stays under 1e-7 of any window
//!   (3.6e-9 measured on 3d). Any error of a sample interval, a bucket or
//!   a reset is ≥ 1e-4 and still fails.
//! - Event counts: the same relative tolerance (absolute 0.5 near 0).
//! - Remaining-budget ratio: the period-ratio tolerance propagated:
//!   |Δ| ≤ rel × period_ratio / (1 − objective) (+1e-9); seconds scale it by
//!   the budget seconds.
//! - Static figures (objective, period, budget seconds): 1e-9 relative.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::events::{sum_events, Generated, DAY, HOUR, MINUTE};

pub const REL: f64 = 1e-9;
pub const REL_LEFT_OPEN: f64 = 1e-7;

/// The relative tolerance on the Prometheus the tests run: `REL` on 2.x,
/// `REL_LEFT_OPEN` on 3.x (left-open ranges).
pub fn prometheus_rel() -> f64 {
    static REL_FOR: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *REL_FOR.get_or_init(|| {
        let out = std::process::Command::new(crate::harness::prometheus())
            .arg("--version")
            .output()
            .expect("prometheus --version");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let major = text
            .split("version ")
            .nth(1)
            .and_then(|v| v.split('.').next())
            .and_then(|m| m.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("no version in {text:?}"));
        if major >= 3 {
            REL_LEFT_OPEN
        } else {
            REL
        }
    })
}
pub const ABS_RATIO: f64 = 1e-12;

/// The default burn-rate windows (docs/interface.md "Alerts" table + 5m/30m/...).
pub const WINDOWS: [(&str, i64); 7] = [
    ("5m", 5 * MINUTE),
    ("30m", 30 * MINUTE),
    ("1h", HOUR),
    ("2h", 2 * HOUR),
    ("6h", 6 * HOUR),
    ("1d", DAY),
    ("3d", 3 * DAY),
];

/// Default policy: (severity, long, short, budget consumed).
pub const POLICY: [(&str, &str, &str, f64); 4] = [
    ("page", "1h", "5m", 0.02),
    ("page", "6h", "30m", 0.05),
    ("ticket", "1d", "2h", 0.10),
    ("ticket", "3d", "6h", 0.10),
];

pub struct Expected<'a> {
    pub service: &'a str,
    pub slo: &'a str,
    /// Objective in percent, as in the spec.
    pub objective_percent: f64,
    pub period: i64,
    /// Labels the instance must carry (spec labels, group labels).
    pub labels: Vec<(&'a str, &'a str)>,
    pub gens: Vec<&'a Generated>,
    pub at: i64,
    /// Relative tolerance, `REL` but where a test says why not.
    pub rel: f64,
}

fn ratio(total: u64, bad: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        bad as f64 / total as f64
    }
}

fn close(actual: f64, expected: f64, rel: f64, abs: f64) -> bool {
    (actual - expected).abs() <= (rel * expected.abs()).max(abs)
}

impl Expected<'_> {
    pub fn budget(&self) -> f64 {
        (100.0 - self.objective_percent) / 100.0
    }

    pub fn window_ratio(&self, w: i64) -> f64 {
        let (t, b) = sum_events(self.gens.iter().copied(), self.at, w);
        ratio(t, b)
    }

    pub fn period_events(&self) -> (u64, u64) {
        sum_events(self.gens.iter().copied(), self.at, self.period)
    }

    /// Finds this instance among `doc.slos` (service, slo and labels).
    pub fn find<'v>(&self, doc: &'v Value) -> &'v Value {
        let slos = doc["slos"].as_array().expect("`slos` array");
        let hits: Vec<&Value> = slos
            .iter()
            .filter(|s| {
                s["service"] == self.service
                    && s["slo"] == self.slo
                    && self
                        .labels
                        .iter()
                        .all(|(k, v)| s["labels"][*k].as_str() == Some(*v))
            })
            .collect();
        assert_eq!(
            hits.len(),
            1,
            "want exactly one instance {}/{} {:?} in:\n{}",
            self.service,
            self.slo,
            self.labels,
            serde_json::to_string_pretty(doc).unwrap_or_default()
        );
        hits[0]
    }

    /// Compares every figure; returns the list of mismatches.
    pub fn compare(&self, s: &Value) -> Vec<String> {
        let id = format!("{}/{} {:?}", self.service, self.slo, self.labels);
        let mut errs = vec![];
        let mut num = |field: String, v: &Value, exp: f64, rel: f64, abs: f64| match v.as_f64() {
            Some(a) if close(a, exp, rel, abs) => {
                // Printed for the record (`--no-capture` shows them): the
                // README's accuracy figures come from these lines.
                if exp.abs() > 1e-12 {
                    eprintln!("deviation {id} {field}: {:.3e}", ((a - exp) / exp).abs());
                }
            }
            Some(a) => errs.push(format!(
                "{id}: {field} = {a}, expected {exp} (±{})",
                (rel * exp.abs()).max(abs)
            )),
            None => errs.push(format!("{id}: {field} missing or not a number: {v}")),
        };
        let budget = self.budget();
        num(
            "objective".into(),
            &s["objective"],
            self.objective_percent / 100.0,
            1e-9,
            1e-12,
        );
        num(
            "period_seconds".into(),
            &s["period_seconds"],
            self.period as f64,
            0.0,
            1e-9,
        );
        num(
            "error_budget_seconds".into(),
            &s["error_budget_seconds"],
            self.period as f64 * budget,
            1e-9,
            1e-6,
        );
        for (label, w) in WINDOWS {
            let r = self.window_ratio(w);
            num(
                format!("error_ratio[{label}]"),
                &s["error_ratio"][label],
                r,
                self.rel,
                ABS_RATIO,
            );
            num(
                format!("burn_rate[{label}]"),
                &s["burn_rate"][label],
                r / budget,
                self.rel,
                ABS_RATIO / budget,
            );
        }
        let (total, bad) = self.period_events();
        let pr = ratio(total, bad);
        num(
            "period_error_ratio".into(),
            &s["period_error_ratio"],
            pr,
            self.rel,
            ABS_RATIO,
        );
        let remaining = 1.0 - pr / budget;
        let rem_tol = self.rel * pr / budget + 1e-9;
        num(
            "error_budget_remaining_ratio".into(),
            &s["error_budget_remaining_ratio"],
            remaining,
            0.0,
            rem_tol,
        );
        let budget_secs = self.period as f64 * budget;
        num(
            "error_budget_remaining_seconds".into(),
            &s["error_budget_remaining_seconds"],
            remaining * budget_secs,
            0.0,
            rem_tol * budget_secs,
        );
        num(
            "period_events.total".into(),
            &s["period_events"]["total"],
            total as f64,
            self.rel,
            0.5,
        );
        num(
            "period_events.bad".into(),
            &s["period_events"]["bad"],
            bad as f64,
            self.rel,
            0.5,
        );
        // Exactly the default windows are reported.
        let keys: Vec<String> = s["error_ratio"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let mut want: Vec<String> = WINDOWS.iter().map(|(l, _)| l.to_string()).collect();
        let mut got = keys.clone();
        want.sort();
        got.sort();
        if got != want {
            errs.push(format!(
                "{id}: error_ratio windows {got:?}, expected {want:?}"
            ));
        }
        errs.extend(self.compare_alerts(s, &id));
        errs
    }

    /// Default multiwindow policy: each pair fires when both burn rates
    /// exceed `budget consumed × period / long`. Pairs whose expected burn
    /// rates sit within 2% of the threshold are not judged (tolerance).
    fn compare_alerts(&self, s: &Value, id: &str) -> Vec<String> {
        let mut errs = vec![];
        let Some(alerts) = s["alerts"].as_array() else {
            return vec![format!("{id}: `alerts` missing")];
        };
        let secs = |l: &str| WINDOWS.iter().find(|w| w.0 == l).map(|w| w.1).unwrap_or(0);
        for (sev, long, short, consumed) in POLICY {
            let factor = consumed * self.period as f64 / secs(long) as f64;
            let Some(a) = alerts.iter().find(|a| {
                a["severity"] == sev && a["long_window"] == long && a["short_window"] == short
            }) else {
                errs.push(format!("{id}: no alert {sev} {long}/{short}"));
                continue;
            };
            match a["burn_rate_threshold"].as_f64() {
                Some(t) if close(t, factor, 1e-9, 1e-9) => {}
                other => errs.push(format!(
                    "{id}: alert {long}/{short} threshold {other:?}, expected {factor}"
                )),
            }
            let bl = self.window_ratio(secs(long)) / self.budget();
            let bs = self.window_ratio(secs(short)) / self.budget();
            let near = |b: f64| (b - factor).abs() <= 0.02 * factor;
            if near(bl) || near(bs) {
                continue;
            }
            let want = bl > factor && bs > factor;
            if a["firing"].as_bool() != Some(want) {
                errs.push(format!(
                    "{id}: alert {sev} {long}/{short} firing={}, expected {want} (burn {bl:.3}/{bs:.3} vs {factor})",
                    a["firing"]
                ));
            }
        }
        errs
    }
}

/// Panics listing every mismatch of every instance.
pub fn assert_all(doc: &Value, expected: &[Expected]) {
    let mut errs = vec![];
    for e in expected {
        let s = e.find(doc);
        if s["status"] != "ok" {
            errs.push(format!(
                "{}/{}: status {} (want ok): {}",
                e.service, e.slo, s["status"], s["error"]
            ));
        }
        errs.extend(e.compare(s));
    }
    assert!(
        errs.is_empty(),
        "{} mismatches:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// Labels of an instance as a map, for diagnostics.
#[allow(dead_code)]
pub fn labels(s: &Value) -> BTreeMap<String, String> {
    s["labels"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}
