//! The history of one SLO over its compliance period, for the status page:
//! bad and total events per step, from range queries of the SLI built by
//! `plan` and run through the same `prom` client the engine uses. Bounded
//! in points and time so a page view can never weigh like an evaluation.
//! Turns counts into a burn-down and burn rates with `budget`; writes no
//! PromQL and renders nothing. A trend is fetched once per SLO and
//! evaluation ([`Trends`] keeps it until the next one), so fifty viewers
//! of a page cost Prometheus what one does.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;

use crate::budget::{Events, Trend};
use crate::eval::sli::{self, SliError};
use crate::model::Slo;
use crate::plan::Queries;
use crate::plan::Semantics;
use crate::prom::backend::{self, Detected};
use crate::prom::{QueryApi, QueryError};
use crate::state::LabelSet;

/// At most this many steps over the period: enough for a chart a screen
/// wide, and one range query of this size reads each sample once.
pub const MAX_POINTS: u64 = 300;
/// A page waits at most this long for its history, then renders without.
pub const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TrendError {
    #[error("range query failed")]
    Query(#[from] QueryError),
    #[error("no answer from Prometheus within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Sli(#[from] SliError),
    #[error(transparent)]
    Backend(#[from] backend::DetectError),
    /// The failure of a fetch shared by every viewer of that evaluation.
    #[error(transparent)]
    Shared(Arc<TrendError>),
}

/// The step for a period: a whole number of minutes giving at most
/// [`MAX_POINTS`] points.
pub fn step_for(period_secs: u64) -> u64 {
    let raw = period_secs.div_ceil(MAX_POINTS).max(60);
    raw.div_ceil(60) * 60
}

/// Maintenance windows start and end on these boundaries: an SLO with
/// any is fetched in pieces of this size, so a chart step partly inside a
/// window loses exactly the window's events, as the figures do. (A weekly
/// hour of maintenance never covers a whole 2h24m step of a month.)
const PIECE: u64 = crate::exclusion::ALIGN_SECS as u64;
/// At most this many points per series in one range query: Prometheus
/// refuses more than 11,000.
const MAX_QUERY_POINTS: i64 = 10_000;

/// Fetches the period ending at `now` from a backend with `semantics`.
/// Groups of a grouped SLO are summed: the page shows the SLO as a whole.
/// Values go through the engine's own conversion (`sli`), so the page
/// rejects what the engine rejects. The SLO's exclusions (the spec's, and
/// whatever the caller adds) leave their events out.
pub async fn fetch<C: QueryApi>(
    client: &C,
    slo: &Slo,
    now: i64,
    semantics: Semantics,
) -> Result<Trend, TrendError> {
    let masked = !slo.exclusions.is_empty();
    let step = step_for(slo.period.as_secs());
    let (step, piece) = if masked {
        let step = step.div_ceil(PIECE) * PIECE;
        (step, PIECE)
    } else {
        (step, step)
    };
    // A calendar period is drawn from its start, where the budget reset,
    // in whole steps and then one shorter step up to now: a chart that
    // stopped at the last whole step would hide up to a step (hours, for
    // a month) of the budget's most recent fall.
    let start = match &slo.calendar {
        None => {
            let end = if masked {
                now - now.rem_euclid(PIECE as i64)
            } else {
                now
            };
            end - (slo.period.as_secs() / step).max(1) as i64 * step as i64
        }
        Some(_) => slo.period_at(now).0,
    };
    let whole = ((now - start) / piece as i64).max(0);
    let grid = Grid {
        start,
        points: whole,
        step: piece,
    };
    let mut pieces = steps(client, slo, grid, semantics).await?;
    let last = start + whole * piece as i64;
    // Under a minute the backend may hold no two samples to take a rate
    // of: the chart then ends that much short of now.
    let rest = (now - last).max(0) as u64;
    let end = if rest >= 60 {
        let rest = Grid {
            start: last,
            points: 1,
            step: rest,
        };
        pieces.extend(steps(client, slo, rest, semantics).await?);
        now
    } else {
        last
    };
    let mut fine = Trend {
        start,
        end,
        step: piece,
        points: pieces.into_iter().collect(),
    };
    if masked {
        let mask = crate::exclusion::Mask::of(&slo.exclusions, start, end);
        fine.leave_out(|from, to| mask.covers(from, to));
    }
    Ok(fine.regrouped(step))
}

/// `points` steps of `step` seconds after `start`.
#[derive(Clone, Copy)]
struct Grid {
    start: i64,
    points: i64,
    step: u64,
}

/// The events of each step of `grid`, keyed by the step's end, in range
/// queries of at most [`MAX_QUERY_POINTS`].
async fn steps<C: QueryApi>(
    client: &C,
    slo: &Slo,
    grid: Grid,
    semantics: Semantics,
) -> Result<BTreeMap<i64, Events>, TrendError> {
    let mut out = BTreeMap::new();
    let mut done = 0;
    while done < grid.points {
        let chunk = Grid {
            start: grid.start + done * grid.step as i64,
            points: (grid.points - done).min(MAX_QUERY_POINTS),
            step: grid.step,
        };
        out.extend(one_range(client, slo, chunk, semantics).await?);
        done += chunk.points;
    }
    Ok(out)
}

async fn one_range<C: QueryApi>(
    client: &C,
    slo: &Slo,
    Grid {
        start,
        points,
        step,
    }: Grid,
    semantics: Semantics,
) -> Result<BTreeMap<i64, Events>, TrendError> {
    let first = start + step as i64;
    let end = start + points * step as i64;
    let mut by_time: BTreeMap<i64, Events> = (0..points)
        .map(|k| (first + k * step as i64, Events::default()))
        .collect();
    let queries = Queries::for_slo(slo).at_range(step, semantics);
    let seconds = step as f64;
    match queries {
        Queries::Events { bad, total } => {
            let (bad_s, total_s) = tokio::try_join!(
                client.range(&bad, first, end, step),
                client.range(&total, first, end, step)
            )?;
            type Pairs = BTreeMap<(i64, LabelSet), (Option<f64>, Option<f64>)>;
            let mut pairs = Pairs::new();
            for s in total_s {
                for (t, v) in s.points {
                    pairs.entry((t, s.labels.clone())).or_default().1 = Some(v);
                }
            }
            for s in bad_s {
                for (t, v) in s.points {
                    pairs.entry((t, s.labels.clone())).or_default().0 = Some(v);
                }
            }
            for ((t, _), (b, v)) in pairs {
                let e = sli::from_rates(b, v, seconds, &bad, &total)?;
                *by_time.entry(t).or_default() = *by_time.entry(t).or_default() + e;
            }
        }
        Queries::Ratio { ratio } => {
            let series = client.range(&ratio, first, end, step).await?;
            // A ratio SLI weighs time: each group counts its seconds.
            for s in series {
                for (t, v) in s.points {
                    if let Some(e) = sli::from_ratio(v, seconds, &ratio)? {
                        *by_time.entry(t).or_default() = *by_time.entry(t).or_default() + e;
                    }
                }
            }
        }
    }
    Ok(by_time)
}

/// What the web handlers hold: fetches a trend without knowing the client
/// type (`QueryApi` is not dyn-compatible).
pub trait TrendSource: Send + Sync {
    fn trend(&self, slo: Arc<Slo>, now: i64) -> BoxFuture<'static, Result<Trend, TrendError>>;
}

type Cell = Arc<tokio::sync::OnceCell<Result<Trend, Arc<TrendError>>>>;

/// The trends of one evaluation instant, by service and SLO name.
#[derive(Default)]
struct Cached {
    at: i64,
    slos: std::collections::HashMap<(String, String), Cell>,
}

/// The daemon's trend source: the engine's client, swapped on reload, and
/// the trends of the latest evaluation. Concurrent page loads of one SLO
/// wait for the same fetch; a newer evaluation replaces them all.
pub struct Trends<C> {
    client: RwLock<Arc<C>>,
    backend: Detected,
    cache: std::sync::Mutex<Cached>,
}

impl<C: QueryApi> Trends<C> {
    /// `backend` is the engine's detection; until it has one, a page view
    /// probes the backend itself.
    pub fn new(client: Arc<C>, backend: Detected) -> Self {
        Trends {
            client: RwLock::new(client),
            backend,
            cache: std::sync::Mutex::new(Cached::default()),
        }
    }

    /// The shared slot of `slo` at `now`; `None` for an instant older than
    /// the cached one (a page rendered from a snapshot just replaced).
    fn cell(&self, slo: &Slo, now: i64) -> Option<Cell> {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if now > c.at {
            *c = Cached {
                at: now,
                slos: Default::default(),
            };
        }
        (now == c.at).then(|| {
            c.slos
                .entry((slo.service.clone(), slo.name.clone()))
                .or_default()
                .clone()
        })
    }

    /// Follows a reload that changed the Prometheus settings.
    pub fn set_client(&self, client: Arc<C>) {
        match self.client.write() {
            Ok(mut g) => *g = client,
            Err(poisoned) => *poisoned.into_inner() = client,
        }
        // What the old client fetched may come from another backend.
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Cached::default();
    }

    fn client(&self) -> Arc<C> {
        match self.client.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl<C: QueryApi> TrendSource for Trends<C> {
    fn trend(&self, slo: Arc<Slo>, now: i64) -> BoxFuture<'static, Result<Trend, TrendError>> {
        let client = self.client();
        let known = self.backend.get().map(|b| b.semantics);
        let cell = self.cell(&slo, now);
        Box::pin(async move {
            let work = async {
                let semantics = match known {
                    Some(s) => s,
                    None => backend::detect(&*client, now).await?.semantics,
                };
                fetch(&*client, &slo, now, semantics).await
            };
            let bounded = async {
                match tokio::time::timeout(TIMEOUT, work).await {
                    Ok(result) => result,
                    Err(_) => Err(TrendError::Timeout(TIMEOUT)),
                }
            };
            let Some(cell) = cell else {
                return bounded.await;
            };
            // Failures are kept too: a Prometheus that timed out for one
            // viewer is not asked again by the next 49 in the same cycle.
            let shared = cell
                .get_or_init(|| async { bounded.await.map_err(Arc::new) })
                .await;
            shared.clone().map_err(TrendError::Shared)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_slo;
    use crate::prom::{RangeSeries, Sample};
    use std::sync::Mutex;

    /// Answers range queries with a fixed rate per query text and records
    /// what it was asked.
    struct Scripted {
        bad: f64,
        total: f64,
        asked: Mutex<Vec<(String, i64, i64, u64)>>,
    }

    impl QueryApi for Scripted {
        async fn instant(&self, _: &str, _: i64) -> Result<Vec<Sample>, QueryError> {
            Ok(vec![])
        }

        async fn range(
            &self,
            query: &str,
            start: i64,
            end: i64,
            step: u64,
        ) -> Result<Vec<RangeSeries>, QueryError> {
            if let Ok(mut a) = self.asked.lock() {
                a.push((query.to_owned(), start, end, step));
            }
            let v = if query.starts_with("rate(bad") {
                self.bad
            } else {
                self.total
            };
            let mut points = vec![];
            let mut t = start;
            while t <= end {
                points.push((t, v));
                t += step as i64;
            }
            Ok(vec![RangeSeries {
                labels: Default::default(),
                points,
            }])
        }
    }

    #[test]
    fn steps_are_whole_minutes_within_the_point_bound() {
        assert_eq!(step_for(30 * 86_400), 8_640);
        assert_eq!(step_for(28 * 86_400), 8_100);
        assert_eq!(step_for(3_600), 60);
        for p in [3_600, 86_400, 7 * 86_400, 90 * 86_400, 1_000_003] {
            let s = step_for(p);
            assert_eq!(s % 60, 0);
            assert!(p / s <= MAX_POINTS, "{p}: {s}");
        }
    }

    #[tokio::test]
    async fn queries_the_sli_once_per_expression_with_the_step_as_window() {
        let slo = test_slo("s", "a", 99.0, 30);
        let prom = Scripted {
            bad: 0.1,
            total: 10.0,
            asked: Mutex::new(vec![]),
        };
        let now = 10_000_000;
        let trend = fetch(&prom, &slo, now, Semantics::Closed).await.unwrap();
        let asked = prom.asked.lock().unwrap().clone();
        assert_eq!(asked.len(), 2);
        for (q, start, end, step) in &asked {
            assert!(q.ends_with("[2h24m])"), "{q}");
            assert_eq!((*end, *step), (now, 8_640));
            assert_eq!(*start, now - 299 * 8_640);
        }
        assert_eq!(trend.points.len(), 300);
        // 1% errors against a 1% budget: burn rate 1, the budget spent
        // exactly evenly, ending at 0.
        for (_, r) in trend.burn_rates(slo.objective.budget_ratio()) {
            assert!((r - 1.0).abs() < 1e-9, "{r}");
        }
        let down = trend.burn_down(slo.objective.budget_ratio());
        assert_eq!(down.len(), 301);
        assert_eq!(down[0], (now - 300 * 8_640, 1.0));
        assert!((down[150].1 - 0.5).abs() < 1e-9);
        assert!(down[300].1.abs() < 1e-9);
    }

    #[tokio::test]
    async fn a_calendar_period_is_drawn_from_its_start_up_to_now() {
        let mut slo = test_slo("s", "a", 99.0, 30);
        slo.calendar = Some(crate::calendar::Calendar {
            unit: crate::calendar::Unit::Month,
            tz: chrono_tz::UTC,
        });
        let prom = Scripted {
            bad: 0.1,
            total: 10.0,
            asked: Mutex::new(vec![]),
        };
        // 2026-12-03T10:39:15Z: 2 days 10h39m15s into December, 24 whole
        // steps of 2h24m and 1h03m15s more.
        let start = 1_796_083_200;
        let now = start + 2 * 86_400 + 10 * 3_600 + 39 * 60 + 15;
        let trend = fetch(&prom, &slo, now, Semantics::Closed).await.unwrap();
        assert_eq!((trend.start, trend.end), (start, now));
        let asked = prom.asked.lock().unwrap().clone();
        let grid = start + 24 * 8_640;
        let tail = (now - grid) as u64;
        assert_eq!(asked.len(), 4, "{asked:?}");
        assert!(asked[..2]
            .iter()
            .all(|(q, s, e, st)| q.ends_with("[2h24m])")
                && (*s, *e, *st) == (start + 8_640, grid, 8_640)));
        assert!(asked[2..]
            .iter()
            .all(|(q, s, e, st)| q.ends_with("[1h3m15s])") && (*s, *e, *st) == (now, now, tail)), "{asked:?}");
        assert_eq!(trend.points.len(), 25);
        assert_eq!(trend.points[24].0, now);
        // The short step holds its own seconds of traffic.
        assert!((trend.points[24].1.total - 10.0 * tail as f64).abs() < 1e-6);
        assert!((trend.points[23].1.total - 10.0 * 8_640.0).abs() < 1e-6);
    }

    #[tokio::test]
    async fn maintenance_leaves_out_exactly_its_pieces_of_a_step() {
        let mut slo = test_slo("s", "a", 99.0, 30);
        // An hour, a whole number of 5-minute pieces, inside one step.
        let now = 1_796_083_200 + 17; // not on a piece
        let end = now - 17;
        slo.exclusions = vec![crate::exclusion::Exclusion::once(
            end - 8_700 - 2 * 3_600,
            end - 8_700 - 3_600,
            "db".into(),
        )
        .unwrap()];
        let prom = Scripted {
            bad: 0.1,
            total: 10.0,
            asked: Mutex::new(vec![]),
        };
        let trend = fetch(&prom, &slo, now, Semantics::Closed).await.unwrap();
        let asked = prom.asked.lock().unwrap().clone();
        // 297 steps of 2h25m in 30 days: 8,613 pieces of 5 minutes, one
        // range query per expression.
        let pieces = 297 * 29;
        assert_eq!(asked.len(), 2, "{asked:?}");
        assert!(asked
            .iter()
            .all(|(q, _, _, st)| q.ends_with("[5m])") && *st == 300));
        assert_eq!(asked[0].1, end - pieces * 300 + 300);
        assert_eq!(
            (trend.start, trend.end, trend.step),
            (end - pieces * 300, end, 8_700)
        );
        assert_eq!(trend.points.len(), 297);
        let totals: Vec<f64> = trend.points.iter().map(|(_, e)| e.total).collect();
        // The second step from the end holds the hour.
        for (k, t) in totals.iter().enumerate() {
            let want = if k == 295 {
                10.0 * (8_700.0 - 3_600.0)
            } else {
                10.0 * 8_700.0
            };
            assert!((t - want).abs() < 1e-6, "step {k}: {t} vs {want}");
        }

        // A quarter's 26,136 pieces take three queries per expression of
        // at most 10,000 points, one after the other.
        let mut quarter = slo.clone();
        quarter.period = std::time::Duration::from_secs(91 * 86_400);
        prom.asked.lock().unwrap().clear();
        let trend = fetch(&prom, &quarter, now, Semantics::Closed)
            .await
            .unwrap();
        let mut asked = prom.asked.lock().unwrap().clone();
        asked.retain(|(q, ..)| q.starts_with("rate(total"));
        let spans: Vec<(i64, i64)> = asked.iter().map(|(_, s, e, _)| (*s, *e)).collect();
        assert_eq!(spans.len(), 3, "{spans:?}");
        assert_eq!(spans[0].0, trend.start + 300);
        assert_eq!(spans[0].1, trend.start + 10_000 * 300);
        assert_eq!(spans[1].0, spans[0].1 + 300);
        assert_eq!(spans[2].1, end);
        assert_eq!((spans[2].1 - spans[2].0) / 300 + 1, 26_136 - 20_000);
    }

    #[tokio::test]
    async fn values_the_engine_rejects_are_errors_here_too() {
        let slo = test_slo("s", "a", 99.0, 30);
        for (bad, total, want) in [
            (2.0, 1.0, "more bad events than"),
            (f64::NAN, 1.0, "not a finite rate"),
            (0.0, -3.0, "negative rate"),
        ] {
            let prom = Scripted {
                bad,
                total,
                asked: Mutex::new(vec![]),
            };
            let err = fetch(&prom, &slo, 10_000_000, Semantics::Closed)
                .await
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{bad} {total}: {err}");
        }
    }

    #[tokio::test]
    async fn one_fetch_per_slo_and_evaluation_for_any_number_of_viewers() {
        let prom = Arc::new(Scripted {
            bad: 0.1,
            total: 10.0,
            asked: Mutex::new(vec![]),
        });
        let detected = Detected::default();
        detected.set(Some(crate::prom::backend::BackendInfo {
            semantics: Semantics::Closed,
            product: "prometheus".into(),
            version: String::new(),
        }));
        let trends = Trends::new(prom.clone(), detected);
        let slo = Arc::new(test_slo("s", "a", 99.0, 30));
        let other = Arc::new(test_slo("s", "b", 99.0, 30));
        let asked = || prom.asked.lock().unwrap().len();
        let views =
            futures::future::join_all((0..50).map(|_| trends.trend(slo.clone(), 1_000_000))).await;
        assert!(views.iter().all(|v| v.is_ok()));
        assert_eq!(asked(), 2, "bad and total, once for 50 viewers");
        trends.trend(other.clone(), 1_000_000).await.unwrap();
        assert_eq!(asked(), 4, "another SLO has its own");
        // The next evaluation fetches anew; a page of the older one still
        // renders, uncached.
        trends.trend(slo.clone(), 1_000_030).await.unwrap();
        assert_eq!(asked(), 6);
        trends.trend(slo.clone(), 1_000_000).await.unwrap();
        assert_eq!(asked(), 8);
        trends.trend(slo.clone(), 1_000_030).await.unwrap();
        assert_eq!(asked(), 8);
    }

    #[test]
    fn no_traffic_spends_nothing() {
        let t = Trend {
            start: 0,
            end: 120,
            step: 60,
            points: vec![(60, Events::default()), (120, Events::default())],
        };
        assert_eq!(t.burn_down(0.001), vec![(0, 1.0), (60, 1.0), (120, 1.0)]);
        assert_eq!(t.burn_rates(0.001), vec![(60, 0.0), (120, 0.0)]);
    }
}
