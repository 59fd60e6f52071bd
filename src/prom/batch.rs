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
use crate::prom::share::{self, Candidate, Masked, Shapes, Share, SHARE_LABEL};
use crate::prom::{BuildInfo, QueryApi, QueryError, RangeSeries, Sample};

/// At most this many parts per request.
pub const MAX_PARTS: usize = 100;
/// And at most this much query text (Thanos and Mimir frontends, and the
/// proxies before them, may cap a request's size).
pub const MAX_BYTES: usize = 32 * 1024;
/// And at most this many SLOs' values in one shared query: a regular
/// expression of thousands of alternatives is slow to compile (Prometheus
/// does so for every query).
pub const MAX_SHARED: usize = 1000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Instant(i64),
    Range(i64, i64, u64),
}

#[derive(Clone)]
enum Answer {
    Instant(Vec<Sample>),
    Range(Vec<RangeSeries>),
}

type Reply = oneshot::Sender<Result<Answer, QueryError>>;

pub struct Batching<C> {
    inner: Arc<C>,
    pending: Mutex<BTreeMap<Key, Vec<(String, Reply)>>>,
    shapes: Arc<Mutex<Shapes>>,
}

impl<C: QueryApi> Batching<C> {
    pub fn new(inner: Arc<C>) -> Self {
        Batching {
            inner,
            pending: Mutex::new(BTreeMap::new()),
            shapes: Arc::default(),
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
            // The request is every part's, not its sender's: run by the
            // caller, it would be dropped with it (an SLO whose sibling
            // query failed), and the other SLOs' parts would start again
            // with a fresh retry budget, two budgets in one cycle.
            tokio::spawn(send(self.inner.clone(), self.shapes.clone(), key, batch));
        }
        match rx.await {
            Ok(answer) => answer,
            // Only if the request's task panicked.
            Err(_) => one(&*self.inner, key, query).await,
        }
    }
}

async fn one<C: QueryApi>(inner: &C, key: Key, query: &str) -> Result<Answer, QueryError> {
    match key {
        Key::Instant(at) => inner.instant(query, at).await.map(Answer::Instant),
        Key::Range(start, end, step) => inner
            .range(query, start, end, step)
            .await
            .map(Answer::Range),
    }
}

/// What one part of a request answers: a query asked by one caller or
/// several, or the queries of several SLOs shared as one (`share`).
enum Unit {
    One {
        query: String,
        replies: Vec<Reply>,
    },
    Shared {
        query: String,
        label: String,
        /// By the label's value: the query each SLO asked, and who asked.
        members: BTreeMap<String, (String, Vec<Reply>)>,
    },
}

impl Unit {
    fn query(&self) -> &str {
        match self {
            Unit::One { query, .. } | Unit::Shared { query, .. } => query,
        }
    }

    fn fail(self, e: &QueryError) {
        match self {
            Unit::One { replies, .. } => reply(replies, Err(e.clone())),
            Unit::Shared { members, .. } => {
                for (_, replies) in members.into_values() {
                    reply(replies, Err(e.clone()));
                }
            }
        }
    }

    fn deliver(self, answer: Answer) {
        let empty = match answer {
            Answer::Instant(_) => Answer::Instant(vec![]),
            Answer::Range(_) => Answer::Range(vec![]),
        };
        match self {
            Unit::One { replies, .. } => reply(replies, Ok(answer)),
            Unit::Shared { label, members, .. } => match by_value(answer, &empty, &label, &members)
            {
                Ok(mut parts) => {
                    for (value, (_, replies)) in members {
                        let answer = parts.remove(&value).unwrap_or(Answer::Instant(vec![]));
                        reply(replies, Ok(answer));
                    }
                }
                Err(e) => {
                    for (_, replies) in members.into_values() {
                        reply(replies, Err(e.clone()));
                    }
                }
            },
        }
    }

