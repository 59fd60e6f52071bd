//! `/slo/{service}/{slo}`: one SLO in depth — its figures per group, the
//! alert pairs of its policy with their state, and charts of the period
//! (burn-down against the ideal line, burn rate per step) from its trend.
//! A failed trend still gives the page, with the reason in place of charts.

use crate::budget::Trend;
use crate::state::{Instance, Status};
use crate::time::rfc3339;

use super::svg::{chart, chart_with_marks, Line, Mark, Rule};
use super::{
    budget_bar, budget_time, coverage_text, document, escape, firing_pills, freeze_pill,
    human_secs, labels_text, rate,
};

/// The page of one SLO; `instances` are its groups (one for an ungrouped
/// SLO) and are never empty. `deploys` (time, version) of its service are
/// marked on the burn-down chart.
pub fn slo_page(
    instances: &[&Instance],
    evaluated_at: Option<i64>,
    trend: Option<Result<Trend, String>>,
    deploys: &[(i64, String)],
    prefix: &str,
) -> String {
    let Some(first) = instances.first() else {
        return not_found("", prefix);
    };
    let slo = &first.slo;
    let title = format!("{} / {}", slo.service, slo.name);
    let mut body = format!(
        "<p class=\"small\"><a href=\"{}/\">← all SLOs</a></p>\n<h1>{}</h1>\n",
        escape(prefix),
        escape(&title)
    );
    if !slo.description.is_empty() {
        body.push_str(&format!("<p>{}</p>\n", escape(&slo.description)));
    }
    body.push_str(&format!(
        "<p class=\"small muted\">Objective {} over {} ({} SLI){}. Last evaluation: <time>{}</time></p>\n",
        escape(&format!("{}%", slo.objective.percent())),
        escape(&instances.first().map_or_else(|| slo.period_text(), |i| i.period_label())),
        escape(slo.sli.kind()),
        if slo.labels.is_empty() {
            String::new()
        } else {
            format!(", labels {}", labels_text(&slo.labels))
        },
        escape(&evaluated_at.map(rfc3339).unwrap_or_else(|| "never".into()))
    ));
    for i in instances {
        body.push_str(&instance_section(i, instances.len() > 1));
    }
    // The burn-down starts where the data starts; one fully covered group
    // covers the whole chart.
    let data_since = instances
        .iter()
        .map(|i| {
            i.figures
                .as_ref()
                .filter(|f| f.coverage.is_partial())
                .and_then(|f| f.coverage.data_since)
        })
        .min()
        .flatten();
    body.push_str(&trend_section(first, trend, data_since, deploys));
    document(&title, &body)
}

