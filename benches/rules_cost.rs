//! Cost of computing one SLO with Prometheus rules: errbudget's generated
//! rules beside rules written in the style Sloth and Pyrra generate for the
//! same SLO. Run: `cargo bench --bench rules_cost`.
//!
//! The SLO: 99.9% availability over 30 days of one service whose
//! `http_requests_total{service,code}` has two series (200, 500), sampled
//! every minute for 31 days (backfilled). Each rule set's recorded series
//! that other rules read over a range are backfilled over the whole period
//! at their group's interval, the rest around the instant, so that every
//! rule reads what it would read in steady state. Then every expression of
//! the set (recording and alerting) is run once at that instant through
//! `/api/v1/query?stats=all`, and `totalQueryableSamples` is summed: the
//! samples Prometheus reads for one evaluation of all of the SLO's groups.
//! Per minute of wall time, multiply each group by evaluations a minute.
//!
//! The Sloth-style and Pyrra-style rules are written here after what those
//! generators produce for such an SLO (Sloth: 5m..3d ratios from raw rates,
//! the 30d ratio averaged from the recorded 5m ratio; Pyrra: a 30d
//! `increase` of the raw counters, burn rates over its windows scaled to
//! the period, factors 14/7/2/1).

#[allow(dead_code)]
#[path = "../tests/integration/bins.rs"]
mod bins;
#[allow(dead_code)]
#[path = "../tests/integration/events.rs"]
mod events;
#[allow(dead_code)]
#[path = "../tests/integration/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../tests/integration/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "../tests/integration/recorded.rs"]
mod recorded;

use events::{Series, Traffic, DAY, MINUTE, T0};
use harness::{Prometheus, Workspace};
use serde_json::Value;

const ERR: &str = r#"http_requests_total{service="checkout",code="500"}"#;
const TOTAL: &str = r#"http_requests_total{service="checkout"}"#;

const SPEC: &str = r#"version: "prometheus/v1"
service: "checkout"
slos:
  - name: "availability"
    objective: 99.9
    sli:
      events:
        error_query: 'sum(rate(http_requests_total{service="checkout",code="500"}[{{.window}}]))'
        total_query: 'sum(rate(http_requests_total{service="checkout"}[{{.window}}]))'
"#;

fn record(name: &str, expr: &str, labels: &[(&str, &str)]) -> String {
    let mut s = format!(
        "      - record: {name}\n        expr: {}\n",
        serde_json::to_string(expr).expect("string")
    );
    if !labels.is_empty() {
        s.push_str("        labels:\n");
        for (k, v) in labels {
            s.push_str(&format!("          {k}: \"{v}\"\n"));
        }
    }
    s
}

fn alert(name: &str, expr: &str, severity: &str) -> String {
    format!(
        "      - alert: {name}\n        expr: {}\n        labels:\n          severity: {severity}\n",
        serde_json::to_string(expr).expect("string")
    )
}

/// Rules in the style Sloth generates for this SLO.
fn sloth_style() -> String {
    let id =
        r#"sloth_id="checkout-availability", sloth_service="checkout", sloth_slo="availability""#;
    let labels = |w: &'static str| {
        vec![
            ("sloth_id", "checkout-availability"),
            ("sloth_service", "checkout"),
            ("sloth_slo", "availability"),
            ("sloth_window", w),
        ]
    };
    let mut s = String::from(
        "groups:\n  - name: sloth-slo-sli-recordings-checkout-availability\n    rules:\n",
    );
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] {
        s.push_str(&record(
            &format!("slo:sli_error:ratio_rate{w}"),
            &format!("(sum(rate({ERR}[{w}])))\n/\n(sum(rate({TOTAL}[{w}])))"),
            &labels(w),
        ));
    }
    s.push_str(&record(
        "slo:sli_error:ratio_rate30d",
        &format!(
            "sum_over_time(slo:sli_error:ratio_rate5m{{{id}}}[30d])\n/ ignoring (sloth_window)\ncount_over_time(slo:sli_error:ratio_rate5m{{{id}}}[30d])"
        ),
        &labels("30d"),
    ));
    s.push_str("  - name: sloth-slo-meta-recordings-checkout-availability\n    rules:\n");
    let meta = &labels("")[..3];
    for (name, expr) in [
        ("slo:objective:ratio", "vector(0.999)".to_string()),
        ("slo:error_budget:ratio", "vector(1-0.999)".to_string()),
        ("slo:time_period:days", "vector(30)".to_string()),
        (
            "slo:current_burn_rate:ratio",
            format!("slo:sli_error:ratio_rate5m{{{id}}}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{{{id}}}"),
        ),
        (
            "slo:period_burn_rate:ratio",
            format!("slo:sli_error:ratio_rate30d{{{id}}}\n/ on(sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{{{id}}}"),
        ),
        (
            "slo:period_error_budget_remaining:ratio",
            format!("1 - slo:period_burn_rate:ratio{{{id}}}"),
        ),
        ("sloth_slo_info", "vector(1)".to_string()),
    ] {
        s.push_str(&record(name, &expr, meta));
    }
    s.push_str("  - name: sloth-slo-alerts-checkout-availability\n    rules:\n");
    let pair = |short: &str, long: &str, f: f64| {
        format!(
            "(\n  max(slo:sli_error:ratio_rate{short}{{{id}}} > ({f} * 0.001)) without (sloth_window)\n  and\n  max(slo:sli_error:ratio_rate{long}{{{id}}} > ({f} * 0.001)) without (sloth_window)\n)"
        )
    };
    s.push_str(&alert(
        "CheckoutHighErrorRate",
        &format!("{}\nor\n{}", pair("5m", "1h", 14.4), pair("30m", "6h", 6.0)),
        "page",
    ));
    s.push_str(&alert(
        "CheckoutHighErrorRate",
        &format!("{}\nor\n{}", pair("2h", "1d", 3.0), pair("6h", "3d", 1.0)),
        "ticket",
    ));
    s
}

