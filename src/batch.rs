//! Batches the engine's queries: the evaluators of one cycle run side by
//! side and ask for the same instants (now, the windows' far edges) and
//! the same bucket ranges, so queries asked at the same time for the same
//! instant (or range) go out as one merged request (`plan::merge_queries`)
//! instead of one request each; answers are split back by the tag label.
//!
//! Failure isolation is kept: when a merged request is rejected for what
//! it says (a bad query, an answer too large), every part is asked again on
//! its own, so the error stays that SLO's. A transient failure (timeout,
//! connection, 5xx) is every part's failure and is not multiplied.
//! Requests are bounded in parts and bytes for query-frontend limits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::join_all;
use tokio::sync::oneshot;

use crate::plan::{merge_queries, BATCH_LABEL};
use crate::prom::{BuildInfo, QueryApi, QueryError, RangeSeries, Sample};

/// At most this many parts per request.
pub const MAX_PARTS: usize = 100;
/// And at most this much query text (Thanos and Mimir frontends, and the
/// proxies before them, may cap a request's size).
pub const MAX_BYTES: usize = 32 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Instant(i64),
    Range(i64, i64, u64),
}

enum Answer {
    Instant(Vec<Sample>),
    Range(Vec<RangeSeries>),
}

type Reply = oneshot::Sender<Result<Answer, QueryError>>;

pub struct Batching<C> {
    inner: Arc<C>,
    pending: Mutex<BTreeMap<Key, Vec<(String, Reply)>>>,
}

