//! From a format-neutral draft (what a Sloth, Sloth CR or OpenSLO reader
//! pulled out of the YAML, positions kept) to a validated `model::Slo`.
//! Owns every semantic rule: objective range, durations, PromQL, label
//! names, grouping, alert-window sanity. Every rule reports and carries on,
//! so one run shows all problems of a file.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::calendar::{self, Calendar};
use crate::diag::yaml::{Cx, Pos, Sp};
use crate::diag::Diagnostic;
use crate::exclusion::Exclusion;
use crate::model::{
    default_policy, factor_for_budget, AlertWindow, Alerting, Objective, Origin, Severity, Sli,
    Slo, Window, RESERVED_LABELS,
};
use crate::promql;
use crate::time;

/// The default compliance period (docs/interface.md, "Files").
const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 86_400);

/// The longest period accepted. Start-up reads the period with one range
/// query per day and keeps one 5-minute bucket per SLO for all of it, so a
/// period is work and memory: a year (366 days: 366 queries and 105,408
/// buckets per SLO) covers every compliance period in use (28d, 30d,
/// quarters, a year), and the long-term stores that hold such history.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 86_400);

/// A `name: value` pair from a `labels` mapping.
pub type Label = (Sp<String>, Sp<String>);

/// A PromQL template with where it was written.
#[derive(Clone, Debug)]
pub struct Query {
    pub text: String,
    pub pos: Pos,
    /// Field path for messages, e.g. `slos[0].sli.events.error_query`.
    pub path: String,
    /// The file it was written in when that is not the SLO's own (an
    /// OpenSLO `SLI` referenced from another file).
    pub file: Option<String>,
}

#[derive(Clone, Debug)]
pub enum DraftSli {
    Events {
        error: Query,
        total: Query,
    },
    Raw {
        error_ratio: Query,
    },
    Latency {
        path: String,
        metric: Sp<String>,
        selector: Option<Sp<String>>,
        threshold: Sp<f64>,
    },
}

#[derive(Clone, Debug, Default)]
pub struct DraftAlert {
    pub disable: bool,
    pub labels: Vec<Label>,
    pub annotations: Vec<Label>,
}

