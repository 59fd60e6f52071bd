//! What can go wrong building an HTTP client from `HttpClientSettings`:
//! bad URL, unreadable or malformed credential/TLS files, bad headers.
//! Messages name files by path and never carry secrets: no tokens,
//! passwords, header values or URL userinfo.

use std::path::PathBuf;

/// A client could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `what` names the endpoint ("Prometheus", "Alertmanager", "webhook");
    /// `url` is already stripped of userinfo.
    #[error("invalid {what} URL {url:?}: {reason}")]
    InvalidUrl {
        what: &'static str,
        url: String,
        reason: String,
    },
    #[error("cannot read {what} {path}: {reason}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        reason: crate::readfile::ReadError,
    },
    #[error("{what} {path} is empty")]
    EmptyFile { what: &'static str, path: PathBuf },
    #[error("basic_auth and bearer_token_file cannot both be set")]
    ConflictingAuth,
    /// The value is left out on purpose: it may be a credential.
    #[error("invalid HTTP header {name:?}: {reason}")]
    InvalidHeader { name: String, reason: &'static str },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The Prometheus client's concurrency bound was 0.
    #[error("max_concurrent must be at least 1")]
    NoConcurrency,
    #[error("cannot build the HTTP client")]
    Build(#[source] reqwest::Error),
}
