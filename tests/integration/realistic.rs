//! Realistic scrapes: targets scraped every 15 s and 30 s at their own
//! offsets with ±2 s jitter, 3% missed scrapes, counter resets, a target
//! that disappears and one that starts mid-window, traffic varying by the
//! second with an incident. Expected figures come from the per-second
//! events generated here.
//!
//! The bound, and why: a counter proves only the increase between two of
//! its samples, so near a window edge the events between the last sample
//! before it and the first after it cannot be placed on either side; a
//! backend may count them (extrapolation, or its base sample) or not. So
//! each window may differ from the events by the events within `G` of each
//! edge, per target, where `G` (two scrape intervals plus the jitter) is
//! the longest gap between samples a missed scrape leaves. The same holds
//! where a target starts, stops or restarts inside the window (events
//! before its first sample, after its last, or just before a reset are
//! never seen). Every window is summed from pieces (far edge, 5-minute
//! buckets, head); on every backend each piece counts the increase between
//! the samples around it (Prometheus through 15 s subqueries,
//! VictoriaMetrics natively), so pieces tile and the window edges are all
//! there is: the sum over a day must equal one query over the whole day.
//! Evaluations are for the 15 s boundary at or before the instant asked.

use std::fmt::Write as _;

use serde_json::Value;

use crate::events::{DAY, HOUR, MINUTE, T0};
use crate::fixtures::{slo, spec};
use crate::harness::{self, poll, Prometheus, VictoriaMetrics, Workspace};

const START: i64 = T0 - DAY - 2 * HOUR;
const SERVICE: &str = "scraped";

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

struct Target {
    instance: &'static str,
    interval: i64,
    offset: i64,
    /// Alive in (birth, death]: no events, no samples outside.
    birth: i64,
    death: i64,
    resets: Vec<i64>,
    /// Requests per second: base + rng % spread.
    base: u64,
    spread: u64,
    seed: u64,
}

/// Per-second events of one target: `good[i]`, `bad[i]` happen in second
/// `(START + i - 1, START + i]`.
struct Events {
    good: Vec<u64>,
    bad: Vec<u64>,
}

/// Error share per mille at second `s`: 2‰, 30% in the incident.
fn per_mille(s: i64) -> u64 {
    if s > T0 - 50 * MINUTE && s <= T0 - 35 * MINUTE {
        300
    } else {
        2
    }
}

fn generate(t: &Target) -> Events {
    let mut rng = XorShift(t.seed);
    let n = (T0 - START + 1) as usize;
    let (mut good, mut bad) = (vec![0; n], vec![0; n]);
    for i in 1..n {
        let s = START + i as i64;
        let total = t.base + rng.next() % t.spread;
        if s <= t.birth || s > t.death {
            continue;
        }
        let b = (0..total)
            .filter(|_| rng.next() % 1000 < per_mille(s))
            .count() as u64;
        good[i] = total - b;
        bad[i] = b;
    }
    Events { good, bad }
}

/// Scrape samples (t, good counter, bad counter) of one target.
fn samples(t: &Target, e: &Events) -> Vec<(i64, u64, u64)> {
    let mut rng = XorShift(t.seed ^ 0x5eed);
    let mut out = vec![];
    let mut k = 0;
    loop {
        let jitter = (rng.next() % 5) as i64 - 2;
        let missed = rng.next() % 100 < 3;
        let at = START + t.offset + k * t.interval + jitter;
        k += 1;
        if at > T0 {
            break;
        }
        if missed || at <= t.birth.max(START) || at > t.death {
            continue;
        }
        // Since the process (re)started: the latest reset or birth before.
        let since = t
            .resets
            .iter()
            .copied()
            .filter(|r| *r < at)
            .fold(t.birth.max(START), i64::max);
        let range = (since - START + 1) as usize..=(at - START) as usize;
        let good = e.good[range.clone()].iter().sum();
        let bad = e.bad[range].iter().sum();
        out.push((at, good, bad));
    }
    out
}