#[derive(Clone, Debug)]
pub struct DraftWindow {
    pub pos: Pos,
    pub path: String,
    pub severity: Option<Sp<String>>,
    pub long: Option<Sp<String>>,
    pub short: Option<Sp<String>>,
    pub factor: Option<Sp<f64>>,
    pub budget_percent: Option<Sp<f64>>,
    pub min_bad_events: Option<Sp<f64>>,
    /// The file it was written in when that is not the SLO's own (a Sloth
    /// `AlertWindows` catalogue, an OpenSLO `AlertCondition`).
    pub file: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DraftAlerting {
    pub name: Option<String>,
    pub labels: Vec<Label>,
    pub annotations: Vec<Label>,
    pub page: DraftAlert,
    pub ticket: DraftAlert,
    /// `None`: the default policy.
    pub windows: Option<Vec<DraftWindow>>,
}

/// The compliance period as written: a duration (`30d`), or a calendar
/// unit with its time zone.
#[derive(Clone, Debug)]
pub enum DraftPeriod {
    Rolling(Sp<String>),
    Calendar {
        pos: Pos,
        unit: Sp<String>,
        time_zone: Option<Sp<String>>,
    },
}

impl DraftPeriod {
    pub fn pos(&self) -> Pos {
        match self {
            DraftPeriod::Rolling(p) => p.pos,
            DraftPeriod::Calendar { pos, .. } => *pos,
        }
    }
}

/// One maintenance window as written: `start` and `end` (RFC 3339), or
/// `rrule` with `duration` (and `time_zone`, `start` as local time).
#[derive(Clone, Debug, Default)]
pub struct DraftExclusion {
    pub pos: Pos,
    pub path: String,
    pub reason: Option<Sp<String>>,
    pub start: Option<Sp<String>>,
    pub end: Option<Sp<String>>,
    pub rrule: Option<Sp<String>>,
    pub duration: Option<Sp<String>>,
    pub time_zone: Option<Sp<String>>,
}

/// One SLO as read from any format. `None` in a required field means the
/// reader already reported it missing or mistyped.
#[derive(Clone, Debug)]
pub struct Draft {
    pub pos: Pos,
    /// Path of the SLO in the document, e.g. `slos[1]` or `spec`.
    pub path: String,
    pub service: Option<Sp<String>>,
    pub service_labels: Vec<Label>,
    /// Path prefix of the service labels, e.g. `labels` or `spec.labels`.
    pub service_labels_path: String,
    pub name: Option<Sp<String>>,
    pub objective: Option<Sp<f64>>,
    pub description: String,
    pub labels: Vec<Label>,
    pub period: Option<DraftPeriod>,
    /// The service's maintenance windows and the SLO's own.
    pub exclusions: Vec<DraftExclusion>,
    pub sli: Option<DraftSli>,
    pub alerting: DraftAlerting,
    pub release_freeze_below: Option<Sp<f64>>,
    /// `policy.override`, checked by the reader.
    pub override_rules: Option<crate::model::OverrideRules>,
    /// The reader found a problem that makes this SLO unusable even if
    /// every rule below passes.
    pub broken: bool,
}

/// Validates `d` and builds the model; `None` when anything was wrong
/// (all of it reported to `cx`).
pub fn build(cx: &mut Cx<'_>, d: &Draft) -> Option<Slo> {
    let before = cx.diags.len();
    let at = |field: &str| format!("{}.{field}", d.path);

    if let Some(name) = &d.name {
        if name.value.trim().is_empty() {
            cx.err(
                name.pos,
                format!("{}: SLO name must not be empty", at("name")),
            );
        }
    }
    if let Some(s) = &d.service {
        if s.value.trim().is_empty() {
            cx.err(s.pos, "service must not be empty");
        }
    }

    let objective = d.objective.as_ref().and_then(|o| {
        Objective::from_percent(o.value)
            .map_err(|e| cx.err(o.pos, format!("{}: {e}", at("objective"))))
            .ok()
    });

    let (period, calendar) = match &d.period {
        None => (Some(DEFAULT_PERIOD), None),
        Some(DraftPeriod::Rolling(p)) => (rolling_period(cx, p, &at("period")), None),
        Some(DraftPeriod::Calendar {
            unit, time_zone, ..
        }) => match calendar_period(cx, unit, time_zone.as_ref(), &at("period")) {
            Some(c) => (Some(c.unit.nominal()), Some(c)),
            None => (None, None),
        },
    };
    let zone = calendar.map_or(chrono_tz::UTC, |c| c.tz);
    let exclusions: Vec<Exclusion> = d
        .exclusions
        .iter()
        .filter_map(|e| build_exclusion(cx, e, zone))
        .collect();

    // Labels: service labels, then the SLO's own, which win.
    check_label_names(cx, &d.service_labels, &d.service_labels_path, true);
    check_label_names(cx, &d.labels, &at("labels"), true);
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in d.service_labels.iter().chain(&d.labels) {
        labels.insert(k.value.clone(), v.value.clone());
    }

    let sli = d.sli.as_ref().and_then(|s| check_sli(cx, s, &labels));

    let release_freeze_below = match &d.release_freeze_below {
        None => Some(0.0),
        Some(r) if (0.0..=1.0).contains(&r.value) => Some(r.value),
        Some(r) => {
            cx.err(
                r.pos,
                format!(
                    "{}: release_freeze_below {} is outside [0, 1]: it is a remaining-budget ratio such as 0.1",
                    at("policy.release_freeze_below"),
                    r.value
                ),
            );
            None
        }
    };

    let a = &d.alerting;
    check_label_names(cx, &a.labels, &at("alerting.labels"), false);
    check_label_names(cx, &a.page.labels, &at("alerting.page_alert.labels"), false);
    check_label_names(
        cx,
        &a.ticket.labels,
        &at("alerting.ticket_alert.labels"),
        false,
    );
    let windows = match (period, objective) {
        (Some(period), Some(objective)) => check_windows(cx, d, period, objective),
        _ => None,
    };

    if d.broken || cx.diags.len() > before {
        return None;
    }
    let to_map = |l: &[Label]| crate::diag::yaml::to_btree(l);
    Some(Slo {
        service: d.service.as_ref()?.value.clone(),
        name: d.name.as_ref()?.value.clone(),
        description: d.description.clone(),
        labels,
        objective: objective?,
        period: period?,
        calendar,
        exclusions,
        sli: sli?,
        alerting: Alerting {
            name: a.name.clone().unwrap_or_else(|| "ErrorBudgetBurn".into()),
            labels: to_map(&a.labels),
            annotations: to_map(&a.annotations),
            page_labels: to_map(&a.page.labels),
            page_annotations: to_map(&a.page.annotations),
            ticket_labels: to_map(&a.ticket.labels),
            ticket_annotations: to_map(&a.ticket.annotations),
            page_enabled: !a.page.disable,
            ticket_enabled: !a.ticket.disable,
            windows: windows?,
        },
        release_freeze_below: release_freeze_below?,
        override_rules: d.override_rules.clone().unwrap_or_default(),
        origin: Origin {
            file: cx.file.to_string(),
            line: d.pos.line,
            column: d.pos.column,
        },
    })
}

fn rolling_period(cx: &mut Cx<'_>, p: &Sp<String>, path: &str) -> Option<Duration> {
    if let Some(unit) = calendar_unit(&p.value) {
        let hint = match unit {
            "year" => "a calendar year is not supported; give a rolling period in days, e.g. 365d",
            _ => "for a calendar period write `period: {calendar: month, time_zone: Europe/Berlin}` (week, month or quarter)",
        };
        cx.err(
            p.pos,
            format!(
                "{path}: {:?} is a calendar {unit}, which has no fixed length: {hint}; or give a rolling period in days, e.g. 30d",
                p.value
            ),
        );
        return None;
    }
    match time::parse(&p.value) {
        Ok(v) if v > MAX_PERIOD => {
            cx.err(
                p.pos,
                format!(
                    "{path}: {} is longer than the 366d errbudget can evaluate (start-up reads the period one day per range query, and holds it in memory as 5-minute buckets)",
                    p.value.trim()
                ),
            );
            None
        }
        Ok(v) => Some(v),
        Err(e) => {
            cx.err(p.pos, format!("{path}: {e}"));
            None
        }
    }
}

fn time_zone(cx: &mut Cx<'_>, tz: Option<&Sp<String>>, path: &str) -> Option<chrono_tz::Tz> {
    let Some(tz) = tz else {
        return Some(chrono_tz::UTC);
    };
    let found = Calendar::parse_time_zone(tz.value.trim());
    if found.is_none() {
        cx.err(
            tz.pos,
            format!(
                "{path}: {:?} is not an IANA time zone name (such as Europe/Berlin, America/New_York or UTC)",
                tz.value
            ),
        );
    }
    found
}

fn calendar_period(
    cx: &mut Cx<'_>,
    unit: &Sp<String>,
    tz: Option<&Sp<String>>,
    path: &str,
) -> Option<Calendar> {
    let u = calendar::Unit::parse(unit.value.trim());
    if u.is_none() {
        cx.err(
            unit.pos,
            format!(
                "{path}.calendar: {:?} is not a calendar period: give week, month or quarter",
                unit.value
            ),
        );
    }
    let tz = time_zone(cx, tz, &format!("{path}.time_zone"));
    Some(Calendar { unit: u?, tz: tz? })
}

fn build_exclusion(cx: &mut Cx<'_>, e: &DraftExclusion, zone: chrono_tz::Tz) -> Option<Exclusion> {
    let reason = e
        .reason
        .as_ref()
        .map(|r| r.value.clone())
        .unwrap_or_default();
    let parse_instant = |cx: &mut Cx<'_>, v: &Sp<String>, key: &str| {
        chrono::DateTime::parse_from_rfc3339(v.value.trim())
            .map(|t| t.timestamp())
            .map_err(|err| {
                cx.err(
                    v.pos,
                    format!(
                        "{}.{key}: {:?} is not an RFC 3339 time such as 2026-11-14T22:00:00Z: {err}",
                        e.path, v.value
                    ),
                )
            })
            .ok()
    };
    match (&e.rrule, &e.start, &e.end) {
        (None, Some(start), Some(end)) => {
            let (s, t) = (
                parse_instant(cx, start, "start"),
                parse_instant(cx, end, "end"),
            );
            Exclusion::once(s?, t?, reason)
                .map_err(|m| cx.err(start.pos, format!("{}: {m}", e.path)))
                .ok()
        }
        (Some(rule), start, None) => {
            let tz = match &e.time_zone {
                Some(_) => time_zone(cx, e.time_zone.as_ref(), &format!("{}.time_zone", e.path)),
                None => Some(zone),
            };
            let duration = match &e.duration {
                None => {
                    cx.err(
                        e.pos,
                        format!(
                            "{}: a recurring window needs a duration, e.g. duration: 2h",
                            e.path
                        ),
                    );
                    None
                }
                Some(d) => time::parse(&d.value)
                    .map(|d| d.as_secs() as i64)
                    .map_err(|m| cx.err(d.pos, format!("{}.duration: {m}", e.path)))
                    .ok(),
            };
            let dtstart = match start {
                None => chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
                    .map(|d| d.and_time(chrono::NaiveTime::MIN)),
                Some(st) => chrono::NaiveDateTime::parse_from_str(st.value.trim(), "%Y-%m-%dT%H:%M:%S")
                    .map_err(|_| {
                        cx.err(
                            st.pos,
                            format!(
                                "{}.start: {:?} is not a local time such as 2026-01-04T02:00:00 (the rule's first occurrence, in its time_zone)",
                                e.path, st.value
                            ),
                        )
                    })
                    .ok(),
            };
            Exclusion::recurring(&rule.value, tz?, dtstart?, duration?, reason)
                .map_err(|m| cx.err(rule.pos, format!("{}.rrule: {m}", e.path)))
                .ok()
        }
        _ => {
            cx.err(
                e.pos,
                format!(
                    "{}: give either start and end (a one-off window) or rrule and duration (a recurring one)",
                    e.path
                ),
            );
            None
        }
    }
}

