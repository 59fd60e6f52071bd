//! `errbudget backtest`: replays the alert policy over history with the
//! very engine `run` uses, so a team sees what a policy would have paged
//! before adopting it.
//!
//! Replaying step by step would send one instant query per window per step.
//! [`Prefetch`] answers them instead from one range query per expression over
//! the whole replay (Prometheus evaluates a range query as the same instant
//! queries at each step, so the figures are identical), and serves the
//! engine's bucket range queries from one fetch too.

mod prefetch;
pub mod report;

pub use prefetch::Prefetch;

use crate::alert::decide::{Episode, Phase};
use crate::eval::engine::Engine;
use crate::prom::QueryApi;
use crate::state::{LabelSet, Snapshot};

/// One alert episode of the replay, for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Replayed {
    pub episode: Episode,
    /// Still firing at the end of the replay.
    pub ongoing: bool,
}

pub fn label<'a>(labels: &'a LabelSet, name: &str) -> &'a str {
    labels.get(name).map_or("", |s| s.as_str())
}

/// The replay's outcome: every episode, and the last snapshot.
pub struct Report {
    pub episodes: Vec<Replayed>,
    pub last: std::sync::Arc<Snapshot>,
    pub failed_cycles: usize,
}

/// Runs the engine at every step from `from` to `to`.
pub async fn replay<C: QueryApi>(engine: &mut Engine<C>, from: i64, to: i64, step: u64) -> Report {
    replay_with(engine, from, to, step, |_| {}).await
}

/// [`replay`], showing each step's snapshot to `on_step`.
pub async fn replay_with<C: QueryApi>(
    engine: &mut Engine<C>,
    from: i64,
    to: i64,
    step: u64,
    mut on_step: impl FnMut(&Snapshot),
) -> Report {
    let mut episodes = Vec::new();
    let mut failed_cycles = 0;
    let mut t = from;
    while t <= to {
        if engine.cycle(t).await > 0 {
            failed_cycles += 1;
        }
        on_step(&engine.state().snapshot());
        episodes.extend(
            engine
                .decider_mut()
                .take_ended()
                .into_iter()
                .map(|episode| Replayed {
                    episode,
                    ongoing: false,
                }),
        );
        t += step as i64;
    }
    let ongoing: Vec<Replayed> = engine
        .decider_mut()
        .firing()
        .map(|(labels, tracked)| Replayed {
            episode: Episode {
                labels: labels.clone(),
                started: match tracked.phase {
                    Phase::Firing { since, .. } => since,
                    Phase::Pending { since } => since,
                },
                ended: None,
                peak_burn_rate: tracked.peak_burn_rate,
            },
            ongoing: true,
        })
        .collect();
    episodes.extend(ongoing);
    episodes.sort_by(|a, b| {
        (
            label(&a.episode.labels, "service"),
            label(&a.episode.labels, "slo"),
            a.episode.started,
        )
            .cmp(&(
                label(&b.episode.labels, "service"),
                label(&b.episode.labels, "slo"),
                b.episode.started,
            ))
    });
    Report {
        episodes,
        last: engine.state().snapshot(),
        failed_cycles,
    }
}
