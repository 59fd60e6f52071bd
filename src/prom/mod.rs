//! A narrow client for the Prometheus HTTP query API: only
//! `/api/v1/query` and `/api/v1/query_range`, against Prometheus, Thanos,
//! Mimir/Cortex or VictoriaMetrics. Owns timeouts, auth, TLS, retries,
//! the concurrency bound, response decoding and the `errbudget_prometheus_*`
//! query metrics. It does not know what a query means: samples are returned
//! as Prometheus sent them (NaN and ±Inf included) and never interpreted as
//! SLO values, and no PromQL is written here (that is `plan`'s job).

use std::collections::BTreeMap;
use std::future::Future;

pub mod backend;
pub mod batch;
mod client;
pub(crate) mod decode;
mod error;
pub mod share;

pub use crate::httpclient::ClientError;
pub use client::{body_limit, Client, DEFAULT_RETRY_BUDGET, RESPONSE_MEMORY_BUDGET};
pub use error::QueryError;

/// One element of an instant vector, or a scalar (then `labels` is empty).
///
/// `value` is exactly what Prometheus returned: `"NaN"`, `"+Inf"` and
/// `"-Inf"` become `f64::NAN`, `f64::INFINITY` and `f64::NEG_INFINITY`; the
/// engine decides what they mean (e.g. 0/0 when there was no traffic).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// One series of a range query: `(unix seconds, value)` points in time
/// order. Timestamps are whole seconds (Prometheus' float seconds,
/// rounded); values follow the same NaN/±Inf rule as [`Sample`].
#[derive(Clone, Debug, PartialEq)]
pub struct RangeSeries {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(i64, f64)>,
}

/// What a backend says about itself (`/api/v1/status/buildinfo`,
/// `/api/v1/features`): hints only, `backend` decides by behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    /// Mimir and some proxies name themselves here; empty otherwise.
    pub application: String,
    /// Enabled features as `section/name`, where the backend lists them.
    pub features: Vec<String>,
}

/// The two calls the engine makes. A trait so the engine can be tested with
/// a scripted fake; [`Client`] is the real implementation.
pub trait QueryApi: Send + Sync + 'static {
    /// Evaluates `query` at unix time `at`. An empty result is `Ok(vec![])`.
    fn instant(
        &self,
        query: &str,
        at: i64,
    ) -> impl Future<Output = Result<Vec<Sample>, QueryError>> + Send;

    /// Evaluates `query` from `start` to `end` (unix seconds, inclusive)
    /// every `step_secs` seconds.
    fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step_secs: u64,
    ) -> impl Future<Output = Result<Vec<RangeSeries>, QueryError>> + Send;

    /// The backend's build information, if it gives any. Scripted fakes
    /// need not answer.
    fn buildinfo(&self) -> impl Future<Output = Result<Option<BuildInfo>, QueryError>> + Send {
        async { Ok(None) }
    }

    /// Whether merging concurrent queries into one request helps: not for
    /// a replay cache that answers each expression from its own range.
    fn batches(&self) -> bool {
        true
    }
}
