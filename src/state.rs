//! The latest figures of every SLO instance behind a cheap shared handle.
//! Scrapes, the JSON API and the pages read a snapshot; only the engine
//! writes one. A failed evaluation keeps the last figures (marked stale),
//! so dashboards never go blank and nothing resolves on missing data.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use crate::budget::Events;
use crate::model::{Severity, Slo, Window};

pub type LabelSet = BTreeMap<String, String>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    NoData,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NoData => "no_data",
            Status::Error => "error",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WindowFigures {
    pub window: Window,
    /// Bad and total events in the window (error- and total seconds for
    /// ratio SLIs).
    pub events: Events,
    pub error_ratio: f64,
    pub burn_rate: f64,
    pub exhaustion_seconds: f64,
    /// Seconds of the window inside maintenance windows, whose events
    /// are left out.
    pub excluded_seconds: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AlertStatus {
    pub severity: Severity,
    pub long: Window,
    pub short: Window,
    pub burn_rate_threshold: f64,
    /// Both windows burn faster than the threshold right now.
    pub condition: bool,
    /// A page with fewer bad events in its long window than the policy's
    /// `min_bad_events`: delivered as a ticket.
    pub low_traffic: bool,
    /// The alert fires, as the state machine decides (pending, held while
    /// data is missing). Written by the engine alone, after the decider's
    /// step; an evaluator leaves it false.
    pub firing: bool,
}

impl AlertStatus {
    /// The severity the alert goes out with.
    pub fn effective_severity(&self) -> Severity {
        if self.low_traffic {
            Severity::Ticket
        } else {
            self.severity
        }
    }
}

/// What one successful evaluation found for one instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Figures {
    pub windows: Vec<WindowFigures>,
    pub period_error_ratio: f64,
    pub remaining_ratio: f64,
    pub remaining_seconds: f64,
    /// How much of the period the backend holds data for.
    pub coverage: crate::budget::Coverage,
    /// Event counts over the period; `None` for ratio SLIs.
    pub period_events: Option<Events>,
    /// The period the figures are over, `(start, end]`: for a rolling one
    /// `end` is the evaluation time, for a calendar one the period's end.
    pub period_start: i64,
    pub period_end: i64,
    /// The budget of the whole period in seconds: `(1 − objective)` × its
    /// length less its maintenance time.
    pub budget_seconds: f64,
    /// Maintenance time in the period up to the evaluation.
    pub excluded_seconds: f64,
    pub release_frozen: bool,
    pub alerts: Vec<AlertStatus>,
}

/// One SLO, or one label set of a grouped SLO.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub slo: Arc<Slo>,
    /// Labels kept by a grouped query (`sum by (route)`); empty otherwise.
    pub group: LabelSet,
    pub status: Status,
    pub error: Option<SloError>,
    /// Figures of the last successful evaluation, if there ever was one.
    pub figures: Option<Figures>,
    pub last_success: Option<i64>,
    /// Start of the current run of failed evaluations.
    pub failing_since: Option<i64>,
}

impl Instance {
    /// Length of the period the figures are over: the rolling period, or
    /// the current calendar period's (28 to 31 days for a month, an hour
    /// more or less across a daylight-saving change).
    pub fn period_seconds(&self) -> f64 {
        match (&self.slo.calendar, &self.figures) {
            (Some(_), Some(f)) => (f.period_end - f.period_start) as f64,
            _ => self.slo.period.as_secs() as f64,
        }
    }

    /// The budget of the current period in seconds, less its maintenance
    /// time; before any figures, of the spec's period.
    pub fn budget_seconds(&self) -> f64 {
        self.figures
            .as_ref()
            .map_or_else(|| self.slo.error_budget_seconds(), |f| f.budget_seconds)
    }

    /// The name of the calendar period the figures are over (`2026-12`);
    /// `None` for a rolling period or before any figures.
    pub fn period_name(&self) -> Option<String> {
        let (c, f) = (self.slo.calendar.as_ref()?, self.figures.as_ref()?);
        Some(c.period_at(f.period_end).name)
    }

    /// The period as people name it: `30d`, or `2026-12 (calendar month,
    /// Europe/Berlin)` once there are figures.
    pub fn period_label(&self) -> String {
        match (&self.slo.calendar, self.period_name()) {
            (Some(c), Some(name)) => {
                format!("{name} (calendar {}, {})", c.unit.as_str(), c.tz.name())
            }
            _ => self.slo.period_text(),
        }
    }

    /// Whether the figures say anything about maintenance time: the spec
    /// names windows, or some window of these figures held one.
    pub fn has_exclusions(&self) -> bool {
        !self.slo.exclusions.is_empty()
            || self.figures.as_ref().is_some_and(|f| {
                f.excluded_seconds > 0.0 || f.windows.iter().any(|w| w.excluded_seconds > 0.0)
            })
    }

    /// Spec labels and group labels, as exposed on every series.
    pub fn labels(&self) -> LabelSet {
        let mut l = self.slo.labels.clone();
        l.extend(self.group.clone());
        l
    }
}