fn instance_section(i: &Instance, grouped: bool) -> String {
    let mut out = String::new();
    if grouped {
        out.push_str(&format!("<h2>{}</h2>\n", labels_text(&i.group)));
    }
    if i.status == Status::Error {
        out.push_str(&format!(
            "<p class=\"note\">Evaluation failing: {}{}</p>\n",
            escape(
                &i.error
                    .as_ref()
                    .map_or("unknown error".to_string(), |e| e.to_string())
            ),
            match i.last_success {
                Some(t) => format!(" — figures below are from {}", escape(&rfc3339(t))),
                None => String::new(),
            }
        ));
    }
    let Some(f) = &i.figures else {
        return out;
    };
    let firing = firing_pills(f);
    if i.has_exclusions() {
        let windows: Vec<String> = i
            .slo
            .exclusions
            .iter()
            .map(|e| {
                let reason = if e.reason.is_empty() {
                    String::new()
                } else {
                    format!("{}: ", e.reason)
                };
                format!("<li>{}</li>", escape(&format!("{reason}{}", e.when)))
            })
            .collect();
        out.push_str(&format!(
            "<p class=\"note\"><b>Maintenance:</b> {} of this period so far is left out; events in it count toward neither bad nor total, and the budget is of the time outside it.</p>\n{}",
            human_secs(f.excluded_seconds),
            if windows.is_empty() {
                String::new()
            } else {
                format!("<ul class=\"small\">{}</ul>\n", windows.join(""))
            }
        ));
    }
    if let Some(c) = coverage_text(i, f) {
        let spent = (i.budget_seconds() - f.remaining_seconds).max(0.0);
        out.push_str(&format!(
            "<p class=\"note\"><b>The {c}</b>{}. Budget figures cover only that time: the \
budget left, as a share and in time, counts only the failure seen in it ({} spent), and so does the \
time to exhaustion.</p>\n",
            match f.coverage.data_since {
                Some(t) => format!(" (data since <time>{}</time>)", escape(&rfc3339(t))),
                None => String::new(),
            },
            escape(&human_secs(spent)),
            c = escape(&c),
        ));
    }
    out.push_str(&format!(
        "<div class=\"grid\"><div>Budget left{}</div><div>Budget left (time)<b>{}</b></div>\
<div>Period error ratio<b>{}</b></div><div>Releases<b>{}</b></div><div>Firing<b>{}</b></div></div>\n",
        budget_bar(f.remaining_ratio),
        escape(&budget_time(i, f)),
        escape(&format!("{:.4}%", f.period_error_ratio * 100.0)),
        freeze_pill(f),
        if firing.is_empty() {
            "<span class=\"ok\">none</span>".to_string()
        } else {
            firing
        }
    ));
    if !f.alerts.is_empty() {
        out.push_str(
            "<h2>Alerts</h2><table><thead><tr><th>Severity</th><th>Windows</th><th>Threshold</th>\
<th>Burn long / short</th><th>State</th></tr></thead><tbody>\n",
        );
        let burn = |w| {
            f.windows
                .iter()
                .find(|x| x.window == w)
                .map_or(f64::NAN, |x| x.burn_rate)
        };
        for a in &f.alerts {
            let state = if a.firing {
                "<b class=\"bad\">FIRING</b>"
            } else if a.condition {
                "<span class=\"warn\">pending</span>"
            } else {
                "<span class=\"ok\">ok</span>"
            };
            out.push_str(&format!(
                "<tr><td>{}</td><td>{}/{}</td><td>{}</td><td>{} / {}</td><td>{state}</td></tr>\n",
                escape(a.effective_severity().as_str()),
                escape(&a.long.to_string()),
                escape(&a.short.to_string()),
                escape(&rate(a.burn_rate_threshold)),
                escape(&rate(burn(a.long))),
                escape(&rate(burn(a.short))),
            ));
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str(
        "<h2>Windows</h2><table><thead><tr><th>Window</th><th>Error ratio</th><th>Burn rate</th>\
<th>Budget gone in</th></tr></thead><tbody>\n",
    );
    for w in &f.windows {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&w.window.to_string()),
            escape(&format!("{:.4}%", w.error_ratio * 100.0)),
            escape(&rate(w.burn_rate)),
            escape(&human_secs(w.exhaustion_seconds)),
        ));
    }
    out.push_str("</tbody></table>\n");
    out
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

