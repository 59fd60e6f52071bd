//! Sloth's formats: `version: "prometheus/v1"` (snake_case) and the
//! Kubernetes CR `apiVersion: sloth.slok.dev/v1, kind: PrometheusServiceLevel`
//! (the same fields in camelCase under `spec`), plus errbudget's per-SLO
//! extensions (`period`, `sli.latency`, `alerting.windows`, `policy`).
//! Reads fields into drafts; the rules live in `validate`.

use super::validate::{
    Draft, DraftAlert, DraftAlerting, DraftExclusion, DraftPeriod, DraftSli, DraftWindow, Query,
};
use crate::diag::yaml::{Cx, Field, Map, Sp};

/// Field spelling: the CR spells `error_query` as `errorQuery`.
#[derive(Clone, Copy)]
pub struct Naming {
    pub camel: bool,
}

impl Naming {
    fn k(self, snake: &str) -> String {
        if !self.camel {
            return snake.to_string();
        }
        let mut out = String::with_capacity(snake.len());
        let mut upper = false;
        for c in snake.chars() {
            if c == '_' {
                upper = true;
            } else if upper {
                out.push(c.to_ascii_uppercase());
                upper = false;
            } else {
                out.push(c);
            }
        }
        out
    }

    fn ks(self, snakes: &[&str]) -> Vec<String> {
        snakes.iter().map(|s| self.k(s)).collect()
    }
}

/// `version: "prometheus/v1"` at the top of the document.
pub fn read_prometheus_v1(cx: &mut Cx<'_>, top: &Map<'_, '_>) -> Vec<Draft> {
    // `top` was opened without a field list; check the keys now.
    Map::open(
        cx,
        top.node,
        &top.path,
        &["version", "service", "labels", "exclusions", "slos"],
    )
    .map(|m| read_service(cx, &m, Naming { camel: false }))
    .unwrap_or_default()
}

/// `apiVersion: sloth.slok.dev/v1`, `kind: PrometheusServiceLevel`.
pub fn read_cr(cx: &mut Cx<'_>, top: &Map<'_, '_>) -> Vec<Draft> {
    let Some(top) = Map::open(
        cx,
        top.node,
        &top.path,
        &["apiVersion", "kind", "metadata", "spec"],
    ) else {
        return Vec::new();
    };
    let naming = Naming { camel: true };
    top.req(cx, "spec")
        .and_then(|f| f.map(cx, &["service", "labels", "exclusions", "slos"]))
        .map(|spec| read_service(cx, &spec, naming))
        .unwrap_or_default()
}

fn read_service(cx: &mut Cx<'_>, m: &Map<'_, '_>, n: Naming) -> Vec<Draft> {
    let service = m.req_str(cx, "service");
    let service_labels = m.string_map(cx, "labels");
    let labels_path = crate::diag::yaml::join(&m.path, "labels");
    let service_exclusions = read_exclusions(cx, m, n);
    let Some(slos) = m.req(cx, "slos").and_then(|f| f.seq(cx)) else {
        return Vec::new();
    };
    slos.iter()
        .filter_map(|f| {
            let mut d = read_slo(cx, f, n)?;
            d.service = service.clone();
            d.service_labels = service_labels.clone();
            d.service_labels_path = labels_path.clone();
            d.exclusions
                .splice(0..0, service_exclusions.iter().cloned());
            Some(d)
        })
        .collect()
}

