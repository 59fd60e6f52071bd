//! The JSON document of `eval --output json` and `/api/v1/slos`, and the
//! table `eval` prints for people. Both render a state snapshot.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use crate::state::{Instance, Snapshot, Status};

pub fn rfc3339(unix: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// JSON numbers cannot be NaN or infinite: those become null.
fn num(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

pub fn instance_json(i: &Instance) -> Value {
    let slo = &i.slo;
    let mut o = Map::new();
    o.insert("service".into(), json!(slo.service));
    o.insert("slo".into(), json!(slo.name));
    o.insert("labels".into(), json!(i.labels()));
    o.insert("description".into(), json!(slo.description));
    o.insert("sli_type".into(), json!(slo.sli.kind()));
    o.insert("objective".into(), num(slo.objective.ratio()));
    o.insert("period_seconds".into(), json!(slo.period.as_secs()));
    o.insert("status".into(), json!(i.status.as_str()));
    if let Some(e) = &i.error {
        o.insert("error".into(), json!(e));
    }
    o.insert(
        "last_success".into(),
        i.last_success.map_or(Value::Null, |t| json!(rfc3339(t))),
    );
    let fig = i.figures.as_ref();
    let per_window = |f: &dyn Fn(&crate::state::WindowFigures) -> f64| -> Value {
        let mut m = Map::new();
        for w in fig.map(|f| f.windows.as_slice()).unwrap_or_default() {
            m.insert(w.window.to_string(), num(f(w)));
        }
        Value::Object(m)
    };
    o.insert("error_ratio".into(), per_window(&|w| w.error_ratio));
    o.insert("burn_rate".into(), per_window(&|w| w.burn_rate));
    o.insert(
        "error_budget_exhaustion_seconds".into(),
        per_window(&|w| w.exhaustion_seconds),
    );
    let field = |f: &dyn Fn(&crate::state::Figures) -> f64| fig.map_or(Value::Null, |x| num(f(x)));
    o.insert(
        "period_error_ratio".into(),
        field(&|f| f.period_error_ratio),
    );
    o.insert(
        "error_budget_remaining_ratio".into(),
        field(&|f| f.remaining_ratio),
    );
    o.insert(
        "error_budget_seconds".into(),
        num(slo.error_budget_seconds()),
    );
    o.insert(
        "error_budget_remaining_seconds".into(),
        field(&|f| f.remaining_seconds),
    );
    o.insert("period_coverage_ratio".into(), field(&|f| f.coverage.ratio));
    o.insert(
        "data_since".into(),
        fig.and_then(|f| f.coverage.data_since)
            .map_or(Value::Null, |t| json!(rfc3339(t))),
    );
    o.insert(
        "period_events".into(),
        match fig.and_then(|f| f.period_events) {
            Some(e) => json!({"total": num(e.total), "bad": num(e.bad)}),
            None => Value::Null,
        },
    );
    o.insert(
        "release_frozen".into(),
        fig.map_or(Value::Null, |f| json!(f.release_frozen)),
    );
    let alerts: Vec<Value> = fig
        .map(|f| f.alerts.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|a| {
            json!({
                "severity": a.severity.as_str(),
                "firing": a.firing,
                "condition": a.condition,
                "low_traffic": a.low_traffic,
                "long_window": a.long.to_string(),
                "short_window": a.short.to_string(),
                "burn_rate_threshold": num(a.burn_rate_threshold),
            })
        })
        .collect();
    o.insert("alerts".into(), Value::Array(alerts));
    Value::Object(o)
}

pub fn snapshot_json(s: &Snapshot) -> Value {
    json!({
        "evaluated_at": s.evaluated_at.map_or(Value::Null, |t| json!(rfc3339(t))),
        "slos": s.instances.iter().map(instance_json).collect::<Vec<_>>(),
    })
}

/// A fixed-width table for people, one row per SLO instance.
pub fn table(s: &Snapshot) -> String {
    let header = [
        "SERVICE",
        "SLO",
        "GROUP",
        "STATUS",
        "OBJECTIVE",
        "BUDGET LEFT",
        "PERIOD HOLDS",
        "BURN 5m",
        "BURN 1h",
        "BURN 6h",
        "BURN 3d",
        "FROZEN",
        "FIRING",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for i in &s.instances {
        let fig = i.figures.as_ref();
        let burn = |w: &str| {
            fig.and_then(|f| f.windows.iter().find(|x| x.window.to_string() == w))
                .map_or("-".to_string(), |x| format!("{:.2}", x.burn_rate))
        };
        let group = i
            .group
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let firing = fig
            .map(|f| {
                f.alerts
                    .iter()
                    .filter(|a| a.firing)
                    .map(|a| format!("{}({}/{})", a.severity.as_str(), a.long, a.short))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let status = match (&i.status, &i.error) {
            (Status::Error, Some(e)) => format!("error: {e}"),
            (st, _) => st.as_str().to_string(),
        };
        rows.push(vec![
            i.slo.service.clone(),
            i.slo.name.clone(),
            if group.is_empty() { "-".into() } else { group },
            status,
            format!("{}%", i.slo.objective.percent()),
            fig.map_or("-".into(), |f| format!("{:.1}%", f.remaining_ratio * 100.0)),
            fig.map_or("-".into(), |f| {
                if f.coverage.is_partial() {
                    format!(
                        "{} of {}",
                        crate::duration::human(f.coverage.seconds).unwrap_or_default(),
                        crate::duration::format(i.slo.period)
                    )
                } else {
                    "all".into()
                }
            }),
            burn("5m"),
            burn("1h"),
            burn("6h"),
            burn("3d"),
            fig.map_or("-".into(), |f| {
                if f.release_frozen { "yes" } else { "no" }.into()
            }),
            if firing.is_empty() {
                "-".into()
            } else {
                firing
            },
        ]);
    }
    let cols = header.len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{v:<w$}", w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn episode_json(r: &crate::backtest::Replayed) -> Value {
    use crate::backtest::label;
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
        "peak_burn_rate": num(e.peak_burn_rate),
    })
}

/// `backtest --output json`: per SLO instance, the alerts that would have
/// fired and the budget at the end of the replay.
pub fn backtest_json(report: &crate::backtest::Report, from: i64, to: i64, step: u64) -> Value {
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
                "error_budget_remaining_ratio": i.figures.as_ref().map_or(Value::Null, |f| num(f.remaining_ratio)),
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

pub fn backtest_table(report: &crate::backtest::Report) -> String {
    use crate::backtest::label;
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
