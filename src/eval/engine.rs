//! Drives evaluation: one cycle over every SLO with per-SLO failure
//! isolation, publishing a snapshot; swaps the SLO set on reload while
//! keeping the history of SLOs whose definition did not change.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;

use crate::alert::decide::{Decider, Notification};
use crate::alert::payload::{self, BuildOptions};
use crate::config::DeploymentSettings;
use crate::eval::slo::{EvalError, SloEvaluator};
use crate::metrics::DaemonMetrics;
use crate::model::Slo;
use crate::prom::backend::{self, Detected};
use crate::prom::batch::Batching;
use crate::prom::QueryApi;
use crate::records::SharedRecords;
use crate::state::{LabelSet, SloError, Snapshot, State};
use crate::store;

/// Where decided notifications go: the dispatcher in `run`, nowhere in
/// `eval`. Must not block.
pub type Sink = Box<dyn Fn(Vec<Notification>) + Send + Sync>;

pub struct Engine<C> {
    /// Merges the evaluators' concurrent queries into few requests.
    client: Arc<Batching<C>>,
    evaluators: Vec<SloEvaluator>,
    state: Arc<State>,
    metrics: Arc<DaemonMetrics>,
    decider: Decider,
    alert_options: BuildOptions,
    sink: Sink,
    backend: Detected,
    /// Probe the backend again before the next cycle: at start-up, after a
    /// new client, and after a cycle in which every SLO failed (the
    /// backend may come back as another build).
    redetect: bool,
    /// Deploys and overrides, shared with the web handlers.
    records: SharedRecords,
    /// The records revision the evaluators' run-time maintenance windows
    /// were taken at.
    maintenance_revision: Option<u64>,
    /// Where deploys are read from besides the API.
    deployments: Option<DeploymentSettings>,
}

impl<C: QueryApi> Engine<C> {
    pub fn new(
        client: Arc<C>,
        slos: Vec<Slo>,
        state: Arc<State>,
        metrics: Arc<DaemonMetrics>,
    ) -> Self {
        let evaluators = slos
            .into_iter()
            .map(|s| SloEvaluator::new(Arc::new(s)))
            .collect();
        // The settings' defaults until `set_alerting` is called.
        let alerting = crate::config::AlertingSettings::default();
        Engine {
            client: Arc::new(Batching::new(client)),
            evaluators,
            state,
            metrics,
            decider: Decider::new(
                alerting.pending_for.as_secs() as i64,
                alerting.resend_interval.as_secs() as i64,
            ),
            alert_options: BuildOptions {
                external_url: String::new(),
                evaluation_failing_after: alerting.evaluation_failing_after.as_secs() as i64,
            },
            sink: Box::new(|_| {}),
            backend: Detected::default(),
            redetect: true,
            records: SharedRecords::default(),
            maintenance_revision: None,
            deployments: None,
        }
    }

    /// The detected backend, shared (the status page reads it).
    pub fn backend(&self) -> Detected {
        self.backend.clone()
    }

    /// Records a detection: the shared handle, the info metric, a log
    /// line when it changed.
    fn detected(&mut self, info: backend::BackendInfo) {
        if self.backend.get().as_ref() != Some(&info) {
            tracing::info!(
                product = %info.product,
                version = %info.version,
                semantics = info.semantics.as_str(),
                "query backend detected"
            );
        }
        let m = &self.metrics.backend_info;
        m.reset();
        m.with_label_values(&[&info.product, &info.version, info.semantics.as_str()])
            .set(1);
        self.redetect = false;
        self.backend.set(Some(info));
    }

    /// Alerting settings; the decider keeps its state across calls, so a
    /// reload neither re-fires nor resolves anything.
    pub fn set_alerting(&mut self, pending_for: i64, resend_interval: i64, options: BuildOptions) {
        self.decider.pending_for = pending_for.max(0);
        self.decider.resend_interval = resend_interval.max(1);
        self.alert_options = options;
    }

