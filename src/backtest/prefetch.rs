//! Answers the replay's instant queries from one range query per
//! expression over the whole replay (Prometheus evaluates a range query as
//! the same instant queries at each step, so the figures are identical),
//! and the engine's bucket range queries from one fetch too.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::prom::{BuildInfo, QueryApi, QueryError, RangeSeries, Sample};
use crate::state::LabelSet;

/// Points per range request, below Prometheus' 11,000 per series.
const CHUNK_POINTS: i64 = 10_000;

type Series = Vec<RangeSeries>;
/// Range answers by (expression, step): the span covered and its series.
type RangeCache = BTreeMap<(String, u64), (i64, i64, Series)>;

pub struct Prefetch<C> {
    inner: C,
    from: i64,
    to: i64,
    step: u64,
    /// Instant answers on the replay grid, by expression.
    instants: Mutex<BTreeMap<String, BTreeMap<i64, Vec<Sample>>>>,
    ranges: Mutex<RangeCache>,
}

impl<C: QueryApi> Prefetch<C> {
    pub fn new(inner: C, from: i64, to: i64, step: u64) -> Self {
        Prefetch {
            inner,
            from,
            to,
            step: step.max(1),
            instants: Mutex::new(BTreeMap::new()),
            ranges: Mutex::new(BTreeMap::new()),
        }
    }

    async fn fetch_range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: u64,
    ) -> Result<Series, QueryError> {
        let mut by_labels: BTreeMap<LabelSet, Vec<(i64, f64)>> = BTreeMap::new();
        let chunk = CHUNK_POINTS * step as i64;
        let mut s = start;
        while s <= end {
            let e = (s + chunk - step as i64).min(end);
            for series in self.inner.range(query, s, e, step).await? {
                by_labels
                    .entry(series.labels)
                    .or_default()
                    .extend(series.points);
            }
            s = e + step as i64;
        }
        Ok(by_labels
            .into_iter()
            .map(|(labels, points)| RangeSeries { labels, points })
            .collect())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<C: QueryApi> QueryApi for Prefetch<C> {
    async fn buildinfo(&self) -> Result<Option<BuildInfo>, QueryError> {
        self.inner.buildinfo().await
    }

    fn batches(&self) -> bool {
        false
    }

    async fn instant(&self, query: &str, at: i64) -> Result<Vec<Sample>, QueryError> {
        let on_grid = at >= self.from && at <= self.to && (at - self.from) % self.step as i64 == 0;
        if !on_grid {
            return self.inner.instant(query, at).await;
        }
        if let Some(by_time) = lock(&self.instants).get(query) {
            return Ok(by_time.get(&at).cloned().unwrap_or_default());
        }
        let series = self
            .fetch_range(query, self.from, self.to, self.step)
            .await?;
        let mut by_time: BTreeMap<i64, Vec<Sample>> = BTreeMap::new();
        for s in series {
            for (t, value) in s.points {
                by_time.entry(t).or_default().push(Sample {
                    labels: s.labels.clone(),
                    value,
                });
            }
        }
        let answer = by_time.get(&at).cloned().unwrap_or_default();
        lock(&self.instants).insert(query.to_string(), by_time);
        Ok(answer)
    }

    async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: u64,
    ) -> Result<Vec<RangeSeries>, QueryError> {
        let key = (query.to_string(), step);
        let cached = lock(&self.ranges).get(&key).and_then(|(s, e, series)| {
            (*s <= start && end <= *e && (start - s) % step as i64 == 0)
                .then(|| slice(series, start, end))
        });
        if let Some(series) = cached {
            return Ok(series);
        }
        // Fetch through the end of the replay once; later bucket fetches
        // are slices of it.
        let fetch_end = end.max(start + (self.to - start).max(0) / step as i64 * step as i64);
        let series = self.fetch_range(query, start, fetch_end, step).await?;
        let answer = slice(&series, start, end);
        lock(&self.ranges).insert(key, (start, fetch_end, series));
        Ok(answer)
    }
}

fn slice(series: &Series, start: i64, end: i64) -> Series {
    series
        .iter()
        .map(|s| RangeSeries {
            labels: s.labels.clone(),
            points: s
                .points
                .iter()
                .copied()
                .filter(|(t, _)| *t >= start && *t <= end)
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Counting {
        ranges: Mutex<usize>,
        instants: Mutex<usize>,
    }

    impl QueryApi for Counting {
        async fn instant(&self, _: &str, _: i64) -> Result<Vec<Sample>, QueryError> {
            *lock(&self.instants) += 1;
            Ok(vec![])
        }
        async fn range(
            &self,
            _: &str,
            start: i64,
            end: i64,
            step: u64,
        ) -> Result<Vec<RangeSeries>, QueryError> {
            *lock(&self.ranges) += 1;
            let points = (0..)
                .map(|k| start + k * step as i64)
                .take_while(|t| *t <= end)
                .map(|t| (t, t as f64))
                .collect();
            Ok(vec![RangeSeries {
                labels: LabelSet::new(),
                points,
            }])
        }
    }

    #[tokio::test]
    async fn instants_on_the_grid_come_from_one_range_query() {
        let p = Prefetch::new(
            Counting {
                ranges: Mutex::new(0),
                instants: Mutex::new(0),
            },
            1_000,
            4_000,
            300,
        );
        for t in [1_000, 1_300, 3_700] {
            let v = p.instant("q", t).await.unwrap();
            assert_eq!(v[0].value, t as f64);
        }
        assert_eq!(*lock(&p.inner.ranges), 1);
        // Off the grid: asked directly.
        p.instant("q", 1_001).await.unwrap();
        assert_eq!(*lock(&p.inner.instants), 1);
        // Bucket ranges: one fetch, then slices.
        let r = p.range("b", 0, 600, 300).await.unwrap();
        assert_eq!(r[0].points.len(), 3);
        let r = p.range("b", 900, 1_200, 300).await.unwrap();
        assert_eq!(r[0].points, vec![(900, 900.0), (1_200, 1_200.0)]);
        assert_eq!(*lock(&p.inner.ranges), 2);
    }
}