impl<C: QueryApi> Batching<C> {
    pub fn new(inner: Arc<C>) -> Self {
        Batching {
            inner,
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn inner(&self) -> &Arc<C> {
        &self.inner
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Vec<(String, Reply)>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ask(&self, key: Key, query: &str) -> Result<Answer, QueryError> {
        let (tx, rx) = oneshot::channel();
        self.lock()
            .entry(key)
            .or_default()
            .push((query.to_owned(), tx));
        // Let the other evaluators of this cycle add theirs.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        let batch = self.lock().remove(&key);
        if let Some(batch) = batch {
            self.send(key, batch).await;
        }
        match rx.await {
            Ok(answer) => answer,
            // The caller that sent the batch was dropped mid-request.
            Err(_) => self.one(key, query).await,
        }
    }

    async fn one(&self, key: Key, query: &str) -> Result<Answer, QueryError> {
        match key {
            Key::Instant(at) => self.inner.instant(query, at).await.map(Answer::Instant),
            Key::Range(start, end, step) => self
                .inner
                .range(query, start, end, step)
                .await
                .map(Answer::Range),
        }
    }

    async fn send(&self, key: Key, batch: Vec<(String, Reply)>) {
        let mut chunks: Vec<Vec<(String, Reply)>> = vec![];
        let mut bytes = 0;
        for part in batch {
            let len = part.0.len() + 64;
            match chunks.last_mut() {
                Some(c) if c.len() < MAX_PARTS && bytes + len <= MAX_BYTES => {
                    bytes += len;
                    c.push(part);
                }
                _ => {
                    bytes = len;
                    chunks.push(vec![part]);
                }
            }
        }
        join_all(chunks.into_iter().map(|c| self.send_chunk(key, c))).await;
    }

    async fn send_chunk(&self, key: Key, mut chunk: Vec<(String, Reply)>) {
        if chunk.len() == 1 {
            if let Some((query, tx)) = chunk.pop() {
                let _ = tx.send(self.one(key, &query).await);
            }
            return;
        }
        let merged = merge_queries(chunk.iter().map(|(q, _)| q.as_str()));
        match self.one(key, &merged).await {
            Ok(answer) => match split(answer, key, chunk.len()) {
                Ok(parts) => {
                    for ((_, tx), part) in chunk.into_iter().zip(parts) {
                        let _ = tx.send(Ok(part));
                    }
                }
                // An answer that cannot be split is every part's error: a
                // row without its tag may be any part's data, and leaving
                // it out would give that part fewer events, not a failure.
                Err(e) => {
                    for (_, tx) in chunk {
                        let _ = tx.send(Err(e.clone()));
                    }
                }
            },
            Err(e) if e.is_transient() => {
                for (_, tx) in chunk {
                    let _ = tx.send(Err(e.clone()));
                }
            }
            Err(_) => {
                join_all(chunk.into_iter().map(|(q, tx)| async move {
                    let _ = tx.send(self.one(key, &q).await);
                }))
                .await;
            }
        }
    }
}

/// Splits a merged answer of `n` parts by part. A merged query tags every
/// series it can return, so a series without a valid tag (or an answer of
/// the other kind) means the backend did not answer what was asked: an
/// error, never a part left with fewer series.
fn split(answer: Answer, key: Key, n: usize) -> Result<Vec<Answer>, QueryError> {
    match (answer, key) {
        (Answer::Instant(samples), Key::Instant(_)) => Ok(route(samples, n, |s| &mut s.labels)?
            .into_iter()
            .map(Answer::Instant)
            .collect()),
        (Answer::Range(series), Key::Range(..)) => Ok(route(series, n, |s| &mut s.labels)?
            .into_iter()
            .map(Answer::Range)
            .collect()),
        _ => Err(QueryError::Decode {
            reason: "a merged query was answered with the wrong result type".into(),
        }),
    }
}

/// Each item to the part its tag names, the tag removed.
fn route<T>(
    items: Vec<T>,
    n: usize,
    labels: impl Fn(&mut T) -> &mut BTreeMap<String, String>,
) -> Result<Vec<Vec<T>>, QueryError> {
    let mut out: Vec<Vec<T>> = (0..n).map(|_| vec![]).collect();
    for mut item in items {
        let tag = labels(&mut item).remove(BATCH_LABEL);
        let bucket = tag
            .as_deref()
            .and_then(|v| v.parse::<usize>().ok())
            .and_then(|i| out.get_mut(i));
        match bucket {
            Some(b) => b.push(item),
            None => {
                return Err(QueryError::Decode {
                    reason: format!(
                        "a series of a merged query of {n} parts has {}, so its part cannot be told: {:?}",
                        match &tag {
                            Some(v) => format!("the {BATCH_LABEL} tag {v:?}"),
                            None => format!("no {BATCH_LABEL} tag"),
                        },
                        labels(&mut item)
                    ),
                })
            }
        }
    }
    Ok(out)
}

/// `one` answers a key with its own kind; `split` checks merged answers.
fn wrong_kind() -> QueryError {
    QueryError::Decode {
        reason: "a query was answered with the wrong result type".into(),
    }
}

impl<C: QueryApi> QueryApi for Batching<C> {
    async fn instant(&self, query: &str, at: i64) -> Result<Vec<Sample>, QueryError> {
        if !self.inner.batches() {
            return self.inner.instant(query, at).await;
        }
        match self.ask(Key::Instant(at), query).await? {
            Answer::Instant(s) => Ok(s),
            Answer::Range(_) => Err(wrong_kind()),
        }
    }

    async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: u64,
    ) -> Result<Vec<RangeSeries>, QueryError> {
        if !self.inner.batches() {
            return self.inner.range(query, start, end, step).await;
        }
        match self.ask(Key::Range(start, end, step), query).await? {
            Answer::Range(s) => Ok(s),
            Answer::Instant(_) => Err(wrong_kind()),
        }
    }

    async fn buildinfo(&self) -> Result<Option<BuildInfo>, QueryError> {
        self.inner.buildinfo().await
    }
}

#[cfg(test)]
mod tests {
    //! A scripted backend: these tests are about how queries are merged,
    //! bounded and split, which a real Prometheus answers the same way; the
    //! merged PromQL itself runs against a real one in the e2e tests.
    use super::*;

    type Script = dyn Fn(&str) -> Result<Vec<Sample>, QueryError> + Send + Sync;

    struct Scripted {
        asked: Mutex<Vec<String>>,
        answer: Box<Script>,
    }

    impl Scripted {
        fn new(
            answer: impl Fn(&str) -> Result<Vec<Sample>, QueryError> + Send + Sync + 'static,
        ) -> Arc<Self> {
            Arc::new(Scripted {
                asked: Mutex::new(vec![]),
                answer: Box::new(answer),
            })
        }
        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    impl QueryApi for Scripted {
        async fn instant(&self, query: &str, _at: i64) -> Result<Vec<Sample>, QueryError> {
            self.asked.lock().unwrap().push(query.to_string());
            (self.answer)(query)
        }
        async fn range(
            &self,
            query: &str,
            _: i64,
            _: i64,
            _: u64,
        ) -> Result<Vec<RangeSeries>, QueryError> {
            self.asked.lock().unwrap().push(query.to_string());
            Ok((self.answer)(query)?
                .into_iter()
                .map(|s| RangeSeries {
                    labels: s.labels,
                    points: vec![(0, s.value)],
                })
                .collect())
        }
    }

    fn sample(labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
        }
    }

    /// What Prometheus answers to a merged query of `up{i="k"}` parts: one
    /// series per part, tagged with its index, value k. A lone query is
    /// answered untagged.
    fn tagged(query: &str) -> Result<Vec<Sample>, QueryError> {
        let parts: Vec<&str> = query.split(" or ").collect();
        if parts.len() == 1 && !query.starts_with("label_replace(") {
            let k: f64 = query.trim().trim_start_matches("q").parse().unwrap_or(-1.0);
            return Ok(vec![sample(&[("q", query)], k)]);
        }
        Ok(parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let q = p
                    .trim_start_matches("label_replace(")
                    .split(',')
                    .next()
                    .unwrap_or("");
                let k: f64 = q.trim().trim_start_matches("q").parse().unwrap_or(-1.0);
                sample(&[("q", q), (BATCH_LABEL, &i.to_string())], k)
            })
            .collect())
    }

    async fn ask_all(
        b: &Batching<Scripted>,
        queries: &[String],
    ) -> Vec<Result<Vec<Sample>, QueryError>> {
        join_all(queries.iter().map(|q| b.instant(q, 1_000))).await
    }

