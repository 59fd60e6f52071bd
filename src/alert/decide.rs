//! The alert state machine. Pure: `now` is passed in, nothing is sent here.
//!
//! Each alert is identified by its full label set (as Alertmanager
//! fingerprints it). A condition that cannot be evaluated (Prometheus down,
//! query error) holds the state: a firing alert keeps firing and is re-sent,
//! nothing resolves and nothing new fires on missing data.

use std::collections::BTreeMap;

use crate::state::LabelSet;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Firing,
    Clear,
    /// The SLO could not be evaluated this cycle.
    Unknown,
}

/// What the evaluation says about one alert this cycle.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub condition: Condition,
    pub generator_url: String,
    /// The burn rate that decides this alert (the lower of its two windows).
    pub burn_rate: f64,
}

/// One alert to deliver: firing (re-sent while it lasts) or resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: i64,
    /// For a firing alert, when Alertmanager should consider it resolved if
    /// no re-send arrives (errbudget died); for a resolved one, when it ended.
    pub ends_at: i64,
    pub resolved: bool,
    pub generator_url: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Pending { since: i64 },
    Firing { since: i64, last_sent: i64 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Tracked {
    pub phase: Phase,
    pub annotations: LabelSet,
    pub generator_url: String,
    pub peak_burn_rate: f64,
}

/// A finished or ongoing firing episode, for `backtest` and the pages.
#[derive(Clone, Debug, PartialEq)]
pub struct Episode {
    pub labels: LabelSet,
    pub started: i64,
    pub ended: Option<i64>,
    pub peak_burn_rate: f64,
}

#[derive(Clone, Debug)]
pub struct Decider {
    /// How long a condition must hold before the alert fires (0: at once;
    /// the short window already keeps multiwindow alerts from flapping).
    pub pending_for: i64,
    pub resend_interval: i64,
    states: BTreeMap<LabelSet, Tracked>,
    /// Episodes that ended since the last `take_ended`.
    ended: Vec<Episode>,
}

impl Decider {
    pub fn new(pending_for: i64, resend_interval: i64) -> Self {
        Decider {
            pending_for: pending_for.max(0),
            resend_interval: resend_interval.max(1),
            states: BTreeMap::new(),
            ended: Vec::new(),
        }
    }

    /// Alerts firing now, by label set.
    pub fn firing(&self) -> impl Iterator<Item = (&LabelSet, &Tracked)> {
        self.states
            .iter()
            .filter(|(_, t)| matches!(t.phase, Phase::Firing { .. }))
    }

    pub fn is_firing(&self, labels: &LabelSet) -> bool {
        matches!(
            self.states.get(labels).map(|t| &t.phase),
            Some(Phase::Firing { .. })
        )
    }

    /// Episodes that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<Episode> {
        std::mem::take(&mut self.ended)
    }

    /// Every alert pending or firing, by label set: the state to store.
    pub fn tracked(&self) -> impl Iterator<Item = (&LabelSet, &Tracked)> {
        self.states.iter()
    }

    /// Restores an alert tracked before a restart, so it is not a new
    /// incident: same `since`, and a firing one is re-sent at the next
    /// step (Alertmanager may have let it lapse while errbudget was down).
    /// It resolves as usual once its condition is gone.
    pub fn restore(&mut self, labels: LabelSet, mut tracked: Tracked) {
        if let Phase::Firing { since, .. } = tracked.phase {
            tracked.phase = Phase::Firing {
                since,
                last_sent: i64::MIN / 2,
            };
        }
        self.states.insert(labels, tracked);
    }

    /// Restores an alert that was firing before a restart, known only by
    /// its labels and start.
    pub fn restore_firing(&mut self, labels: LabelSet, since: i64) {
        self.restore(
            labels,
            Tracked {
                phase: Phase::Firing {
                    since,
                    last_sent: 0,
                },
                annotations: LabelSet::new(),
                generator_url: String::new(),
                peak_burn_rate: 0.0,
            },
        );
    }

    /// Advances every alert to `now`. Alerts not observed any more (their
    /// SLO was removed) resolve.
    pub fn step(&mut self, now: i64, observations: Vec<Observation>) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut seen = BTreeMap::new();
        for obs in observations {
            seen.insert(obs.labels.clone(), ());
            self.step_one(now, obs, &mut out);
        }
        let gone: Vec<LabelSet> = self
            .states
            .keys()
            .filter(|k| !seen.contains_key(*k))
            .cloned()
            .collect();
        for labels in gone {
            if let Some(t) = self.states.remove(&labels) {
                self.resolve(now, labels, t, &mut out);
            }
        }
        out
    }

    fn step_one(&mut self, now: i64, obs: Observation, out: &mut Vec<Notification>) {
        let pending_for = self.pending_for;
        let resend = self.resend_interval;
        let current = self.states.remove(&obs.labels);
        let next = match (current, obs.condition) {
            (None, Condition::Firing) => {
                let t = Tracked {
                    phase: Phase::Pending { since: now },
                    annotations: obs.annotations.clone(),
                    generator_url: obs.generator_url.clone(),
                    peak_burn_rate: obs.burn_rate,
                };
                Some(t)
            }
            (None, _) => None,
            (Some(t), Condition::Clear) => {
                if matches!(t.phase, Phase::Firing { .. }) {
                    self.resolve(now, obs.labels.clone(), t, out);
                }
                None
            }
            (Some(mut t), Condition::Firing) => {
                t.annotations = obs.annotations.clone();
                t.generator_url = obs.generator_url.clone();
                t.peak_burn_rate = t.peak_burn_rate.max(obs.burn_rate);
                Some(t)
            }
            // Missing data: hold everything as it is.
            (Some(t), Condition::Unknown) => Some(t),
        };
        let Some(mut t) = next else {
            return;
        };
        // Promote and (re-)send.
        if let Phase::Pending { since } = t.phase {
            if obs.condition == Condition::Firing && now - since >= pending_for {
                t.phase = Phase::Firing {
                    since,
                    last_sent: i64::MIN / 2,
                };
            }
        }
        if let Phase::Firing { since, last_sent } = t.phase {
            if now - last_sent >= resend {
                out.push(Notification {
                    labels: obs.labels.clone(),
                    annotations: t.annotations.clone(),
                    starts_at: since,
                    ends_at: now + 4 * resend,
                    resolved: false,
                    generator_url: t.generator_url.clone(),
                });
                t.phase = Phase::Firing {
                    since,
                    last_sent: now,
                };
            }
        }
        self.states.insert(obs.labels, t);
    }

    fn resolve(&mut self, now: i64, labels: LabelSet, t: Tracked, out: &mut Vec<Notification>) {
        let Phase::Firing { since, .. } = t.phase else {
            return;
        };
        self.ended.push(Episode {
            labels: labels.clone(),
            started: since,
            ended: Some(now),
            peak_burn_rate: t.peak_burn_rate,
        });
        out.push(Notification {
            labels,
            annotations: t.annotations,
            starts_at: since,
            ends_at: now,
            resolved: true,
            generator_url: t.generator_url,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(c: Condition) -> Observation {
        let mut labels = LabelSet::new();
        labels.insert("alertname".into(), "ErrorBudgetBurn".into());
        labels.insert("severity".into(), "page".into());
        Observation {
            labels,
            annotations: LabelSet::new(),
            condition: c,
            generator_url: "http://errbudget/slo/a/b".into(),
            burn_rate: 20.0,
        }
    }

    #[test]
    fn fires_at_once_resends_on_schedule_and_resolves_once() {
        let mut d = Decider::new(0, 60);
        let n = d.step(0, vec![obs(Condition::Firing)]);
        assert_eq!(n.len(), 1);
        assert!(!n[0].resolved);
        assert_eq!((n[0].starts_at, n[0].ends_at), (0, 240));
        assert!(
            d.step(30, vec![obs(Condition::Firing)]).is_empty(),
            "no re-send before 60s"
        );
        let n = d.step(60, vec![obs(Condition::Firing)]);
        assert_eq!(n.len(), 1);
        assert_eq!(
            n[0].starts_at, 0,
            "a re-send keeps the start: same incident"
        );
        let n = d.step(90, vec![obs(Condition::Clear)]);
        assert_eq!(n.len(), 1);
        assert!(n[0].resolved);
        assert_eq!(n[0].ends_at, 90);
        assert!(
            d.step(120, vec![obs(Condition::Clear)]).is_empty(),
            "resolved is sent once"
        );
        let ended = d.take_ended();
        assert_eq!(ended.len(), 1);
        assert_eq!((ended[0].started, ended[0].ended), (0, Some(90)));
    }

    #[test]
    fn pending_holds_until_the_condition_lasted() {
        let mut d = Decider::new(60, 60);
        assert!(d.step(0, vec![obs(Condition::Firing)]).is_empty());
        assert!(d.step(30, vec![obs(Condition::Firing)]).is_empty());
        let n = d.step(60, vec![obs(Condition::Firing)]);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].starts_at, 0);
        // A pending alert that clears never notifies.
        let mut d = Decider::new(60, 60);
        d.step(0, vec![obs(Condition::Firing)]);
        assert!(d.step(30, vec![obs(Condition::Clear)]).is_empty());
        assert!(d.step(90, vec![obs(Condition::Firing)]).is_empty());
    }

    #[test]
    fn missing_data_neither_resolves_nor_fires() {
        let mut d = Decider::new(0, 60);
        assert!(d.step(0, vec![obs(Condition::Unknown)]).is_empty());
        d.step(10, vec![obs(Condition::Firing)]);
        for t in [20, 40] {
            assert!(d.step(t, vec![obs(Condition::Unknown)]).is_empty());
        }
        // Still firing: re-sent on schedule while data is missing.
        let n = d.step(70, vec![obs(Condition::Unknown)]);
        assert_eq!(n.len(), 1);
        assert!(!n[0].resolved);
        assert!(d.is_firing(&obs(Condition::Unknown).labels));
    }

    #[test]
    fn removed_alerts_resolve_and_restored_ones_keep_their_start() {
        let mut d = Decider::new(0, 60);
        d.step(0, vec![obs(Condition::Firing)]);
        let n = d.step(10, vec![]);
        assert_eq!(n.len(), 1);
        assert!(n[0].resolved);

        let mut d = Decider::new(0, 60);
        d.restore_firing(obs(Condition::Firing).labels, -500);
        let n = d.step(0, vec![obs(Condition::Firing)]);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].starts_at, -500);
    }

    #[test]
    fn a_restored_alert_keeps_its_start_and_resolves_when_the_condition_is_gone() {
        let mut d = Decider::new(0, 60);
        d.step(0, vec![obs(Condition::Firing)]);
        d.step(60, vec![obs(Condition::Firing)]);
        let saved: Vec<(LabelSet, Tracked)> =
            d.tracked().map(|(l, t)| (l.clone(), t.clone())).collect();
        let mut after = Decider::new(0, 60);
        for (l, t) in saved {
            after.restore(l, t);
        }
        // Re-sent at once, though the last send is only 10 s old.
        let n = after.step(70, vec![obs(Condition::Firing)]);
        assert_eq!((n.len(), n[0].starts_at, n[0].resolved), (1, 0, false));
        let n = after.step(100, vec![obs(Condition::Clear)]);
        assert_eq!((n.len(), n[0].starts_at, n[0].resolved), (1, 0, true));
        assert_eq!(n[0].generator_url, "http://errbudget/slo/a/b");
    }
}
