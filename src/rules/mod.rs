//! `errbudget rules`: Prometheus recording and alerting rules that compute
//! the daemon's `slo_*` series and burn-rate alerts inside Prometheus, for
//! teams that prefer rules to a daemon. The SLI templates come from `plan`;
//! the rule-only PromQL around them (increments, sums, joins) lives here.
//! `emit` writes the groups as a rule file or a `PrometheusRule`.
//!
//! How the figures stay the daemon's:
//! - Every evaluation records the events of exactly one group interval I
//!   (`errbudget:slo_events_*:increment`). Windows longer than
//!   [`DIRECT_MAX_SECS`] and the period are `sum_over_time` of those
//!   increments, so consecutive increments tile the window with no overlap
//!   and no partial minutes at either edge, and the period counts only the
//!   events recorded so far (correct before a full period exists, never a
//!   mean scaled up to a period).
//! - Ranges are spelled so that they mean the same on Prometheus 2.x
//!   (closed `[t−W, t]`) and 3.x (left-open `(t−W, t]`): `rate(x[W+1ms])`
//!   holds the sample at t−W on both and extrapolates by 1 ms only, which
//!   `rate()` divides out again, so on samples aligned with the evaluation
//!   it is the exact increase; `sum_over_time(inc[W−1ms])` holds exactly
//!   W/I increments on both.
//! - Windows up to `DIRECT_MAX_SECS` are queried directly from the raw
//!   series, as the daemon does: pages are decided on them.
//! - Ratios are bad / total events (traffic-weighted), 0 without traffic;
//!   a page with fewer bad events in its long window than
//!   `min_bad_events` fires as a ticket.

mod emit;

pub use emit::{render, Format};

use std::collections::BTreeMap;

use crate::model::{Severity, Slo};
use crate::plan::{self, escape_label_value, Queries, DIRECT_MAX_SECS};

pub const INCREMENT_BAD: &str = "errbudget:slo_events_bad:increment";
pub const INCREMENT_TOTAL: &str = "errbudget:slo_events_total:increment";
pub const WINDOW_BAD: &str = "errbudget:slo_events_bad:window";
pub const WINDOW_TOTAL: &str = "errbudget:slo_events_total:window";
pub const PERIOD_BAD: &str = "errbudget:slo_events_bad:period";
pub const PERIOD_TOTAL: &str = "errbudget:slo_events_total:period";

/// Default group interval, and so the width of one recorded increment.
pub const DEFAULT_INTERVAL_SECS: u64 = 60;

/// How the rules are generated.
#[derive(Clone, Debug)]
pub struct Options {
    /// Evaluation interval of every group and width of an increment. The
    /// raw series should be scraped at least twice per interval, or
    /// `rate()` over one interval can find a single sample.
    pub interval_secs: u64,
    pub format: Format,
    /// `metadata.name` of a `PrometheusRule`.
    pub name: String,
    /// `metadata.labels` of a `PrometheusRule` (the operator's `ruleSelector`
    /// usually matches on them).
    pub labels: BTreeMap<String, String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            interval_secs: DEFAULT_INTERVAL_SECS,
            format: Format::Rules,
            name: "errbudget-slos".into(),
            labels: BTreeMap::new(),
        }
    }
}

pub enum Rule {
    Record {
        name: &'static str,
        expr: String,
        labels: Vec<(String, String)>,
    },
    Alert {
        name: String,
        expr: String,
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
    },
}

/// The rules of one SLO: one group, evaluated every `interval_secs`.
pub struct Group {
    pub name: String,
    pub interval_secs: u64,
    pub rules: Vec<Rule>,
}

/// A PromQL duration in milliseconds (`23h59m59s999ms`, `1m1ms`).
fn ms_text(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, len) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= len {
            out.push_str(&(rest / len).to_string());
            out.push_str(unit);
            rest %= len;
        }
    }
    out
}

/// The range of a `rate()` over W: 1 ms wider (see the module doc).
fn rate_range(secs: u64) -> String {
    ms_text(secs * 1_000 + 1)
}