/// The calendar unit a duration is written in (`1M`, `1Q`, `1Y`, `2 months`),
/// if any. humantime would read `1M` as 30.44 days, which is no calendar
/// month: such periods are refused until calendar periods exist.
pub fn calendar_unit(text: &str) -> Option<&'static str> {
    let units = text
        .split(|c: char| c.is_ascii_digit() || c.is_whitespace() || c == '.')
        .filter(|u| !u.is_empty());
    for u in units {
        let name = match u {
            "M" | "mo" | "month" | "months" => "month",
            "Q" | "quarter" | "quarters" => "quarter",
            "Y" | "y" | "year" | "years" => "year",
            _ => continue,
        };
        return Some(name);
    }
    None
}

/// Reports at `pos` in `file` when the value was written in another file
/// than the SLO, else in the SLO's own.
fn err_in(cx: &mut Cx<'_>, file: &Option<String>, pos: Pos, message: impl Into<String>) {
    match file {
        Some(f) => cx
            .diags
            .push(Diagnostic::new(f, pos.line, pos.column, message)),
        None => cx.err(pos, message),
    }
}

/// Prometheus label names: `[a-zA-Z_][a-zA-Z0-9_]*`, and `__` is reserved
/// for Prometheus itself.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

/// Checks label names; `reserved` also rejects the names errbudget sets on
/// `slo_*` series. Alert labels may override those on purpose (Sloth's
/// `page_alert.labels.severity: critical`), so they are not checked for it.
fn check_label_names(cx: &mut Cx<'_>, labels: &[Label], path: &str, reserved: bool) {
    for (k, _) in labels {
        if !is_label_name(&k.value) {
            cx.err(
                k.pos,
                format!(
                    "{path}: invalid label name {:?}: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __",
                    k.value
                ),
            );
        } else if reserved && RESERVED_LABELS.contains(&k.value.as_str()) {
            cx.err(
                k.pos,
                format!(
                    "{path}: label name {:?} is reserved: errbudget sets it on every slo_* series",
                    k.value
                ),
            );
        }
    }
}

