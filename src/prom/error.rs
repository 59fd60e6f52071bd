//! The client's error types: what went wrong building the client
//! (`ClientError`) and what went wrong with one query (`QueryError`).
//! Messages name files by path and never carry secrets: no tokens,
//! passwords, header values or URL userinfo.

use std::path::PathBuf;
use std::time::Duration;

/// The client could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid Prometheus URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot read {what} {path}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path} is empty")]
    EmptyFile { what: &'static str, path: PathBuf },
    #[error("cannot parse {what} {path}: {reason}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("tls.cert_file and tls.key_file must be given together")]
    IncompleteClientCert,
    #[error("basic_auth and bearer_token_file cannot both be set")]
    ConflictingAuth,
    /// The value is left out on purpose: it may be a credential.
    #[error("invalid HTTP header {name:?}: {reason}")]
    InvalidHeader { name: String, reason: &'static str },
    #[error("invalid tls.server_name {name:?}")]
    InvalidServerName { name: String },
    #[error("TLS setup failed: {reason}")]
    Tls { reason: String },
    #[error("max_concurrent must be at least 1")]
    NoConcurrency,
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}

/// One query failed. Cloneable and comparable so the engine can keep the
/// last error per SLO and tests can assert on it.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// A request, or the whole query with its retries, ran out of time.
    #[error("Prometheus did not answer within {}", humantime::format_duration(*.after))]
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
    #[error("Prometheus response is larger than the {limit}-byte limit")]
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
