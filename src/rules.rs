//! `errbudget rules`: Prometheus recording and alerting rules that compute
//! the same `slo_*` series and burn-rate alerts inside Prometheus, for teams
//! that prefer rules to a daemon. Queries come from `plan`, so both paths
//! measure the same thing.
//!
//! Cost follows the daemon's plan: windows up to 6h are recorded directly;
//! 1d, 3d and the period are summed from a recorded 5-minute series
//! (`sum_over_time` of a few thousand recorded samples, not of a month of
//! raw ones). Ratios stay traffic-weighted: bad and total are summed
//! separately, never averaged as ratios.

use std::borrow::Cow;

use saphyr::{Mapping, Scalar, Yaml, YamlEmitter};

use crate::model::{Severity, Slo};
use crate::plan::{self, escape_label_value, Queries, BUCKET_SECS, DIRECT_MAX_SECS};

const BAD_5M: &str = "errbudget:slo_events_bad:increase5m";
const TOTAL_5M: &str = "errbudget:slo_events_total:increase5m";
const RATIO_5M: &str = "errbudget:slo_error_ratio:rate5m";
/// Divides by at least this much so that no traffic gives 0, not NaN.
const NO_ZERO: &str = "1e-300";

enum Rule {
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

fn s(v: &str) -> Yaml<'static> {
    Yaml::Value(Scalar::String(Cow::Owned(v.to_string())))
}

fn map(pairs: Vec<(&str, Yaml<'static>)>) -> Yaml<'static> {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), v);
    }
    Yaml::Mapping(m)
}

fn string_map(pairs: &[(String, String)]) -> Yaml<'static> {
    let mut m = Mapping::new();
    for (k, v) in pairs {
        m.insert(s(k), s(v));
    }
    Yaml::Mapping(m)
}

/// `{service="…",slo="…"}` selecting one SLO's recorded series.
fn selector(slo: &Slo, extra: &str) -> String {
    format!(
        "{{service=\"{}\",slo=\"{}\"{extra}}}",
        escape_label_value(&slo.service),
        escape_label_value(&slo.name)
    )
}

fn slo_rules(slo: &Slo) -> Vec<Rule> {
    let mut base: Vec<(String, String)> = slo.labels.clone().into_iter().collect();
    base.push(("service".into(), slo.service.clone()));
    base.push(("slo".into(), slo.name.clone()));
    base.sort();
    let with = |extra: &[(&str, String)]| {
        let mut l = base.clone();
        l.extend(extra.iter().map(|(k, v)| ((*k).to_string(), v.clone())));
        l
    };
    let record = |name, expr: String, labels| Rule::Record { name, expr, labels };
    let sel = selector(slo, "");
    let budget = slo.objective.budget_ratio();
    let period = crate::duration::format(slo.period);
    let mut rules = Vec::new();
    let queries = Queries::for_slo(slo);
    let bucket = plan::window_text(BUCKET_SECS);

    for w in slo.windows() {
        let ws = w.to_string();
        let expr = if w.secs() <= DIRECT_MAX_SECS {
            match &queries {
                Queries::Events { bad, total } => {
                    let b = plan::with_window(bad, &ws);
                    let t = plan::with_window(total, &ws);
                    format!("(({b}) or ({t}) * 0) / clamp_min({t}, {NO_ZERO})")
                }
                Queries::Ratio { ratio } => plan::with_window(ratio, &ws),
            }
        } else {
            match &queries {
                Queries::Events { .. } => format!(
                    "sum_over_time({BAD_5M}{sel}[{ws}]) / clamp_min(sum_over_time({TOTAL_5M}{sel}[{ws}]), {NO_ZERO})"
                ),
                Queries::Ratio { .. } => format!("avg_over_time({RATIO_5M}{sel}[{ws}])"),
            }
        };
        rules.push(record("slo_error_ratio", expr, with(&[("window", ws)])));
    }
    match &queries {
        Queries::Events { bad, total } => {
            let b = plan::with_window(bad, &bucket);
            let t = plan::with_window(total, &bucket);
            let secs = BUCKET_SECS;
            rules.push(record(
                BAD_5M,
                format!("(({b}) or ({t}) * 0) * {secs}"),
                base.clone(),
            ));
            rules.push(record(TOTAL_5M, format!("({t}) * {secs}"), base.clone()));
            rules.push(record(
                "slo_period_error_ratio",
                format!(
                    "sum_over_time({BAD_5M}{sel}[{period}]) / clamp_min(sum_over_time({TOTAL_5M}{sel}[{period}]), {NO_ZERO})"
                ),
                base.clone(),
            ));
            // The 5m series is recorded at every rule evaluation, so its
            // samples overlap: the mean × buckets per period is the count.
            let buckets = slo.period.as_secs() / BUCKET_SECS;
            for (kind, series) in [("total", TOTAL_5M), ("bad", BAD_5M)] {
                rules.push(record(
                    "slo_period_events",
                    format!("avg_over_time({series}{sel}[{period}]) * {buckets}"),
                    with(&[("kind", kind.to_string())]),
                ));
            }
        }
        Queries::Ratio { ratio } => {
            rules.push(record(
                RATIO_5M,
                plan::with_window(ratio, &bucket),
                base.clone(),
            ));
            rules.push(record(
                "slo_period_error_ratio",
                format!("avg_over_time({RATIO_5M}{sel}[{period}])"),
                base.clone(),
            ));
        }
    }
    rules.push(record(
        "slo_burn_rate",
        format!("slo_error_ratio{sel} / {budget}"),
        base.clone(),
    ));
    rules.push(record(
        "slo_error_budget_remaining_ratio",
        format!("1 - slo_period_error_ratio{sel} / {budget}"),
        base.clone(),
    ));
    rules.push(record(
        "slo_error_budget_remaining_seconds",
        format!(
            "slo_error_budget_remaining_ratio{sel} * {}",
            slo.error_budget_seconds()
        ),
        base.clone(),
    ));
    for (name, value) in [
        ("slo_objective_ratio", slo.objective.ratio()),
        ("slo_period_seconds", slo.period.as_secs() as f64),
        ("slo_error_budget_seconds", slo.error_budget_seconds()),
    ] {
        rules.push(record(name, format!("vector({value})"), base.clone()));
    }
    let a = &slo.alerting;
    for w in &a.windows {
        rules.push(record(
            "slo_alert_burn_rate_threshold",
            format!("vector({})", w.factor),
            with(&[
                ("severity", w.severity.as_str().to_string()),
                ("long_window", w.long.to_string()),
                ("short_window", w.short.to_string()),
            ]),
        ));
    }
    rules.extend(alert_rules(slo, &base));
    rules
}

