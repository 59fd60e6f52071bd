//! Pyrra's `ServiceLevelObjective` (`apiVersion: pyrra.dev/v1alpha1`), read
//! unchanged into the same drafts as Sloth specs. The README has the full
//! mapping table; in short:
//! - `metadata.name` → SLO name; `metadata.namespace` → service (the SLO's
//!   name when there is none: Pyrra has no service); labels and
//!   annotations prefixed `pyrra.dev/` → SLO labels and alert annotations,
//!   prefix stripped, as Pyrra propagates them. Other metadata labels select
//!   Pyrra's `PrometheusRule` objects and mean nothing here.
//! - `target` (a percent string, `"99.0"`) → objective; `window` → period.
//! - `ratio` → events SLI `sum by (grouping) (rate(errors[w]))` over
//!   `sum by (grouping) (rate(total[w]))`; `latency` → latency SLI when the
//!   selectors are one histogram's `_bucket{le=…}` and `_count` with the same
//!   matchers and no grouping, else bad = total − success; `latencyNative` →
//!   events from `histogram_count` and `histogram_fraction` (the backend must
//!   have native histograms: Prometheus ≥ 2.40 with them enabled; a backend
//!   without answers with an error for that SLO); `bool_gauge` → raw SLI
//!   `1 - sum_over_time / count_over_time` (each sample is one event).
//! - Alerts: Pyrra's four window pairs scaled to the window (1h/5m ×14,
//!   6h/30m ×7, 1d/2h ×2, 4d/6h ×1 at 28d; windows divided from the period
//!   and rounded to the minute as Pyrra does), `critical` pairs as pages and
//!   `warning` pairs as tickets, their `severity` labels kept for routing.
//!   A pair whose factor × (1 − target) ≥ 1 can never fire; Pyrra generates
//!   it anyway, errbudget leaves it out.

use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};

use super::validate::{
    Draft, DraftAlert, DraftAlerting, DraftPeriod, DraftSli, DraftWindow, Label, Query,
};
use crate::diag::yaml::{join, Cx, Field, Map, Pos, Sp};
use crate::model::RESERVED_LABELS;
use crate::promql;
use crate::time;

/// Labels and annotations with this prefix are copied to Pyrra's rules.
const PROPAGATION_PREFIX: &str = "pyrra.dev/";

/// Pyrra's `Windows()` (slo/rules.go): divisors of the SLO window for the
/// long and short window, the factor, and whether it is `critical`.
const WINDOWS: [(u64, u64, f64, bool); 4] = [
    (28 * 24, 28 * 24 * 12, 14.0, true),
    (28 * 4, 28 * 24 * 2, 7.0, true),
    (28, 28 * 12, 2.0, false),
    (7, 28 * 4, 1.0, false),
];