    /// The records alerts read deploys from and the deploy metric feeds.
    pub fn set_records(&mut self, records: SharedRecords) {
        self.records = records;
        self.maintenance_revision = None;
    }

    pub fn records(&self) -> &SharedRecords {
        &self.records
    }

    pub fn set_deployments(&mut self, source: Option<DeploymentSettings>) {
        self.deployments = source;
    }

    pub fn set_sink(&mut self, sink: Sink) {
        self.sink = sink;
    }

    /// Events of one SLO instance in `(from, to]` from its history (see
    /// [`SloEvaluator::events_between`]).
    pub fn events_between(
        &self,
        slo: &Slo,
        group: &LabelSet,
        from: i64,
        to: i64,
    ) -> Option<crate::budget::Events> {
        self.evaluators
            .iter()
            .find(|e| e.slo().service == slo.service && e.slo().name == slo.name)
            .and_then(|e| e.events_between(group, from, to))
    }

    /// Gives each evaluator the maintenance windows told at run time for
    /// its SLO, when the records changed since the last time.
    fn take_maintenance(&mut self) {
        let revision = self.records.read(|b| b.revision);
        if self.maintenance_revision == Some(revision) {
            return;
        }
        self.maintenance_revision = Some(revision);
        for e in &mut self.evaluators {
            let slo = e.slo().clone();
            let windows = self
                .records
                .read(|b| b.maintenance_of(&slo.service, &slo.name));
            e.set_exclusions(Arc::new(windows));
        }
    }