fn num(v: f64) -> String {
    if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Lowest remaining ratio the burn-down draws.
const FLOOR: f64 = -1.0;

fn trend_section(
    i: &Instance,
    trend: Option<Result<Trend, String>>,
    data_since: Option<i64>,
    deploys: &[(i64, String)],
) -> String {
    let mut out = String::from("<h2>Budget burn-down over the period</h2>\n");
    let trend = match trend {
        None => {
            out.push_str("<p class=\"note\">History is not available here.</p>\n");
            return out;
        }
        Some(Err(e)) => {
            out.push_str(&format!(
                "<p class=\"note\">History unavailable: {}. The figures above are current.</p>\n",
                escape(&e)
            ));
            return out;
        }
        Some(Ok(t)) => t,
    };
    let budget = i.slo.objective.budget_ratio();
    // An overspent budget can fall to -2000%; drawn to scale it would
    // flatten the part worth seeing, so the chart stops at -100%.
    let since = data_since.filter(|&t| t > trend.start);
    // The part of a calendar period behind us, outside maintenance.
    let share = match (&i.slo.calendar, &i.figures) {
        (Some(_), Some(f)) if f.budget_seconds > 0.0 => {
            let outside = (trend.end - f.period_start) as f64 - f.excluded_seconds;
            (outside * budget / f.budget_seconds).clamp(0.0, 1.0)
        }
        _ => 1.0,
    };
    let mut down: Vec<(i64, f64)> = trend
        .burn_down_of(budget, share)
        .into_iter()
        .filter(|(t, _)| since.is_none_or(|s| *t > s))
        .map(|(t, v)| (t, v.max(FLOOR)))
        .collect();
    if let Some(s) = since {
        down.insert(0, (s, 1.0));
    }
    let clipped = down.iter().any(|(_, v)| *v <= FLOOR);
    let ideal = [(trend.start, 1.0), (trend.end, 1.0 - share)];
    let step = crate::time::format(std::time::Duration::from_secs(trend.step));
    let marks: Vec<Mark> = deploys
        .iter()
        .map(|(at, version)| Mark {
            at: *at,
            label: version,
            color: "#2e7d32",
        })
        .collect();
    out.push_str(&chart_with_marks(
        "remaining error budget over the period against the ideal line, deploys marked",
        &[
            Line {
                label: "remaining budget",
                color: "#0b57d0",
                dashed: false,
                points: &down,
            },
            Line {
                label: "ideal (budget spent evenly)",
                color: "#777",
                dashed: true,
                points: &ideal,
            },
        ],
        &[],
        &marks,
        pct,
    ));
    let shown = deploys
        .iter()
        .filter(|(at, _)| (trend.start..=trend.end).contains(at))
        .count();
    if shown > 0 {
        out.push_str(&format!(
            "<p class=\"small muted\"><span style=\"color:#2e7d32\">┆</span> {shown} deploy{} of {} in this range.</p>\n",
            if shown == 1 { "" } else { "s" },
            escape(&i.slo.service)
        ));
    }
    if let Some(s) = since {
        out.push_str(&format!(
            "<p class=\"small muted\">Data starts at <time>{}</time>: the line begins there.</p>\n",
            escape(&rfc3339(s))
        ));
    }
    if clipped {
        out.push_str("<p class=\"small muted\">Below −100% the line is drawn at −100%.</p>\n");
    }
    out.push_str(&format!("<h2>Burn rate per {}</h2>\n", escape(&step)));
    let rates = trend.burn_rates(budget);
    let rules: Vec<(String, f64)> = {
        let mut seen: Vec<(String, f64)> = vec![];
        for a in &i.slo.alerting.windows {
            if !seen.iter().any(|(_, v)| (*v - a.factor).abs() < 1e-9) {
                seen.push((
                    format!("{} {}/{}", a.severity.as_str(), a.long, a.short),
                    a.factor,
                ));
            }
        }
        seen
    };
    let rules: Vec<Rule> = rules
        .iter()
        .map(|(label, v)| Rule {
            label,
            color: "#c62828",
            value: *v,
        })
        .collect();
    out.push_str(&chart(
        "burn rate per step over the period with the policy's thresholds",
        &[Line {
            label: "burn rate (1 = budget spent exactly over the period)",
            color: "#b35900",
            dashed: false,
            points: &rates,
        }],
        &rules,
        num,
    ));
    out
}

/// The 404 page for an unknown SLO.
pub fn not_found(path: &str, prefix: &str) -> String {
    document(
        "SLO not found",
        &format!(
            "<p class=\"small\"><a href=\"{}/\">← all SLOs</a></p><h1>SLO not found</h1>\
<p>No SLO is configured at <code>{}</code>.</p>",
            escape(prefix),
            escape(path)
        ),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::budget::Events;
    use crate::model::{test_slo, Severity, Window};
    use crate::state::{AlertStatus, Figures, LabelSet, WindowFigures};

    pub(crate) fn figures(remaining: f64, firing: bool) -> Figures {
        let w = |s| Window::from_secs(s).unwrap_or_else(|e| panic!("{e}"));
        Figures {
            windows: vec![WindowFigures {
                window: w(3_600),
                events: Events::new(1.0, 100.0),
                error_ratio: 0.01,
                burn_rate: if firing { 20.0 } else { 0.5 },
                exhaustion_seconds: f64::INFINITY,
                excluded_seconds: 0.0,
            }],
            period_error_ratio: 0.0005,
            remaining_ratio: remaining,
            remaining_seconds: remaining * 2_592.0,
            coverage: crate::budget::Coverage::full(2_592_000.0),
            period_events: None,
            period_start: 1_761_526_800,
            period_end: 1_764_118_800,
            budget_seconds: 2_592.0,
            excluded_seconds: 0.0,
            release_frozen: remaining < 0.1,
            alerts: vec![AlertStatus {
                severity: Severity::Page,
                long: w(3_600),
                short: w(300),
                burn_rate_threshold: 14.4,
                condition: firing,
                low_traffic: false,
                firing,
            }],
        }
    }

    fn instance(service: &str) -> Instance {
        let mut slo = test_slo(service, "avail", 99.9, 30);
        slo.description = "<script>alert(2)</script>".into();
        Instance {
            slo: Arc::new(slo),
            group: LabelSet::new(),
            status: Status::Ok,
            error: None,
            figures: Some(figures(0.05, true)),
            last_success: Some(1_000),
            failing_since: None,
        }
    }

    #[test]
    fn shows_firing_alerts_and_charts_the_trend() {
        let i = instance("checkout");
        let trend = Trend {
            start: 0,
            end: 120,
            step: 60,
            points: vec![
                (60, Events::new(1.0, 500.0)),
                (120, Events::new(0.0, 500.0)),
            ],
        };
        let html = slo_page(
            &[&i],
            Some(1_000),
            Some(Ok(trend)),
            &[(90, "v1.<42>".to_string()), (99_999, "later".into())],
            "",
        );
        // The deploy inside the range is marked, escaped; the other is not.
        assert_eq!(html.matches("<g class=\"mark\">").count(), 1, "{html}");
        assert!(html.contains(">v1.&lt;42&gt;</text>"), "{html}");
        assert!(html.contains("1 deploy of"), "{html}");
        assert!(html.contains("<b class=\"bad\">FIRING</b>"), "{html}");
        assert!(html.contains("<span class=\"pill page\">page 1h/5m</span>"));
        assert_eq!(html.matches("<svg ").count(), 2);
        assert!(html.contains("ideal (budget spent evenly)"));
        assert!(html.contains("page 1h/5m</text>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    }

    #[test]
    fn a_young_period_says_how_much_it_holds_and_starts_the_chart_there() {
        let mut i = instance("checkout");
        let f = i.figures.as_mut().unwrap();
        f.remaining_seconds = 2_538.84;
        f.remaining_ratio = 2_538.84 / 2_592.0;
        f.coverage = crate::budget::Coverage::at(Some(9_400), 10_000, 2_592_000.0);
        let trend = Trend {
            start: 10_000 - 2_592_000,
            end: 10_000,
            step: 8_640,
            points: vec![
                (1_360, Events::default()),
                (10_000, Events::new(53.0, 600.0)),
            ],
        };
        let html = slo_page(&[&i], Some(10_000), Some(Ok(trend)), &[], "");
        assert!(html.contains("The period holds 10m of 30d"), "{html}");
        assert!(html.contains("<b>42m of 43m</b>"), "{html}");
        assert!(html.contains("53s spent"), "{html}");
        assert!(!html.contains("overspent"), "{html}");
        assert!(html.contains("Data starts at"), "{html}");
    }

    #[test]
    fn a_failed_trend_still_renders_the_page() {
        let i = instance("<b>svc</b>");
        let html = slo_page(
            &[&i],
            Some(1_000),
            Some(Err("no answer from Prometheus within 10s".to_string())),
            &[],
            "",
        );
        assert!(html.contains("History unavailable: no answer from Prometheus within 10s"));
        assert!(html.contains("&lt;b&gt;svc&lt;/b&gt; / avail"));
        assert!(!html.contains("<b>svc"));
        assert!(!html.contains("<svg"));
    }

    #[test]
    fn not_found_escapes_the_path() {
        let html = not_found("/slo/<x>/y", "");
        assert!(html.contains("/slo/&lt;x&gt;/y"));
    }
}
