//! OpenSLO `apiVersion: openslo/v1`, `kind: SLO` with a Prometheus
//! `ratioMetric`, read into the same drafts as Sloth specs.
//!
//! What maps and what is refused:
//! - `metadata.name` → SLO name, `spec.service` → service,
//!   `metadata.labels` → labels (a list value is joined with `,`: Prometheus
//!   labels hold one string), `spec.description` → description.
//! - `objectives[0].target` (a ratio, 0.999) → objective 99.9 percent;
//!   `targetPercent` is taken as is. One objective only.
//! - `timeWindow[0].duration` → period; rolling only. Calendar windows and
//!   `Timeslices`/`RatioTimeslices` budgeting are rejected: errbudget counts
//!   occurrences over a rolling period.
//! - `ratioMetric`: `bad`/`total` → events SLI as is; `good`/`total` → bad =
//!   `(total) - (good)`. The indicator may be inline or an `indicatorRef` to
//!   a `kind: SLI` in the same file.
//! - Queries with `{{.window}}` are used as written (Sloth's convention).
//!   OpenSLO queries usually have no range; for a `counter: true` metric a
//!   query that is a plain selector or `sum [by (...)] (selector)` is
//!   windowed as `sum [by (...)] (rate(selector[{{.window}}]))` — rate
//!   before sum, so counter resets are handled. Anything else without
//!   `{{.window}}` is refused with a message saying to add it.
//! - Other kinds (`SLI`, `Service`, `DataSource`, `AlertPolicy`, ...) are
//!   skipped; `alertPolicies` are refused (errbudget alerts by burn-rate
//!   policy, see `alerting.windows` in Sloth-format specs).

use std::collections::HashMap;

use promql_parser::parser::{Expr, LabelModifier};

use super::promql;
use super::validate::{Draft, DraftAlerting, DraftSli, Label, Query};
use super::yaml::{Cx, Field, Map, Node, Sp};

/// Kinds of the OpenSLO v1 spec that errbudget skips without complaint.
const OTHER_KINDS: [&str; 6] = [
    "SLI",
    "Service",
    "DataSource",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
];

/// `kind: SLI` objects of the file by name, for `indicatorRef`.
pub type Slis<'a, 'i> = HashMap<String, &'a Node<'i>>;

/// Reads one `openslo/v1` object; `None` for the kinds that are skipped.
pub fn read(cx: &mut Cx<'_>, top: &Map<'_, '_>, slis: &Slis<'_, '_>) -> Option<Draft> {
    let kind = top.req_str(cx, "kind")?;
    if OTHER_KINDS.contains(&kind.value.as_str()) {
        return None;
    }
    if kind.value != "SLO" {
        cx.err(
            kind.pos,
            format!(
                "{}: unknown OpenSLO kind {:?}: expected SLO (or {})",
                super::yaml::join(&top.path, "kind"),
                kind.value,
                OTHER_KINDS.join(", ")
            ),
        );
        return None;
    }
    let top = Map::open(
        cx,
        top.node,
        &top.path,
        &["apiVersion", "kind", "metadata", "spec"],
    )?;
    let meta = top
        .req(cx, "metadata")
        .and_then(|f| f.map(cx, &["name", "displayName", "labels", "annotations"]));
    let name = meta.as_ref().and_then(|m| m.req_str(cx, "name"));
    let labels = meta
        .as_ref()
        .and_then(|m| m.get("labels"))
        .map(|f| labels(cx, &f))
        .unwrap_or_default();
    let display = meta.as_ref().and_then(|m| m.str(cx, "displayName"));
    let spec = top.req(cx, "spec")?.map(
        cx,
        &[
            "description",
            "service",
            "indicator",
            "indicatorRef",
            "timeWindow",
            "budgetingMethod",
            "objectives",
            "alertPolicies",
        ],
    )?;
    let mut broken = false;
    if let Some(f) = spec.get("alertPolicies") {
        cx.err(
            f.key_pos,
            format!(
                "{}: alertPolicies are not supported: errbudget alerts with multiwindow burn-rate windows; remove them",
                f.path
            ),
        );
        broken = true;
    }
    if let Some(b) = spec.req_str(cx, "budgetingMethod") {
        if b.value != "Occurrences" {
            cx.err(
                b.pos,
                format!(
                    "{}: budgetingMethod {} is not supported: errbudget counts occurrences (bad/total events); use Occurrences",
                    super::yaml::join(&spec.path, "budgetingMethod"),
                    b.value
                ),
            );
            broken = true;
        }
    }
    let period = read_time_window(cx, &spec);
    let objective = read_objective(cx, &spec);
    let sli = match (spec.get("indicator"), spec.get("indicatorRef")) {
        (Some(i), None) => read_indicator(cx, &i),
        (None, Some(r)) => {
            let r_name = r.str(cx)?;
            match slis.get(&r_name.value) {
                Some(node) => {
                    let f = Field {
                        key_pos: r.key_pos,
                        path: format!("SLI {:?}", r_name.value),
                        node,
                    };
                    read_indicator(cx, &f)
                }
                None => {
                    cx.err(
                        r_name.pos,
                        format!(
                            "{}: no kind: SLI named {:?} in this file: inline it as spec.indicator or add it to the file",
                            r.path, r_name.value
                        ),
                    );
                    None
                }
            }
        }
        _ => {
            cx.err(
                spec.pos,
                format!(
                    "{}: give exactly one of indicator or indicatorRef",
                    spec.path
                ),
            );
            None
        }
    };
    broken |= sli.is_none() || period.is_none() || objective.is_none();
    let description = spec
        .str(cx, "description")
        .or(display)
        .map(|s| s.value)
        .unwrap_or_default();
    Some(Draft {
        pos: top.pos,
        path: top.path.clone(),
        service: spec.req_str(cx, "service"),
        service_labels: Vec::new(),
        service_labels_path: String::new(),
        name,
        objective,
        description,
        labels,
        period,
        sli,
        alerting: DraftAlerting::default(),
        release_freeze_below: None,
        broken,
    })
}