fn read_slo(cx: &mut Cx<'_>, f: &Field<'_, '_>, n: Naming) -> Option<Draft> {
    let m = f.map(
        cx,
        &n.ks(&[
            "name",
            "objective",
            "description",
            "labels",
            "sli",
            "alerting",
            "period",
            "exclusions",
            "policy",
        ]),
    )?;
    let mut broken = false;
    let name = m.req_str(cx, "name");
    let objective = m.req(cx, "objective").and_then(|f| f.f64(cx));
    let sli = match m.req(cx, "sli") {
        Some(f) => {
            let s = read_sli(cx, &f, n);
            broken |= s.is_none();
            s
        }
        None => None,
    };
    let alerting = match m.get("alerting") {
        Some(f) => read_alerting(cx, &f, n).unwrap_or_else(|| {
            broken = true;
            DraftAlerting::default()
        }),
        None => DraftAlerting::default(),
    };
    let policy = m
        .get("policy")
        .and_then(|f| f.map(cx, &n.ks(&["release_freeze_below", "override"])));
    let release_freeze_below = policy
        .as_ref()
        .and_then(|p| p.f64(cx, &n.k("release_freeze_below")));
    let override_rules = match policy.as_ref().and_then(|p| p.get("override")) {
        None => None,
        Some(f) => {
            let r = read_override(cx, &f, n);
            broken |= r.is_none();
            r
        }
    };
    Some(Draft {
        pos: m.pos,
        path: m.path.clone(),
        service: None,
        service_labels: Vec::new(),
        service_labels_path: String::new(),
        name,
        objective,
        description: m
            .str(cx, "description")
            .map(|s| s.value)
            .unwrap_or_default(),
        labels: m.string_map(cx, "labels"),
        period: read_period(cx, &m, n),
        exclusions: read_exclusions(cx, &m, n),
        sli,
        alerting,
        release_freeze_below,
        override_rules,
        broken,
    })
}

/// `period: 30d` or `period: {calendar: month, time_zone: Europe/Berlin}`.
fn read_period(cx: &mut Cx<'_>, m: &Map<'_, '_>, n: Naming) -> Option<DraftPeriod> {
    let f = m.get("period")?;
    if crate::diag::yaml::as_str(f.node).is_some() {
        return f.str(cx).map(DraftPeriod::Rolling);
    }
    let p = f.map(cx, &n.ks(&["calendar", "time_zone"]))?;
    Some(DraftPeriod::Calendar {
        pos: p.pos,
        unit: p.req_str(cx, "calendar")?,
        time_zone: p.str(cx, &n.k("time_zone")),
    })
}

/// `exclusions:` of a service or an SLO: maintenance windows.
fn read_exclusions(cx: &mut Cx<'_>, m: &Map<'_, '_>, n: Naming) -> Vec<DraftExclusion> {
    let Some(items) = m.get("exclusions").and_then(|f| f.seq(cx)) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|f| {
            let e = f.map(
                cx,
                &n.ks(&["reason", "start", "end", "rrule", "duration", "time_zone"]),
            )?;
            Some(DraftExclusion {
                pos: e.pos,
                path: e.path.clone(),
                reason: e.str(cx, "reason"),
                start: e.str(cx, "start"),
                end: e.str(cx, "end"),
                rrule: e.str(cx, "rrule"),
                duration: e.str(cx, "duration"),
                time_zone: e.str(cx, &n.k("time_zone")),
            })
        })
        .collect()
}

/// `policy.override`: `allowed_users` (a list of user names) and
/// `max_duration` (a duration).
fn read_override(
    cx: &mut Cx<'_>,
    f: &crate::diag::yaml::Field<'_, '_>,
    n: Naming,
) -> Option<crate::model::OverrideRules> {
    let m = f.map(cx, &n.ks(&["allowed_users", "max_duration"]))?;
    let mut ok = true;
    let allowed_users = match m.get(&n.k("allowed_users")) {
        None => None,
        Some(f) => {
            let mut users = vec![];
            for item in f.seq(cx).unwrap_or_default() {
                match item.str(cx) {
                    Some(u) if !u.value.trim().is_empty() => users.push(u.value),
                    Some(u) => {
                        cx.err(u.pos, format!("{}: empty user name", item.path));
                        ok = false;
                    }
                    None => ok = false,
                }
            }
            Some(users)
        }
    };
    let max_duration = match m.str(cx, &n.k("max_duration")) {
        None => None,
        Some(s) => match crate::time::parse(&s.value) {
            Ok(d) => Some(d),
            Err(e) => {
                cx.err(
                    s.pos,
                    format!(
                        "{}: {e}",
                        crate::diag::yaml::join(&m.path, &n.k("max_duration"))
                    ),
                );
                ok = false;
                None
            }
        },
    };
    ok.then_some(crate::model::OverrideRules {
        allowed_users,
        max_duration,
    })
}

fn query(cx: &mut Cx<'_>, m: &Map<'_, '_>, key: &str) -> Option<Query> {
    let f = m.req(cx, key)?;
    let s = f.str(cx)?;
    Some(Query {
        text: s.value,
        pos: s.pos,
        path: f.path,
        file: None,
    })
}

