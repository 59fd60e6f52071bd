//! The JSON document of `eval --output json` and `/api/v1/slos`, rendered
//! from a state snapshot.

use serde_json::{json, Map, Value};

use crate::state::{Instance, Snapshot};
use crate::time::rfc3339;

/// Numbers go through `Value::from`, which makes NaN and infinities null
/// (JSON has neither).
pub fn instance_json(i: &Instance) -> Value {
    let slo = &i.slo;
    let mut o = Map::new();
    o.insert("service".into(), json!(slo.service));
    o.insert("slo".into(), json!(slo.name));
    o.insert("labels".into(), json!(i.labels()));
    o.insert("description".into(), json!(slo.description));
    o.insert("sli_type".into(), json!(slo.sli.kind()));
    o.insert("objective".into(), Value::from(slo.objective.ratio()));
    o.insert("period_seconds".into(), json!(i.period_seconds() as i64));
    o.insert("period".into(), period_json(i));
    o.insert("status".into(), json!(i.status.as_str()));
    if let Some(e) = &i.error {
        o.insert("error".into(), json!(e.to_string()));
    }
    o.insert(
        "last_success".into(),
        i.last_success.map_or(Value::Null, |t| json!(rfc3339(t))),
    );
    let fig = i.figures.as_ref();
    let per_window = |f: &dyn Fn(&crate::state::WindowFigures) -> f64| -> Value {
        let mut m = Map::new();
        for w in fig.map(|f| f.windows.as_slice()).unwrap_or_default() {
            m.insert(w.window.to_string(), Value::from(f(w)));
        }
        Value::Object(m)
    };
    o.insert("error_ratio".into(), per_window(&|w| w.error_ratio));
    o.insert("burn_rate".into(), per_window(&|w| w.burn_rate));
    o.insert(
        "error_budget_exhaustion_seconds".into(),
        per_window(&|w| w.exhaustion_seconds),
    );
    let field =
        |f: &dyn Fn(&crate::state::Figures) -> f64| fig.map_or(Value::Null, |x| Value::from(f(x)));
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
        Value::from(i.budget_seconds()),
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
        "period_excluded_seconds".into(),
        field(&|f| f.excluded_seconds),
    );
    o.insert(
        "excluded_seconds".into(),
        per_window(&|w| w.excluded_seconds),
    );
    o.insert(
        "period_events".into(),
        match fig.and_then(|f| f.period_events) {
            Some(e) => json!({"total": Value::from(e.total), "bad": Value::from(e.bad)}),
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
                "burn_rate_threshold": Value::from(a.burn_rate_threshold),
            })
        })
        .collect();
    o.insert("alerts".into(), Value::Array(alerts));
    Value::Object(o)
}

/// What kind of period the figures are over and, for a calendar one,
/// which: `{"kind": "calendar", "unit": "month", "time_zone":
/// "Europe/Berlin", "name": "2026-12", "start": ..., "end": ...}`.
fn period_json(i: &Instance) -> Value {
    let Some(c) = &i.slo.calendar else {
        return json!({"kind": "rolling"});
    };
    let mut o = Map::new();
    o.insert("kind".into(), json!("calendar"));
    o.insert("unit".into(), json!(c.unit.as_str()));
    o.insert("time_zone".into(), json!(c.tz.name()));
    if let (Some(f), Some(name)) = (&i.figures, i.period_name()) {
        o.insert("name".into(), json!(name));
        o.insert("start".into(), json!(rfc3339(f.period_start)));
        o.insert("end".into(), json!(rfc3339(f.period_end)));
    }
    Value::Object(o)
}

pub fn snapshot_json(s: &Snapshot) -> Value {
    snapshot_json_of(s, |_| true)
}

/// Adds to each instance of a snapshot document the overrides in force
/// at `now` for its SLO (`overrides`), which `gate` reads.
pub fn add_overrides(doc: &mut Value, book: &crate::records::Book, now: i64) {
    use crate::records::RecordKind;
    for i in doc["slos"].as_array_mut().into_iter().flatten() {
        let (service, slo) = (
            i["service"].as_str().unwrap_or_default().to_string(),
            i["slo"].as_str().unwrap_or_default().to_string(),
        );
        let active: Vec<Value> = book
            .active_overrides(&service, &slo, now)
            .map(RecordKind::to_json)
            .collect();
        i["overrides"] = active.into();
    }
}

/// The document with only the instances `keep` accepts (`/api/v1/slos?service=`).
pub fn snapshot_json_of(s: &Snapshot, keep: impl Fn(&Instance) -> bool) -> Value {
    json!({
        "evaluated_at": s.evaluated_at.map_or(Value::Null, |t| json!(rfc3339(t))),
        "slos": s.instances.iter().filter(|i| keep(i)).map(instance_json).collect::<Vec<_>>(),
    })
}
