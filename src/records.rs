//! Run-time records people and pipelines tell errbudget about: deploys
//! (from a metric or `POST /api/v1/deployments`) and release-freeze
//! overrides (from the API or a file). Their validation, JSON shapes and
//! the book that holds them. Pure: no I/O, no clock (callers pass `now`).
//!
//! A record kind is a type implementing [`RecordKind`]: how a request
//! body becomes a record and how a record is written as JSON. The HTTP
//! layer has one generic handler per verb over that trait, so another
//! kind (maintenance exclusions) is a type, a `Book` field and a route.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use crate::exclusion::{Exclusion, When};
use crate::state::ClosedPeriod;
use serde_json::{json, Map, Value};

/// Deploys older than this are dropped: a quarter of a year covers the
/// longest periods people use (90d) and keeps the file small.
pub const KEEP_DEPLOYS_SECS: i64 = 100 * 86_400;

/// Deploys kept at most (the oldest go first): a pipeline in a loop must
/// not fill memory and disk. 100 services deploying 10 times a day for
/// 100 days is 100 000.
pub const MAX_DEPLOYS: usize = 100_000;

/// Where a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Metric,
    Api,
    File,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Metric => "metric",
            Source::Api => "api",
            Source::File => "file",
        }
    }

    fn parse(s: &str) -> Option<Source> {
        [Source::Metric, Source::Api, Source::File]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    pub service: String,
    pub version: String,
    /// Unix seconds.
    pub at: i64,
    pub source: Source,
    pub description: String,
}

impl Deployment {
    /// Two reports of one deploy (the metric seen again after a restart,
    /// a pipeline retrying its POST) are the same record.
    fn same(&self, other: &Deployment) -> bool {
        self.service == other.service && self.version == other.version && self.at == other.at
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub id: String,
    pub service: String,
    /// `None`: every SLO of the service.
    pub slo: Option<String>,
    pub reason: String,
    pub by: String,
    pub from: i64,
    pub until: i64,
    pub source: Source,
}

/// A maintenance window told at run time, for a service or one SLO of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Maintenance {
    pub id: String,
    pub service: String,
    /// `None`: every SLO of the service.
    pub slo: Option<String>,
    pub exclusion: Exclusion,
    pub by: String,
    pub created: i64,
    pub source: Source,
}

impl Maintenance {
    pub fn covers(&self, service: &str, slo: &str) -> bool {
        self.service == service && self.slo.as_deref().is_none_or(|s| s == slo)
    }

    /// The window as the API and the records file give it.
    fn when_json(&self) -> Value {
        match &self.exclusion.when {
            When::Once { start, end } => json!({
                "start": crate::time::rfc3339(*start),
                "end": crate::time::rfc3339(*end),
            }),
            When::Recurring {
                rule,
                tz,
                dtstart,
                duration,
            } => json!({
                "rrule": rule,
                "duration": crate::time::format(std::time::Duration::from_secs((*duration).max(0) as u64)),
                "time_zone": tz.name(),
                "first": dtstart.format("%Y-%m-%dT%H:%M:%S").to_string(),
            }),
        }
    }
}

/// The fields of a maintenance window, in a request body and in the
/// maintenance file.
pub const MAINTENANCE_FIELDS: &[&str] = &[
    "service",
    "slo",
    "reason",
    "start",
    "end",
    "rrule",
    "duration",
    "time_zone",
    "first",
];

/// A maintenance window from a file: `fields` as a request body would
/// give them. `Err` names the field that is wrong.
pub fn maintenance_from_fields(
    fields: &Map<String, Value>,
    id: String,
) -> Result<Maintenance, BodyError> {
    let service = text(fields, "service", true)?.unwrap_or_default();
    let slo = text(fields, "slo", false)?.filter(|s| !s.is_empty());
    let reason = text(fields, "reason", false)?.unwrap_or_default();
    Ok(Maintenance {
        id,
        service,
        slo,
        exclusion: exclusion_of(fields, reason)?,
        by: "file".into(),
        created: 0,
        source: Source::File,
    })
}

/// What the operators' files hold: freeze overrides and maintenance
/// windows, replaced as a whole on each reload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FromFiles {
    pub overrides: Vec<Override>,
    pub maintenance: Vec<Maintenance>,
}

/// The window of a request body or a stored record: `start` and `end`
/// (RFC 3339), or `rrule` and `duration` with `time_zone` (default UTC)
/// and `first` (local time of the first occurrence).
fn exclusion_of(o: &Map<String, Value>, reason: String) -> Result<Exclusion, BodyError> {
    let rule = text(o, "rrule", false)?;
    match rule {
        None => {
            let start = time(o, "start")?.ok_or_else(|| bad("start", "required (or rrule)"))?;
            let end = time(o, "end")?.ok_or_else(|| bad("end", "required"))?;
            Exclusion::once(start, end, reason).map_err(|m| bad("start", m))
        }
        Some(rule) => {
            let duration = text(o, "duration", true)?.unwrap_or_default();
            let duration = crate::time::parse(&duration)
                .map_err(|e| bad("duration", e.to_string()))?
                .as_secs() as i64;
            let tz = match text(o, "time_zone", false)? {
                None => chrono_tz::UTC,
                Some(z) => z.parse::<chrono_tz::Tz>().map_err(|_| {
                    bad("time_zone", format!("{z:?} is not an IANA time zone name"))
                })?,
            };
            let first = match text(o, "first", false)? {
                None => chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
                    .map(|d| d.and_time(chrono::NaiveTime::MIN))
                    .ok_or_else(|| bad("first", "no default"))?,
                Some(f) => chrono::NaiveDateTime::parse_from_str(&f, "%Y-%m-%dT%H:%M:%S").map_err(
                    |_| {
                        bad(
                            "first",
                            format!("{f:?} is not a local time such as 2026-01-04T02:00:00"),
                        )
                    },
                )?,
            };
            Exclusion::recurring(&rule, tz, first, duration, reason).map_err(|m| bad("rrule", m))
        }
    }
}

