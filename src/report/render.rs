//! The period report as JSON, Markdown (to paste into a review) and a
//! standalone HTML page.

use serde_json::{json, Value};

use super::{Incident, PeriodReport, SloReport};
use crate::time::{human, rfc3339};

fn incident_json(i: &Incident) -> Value {
    json!({
        "start": rfc3339(i.start),
        "end": i.end.map(rfc3339),
        "severity": i.severity.as_str(),
        "alerts": i.alerts,
        "peak_burn_rate": Value::from(i.peak_burn_rate),
        "counted_from": rfc3339(i.counted_from),
        "bad_events": Value::from(i.bad),
        "budget_consumed_ratio": Value::from(i.budget_consumed_ratio),
    })
}

fn slo_json(r: &SloReport) -> Value {
    let i = &r.instance;
    let f = i.figures.as_ref();
    let num =
        |g: &dyn Fn(&crate::state::Figures) -> f64| f.map_or(Value::Null, |f| Value::from(g(f)));
    json!({
        "service": i.slo.service,
        "slo": i.slo.name,
        "labels": i.labels(),
        "status": i.status.as_str(),
        "error": i.error.as_ref().map(|e| e.to_string()),
        "objective": Value::from(i.slo.objective.ratio()),
        "period": {
            "name": r.period.name,
            "start": rfc3339(r.period.start),
            "end": rfc3339(r.period.end),
            "kind": if i.slo.calendar.is_some() { "calendar" } else { "rolling" },
            "time_zone": i.slo.calendar.map(|c| c.tz.name().to_string()),
        },
        "achieved_ratio": num(&|f| 1.0 - f.period_error_ratio),
        "met": f.map(|f| 1.0 - f.period_error_ratio >= i.slo.objective.ratio()),
        "period_events": f.and_then(|f| f.period_events).map(|e| json!({"total": Value::from(e.total), "bad": Value::from(e.bad)})),
        "error_budget_seconds": Value::from(i.budget_seconds()),
        "budget_consumed_ratio": num(&|f| 1.0 - f.remaining_ratio),
        "error_budget_remaining_ratio": num(&|f| f.remaining_ratio),
        "excluded_seconds": num(&|f| f.excluded_seconds),
        "period_coverage_ratio": num(&|f| f.coverage.ratio),
        "time_in_freeze_seconds": r.freeze_seconds,
        "incidents": r.incidents.iter().map(incident_json).collect::<Vec<_>>(),
        "deployments": r.deployments.iter().map(|d| json!({
            "version": d.deployment.version,
            "at": rfc3339(d.deployment.at),
            "source": d.deployment.source.as_str(),
            "description": d.deployment.description,
            "budget_consumed_next_hour_ratio": d.budget_consumed_ratio.map(Value::from),
        })).collect::<Vec<_>>(),
        "overrides": r.overrides.iter().map(|o| json!({
            "slo": o.slo,
            "reason": o.reason,
            "by": o.by,
            "from": rfc3339(o.from),
            "until": rfc3339(o.until),
            "source": o.source.as_str(),
        })).collect::<Vec<_>>(),
    })
}

pub fn json(r: &PeriodReport) -> Value {
    json!({
        "period": r.name,
        "step_seconds": r.step,
        "failed_evaluations": r.failed_cycles,
        "slos": r.slos.iter().map(slo_json).collect::<Vec<_>>(),
    })
}

fn pct(x: f64) -> String {
    if x.is_finite() {
        format!("{:.3}%", x * 100.0)
    } else {
        "-".into()
    }
}

fn share(x: f64) -> String {
    if x.is_finite() {
        format!("{:.1}%", x * 100.0)
    } else {
        "-".into()
    }
}

fn secs(s: f64) -> String {
    human(s).unwrap_or_else(|| "-".into())
}

/// `|` and line breaks would end a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn instance_name(r: &SloReport) -> String {
    let i = &r.instance;
    let group: Vec<String> = i.group.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if group.is_empty() {
        format!("{}/{}", i.slo.service, i.slo.name)
    } else {
        format!("{}/{} {{{}}}", i.slo.service, i.slo.name, group.join(","))
    }
}

/// One row of the summary: SLO, objective, achieved, met, budget consumed,
/// maintenance, freeze, incidents.
fn summary_row(r: &SloReport) -> [String; 8] {
    let i = &r.instance;
    let f = i.figures.as_ref();
    let achieved = f.map_or(f64::NAN, |f| 1.0 - f.period_error_ratio);
    [
        instance_name(r),
        pct(i.slo.objective.ratio()),
        pct(achieved),
        match f {
            None => "no figures".into(),
            Some(_) if achieved >= i.slo.objective.ratio() => "yes".into(),
            Some(_) => "**no**".into(),
        },
        share(f.map_or(f64::NAN, |f| 1.0 - f.remaining_ratio)),
        secs(f.map_or(0.0, |f| f.excluded_seconds)),
        secs(r.freeze_seconds as f64),
        r.incidents.len().to_string(),
    ]
}

