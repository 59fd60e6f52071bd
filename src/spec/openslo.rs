//! OpenSLO: `apiVersion: openslo/v1` (`SLO`, with its `SLI`, `AlertPolicy`
//! and `AlertCondition` inline or as objects of any file read together) and
//! Sloth's `openslo/v1alpha`, read into the same drafts as Sloth specs.
//!
//! What maps and what is refused (the README has the full table):
//! - `metadata.name` → SLO name, `spec.service` → service,
//!   `metadata.labels` → labels (a list value is joined with `,`: Prometheus
//!   labels hold one string), `spec.description` → description.
//! - `objectives[0].target` (a ratio, 0.999) → objective 99.9 percent;
//!   `targetPercent` is taken as is. One objective only.
//! - `timeWindow[0].duration` → period; rolling only. Calendar windows,
//!   calendar units (`1M`, `1Q`, `1Y`) and `Timeslices`/`RatioTimeslices`
//!   budgeting are rejected: errbudget counts occurrences over a rolling
//!   period.
//! - `ratioMetric`: `bad`/`total` → events SLI as is; `good`/`total` → bad =
//!   `(total) - (good)`; `raw` with `rawType: failure` → raw SLI, `success`
//!   → `1 - (raw)`. `thresholdMetric` on a histogram's `_bucket` series with
//!   `op: lte`/`lt` and `value` → latency SLI; other threshold metrics
//!   compare each sample and need time slices, so they are refused.
//! - Queries with `{{.window}}` are used as written (Sloth's convention).
//!   OpenSLO queries usually have no range; for a `counter: true` metric a
//!   query that is a plain selector or `sum [by (...)] (selector)` is
//!   windowed as `sum [by (...)] (rate(selector[{{.window}}]))` — rate
//!   before sum, so counter resets are handled. Anything else without
//!   `{{.window}}` is refused with a message saying to add it.
//! - `alertPolicies` (inline or `alertPolicyRef`) → `alerting.windows`: each
//!   `burnrate` condition (`op: gt`/`gte`) is a window pair with long =
//!   `lookbackWindow`, short = `alertAfter` (or long/12, the SRE Workbook's
//!   ratio, when `alertAfter` is 0 or absent) and factor = `threshold`;
//!   severity `page` or `ticket`. Notification targets become the
//!   `notification_target` label of that severity's alerts, for Alertmanager
//!   to route on. An `AlertPolicy` or `AlertCondition` that no SLO uses is
//!   reported, never ignored.
//! - `Service`, `DataSource` and `AlertNotificationTarget` objects are
//!   skipped (the first two carry nothing errbudget evaluates).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap, HashSet};

use promql_parser::parser::{Expr, LabelModifier};

use super::validate::{Draft, DraftAlerting, DraftPeriod, DraftSli, DraftWindow, Label, Query};
use crate::diag::yaml::{Cx, Field, Map, Node, Sp};
use crate::promql;

/// Kinds of the OpenSLO v1 spec that carry nothing to evaluate on their own.
const SKIPPED_KINDS: [&str; 3] = ["Service", "DataSource", "AlertNotificationTarget"];

/// Kinds that other objects reference by name.
const REFERENCED_KINDS: [&str; 4] = [
    "SLI",
    "AlertPolicy",
    "AlertCondition",
    "AlertNotificationTarget",
];

/// One named `openslo/v1` object of any file read together.
struct Obj<'a, 'i> {
    file: &'a str,
    path: String,
    node: &'a Node<'i>,
}

/// `SLI`, `AlertPolicy`, `AlertCondition` and `AlertNotificationTarget`
/// objects by kind and `metadata.name`, with which of them were used.
pub struct Index<'a, 'i> {
    objects: HashMap<(String, String), Vec<Obj<'a, 'i>>>,
    used: RefCell<HashSet<(String, String)>>,
}

/// A string field of a mapping node, without reporting anything.
fn peek<'a>(node: &'a Node<'_>, key: &str) -> Option<&'a Node<'a>> {
    let saphyr::YamlData::Mapping(m) = &node.data else {
        return None;
    };
    m.iter()
        .find(|(k, _)| crate::diag::yaml::as_str(k) == Some(key))
        .map(|(_, v)| v)
}

fn peek_str<'a>(node: &'a Node<'_>, key: &str) -> Option<&'a str> {
    peek(node, key).and_then(crate::diag::yaml::as_str)
}