impl RecordKind for Maintenance {
    fn from_request(body: &Value, ctx: &Context<'_>) -> Result<Self, BodyError> {
        let o = object(body)?;
        refuse_unknown(o, MAINTENANCE_FIELDS)?;
        let service = text(o, "service", true)?.unwrap_or_default();
        let slo = text(o, "slo", false)?.filter(|s| !s.is_empty());
        let reason = text(o, "reason", true)?.unwrap_or_default();
        let exclusion = exclusion_of(o, reason)?;
        if let When::Once { end, .. } = exclusion.when {
            if end <= ctx.now - KEEP_DEPLOYS_SECS {
                return Err(bad("end", "is older than the 100 days records are kept"));
            }
        }
        Ok(Maintenance {
            id: ctx.id.clone(),
            service,
            slo,
            exclusion,
            by: ctx.user.to_string(),
            created: ctx.now,
            source: Source::Api,
        })
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "service": self.service,
            "slo": self.slo,
            "reason": self.exclusion.reason,
            "by": self.by,
            "created": crate::time::rfc3339(self.created),
            "source": self.source.as_str(),
        });
        if let (Some(o), Value::Object(w)) = (v.as_object_mut(), self.when_json()) {
            o.extend(w);
        }
        v
    }
}

impl Override {
    pub fn active_at(&self, now: i64) -> bool {
        self.from <= now && now < self.until
    }

    pub fn covers(&self, service: &str, slo: &str) -> bool {
        self.service == service && self.slo.as_deref().is_none_or(|s| s == slo)
    }

    /// The gate's reason line for an SLO this override lets through.
    pub fn sentence(&self) -> String {
        format!(
            "release freeze overridden by {} until {}: {}",
            self.by,
            crate::time::rfc3339(self.until),
            self.reason
        )
    }
}

/// A request body that is not a record: the field and what is wrong.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct BodyError {
    pub field: String,
    pub message: String,
}

fn bad(field: &str, message: impl Into<String>) -> BodyError {
    BodyError {
        field: field.into(),
        message: message.into(),
    }
}

/// What a write request knows besides its body.
pub struct Context<'a> {
    pub now: i64,
    /// The authenticated user (basic auth), or how the client proved who
    /// it is (a client certificate).
    pub user: &'a str,
    pub policy: &'a dyn OverridePolicy,
    /// A fresh id for a record that needs one.
    pub id: String,
}

/// Who may override a freeze of a service's SLOs, and for how long; the
/// specs' `policy.override` blocks answer it.
pub trait OverridePolicy: Send + Sync {
    /// `Err` naming the field when `user` may not override `service`
    /// (`slo`) for `seconds`.
    fn allows(
        &self,
        user: &str,
        service: &str,
        slo: Option<&str>,
        seconds: i64,
    ) -> Result<(), BodyError>;
}

/// Any authenticated user, for up to [`DEFAULT_MAX_OVERRIDE_SECS`].
pub struct DefaultPolicy;

pub const DEFAULT_MAX_OVERRIDE_SECS: i64 = 7 * 86_400;

impl OverridePolicy for DefaultPolicy {
    fn allows(&self, _: &str, _: &str, _: Option<&str>, seconds: i64) -> Result<(), BodyError> {
        check_duration(seconds, DEFAULT_MAX_OVERRIDE_SECS)
    }
}

/// The specs' `policy.override` blocks. An override of a whole service
/// must be allowed by each of its SLOs, and lasts at most the shortest of
/// their `max_duration`s.
#[derive(Default)]
pub struct SpecPolicy {
    rules: BTreeMap<(String, String), crate::model::OverrideRules>,
}

impl SpecPolicy {
    pub fn new(slos: &[crate::model::Slo]) -> Self {
        SpecPolicy {
            rules: slos
                .iter()
                .map(|s| {
                    (
                        (s.service.clone(), s.name.clone()),
                        s.override_rules.clone(),
                    )
                })
                .collect(),
        }
    }
}

impl OverridePolicy for SpecPolicy {
    fn allows(
        &self,
        user: &str,
        service: &str,
        slo: Option<&str>,
        seconds: i64,
    ) -> Result<(), BodyError> {
        let matching: Vec<(&str, &crate::model::OverrideRules)> = self
            .rules
            .iter()
            .filter(|((sv, name), _)| sv == service && slo.is_none_or(|s| s == name))
            .map(|((_, name), r)| (name.as_str(), r))
            .collect();
        if matching.is_empty() {
            return Err(match slo {
                None => bad(
                    "service",
                    format!("no SLO of service {service:?} is configured"),
                ),
                Some(s) => bad(
                    "slo",
                    format!("no SLO {s:?} of service {service:?} is configured"),
                ),
            });
        }
        let mut max = i64::MAX;
        for (name, rules) in matching {
            if let Some(users) = &rules.allowed_users {
                if !users.iter().any(|u| u == user) {
                    return Err(bad(
                        "service",
                        format!("user {user:?} may not override the freeze of {service}/{name} (policy.override.allowed_users)"),
                    ));
                }
            }
            let limit = rules
                .max_duration
                .map_or(DEFAULT_MAX_OVERRIDE_SECS, |d| d.as_secs() as i64);
            max = max.min(limit);
        }
        check_duration(seconds, max)
    }
}

pub fn check_duration(seconds: i64, max: i64) -> Result<(), BodyError> {
    if seconds > max {
        Err(bad(
            "until",
            format!(
                "an override may last at most {}, this one {}",
                crate::time::format(std::time::Duration::from_secs(max.max(0) as u64)),
                crate::time::format(std::time::Duration::from_secs(seconds.max(0) as u64)),
            ),
        ))
    } else {
        Ok(())
    }
}