fn targets() -> Vec<Target> {
    let t = |instance, interval, offset, seed| Target {
        instance,
        interval,
        offset,
        birth: START,
        death: T0 + 1,
        resets: vec![],
        base: 8,
        spread: 9,
        seed,
    };
    let mut a = t("a:80", 15, 3, 11);
    // Restarts inside the 5m, 1h, 6h and 1d windows.
    a.resets = vec![
        T0 - 4 * MINUTE - 7,
        T0 - 40 * MINUTE + 2,
        T0 - 5 * HOUR,
        T0 - 20 * HOUR,
    ];
    let b = t("b:80", 30, 17, 12);
    let mut gone = t("c:80", 15, 9, 13);
    gone.death = T0 - 95 * MINUTE - 4;
    let mut new = t("d:80", 30, 22, 14);
    new.birth = T0 - 3 * HOUR + 11;
    vec![a, b, gone, new]
}

struct World {
    targets: Vec<Target>,
    events: Vec<Events>,
    text: String,
}

fn world() -> World {
    let targets = targets();
    let events: Vec<Events> = targets.iter().map(generate).collect();
    let mut text =
        String::from("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    for (t, e) in targets.iter().zip(&events) {
        let s = samples(t, e);
        for (code, pick) in [("200", 0), ("500", 1)] {
            for (at, good, bad) in &s {
                let v = if pick == 0 { good } else { bad };
                let _ = writeln!(
                    text,
                    "http_requests_total{{service=\"{SERVICE}\",instance=\"{}\",code=\"{code}\"}} {v} {at}",
                    t.instance
                );
            }
        }
    }
    text.push_str("# EOF\n");
    World {
        targets,
        events,
        text,
    }
}

impl World {
    /// (total, bad) events of every target in seconds (from, to].
    fn sum(&self, from: i64, to: i64) -> (f64, f64) {
        let lo = (from.max(START) - START + 1) as usize;
        let hi = ((to.min(T0) - START) as usize).min(self.events[0].good.len() - 1);
        let (mut total, mut bad) = (0u64, 0u64);
        for e in &self.events {
            if lo > hi {
                break;
            }
            let g: u64 = e.good[lo..=hi].iter().sum();
            let b: u64 = e.bad[lo..=hi].iter().sum();
            total += g + b;
            bad += b;
        }
        (total as f64, bad as f64)
    }

    /// The (total, bad) slack of `(at - w, at]`: events within `G` of every
    /// edge, per target, as the module comment explains.
    fn slack(&self, at: i64, w: i64) -> (f64, f64) {
        self.slack_around(at, w, &[])
    }

    /// [`World::slack`] with more edges inside the window (a maintenance
    /// window's start and end are edges as a window's are).
    fn slack_around(&self, at: i64, w: i64, more: &[i64]) -> (f64, f64) {
        let from = at - w;
        let (mut total, mut bad) = (0.0, 0.0);
        for (t, e) in self.targets.iter().zip(&self.events) {
            let g = 2 * t.interval + 2;
            let mut edges = vec![from, at];
            edges.extend(more.iter().copied().filter(|x| *x > from && *x < at));
            edges.extend(
                [t.birth.max(START), t.death]
                    .into_iter()
                    .chain(t.resets.iter().copied())
                    .filter(|x| *x > from && *x <= at),
            );
            for x in edges {
                let lo = (x - g).max(START) - START + 1;
                let hi = (x + g).min(T0) - START;
                if hi < lo {
                    continue;
                }
                let (lo, hi) = (lo as usize, hi as usize);
                let gd: u64 = e.good[lo..=hi].iter().sum();
                let bd: u64 = e.bad[lo..=hi].iter().sum();
                total += (gd + bd) as f64;
                bad += bd as f64;
            }
        }
        (total, bad)
    }
}

const WINDOWS: [(&str, i64); 6] = [
    ("5m", 5 * MINUTE),
    ("30m", 30 * MINUTE),
    ("1h", HOUR),
    ("2h", 2 * HOUR),
    ("6h", 6 * HOUR),
    ("1d", DAY),
];

