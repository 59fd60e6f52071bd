//! Placeholder settings types (replaced by the full settings loader).
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct HttpClientSettings {
    pub url: String,
    pub timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls: TlsSettings,
}
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
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PrometheusSettings {
    pub client: HttpClientSettings,
    pub max_concurrent_queries: usize,
}
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlertingSettings {
    pub alertmanagers: Vec<HttpClientSettings>,
    pub webhooks: Vec<HttpClientSettings>,
    pub resend_interval: Duration,
}
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebSettings {
    pub listen_address: String,
    pub config_file: Option<PathBuf>,
}
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub prometheus: PrometheusSettings,
    pub evaluation_interval: Duration,
    pub slo_files: Vec<String>,
    pub alerting: AlertingSettings,
    pub web: WebSettings,
    pub path: PathBuf,
}