/// A record kind the API can create and list.
pub trait RecordKind: Sized {
    /// Validates a request body into a record.
    fn from_request(body: &Value, ctx: &Context<'_>) -> Result<Self, BodyError>;
    fn to_json(&self) -> Value;
}

fn object(body: &Value) -> Result<&Map<String, Value>, BodyError> {
    body.as_object()
        .ok_or_else(|| bad("body", "must be a JSON object"))
}

fn refuse_unknown(o: &Map<String, Value>, known: &[&str]) -> Result<(), BodyError> {
    match o.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad(
            k,
            format!("unknown field (known: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A non-empty string of at most 1 KiB with no control characters (it
/// ends up in alert annotations and log lines).
fn text(o: &Map<String, Value>, field: &str, required: bool) -> Result<Option<String>, BodyError> {
    match o.get(field) {
        None | Some(Value::Null) if !required => Ok(None),
        None | Some(Value::Null) => Err(bad(field, "required")),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() && required {
                Err(bad(field, "must not be empty"))
            } else if s.len() > 1024 {
                Err(bad(field, "longer than 1024 bytes"))
            } else if s.chars().any(char::is_control) {
                Err(bad(field, "must not hold control characters"))
            } else {
                Ok(Some(s.to_string()))
            }
        }
        Some(_) => Err(bad(field, "must be a string")),
    }
}

fn time(o: &Map<String, Value>, field: &str) -> Result<Option<i64>, BodyError> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => crate::time::parse_rfc3339(s.trim())
            .map(Some)
            .ok_or_else(|| {
                bad(
                    field,
                    format!("{s:?} is not an RFC 3339 time (2026-12-03T10:02:00Z)"),
                )
            }),
        Some(_) => Err(bad(field, "must be an RFC 3339 time string")),
    }
}

impl RecordKind for Deployment {
    fn from_request(body: &Value, ctx: &Context<'_>) -> Result<Self, BodyError> {
        let o = object(body)?;
        refuse_unknown(o, &["service", "version", "at", "description"])?;
        let service = text(o, "service", true)?.unwrap_or_default();
        let version = text(o, "version", true)?.unwrap_or_default();
        let at = time(o, "at")?.unwrap_or(ctx.now);
        // A clock a little ahead is common; a deploy a day ahead is a typo.
        if at > ctx.now + 300 {
            return Err(bad("at", "is in the future"));
        }
        if at < ctx.now - KEEP_DEPLOYS_SECS {
            return Err(bad("at", "is older than the 100 days deploys are kept"));
        }
        Ok(Deployment {
            service,
            version,
            at,
            source: Source::Api,
            description: text(o, "description", false)?.unwrap_or_default(),
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "service": self.service,
            "version": self.version,
            "at": crate::time::rfc3339(self.at),
            "source": self.source.as_str(),
            "description": self.description,
        })
    }
}

impl RecordKind for Override {
    fn from_request(body: &Value, ctx: &Context<'_>) -> Result<Self, BodyError> {
        let o = object(body)?;
        refuse_unknown(o, &["service", "slo", "reason", "until"])?;
        let service = text(o, "service", true)?.unwrap_or_default();
        let slo = text(o, "slo", false)?.filter(|s| !s.is_empty());
        let reason = text(o, "reason", true)?.unwrap_or_default();
        let until = time(o, "until")?.ok_or_else(|| bad("until", "required"))?;
        if until <= ctx.now {
            return Err(bad("until", "is not in the future"));
        }
        ctx.policy
            .allows(ctx.user, &service, slo.as_deref(), until - ctx.now)?;
        Ok(Override {
            id: ctx.id.clone(),
            service,
            slo,
            reason,
            by: ctx.user.to_string(),
            from: ctx.now,
            until,
            source: Source::Api,
        })
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "service": self.service,
            "slo": self.slo,
            "reason": self.reason,
            "by": self.by,
            "from": crate::time::rfc3339(self.from),
            "until": crate::time::rfc3339(self.until),
            "source": self.source.as_str(),
        })
    }
}

/// What the deploy metric showed last, and when: per service the versions
/// present (an info metric: a version present now and not then is a
/// deploy), or per service and version the count (a counter: a rise is a
/// deploy).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seen {
    pub at: Option<i64>,
    pub present: BTreeMap<String, BTreeSet<String>>,
    pub counts: Counts,
}

/// Per service, per version (empty for a counter without one), a count.
pub type Counts = BTreeMap<String, BTreeMap<String, f64>>;

/// Every record errbudget holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Book {
    /// Oldest first (`deployments_of` relies on it): add through
    /// `add_deployment`.
    pub deployments: Vec<Deployment>,
    pub overrides: Vec<Override>,
    /// Deploys ever recorded per service: `slo_deployments_total`, which
    /// must not fall when old deploys are pruned.
    pub totals: BTreeMap<String, u64>,
    /// Per deploy (index as in `deployments` is unstable: keyed by service,
    /// version, time), the budget each SLO instance of the service spent in
    /// the hour after it; filled by the evaluation loop once the hour is
    /// over, not stored (the histories it comes from are).
    pub impact: BTreeMap<(String, String, i64), Vec<Impact>>,
    pub seen: Seen,
    /// Maintenance windows told through the API.
    pub maintenance: Vec<Maintenance>,
    /// Closed calendar periods, oldest first (at most
    /// [`crate::state::MAX_CLOSED`]).
    pub periods: Vec<ClosedPeriod>,
    /// Bumped by every change the records file keeps (not `seen.at`, not
    /// `impact`), so the loop saves only after one. Not stored.
    pub revision: u64,
}

/// A closed period as the records file and `/api/v1/periods` give it.
pub fn closed_to_json(c: &ClosedPeriod) -> Value {
    let t = crate::time::rfc3339;
    json!({
        "service": c.service,
        "slo": c.slo,
        "labels": c.group,
        "period": c.name,
        "start": t(c.start),
        "end": t(c.end),
        "evaluated_at": t(c.evaluated_at),
        "objective": Value::from(c.objective),
        "period_error_ratio": Value::from(c.period_error_ratio),
        "achieved_ratio": Value::from(1.0 - c.period_error_ratio),
        "error_budget_remaining_ratio": Value::from(c.remaining_ratio),
        "error_budget_seconds": Value::from(c.budget_seconds),
        "excluded_seconds": Value::from(c.excluded_seconds),
        "period_events": c.events.map_or(Value::Null, |e| json!({"total": Value::from(e.total), "bad": Value::from(e.bad)})),
    })
}