/// Checks every window of the one SLO in `doc`; returns the largest
/// relative deviation of an error ratio from the events, for the record.
fn check(w: &World, doc: &Value, at: i64, what: &str) -> f64 {
    let s = slo_named(doc, "availability");
    assert_eq!(s["status"], "ok", "{what}: {s}");
    let mut worst: f64 = 0.0;
    for (name, secs) in WINDOWS {
        let (total, bad) = w.sum(at - secs, at);
        let (st, sb) = w.slack(at, secs);
        let lo = ((bad - sb).max(0.0) / (total + st)).max(0.0);
        let hi = ((bad + sb) / (total - st).max(1.0)).min(1.0);
        let got = s["error_ratio"][name].as_f64().expect("ratio");
        let want = bad / total;
        assert!(
            (lo..=hi).contains(&got),
            "{what} at {at}: error_ratio[{name}] = {got}, events say {want} (bound [{lo}, {hi}])"
        );
        let dev = ((got - want) / want).abs();
        eprintln!(
            "deviation realistic {what} {name} at T0{:+}: {dev:.3e}",
            at - T0
        );
        worst = worst.max(dev);
    }
    // The period (30d) holds all the data.
    let (total, _) = w.sum(START, at);
    let (st, _) = w.slack(at, at - START);
    let got = s["period_events"]["total"].as_f64().expect("period total");
    assert!(
        (got - total).abs() <= st,
        "{what}: period total {got}, events {total} ± {st}"
    );
    worst
}

/// The instant the figures are for: the 15-second boundary at or before
/// the one asked for, where every piece of a window can end.
fn evaluated_at(doc: &Value, asked: i64) -> i64 {
    let at = harness::evaluated_at(doc);
    assert!(
        at <= asked && asked - at < 15 && at % 15 == 0,
        "evaluated at {at} when asked for {asked}"
    );
    at
}

/// The targets that live through the whole day (resets included): where
/// no series starts or stops inside a piece, pieces on Prometheus count
/// exactly what one query over the day counts.
const STEADY: &str = "instance=~\"a:80|b:80\"";

fn spec_text() -> String {
    let mut steady = slo("steady", "99.9", SERVICE, false);
    let only = format!("service=\"{SERVICE}\",{STEADY}");
    let sel = format!("service=\"{SERVICE}\"");
    steady.error_query = steady.error_query.replace(&sel, &only);
    steady.total_query = steady.total_query.replace(&sel, &only);
    spec(
        SERVICE,
        "sre",
        &[slo("availability", "99.9", SERVICE, false), steady],
    )
}

/// The SLO called `name` in an `eval` answer.
fn slo_named<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["slos"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["slo"] == name))
        .unwrap_or_else(|| panic!("no SLO {name} in {doc}"))
}

const INSTANTS: [i64; 3] = [T0, T0 - 7 * MINUTE, T0 - 2 * HOUR - 3 * MINUTE - 17];

#[test]
fn realistic_scrapes_on_prometheus() {
    let w = world();
    let (_tmp, blocks) = harness::backfill(std::slice::from_ref(&w.text), true);
    let prom = Prometheus::start(&blocks);
    let ws = Workspace::new();
    let cfg = ws.config(&prom.url(), "30s", &[("s.yaml", &spec_text())]);
    for asked in INSTANTS {
        let doc = harness::eval_json(&cfg, asked);
        let at = evaluated_at(&doc, asked);
        check(&w, &doc, at, "prometheus");
        // One subquery over the whole day counts what the pieces count
        // (`[1d1ms:15s]` holds the step at the range start on closed and
        // left-open ranges alike), where no series starts or stops inside
        // a piece: Prometheus extrapolates such a series within its piece,
        // which only the events bound above covers.
        let direct = |code: &str| {
            let q = format!(
                "sum(rate(http_requests_total{{service=\"{SERVICE}\",{STEADY}{code}}}[1d1ms:15s]))"
            );
            prom.query_value(&q, at).expect("direct 1d rate")
        };
        // The data starts 2h before the day ending at T0: for an earlier
        // instant every series starts inside the day.
        if at - DAY <= START {
            continue;
        }
        let want = direct(",code=\"500\"") / direct("");
        let got = slo_named(&doc, "steady")["error_ratio"]["1d"]
            .as_f64()
            .expect("1d");
        assert!(
            ((got - want) / want).abs() < 1e-9,
            "1d at {at}: tiles {got}, one query {want}"
        );
    }
}