const SUMMARY: [&str; 8] = [
    "SLO",
    "Objective",
    "Achieved",
    "Met",
    "Budget consumed",
    "Maintenance",
    "Time in freeze",
    "Incidents",
];

const DEPLOY: [&str; 4] = ["Version", "At", "Budget consumed in the next hour", "Note"];

fn deploy_row(d: &super::DeployImpact) -> [String; 4] {
    [
        d.deployment.version.clone(),
        rfc3339(d.deployment.at),
        d.budget_consumed_ratio.map_or("-".into(), share),
        d.deployment.description.clone(),
    ]
}

const OVERRIDE: [&str; 5] = ["By", "From", "Until", "SLO", "Reason"];

fn override_row(o: &crate::records::Override) -> [String; 5] {
    [
        o.by.clone(),
        rfc3339(o.from),
        rfc3339(o.until),
        o.slo.clone().unwrap_or_else(|| "all".into()),
        o.reason.clone(),
    ]
}

const INCIDENT: [&str; 6] = [
    "Start",
    "End",
    "Severity",
    "Alerts",
    "Peak burn",
    "Budget consumed",
];

fn incident_row(i: &Incident) -> [String; 6] {
    [
        rfc3339(i.start),
        i.end.map_or("(still firing)".into(), rfc3339),
        i.severity.as_str().to_string(),
        i.alerts.join(", "),
        format!("{:.1}", i.peak_burn_rate),
        share(i.budget_consumed_ratio),
    ]
}

fn md_table<const N: usize>(
    out: &mut String,
    head: [&str; N],
    rows: impl Iterator<Item = [String; N]>,
) {
    out.push_str(&format!("| {} |\n", head.join(" | ")));
    out.push_str(&format!("|{}\n", "---|".repeat(N)));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
}

pub fn markdown(r: &PeriodReport) -> String {
    let mut out = format!("# SLO report {}\n\n", r.name);
    if let Some(first) = r.slos.first() {
        out.push_str(&format!(
            "Period {} to {}. Budget consumed and incidents as the alert policy saw them, replayed every {}.\n\n",
            rfc3339(first.period.start),
            rfc3339(first.period.end),
            secs(r.step as f64)
        ));
    }
    if r.failed_cycles > 0 {
        out.push_str(&format!(
            "**{} replayed evaluations failed: figures around them are incomplete.**\n\n",
            r.failed_cycles
        ));
    }
    md_table(&mut out, SUMMARY, r.slos.iter().map(summary_row));
    for s in &r.slos {
        out.push_str(&format!("\n## {}\n\n", cell(&instance_name(s))));
        if let Some(e) = &s.instance.error {
            out.push_str(&format!("Evaluation failed: {}\n\n", cell(&e.to_string())));
        }
        if s.incidents.is_empty() {
            out.push_str("No alert fired.\n");
        } else {
            md_table(&mut out, INCIDENT, s.incidents.iter().map(incident_row));
        }
        if !s.deployments.is_empty() {
            out.push_str(&format!("\nDeploys ({}):\n\n", s.deployments.len()));
            md_table(&mut out, DEPLOY, s.deployments.iter().map(deploy_row));
        }
        if !s.overrides.is_empty() {
            out.push_str("\nRelease-freeze overrides:\n\n");
            md_table(&mut out, OVERRIDE, s.overrides.iter().map(override_row));
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html_table<const N: usize>(
    out: &mut String,
    head: [&str; N],
    rows: impl Iterator<Item = [String; N]>,
) {
    out.push_str("<table>\n<tr>");
    for h in head {
        out.push_str(&format!("<th>{}</th>", escape(h)));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for c in row {
            out.push_str(&format!("<td>{}</td>", escape(c.trim_matches('*'))));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

pub fn html(r: &PeriodReport) -> String {
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>SLO report {}</title>\n<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style></head><body>\n<h1>SLO report {}</h1>\n",
        escape(&r.name),
        escape(&r.name)
    );
    if r.failed_cycles > 0 {
        out.push_str(&format!(
            "<p><b>{} replayed evaluations failed: figures around them are incomplete.</b></p>\n",
            r.failed_cycles
        ));
    }
    html_table(&mut out, SUMMARY, r.slos.iter().map(summary_row));
    for s in &r.slos {
        out.push_str(&format!("<h2>{}</h2>\n", escape(&instance_name(s))));
        if s.incidents.is_empty() {
            out.push_str("<p>No alert fired.</p>\n");
        } else {
            html_table(&mut out, INCIDENT, s.incidents.iter().map(incident_row));
        }
        if !s.deployments.is_empty() {
            out.push_str(&format!("<h3>Deploys ({})</h3>\n", s.deployments.len()));
            html_table(&mut out, DEPLOY, s.deployments.iter().map(deploy_row));
        }
        if !s.overrides.is_empty() {
            out.push_str("<h3>Release-freeze overrides</h3>\n");
            html_table(&mut out, OVERRIDE, s.overrides.iter().map(override_row));
        }
    }
    out.push_str("</body></html>\n");
    out
}