fn alert_rules(slo: &Slo, base: &[(String, String)]) -> Vec<Rule> {
    let a = &slo.alerting;
    a.windows
        .iter()
        .filter(|w| match w.severity {
            Severity::Page => a.page_enabled,
            Severity::Ticket => a.ticket_enabled,
        })
        .map(|w| {
            let (long, short) = (w.long.to_string(), w.short.to_string());
            let f = w.factor;
            let expr = format!(
                "slo_burn_rate{} > {f} and ignoring(window) slo_burn_rate{} > {f}",
                selector(slo, &format!(",window=\"{long}\"")),
                selector(slo, &format!(",window=\"{short}\"")),
            );
            let mut labels: Vec<(String, String)> = base.to_vec();
            labels.push(("severity".into(), w.severity.as_str().into()));
            labels.push(("long_window".into(), long.clone()));
            labels.push(("short_window".into(), short.clone()));
            labels.extend(a.labels.clone());
            let (sev_labels, sev_annotations) = match w.severity {
                Severity::Page => (&a.page_labels, &a.page_annotations),
                Severity::Ticket => (&a.ticket_labels, &a.ticket_annotations),
            };
            // The spec's page/ticket labels win: teams route on them.
            labels.extend(sev_labels.clone());
            dedup_last_wins(&mut labels);
            let mut annotations = vec![
                (
                    "summary".to_string(),
                    format!("{} {} is burning its error budget", slo.service, slo.name),
                ),
                (
                    "description".to_string(),
                    format!(
                        "Burn rate above {f:.4} over {long} and {short}: at this rate the budget of {} lasts {}.",
                        crate::duration::format(slo.period),
                        crate::duration::format(std::time::Duration::from_secs(
                            (slo.period.as_secs() as f64 / f) as u64
                        ))
                    ),
                ),
                ("burn_rate".to_string(), "{{ $value | printf \"%.2f\" }}".to_string()),
            ];
            annotations.extend(a.annotations.clone());
            annotations.extend(sev_annotations.clone());
            dedup_last_wins(&mut annotations);
            Rule::Alert {
                name: a.name.clone(),
                expr,
                labels,
                annotations,
            }
        })
        .collect()
}

fn dedup_last_wins(pairs: &mut Vec<(String, String)>) {
    let mut seen = std::collections::BTreeMap::new();
    for (k, v) in pairs.drain(..) {
        seen.insert(k, v);
    }
    pairs.extend(seen);
}

/// The rule file for every SLO, one group per SLO.
pub fn render(slos: &[Slo]) -> Result<String, String> {
    let groups: Vec<Yaml> = slos
        .iter()
        .map(|slo| {
            let rules = slo_rules(slo)
                .into_iter()
                .map(|r| match r {
                    Rule::Record { name, expr, labels } => map(vec![
                        ("record", s(name)),
                        ("expr", s(&expr)),
                        ("labels", string_map(&labels)),
                    ]),
                    Rule::Alert {
                        name,
                        expr,
                        labels,
                        annotations,
                    } => map(vec![
                        ("alert", s(&name)),
                        ("expr", s(&expr)),
                        ("labels", string_map(&labels)),
                        ("annotations", string_map(&annotations)),
                    ]),
                })
                .collect();
            map(vec![
                (
                    "name",
                    s(&format!("errbudget-{}-{}", slo.service, slo.name)),
                ),
                ("rules", Yaml::Sequence(rules)),
            ])
        })
        .collect();
    let doc = map(vec![("groups", Yaml::Sequence(groups))]);
    let mut out = String::from("# Generated by errbudget rules; edit the SLO specs instead.\n");
    YamlEmitter::new(&mut out)
        .dump(&doc)
        .map_err(|e| format!("cannot write YAML: {e}"))?;
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_slo;

    #[test]
    fn every_expression_parses_and_alerts_use_both_windows() {
        let mut slo = test_slo("svc", "avail", 99.9, 30);
        slo.sli = crate::model::Sli::Events {
            error_query: "sum(rate(x{code=~\"5..\"}[{{.window}}]))".into(),
            total_query: "sum(rate(x[{{.window}}]))".into(),
        };
        let rules = slo_rules(&slo);
        let mut alerts = 0;
        for r in &rules {
            let expr = match r {
                Rule::Record { expr, .. } => expr,
                Rule::Alert { expr, labels, .. } => {
                    alerts += 1;
                    assert!(labels.iter().any(|(k, _)| k == "long_window"));
                    expr
                }
            };
            promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        }
        assert_eq!(alerts, 4);
        let text = render(&[slo]).unwrap();
        assert!(text.contains("slo_error_ratio"), "{text}");
        assert!(
            text.contains("window: 3d") || text.contains("window: \"3d\""),
            "{text}"
        );
    }
}