#[test]
fn realistic_scrapes_on_victoria_metrics() {
    let w = world();
    let vm = VictoriaMetrics::start();
    vm.import(&w.text);
    let (total, _) = w.sum(T0 - HOUR, T0);
    let q = format!("sum(increase(http_requests_total{{service=\"{SERVICE}\"}}[1h]))");
    let seen = poll(std::time::Duration::from_secs(30), || {
        vm.query_value(&q, T0)
            .filter(|v| (v - total).abs() < 0.05 * total)
    });
    assert!(seen.is_some(), "VictoriaMetrics never served the import");
    let ws = Workspace::new();
    let cfg = ws.config(&vm.url(), "30s", &[("s.yaml", &spec_text())]);
    for asked in INSTANTS {
        let doc = harness::eval_json(&cfg, asked);
        let at = evaluated_at(&doc, asked);
        check(&w, &doc, at, "victoriametrics");
        // Here buckets tile: edge + buckets + head sum to what one query
        // over the whole day says, to float precision.
        let direct = |code: &str| {
            let q =
                format!("sum(increase(http_requests_total{{service=\"{SERVICE}\"{code}}}[1d]))");
            vm.query_value(&q, at).expect("direct 1d increase")
        };
        let want = direct(",code=\"500\"") / direct("");
        let got = slo_named(&doc, "availability")["error_ratio"]["1d"]
            .as_f64()
            .expect("1d");
        assert!(
            ((got - want) / want).abs() < 1e-9,
            "1d at {at}: tiles {got}, one query {want}"
        );
    }
}

/// A maintenance window over part of the incident, on scrapes as they
/// happen: each window holding it loses exactly the events inside it, to
/// the bound above with the maintenance window's two ends as two more
/// edges (its buckets are whole, but a counter proves only increases
/// between samples, up to `G` away from either end).
#[test]
fn realistic_scrapes_with_a_maintenance_window() {
    let w = world();
    let (_tmp, blocks) = harness::backfill(std::slice::from_ref(&w.text), true);
    let prom = Prometheus::start(&blocks);
    let (ex_from, ex_to) = (T0 - 55 * MINUTE, T0 - 40 * MINUTE);
    let text = spec(SERVICE, "sre", &[slo("availability", "99.9", SERVICE, false)]).replace(
        "    sli:\n",
        &format!(
            "    exclusions:\n      - reason: failover drill\n        start: {}\n        end: {}\n    sli:\n",
            harness::rfc3339(ex_from),
            harness::rfc3339(ex_to)
        ),
    );
    let ws = Workspace::new();
    let cfg = ws.config(&prom.url(), "30s", &[("s.yaml", &text)]);
    let doc = harness::eval_json(&cfg, T0);
    let s = slo_named(&doc, "availability");
    assert_eq!(s["status"], "ok", "{s}");
    for (name, secs) in WINDOWS {
        let from = T0 - secs;
        let (total, bad) = w.sum(from, T0);
        let inside = w.sum(from.max(ex_from), ex_to.min(T0).max(from.max(ex_from)));
        let (total, bad) = (total - inside.0, bad - inside.1);
        let (st, sb) = w.slack_around(T0, secs, &[ex_from, ex_to]);
        let lo = ((bad - sb).max(0.0) / (total + st)).max(0.0);
        let hi = ((bad + sb) / (total - st).max(1.0)).min(1.0);
        let got = s["error_ratio"][name].as_f64().expect("ratio");
        assert!(
            (lo..=hi).contains(&got),
            "error_ratio[{name}] = {got}, events outside maintenance say {} (bound [{lo}, {hi}])",
            bad / total
        );
        let excluded = (T0.min(ex_to) - from.max(ex_from)).max(0) as f64;
        assert_eq!(
            s["excluded_seconds"][name].as_f64(),
            Some(excluded),
            "excluded_seconds[{name}]"
        );
        eprintln!(
            "deviation realistic maintenance {name}: {:.3e}",
            ((got - bad / total) / (bad / total)).abs()
        );
    }
    // Without the maintenance window the 1h window holds the incident:
    // what was left out is no rounding matter.
    let (total, bad) = w.sum(T0 - HOUR, T0);
    let got = s["error_ratio"]["1h"].as_f64().expect("1h");
    assert!(
        got < 0.5 * bad / total,
        "1h {got} vs {} with the incident",
        bad / total
    );
}