/// `metadata.labels`: OpenSLO allows a list of values per label.
fn labels(cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Vec<Label> {
    let Some(m) = f.map_any(cx) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in m.entries() {
        let key = Sp {
            value: k.value.to_string(),
            pos: k.pos,
        };
        if let Some(items) = super::yaml::as_str(v.node)
            .is_none()
            .then(|| v.seq(cx))
            .flatten()
        {
            let parts: Vec<String> = items
                .iter()
                .filter_map(|i| i.str(cx).map(|s| s.value))
                .collect();
            out.push((
                key,
                Sp {
                    value: parts.join(","),
                    pos: v.pos(),
                },
            ));
        } else if let Some(s) = v.str(cx) {
            out.push((key, s));
        }
    }
    out
}

fn read_time_window(cx: &mut Cx<'_>, spec: &Map<'_, '_>) -> Option<Sp<String>> {
    let items = spec.req(cx, "timeWindow")?.seq(cx)?;
    let first = items.first().or_else(|| {
        cx.err(spec.pos, format!("{}.timeWindow: empty list", spec.path));
        None
    })?;
    if items.len() > 1 {
        cx.err(
            items[1].pos(),
            format!("{}: only one time window is supported", items[1].path),
        );
    }
    let w = first.map(cx, &["duration", "isRolling", "calendar"])?;
    let rolling = w.bool(cx, "isRolling").unwrap_or(false);
    if !rolling || w.has("calendar") {
        cx.err(
            w.pos,
            format!(
                "{}: calendar-aligned time windows are not supported: errbudget computes a rolling period; set isRolling: true and remove calendar",
                w.path
            ),
        );
        return None;
    }
    w.req_str(cx, "duration")
}

fn read_objective(cx: &mut Cx<'_>, spec: &Map<'_, '_>) -> Option<Sp<f64>> {
    let items = spec.req(cx, "objectives")?.seq(cx)?;
    let first = items.first().or_else(|| {
        cx.err(spec.pos, format!("{}.objectives: empty list", spec.path));
        None
    })?;
    if items.len() > 1 {
        cx.err(
            items[1].pos(),
            format!("{}: only one objective per SLO is supported", items[1].path),
        );
    }
    let o = first.map(
        cx,
        &[
            "displayName",
            "op",
            "value",
            "target",
            "targetPercent",
            "timeSliceTarget",
            "timeSliceWindow",
            "indicator",
            "indicatorRef",
            "compositeWeight",
        ],
    )?;
    for key in ["indicator", "indicatorRef", "compositeWeight"] {
        if let Some(f) = o.get(key) {
            cx.err(
                f.key_pos,
                format!("{}: composite SLOs are not supported", f.path),
            );
        }
    }
    match (o.get("target"), o.get("targetPercent")) {
        (Some(t), None) => {
            let t = t.f64(cx)?;
            // A ratio; specs give percent. Rounded so 0.995 is 99.5, not
            // 99.49999999999999.
            Some(Sp {
                value: (t.value * 100.0 * 1e9).round() / 1e9,
                pos: t.pos,
            })
        }
        (None, Some(p)) => p.f64(cx),
        _ => {
            cx.err(
                o.pos,
                format!("{}: give exactly one of target or targetPercent", o.path),
            );
            None
        }
    }
}

/// `indicator: {metadata, spec: {ratioMetric: ...}}` (also a `kind: SLI`).
fn read_indicator(cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<DraftSli> {
    let i = f.map(cx, &["apiVersion", "kind", "metadata", "spec"])?;
    let spec = i
        .req(cx, "spec")?
        .map(cx, &["description", "ratioMetric", "thresholdMetric"])?;
    if let Some(t) = spec.get("thresholdMetric") {
        cx.err(
            t.key_pos,
            format!(
                "{}: thresholdMetric is not supported: errbudget needs bad (or good) and total events; use ratioMetric",
                t.path
            ),
        );
        return None;
    }
    let r = spec
        .req(cx, "ratioMetric")?
        .map(cx, &["counter", "good", "bad", "total", "rawType", "raw"])?;
    if let Some(raw) = r.get("raw") {
        cx.err(
            raw.key_pos,
            format!(
                "{}: a raw ratioMetric is not supported: give good or bad, and total",
                raw.path
            ),
        );
        return None;
    }
    let counter = r.bool(cx, "counter").unwrap_or(false);
    let total = r
        .req(cx, "total")
        .and_then(|f| metric_query(cx, &f, counter));
    let error = match (r.get("good"), r.get("bad")) {
        (Some(g), None) => metric_query(cx, &g, counter).map(|g| Query {
            text: format!(
                "({}) - ({})",
                total.as_ref().map_or("", |t| &t.text),
                g.text
            ),
            ..g
        }),
        (None, Some(b)) => metric_query(cx, &b, counter),
        _ => {
            cx.err(
                r.pos,
                format!("{}: give exactly one of good or bad", r.path),
            );
            None
        }
    };
    Some(DraftSli::Events {
        error: error?,
        total: total?,
    })
}

/// `{metricSource: {type: Prometheus, spec: {query}}}` → a query template.
fn metric_query(cx: &mut Cx<'_>, f: &Field<'_, '_>, counter: bool) -> Option<Query> {
    let m = f.map(cx, &["metricSource"])?;
    let src = m
        .req(cx, "metricSource")?
        .map(cx, &["metricSourceRef", "type", "spec"])?;
    if let Some(t) = src.str(cx, "type") {
        if !t.value.eq_ignore_ascii_case("prometheus") {
            cx.err(
                t.pos,
                format!(
                    "{}.type: metric source type {:?} is not supported: errbudget queries Prometheus-compatible APIs",
                    src.path, t.value
                ),
            );
            return None;
        }
    }
    let qspec = src.req(cx, "spec")?.map(cx, &["query"])?;
    let qf = qspec.req(cx, "query")?;
    let q = qf.str(cx)?;
    let text = q.value.trim().to_string();
    if promql::has_window(&text) {
        return Some(Query {
            text,
            pos: q.pos,
            path: qf.path,
        });
    }
    match counter.then(|| window_counter(&text)).flatten() {
        Some(text) => Some(Query {
            text,
            pos: q.pos,
            path: qf.path,
        }),
        None => {
            cx.err(
                q.pos,
                format!(
                    "{}: query has no {{{{.window}}}} and cannot be windowed automatically (only a counter's selector or sum(selector) can): write it as a rate over [{{{{.window}}}}]",
                    qf.path
                ),
            );
            None
        }
    }
}

/// `sel` → `sum(rate(sel[{{.window}}]))`, `sum by (a) (sel)` →
/// `sum by (a) (rate(sel[{{.window}}]))`. `None` for any other shape.
fn window_counter(query: &str) -> Option<String> {
    let rate = |e: &Expr| match e {
        Expr::VectorSelector(v) if v.offset.is_none() && v.at.is_none() => {
            Some(format!("rate({v}[{{{{.window}}}}])"))
        }
        _ => None,
    };
    match promql::parse(query).ok()? {
        e @ Expr::VectorSelector(_) => Some(format!("sum({})", rate(&e)?)),
        Expr::Aggregate(a) if a.op.to_string() == "sum" && a.param.is_none() => {
            let grouping = match &a.modifier {
                None => String::new(),
                Some(LabelModifier::Include(l)) => format!(" by ({}) ", l.labels.join(", ")),
                Some(LabelModifier::Exclude(l)) => {
                    format!(" without ({}) ", l.labels.join(", "))
                }
            };
            Some(format!("sum{grouping}({})", rate(&a.expr)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_counter_selectors() {
        assert_eq!(
            window_counter(r#"sum(http_requests{code=~"2xx"})"#).as_deref(),
            Some(r#"sum(rate(http_requests{code=~"2xx"}[{{.window}}]))"#)
        );
        assert_eq!(
            window_counter("sum by (route) (http_requests)").as_deref(),
            Some("sum by (route) (rate(http_requests[{{.window}}]))")
        );
        assert_eq!(
            window_counter("http_requests").as_deref(),
            Some("sum(rate(http_requests[{{.window}}]))")
        );
        assert_eq!(window_counter("avg(http_requests)"), None);
        assert_eq!(window_counter("sum(a) / sum(b)"), None);
        assert_eq!(window_counter("sum(a offset 1h)"), None);
    }
}
