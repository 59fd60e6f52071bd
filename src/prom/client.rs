//! The HTTP side of the Prometheus client: sends form-encoded POSTs, reads
//! bounded bodies, retries transient failures within a deadline and records
//! the query metrics. Decoding lives in `decode`; the reqwest client itself
//! (auth, headers, TLS) is built by the shared `httpclient`.
//! Never logs or returns header values, tokens, passwords or URL userinfo.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Response, StatusCode, Url};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::decode::{decode_error_body, decode_instant, decode_range, Decoded};
use super::error::QueryError;
use super::{BuildInfo, QueryApi, RangeSeries, Sample};
use crate::config::HttpClientSettings;
use crate::httpclient::{
    self, describe, excerpt, read_error_body, redacted, retry_after, ClientError, HttpClient,
};
use crate::metrics::DaemonMetrics;

/// Memory all answers in flight may use together. Each of the
/// `max_concurrent` queries may buffer its share, so a runaway answer on
/// every connection at once still stays within it (a per-answer cap alone
/// let 8 concurrent 64 MiB answers take half a gigabyte).
pub const RESPONSE_MEMORY_BUDGET: u64 = 64 * 1024 * 1024;
/// No query's share is smaller than this.
const MIN_BODY_BYTES: u64 = 1024 * 1024;

/// The per-answer cap for `max_concurrent` queries sharing the budget.
pub fn body_limit(max_concurrent: usize) -> u64 {
    (RESPONSE_MEMORY_BUDGET / max_concurrent.max(1) as u64).max(MIN_BODY_BYTES)
}

/// Default time one query may take, retries and backoff included. The
/// engine sets it to the evaluation interval with
/// [`Client::with_retry_budget`] so a query never outlasts its cycle.
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(30);

/// At most this many attempts per query (the first plus two retries).
const MAX_ATTEMPTS: usize = 3;
/// First backoff; doubled per retry, plus up to 100% jitter.
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The Prometheus query client. Cloning is cheap and clones share the
/// connection pool and the concurrency bound.
#[derive(Clone)]
pub struct Client {
    http: HttpClient,
    query_url: Url,
    range_url: Url,
    buildinfo_url: Url,
    features_url: Url,
    timeout: Duration,
    retry_budget: Duration,
    max_body_bytes: u64,
    permits: Arc<Semaphore>,
    metrics: Arc<DaemonMetrics>,
}

