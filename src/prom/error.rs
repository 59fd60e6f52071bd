//! What went wrong with one query (`QueryError`). Building the client
//! fails with the shared [`crate::httpclient::ClientError`]. Messages never
//! carry secrets: no tokens, passwords, header values or URL userinfo.

use std::time::Duration;

/// `725ms`, not `725ms 586us 280ns`: a message, not a measurement.
fn whole_ms(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(Duration::from_millis(d.as_millis() as u64))
}

/// One query failed. Cloneable and comparable so the engine can keep the
/// last error per SLO and tests can assert on it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// A request, or the whole query with its retries, ran out of time.
    #[error("Prometheus did not answer within {}", whole_ms(*.after))]
    Timeout { after: Duration },
    /// A non-2xx answer without a Prometheus error body (e.g. from a proxy).
    #[error("Prometheus answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// Prometheus answered `"status":"error"` (with any HTTP status; it uses
    /// 400 for bad queries, 422 for execution errors, 503 for timeouts).
    #[error("Prometheus rejected the query (HTTP {status}, {error_type}): {error}")]
    Api {
        status: u16,
        error_type: String,
        error: String,
    },
    /// The body is not the JSON Prometheus documents (malformed, truncated,
    /// or an unexpected `resultType`).
    #[error("cannot decode the Prometheus response: {reason}")]
    Decode { reason: String },
    /// The answers in flight share one memory budget, split between the
    /// concurrent queries; `max_concurrent_queries` trades one for the other.
    #[error(
        "Prometheus response is larger than the {limit}-byte limit per query \
         (lower prometheus.max_concurrent_queries to allow larger answers)"
    )]
    TooLarge { limit: u64 },
    /// Connecting, TLS, or the connection broke mid-request.
    #[error("cannot reach Prometheus: {reason}")]
    Transport { reason: String },
}

impl QueryError {
    /// Whether another attempt may succeed: connection trouble, timeouts,
    /// 5xx and 429. A bad query (4xx, `bad_data`) or a body we cannot decode
    /// will fail the same way again.
    pub fn is_transient(&self) -> bool {
        match self {
            QueryError::Timeout { .. } | QueryError::Transport { .. } => true,
            QueryError::Http { status, .. } => *status == 429 || *status >= 500,
            QueryError::Api {
                status, error_type, ..
            } => error_type != "bad_data" && (*status == 429 || *status >= 500),
            QueryError::Decode { .. } | QueryError::TooLarge { .. } => false,
        }
    }
}