    /// Asks this part on its own. A shared query rejected for what it
    /// says is asked again query by query, so the error stays the SLO's.
    async fn alone<C: QueryApi>(self, inner: &C, key: Key) {
        match one(inner, key, self.query()).await {
            Ok(answer) => self.deliver(answer),
            Err(e) if e.is_transient() => self.fail(&e),
            Err(e) => match self {
                Unit::One { replies, .. } => reply(replies, Err(e)),
                Unit::Shared { members, .. } => {
                    join_all(members.into_values().map(|(query, replies)| async move {
                        reply(replies, one(inner, key, &query).await);
                    }))
                    .await;
                }
            },
        }
    }
}

fn reply(mut replies: Vec<Reply>, answer: Result<Answer, QueryError>) {
    // Most queries have one caller: the answer moves to the last one.
    let last = replies.pop();
    for tx in replies {
        let _ = tx.send(answer.clone());
    }
    if let Some(tx) = last {
        let _ = tx.send(answer);
    }
}

/// Splits a shared answer by the label's value, the label removed (the
/// queries asked had no such label in their answers).
fn by_value(
    answer: Answer,
    empty: &Answer,
    label: &str,
    members: &BTreeMap<String, (String, Vec<Reply>)>,
) -> Result<BTreeMap<String, Answer>, QueryError> {
    fn split_by<T>(
        items: Vec<T>,
        label: &str,
        members: &BTreeMap<String, (String, Vec<Reply>)>,
        labels: impl Fn(&mut T) -> &mut BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, Vec<T>>, QueryError> {
        let mut out: BTreeMap<String, Vec<T>> = BTreeMap::new();
        for mut item in items {
            match labels(&mut item).remove(SHARE_LABEL) {
                Some(v) if members.contains_key(&v) => out.entry(v).or_default().push(item),
                v => {
                    return Err(QueryError::Decode {
                        reason: format!(
                            "a series of a query shared on {label:?} has {label}={v:?}, which no SLO asked for: {:?}",
                            labels(&mut item)
                        ),
                    })
                }
            }
        }
        Ok(out)
    }
    let mut out: BTreeMap<String, Answer> = match answer {
        Answer::Instant(samples) => split_by(samples, label, members, |s| &mut s.labels)?
            .into_iter()
            .map(|(v, s)| (v, Answer::Instant(s)))
            .collect(),
        Answer::Range(series) => split_by(series, label, members, |s| &mut s.labels)?
            .into_iter()
            .map(|(v, s)| (v, Answer::Range(s)))
            .collect(),
    };
    // A value without series: that SLO's query answers empty.
    for v in members.keys() {
        out.entry(v.clone()).or_insert_with(|| empty.clone());
    }
    Ok(out)
}

/// Groups the queries of one instant (or range): identical ones are asked
/// once, and queries that differ only in one label's value are shared
/// where at least two agree, in parts that fit a request.
fn units(batch: Vec<(String, Reply)>, shapes: &Mutex<Shapes>) -> Vec<Unit> {
    let mut distinct: BTreeMap<String, Vec<Reply>> = BTreeMap::new();
    for (query, tx) in batch {
        distinct.entry(query).or_default().push(tx);
    }
    let mut options = vec![];
    {
        let mut shapes = shapes.lock().unwrap_or_else(|p| p.into_inner());
        for (query, replies) in distinct {
            let shares: Vec<(Share, Arc<Candidate>, Arc<Masked>)> = match shapes.of(&query) {
                Some((masked, candidates)) => {
                    let masked = Arc::new(masked);
                    candidates
                        .iter()
                        .filter_map(|c| {
                            Some((share::share(&masked, c)?, c.clone(), masked.clone()))
                        })
                        .collect()
                }
                None => vec![],
            };
            options.push((query, replies, shares));
        }
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, shares) in &options {
        for (s, _, _) in shares {
            *counts.entry(s.key.as_str()).or_default() += 1;
        }
    }
    let best: Vec<Option<usize>> = options
        .iter()
        .map(|(_, _, shares)| {
            shares
                .iter()
                .enumerate()
                .map(|(i, (s, _, _))| (counts[s.key.as_str()], i))
                .filter(|&(n, _)| n >= 2)
                .max_by_key(|&(n, i)| (n, std::cmp::Reverse(i)))
                .map(|(_, i)| i)
        })
        .collect();
    type Group = (
        Arc<Candidate>,
        Arc<Masked>,
        BTreeMap<String, (String, Vec<Reply>)>,
    );
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut out = vec![];
    for ((query, replies, mut shares), best) in options.into_iter().zip(best) {
        match best {
            Some(i) => {
                let (s, c, masked) = shares.swap_remove(i);
                groups
                    .entry(s.key)
                    .or_insert_with(|| (c, masked, BTreeMap::new()))
                    .2
                    .insert(s.value, (query, replies));
            }
            None => out.push(Unit::One { query, replies }),
        }
    }
    for (_, (candidate, masked, members)) in groups {
        let fixed =
            candidate.template.len() + masked.literals.iter().map(|(r, _)| r.len()).sum::<usize>();
        let mut part: BTreeMap<String, (String, Vec<Reply>)> = BTreeMap::new();
        let mut bytes = fixed;
        let flush = |part: BTreeMap<String, (String, Vec<Reply>)>, out: &mut Vec<Unit>| {
            if part.len() == 1 {
                if let Some((_, (query, replies))) = part.into_iter().next() {
                    out.push(Unit::One { query, replies });
                }
            } else if !part.is_empty() {
                let values: Vec<&str> = part.keys().map(String::as_str).collect();
                out.push(Unit::Shared {
                    query: share::instantiate(&candidate, &masked, &values),
                    label: candidate.label.clone(),
                    members: part,
                });
            }
        };
        for (value, member) in members {
            // A value's share of the regular expression, escaped twice at most.
            let len = 2 * value.len() + 1;
            if !part.is_empty() && (bytes + len > MAX_BYTES - 64 || part.len() >= MAX_SHARED) {
                flush(std::mem::take(&mut part), &mut out);
                bytes = fixed;
            }
            bytes += len;
            part.insert(value, member);
        }
        flush(part, &mut out);
    }
    out
}

async fn send<C: QueryApi>(
    inner: Arc<C>,
    shapes: Arc<Mutex<Shapes>>,
    key: Key,
    batch: Vec<(String, Reply)>,
) {
    let mut chunks: Vec<Vec<Unit>> = vec![];
    let mut bytes = 0;
    for unit in units(batch, &shapes) {
        let len = unit.query().len() + 64;
        match chunks.last_mut() {
            Some(c) if c.len() < MAX_PARTS && bytes + len <= MAX_BYTES => {
                bytes += len;
                c.push(unit);
            }
            _ => {
                bytes = len;
                chunks.push(vec![unit]);
            }
        }
    }
    join_all(chunks.into_iter().map(|c| send_chunk(&*inner, key, c))).await;
}

async fn send_chunk<C: QueryApi>(inner: &C, key: Key, mut chunk: Vec<Unit>) {
    if chunk.len() == 1 {
        if let Some(unit) = chunk.pop() {
            unit.alone(inner, key).await;
        }
        return;
    }
    let merged = merge_queries(chunk.iter().map(Unit::query));
    match one(inner, key, &merged).await {
        Ok(answer) => match split(answer, key, chunk.len()) {
            Ok(parts) => {
                for (unit, part) in chunk.into_iter().zip(parts) {
                    unit.deliver(part);
                }
            }
            // An answer that cannot be split is every part's error: a
            // row without its tag may be any part's data, and leaving
            // it out would give that part fewer events, not a failure.
            Err(e) => chunk.into_iter().for_each(|u| u.fail(&e)),
        },
        Err(e) if e.is_transient() => chunk.into_iter().for_each(|u| u.fail(&e)),
        Err(_) => {
            join_all(chunk.into_iter().map(|u| u.alone(inner, key))).await;
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
    //! merged PromQL itself runs against a real one in the integration tests.
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

    /// Answers after a delay per instant; the instant 1 fails.
    struct Slow {
        asked: Mutex<Vec<String>>,
    }

    impl QueryApi for Slow {
        async fn instant(&self, query: &str, at: i64) -> Result<Vec<Sample>, QueryError> {
            self.asked.lock().unwrap().push(query.to_string());
            if at == 1 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                return Err(QueryError::Transport {
                    reason: "refused".into(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            tagged(query)
        }
        async fn range(
            &self,
            _: &str,
            _: i64,
            _: i64,
            _: u64,
        ) -> Result<Vec<RangeSeries>, QueryError> {
            Ok(vec![])
        }
    }

    #[tokio::test]
    async fn a_request_outlives_the_caller_that_sent_it() {
        // SLO A asks at instants 1 and 2, SLO B at 2: A's part at 2 sends
        // the merged request for both. A's query at 1 fails first and A
        // drops its part at 2; B's answer still comes from that request,
        // not from a second one (which would start a second retry budget
        // inside the same cycle).
        let fake = Arc::new(Slow {
            asked: Mutex::new(vec![]),
        });
        let b = Batching::new(fake.clone());
        let slo_a = async { tokio::try_join!(b.instant("q0", 1), b.instant("q1", 2)) };
        let slo_b = b.instant("q2", 2);
        let (a, bb) = tokio::join!(slo_a, slo_b);
        assert!(a.is_err());
        assert_eq!(bb.unwrap()[0].value, 2.0);
        assert_eq!(
            fake.asked.lock().unwrap().clone(),
            vec!["q0".to_string(), merge_queries(["q1", "q2"])]
        );
    }

    fn unit_queries(queries: &[&str]) -> Vec<(String, Option<String>, usize)> {
        let batch = queries
            .iter()
            .map(|q| (q.to_string(), oneshot::channel().0))
            .collect();
        units(batch, &Mutex::new(Shapes::default()))
            .into_iter()
            .map(|u| match u {
                Unit::One { query, replies } => (query, None, replies.len()),
                Unit::Shared {
                    query,
                    label,
                    members,
                } => (query, Some(label), members.len()),
            })
            .collect()
    }

    #[test]
    fn queries_that_differ_in_one_value_are_shared_and_equal_ones_asked_once() {
        let q = |s: &str, code: &str| {
            format!(r#"sum(rate(x{{service="{s}",code=~"{code}"}}[30s:15s]))"#)
        };
        let (a, b, c) = (q("a", "5.."), q("b", "5.."), q("c", "4.."));
        let got = unit_queries(&[&a, &b, &a, &c]);
        assert_eq!(
            got,
            vec![
                // Alone in its shape: asked as it is.
                (c.clone(), None, 1),
                (
                    r#"label_replace(label_replace(sum by (service) (rate(x{code=~"5..",service=~"a|b"}[30s:15s])), "errbudget_shared_value", "$1", "service", "(.*)"), "service", "", "", "")"#
                        .to_string(),
                    Some("service".to_string()),
                    2
                ),
            ]
        );
    }

    #[test]
    fn shared_queries_fit_a_request() {
        let qs: Vec<String> = (0..3 * MAX_SHARED / 2)
            .map(|k| format!(r#"sum(rate(x{{service="svc-{k:05}"}}[1m]))"#))
            .collect();
        let refs: Vec<&str> = qs.iter().map(String::as_str).collect();
        let got = unit_queries(&refs);
        assert!(got.len() >= 2, "{} units", got.len());
        assert_eq!(got.iter().map(|u| u.2).sum::<usize>(), qs.len());
        for (query, label, n) in &got {
            assert_eq!(label.as_deref(), Some("service"));
            assert!(
                *n <= MAX_SHARED && query.len() + 64 <= MAX_BYTES,
                "{n} values, {} bytes",
                query.len()
            );
        }
    }
}