pub fn read(cx: &mut Cx<'_>, top: &Map<'_, '_>) -> Option<Draft> {
    let top = Map::open(
        cx,
        top.node,
        &top.path,
        &["apiVersion", "kind", "metadata", "spec", "status"],
    )?;
    let meta = top.req(cx, "metadata").and_then(|f| f.map_any(cx));
    let name = meta.as_ref().and_then(|m| m.req_str(cx, "name"));
    let namespace = meta.as_ref().and_then(|m| m.str(cx, "namespace"));
    let propagated = |cx: &mut Cx<'_>, key: &str| -> Vec<Label> {
        meta.as_ref()
            .map(|m| m.string_map(cx, key))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| {
                let stripped = k.value.strip_prefix(PROPAGATION_PREFIX)?.to_string();
                Some((
                    Sp {
                        value: stripped,
                        pos: k.pos,
                    },
                    v,
                ))
            })
            .collect()
    };
    let labels = propagated(cx, "labels");
    let annotations = propagated(cx, "annotations");
    let spec = top.req(cx, "spec")?.map(
        cx,
        &[
            "description",
            "target",
            "window",
            "indicator",
            "alerting",
            "partial_response_strategy",
            "performanceOverAccuracy",
            "ruleOutput",
        ],
    )?;
    let target = spec
        .req_str(cx, "target")
        .and_then(|t| match t.value.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Some(Sp {
                value: v,
                pos: t.pos,
            }),
            _ => {
                cx.err(
                    t.pos,
                    format!(
                        "{}: expected a percent such as \"99.9\", found {:?}",
                        join(&spec.path, "target"),
                        t.value
                    ),
                );
                None
            }
        });
    let window = spec.req_str(cx, "window");
    let sli = spec
        .req(cx, "indicator")
        .and_then(|f| read_indicator(cx, &f));
    let mut windows_ok = true;
    let alerting = read_alerting(cx, &spec, target.as_ref(), window.as_ref(), &mut windows_ok);
    let broken = sli.is_none() || alerting.is_none() || !windows_ok;
    let mut alerting = alerting.unwrap_or_default();
    alerting.annotations = annotations;
    // Pyrra labels its alerts with the total selector's equality matchers.
    if let Some((_, matchers)) = &sli {
        alerting.labels = matchers
            .iter()
            .map(|(k, v)| {
                let at = |value: &str| Sp {
                    value: value.to_string(),
                    pos: top.pos,
                };
                (at(k), at(v))
            })
            .collect();
    }
    let service = namespace.or_else(|| name.clone());
    Some(Draft {
        pos: top.pos,
        path: top.path.clone(),
        service,
        service_labels: Vec::new(),
        service_labels_path: String::new(),
        name,
        objective: target,
        description: spec
            .str(cx, "description")
            .map(|s| s.value)
            .unwrap_or_default(),
        labels,
        period: window.map(DraftPeriod::Rolling),
        exclusions: Vec::new(),
        sli: sli.map(|(s, _)| s),
        alerting,
        release_freeze_below: None,
        override_rules: None,
        broken,
    })
}

/// A `{metric: SELECTOR}` mapping: the selector, parsed.
fn selector(cx: &mut Cx<'_>, m: &Map<'_, '_>, key: &str) -> Option<(VectorSelector, Query)> {
    let f = m.req(cx, key)?;
    let q = f.map(cx, &["metric"])?;
    let mf = q.req(cx, "metric")?;
    let text = mf.str(cx)?;
    match promql::parse(&text.value) {
        Ok(Expr::VectorSelector(v)) if v.offset.is_none() && v.at.is_none() => Some((
            v,
            Query {
                text: text.value.clone(),
                pos: text.pos,
                path: mf.path.clone(),
                file: None,
            },
        )),
        Ok(_) => {
            cx.err(
                text.pos,
                format!(
                    "{}: expected a metric selector such as http_requests_total{{job=\"api\"}}, as Pyrra requires",
                    mf.path
                ),
            );
            None
        }
        Err(e) => {
            cx.err(text.pos, format!("{}: invalid PromQL: {e}", mf.path));
            None
        }
    }
}

fn grouping(cx: &mut Cx<'_>, m: &Map<'_, '_>) -> Vec<String> {
    m.get("grouping")
        .and_then(|f| f.seq(cx))
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.str(cx).map(|s| s.value))
                .collect()
        })
        .unwrap_or_default()
}

/// `sum by (g) (F(sel[{{.window}}]))`, or `sum(...)` without grouping.
fn sum(grouping: &[String], func: &str, sel: &VectorSelector) -> String {
    let by = if grouping.is_empty() {
        String::new()
    } else {
        format!(" by ({}) ", grouping.join(", "))
    };
    format!("sum{by}({func}({sel}[{{{{.window}}}}]))")
}