fn read_sli(cx: &mut Cx<'_>, f: &Field<'_, '_>, n: Naming) -> Option<DraftSli> {
    let m = f.map(cx, &["events", "raw", "plugin", "latency"])?;
    let given: Vec<&str> = ["events", "raw", "plugin", "latency"]
        .into_iter()
        .filter(|k| m.has(k))
        .collect();
    if given.len() != 1 {
        let msg = if given.is_empty() {
            format!("{}: give one of events, raw or latency", f.path)
        } else {
            format!(
                "{}: give exactly one of events, raw or latency, found {}",
                f.path,
                given.join(" and ")
            )
        };
        cx.err(m.pos, msg);
        return None;
    }
    if let Some(p) = m.get("plugin") {
        cx.err(
            p.key_pos,
            format!(
                "{}: sli.plugin is not supported: errbudget evaluates PromQL itself; rewrite it as sli.events or sli.raw",
                p.path
            ),
        );
        return None;
    }
    if let Some(e) = m.get("events") {
        let e = e.map(cx, &n.ks(&["error_query", "total_query"]))?;
        let error = query(cx, &e, &n.k("error_query"));
        let total = query(cx, &e, &n.k("total_query"));
        return Some(DraftSli::Events {
            error: error?,
            total: total?,
        });
    }
    if let Some(r) = m.get("raw") {
        let r = r.map(cx, &n.ks(&["error_ratio_query"]))?;
        return Some(DraftSli::Raw {
            error_ratio: query(cx, &r, &n.k("error_ratio_query"))?,
        });
    }
    let l = m.get("latency")?;
    let l = l.map(cx, &["metric", "selector", "threshold"])?;
    let metric = l.req_str(cx, "metric");
    let selector = l.str(cx, "selector");
    let threshold = l.req(cx, "threshold").and_then(|f| f.f64(cx));
    Some(DraftSli::Latency {
        path: l.path.clone(),
        metric: metric?,
        selector,
        threshold: threshold?,
    })
}

fn read_alerting(cx: &mut Cx<'_>, f: &Field<'_, '_>, n: Naming) -> Option<DraftAlerting> {
    let m = f.map(
        cx,
        &n.ks(&[
            "name",
            "labels",
            "annotations",
            "page_alert",
            "ticket_alert",
            "windows",
        ]),
    )?;
    let mut ok = true;
    let mut alert = |cx: &mut Cx<'_>, key: &str| match m.get(&n.k(key)) {
        None => DraftAlert::default(),
        Some(f) => match f.map(cx, &["disable", "labels", "annotations"]) {
            None => {
                ok = false;
                DraftAlert::default()
            }
            Some(a) => DraftAlert {
                disable: a.bool(cx, "disable").unwrap_or(false),
                labels: a.string_map(cx, "labels"),
                annotations: a.string_map(cx, "annotations"),
            },
        },
    };
    let page = alert(cx, "page_alert");
    let ticket = alert(cx, "ticket_alert");
    let windows = match m.get("windows") {
        None => None,
        Some(f) => {
            let items = f.seq(cx)?;
            Some(
                items
                    .iter()
                    .filter_map(|w| read_window(cx, w, n))
                    .collect::<Vec<_>>(),
            )
        }
    };
    let out = DraftAlerting {
        name: m.str(cx, "name").map(|s| s.value),
        labels: m.string_map(cx, "labels"),
        annotations: m.string_map(cx, "annotations"),
        page,
        ticket,
        windows,
    };
    ok.then_some(out)
}

fn read_window(cx: &mut Cx<'_>, f: &Field<'_, '_>, n: Naming) -> Option<DraftWindow> {
    let m = f.map(
        cx,
        &n.ks(&[
            "severity",
            "long",
            "short",
            "factor",
            "budget_percent",
            "min_bad_events",
        ]),
    )?;
    let num = |cx: &mut Cx<'_>, key: &str| -> Option<Sp<f64>> { m.f64(cx, &n.k(key)) };
    Some(DraftWindow {
        pos: m.pos,
        path: m.path.clone(),
        severity: m.req_str(cx, "severity"),
        long: m.req_str(cx, "long"),
        short: m.req_str(cx, "short"),
        factor: num(cx, "factor"),
        budget_percent: num(cx, "budget_percent"),
        min_bad_events: num(cx, "min_bad_events"),
        file: None,
    })
}