/// The range of a sum of increments over W: 1 ms narrower.
fn sum_range(secs: u64) -> String {
    ms_text(secs * 1_000 - 1)
}

/// `{service="…",slo="…"…}` selecting one SLO's recorded series.
fn selector(slo: &Slo, extra: &[(&str, &str)]) -> String {
    let mut s = format!(
        "{{service=\"{}\", slo=\"{}\"",
        escape_label_value(&slo.service),
        escape_label_value(&slo.name)
    );
    for (k, v) in extra {
        s.push_str(&format!(", {k}=\"{}\"", escape_label_value(v)));
    }
    s.push('}');
    s
}

/// Every problem that keeps `slo` from being computed at this interval.
fn check(slo: &Slo, interval: u64) -> Vec<String> {
    let mut errs = Vec::new();
    // A range selector cannot start at the first of a month in a time
    // zone, nor skip a recurring window: these SLOs need the daemon.
    if let Some(c) = &slo.calendar {
        errs.push(format!(
            "{}: {}/{}: a {c} period cannot be written as Prometheus rules (a range selector looks back a fixed time); errbudget run evaluates it, and its /metrics carry the same series",
            slo.origin, slo.service, slo.name
        ));
    }
    if !slo.exclusions.is_empty() {
        errs.push(format!(
            "{}: {}/{}: maintenance windows cannot be written as Prometheus rules (they would be left in every range); errbudget run evaluates them",
            slo.origin, slo.service, slo.name
        ));
    }
    let mut spans: Vec<(String, u64)> = slo
        .windows()
        .into_iter()
        .filter(|w| w.secs() > DIRECT_MAX_SECS)
        .map(|w| (format!("window {w}"), w.secs()))
        .collect();
    spans.push((
        format!("period {}", crate::time::format(slo.period)),
        slo.period.as_secs(),
    ));
    for (what, secs) in spans {
        if secs % interval != 0 {
            errs.push(format!(
                "{}: {}/{}: {what} is not a multiple of the rule interval {}, so increments cannot tile it",
                slo.origin,
                slo.service,
                slo.name,
                plan::window_text(interval)
            ));
        }
    }
    errs
}

/// The groups of every SLO, or every problem found.
pub fn groups(slos: &[Slo], interval: u64) -> Result<Vec<Group>, Vec<String>> {
    if interval == 0 {
        return Err(vec!["the rule interval must be at least 1s".into()]);
    }
    let errs: Vec<String> = slos.iter().flat_map(|s| check(s, interval)).collect();
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(slos
        .iter()
        .map(|slo| Group {
            name: format!("errbudget-{}-{}", slo.service, slo.name),
            interval_secs: interval,
            rules: slo_rules(slo, interval),
        })
        .collect())
}

/// Events of one SLO per window as (bad, total) expressions of the raw SLI.
fn raw_events(queries: &Queries, range: &str, secs: u64) -> (String, String) {
    match queries {
        Queries::Events { bad, total } => {
            let b = plan::with_window(bad, range);
            let t = plan::with_window(total, range);
            (
                format!("clamp_min(({b}) * {secs}, 0)\nor\n({t}) * 0"),
                format!("clamp_min(({t}) * {secs}, 0)"),
            )
        }
        // Time-weighted: error-seconds and seconds; a NaN ratio (0/0, no
        // traffic) is dropped, as the daemon skips it.
        Queries::Ratio { ratio } => {
            let r = plan::with_window(ratio, range);
            (
                format!("clamp(({r}) >= 0, 0, 1) * {secs}"),
                format!("(({r}) >= 0) * 0 + {secs}"),
            )
        }
    }
}