    pub fn decider_mut(&mut self) -> &mut Decider {
        &mut self.decider
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Evaluates every SLO at `now` and publishes the snapshot. Returns the
    /// number of SLOs that failed.
    pub async fn cycle(&mut self, now: i64) -> usize {
        let started = Instant::now();
        // Pieced windows end on a step boundary (`SloEvaluator::evaluate`):
        // the snapshot's `evaluated_at` says which instant its figures are
        // for. Everything else keeps the clock: resends, pending times and
        // how long evaluations have been failing are not in steps.
        let at = crate::plan::evaluation_instant(now);
        let client = self.client.clone();
        // Without a known semantics nothing can be spelt: probe first. A
        // re-probe runs beside the cycle (with the semantics known so far),
        // so a backend that hangs never costs two timeouts in a row.
        let known = self.backend.get().map(|b| b.semantics);
        let (semantics, probed) = match known {
            None => match backend::detect(&*client, now).await {
                Ok(info) => {
                    let s = info.semantics;
                    self.detected(info);
                    (Ok(s), None)
                }
                Err(e) => (Err(SloError::new(EvalError::Backend(e))), None),
            },
            Some(s) => (Ok(s), None),
        };
        let reprobe = self.redetect && known.is_some();
        self.take_maintenance();
        let (records, source) = (self.records.clone(), self.deployments.clone());
        let deploys = async {
            let Some(source) = source else { return };
            match crate::eval::deploys::detect(&*client, &source, &records, now).await {
                Ok(found) => {
                    for d in found {
                        tracing::info!(service = %d.service, version = %d.version, at = %crate::time::rfc3339(d.at), "deploy seen in the deployments metric");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %crate::diag::chain(&e), "cannot read the deployments metric")
                }
            }
        };
        let evaluate = async {
            match semantics {
                Ok(semantics) => {
                    let evaluations = join_all(self.evaluators.iter_mut().map(|e| async {
                        (e.slo().clone(), e.evaluate(&*client, now, semantics).await)
                    }));
                    let probe = async {
                        if reprobe {
                            backend::detect(&*client, now).await.ok()
                        } else {
                            probed
                        }
                    };
                    tokio::join!(evaluations, probe)
                }
                Err(e) => (
                    self.evaluators
                        .iter()
                        .map(|ev| (ev.slo().clone(), Err(e.clone())))
                        .collect(),
                    None,
                ),
            }
        };
        let ((results, probed), ()) = tokio::join!(evaluate, deploys);
        self.records.write(|b| b.prune(now));
        self.assess_deploys(now);
        if let Some(info) = probed {
            self.detected(info);
        }
        let failed = results.iter().filter(|(_, r)| r.is_err()).count();
        if failed > 0 && failed == results.len() {
            self.redetect = true;
        }
        for (slo, r) in &results {
            if let Err(e) = r {
                tracing::warn!(service = %slo.service, slo = %slo.name, error = %e, "SLO evaluation failed");
            }
        }
        let previous = self.state.snapshot();
        let mut next = previous.next(now, results);
        let closed = previous.closed_by(&next);
        for c in &closed {
            tracing::info!(service = %c.service, slo = %c.slo, period = %c.name, remaining_ratio = c.remaining_ratio, "calendar period closed");
        }
        self.records.write(|b| b.add_closed(closed));
        // Successes and failures are dated by the clock (alerts on failing
        // evaluations count from them); the figures are for `at`.
        next.evaluated_at = Some(at);
        let observations = self
            .records
            .read(|book| payload::observations(&next, now, &self.alert_options, book));
        let was_firing = self.decider.firing().map(|(l, _)| l.clone()).collect();
        let notifications = self.decider.step(now, observations);
        log_alert_changes(&was_firing, &notifications, &next);
        for i in &mut next.instances {
            let Some(fig) = i.figures.take() else {
                continue;
            };
            let mut fig = fig;
            for a in &mut fig.alerts {
                a.firing = self.decider.is_firing(&payload::alert_labels(i, a));
            }
            i.figures = Some(fig);
        }
        if !notifications.is_empty() {
            (self.sink)(notifications);
        }
        self.state.publish(next);
        let secs = started.elapsed().as_secs_f64();
        self.metrics.evaluation_duration.observe(secs);
        tracing::debug!(
            slos = self.evaluators.len(),
            failed,
            seconds = secs,
            "evaluation cycle done"
        );
        failed
    }

    /// Fills in the budget each SLO instance spent in the hour after each
    /// deploy of its service, once that hour is over (and ten minutes more,
    /// for the last buckets to be final) and every SLO of the service has a
    /// history. Each deploy is worked out once, so a cycle costs little
    /// however many deploys there are; a restart works them out again from
    /// the restored histories.
    fn assess_deploys(&self, now: i64) {
        let pending: Vec<(String, String, i64)> = self.records.read(|b| {
            b.deployments
                .iter()
                .filter(|d| d.at + 3_600 + 600 <= now)
                .map(|d| (d.service.clone(), d.version.clone(), d.at))
                .filter(|k| !b.impact.contains_key(k))
                .collect()
        });
        if pending.is_empty() {
            return;
        }
        let mut done: Vec<((String, String, i64), Vec<crate::records::Impact>)> = vec![];
        for key in pending {
            let of_service: Vec<_> = self
                .evaluators
                .iter()
                .filter(|e| e.slo().service == key.0)
                .collect();
            if of_service.iter().any(|e| e.saved().is_none()) {
                continue;
            }
            let mut impact = vec![];
            for e in of_service {
                let slo = e.slo();
                let Some((_, _, histories)) = e.saved() else {
                    continue;
                };
                // A deploy older than the period is before any history.
                if key.2 < now - slo.period.as_secs() as i64 {
                    continue;
                }
                for (labels, h) in histories {
                    let share = crate::records::budget_consumed_after(
                        h,
                        key.2,
                        slo.objective.ratio(),
                        slo.period.as_secs() as i64,
                    );
                    if let Some(share) = share {
                        impact.push(crate::records::Impact {
                            slo: slo.name.clone(),
                            labels: labels.clone(),
                            budget_consumed_ratio: share,
                        });
                    }
                }
            }
            done.push((key, impact));
        }
        if done.is_empty() {
            return;
        }
        self.records.write(|b| b.impact.extend(done));
    }

    /// Replaces the SLO set. Unchanged SLOs keep their bucket history, so a
    /// reload does not re-read the period from Prometheus.
    pub fn replace_slos(&mut self, slos: Vec<Slo>) {
        self.maintenance_revision = None;
        let mut old: std::collections::BTreeMap<store::DefinitionKey, SloEvaluator> =
            std::mem::take(&mut self.evaluators)
                .into_iter()
                .map(|e| (e.key(), e))
                .collect();
        self.evaluators = slos
            .into_iter()
            .map(|s| {
                let key = store::definition_key(&s);
                match old.remove(&key) {
                    // The key leaves out what does not change the buckets
                    // (maintenance windows, where it was written): take
                    // the new definition, keep the history.
                    Some(mut e) => {
                        e.redefine(Arc::new(s));
                        e
                    }
                    None => SloEvaluator::new(Arc::new(s)),
                }
            })
            .collect();
    }

    /// The state file's bytes: every SLO's histories and the alert state.
    pub fn save(&self, now: i64) -> Vec<u8> {
        let slos: Vec<store::SloState<'_>> = self
            .evaluators
            .iter()
            .filter_map(|e| {
                let (start, last_end, histories) = e.saved()?;
                Some(store::SloState {
                    key: e.key(),
                    start,
                    last_end,
                    histories,
                })
            })
            .collect();
        store::encode(now, crate::plan::BUCKET_SECS, &slos, self.decider.tracked())
    }

    /// Resumes from a state file read at start-up: SLOs whose definition
    /// is unchanged take their histories, and the alert state comes back.
    /// Returns how many SLOs resumed and how many alerts were restored.
    pub fn restore(&mut self, stored: store::Stored, now: i64) -> (usize, usize) {
        let mut by_key: std::collections::BTreeMap<store::DefinitionKey, store::StoredSlo> =
            stored.slos.into_iter().map(|s| (s.key, s)).collect();
        let mut resumed = 0;
        for e in &mut self.evaluators {
            if let Some(s) = by_key.remove(&e.key()) {
                resumed += usize::from(e.resume(s.start, s.last_end, s.histories, now));
            }
        }
        // State older than every period is of another time: its alerts
        // would be incidents nobody is working on any more.
        let longest = self
            .evaluators
            .iter()
            .map(|e| e.slo().period.as_secs() as i64)
            .max()
            .unwrap_or(0);
        let alerts = if stored.saved_at >= now - longest {
            stored.alerts
        } else {
            vec![]
        };
        let restored = alerts.len();
        for (labels, tracked) in alerts {
            self.decider.restore(labels, tracked);
        }
        (resumed, restored)
    }

    pub fn set_client(&mut self, client: Arc<C>) {
        self.client = Arc::new(Batching::new(client));
        self.redetect = true;
    }
}

/// One line per alert that starts firing or resolves this cycle; re-sends
/// of a firing alert are not state changes. `was_firing` holds the label
/// sets that fired before the step that made `notifications`.
fn log_alert_changes(
    was_firing: &BTreeSet<LabelSet>,
    notifications: &[Notification],
    snapshot: &Snapshot,
) {
    for n in notifications {
        let state = if n.resolved {
            "resolved"
        } else if was_firing.contains(&n.labels) {
            continue;
        } else {
            "firing"
        };
        let label = |k: &str| n.labels.get(k).map(String::as_str).unwrap_or("");
        let (long, short) = (label("long_window"), label("short_window"));
        let figures = snapshot
            .instances
            .iter()
            .find(|i| {
                label("service") == i.slo.service
                    && label("slo") == i.slo.name
                    && i.group.iter().all(|(k, v)| n.labels.get(k) == Some(v))
            })
            .and_then(|i| i.figures.as_ref());
        let burn = |window: &str| {
            figures
                .and_then(|f| f.windows.iter().find(|w| w.window.to_string() == window))
                .map_or(f64::NAN, |w| w.burn_rate)
        };
        let threshold = figures
            .and_then(|f| {
                f.alerts
                    .iter()
                    .find(|a| a.long.to_string() == long && a.short.to_string() == short)
            })
            .map_or(f64::NAN, |a| a.burn_rate_threshold);
        tracing::info!(
            alert = label("alertname"),
            state,
            service = label("service"),
            slo = label("slo"),
            severity = label("severity"),
            long_window = long,
            short_window = short,
            long_burn_rate = burn(long),
            short_burn_rate = burn(short),
            threshold,
            "alert {state}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_definition_gets_another_key_a_moved_one_the_same() {
        let slo = crate::model::test_slo("svc", "avail", 99.0, 30);
        let mut moved = slo.clone();
        moved.origin.line += 10;
        assert_eq!(store::definition_key(&slo), store::definition_key(&moved));
        let other = crate::model::test_slo("svc", "avail", 99.5, 30);
        assert_ne!(store::definition_key(&slo), store::definition_key(&other));
        let mut relabelled = slo.clone();
        relabelled.labels.insert("team".into(), "a".into());
        assert_ne!(
            store::definition_key(&slo),
            store::definition_key(&relabelled)
        );
    }

    struct NoBackend;

    impl QueryApi for NoBackend {
        async fn instant(
            &self,
            _: &str,
            _: i64,
        ) -> Result<Vec<crate::prom::Sample>, crate::prom::QueryError> {
            Ok(vec![])
        }
        async fn range(
            &self,
            _: &str,
            _: i64,
            _: i64,
            _: u64,
        ) -> Result<Vec<crate::prom::RangeSeries>, crate::prom::QueryError> {
            Ok(vec![])
        }
    }

    #[test]
    fn only_an_unchanged_definition_resumes_its_stored_history() {
        let slo = crate::model::test_slo("svc", "avail", 99.0, 30);
        let now = 40 * 86_400;
        let last_end = crate::history::align_down(now - 600, 300);
        let stored = |key| {
            let mut h = crate::history::History::new(300);
            h.start_at(last_end - 3_000);
            h.extend_to(last_end, |_| crate::budget::Events::new(1.0, 10.0));
            store::Stored {
                saved_at: now - 300,
                slos: vec![store::StoredSlo {
                    key,
                    start: last_end - 3_000,
                    last_end,
                    histories: [(crate::state::LabelSet::new(), h)].into(),
                }],
                alerts: vec![],
            }
        };
        let engine = |s: Slo| {
            Engine::new(
                Arc::new(NoBackend),
                vec![s],
                Arc::new(State::new()),
                Arc::new(DaemonMetrics::new()),
            )
        };
        let mut same = engine(slo.clone());
        assert_eq!(
            same.restore(stored(store::definition_key(&slo)), now),
            (1, 0)
        );
        assert!(same.evaluators[0].saved().is_some());
        // The objective changed: the old buckets are not this SLO's.
        let changed = crate::model::test_slo("svc", "avail", 99.9, 30);
        let mut other = engine(changed);
        assert_eq!(
            other.restore(stored(store::definition_key(&slo)), now),
            (0, 0)
        );
        assert!(other.evaluators[0].saved().is_none());

        // Alerts come back unless the state is older than the period.
        let firing = || {
            let mut labels = crate::state::LabelSet::new();
            labels.insert("alertname".into(), "x".into());
            let t = crate::alert::decide::Tracked {
                phase: crate::alert::decide::Phase::Firing {
                    since: now - 900,
                    last_sent: now - 310,
                },
                annotations: Default::default(),
                generator_url: String::new(),
                peak_burn_rate: 20.0,
            };
            vec![(labels, t)]
        };
        let mut recent = engine(slo.clone());
        let s = store::Stored {
            alerts: firing(),
            ..stored(store::definition_key(&slo))
        };
        assert_eq!(recent.restore(s, now), (1, 1));
        assert_eq!(recent.decider.firing().count(), 1);
        let mut stale = engine(slo.clone());
        let s = store::Stored {
            saved_at: now - 31 * 86_400,
            alerts: firing(),
            ..stored(store::definition_key(&slo))
        };
        assert_eq!(stale.restore(s, now), (1, 0));
        assert_eq!(stale.decider.firing().count(), 0);
    }
}