/// Rules in the style Pyrra generates for this SLO (its 28-day windows
/// scaled to 30 days).
fn pyrra_style() -> String {
    let slo = [("slo", "checkout-availability")];
    let sel = r#"service="checkout", slo="checkout-availability""#;
    let mut s = String::from(
        "groups:\n  - name: checkout-availability-increase\n    interval: 2m30s\n    rules:\n",
    );
    s.push_str(&record(
        "http_requests:increase30d",
        &format!("sum by (code, service) (increase({TOTAL}[30d]))"),
        &slo,
    ));
    s.push_str(&alert(
        "SLOMetricAbsent",
        &format!("absent({TOTAL}) == 1"),
        "critical",
    ));
    s.push_str("  - name: checkout-availability\n    interval: 30s\n    rules:\n");
    let windows = [
        "5m21s", "32m9s", "1h4m", "2h9m", "6h26m", "1d1h43m", "4d6h51m",
    ];
    for w in windows {
        s.push_str(&record(
            &format!("http_requests:burnrate{w}"),
            &format!(
                "sum by (service) (rate({ERR}[{w}]))\n/\nsum by (service) (rate({TOTAL}[{w}]))"
            ),
            &slo,
        ));
    }
    for (short, long, f, sev) in [
        ("5m21s", "1h4m", 14, "critical"),
        ("32m9s", "6h26m", 7, "critical"),
        ("2h9m", "1d1h43m", 2, "warning"),
        ("6h26m", "4d6h51m", 1, "warning"),
    ] {
        s.push_str(&alert(
            "ErrorBudgetBurn",
            &format!(
                "http_requests:burnrate{short}{{{sel}}} > ({f} * (1-0.999))\nand\nhttp_requests:burnrate{long}{{{sel}}} > ({f} * (1-0.999))"
            ),
            sev,
        ));
    }
    s.push_str("  - name: pyrra-generic\n    interval: 30s\n    rules:\n");
    s.push_str(&record("pyrra_objective", "vector(0.999)", &slo));
    s.push_str(&record("pyrra_window", "vector(2592000)", &slo));
    s.push_str(&record(
        "pyrra_availability",
        &format!(
            "1 - sum(http_requests:increase30d{{code=\"500\", {sel}}} or vector(0))\n/\nsum(http_requests:increase30d{{{sel}}})"
        ),
        &slo,
    ));
    s
}

/// Samples Prometheus reads for one evaluation of every rule of `text`,
/// the rule count and the costliest rule.
fn cost(prom: &Prometheus, text: &str, at: i64) -> (u64, usize, String, u64) {
    let mut total = 0u64;
    let mut worst = (String::new(), 0u64);
    let exprs = recorded::expressions(text);
    for (name, expr) in &exprs {
        let v: Value = prom.query_raw(expr, at, true);
        let n = v["data"]["stats"]["samples"]["totalQueryableSamples"]
            .as_u64()
            .unwrap_or_else(|| panic!("no stats for {expr}: {v}"));
        total += n;
        if n > worst.1 {
            worst = (name.clone(), n);
        }
    }
    (total, exprs.len(), worst.0, worst.1)
}

fn main() {
    let start = T0 - 31 * DAY;
    let series = Series {
        service: "checkout",
        labels: vec![],
        traffic: Traffic::Steady {
            base: 900,
            spread: 200,
            p: 0.001,
            incidents: vec![],
        },
        resets: vec![],
        histogram: false,
        seed: 11,
    };
    let gens = vec![series.generate(start, T0)];
    let (_tmp, raw) = harness::backfill(&events::openmetrics_days(&gens, start, T0), true);
    let probe = Prometheus::start(&raw);
    let ws = Workspace::new();
    let cfg = ws.config(&probe.url(), "30s", &[("checkout.yaml", SPEC)]);
    let sets = [
        ("errbudget", recorded::generate(&cfg, &[])),
        (
            "errbudget --interval 5m",
            recorded::generate(&cfg, &["--interval", "5m"]),
        ),
        ("sloth-style", sloth_style()),
        ("pyrra-style", pyrra_style()),
    ];
    drop(probe);
    println!(
        "rules_cost: one 99.9%/30d availability SLO, 2 counter series, 31 days of 1-minute samples"
    );
    println!(
        "  {:<24} {:>6} {:>22}   costliest rule",
        "rule set", "rules", "samples/evaluation"
    );
    for (name, text) in &sets {
        let rules = recorded::recordings(text);
        let exprs: Vec<String> = rules.iter().map(|r| r.expr.clone()).collect();
        let tiers = recorded::tiers(&rules);
        let spans = |_: usize, r: &recorded::Recording| {
            if recorded::read_over_range(&exprs, &r.record) {
                vec![(T0 - 30 * DAY - 10 * MINUTE, T0)]
            } else {
                vec![(T0 - 10 * MINUTE, T0)]
            }
        };
        let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
        let prom = recorded::backfill_rules(&raw, &tiers, spans, work.path());
        let (total, count, worst, worst_n) = cost(&prom, text, T0);
        println!("  {name:<24} {count:>6} {total:>22}   {worst} ({worst_n})");
    }
}