impl<'a, 'i> Index<'a, 'i> {
    pub fn new(objects: &'a [(&'a str, String, &'a Node<'i>)]) -> Self {
        let mut out: HashMap<(String, String), Vec<Obj<'a, 'i>>> = HashMap::new();
        for (file, path, node) in objects {
            if peek_str(node, "apiVersion") != Some("openslo/v1") {
                continue;
            }
            let Some(kind) = peek_str(node, "kind").filter(|k| REFERENCED_KINDS.contains(k)) else {
                continue;
            };
            let Some(name) = peek(node, "metadata").and_then(|m| peek_str(m, "name")) else {
                continue;
            };
            out.entry((kind.to_string(), name.to_string()))
                .or_default()
                .push(Obj {
                    file,
                    path: path.clone(),
                    node,
                });
        }
        Index {
            objects: out,
            used: RefCell::new(HashSet::new()),
        }
    }

    /// The object `kind` named `name`, marked used; a message when there is
    /// none or more than one.
    fn get(&self, kind: &str, name: &str) -> Result<&Obj<'a, 'i>, String> {
        let key = (kind.to_string(), name.to_string());
        self.used.borrow_mut().insert(key.clone());
        match self.objects.get(&key).map(Vec::as_slice) {
            Some([one]) => Ok(one),
            Some([first, second, ..]) => Err(format!(
                "{kind} {name:?} is defined twice ({} {} and {} {}): give each a unique metadata.name",
                first.file,
                or_top(&first.path),
                second.file,
                or_top(&second.path)
            )),
            _ => Err(format!(
                "no kind: {kind} named {name:?} in the files read: add its file to the files checked, or inline it"
            )),
        }
    }

    /// Alert policies and conditions no SLO uses: errbudget would otherwise
    /// ignore them without a word.
    pub fn report_unused(&self, diags: &mut Vec<crate::diag::Diagnostic>) {
        let used = self.used.borrow();
        for ((kind, name), objs) in &self.objects {
            if kind != "AlertPolicy" && kind != "AlertCondition" {
                continue;
            }
            if used.contains(&(kind.clone(), name.clone())) {
                continue;
            }
            let how = if kind == "AlertPolicy" {
                "no SLO references it (spec.alertPolicies: [{alertPolicyRef: NAME}])"
            } else {
                "no AlertPolicy of an SLO references it (spec.conditions: [{conditionRef: NAME}])"
            };
            for o in objs {
                let mut cx = Cx::new(o.file);
                let pos = Map::open_any(&mut cx, o.node, &o.path)
                    .map(|m| m.pos)
                    .unwrap_or_default();
                diags.push(crate::diag::Diagnostic::new(
                    o.file,
                    pos.line,
                    pos.column,
                    format!(
                        "{}: {kind} {name:?} is not used: {how}; errbudget alerts only through an SLO's policies, so reference it or remove it",
                        or_top(&o.path)
                    ),
                ));
            }
        }
    }
}

fn or_top(path: &str) -> &str {
    if path.is_empty() {
        "top level"
    } else {
        path
    }
}