/// Outcome of evaluating one SLO in one cycle.
pub type SloOutcome = Result<Vec<(LabelSet, Status, Figures)>, SloError>;

/// Why an SLO could not be evaluated: the evaluation's own error, kept
/// typed (with its causes) up to the views and logs that print it.
#[derive(Clone, Debug)]
pub struct SloError(Arc<dyn std::error::Error + Send + Sync>);

impl SloError {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        SloError(Arc::new(e))
    }
}

/// An error known only by its message (a restored or scripted one).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Message(String);

impl From<String> for SloError {
    fn from(message: String) -> Self {
        SloError::new(Message(message))
    }
}

impl From<&str> for SloError {
    fn from(message: &str) -> Self {
        SloError::from(message.to_string())
    }
}

impl std::fmt::Display for SloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SloError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Two errors are the same when they say the same.
impl PartialEq for SloError {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// How an instance ended a calendar period: the figures of its last
/// evaluation inside it (at most one interval before the end; the report
/// recomputes a period exactly from the backend).
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedPeriod {
    pub service: String,
    pub slo: String,
    pub group: LabelSet,
    pub name: String,
    pub start: i64,
    pub end: i64,
    pub evaluated_at: i64,
    pub objective: f64,
    pub period_error_ratio: f64,
    pub remaining_ratio: f64,
    pub budget_seconds: f64,
    pub excluded_seconds: f64,
    pub events: Option<Events>,
}

/// Closed periods kept, oldest dropped first: two years of monthly
/// periods for 40 SLO instances.
pub const MAX_CLOSED: usize = 1_000;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub evaluated_at: Option<i64>,
    pub instances: Vec<Instance>,
}

impl Snapshot {
    /// The next snapshot: successes replace an SLO's instances, failures
    /// keep the previous figures with status `error`. SLOs no longer
    /// configured disappear.
    pub fn next(&self, at: i64, results: Vec<(Arc<Slo>, SloOutcome)>) -> Snapshot {
        let mut instances = Vec::new();
        for (slo, outcome) in results {
            match outcome {
                Ok(list) => {
                    for (group, status, figures) in list {
                        instances.push(Instance {
                            slo: slo.clone(),
                            group,
                            status,
                            error: None,
                            figures: Some(figures),
                            last_success: Some(at),
                            failing_since: None,
                        });
                    }
                }
                Err(message) => {
                    let previous: Vec<&Instance> = self
                        .instances
                        .iter()
                        .filter(|i| same_slo(&i.slo, &slo))
                        .collect();
                    if previous.is_empty() {
                        instances.push(Instance {
                            slo: slo.clone(),
                            group: LabelSet::new(),
                            status: Status::Error,
                            error: Some(message),
                            figures: None,
                            last_success: None,
                            failing_since: Some(at),
                        });
                    } else {
                        for p in previous {
                            instances.push(Instance {
                                slo: slo.clone(),
                                status: Status::Error,
                                error: Some(message.clone()),
                                failing_since: Some(p.failing_since.unwrap_or(at)),
                                ..p.clone()
                            });
                        }
                    }
                }
            }
        }
        Snapshot {
            evaluated_at: Some(at),
            instances,
        }
    }

    /// The periods `next` has moved out of since `self`: for every calendar
    /// instance whose period changed, its last figures in the old one.
    pub fn closed_by(&self, next: &Snapshot) -> Vec<ClosedPeriod> {
        let calendar = |i: &&Instance| i.slo.calendar.is_some() && i.figures.is_some();
        if !next.instances.iter().any(|i| calendar(&i)) {
            return Vec::new();
        }
        // One lookup per instance: this runs every cycle.
        let before: BTreeMap<(&str, &str, &LabelSet), &Instance> = self
            .instances
            .iter()
            .filter(calendar)
            .map(|p| ((p.slo.service.as_str(), p.slo.name.as_str(), &p.group), p))
            .collect();
        let mut out = Vec::new();
        for i in next.instances.iter().filter(calendar) {
            let key = (i.slo.service.as_str(), i.slo.name.as_str(), &i.group);
            let (Some(p), Some(f)) = (before.get(&key), &i.figures) else {
                continue;
            };
            let (Some(pf), Some(name)) = (&p.figures, p.period_name()) else {
                continue;
            };
            if pf.period_start == f.period_start || pf.period_end > f.period_start {
                continue;
            }
            out.push(ClosedPeriod {
                service: i.slo.service.clone(),
                slo: i.slo.name.clone(),
                group: i.group.clone(),
                name,
                start: pf.period_start,
                end: pf.period_end,
                evaluated_at: self
                    .evaluated_at
                    .or(p.last_success)
                    .unwrap_or(pf.period_start),
                objective: i.slo.objective.ratio(),
                period_error_ratio: pf.period_error_ratio,
                remaining_ratio: pf.remaining_ratio,
                budget_seconds: pf.budget_seconds,
                excluded_seconds: pf.excluded_seconds,
                events: pf.period_events,
            });
        }
        out
    }
}

