//! `errbudget report`: the record of one closed period per SLO, for the
//! periodic review. Recomputed from the backend by the replay `backtest`
//! uses, so the incidents are the alerts the policy fired, and the figures
//! at the period's end are those `run` showed then.
//!
//! A calendar SLO is reported over the period of that name in its own
//! zone; a rolling SLO over the calendar period of that name in UTC, with
//! its figures (over its rolling period) at that period's end.

pub mod render;

use std::collections::BTreeMap;

use crate::alert::decide::Episode;
use crate::backtest::{self, label, Prefetch};
use crate::calendar::{Bounds, Calendar, Unit};
use crate::eval::engine::Engine;
use crate::model::{Severity, Slo};
use crate::prom::QueryApi;
use crate::records::{Deployment, Override};
use crate::state::{Instance, LabelSet};

/// One incident: overlapping alert episodes of an instance, merged.
#[derive(Clone, Debug, PartialEq)]
pub struct Incident {
    pub start: i64,
    /// `None`: still firing when the period ended.
    pub end: Option<i64>,
    /// The highest severity that fired.
    pub severity: Severity,
    /// `alertname long/short` of each alert that fired in it.
    pub alerts: Vec<String>,
    pub peak_burn_rate: f64,
    /// Where its bad events are counted from: one replay step and one
    /// short window before its first alert. The alert fired somewhere in
    /// the step before the replay saw it, and its short window already
    /// burned then (detection lags the first bad minute by up to that;
    /// later alerts' longer short windows would reach into the calm
    /// before). Without the step a 30-minute outage replayed every 15
    /// minutes lost up to its first 15 minutes.
    pub counted_from: i64,
    /// Bad events (error-seconds for a ratio SLI) from `counted_from` to
    /// its end.
    pub bad: f64,
    /// Share of the period's budget it consumed.
    pub budget_consumed_ratio: f64,
}

/// A deploy of the SLO's service in the period.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployImpact {
    pub deployment: Deployment,
    /// Share of the period's budget consumed in the hour after it (from
    /// the start of its 5-minute bucket); `None` when that hour runs past
    /// the period's last final bucket.
    pub budget_consumed_ratio: Option<f64>,
}

/// One SLO instance over one closed period.
#[derive(Clone, Debug)]
pub struct SloReport {
    /// The instance at the period's end, figures included.
    pub instance: Instance,
    pub period: Bounds,
    /// Replay steps during which releases were frozen, in seconds.
    pub freeze_seconds: i64,
    pub incidents: Vec<Incident>,
    pub deployments: Vec<DeployImpact>,
    /// Freeze overrides in force at some time in the period.
    pub overrides: Vec<Override>,
}

#[derive(Clone, Debug)]
pub struct PeriodReport {
    pub name: String,
    pub step: u64,
    pub slos: Vec<SloReport>,
    /// Replayed evaluations that failed: their figures are missing.
    pub failed_cycles: usize,
}

/// The period `name` denotes for `slo`, if its format fits the SLO's
/// period (a `2026-W48` is no month).
pub fn period_of(slo: &Slo, name: &str) -> Option<Bounds> {
    match &slo.calendar {
        Some(c) => c.named(name),
        None => [Unit::Month, Unit::Quarter, Unit::Week]
            .into_iter()
            .find_map(|unit| {
                Calendar {
                    unit,
                    tz: chrono_tz::UTC,
                }
                .named(name)
            }),
    }
}

fn belongs(i: &Instance, labels: &LabelSet) -> bool {
    labels.get("service") == Some(&i.slo.service)
        && labels.get("slo") == Some(&i.slo.name)
        && i.group.iter().all(|(k, v)| labels.get(k) == Some(v))
}

type Key = (String, String, LabelSet);

fn key(i: &Instance) -> Key {
    (i.slo.service.clone(), i.slo.name.clone(), i.group.clone())
}

/// Merges overlapping episodes (a page and the tickets of one outage)
/// into incidents, in order of start. `step`: seconds between the
/// evaluations that found the episodes.
pub fn incidents(mut episodes: Vec<&Episode>, period_end: i64, step: u64) -> Vec<Incident> {
    episodes.sort_by_key(|e| e.started);
    let mut out: Vec<Incident> = Vec::new();
    for e in episodes {
        let severity = if label(&e.labels, "severity") == "page" {
            Severity::Page
        } else {
            Severity::Ticket
        };
        let name = format!(
            "{} {}/{}",
            label(&e.labels, "alertname"),
            label(&e.labels, "long_window"),
            label(&e.labels, "short_window")
        );
        let end = e.ended.filter(|&t| t <= period_end);
        let lead =
            crate::time::parse(label(&e.labels, "short_window")).map_or(0, |d| d.as_secs() as i64);
        match out.last_mut() {
            Some(last) if last.end.is_none_or(|t| e.started <= t) => {
                last.end = match (last.end, end) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
                if severity == Severity::Page {
                    last.severity = Severity::Page;
                }
                if !last.alerts.contains(&name) {
                    last.alerts.push(name);
                }
                last.peak_burn_rate = last.peak_burn_rate.max(e.peak_burn_rate);
            }
            _ => out.push(Incident {
                start: e.started,
                end,
                severity,
                alerts: vec![name],
                peak_burn_rate: e.peak_burn_rate,
                counted_from: e.started - step as i64 - lead,
                bad: 0.0,
                budget_consumed_ratio: 0.0,
            }),
        }
    }
    out
}