fn closed_from_json(v: &Value) -> Result<ClosedPeriod, String> {
    let s = |k: &str| {
        v[k].as_str()
            .map(String::from)
            .ok_or(format!("periods: {k} is not a string"))
    };
    let f = |k: &str| v[k].as_f64().ok_or(format!("periods: {k} is not a number"));
    let t = |k: &str| {
        v[k].as_str()
            .and_then(crate::time::parse_rfc3339)
            .ok_or(format!("periods: {k} is not an RFC 3339 time"))
    };
    let group = v["labels"]
        .as_object()
        .ok_or("periods: labels is not an object")?
        .iter()
        .map(|(k, x)| Some((k.clone(), x.as_str()?.to_string())))
        .collect::<Option<_>>()
        .ok_or("periods: a label value is not a string")?;
    let events = match &v["period_events"] {
        Value::Null => None,
        e => Some(crate::budget::Events::new(
            e["bad"].as_f64().ok_or("periods: bad is not a number")?,
            e["total"]
                .as_f64()
                .ok_or("periods: total is not a number")?,
        )),
    };
    Ok(ClosedPeriod {
        service: s("service")?,
        slo: s("slo")?,
        group,
        name: s("period")?,
        start: t("start")?,
        end: t("end")?,
        evaluated_at: t("evaluated_at")?,
        objective: f("objective")?,
        period_error_ratio: f("period_error_ratio")?,
        remaining_ratio: f("error_budget_remaining_ratio")?,
        budget_seconds: f("error_budget_seconds")?,
        excluded_seconds: f("excluded_seconds")?,
        events,
    })
}

impl Book {
    pub fn add_maintenance(&mut self, m: Maintenance) {
        self.maintenance.push(m);
        self.revision += 1;
    }

    /// Ends a maintenance window told through the API: one under way stops
    /// at the next 5-minute boundary (what it left out stays left out),
    /// any other is withdrawn (its events count again). True when found.
    pub fn end_maintenance(&mut self, id: &str, now: i64) -> bool {
        let Some(i) = self.maintenance.iter().position(|m| m.id == id) else {
            return false;
        };
        let next = crate::history::align_up(now, 300);
        match &mut self.maintenance[i].exclusion.when {
            When::Once { start, end } if *start < now && now < *end => {
                *end = next.max(*start + 300)
            }
            _ => {
                self.maintenance.remove(i);
            }
        }
        self.revision += 1;
        true
    }

    /// The run-time windows of one SLO.
    pub fn maintenance_of(&self, service: &str, slo: &str) -> Vec<Exclusion> {
        self.maintenance
            .iter()
            .filter(|m| m.covers(service, slo))
            .map(|m| m.exclusion.clone())
            .collect()
    }

    /// Keeps the periods the evaluation loop saw close, the oldest dropped
    /// beyond [`crate::state::MAX_CLOSED`].
    pub fn add_closed(&mut self, closed: Vec<ClosedPeriod>) {
        if closed.is_empty() {
            return;
        }
        self.periods.extend(closed);
        let drop = self.periods.len().saturating_sub(crate::state::MAX_CLOSED);
        self.periods.drain(..drop);
        self.revision += 1;
    }

    /// Adds an override made through the API.
    pub fn add_override(&mut self, o: Override) {
        self.overrides.push(o);
        self.revision += 1;
    }

    /// Records what the deploy metric shows at `at`.
    pub fn set_seen(&mut self, at: i64, present: Present, counts: Counts) {
        if self.seen.present != present || self.seen.counts != counts {
            self.revision += 1;
        }
        self.seen = Seen {
            at: Some(at),
            present,
            counts,
        };
    }

    /// Adds a deploy unless it is already there; true when added.
    pub fn add_deployment(&mut self, d: Deployment) -> bool {
        if self.deployments.iter().any(|x| x.same(&d)) {
            return false;
        }
        *self.totals.entry(d.service.clone()).or_default() += 1;
        let i = self.deployments.partition_point(|x| x.at <= d.at);
        self.deployments.insert(i, d);
        if self.deployments.len() > MAX_DEPLOYS {
            self.deployments.remove(0);
        }
        self.revision += 1;
        true
    }