/// The SLI, and the equality matchers of its total selector that are not
/// grouped by (Pyrra copies them onto its alerts).
fn read_indicator(cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<(DraftSli, Vec<(String, String)>)> {
    let kinds = ["ratio", "latency", "latencyNative", "bool_gauge"];
    let m = f.map(cx, &kinds)?;
    let given: Vec<&str> = kinds.into_iter().filter(|k| m.has(k)).collect();
    if given.len() != 1 {
        cx.err(
            m.pos,
            format!(
                "{}: give exactly one of ratio, latency, latencyNative or bool_gauge{}",
                f.path,
                if given.is_empty() {
                    String::new()
                } else {
                    format!(", found {}", given.join(" and "))
                }
            ),
        );
        return None;
    }
    let at = |q: &Query, text: String| Query { text, ..q.clone() };
    match given[0] {
        "ratio" => {
            let r = m.get("ratio")?.map(cx, &["errors", "total", "grouping"])?;
            let errors = selector(cx, &r, "errors");
            let total = selector(cx, &r, "total");
            let g = grouping(cx, &r);
            let ((ev, eq), (tv, tq)) = (errors?, total?);
            let sli = DraftSli::Events {
                error: at(&eq, sum(&g, "rate", &ev)),
                total: at(&tq, sum(&g, "rate", &tv)),
            };
            Some((sli, alert_matchers(&tv, &g)))
        }
        "latency" => {
            let l = m
                .get("latency")?
                .map(cx, &["success", "total", "grouping"])?;
            let success = selector(cx, &l, "success");
            let total = selector(cx, &l, "total");
            let g = grouping(cx, &l);
            let ((sv, sq), (tv, tq)) = (success?, total?);
            if let Some(sli) = as_histogram(&sv, &sq, &tv, &g) {
                return Some((sli, alert_matchers(&tv, &g)));
            }
            let total = sum(&g, "rate", &tv);
            let sli = DraftSli::Events {
                error: at(&sq, format!("{total} - {}", sum(&g, "rate", &sv))),
                total: at(&tq, total),
            };
            Some((sli, alert_matchers(&tv, &g)))
        }
        "latencyNative" => {
            let l = m
                .get("latencyNative")?
                .map(cx, &["total", "latency", "grouping"])?;
            let total = selector(cx, &l, "total");
            let g = grouping(cx, &l);
            let lat = l.req_str(cx, "latency").and_then(|s| {
                humantime::parse_duration(s.value.trim())
                    .ok()
                    .filter(|d| !d.is_zero())
                    .or_else(|| {
                        cx.err(
                            s.pos,
                            format!(
                                "{}.latency: expected a duration such as 200ms, found {:?}",
                                l.path, s.value
                            ),
                        );
                        None
                    })
            });
            let ((tv, tq), lat) = (total?, lat?);
            let hist = sum(&g, "rate", &tv);
            let count = format!("histogram_count({hist})");
            let sli = DraftSli::Events {
                error: at(
                    &tq,
                    format!(
                        "{count} * (1 - histogram_fraction(0, {}, {hist}))",
                        lat.as_secs_f64()
                    ),
                ),
                total: at(&tq, count),
            };
            Some((sli, alert_matchers(&tv, &g)))
        }
        _ => {
            let b = m.get("bool_gauge")?.map(cx, &["metric", "grouping"])?;
            let g = grouping(cx, &b);
            // `bool_gauge` inlines `metric`: read it from the same mapping.
            let (v, q) = {
                let mf = b.req(cx, "metric")?;
                let text = mf.str(cx)?;
                match promql::parse(&text.value) {
                    Ok(Expr::VectorSelector(v)) => (
                        v,
                        Query {
                            text: text.value.clone(),
                            pos: text.pos,
                            path: mf.path.clone(),
                            file: None,
                        },
                    ),
                    _ => {
                        cx.err(text.pos, format!("{}: expected a metric selector such as probe_success{{job=\"web\"}}, as Pyrra requires", mf.path));
                        return None;
                    }
                }
            };
            let sli = DraftSli::Raw {
                error_ratio: at(
                    &q,
                    format!(
                        "1 - ({} / {})",
                        sum(&g, "sum_over_time", &v),
                        sum(&g, "count_over_time", &v)
                    ),
                ),
            };
            Some((sli, alert_matchers(&v, &g)))
        }
    }
}

/// `X_bucket{m…, le="0.05"}` over `X_count{m…}` without grouping is
/// errbudget's latency SLI (which also matches `le="0.050"`).
fn as_histogram(
    success: &VectorSelector,
    sq: &Query,
    total: &VectorSelector,
    grouping: &[String],
) -> Option<DraftSli> {
    if !grouping.is_empty() {
        return None;
    }
    let base = success.name.as_deref()?.strip_suffix("_bucket")?;
    if total.name.as_deref()? != format!("{base}_count") {
        return None;
    }
    let mut le = None;
    let mut rest: Vec<String> = Vec::new();
    for m in &success.matchers.matchers {
        if m.name == "le" {
            if !matches!(m.op, MatchOp::Equal) {
                return None;
            }
            le = m
                .value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0);
        } else if m.name != "__name__" {
            rest.push(m.to_string());
        }
    }
    let mut total_m: Vec<String> = total
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name != "__name__")
        .map(ToString::to_string)
        .collect();
    let mut sorted = rest.clone();
    sorted.sort();
    total_m.sort();
    if sorted != total_m
        || !total.matchers.or_matchers.is_empty()
        || !success.matchers.or_matchers.is_empty()
    {
        return None;
    }
    Some(DraftSli::Latency {
        path: sq.path.clone(),
        metric: Sp {
            value: base.to_string(),
            pos: sq.pos,
        },
        selector: (!rest.is_empty()).then(|| Sp {
            value: format!("{{{}}}", rest.join(", ")),
            pos: sq.pos,
        }),
        threshold: Sp {
            value: le?,
            pos: sq.pos,
        },
    })
}