/// Runs `read` with diagnostics going to `file` (an object of another file
/// than the SLO's), and says which file the values came from.
fn in_file<T>(
    cx: &mut Cx<'_>,
    file: &str,
    read: impl FnOnce(&mut Cx<'_>) -> T,
) -> (T, Option<String>) {
    if file == cx.file {
        return (read(cx), None);
    }
    let mut sub = Cx::new(file);
    let out = read(&mut sub);
    cx.diags.extend(sub.diags);
    (out, Some(file.to_string()))
}

/// Reads one `openslo/v1` object; `None` for the kinds that are not SLOs
/// (those are read when an SLO references them).
pub fn read(cx: &mut Cx<'_>, top: &Map<'_, '_>, index: &Index<'_, '_>) -> Option<Draft> {
    let kind = top.req_str(cx, "kind")?;
    if SKIPPED_KINDS.contains(&kind.value.as_str())
        || REFERENCED_KINDS.contains(&kind.value.as_str())
    {
        return None;
    }
    if kind.value != "SLO" {
        cx.err(
            kind.pos,
            format!(
                "{}: unknown OpenSLO kind {:?}: expected SLO, SLI, AlertPolicy, AlertCondition, AlertNotificationTarget, Service or DataSource",
                crate::diag::yaml::join(&top.path, "kind"),
                kind.value,
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
    if let Some(b) = spec.req_str(cx, "budgetingMethod") {
        if b.value != "Occurrences" {
            cx.err(
                b.pos,
                format!(
                    "{}: budgetingMethod {} is not supported: errbudget counts occurrences (bad/total events); use Occurrences",
                    crate::diag::yaml::join(&spec.path, "budgetingMethod"),
                    b.value
                ),
            );
            broken = true;
        }
    }
    let period = read_time_window(cx, &spec);
    let objective = read_objective(cx, &spec);
    let threshold = objective.as_ref().map(|o| (o.op.clone(), o.value.clone()));
    let sli = match (spec.get("indicator"), spec.get("indicatorRef")) {
        (Some(i), None) => read_indicator(cx, &i, threshold.as_ref()),
        (None, Some(r)) => {
            let r_name = r.str(cx)?;
            match index.get("SLI", &r_name.value) {
                Ok(obj) => {
                    let f = Field {
                        key_pos: r.key_pos,
                        path: format!("SLI {:?}", r_name.value),
                        node: obj.node,
                    };
                    let (sli, file) = in_file(cx, obj.file, |cx| {
                        read_indicator(cx, &f, threshold.as_ref())
                    });
                    sli.map(|s| s.in_file(file))
                }
                Err(msg) => {
                    cx.err(r_name.pos, format!("{}: {msg}", r.path));
                    None
                }
            }
        }
        _ => {
            cx.err(
                spec.pos,
                format!(
                    "{}: give exactly one of indicator or indicatorRef",
                    or_top(&spec.path)
                ),
            );
            None
        }
    };
    let alerting = match spec.get("alertPolicies") {
        None => Some(DraftAlerting::default()),
        Some(f) => read_alert_policies(cx, &f, index),
    };
    broken |= sli.is_none() || period.is_none() || objective.is_none() || alerting.is_none();
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
        objective: objective.map(|o| o.target),
        description,
        labels,
        period,
        exclusions: Vec::new(),
        sli,
        alerting: alerting.unwrap_or_default(),
        release_freeze_below: None,
        override_rules: None,
        broken,
    })
}

impl DraftSli {
    /// Tags every query with the file it came from.
    fn in_file(self, file: Option<String>) -> DraftSli {
        let tag = |q: Query| Query {
            file: file.clone(),
            ..q
        };
        match self {
            DraftSli::Events { error, total } => DraftSli::Events {
                error: tag(error),
                total: tag(total),
            },
            DraftSli::Raw { error_ratio } => DraftSli::Raw {
                error_ratio: tag(error_ratio),
            },
            other => other,
        }
    }
}

/// A referenced object, or an inline one (which has `kind` or `spec`).
fn resolve<'a, 'i>(
    cx: &mut Cx<'_>,
    item: &Field<'a, 'i>,
    ref_key: &str,
    kind: &str,
    index: &'a Index<'a, 'i>,
) -> Option<(Field<'a, 'i>, String)>
where
    'i: 'a,
{
    let m = item.map_any(cx)?;
    if let Some(r) = m.get(ref_key) {
        let name = r.str(cx)?;
        return match index.get(kind, &name.value) {
            Ok(obj) => Some((
                Field {
                    key_pos: r.key_pos,
                    path: format!("{kind} {:?}", name.value),
                    node: obj.node,
                },
                obj.file.to_string(),
            )),
            Err(msg) => {
                cx.err(name.pos, format!("{}: {msg}", r.path));
                None
            }
        };
    }
    // Inline: the object is in the file being read.
    Some((item.clone(), cx.file.to_string()))
}

/// `spec.alertPolicies` → window pairs and notification-target labels.
fn read_alert_policies(
    cx: &mut Cx<'_>,
    f: &Field<'_, '_>,
    index: &Index<'_, '_>,
) -> Option<DraftAlerting> {
    let items = f.seq(cx)?;
    let mut windows = Vec::new();
    let mut targets: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut ok = true;
    for item in &items {
        let Some((policy, file)) = resolve(cx, item, "alertPolicyRef", "AlertPolicy", index) else {
            ok = false;
            continue;
        };
        let (read, tag) = in_file(cx, &file, |cx| read_policy(cx, &policy, index));
        match read {
            Some((ws, names)) => {
                for mut w in ws {
                    if w.file.is_none() {
                        w.file.clone_from(&tag);
                    }
                    if let Some(sev) = &w.severity {
                        targets
                            .entry(sev.value.clone())
                            .or_default()
                            .extend(names.iter().cloned());
                    }
                    windows.push(w);
                }
            }
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    if windows.is_empty() {
        return Some(DraftAlerting::default());
    }
    let label = |sev: &str| -> Vec<Label> {
        targets
            .get(sev)
            .filter(|t| !t.is_empty())
            .map(|t| {
                let pos = f.pos();
                vec![(
                    Sp {
                        value: "notification_target".to_string(),
                        pos,
                    },
                    Sp {
                        value: t.iter().cloned().collect::<Vec<_>>().join(","),
                        pos,
                    },
                )]
            })
            .unwrap_or_default()
    };
    let mut out = DraftAlerting {
        windows: Some(windows),
        ..DraftAlerting::default()
    };
    out.page.labels = label("page");
    out.ticket.labels = label("ticket");
    Some(out)
}

/// One `AlertPolicy`: its condition as a window pair, and the names of its
/// notification targets.
fn read_policy(
    cx: &mut Cx<'_>,
    f: &Field<'_, '_>,
    index: &Index<'_, '_>,
) -> Option<(Vec<DraftWindow>, Vec<String>)> {
    let p = f.map(cx, &["apiVersion", "kind", "metadata", "spec"])?;
    let spec = p.req(cx, "spec")?.map(
        cx,
        &[
            "description",
            "alertWhenNoData",
            "alertWhenResolved",
            "alertWhenBreaching",
            "conditions",
            "notificationTargets",
        ],
    )?;
    let mut ok = true;
    if spec.bool(cx, "alertWhenBreaching") == Some(false) {
        let k = spec
            .get("alertWhenBreaching")
            .map_or(spec.pos, |k| k.key_pos);
        cx.err(
            k,
            format!(
                "{}.alertWhenBreaching: false is not supported: errbudget alerts when the burn rate breaches; set it to true or remove the policy",
                spec.path
            ),
        );
        ok = false;
    }
    if spec.bool(cx, "alertWhenNoData") == Some(true) {
        let k = spec.get("alertWhenNoData").map_or(spec.pos, |k| k.key_pos);
        cx.err(
            k,
            format!(
                "{}.alertWhenNoData: true is not supported: errbudget shows missing data as status no_data and alerts ErrorBudgetEvaluationFailing when queries fail; remove it",
                spec.path
            ),
        );
        ok = false;
    }
    let conditions = spec
        .req(cx, "conditions")
        .and_then(|c| c.seq(cx))
        .unwrap_or_default();
    if conditions.len() != 1 {
        cx.err(
            spec.pos,
            format!(
                "{}.conditions: give exactly one condition (OpenSLO allows one per policy), found {}",
                spec.path,
                conditions.len()
            ),
        );
        ok = false;
    }
    let mut windows = Vec::new();
    for c in &conditions {
        let Some((cond, file)) = resolve(cx, c, "conditionRef", "AlertCondition", index) else {
            ok = false;
            continue;
        };
        let (w, tag) = in_file(cx, &file, |cx| read_condition(cx, &cond));
        match w {
            Some(mut w) => {
                w.file = tag;
                windows.push(w);
            }
            None => ok = false,
        }
    }
    let mut names = Vec::new();
    if let Some(targets) = spec.get("notificationTargets").and_then(|t| t.seq(cx)) {
        for t in &targets {
            let Some(m) = t.map_any(cx) else { continue };
            let name = match m.get("targetRef") {
                Some(r) => r.str(cx).map(|s| {
                    index
                        .used
                        .borrow_mut()
                        .insert(("AlertNotificationTarget".into(), s.value.clone()));
                    s.value
                }),
                None => m
                    .req(cx, "metadata")
                    .and_then(|md| md.map_any(cx))
                    .and_then(|md| md.req_str(cx, "name"))
                    .map(|s| s.value),
            };
            names.extend(name);
        }
    }
    ok.then_some((windows, names))
}

/// One `AlertCondition` (inline or an object) as a window pair.
fn read_condition(cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<DraftWindow> {
    let c = f.map(cx, &["apiVersion", "kind", "metadata", "spec"])?;
    let spec = c
        .req(cx, "spec")?
        .map(cx, &["description", "severity", "condition"])?;
    let severity = spec.req_str(cx, "severity");
    let cond = spec.req(cx, "condition")?.map(
        cx,
        &["kind", "op", "threshold", "lookbackWindow", "alertAfter"],
    )?;
    let mut ok = true;
    if let Some(k) = cond.str(cx, "kind") {
        if k.value != "burnrate" {
            cx.err(
                k.pos,
                format!(
                    "{}.kind: condition kind {:?} is not supported: errbudget alerts on burn rates (kind: burnrate)",
                    cond.path, k.value
                ),
            );
            ok = false;
        }
    }
    if let Some(op) = cond.req_str(cx, "op") {
        if !matches!(op.value.as_str(), "gt" | "gte") {
            cx.err(
                op.pos,
                format!(
                    "{}.op: {:?} is not supported: errbudget alerts when the burn rate exceeds the threshold (op: gt)",
                    cond.path, op.value
                ),
            );
            ok = false;
        }
    }
    if let Some(s) = &severity {
        if s.value != "page" && s.value != "ticket" {
            cx.err(
                s.pos,
                format!(
                    "{}.severity: {:?} is not supported: errbudget alerts as page or ticket; route on them in Alertmanager",
                    spec.path, s.value
                ),
            );
            ok = false;
        }
    }
    let factor = cond.req(cx, "threshold").and_then(|t| t.f64(cx));
    let long = cond.req_str(cx, "lookbackWindow");
    let after = cond.str(cx, "alertAfter");
    // The condition must hold for alertAfter: the burn over that recent span
    // must be high too, which is what a short window checks. Without it the
    // SRE Workbook's short window of 1/12 of the long one.
    let after_secs = after.as_ref().map(|a| {
        a.value
            .trim()
            .trim_end_matches(|c: char| c.is_ascii_alphabetic())
            .parse::<u64>()
            .ok()
            == Some(0)
    });
    let short = match (after, after_secs) {
        (Some(a), Some(false)) => Some(a),
        _ => long.as_ref().and_then(|l| {
            let secs = crate::time::parse(&l.value).ok()?.as_secs();
            Some(Sp {
                value: crate::time::format(std::time::Duration::from_secs((secs / 12).max(1))),
                pos: l.pos,
            })
        }),
    };
    if !ok {
        return None;
    }
    Some(DraftWindow {
        pos: cond.pos,
        path: cond.path.clone(),
        severity,
        long,
        short,
        factor,
        budget_percent: None,
        min_bad_events: None,
        file: None,
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
        if let Some(items) = crate::diag::yaml::as_str(v.node)
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

fn read_time_window(cx: &mut Cx<'_>, spec: &Map<'_, '_>) -> Option<DraftPeriod> {
    let items = spec.req(cx, "timeWindow")?.seq(cx)?;
    let first = items.first().or_else(|| {
        cx.err(
            spec.pos,
            format!("{}.timeWindow: empty list", or_top(&spec.path)),
        );
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
    let duration = w.req_str(cx, "duration")?;
    if rolling && !w.has("calendar") {
        if let Some(unit) = super::validate::calendar_unit(&duration.value) {
            cx.err(
                duration.pos,
                format!(
                    "{}.duration: {:?} is a calendar {unit}, which has no fixed length: for a calendar period set isRolling: false (with calendar.timeZone), or give days or weeks, e.g. 30d or 4w",
                    w.path, duration.value
                ),
            );
            return None;
        }
        return Some(DraftPeriod::Rolling(duration));
    }
    let unit = match duration.value.trim() {
        "1w" | "7d" => "week",
        "1M" => "month",
        "1Q" | "3M" => "quarter",
        other => {
            cx.err(
                duration.pos,
                format!(
                    "{}.duration: a calendar-aligned window of {other:?} is not supported: give 1w, 1M or 1Q (a calendar week, month or quarter)",
                    w.path
                ),
            );
            return None;
        }
    };
    calendar_window(cx, &w, unit, duration.pos)
}

/// A calendar-aligned window's `calendar.timeZone` (default UTC). Periods
/// start at the calendar boundaries of that zone; `startTime` only says
/// from when, so any value of it is accepted.
fn calendar_window(
    cx: &mut Cx<'_>,
    w: &Map<'_, '_>,
    unit: &str,
    pos: crate::diag::yaml::Pos,
) -> Option<DraftPeriod> {
    let time_zone = match w.get("calendar") {
        Some(f) => f.map(cx, &["startTime", "timeZone"])?.str(cx, "timeZone"),
        None => None,
    };
    Some(DraftPeriod::Calendar {
        pos: w.pos,
        unit: Sp {
            value: unit.to_string(),
            pos,
        },
        time_zone,
    })
}

/// `objectives[0]`: the target, and `op` / `value` for a threshold metric.
struct ObjectiveRead {
    target: Sp<f64>,
    op: Option<Sp<String>>,
    value: Option<Sp<f64>>,
}

fn read_objective(cx: &mut Cx<'_>, spec: &Map<'_, '_>) -> Option<ObjectiveRead> {
    let items = spec.req(cx, "objectives")?.seq(cx)?;
    let first = items.first().or_else(|| {
        cx.err(
            spec.pos,
            format!("{}.objectives: empty list", or_top(&spec.path)),
        );
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
    let target = match (o.get("target"), o.get("targetPercent")) {
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
    }?;
    Some(ObjectiveRead {
        target,
        op: o.str(cx, "op"),
        value: o.f64(cx, "value"),
    })
}

type Threshold = (Option<Sp<String>>, Option<Sp<f64>>);

/// `indicator: {metadata, spec: {ratioMetric | thresholdMetric}}` (also a
/// `kind: SLI`). `threshold` is the objective's `op` and `value`.
fn read_indicator(
    cx: &mut Cx<'_>,
    f: &Field<'_, '_>,
    threshold: Option<&Threshold>,
) -> Option<DraftSli> {
    let i = f.map(cx, &["apiVersion", "kind", "metadata", "spec"])?;
    let spec = i
        .req(cx, "spec")?
        .map(cx, &["description", "ratioMetric", "thresholdMetric"])?;
    if let Some(t) = spec.get("thresholdMetric") {
        return threshold_latency(cx, &t, threshold);
    }
    let r = spec
        .req(cx, "ratioMetric")?
        .map(cx, &["counter", "good", "bad", "total", "rawType", "raw"])?;
    if let Some(raw) = r.get("raw") {
        for key in ["good", "bad", "total"] {
            if let Some(f) = r.get(key) {
                cx.err(
                    f.key_pos,
                    format!("{}: raw cannot be combined with good, bad or total", f.path),
                );
                return None;
            }
        }
        let kind = r.req_str(cx, "rawType")?;
        let q = query_text(cx, &raw)?;
        return match kind.value.as_str() {
            "failure" => Some(DraftSli::Raw { error_ratio: q }),
            "success" => Some(DraftSli::Raw {
                error_ratio: Query {
                    text: format!("1 - ({})", q.text),
                    ..q
                },
            }),
            other => {
                cx.err(
                    kind.pos,
                    format!(
                        "{}.rawType: expected success or failure, found {other:?}",
                        r.path
                    ),
                );
                None
            }
        };
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

/// A `thresholdMetric` on a histogram's buckets, compared with `op: lte`
/// (or `lt`) against `value`, counts the events below the bound: a
/// latency SLI. Any other threshold metric compares each sample of a
/// series, which is time-slice budgeting.
fn threshold_latency(
    cx: &mut Cx<'_>,
    t: &Field<'_, '_>,
    threshold: Option<&Threshold>,
) -> Option<DraftSli> {
    let q = query_text(cx, t)?;
    let refuse = |cx: &mut Cx<'_>, why: &str| {
        cx.err(
            t.key_pos,
            format!(
                "{}: this thresholdMetric is not supported ({why}): errbudget reads a thresholdMetric only as a latency SLI, a histogram's NAME_bucket selector with the objective's op: lte and value: a bucket boundary in seconds; other thresholds are compared sample by sample, which needs Timeslices budgeting",
                t.path
            ),
        );
        None
    };
    let sel = match promql::parse(&q.text) {
        Ok(Expr::VectorSelector(v)) => v,
        _ => return refuse(cx, "the query is not a plain selector"),
    };
    let Some(base) = sel.name.as_deref().and_then(|n| n.strip_suffix("_bucket")) else {
        return refuse(cx, "the selector is not a histogram's _bucket series");
    };
    if sel.matchers.matchers.iter().any(|m| m.name == "le")
        || sel.offset.is_some()
        || sel.at.is_some()
    {
        return refuse(cx, "the selector fixes le, offset or @");
    }
    let value = match threshold {
        Some((Some(op), Some(v))) if matches!(op.value.as_str(), "lte" | "lt") => v,
        _ => return refuse(cx, "the objective gives no op: lte and value"),
    };
    let matchers: Vec<String> = sel
        .matchers
        .matchers
        .iter()
        .filter(|m| m.name != "__name__")
        .map(|m| m.to_string())
        .collect();
    Some(DraftSli::Latency {
        path: t.path.clone(),
        metric: Sp {
            value: base.to_string(),
            pos: q.pos,
        },
        selector: (!matchers.is_empty()).then(|| Sp {
            value: format!("{{{}}}", matchers.join(", ")),
            pos: q.pos,
        }),
        threshold: value.clone(),
    })
}

/// `{metricSource: {type: Prometheus, spec: {query}}}` → the query as written.
fn query_text(cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<Query> {
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
    Some(Query {
        text: q.value.trim().to_string(),
        pos: q.pos,
        path: qf.path,
        file: None,
    })
}

/// A query template with `{{.window}}`, windowing a counter's selector.
fn metric_query(cx: &mut Cx<'_>, f: &Field<'_, '_>, counter: bool) -> Option<Query> {
    let q = query_text(cx, f)?;
    if promql::has_window(&q.text) {
        return Some(q);
    }
    match counter.then(|| window_counter(&q.text)).flatten() {
        Some(text) => Some(Query { text, ..q }),
        None => {
            cx.err(
                q.pos,
                format!(
                    "{}: query has no {{{{.window}}}} and cannot be windowed automatically (only a counter's selector or sum(selector) can): write it as a rate over [{{{{.window}}}}]",
                    q.path
                ),
            );
            None
        }
    }
}

/// Sloth's `openslo/v1alpha` `SLO`, read as Sloth reads it: one SLO per
/// objective named `NAME-INDEX`, `ratioMetrics` good/total (bad = total −
/// good), `timeWindows` in days (default 30d), alerts disabled (Sloth
/// generates none for this format).
pub fn read_v1alpha(cx: &mut Cx<'_>, top: &Map<'_, '_>) -> Vec<Draft> {
    let Some(top) = Map::open(
        cx,
        top.node,
        &top.path,
        &["apiVersion", "kind", "metadata", "spec"],
    ) else {
        return Vec::new();
    };
    match top.req_str(cx, "kind") {
        Some(k) if k.value == "SLO" => {}
        Some(k) => {
            cx.err(
                k.pos,
                format!(
                    "{}: unsupported openslo/v1alpha kind {:?}: expected SLO",
                    crate::diag::yaml::join(&top.path, "kind"),
                    k.value
                ),
            );
            return Vec::new();
        }
        None => return Vec::new(),
    }
    let meta = top
        .req(cx, "metadata")
        .and_then(|f| f.map(cx, &["name", "displayName"]));
    let name = meta.as_ref().and_then(|m| m.req_str(cx, "name"));
    let Some(spec) = top.req(cx, "spec").and_then(|f| {
        f.map(
            cx,
            &[
                "service",
                "description",
                "budgetingMethod",
                "objectives",
                "timeWindows",
                "indicator",
            ],
        )
    }) else {
        return Vec::new();
    };
    let mut broken = false;
    if let Some(b) = spec.str(cx, "budgetingMethod") {
        if b.value != "Occurrences" {
            cx.err(
                b.pos,
                format!(
                    "{}.budgetingMethod: budgetingMethod {} is not supported: errbudget counts occurrences (bad/total events); use Occurrences",
                    or_top(&spec.path), b.value
                ),
            );
            broken = true;
        }
    }
    let period = match spec.get("timeWindows") {
        None => None,
        Some(f) => {
            let p = alpha_window(cx, &f);
            broken |= p.is_none();
            p
        }
    };
    let service = spec.req_str(cx, "service");
    let description = spec
        .str(cx, "description")
        .map(|s| s.value)
        .unwrap_or_default();
    let Some(objectives) = spec.req(cx, "objectives").and_then(|f| f.seq(cx)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (idx, o) in objectives.iter().enumerate() {
        let Some(m) = o.map(
            cx,
            &[
                "displayName",
                "value",
                "op",
                "target",
                "timeSliceTarget",
                "ratioMetrics",
            ],
        ) else {
            continue;
        };
        let target = m.req(cx, "target").and_then(|t| t.f64(cx)).map(|t| Sp {
            value: (t.value * 100.0 * 1e9).round() / 1e9,
            pos: t.pos,
        });
        let sli = m
            .req(cx, "ratioMetrics")
            .and_then(|r| r.map(cx, &["good", "total", "incremental"]))
            .and_then(|r| {
                let q = |cx: &mut Cx<'_>, key: &str| -> Option<Query> {
                    let f = r.req(cx, key)?;
                    let qm = f.map(cx, &["source", "queryType", "query", "metadata"])?;
                    let source = qm.req_str(cx, "source")?;
                    if source.value != "prometheus" && source.value != "sloth" {
                        cx.err(
                            source.pos,
                            format!(
                                "{}.source: {:?} is not supported: expected prometheus",
                                f.path, source.value
                            ),
                        );
                        return None;
                    }
                    let qt = qm.req_str(cx, "queryType")?;
                    if qt.value != "promql" {
                        cx.err(
                            qt.pos,
                            format!(
                                "{}.queryType: {:?} is not supported: expected promql",
                                f.path, qt.value
                            ),
                        );
                        return None;
                    }
                    let qf = qm.req(cx, "query")?;
                    let s = qf.str(cx)?;
                    Some(Query {
                        text: s.value.trim().to_string(),
                        pos: s.pos,
                        path: qf.path,
                        file: None,
                    })
                };
                let good = q(cx, "good");
                let total = q(cx, "total");
                let (good, total) = (good?, total?);
                Some(DraftSli::Events {
                    error: Query {
                        text: format!("({}) - ({})", total.text, good.text),
                        ..good
                    },
                    total,
                })
            });
        let mut alerting = DraftAlerting::default();
        alerting.page.disable = true;
        alerting.ticket.disable = true;
        out.push(Draft {
            pos: m.pos,
            path: m.path.clone(),
            service: service.clone(),
            service_labels: Vec::new(),
            service_labels_path: String::new(),
            name: name.as_ref().map(|n| Sp {
                value: format!("{}-{idx}", n.value),
                pos: n.pos,
            }),
            objective: target,
            description: description.clone(),
            labels: Vec::new(),
            period: period.clone(),
            exclusions: Vec::new(),
            broken: broken || sli.is_none(),
            sli,
            alerting,
            release_freeze_below: None,
            override_rules: None,
        });
    }
    out
}

/// `timeWindows: [{count: 30, unit: Day}]` → `30d`. Sloth takes days only.
fn alpha_window(cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<DraftPeriod> {
    let items = f.seq(cx)?;
    if items.len() != 1 {
        cx.err(f.pos(), format!("{}: give exactly one time window", f.path));
        return None;
    }
    let w = items[0].map(cx, &["count", "unit", "isRolling", "calendar"])?;
    let count = w.req(cx, "count").and_then(|c| c.usize(cx));
    let unit = w.req_str(cx, "unit");
    let (count, unit) = (count?, unit?);
    let unit_name = unit.value.to_ascii_lowercase();
    if w.has("calendar") || w.bool(cx, "isRolling") == Some(false) {
        let calendar = match (unit_name.as_str(), count.value) {
            ("week", 1) | ("day", 7) => "week",
            ("month", 1) => "month",
            ("quarter", 1) | ("month", 3) => "quarter",
            _ => {
                cx.err(unit.pos, format!("{}: a calendar-aligned window of {} {} is not supported: give count: 1 with unit: Week, Month or Quarter", w.path, count.value, unit.value));
                return None;
            }
        };
        return calendar_window(cx, &w, calendar, unit.pos);
    }
    match unit_name.as_str() {
        "day" => Some(DraftPeriod::Rolling(Sp {
            value: format!("{}d", count.value),
            pos: count.pos,
        })),
        "month" | "quarter" | "year" => {
            cx.err(unit.pos, format!("{}.unit: {:?} is a calendar unit, which has no fixed length: for a calendar period set isRolling: false, or give the period in days (unit: Day), e.g. count: 30", w.path, unit.value));
            None
        }
        _ => {
            cx.err(unit.pos, format!("{}.unit: {:?} is not supported: give the period in days (unit: Day), as Sloth does", w.path, unit.value));
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