    /// Deploys of `service` in `(from, to]`, oldest first.
    pub fn deployments_of<'a>(
        &'a self,
        service: &'a str,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = &'a Deployment> + 'a {
        // Deploys are kept in time order: every alert pair asks every cycle
        // for its long window, which a scan of 100 days of deploys would
        // make the cost of the whole book.
        let lo = self.deployments.partition_point(|d| d.at <= from);
        let hi = self.deployments.partition_point(|d| d.at <= to).max(lo);
        self.deployments[lo..hi]
            .iter()
            .filter(move |d| d.service == service)
    }

    /// Overrides in force at `now` for that SLO of that service.
    pub fn active_overrides<'a>(
        &'a self,
        service: &'a str,
        slo: &'a str,
        now: i64,
    ) -> impl Iterator<Item = &'a Override> + 'a {
        self.overrides
            .iter()
            .filter(move |o| o.active_at(now) && o.covers(service, slo))
    }

    /// Ends an override early; true when it was there and still running.
    pub fn end_override(&mut self, id: &str, now: i64) -> bool {
        match self
            .overrides
            .iter_mut()
            .find(|o| o.id == id && o.source == Source::Api && now < o.until)
        {
            Some(o) => {
                o.until = now.max(o.from);
                self.revision += 1;
                true
            }
            None => false,
        }
    }

    /// Replaces what the overrides and maintenance files said.
    pub fn set_from_files(&mut self, files: FromFiles) {
        self.set_file_overrides(files.overrides);
        let before = self.maintenance.len();
        self.maintenance.retain(|m| m.source != Source::File);
        if before != self.maintenance.len() || !files.maintenance.is_empty() {
            self.revision += 1;
        }
        self.maintenance.extend(files.maintenance);
    }

    /// Replaces the overrides read from the overrides file.
    pub fn set_file_overrides(&mut self, from_file: Vec<Override>) {
        self.overrides.retain(|o| o.source != Source::File);
        self.overrides.extend(from_file);
        self.revision += 1;
    }

    /// Drops deploys older than [`KEEP_DEPLOYS_SECS`] and overrides that
    /// ended longer ago than that: a period report lists the overrides of
    /// its period, and periods run up to 90 days.
    pub fn prune(&mut self, now: i64) {
        self.maintenance.retain(|m| match m.exclusion.when {
            When::Once { end, .. } => end >= now - KEEP_DEPLOYS_SECS,
            When::Recurring { .. } => true,
        });
        let before = (self.deployments.len(), self.overrides.len());
        self.deployments.retain(|d| d.at >= now - KEEP_DEPLOYS_SECS);
        self.impact.retain(|k, _| k.2 >= now - KEEP_DEPLOYS_SECS);
        self.overrides
            .retain(|o| o.until >= now - KEEP_DEPLOYS_SECS);
        if (self.deployments.len(), self.overrides.len()) != before {
            self.revision += 1;
        }
    }

    /// Overrides of `service` in force at some time in `(from, to]`, for a
    /// period report.
    pub fn overrides_between<'a>(
        &'a self,
        service: &'a str,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = &'a Override> + 'a {
        self.overrides
            .iter()
            .filter(move |o| o.service == service && o.from <= to && o.until > from)
    }

    /// The book as the records file keeps it.
    pub fn to_json(&self) -> Value {
        let deployments: Vec<Value> = self
            .deployments
            .iter()
            .map(|d| json!({"service": d.service, "version": d.version, "at": d.at, "source": d.source.as_str(), "description": d.description}))
            .collect();
        let overrides: Vec<Value> = self
            .overrides
            .iter()
            .filter(|o| o.source == Source::Api)
            .map(|o| json!({"id": o.id, "service": o.service, "slo": o.slo, "reason": o.reason, "by": o.by, "from": o.from, "until": o.until}))
            .collect();
        json!({
            "version": 1,
            "deployments": deployments,
            "overrides": overrides,
            "totals": self.totals,
            "seen": {"at": self.seen.at, "present": self.seen.present, "counts": self.seen.counts},
            "periods": self.periods.iter().map(closed_to_json).collect::<Vec<_>>(),
            "maintenance": self.maintenance.iter().filter(|m| m.source == Source::Api).map(|m| {
                let mut v = m.to_json();
                v["created"] = m.created.into();
                v
            }).collect::<Vec<_>>(),
        })
    }

    /// Reads what [`to_json`](Self::to_json) wrote; `Err` names the first
    /// thing that is not.
    pub fn from_json(v: &Value) -> Result<Book, String> {
        if v["version"] != json!(1) {
            return Err("not a version 1 records file".into());
        }
        let s = |x: &Value, k: &str| {
            x[k].as_str()
                .map(String::from)
                .ok_or(format!("{k} is not a string"))
        };
        let n = |x: &Value, k: &str| x[k].as_i64().ok_or(format!("{k} is not an integer"));
        let list = |k: &str| v[k].as_array().cloned().ok_or(format!("{k} is not a list"));
        let mut book = Book::default();
        for d in list("deployments")? {
            book.deployments.push(Deployment {
                service: s(&d, "service")?,
                version: s(&d, "version")?,
                at: n(&d, "at")?,
                source: Source::parse(&s(&d, "source")?).ok_or("unknown source")?,
                description: s(&d, "description")?,
            });
        }
        book.deployments.sort_by_key(|d| d.at);
        for o in list("overrides")? {
            book.overrides.push(Override {
                id: s(&o, "id")?,
                service: s(&o, "service")?,
                slo: o["slo"].as_str().map(String::from),
                reason: s(&o, "reason")?,
                by: s(&o, "by")?,
                from: n(&o, "from")?,
                until: n(&o, "until")?,
                source: Source::Api,
            });
        }
        for (k, t) in v["totals"].as_object().ok_or("totals is not an object")? {
            book.totals
                .insert(k.clone(), t.as_u64().ok_or("a total is not a count")?);
        }
        if let Some(list) = v.get("maintenance") {
            for m in list.as_array().ok_or("maintenance is not a list")? {
                let o = m
                    .as_object()
                    .ok_or("a maintenance window is not an object")?;
                let reason = s(m, "reason")?;
                book.maintenance.push(Maintenance {
                    id: s(m, "id")?,
                    service: s(m, "service")?,
                    slo: m["slo"].as_str().map(String::from),
                    exclusion: exclusion_of(o, reason).map_err(|e| format!("maintenance: {e}"))?,
                    by: s(m, "by")?,
                    created: n(m, "created")?,
                    source: Source::Api,
                });
            }
        }
        // Absent from a file written before periods were kept.
        if let Some(periods) = v.get("periods") {
            for p in periods.as_array().ok_or("periods is not a list")? {
                book.periods.push(closed_from_json(p)?);
            }
        }
        book.seen.at = v["seen"]["at"].as_i64();
        if let Some(p) = v["seen"]["present"].as_object() {
            for (service, versions) in p {
                let versions = versions
                    .as_array()
                    .ok_or("seen versions are not a list")?
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
                book.seen.present.insert(service.clone(), versions);
            }
        }
        // Absent in files of a daemon that read info metrics only.
        if let Some(c) = v["seen"]["counts"].as_object() {
            for (service, versions) in c {
                let versions = versions
                    .as_object()
                    .ok_or("seen counts are not an object")?
                    .iter()
                    .filter_map(|(k, n)| Some((k.clone(), n.as_f64()?)))
                    .collect();
                book.seen.counts.insert(service.clone(), versions);
            }
        }
        Ok(book)
    }
}