fn same_slo(a: &Slo, b: &Slo) -> bool {
    a.service == b.service && a.name == b.name
}

/// Shared handle to the latest snapshot.
#[derive(Default)]
pub struct State {
    snapshot: RwLock<Arc<Snapshot>>,
    ready: AtomicBool,
}

impl State {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn publish(&self, next: Snapshot) {
        self.publish_arc(Arc::new(next));
    }

    fn publish_arc(&self, next: Arc<Snapshot>) {
        match self.snapshot.write() {
            Ok(mut g) => *g = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        self.ready.store(true, Ordering::Release);
    }

    /// True once the first evaluation finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_slo;

    fn figures(remaining: f64) -> Figures {
        Figures {
            windows: vec![],
            period_error_ratio: 0.0,
            remaining_ratio: remaining,
            remaining_seconds: 0.0,
            coverage: crate::budget::Coverage::full(2_592_000.0),
            period_events: None,
            period_start: 1_761_526_800,
            period_end: 1_764_118_800,
            budget_seconds: 2_592.0,
            excluded_seconds: 0.0,
            release_frozen: false,
            alerts: vec![],
        }
    }

    #[test]
    fn a_calendar_instance_moving_on_closes_its_period_with_its_last_figures() {
        let mut slo = test_slo("s", "monthly", 99.9, 30);
        slo.calendar = Some(crate::calendar::Calendar {
            unit: crate::calendar::Unit::Month,
            tz: chrono_tz::UTC,
        });
        let slo = Arc::new(slo);
        let in_period = |start: i64, end: i64, remaining: f64| Figures {
            period_start: start,
            period_end: end,
            ..figures(remaining)
        };
        // November 2026 in UTC, then December.
        let (nov, dec, jan) = (1_793_491_200, 1_796_083_200, 1_798_761_600);
        let late_nov = Snapshot::default().next(
            dec - 20,
            vec![(
                slo.clone(),
                Ok(vec![(
                    LabelSet::new(),
                    Status::Ok,
                    in_period(nov, dec, 0.25),
                )]),
            )],
        );
        let early_dec = late_nov.next(
            dec + 10,
            vec![(
                slo.clone(),
                Ok(vec![(
                    LabelSet::new(),
                    Status::Ok,
                    in_period(dec, jan, 1.0),
                )]),
            )],
        );
        let closed = late_nov.closed_by(&early_dec);
        assert_eq!(closed.len(), 1);
        let c = &closed[0];
        assert_eq!((c.name.as_str(), c.start, c.end), ("2026-11", nov, dec));
        assert_eq!((c.remaining_ratio, c.evaluated_at), (0.25, dec - 20));
        // Within a period, and for a rolling SLO, nothing closes.
        assert!(early_dec
            .closed_by(&early_dec.next(
                dec + 40,
                vec![(
                    slo.clone(),
                    Ok(vec![(
                        LabelSet::new(),
                        Status::Ok,
                        in_period(dec, jan, 0.9)
                    )])
                )]
            ))
            .is_empty());
        let rolling = Arc::new(test_slo("s", "rolling", 99.9, 30));
        let a = Snapshot::default().next(
            1,
            vec![(
                rolling.clone(),
                Ok(vec![(LabelSet::new(), Status::Ok, in_period(0, 1, 0.5))]),
            )],
        );
        let b = a.next(
            2,
            vec![(
                rolling,
                Ok(vec![(LabelSet::new(), Status::Ok, in_period(1, 2, 0.5))]),
            )],
        );
        assert!(a.closed_by(&b).is_empty());
    }

    #[test]
    fn a_failure_keeps_the_last_figures_and_marks_them() {
        let a = Arc::new(test_slo("s", "a", 99.9, 30));
        let b = Arc::new(test_slo("s", "b", 99.9, 30));
        let first = Snapshot::default().next(
            100,
            vec![
                (
                    a.clone(),
                    Ok(vec![(LabelSet::new(), Status::Ok, figures(0.5))]),
                ),
                (b.clone(), Err("down".into())),
            ],
        );
        assert_eq!(first.instances.len(), 2);
        assert_eq!(first.instances[1].status, Status::Error);
        assert!(first.instances[1].figures.is_none());

        let second = first.next(
            130,
            vec![(a.clone(), Err("timeout".into())), (b, Err("down".into()))],
        );
        let ia = &second.instances[0];
        assert_eq!(ia.status, Status::Error);
        assert_eq!(ia.error, Some("timeout".into()));
        assert_eq!(ia.figures.as_ref().map(|f| f.remaining_ratio), Some(0.5));
        assert_eq!(ia.last_success, Some(100));
    }

    #[test]
    fn removed_slos_disappear() {
        let a = Arc::new(test_slo("s", "a", 99.9, 30));
        let first = Snapshot::default().next(
            1,
            vec![(a, Ok(vec![(LabelSet::new(), Status::Ok, figures(1.0))]))],
        );
        assert!(first.next(2, vec![]).instances.is_empty());
    }
}
