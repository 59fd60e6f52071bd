//! The daemon's own settings. This is a minimal stand-in holding only the
//! HTTP client settings the `prom` client is built from; the full, validated
//! configuration replaces it. Knows no SLO and opens no file.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach one HTTP endpoint (Prometheus, Alertmanager, a webhook).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpClientSettings {
    pub url: String,
    pub timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls: TlsSettings,
}

/// Basic auth; the password lives in a file so it never sits in the config.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BasicAuth {
    pub username: String,
    pub password_file: PathBuf,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}