    fn queries(n: usize, pad: usize) -> Vec<String> {
        (0..n).map(|k| format!("q{k}{}", " ".repeat(pad))).collect()
    }

    #[tokio::test]
    async fn concurrent_queries_go_out_merged_and_come_back_split() {
        let fake = Scripted::new(tagged);
        let b = Batching::new(fake.clone());
        let qs = queries(3, 0);
        let answers = ask_all(&b, &qs).await;
        assert_eq!(
            fake.asked(),
            vec![merge_queries(qs.iter().map(String::as_str))]
        );
        for (k, a) in answers.into_iter().enumerate() {
            // Each part gets its own series, the tag removed.
            assert_eq!(
                a.unwrap(),
                vec![sample(&[("q", &format!("q{k}"))], k as f64)]
            );
        }
        // The same for range queries.
        let ranges = join_all(qs.iter().map(|q| b.range(q, 0, 60, 60))).await;
        assert_eq!(fake.asked().len(), 2);
        for (k, r) in ranges.into_iter().enumerate() {
            let r = r.unwrap();
            assert_eq!(r.len(), 1);
            assert_eq!(r[0].points, vec![(0, k as f64)]);
            assert!(!r[0].labels.contains_key(BATCH_LABEL));
        }
    }

    #[tokio::test]
    async fn requests_hold_at_most_max_parts() {
        let fake = Scripted::new(tagged);
        let b = Batching::new(fake.clone());
        let qs = queries(2 * MAX_PARTS + 50, 0);
        let answers = ask_all(&b, &qs).await;
        let asked = fake.asked();
        assert_eq!(asked.len(), 3, "250 parts in requests of at most 100");
        for a in &asked {
            assert!(a.matches("label_replace(").count() <= MAX_PARTS);
        }
        for (k, a) in answers.into_iter().enumerate() {
            assert_eq!(a.unwrap()[0].value, k as f64);
        }
    }

    #[tokio::test]
    async fn requests_hold_at_most_max_bytes() {
        let fake = Scripted::new(tagged);
        let b = Batching::new(fake.clone());
        // 10 KiB parts: three fit in 32 KiB with their 64-byte wrapping.
        let qs = queries(7, 10 * 1024);
        let answers = ask_all(&b, &qs).await;
        let asked = fake.asked();
        assert_eq!(asked.len(), 3, "7 parts of 10 KiB in 3 + 3 + 1");
        for a in &asked {
            assert!(a.len() <= MAX_BYTES, "{} bytes", a.len());
        }
        for (k, a) in answers.into_iter().enumerate() {
            assert_eq!(a.unwrap()[0].value, k as f64);
        }
    }

    #[tokio::test]
    async fn a_rejected_part_fails_alone() {
        // The merged request and the bad part alone are rejected for what
        // they say; the good parts, asked again alone, succeed.
        let fake = Scripted::new(|q| {
            if q.contains("q1") {
                Err(QueryError::Api {
                    status: 400,
                    error_type: "bad_data".into(),
                    error: "parse error".into(),
                })
            } else {
                tagged(q)
            }
        });
        let b = Batching::new(fake.clone());
        let answers = ask_all(&b, &queries(3, 0)).await;
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(
            answers[1],
            Err(QueryError::Api { status: 400, .. })
        ));
        assert_eq!(fake.asked().len(), 4, "one merged, then each alone");
    }

    #[tokio::test]
    async fn a_transient_failure_is_every_parts_and_not_multiplied() {
        let fake = Scripted::new(|_| {
            Err(QueryError::Timeout {
                after: std::time::Duration::from_secs(1),
            })
        });
        let b = Batching::new(fake.clone());
        let answers = ask_all(&b, &queries(3, 0)).await;
        assert!(answers
            .iter()
            .all(|a| matches!(a, Err(QueryError::Timeout { .. }))));
        assert_eq!(fake.asked().len(), 1);
    }

    #[tokio::test]
    async fn a_series_without_its_tag_is_an_error_of_the_parts_not_a_zero() {
        for bad_tag in [None, Some("x"), Some("7")] {
            let fake = Scripted::new(move |q| {
                let mut v = tagged(q)?;
                match bad_tag {
                    None => {
                        v[1].labels.remove(BATCH_LABEL);
                    }
                    Some(t) => {
                        v[1].labels.insert(BATCH_LABEL.into(), t.into());
                    }
                }
                Ok(v)
            });
            let b = Batching::new(fake.clone());
            let answers = ask_all(&b, &queries(3, 0)).await;
            for a in &answers {
                match a {
                    Err(QueryError::Decode { reason }) => {
                        assert!(reason.contains("its part cannot be told"), "{reason}");
                        assert!(reason.contains("q1"), "{reason}");
                    }
                    other => panic!("{bad_tag:?}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn split_checks_the_answer_kind() {
        let e = split(Answer::Range(vec![]), Key::Instant(0), 2).err();
        assert!(matches!(e, Some(QueryError::Decode { .. })));
        let ok = split(Answer::Instant(vec![]), Key::Instant(0), 2).unwrap();
        assert_eq!(ok.len(), 2);
    }
}
