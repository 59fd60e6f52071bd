//! Drives evaluation: one cycle over every SLO with per-SLO failure
//! isolation, publishing a snapshot; swaps the SLO set on reload while
//! keeping the history of SLOs whose definition did not change.

use std::sync::Arc;
use std::time::Instant;

use futures::future::join_all;

use crate::evaluate::SloEvaluator;
use crate::metrics::DaemonMetrics;
use crate::model::Slo;
use crate::prom::QueryApi;
use crate::state::State;

pub struct Engine<C> {
    client: Arc<C>,
    evaluators: Vec<SloEvaluator>,
    state: Arc<State>,
    metrics: Arc<DaemonMetrics>,
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
        Engine {
            client,
            evaluators,
            state,
            metrics,
        }
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Evaluates every SLO at `now` and publishes the snapshot. Returns the
    /// number of SLOs that failed.
    pub async fn cycle(&mut self, now: i64) -> usize {
        let started = Instant::now();
        let client = self.client.clone();
        let results = join_all(
            self.evaluators
                .iter_mut()
                .map(|e| async { (e.slo().clone(), e.evaluate(&*client, now).await) }),
        )
        .await;
        let failed = results.iter().filter(|(_, r)| r.is_err()).count();
        for (slo, r) in &results {
            if let Err(e) = r {
                tracing::warn!(service = %slo.service, slo = %slo.name, error = %e, "SLO evaluation failed");
            }
        }
        let next = self.state.snapshot().next(now, results);
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

    /// Replaces the SLO set. Unchanged SLOs keep their bucket history, so a
    /// reload does not re-read the period from Prometheus.
    pub fn replace_slos(&mut self, slos: Vec<Slo>) {
        let mut old: Vec<SloEvaluator> = std::mem::take(&mut self.evaluators);
        self.evaluators = slos
            .into_iter()
            .map(
                |s| match old.iter().position(|e| same_definition(e.slo(), &s)) {
                    Some(i) => old.swap_remove(i),
                    None => SloEvaluator::new(Arc::new(s)),
                },
            )
            .collect();
    }

    pub fn set_client(&mut self, client: Arc<C>) {
        self.client = client;
    }
}

/// Equal but for where it was written: moving an SLO within its file must
/// not throw away its history.
fn same_definition(a: &Slo, b: &Slo) -> bool {
    let mut a = a.clone();
    a.origin = b.origin.clone();
    a == *b
}