fn alert_matchers(total: &VectorSelector, grouping: &[String]) -> Vec<(String, String)> {
    total
        .matchers
        .matchers
        .iter()
        .filter(|m| matches!(m.op, MatchOp::Equal))
        .filter(|m| m.name != "__name__" && !grouping.contains(&m.name))
        .filter(|m| !RESERVED_LABELS.contains(&m.name.as_str()))
        .map(|m| (m.name.clone(), m.value.clone()))
        .collect()
}

/// Go's `time.Duration.Round(time.Minute)` of `period / divisor`.
fn pyrra_window(period_secs: u64, divisor: u64) -> u64 {
    let ns = u128::from(period_secs) * 1_000_000_000 / u128::from(divisor);
    let minute = 60_000_000_000u128;
    ((ns + minute / 2) / minute * 60) as u64
}

fn read_alerting(
    cx: &mut Cx<'_>,
    spec: &Map<'_, '_>,
    target: Option<&Sp<f64>>,
    window: Option<&Sp<String>>,
    windows_ok: &mut bool,
) -> Option<DraftAlerting> {
    let a = match spec.get("alerting") {
        Some(f) => Some(f.map(
            cx,
            &[
                "disabled",
                "burnrates",
                "absent",
                "name",
                "absentName",
                "severities",
            ],
        )?),
        None => None,
    };
    let mut out = DraftAlerting::default();
    let mut severities = ("critical".to_string(), "warning".to_string());
    if let Some(a) = &a {
        let off = a.bool(cx, "disabled") == Some(true) || a.bool(cx, "burnrates") == Some(false);
        out.page.disable = off;
        out.ticket.disable = off;
        // `absent` / `absentName`: errbudget has no absent alert; an SLO
        // whose queries return nothing shows status no_data instead.
        let _ = (a.bool(cx, "absent"), a.str(cx, "absentName"));
        out.name = a.str(cx, "name").map(|s| s.value);
        if let Some(s) = a.get("severities") {
            let s = s.map(
                cx,
                &[
                    "absent",
                    "fastBurn",
                    "mediumBurn",
                    "slowBurn",
                    "longTermBurn",
                ],
            )?;
            let pick = |cx: &mut Cx<'_>, a: &str, b: &str, default: &str| -> Option<String> {
                let x = s.str(cx, a).map_or(default.to_string(), |v| v.value);
                let y = s.str(cx, b).map_or(default.to_string(), |v| v.value);
                if x != y {
                    cx.err(
                        s.pos,
                        format!(
                            "{}: {a} {x:?} and {b} {y:?} differ: errbudget labels all pages alike and all tickets alike; give them the same severity",
                            s.path
                        ),
                    );
                    return None;
                }
                Some(x)
            };
            let page = pick(cx, "fastBurn", "mediumBurn", "critical");
            let ticket = pick(cx, "slowBurn", "longTermBurn", "warning");
            severities = (page?, ticket?);
        }
    }
    let label = |v: &str, pos: Pos| -> Vec<Label> {
        vec![(
            Sp {
                value: "severity".into(),
                pos,
            },
            Sp {
                value: v.to_string(),
                pos,
            },
        )]
    };
    let pos = window.map_or(spec.pos, |w| w.pos);
    out.page = DraftAlert {
        labels: label(&severities.0, pos),
        ..out.page
    };
    out.ticket = DraftAlert {
        labels: label(&severities.1, pos),
        ..out.ticket
    };
    let (Some(target), Some(window)) = (target, window) else {
        return Some(out);
    };
    let Ok(period) = time::parse(&window.value) else {
        return Some(out); // validate reports the period
    };
    // The shortest window Pyrra derives is window / 8064, rounded to the
    // minute: below 30 s it is 0s and no burn rate can be computed.
    if pyrra_window(period.as_secs(), WINDOWS[0].1) == 0 {
        cx.err(
            window.pos,
            format!(
                "{}: window {} is too short for Pyrra's burn-rate windows: the short window of the first pair (window / 8064, rounded to the minute) is 0s; use a window of at least 3d",
                join(&spec.path, "window"),
                window.value
            ),
        );
        *windows_ok = false;
    }
    let budget = (100.0 - target.value) / 100.0;
    let mut windows = Vec::new();
    for (i, (long_div, short_div, factor, critical)) in WINDOWS.into_iter().enumerate() {
        let (long, short) = (
            pyrra_window(period.as_secs(), long_div),
            pyrra_window(period.as_secs(), short_div),
        );
        if factor * budget >= 1.0 || short == 0 {
            continue;
        }
        let text = |secs: u64| Sp {
            value: if secs == 0 {
                "0s".into()
            } else {
                time::format(std::time::Duration::from_secs(secs))
            },
            pos: window.pos,
        };
        windows.push(DraftWindow {
            pos: window.pos,
            path: format!(
                "{} (Pyrra burn-rate pair {} of 4)",
                join(&spec.path, "window"),
                i + 1
            ),
            severity: Some(Sp {
                value: if critical { "page" } else { "ticket" }.into(),
                pos: window.pos,
            }),
            long: Some(text(long)),
            short: Some(text(short)),
            factor: Some(Sp {
                value: factor,
                pos: window.pos,
            }),
            budget_percent: None,
            min_bad_events: None,
            file: None,
        });
    }
    out.windows = Some(windows);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pyrra's own comments: 1h/5m, 6h/30m, 1d/2h, 4d/6h at 28d.
    #[test]
    fn windows_scale_like_pyrra() {
        let d28 = 28 * 86_400;
        let got: Vec<(u64, u64)> = WINDOWS
            .iter()
            .map(|&(l, s, _, _)| (pyrra_window(d28, l), pyrra_window(d28, s)))
            .collect();
        assert_eq!(
            got,
            [
                (3_600, 300),
                (21_600, 1_800),
                (86_400, 7_200),
                (345_600, 21_600)
            ]
        );
        // 7d: 15m and 1m15s rounded to 1m.
        assert_eq!(pyrra_window(7 * 86_400, 672), 900);
        assert_eq!(pyrra_window(7 * 86_400, 8_064), 60);
    }
}