fn slo_rules(slo: &Slo, interval: u64) -> Vec<Rule> {
    let mut base: BTreeMap<String, String> = slo.labels.clone();
    base.insert("service".into(), slo.service.clone());
    base.insert("slo".into(), slo.name.clone());
    let with = |extra: &[(&str, String)]| -> Vec<(String, String)> {
        let mut l = base.clone();
        for (k, v) in extra {
            l.insert((*k).to_string(), v.clone());
        }
        l.into_iter().collect()
    };
    let base_list = with(&[]);
    // Labels errbudget adds to the SLI's own: ignored when a raw result is
    // matched against a recorded series.
    let added: Vec<String> = base.keys().cloned().collect();
    let ignoring = format!("ignoring ({})", added.join(", "));
    let record = |name, expr: String, labels| Rule::Record { name, expr, labels };
    let sel = selector(slo, &[]);
    let budget = slo.objective.budget_ratio();
    let period_secs = slo.period.as_secs();
    let queries = Queries::for_slo(slo);
    // Every group instance seen in the period, 0-valued: the daemon keeps an
    // instance whose recent windows are empty.
    let presence = format!("{PERIOD_TOTAL}{sel} * 0");
    let mut rules = Vec::new();

    let (inc_bad, inc_total) = raw_events(&queries, &rate_range(interval), interval);
    rules.push(record(INCREMENT_BAD, inc_bad, base_list.clone()));
    rules.push(record(INCREMENT_TOTAL, inc_total, base_list.clone()));
    for (name, inc) in [(PERIOD_BAD, INCREMENT_BAD), (PERIOD_TOTAL, INCREMENT_TOTAL)] {
        rules.push(record(
            name,
            format!(
                "sum_over_time({inc}{sel}[{}])\nor on ()\nvector(0)",
                sum_range(period_secs)
            ),
            base_list.clone(),
        ));
    }

    let windows = slo.windows();
    for w in &windows {
        let ws = w.to_string();
        let labels = with(&[("window", ws.clone())]);
        if w.secs() <= DIRECT_MAX_SECS {
            let (b, t) = raw_events(&queries, &rate_range(w.secs()), w.secs());
            for (name, e) in [(WINDOW_BAD, b), (WINDOW_TOTAL, t)] {
                rules.push(record(
                    name,
                    format!("{e}\nor {ignoring}\n{presence}"),
                    labels.clone(),
                ));
            }
        } else {
            for (name, inc) in [(WINDOW_BAD, INCREMENT_BAD), (WINDOW_TOTAL, INCREMENT_TOTAL)] {
                rules.push(record(
                    name,
                    format!(
                        "sum_over_time({inc}{sel}[{}])\nor\n{presence}",
                        sum_range(w.secs())
                    ),
                    labels.clone(),
                ));
            }
        }
    }
    for w in &windows {
        let ws = w.to_string();
        let s = selector(slo, &[("window", &ws)]);
        rules.push(record(
            "slo_error_ratio",
            ratio_expr(&format!("{WINDOW_BAD}{s}"), &format!("{WINDOW_TOTAL}{s}")),
            with(&[("window", ws)]),
        ));
    }
    rules.push(record(
        "slo_burn_rate",
        format!("slo_error_ratio{sel} / {budget}"),
        base_list.clone(),
    ));
    rules.push(record(
        "slo_period_error_ratio",
        ratio_expr(
            &format!("{PERIOD_BAD}{sel}"),
            &format!("{PERIOD_TOTAL}{sel}"),
        ),
        base_list.clone(),
    ));
    if matches!(queries, Queries::Events { .. }) {
        for (kind, series) in [("total", PERIOD_TOTAL), ("bad", PERIOD_BAD)] {
            rules.push(record(
                "slo_period_events",
                format!("{series}{sel}"),
                with(&[("kind", kind.to_string())]),
            ));
        }
    }
    // The recorded increments are the data the rules hold: each covers one
    // interval, so their count tells how much of the period is covered.
    rules.push(record(
        "slo_period_coverage_ratio",
        format!(
            "clamp_max(\n  count_over_time({INCREMENT_TOTAL}{sel}[{}]) * {interval} / {period_secs},\n  1\n)",
            sum_range(period_secs)
        ),
        base_list.clone(),
    ));
    // The budget left over the period's budget (budget::remaining_ratio):
    // (B − e × c × P) / B with B = P × budget, so only the failure of the
    // covered share c is spent; 1 − e / budget once the period is covered.
    // Remaining seconds and exhaustion below follow from it.
    rules.push(record(
        "slo_error_budget_remaining_ratio",
        format!("1 - slo_period_error_ratio{sel} * slo_period_coverage_ratio{sel} / {budget}"),
        base_list.clone(),
    ));
    rules.push(record(
        "slo_error_budget_remaining_seconds",
        format!(
            "slo_error_budget_remaining_ratio{sel} * {}",
            slo.error_budget_seconds()
        ),
        base_list.clone(),
    ));
    for w in &windows {
        let ws = w.to_string();
        // remaining × period / burn rate; +Inf when not burning, 0 once
        // the budget is spent (budget::exhaustion_seconds).
        rules.push(record(
            "slo_error_budget_exhaustion_seconds",
            format!(
                "{period_secs} / slo_burn_rate{}\n  * ignoring (window) (slo_error_budget_remaining_ratio{sel} > 0)\nor\n(slo_error_budget_remaining_ratio{sel} <= 0) * 0 + 0",
                selector(slo, &[("window", &ws)])
            ),
            with(&[("window", ws)]),
        ));
    }
    rules.push(record(
        "slo_release_frozen",
        format!(
            "slo_error_budget_remaining_ratio{sel} < bool {}",
            slo.release_freeze_below
        ),
        base_list.clone(),
    ));
    let info = with(&[
        ("objective", slo.objective.ratio().to_string()),
        ("period", crate::time::format(slo.period)),
        ("sli_type", slo.sli.kind().to_string()),
        ("description", slo.description.clone()),
    ]);
    rules.push(record("slo_info", format!("{presence} + 1"), info));
    for (name, value) in [
        ("slo_objective_ratio", slo.objective.ratio().to_string()),
        ("slo_period_seconds", period_secs.to_string()),
        (
            "slo_error_budget_seconds",
            slo.error_budget_seconds().to_string(),
        ),
        // A group evaluation that fails records nothing: these go stale
        // and the dashboards show the age of the last figures.
        ("slo_evaluation_success", "1".into()),
        ("slo_last_evaluation_timestamp_seconds", "time()".into()),
    ] {
        rules.push(record(
            name,
            format!("{presence} + {value}"),
            base_list.clone(),
        ));
    }
    let a = &slo.alerting;
    for w in enabled_windows(slo) {
        let (long, short) = (w.long.to_string(), w.short.to_string());
        let labels = with(&[
            ("severity", w.severity.as_str().to_string()),
            ("long_window", long.clone()),
            ("short_window", short.clone()),
        ]);
        rules.push(record(
            "slo_alert_burn_rate_threshold",
            format!("{presence} + {}", w.factor),
            labels.clone(),
        ));
        rules.push(record(
            "slo_alert_firing",
            format!(
                "(slo_burn_rate{} > bool {f})\n  * ignoring (window)\n(slo_burn_rate{} > bool {f})",
                selector(slo, &[("window", &long)]),
                selector(slo, &[("window", &short)]),
                f = w.factor
            ),
            labels,
        ));
    }
    for w in enabled_windows(slo) {
        rules.extend(alert_rules(slo, w, &a.name));
    }
    rules
}