fn check_sli(cx: &mut Cx<'_>, s: &DraftSli, labels: &BTreeMap<String, String>) -> Option<Sli> {
    let before = cx.diags.len();
    let sli = match s {
        DraftSli::Events { error, total } => {
            for q in [error, total] {
                check_query(cx, q, labels);
                if !promql::has_window(&q.text) {
                    err_in(cx, &q.file,
                        q.pos,
                        format!(
                            "{}: query has no {{{{.window}}}}: an events query must be a rate over the window, e.g. sum(rate(requests_total[{{{{.window}}}}]))",
                            q.path
                        ),
                    );
                }
            }
            // Bad and total are divided series by series, so both must
            // keep the same labels.
            let (ge, gt) = (
                promql::grouping_labels(&error.text),
                promql::grouping_labels(&total.text),
            );
            if promql::parse(&error.text).is_ok()
                && promql::parse(&total.text).is_ok()
                && sorted(&ge) != sorted(&gt)
            {
                err_in(cx, &error.file,
                    error.pos,
                    format!(
                        "{}: keeps labels ({}) but total_query keeps ({}): both must group by the same labels",
                        error.path,
                        ge.join(", "),
                        gt.join(", ")
                    ),
                );
            }
            Sli::Events {
                error_query: error.text.clone(),
                total_query: total.text.clone(),
            }
        }
        DraftSli::Raw { error_ratio } => {
            check_query(cx, error_ratio, labels);
            Sli::Raw {
                error_ratio_query: error_ratio.text.clone(),
            }
        }
        DraftSli::Latency {
            path,
            metric,
            selector,
            threshold,
        } => {
            // Numbers from the reader are finite, so `<=` covers every bad value.
            if threshold.value <= 0.0 {
                cx.err(
                    threshold.pos,
                    format!(
                        "{path}.threshold: threshold {} must be > 0 (seconds, a histogram bucket boundary)",
                        threshold.value
                    ),
                );
            }
            let valid_metric = {
                let mut c = metric.value.chars();
                matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
                    && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
            };
            if !valid_metric {
                cx.err(
                    metric.pos,
                    format!("{path}.metric: invalid metric name {:?}", metric.value),
                );
            } else if metric.value.ends_with("_bucket") || metric.value.ends_with("_count") {
                cx.err(
                    metric.pos,
                    format!(
                        "{path}.metric: give the histogram's base name without _bucket or _count, e.g. http_request_duration_seconds"
                    ),
                );
            }
            let sel = selector.as_ref().map(|s| s.value.trim()).unwrap_or("");
            if let Some(s) = selector {
                if !(sel.starts_with('{') && sel.ends_with('}')) {
                    cx.err(
                        s.pos,
                        format!("{path}.selector: expected label matchers in braces, e.g. '{{job=\"checkout\"}}'"),
                    );
                } else if valid_metric {
                    if let Err(e) = promql::parse(&format!("{}{sel}", metric.value)) {
                        cx.err(s.pos, format!("{path}.selector: invalid PromQL: {e}"));
                    }
                }
            }
            Sli::Latency {
                metric: metric.value.clone(),
                selector: sel.to_string(),
                threshold: threshold.value,
            }
        }
    };
    (cx.diags.len() == before).then_some(sli)
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The query parses, and the labels it keeps do not collide with the
/// labels errbudget or the spec set (a grouped SLO gets its group's labels
/// on every series).
fn check_query(cx: &mut Cx<'_>, q: &Query, labels: &BTreeMap<String, String>) {
    if let Err(e) = promql::parse(&q.text) {
        err_in(
            cx,
            &q.file,
            q.pos,
            format!("{}: invalid PromQL: {e}", q.path),
        );
        return;
    }
    for g in promql::grouping_labels(&q.text) {
        if RESERVED_LABELS.contains(&g.as_str()) {
            err_in(cx, &q.file,
                q.pos,
                format!(
                    "{}: grouping label {g:?} collides with a label errbudget sets; rename it with label_replace",
                    q.path
                ),
            );
        } else if labels.contains_key(&g) {
            err_in(
                cx,
                &q.file,
                q.pos,
                format!(
                    "{}: grouping label {g:?} collides with the spec label of the same name",
                    q.path
                ),
            );
        }
    }
}

/// The alert policy in force: the spec's windows, or the default scaled to
/// the period; either way checked against the period and objective.
fn check_windows(
    cx: &mut Cx<'_>,
    d: &Draft,
    period: Duration,
    objective: Objective,
) -> Option<Vec<AlertWindow>> {
    let before = cx.diags.len();
    let mut out = Vec::new();
    let Some(spec) = &d.alerting.windows else {
        // The default policy can still misfit a short period or a loose
        // objective; point at what chose it.
        let pos = d.period.as_ref().map_or(d.pos, DraftPeriod::pos);
        for w in default_policy(period) {
            for problem in window_problems(&w, period, objective) {
                cx.err(
                    pos,
                    format!(
                        "{}: default alert window {}/{}: {problem}; give alerting.windows for this SLO",
                        d.path, w.long, w.short
                    ),
                );
            }
            out.push(w);
        }
        return (cx.diags.len() == before).then_some(out);
    };
    if spec.is_empty() {
        // An empty list would silently switch alerting off.
        cx.err(
            d.pos,
            format!(
                "{}.alerting.windows: empty list: remove it for the default policy, or disable page_alert/ticket_alert",
                d.path
            ),
        );
    }
    for w in spec {
        let severity = w.severity.as_ref().and_then(|s| match s.value.as_str() {
            "page" => Some(Severity::Page),
            "ticket" => Some(Severity::Ticket),
            other => {
                err_in(
                    cx,
                    &w.file,
                    s.pos,
                    format!(
                        "{}.severity: expected page or ticket, found {other:?}",
                        w.path
                    ),
                );
                None
            }
        });
        let window = |cx: &mut Cx<'_>, f: &Option<Sp<String>>, name: &str| {
            let f = f.as_ref()?;
            time::parse(&f.value)
                .and_then(Window::from_duration)
                .map_err(|e| err_in(cx, &w.file, f.pos, format!("{}.{name}: {e}", w.path)))
                .ok()
        };
        let long = window(cx, &w.long, "long");
        let short = window(cx, &w.short, "short");
        let factor = match (&w.factor, &w.budget_percent) {
            (Some(f), None) => Some(f.value),
            (None, Some(b)) => {
                if b.value <= 0.0 || b.value > 100.0 {
                    err_in(
                        cx,
                        &w.file,
                        b.pos,
                        format!("{}.budget_percent: {} is outside (0, 100]", w.path, b.value),
                    );
                    None
                } else {
                    long.map(|l| factor_for_budget(b.value, period, l))
                }
            }
            (Some(_), Some(_)) => {
                err_in(
                    cx,
                    &w.file,
                    w.pos,
                    format!(
                        "{}: give exactly one of factor or budget_percent, not both",
                        w.path
                    ),
                );
                None
            }
            (None, None) => {
                err_in(
                    cx,
                    &w.file,
                    w.pos,
                    format!("{}: give exactly one of factor or budget_percent", w.path),
                );
                None
            }
        };
        if let Some(m) = &w.min_bad_events {
            if m.value < 0.0 {
                err_in(
                    cx,
                    &w.file,
                    m.pos,
                    format!(
                        "{}.min_bad_events: {} must not be negative",
                        w.path, m.value
                    ),
                );
            }
        }
        let (Some(severity), Some(long), Some(short), Some(factor)) =
            (severity, long, short, factor)
        else {
            continue;
        };
        let aw = AlertWindow {
            severity,
            long,
            short,
            factor,
            min_bad_events: w.min_bad_events.as_ref().map(|m| m.value),
        };
        for problem in window_problems(&aw, period, objective) {
            err_in(cx, &w.file, w.pos, format!("{}: {problem}", w.path));
        }
        out.push(aw);
    }
    (cx.diags.len() == before).then_some(out)
}

/// Why a window pair cannot work, in words.
fn window_problems(w: &AlertWindow, period: Duration, objective: Objective) -> Vec<String> {
    let mut out = Vec::new();
    let p = time::format(period);
    if w.short >= w.long {
        out.push(format!(
            "short window {} must be shorter than long window {}",
            w.short, w.long
        ));
    }
    if w.long.secs() > period.as_secs() {
        out.push(format!(
            "long window {} is longer than the period {p}",
            w.long
        ));
    }
    if w.factor <= 0.0 {
        out.push(format!("factor {} must be > 0", w.factor));
    } else if w.severity == Severity::Page && w.factor <= 1.0 {
        out.push(format!(
            "a page needs a factor > 1, got {}: at 1 the budget lasts exactly the period, which is ticket territory",
            round(w.factor)
        ));
    }
    let budget = objective.budget_ratio();
    if w.factor * budget > 1.0 {
        out.push(format!(
            "factor {} × error budget {budget} > 1: the error ratio cannot exceed 1, so this alert could never fire",
            round(w.factor)
        ));
    }
    out
}

/// Factors from budget_percent carry float noise (`2.9999999`); messages
/// show them to 6 decimals.
fn round(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}
