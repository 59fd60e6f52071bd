//! `backtest`'s report: the alerts that would have fired per SLO instance
//! and the budget at the end of the replay, as JSON and as a table.

use serde_json::{json, Value};

use super::{label, Replayed, Report};
use crate::state::Instance;
use crate::time::rfc3339;

fn episode_json(r: &Replayed) -> Value {
    let e = &r.episode;
    json!({
        "alertname": label(&e.labels, "alertname"),
        "severity": label(&e.labels, "severity"),
        "long_window": label(&e.labels, "long_window"),
        "short_window": label(&e.labels, "short_window"),
        "labels": e.labels,
        "start": rfc3339(e.started),
        "end": e.ended.map(rfc3339),
        "ongoing": r.ongoing,
        "peak_burn_rate": Value::from(e.peak_burn_rate),
    })
}

/// `backtest --output json`: per SLO instance, the alerts that would have
/// fired and the budget at the end of the replay.
pub fn json(report: &Report, from: i64, to: i64, step: u64) -> Value {
    let slos: Vec<Value> = report
        .last
        .instances
        .iter()
        .map(|i| {
            let mine: Vec<Value> = report
                .episodes
                .iter()
                .filter(|r| belongs(i, &r.episode.labels))
                .map(episode_json)
                .collect();
            json!({
                "service": i.slo.service,
                "slo": i.slo.name,
                "labels": i.labels(),
                "status": i.status.as_str(),
                "error_budget_remaining_ratio": i.figures.as_ref().map_or(Value::Null, |f| Value::from(f.remaining_ratio)),
                "alerts": mine,
            })
        })
        .collect();
    json!({"from": rfc3339(from), "to": rfc3339(to), "step_seconds": step, "slos": slos})
}

/// An alert belongs to the instance whose labels it carries.
fn belongs(i: &Instance, labels: &std::collections::BTreeMap<String, String>) -> bool {
    labels.get("service") == Some(&i.slo.service)
        && labels.get("slo") == Some(&i.slo.name)
        && i.group.iter().all(|(k, v)| labels.get(k) == Some(v))
}

pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for i in &report.last.instances {
        let group = i
            .group
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let left = i.figures.as_ref().map_or("-".to_string(), |f| {
            format!("{:.1}%", f.remaining_ratio * 100.0)
        });
        out.push_str(&format!(
            "{}/{}{}  budget left at the end: {}  status: {}\n",
            i.slo.service,
            i.slo.name,
            if group.is_empty() {
                String::new()
            } else {
                format!(" {{{group}}}")
            },
            left,
            i.status.as_str()
        ));
        let mine: Vec<_> = report
            .episodes
            .iter()
            .filter(|r| belongs(i, &r.episode.labels))
            .collect();
        if mine.is_empty() {
            out.push_str("  no alert would have fired\n");
            continue;
        }
        out.push_str("  ALERT                          SEVERITY  WINDOWS    START                 END                   PEAK BURN\n");
        for r in mine {
            let e = &r.episode;
            out.push_str(&format!(
                "  {:<30} {:<9} {:<10} {:<21} {:<21} {:.2}\n",
                label(&e.labels, "alertname"),
                label(&e.labels, "severity"),
                format!(
                    "{}/{}",
                    label(&e.labels, "long_window"),
                    label(&e.labels, "short_window")
                ),
                rfc3339(e.started),
                e.ended.map_or("(still firing)".to_string(), rfc3339),
                e.peak_burn_rate
            ));
        }
    }
    out
}