/// bad / total clamped to [0, 1]; 0 where there was no traffic.
fn ratio_expr(bad: &str, total: &str) -> String {
    format!("clamp({bad} / ({total} > 0), 0, 1)\nor\n{total} * 0")
}

fn enabled_windows(slo: &Slo) -> impl Iterator<Item = &crate::model::AlertWindow> {
    let a = &slo.alerting;
    a.windows.iter().filter(move |w| match w.severity {
        Severity::Page => a.page_enabled,
        Severity::Ticket => a.ticket_enabled,
    })
}

/// The alert of one window pair, as `alert::payload` labels it. A page with
/// `min_bad_events` is two rules: enough bad events in the long window
/// pages, fewer goes out as a ticket.
fn alert_rules(slo: &Slo, w: &crate::model::AlertWindow, alertname: &str) -> Vec<Rule> {
    let (long, short) = (w.long.to_string(), w.short.to_string());
    let pair = selector(
        slo,
        &[
            ("severity", w.severity.as_str()),
            ("long_window", &long),
            ("short_window", &short),
        ],
    );
    // The value is the lower of the two burn rates: the one that decides.
    let condition = format!(
        "min without (window) (\n  slo_burn_rate{}\n  or\n  slo_burn_rate{}\n)\nand ignoring (severity, long_window, short_window)\nslo_alert_firing{pair} == 1",
        selector(slo, &[("window", &long)]),
        selector(slo, &[("window", &short)]),
    );
    let bad_long = format!("{WINDOW_BAD}{}", selector(slo, &[("window", &long)]));
    let variants: Vec<(String, Severity, bool)> = match (w.severity, w.min_bad_events) {
        (Severity::Page, Some(min)) => vec![
            (
                format!("{condition}\nand ignoring (window)\n{bad_long} >= {min}"),
                Severity::Page,
                false,
            ),
            (
                format!("{condition}\nand ignoring (window)\n{bad_long} < {min}"),
                Severity::Ticket,
                true,
            ),
        ],
        (sev, _) => vec![(condition, sev, false)],
    };
    variants
        .into_iter()
        .map(|(expr, severity, low_traffic)| Rule::Alert {
            name: alertname.to_string(),
            expr,
            labels: alert_labels(slo, w, severity),
            annotations: alert_annotations(slo, w, severity, low_traffic),
        })
        .collect()
}