/// Replays `slos` (all with the same period bounds) over `period` at
/// `step` and builds their reports. `engine` holds exactly these SLOs.
pub async fn replay_period<C: QueryApi>(
    engine: &mut Engine<Prefetch<C>>,
    period: &Bounds,
    step: u64,
) -> (Vec<SloReport>, usize) {
    let mut frozen: BTreeMap<Key, i64> = BTreeMap::new();
    // From one step in: at the boundary itself the period is the one
    // before (an instant closes the period ending there), whose history
    // would be read for nothing.
    let first = period.start + step as i64;
    let replay = backtest::replay_with(engine, first, period.end, step, |snap| {
        let inside = snap.evaluated_at.is_some_and(|t| t > period.start);
        for i in &snap.instances {
            if inside && i.figures.as_ref().is_some_and(|f| f.release_frozen) {
                *frozen.entry(key(i)).or_default() += step as i64;
            }
        }
    })
    .await;
    let mut out = Vec::new();
    for i in &replay.last.instances {
        let mine: Vec<&Episode> = replay
            .episodes
            .iter()
            .map(|r| &r.episode)
            .filter(|e| belongs(i, &e.labels))
            .filter(|e| e.started <= period.end && e.ended.is_none_or(|t| t > period.start))
            .collect();
        let mut incidents = incidents(mine, period.end, step);
        let total = engine.events_between(&i.slo, &i.group, period.start, period.end);
        let consumed = i.figures.as_ref().map_or(0.0, |f| 1.0 - f.remaining_ratio);
        // Every share is of what the period consumed, in proportion to bad
        // events: with the period covered that is bad / ((1 − objective)
        // × total), and the shares of incidents and deploys add up with it.
        let share = |bad: f64| match total {
            Some(t) if t.bad > 0.0 => consumed * bad / t.bad,
            _ => 0.0,
        };
        for inc in &mut incidents {
            let to = inc.end.unwrap_or(period.end);
            inc.counted_from = inc.counted_from.max(period.start);
            let bad = engine
                .events_between(&i.slo, &i.group, inc.counted_from, to)
                .map_or(0.0, |e| e.bad);
            inc.bad = bad;
            inc.budget_consumed_ratio = share(bad);
        }
        let (deploys, overrides) = engine.records().read(|b| {
            (
                b.deployments_of(&i.slo.service, period.start, period.end)
                    .cloned()
                    .collect::<Vec<_>>(),
                b.overrides_between(&i.slo.service, period.start, period.end)
                    .filter(|o| o.slo.as_ref().is_none_or(|s| *s == i.slo.name))
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        });
        let last_final = period.end - crate::plan::BUCKET_SECS as i64;
        let deployments = deploys
            .into_iter()
            .map(|d| {
                let from = crate::history::align_down(d.at, crate::plan::BUCKET_SECS);
                let to = from + 3_600;
                let budget_consumed_ratio = (to <= last_final)
                    .then(|| engine.events_between(&i.slo, &i.group, from, to))
                    .flatten()
                    .map(|e| share(e.bad));
                DeployImpact {
                    deployment: d,
                    budget_consumed_ratio,
                }
            })
            .collect();
        out.push(SloReport {
            instance: i.clone(),
            period: period.clone(),
            freeze_seconds: frozen.get(&key(i)).copied().unwrap_or(0),
            incidents,
            deployments,
            overrides,
        });
    }
    (out, replay.failed_cycles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn episode(sev: &str, long: &str, start: i64, end: Option<i64>, peak: f64) -> Episode {
        let labels: LabelSet = [
            ("alertname", "Burn"),
            ("severity", sev),
            ("long_window", long),
            ("short_window", "5m"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Episode {
            labels,
            started: start,
            ended: end,
            peak_burn_rate: peak,
        }
    }

    #[test]
    fn overlapping_alerts_are_one_incident_of_the_highest_severity() {
        let a = episode("ticket", "1d", 100, Some(900), 4.0);
        let b = episode("page", "1h", 300, Some(600), 20.0);
        let c = episode("ticket", "1d", 2_000, None, 3.0);
        let got = incidents(vec![&c, &a, &b], 10_000, 60);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].start, got[0].end), (100, Some(900)));
        assert_eq!(got[0].severity, Severity::Page);
        assert_eq!(got[0].alerts, vec!["Burn 1d/5m", "Burn 1h/5m"]);
        assert_eq!(got[0].peak_burn_rate, 20.0);
        // One step (1m) and one short window (5m) before the first alert.
        assert_eq!(got[0].counted_from, 100 - 60 - 300);
        assert_eq!((got[1].start, got[1].end), (2_000, None));
        assert_eq!(got[1].severity, Severity::Ticket);
    }

    #[test]
    fn period_names_follow_the_slo_calendar() {
        let mut slo = crate::model::test_slo("s", "a", 99.9, 30);
        let nov = period_of(&slo, "2026-11").expect("a UTC month for a rolling SLO");
        assert_eq!(nov.seconds(), 30 * 86_400);
        assert_eq!(
            period_of(&slo, "2026-Q4").map(|b| b.seconds()),
            Some(92 * 86_400)
        );
        slo.calendar = Some(Calendar {
            unit: Unit::Week,
            tz: chrono_tz::UTC,
        });
        assert!(period_of(&slo, "2026-11").is_none());
        assert!(period_of(&slo, "2026-W48").is_some());
    }
}