// Hand-written so a `{:?}` of the client can never print a credential.
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("query_url", &redacted(&self.query_url))
            .field("timeout", &self.timeout)
            .field("retry_budget", &self.retry_budget)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Builds the client. Reads the password, token and TLS files now, so a
    /// missing or unreadable file is a configuration error at load/reload,
    /// not a failure in the middle of an evaluation.
    pub fn new(
        settings: &HttpClientSettings,
        max_concurrent: usize,
        metrics: Arc<DaemonMetrics>,
    ) -> Result<Client, ClientError> {
        if max_concurrent == 0 {
            return Err(ClientError::NoConcurrency);
        }
        let (query_url, range_url) = endpoints(&settings.url)?;
        let base = httpclient::base_url(&settings.url, "Prometheus")?;
        let buildinfo_url = httpclient::join(&base, "api/v1/status/buildinfo", "Prometheus")?;
        let features_url = httpclient::join(&base, "api/v1/features", "Prometheus")?;
        let http = HttpClient::new(settings)?;
        Ok(Client {
            http,
            query_url,
            range_url,
            buildinfo_url,
            features_url,
            timeout: settings.timeout,
            retry_budget: DEFAULT_RETRY_BUDGET,
            max_body_bytes: body_limit(max_concurrent),
            permits: Arc::new(Semaphore::new(max_concurrent)),
            metrics,
        })
    }

    /// Bounds the time one query may take, waiting for a permit, retries and
    /// backoff included. Set it to the evaluation interval.
    pub fn with_retry_budget(mut self, budget: Duration) -> Client {
        self.retry_budget = budget;
        self
    }

    /// Changes the per-answer size cap (default: [`body_limit`]).
    pub fn with_max_body_bytes(mut self, limit: u64) -> Client {
        self.max_body_bytes = limit;
        self
    }

    /// One logical query: retries, metrics and warning logging around it.
    async fn run<T>(
        &self,
        url: &Url,
        query: &str,
        form: &[(&'static str, String)],
        decode: fn(&[u8], u16) -> Result<Decoded<T>, QueryError>,
    ) -> Result<T, QueryError> {
        let started = Instant::now();
        // A query dropped unfinished (a sibling failed and the SLO's cycle
        // gave up) is counted too, so the outcomes add up to what was sent.
        let mut pending = Unfinished(Some(self.metrics.clone()));
        let result = match tokio::time::timeout(self.retry_budget, self.fetch(url, form)).await {
            Ok(fetched) => fetched.and_then(|(status, body)| decode(&body, status)),
            Err(_) => Err(QueryError::Timeout {
                after: self.retry_budget,
            }),
        };
        pending.0 = None;
        self.metrics
            .query_duration
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(decoded) => {
                self.metrics
                    .queries_total
                    .with_label_values(&["success"])
                    .inc();
                if let Some(samples) = decoded.samples_read {
                    self.metrics.query_samples.inc_by(samples);
                }
                if !decoded.warnings.is_empty() {
                    tracing::warn!(
                        query,
                        warnings = %decoded.warnings.join("; "),
                        "Prometheus returned warnings with the result"
                    );
                }
                Ok(decoded.data)
            }
            Err(error) => {
                self.metrics
                    .queries_total
                    .with_label_values(&["error"])
                    .inc();
                tracing::debug!(query, %error, "query failed");
                Err(error)
            }
        }
    }

    /// Sends the request, retrying transient failures with exponential
    /// backoff and jitter. Gives up early when the next attempt could not
    /// start before the deadline, so the error returned is the real one
    /// rather than a timeout.
    async fn fetch(
        &self,
        url: &Url,
        form: &[(&'static str, String)],
    ) -> Result<(u16, Vec<u8>), QueryError> {
        let deadline = Instant::now() + self.retry_budget;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(MIN_BACKOFF)
            .with_max_delay(MAX_BACKOFF)
            .with_max_times(MAX_ATTEMPTS - 1)
            .with_jitter()
            .with_jitter_seed(httpclient::jitter_seed());
        (|| self.attempt(url, form, deadline))
            .retry(backoff)
            .when(|e: &Failure| e.error.is_transient())
            .adjust(|e: &Failure, next: Option<Duration>| {
                // `next` is None once the attempts are used up; Retry-After
                // only replaces the delay, it never buys an extra attempt.
                let delay = e.retry_after.unwrap_or(next?);
                (Instant::now() + delay < deadline).then_some(delay)
            })
            .notify(|e: &Failure, delay: Duration| {
                tracing::debug!(error = %e.error, ?delay, "retrying Prometheus query");
            })
            .await
            .map_err(|e| e.error)
    }

    /// One HTTP request under a concurrency permit.
    async fn attempt(
        &self,
        url: &Url,
        form: &[(&'static str, String)],
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), Failure> {
        let _permit = self.permits.acquire().await.map_err(|_| {
            Failure::from(QueryError::Transport {
                reason: "client is shut down".to_owned(),
            })
        })?;
        // The per-request timeout, but never past the query's deadline.
        let timeout = self
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            return Err(QueryError::Timeout {
                after: self.retry_budget,
            }
            .into());
        }
        let request = self.http.post(url.clone()).form(form).timeout(timeout);
        let mut response = request.send().await.map_err(|e| transport(e, timeout))?;
        let status = response.status();
        if status.is_success() {
            let body = read_body(&mut response, self.max_body_bytes, timeout).await?;
            return Ok((status.as_u16(), body));
        }
        let retry_after = (status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE)
            .then(|| retry_after(response.headers()))
            .flatten();
        let body = read_error_body(&mut response).await;
        let error = decode_error_body(&body, status.as_u16()).unwrap_or_else(|| QueryError::Http {
            status: status.as_u16(),
            body: excerpt(&body),
        });
        Err(Failure { error, retry_after })
    }
}

impl Client {
    /// A small JSON status document, or `None` when the backend has no such
    /// endpoint (404) or answers something else: these are hints only.
    async fn status_json(&self, url: &Url) -> Result<Option<serde_json::Value>, QueryError> {
        const LIMIT: u64 = 256 * 1024;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| QueryError::Transport {
                reason: "client is shut down".to_owned(),
            })?;
        let mut response = self
            .http
            .get(url.clone())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| transport(e, self.timeout))?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let body = read_body(&mut response, LIMIT, self.timeout).await?;
        Ok(serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .filter(|v| v["status"] == "success")
            .map(|mut v| v["data"].take()))
    }
}

/// Build info and features as the hints `backend` reads.
fn build_info(info: &serde_json::Value, features: Option<&serde_json::Value>) -> BuildInfo {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut enabled = Vec::new();
    if let Some(sections) = features.and_then(|f| f.as_object()) {
        for (section, names) in sections {
            for (name, on) in names.as_object().into_iter().flatten() {
                if on.as_bool() == Some(true) {
                    enabled.push(format!("{section}/{name}"));
                }
            }
        }
    }
    enabled.sort();
    BuildInfo {
        version: text(&info["version"]),
        application: text(&info["application"]),
        features: enabled,
    }
}

impl QueryApi for Client {
    async fn buildinfo(&self) -> Result<Option<BuildInfo>, QueryError> {
        let Some(info) = self.status_json(&self.buildinfo_url).await? else {
            return Ok(None);
        };
        let features = self.status_json(&self.features_url).await.ok().flatten();
        Ok(Some(build_info(&info, features.as_ref())))
    }

    async fn instant(&self, query: &str, at: i64) -> Result<Vec<Sample>, QueryError> {
        let form = [
            ("query", query.to_owned()),
            ("time", at.to_string()),
            // Prometheus then reports samples read (our samples metric).
            ("stats", "all".to_owned()),
            // Thanos: a partial answer must never silently shrink a budget.
            ("partial_response", "false".to_owned()),
        ];
        self.run(&self.query_url, query, &form, decode_instant)
            .await
    }

    async fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_secs: u64,
    ) -> Result<Vec<RangeSeries>, QueryError> {
        let form = [
            ("query", query.to_owned()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("step", step_secs.to_string()),
            ("stats", "all".to_owned()),
            ("partial_response", "false".to_owned()),
        ];
        self.run(&self.range_url, query, &form, decode_range).await
    }
}

/// A failed attempt, with the server's requested delay if it gave one.
struct Failure {
    error: QueryError,
    retry_after: Option<Duration>,
}

impl From<QueryError> for Failure {
    fn from(error: QueryError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// `<url>/api/v1/query` and `<url>/api/v1/query_range`, keeping any path
/// prefix (`http://host/prometheus`, Mimir's `/prometheus`).
fn endpoints(raw: &str) -> Result<(Url, Url), ClientError> {
    let base = httpclient::base_url(raw, "Prometheus")?;
    let join = |path: &str| httpclient::join(&base, path, "Prometheus");
    Ok((join("api/v1/query")?, join("api/v1/query_range")?))
}

/// Maps a reqwest error, without its URL (it may hold userinfo).
fn transport(e: reqwest::Error, timeout: Duration) -> QueryError {
    if e.is_timeout() {
        return QueryError::Timeout { after: timeout };
    }
    QueryError::Transport {
        reason: describe(e),
    }
}

/// Counts a query as `cancelled` if it is dropped before it finished.
struct Unfinished(Option<Arc<DaemonMetrics>>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(m) = self.0.take() {
            m.queries_total.with_label_values(&["cancelled"]).inc();
        }
    }
}

/// Reads a success body chunk by chunk, failing as soon as it passes
/// `limit` so a runaway answer never sits whole in memory.
async fn read_body(
    response: &mut Response,
    limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, QueryError> {
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(QueryError::TooLarge { limit });
    }
    // A known length is allocated once (it is within the limit); otherwise
    // start small and grow.
    let initial = response.content_length().unwrap_or(64 * 1024);
    let mut body = Vec::with_capacity(usize::try_from(initial).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|e| transport(e, timeout))? {
        if body.len() as u64 + chunk.len() as u64 > limit {
            return Err(QueryError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_path_prefix() {
        let cases = [
            (
                "http://localhost:9090",
                "http://localhost:9090/api/v1/query",
            ),
            (
                "http://localhost:9090/",
                "http://localhost:9090/api/v1/query",
            ),
            (
                "http://mimir/prometheus",
                "http://mimir/prometheus/api/v1/query",
            ),
            ("https://h/a/b/", "https://h/a/b/api/v1/query"),
            (" http://h:1/p ", "http://h:1/p/api/v1/query"),
        ];
        for (raw, want) in cases {
            let (query, range) = endpoints(raw).unwrap();
            assert_eq!(query.as_str(), want, "{raw}");
            assert_eq!(range.as_str(), format!("{want}_range"), "{raw}");
        }
    }

    #[test]
    fn build_info_hints() {
        let info = serde_json::json!({"version": "3.9.0", "revision": "x"});
        let features = serde_json::json!({
            "promql": {"anchored": true, "smoothed": false},
            "api": {"admin": true}
        });
        let b = build_info(&info, Some(&features));
        assert_eq!(b.version, "3.9.0");
        assert_eq!(b.application, "");
        assert_eq!(b.features, vec!["api/admin", "promql/anchored"]);
        let vm = build_info(&serde_json::json!({}), None);
        assert_eq!(vm, BuildInfo::default());
    }

    #[test]
    fn bad_urls_are_rejected_without_userinfo() {
        for raw in ["localhost:9090", "ftp://h/", "http://h/?x=1", "not a url"] {
            assert!(endpoints(raw).is_err(), "{raw}");
        }
        let err = endpoints("ftp://user:s3cret@h/").unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