/// `alert::payload::alert_labels` for rules: the spec's alerting labels,
/// the severity, the page/ticket labels (which may override it), then the
/// identity labels, which nothing overrides.
fn alert_labels(
    slo: &Slo,
    w: &crate::model::AlertWindow,
    severity: Severity,
) -> Vec<(String, String)> {
    let a = &slo.alerting;
    let mut l: BTreeMap<String, String> = a.labels.clone();
    l.insert("severity".into(), severity.as_str().into());
    l.extend(match severity {
        Severity::Page => a.page_labels.clone(),
        Severity::Ticket => a.ticket_labels.clone(),
    });
    l.insert("service".into(), slo.service.clone());
    l.insert("slo".into(), slo.name.clone());
    l.insert("long_window".into(), w.long.to_string());
    l.insert("short_window".into(), w.short.to_string());
    l.into_iter().collect()
}

fn alert_annotations(
    slo: &Slo,
    w: &crate::model::AlertWindow,
    severity: Severity,
    low_traffic: bool,
) -> Vec<(String, String)> {
    let a = &slo.alerting;
    let remaining = "{{ with printf \"slo_error_budget_remaining_ratio{service=%q,slo=%q}\" $labels.service $labels.slo | query }}{{ . | first | value | printf \"%.4f\" }}{{ end }}";
    let exhaustion = format!(
        "{{{{ with printf \"slo_error_budget_exhaustion_seconds{{service=%q,slo=%q,window=%q}}\" $labels.service $labels.slo \"{}\" | query }}}}{{{{ . | first | value | humanizeDuration }}}}{{{{ end }}}}",
        w.long
    );
    let remaining_percent = remaining.replace("printf \"%.4f\"", "humanizePercentage");
    let mut description = format!(
        "Burn rate is above {:.2} over both {} and {}; {remaining_percent} of the {} error budget is left, exhausted in {exhaustion} at the {} rate.",
        w.factor,
        w.long,
        w.short,
        crate::time::format(slo.period),
        w.long
    );
    if low_traffic {
        description.push_str(" Sent as a ticket: too few bad events in the long window to page.");
    }
    let mut ann: BTreeMap<String, String> = BTreeMap::new();
    ann.insert(
        "summary".into(),
        format!(
            "{}/{}: error budget burning {{{{ $value | printf \"%.1f\" }}}}× too fast ({} over {} and {})",
            slo.service,
            slo.name,
            w.severity.as_str(),
            w.long,
            w.short
        ),
    );
    ann.insert("description".into(), description);
    ann.insert("burn_rate".into(), "{{ $value | printf \"%.4f\" }}".into());
    ann.insert("error_budget_remaining".into(), remaining.into());
    ann.extend(a.annotations.clone());
    ann.extend(match severity {
        Severity::Page => a.page_annotations.clone(),
        Severity::Ticket => a.ticket_annotations.clone(),
    });
    ann.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_slo;

    fn events_slo() -> Slo {
        let mut slo = test_slo("svc", "avail", 99.9, 30);
        slo.sli = crate::model::Sli::Events {
            error_query: "sum(rate(x{code=~\"5..\"}[{{.window}}]))".into(),
            total_query: "sum(rate(x[{{.window}}]))".into(),
        };
        slo
    }

    #[test]
    fn ranges_tile_on_both_range_semantics() {
        assert_eq!(rate_range(60), "1m1ms");
        assert_eq!(rate_range(300), "5m1ms");
        assert_eq!(sum_range(86_400), "23h59m59s999ms");
        assert_eq!(sum_range(30 * 86_400), "29d23h59m59s999ms");
        assert_eq!(ms_text(0), "0s");
    }

    #[test]
    fn every_expression_parses_and_every_series_is_recorded() {
        let mut slo = events_slo();
        slo.alerting.windows[0].min_bad_events = Some(10.0);
        let groups = groups(&[slo], 60).unwrap();
        let mut alerts = Vec::new();
        let mut records = std::collections::BTreeSet::new();
        for r in &groups[0].rules {
            let expr = match r {
                Rule::Record { name, expr, .. } => {
                    records.insert(*name);
                    expr
                }
                Rule::Alert { expr, labels, .. } => {
                    alerts.push(labels.clone());
                    expr
                }
            };
            promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        }
        // Rules record every documented slo_* series but those of calendar
        // periods and maintenance windows, whose SLOs `check` refuses here,
        // and the deploys.
        let daemon_only = [
            "slo_period_start_timestamp_seconds",
            "slo_period_end_timestamp_seconds",
            "slo_period_excluded_seconds",
            "slo_excluded_seconds",
            // Deploys are told to the daemon, not computed from the SLI.
            "slo_deployments_total",
        ];
        for (name, _) in crate::interface_doc::documented_series() {
            if name.starts_with("slo_") && !daemon_only.contains(&name.as_str()) {
                assert!(records.contains(name.as_str()), "{name} not recorded");
            }
        }
        // Four window pairs, the first page split by min_bad_events.
        assert_eq!(alerts.len(), 5);
        let sev = |l: &Vec<(String, String)>| {
            l.iter()
                .find(|(k, _)| k == "severity")
                .map(|(_, v)| v.clone())
        };
        assert_eq!(sev(&alerts[0]).as_deref(), Some("page"));
        assert_eq!(sev(&alerts[1]).as_deref(), Some("ticket"));
    }

    #[test]
    fn page_labels_cannot_override_identity() {
        let mut slo = events_slo();
        slo.alerting
            .page_labels
            .insert("service".into(), "other".into());
        slo.alerting
            .page_labels
            .insert("severity".into(), "critical".into());
        let w = slo.alerting.windows[0].clone();
        let l: BTreeMap<_, _> = alert_labels(&slo, &w, Severity::Page).into_iter().collect();
        assert_eq!(l["service"], "svc");
        assert_eq!(l["severity"], "critical");
        assert_eq!(l["long_window"], "1h");
    }

    #[test]
    fn windows_that_increments_cannot_tile_are_rejected() {
        let slo = events_slo();
        let errs = groups(&[slo], 7 * 60).err().unwrap();
        assert!(errs.iter().any(|e| e.contains("window 1d")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("period 30d")), "{errs:?}");
        assert!(groups(&[events_slo()], 0).is_err());
    }
}