/// The book shared by the evaluation loop and the web handlers, and the
/// policy overrides are checked against (the specs give it; a reload
/// replaces it).
pub struct Records {
    book: RwLock<Book>,
    policy: RwLock<Arc<dyn OverridePolicy>>,
}

impl Default for Records {
    fn default() -> Self {
        Records::new(Book::default())
    }
}

impl Records {
    pub fn new(book: Book) -> Self {
        Records {
            book: RwLock::new(book),
            policy: RwLock::new(Arc::new(DefaultPolicy)),
        }
    }

    pub fn policy(&self) -> Arc<dyn OverridePolicy> {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn set_policy(&self, policy: Arc<dyn OverridePolicy>) {
        match self.policy.write() {
            Ok(mut p) => *p = policy,
            Err(p) => *p.into_inner() = policy,
        }
    }

    pub fn read<T>(&self, f: impl FnOnce(&Book) -> T) -> T {
        match self.book.read() {
            Ok(g) => f(&g),
            Err(p) => f(&p.into_inner()),
        }
    }

    pub fn write<T>(&self, f: impl FnOnce(&mut Book) -> T) -> T {
        match self.book.write() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }
}

pub type SharedRecords = Arc<Records>;

/// One deploy-metric reading: the versions present per service at `at`.
pub type Present = BTreeMap<String, BTreeSet<String>>;

/// The versions in `now` that were not in `before`, per service: the
/// deploys to date. Empty for a first reading (`before` unknown): what
/// runs at start-up was deployed at some unknown earlier time.
pub fn appeared(before: &Seen, now: &Present) -> Vec<(String, String)> {
    if before.at.is_none() {
        return vec![];
    }
    let mut out = vec![];
    for (service, versions) in now {
        let old = before.present.get(service);
        for v in versions {
            if old.is_none_or(|o| !o.contains(v)) {
                out.push((service.clone(), v.clone()));
            }
        }
    }
    out
}

/// `v1.42 ` (a counter without a version label gives none: just the time).
fn named(d: &Deployment) -> String {
    if d.version.is_empty() {
        String::new()
    } else {
        format!("{} ", d.version)
    }
}

/// `2 deploys of checkout in the last hour: v1.42 at 10:02, v1.43 at 10:31`,
/// times UTC, with the date when a deploy is not on `now`'s day. `None`
/// without deploys.
pub fn deployments_sentence(
    service: &str,
    deploys: &[&Deployment],
    window_secs: i64,
    now: i64,
) -> Option<String> {
    if deploys.is_empty() {
        return None;
    }
    let span = if window_secs == 3600 {
        "the last hour".to_string()
    } else {
        format!(
            "the last {}",
            crate::time::format(std::time::Duration::from_secs(window_secs.max(1) as u64))
        )
    };
    let today = now.div_euclid(86_400);
    let list: Vec<String> = deploys
        .iter()
        .map(|d| {
            let t = crate::time::rfc3339(d.at);
            let hm = &t[11..16];
            if d.at.div_euclid(86_400) == today {
                format!("{}at {hm}", named(d))
            } else {
                format!("{}at {} {hm}", named(d), &t[..10])
            }
        })
        .collect();
    let n = deploys.len();
    Some(format!(
        "{n} deploy{} of {service} in {span}: {}",
        if n == 1 { "" } else { "s" },
        list.join(", ")
    ))
}

/// Share of the period's error budget consumed in the hour after a deploy
/// at `at`: bad events in the 5-minute buckets of `(t, t + 1h]`, `t` the
/// start of the deploy's bucket (it may hold the deploy's first errors),
/// over the budget of the period that ends with that hour, (1 − objective)
/// × its total events. Fixed once the hour is over, whenever it is asked.
/// `None` before the hour is in the history, or without traffic.
pub fn budget_consumed_after(
    history: &crate::history::History,
    at: i64,
    objective: f64,
    period_secs: i64,
) -> Option<f64> {
    let from = crate::history::align_down(at, 300);
    let to = from + 3600;
    // The whole hour must be in the history: older buckets were pruned
    // (or never read), and their absence is not a clean hour.
    let held = history.first_end().is_some_and(|e| e <= from + 300)
        && history.last_end().is_some_and(|e| e >= to);
    if !held {
        return None;
    }
    let period = history.events_between(to - period_secs, to);
    let budget = period.total * (1.0 - objective);
    if budget <= 0.0 || !budget.is_finite() {
        return None;
    }
    Some(history.events_between(from, to).bad / budget)
}

/// The budget an SLO instance spent in the hour after a deploy.
#[derive(Clone, Debug, PartialEq)]
pub struct Impact {
    pub slo: String,
    pub labels: BTreeMap<String, String>,
    pub budget_consumed_ratio: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only_alice_for_a_day() -> SpecPolicy {
        let mut a = crate::model::test_slo("c", "avail", 99.9, 30);
        a.override_rules = crate::model::OverrideRules {
            allowed_users: Some(vec!["alice".into()]),
            max_duration: Some(std::time::Duration::from_secs(86_400)),
        };
        let mut b = crate::model::test_slo("c", "latency", 99.0, 30);
        b.override_rules.max_duration = Some(std::time::Duration::from_secs(7_200));
        let other = crate::model::test_slo("checkout", "avail", 99.9, 30);
        SpecPolicy::new(&[a, b, other])
    }

    fn ctx<'a>(policy: &'a dyn OverridePolicy, user: &'a str) -> Context<'a> {
        Context {
            now: 1_800_000_000,
            user,
            policy,
            id: "o1".into(),
        }
    }

