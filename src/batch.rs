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
            Ok(answer) => {
                let mut parts = split(answer, chunk.len());
                for (i, (_, tx)) in chunk.into_iter().enumerate() {
                    let _ = tx.send(Ok(std::mem::replace(
                        &mut parts[i],
                        Answer::Instant(vec![]),
                    )));
                }
            }
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

/// Splits a merged answer by part; series without a valid tag are dropped
/// (a merged query cannot make them).
fn split(answer: Answer, n: usize) -> Vec<Answer> {
    match answer {
        Answer::Instant(samples) => route(samples, n, |s| &mut s.labels)
            .into_iter()
            .map(Answer::Instant)
            .collect(),
        Answer::Range(series) => route(series, n, |s| &mut s.labels)
            .into_iter()
            .map(Answer::Range)
            .collect(),
    }
}

/// Each item to the part its tag names, the tag removed; an item with no
/// valid tag belongs to no part.
fn route<T>(
    items: Vec<T>,
    n: usize,
    labels: impl Fn(&mut T) -> &mut BTreeMap<String, String>,
) -> Vec<Vec<T>> {
    let mut out: Vec<Vec<T>> = (0..n).map(|_| vec![]).collect();
    for mut item in items {
        let part = labels(&mut item)
            .remove(BATCH_LABEL)
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(bucket) = part.and_then(|i| out.get_mut(i)) {
            bucket.push(item);
        }
    }
    out
}

impl<C: QueryApi> QueryApi for Batching<C> {
    async fn instant(&self, query: &str, at: i64) -> Result<Vec<Sample>, QueryError> {
        if !self.inner.batches() {
            return self.inner.instant(query, at).await;
        }
        match self.ask(Key::Instant(at), query).await? {
            Answer::Instant(s) => Ok(s),
            Answer::Range(_) => Ok(vec![]),
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
            Answer::Instant(_) => Ok(vec![]),
        }
    }

    async fn buildinfo(&self) -> Result<Option<BuildInfo>, QueryError> {
        self.inner.buildinfo().await
    }
}