    fn deploy(service: &str, version: &str, at: i64) -> Deployment {
        Deployment {
            service: service.into(),
            version: version.into(),
            at,
            source: Source::Api,
            description: String::new(),
        }
    }

    #[test]
    fn deployment_bodies_are_checked_field_by_field() {
        let c = ctx(&DefaultPolicy, "alice");
        let ok = Deployment::from_request(
            &json!({"service": "checkout", "version": "v1.42", "at": "2027-01-15T07:06:40Z"}),
            &c,
        )
        .unwrap();
        assert_eq!(ok.at, 1_800_000_000 - 3_200);
        let now = Deployment::from_request(&json!({"service": "a", "version": "1"}), &c).unwrap();
        assert_eq!(now.at, c.now);
        let offset = Deployment::from_request(
            &json!({"service": "a", "version": "1", "at": "2027-01-15T08:06:40+01:00"}),
            &c,
        )
        .unwrap();
        assert_eq!(offset.at, ok.at);
        let err = |b: Value| Deployment::from_request(&b, &c).unwrap_err().to_string();
        assert_eq!(err(json!({"version": "1"})), "service: required");
        assert_eq!(
            err(json!({"service": "a", "version": 3})),
            "version: must be a string"
        );
        assert!(
            err(json!({"service": "a", "version": "1", "at": "yesterday"})).starts_with("at: ")
        );
        assert_eq!(
            err(json!({"service": "a", "version": "1", "at": "2030-01-01T00:00:00Z"})),
            "at: is in the future"
        );
        assert!(err(json!({"service": "a", "version": "1", "when": "x"}))
            .starts_with("when: unknown field"));
        assert_eq!(err(json!([1])), "body: must be a JSON object");
        assert_eq!(
            err(json!({"service": "a\nb", "version": "1"})),
            "service: must not hold control characters"
        );
    }

    #[test]
    fn overrides_follow_the_policy() {
        let policy = only_alice_for_a_day();
        let until = "2027-01-15T11:00:00Z";
        let o = Override::from_request(
            &json!({"service": "checkout", "reason": "hotfix", "until": until}),
            &ctx(&policy, "alice"),
        )
        .unwrap();
        assert_eq!(
            (o.by.as_str(), o.slo, o.until - o.from),
            ("alice", None, 10_800)
        );
        let err = |b: Value, user| {
            Override::from_request(&b, &ctx(&policy, user))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!({"service": "c", "slo": "avail", "reason": "x", "until": until}), "bob"),
            "service: user \"bob\" may not override the freeze of c/avail (policy.override.allowed_users)"
        );
        // latency lets anyone override for 2h; the whole service takes the
        // strictest of its SLOs.
        let two_hours = "2027-01-15T10:00:00Z";
        assert!(Override::from_request(
            &json!({"service": "c", "slo": "latency", "reason": "x", "until": two_hours}),
            &ctx(&policy, "bob")
        )
        .is_ok());
        assert_eq!(
            err(
                json!({"service": "c", "reason": "x", "until": until}),
                "alice"
            ),
            "until: an override may last at most 2h, this one 3h"
        );
        assert_eq!(
            err(
                json!({"service": "c", "slo": "avail", "reason": "x", "until": "2027-01-20T00:00:00Z"}),
                "alice"
            ),
            "until: an override may last at most 1d, this one 4d16h"
        );
        assert_eq!(
            err(
                json!({"service": "nope", "reason": "x", "until": until}),
                "alice"
            ),
            "service: no SLO of service \"nope\" is configured"
        );
        assert_eq!(
            err(json!({"service": "c", "until": until}), "alice"),
            "reason: required"
        );
        assert_eq!(
            err(
                json!({"service": "c", "reason": "x", "until": "2027-01-01T00:00:00Z"}),
                "alice"
            ),
            "until: is not in the future"
        );
    }

    proptest::proptest! {
        /// Mangled bodies and times are errors, never panics.
        #[test]
        fn mangled_request_bodies_never_panic(bytes in crate::fuzzing::mutated(vec![
            br#"{"service": "c", "version": "v1.42", "at": "2027-01-15T07:06:40Z", "description": "d"}"#.to_vec(),
            br#"{"service": "c", "slo": "avail", "reason": "x", "until": "2027-01-15T09:00:00+01:00"}"#.to_vec(),
        ], 12)) {
            let policy = only_alice_for_a_day();
            if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                let _ = Deployment::from_request(&v, &ctx(&policy, "alice"));
                let _ = Override::from_request(&v, &ctx(&policy, "alice"));
            }
            if let Ok(t) = std::str::from_utf8(&bytes) {
                let _ = crate::time::parse_rfc3339(t);
                if let Ok(v) = serde_json::from_str::<Value>(t) {
                    let _ = Book::from_json(&v);
                }
            }
        }
    }

    #[test]
    fn the_book_dedups_counts_prunes_and_round_trips() {
        let mut b = Book::default();
        assert!(b.add_deployment(deploy("a", "2", 2_000)));
        assert!(b.add_deployment(deploy("a", "1", 1_000)));
        assert!(!b.add_deployment(deploy("a", "1", 1_000)));
        assert!(b.add_deployment(deploy("b", "1", 1_500)));
        assert_eq!(b.totals["a"], 2);
        let of_a: Vec<_> = b
            .deployments_of("a", 0, 2_000)
            .map(|d| &d.version)
            .collect();
        assert_eq!(of_a, ["1", "2"]);
        b.overrides.push(Override {
            id: "x".into(),
            service: "a".into(),
            slo: Some("avail".into()),
            reason: "r".into(),
            by: "alice".into(),
            from: 1_000,
            until: 5_000,
            source: Source::Api,
        });
        b.seen.at = Some(2_000);
        b.seen.present.insert("a".into(), ["2".to_string()].into());
        b.seen
            .counts
            .insert("c".into(), [(String::new(), 3.0)].into());
        let before = b.revision;
        b.add_closed(vec![ClosedPeriod {
            service: "a".into(),
            slo: "avail".into(),
            group: [("route".to_string(), "/pay".to_string())].into(),
            name: "2026-11".into(),
            start: 1_793_487_600,
            end: 1_796_079_600,
            evaluated_at: 1_796_079_570,
            objective: 0.999,
            period_error_ratio: 0.000_25,
            remaining_ratio: 0.75,
            budget_seconds: 2_556.0,
            excluded_seconds: 18_000.0,
            events: Some(crate::budget::Events::new(25.0, 100_000.0)),
        }]);
        assert_eq!(b.revision, before + 1, "a closed period is saved");
        assert_eq!(b.active_overrides("a", "avail", 4_999).count(), 1);
        assert_eq!(b.active_overrides("a", "latency", 4_999).count(), 0);
        let mut back = Book::from_json(&b.to_json()).unwrap();
        back.revision = b.revision;
        assert_eq!(back, b);
        assert!(b.end_override("x", 3_000));
        assert_eq!(b.active_overrides("a", "avail", 3_000).count(), 0);
        assert_eq!(b.overrides_between("a", 2_000, 2_500).count(), 1);
        assert_eq!(b.overrides_between("a", 3_000, 9_000).count(), 0);
        b.prune(1_600 + KEEP_DEPLOYS_SECS);
        assert_eq!(b.deployments.len(), 1);
        assert_eq!(b.totals["a"], 2, "totals survive pruning");
        assert_eq!(b.overrides.len(), 1, "ended at 3 000, kept for reports");
        b.prune(3_001 + KEEP_DEPLOYS_SECS);
        assert!(b.overrides.is_empty());
        assert!(Book::from_json(&json!({"version": 2})).is_err());
    }

    #[test]
    fn deploys_of_a_window_are_those_in_from_exclusive_to_inclusive() {
        let mut b = Book::default();
        for (service, at) in [("a", 100), ("b", 200), ("a", 200), ("a", 300), ("a", 50)] {
            b.add_deployment(Deployment {
                service: service.into(),
                version: format!("v{at}"),
                at,
                source: Source::Api,
                description: String::new(),
            });
        }
        let at = |from, to| {
            b.deployments_of("a", from, to)
                .map(|d| d.at)
                .collect::<Vec<_>>()
        };
        assert_eq!(at(100, 300), vec![200, 300]);
        assert_eq!(at(0, 100), vec![50, 100]);
        assert_eq!(at(300, 1_000), Vec::<i64>::new());
        assert_eq!(at(400, 100), Vec::<i64>::new());
        assert_eq!(b.deployments_of("b", 0, 1_000).count(), 1);
    }

    #[test]
    fn a_version_is_a_deploy_when_it_appears() {
        let present = |pairs: &[(&str, &str)]| {
            let mut p = Present::new();
            for (s, v) in pairs {
                p.entry(s.to_string()).or_default().insert(v.to_string());
            }
            p
        };
        let first = Seen::default();
        assert!(appeared(&first, &present(&[("a", "1")])).is_empty());
        let before = Seen {
            at: Some(1),
            present: present(&[("a", "1"), ("b", "7")]),
            counts: Counts::new(),
        };
        assert_eq!(
            appeared(&before, &present(&[("a", "2"), ("b", "7"), ("c", "1")])),
            [("a".to_string(), "2".to_string()), ("c".into(), "1".into())]
        );
    }

    #[test]
    fn the_sentence_reads_as_people_write_it() {
        // 2026-12-03T10:02:00Z and 10:31; the second day for the date case.
        let day = 1_796_256_000;
        let a = deploy("checkout", "v1.42", day + 36_120);
        let b = deploy("checkout", "v1.43", day + 37_860);
        assert_eq!(
            deployments_sentence("checkout", &[&a, &b], 3_600, day + 38_000).unwrap(),
            "2 deploys of checkout in the last hour: v1.42 at 10:02, v1.43 at 10:31"
        );
        assert_eq!(
            deployments_sentence("checkout", &[&b], 86_400 * 3, day + 86_400 + 60).unwrap(),
            "1 deploy of checkout in the last 3d: v1.43 at 2026-12-03 10:31"
        );
        assert_eq!(deployments_sentence("checkout", &[], 3_600, day), None);
        let unnamed = deploy("checkout", "", day + 36_120);
        assert_eq!(
            deployments_sentence("checkout", &[&unnamed, &b], 3_600, day + 38_000).unwrap(),
            "2 deploys of checkout in the last hour: at 10:02, v1.43 at 10:31"
        );
    }

    #[test]
    fn budget_after_a_deploy_counts_the_hour_from_its_bucket() {
        let mut h = crate::history::History::new(300);
        let start = 1_000_000 * 300;
        h.start_at(start);
        let deploy_at = start + 7_200 + 40;
        // 100 events per bucket; 5 bad in each of the 12 buckets after
        // the deploy, 1 bad elsewhere.
        h.extend_to(start + 86_400, |end| {
            let after = end > deploy_at - 40 && end <= deploy_at - 40 + 3_600;
            crate::budget::Events::new(if after { 5.0 } else { 1.0 }, 100.0)
        });
        let share = budget_consumed_after(&h, deploy_at, 0.99, 86_400).unwrap();
        // The period ending with the hour holds 36 buckets (the history
        // starts 2h before the deploy): 3 600 events × 1% = 36 bad events
        // of budget, 60 of them spent in the hour.
        assert!((share - 60.0 / 36.0).abs() < 1e-12, "{share}");
        let short = budget_consumed_after(&h, deploy_at, 0.99, 3_600).unwrap();
        assert!((short - 60.0 / 12.0).abs() < 1e-12, "{short}");
        // The hour is not over in the history yet, or began before it.
        assert_eq!(
            budget_consumed_after(&h, start + 86_400 - 60, 0.99, 86_400),
            None
        );
        assert_eq!(budget_consumed_after(&h, start - 600, 0.99, 86_400), None);
    }
}
