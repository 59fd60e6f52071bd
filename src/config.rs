//! The daemon's own settings (`config/errbudget.yaml`): Prometheus client,
//! evaluation interval, spec globs, alert receivers, web listener. Read
//! into validated types with every problem reported as
//! `file:line:column: message`. Knows no SLO; secrets are file paths only
//! and are never opened here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::yaml::{self, Cx, Field, Map, Pos, Sp};
use crate::diag::Diagnostic;
use crate::time;
use crate::tls::TlsSettings;

pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:9465";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_EVALUATION_FAILING_AFTER: Duration = Duration::from_secs(600);
const DEFAULT_RESEND_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_MAX_CONCURRENT_QUERIES: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub prometheus: PrometheusSettings,
    pub evaluation_interval: Duration,
    /// Globs as written, relative to the config file's directory.
    pub slo_files: Vec<String>,
    pub alerting: AlertingSettings,
    pub web: WebSettings,
    pub storage: StorageSettings,
    /// Where deploys are read from besides the API; none: the API only.
    pub deployments: Option<DeploymentSettings>,
    pub policy: PolicySettings,
    /// The config file these settings came from.
    pub path: PathBuf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct PrometheusSettings {
    pub client: HttpClientSettings,
    pub max_concurrent_queries: usize,
}

/// One HTTP endpoint with its auth and TLS: the Prometheus API, an
/// Alertmanager, a webhook. File paths are resolved against the config
/// file's directory.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpClientSettings {
    pub url: String,
    pub timeout: Duration,
    pub headers: BTreeMap<String, String>,
    pub basic_auth: Option<BasicAuth>,
    pub bearer_token_file: Option<PathBuf>,
    pub tls: TlsSettings,
}

impl Default for HttpClientSettings {
    /// No URL yet; the documented default timeout.
    fn default() -> Self {
        HttpClientSettings {
            url: String::new(),
            timeout: DEFAULT_TIMEOUT,
            headers: BTreeMap::new(),
            basic_auth: None,
            bearer_token_file: None,
            tls: TlsSettings::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct BasicAuth {
    pub username: String,
    pub password_file: PathBuf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AlertingSettings {
    pub alertmanagers: Vec<HttpClientSettings>,
    pub webhooks: Vec<HttpClientSettings>,
    pub resend_interval: Duration,
    /// How long a burn-rate condition must hold before its alert fires.
    /// Zero by default: the short window already keeps alerts from flapping.
    pub pending_for: Duration,
    /// An SLO that could not be evaluated for this long raises
    /// `ErrorBudgetEvaluationFailing`, so silence is never taken for health.
    pub evaluation_failing_after: Duration,
}

impl Default for AlertingSettings {
    fn default() -> Self {
        AlertingSettings {
            alertmanagers: Vec::new(),
            webhooks: Vec::new(),
            resend_interval: DEFAULT_RESEND_INTERVAL,
            pending_for: Duration::ZERO,
            evaluation_failing_after: DEFAULT_EVALUATION_FAILING_AFTER,
        }
    }
}

/// Deploys read from a metric: a series per running version (an info
/// series, or a counter of deploys that carries the version), whose
/// appearance is a deploy.
#[derive(Clone, Debug, PartialEq)]
pub struct DeploymentSettings {
    pub query: String,
    pub kind: DeploymentMetric,
    pub service_label: String,
    pub version_label: String,
}

/// How `deployments.query` shows a deploy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeploymentMetric {
    /// A series per running version: one that appears is a deploy.
    #[default]
    Info,
    /// A count of deploys (per service, optionally per version): a rise is
    /// a deploy.
    Counter,
}

/// The release policy's run-time part.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PolicySettings {
    /// A YAML list of release-freeze overrides, re-read on reload.
    pub overrides_file: Option<PathBuf>,
    /// A YAML list of maintenance windows, re-read on reload.
    pub maintenance_file: Option<PathBuf>,
}

/// Where `run` keeps its state across restarts; none: nothing is kept.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageSettings {
    pub path: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebSettings {
    pub listen_address: String,
    /// Exporter-toolkit web config (TLS, basic auth users).
    pub config_file: Option<PathBuf>,
    /// The URL people reach errbudget at, for alert links; defaults to
    /// `http://<listen_address>`.
    pub external_url: Option<String>,
}

impl WebSettings {
    /// The external URL as configured, or `http://<listen_address>`.
    pub fn external_url(&self) -> String {
        self.external_url_on(None)
    }

    /// The path of the external URL without its trailing slash (`""` or
    /// `/errbudget`): behind a proxy at `http://host/errbudget/` every
    /// link of the status pages starts with it, as Prometheus's own
    /// `--web.external-url` prefixes its UI.
    pub fn path_prefix(&self) -> String {
        path_of(&self.external_url())
    }

    /// As [`Self::external_url`], with a wildcard listen host (`:9465`,
    /// `0.0.0.0`, `[::]`) replaced by `hostname` (else `localhost`), as
    /// Prometheus derives its own external URL.
    pub fn external_url_on(&self, hostname: Option<&str>) -> String {
        if let Some(u) = &self.external_url {
            return u.trim_end_matches('/').to_string();
        }
        let (host, port) = self
            .listen_address
            .rsplit_once(':')
            .unwrap_or((self.listen_address.as_str(), ""));
        let host = match host {
            "" | "0.0.0.0" | "[::]" | "::" => hostname.unwrap_or("localhost"),
            h => h,
        };
        format!("http://{host}:{port}")
    }
}

/// The path part of an absolute URL, without a trailing slash: what comes
/// after `scheme://authority`, before any query or fragment.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.trim_end_matches('/').to_string()
}

/// True when `url` points at this machine only (127.0.0.0/8, ::1,
/// localhost): links to it are useless to whoever receives an alert.
pub fn is_loopback_url(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url).ok().and_then(|u| {
        u.host_str()
            .map(|h| h.trim_matches(['[', ']']).to_ascii_lowercase())
    }) else {
        return false;
    };
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    }
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            listen_address: DEFAULT_LISTEN_ADDRESS.into(),
            config_file: None,
            external_url: None,
        }
    }
}

// The keys each settings block accepts. The parser opens every block with
// these lists (anything else is an unknown-field error), and
// `settings_keys` walks them, so the example config can be checked against
// exactly what the parser reads.
const TOP_KEYS: &[&str] = &[
    "prometheus",
    "evaluation_interval",
    "slo_files",
    "alerting",
    "web",
    "storage",
    "deployments",
    "policy",
];
const CLIENT_KEYS: &[&str] = &[
    "url",
    "timeout",
    "headers",
    "basic_auth",
    "bearer_token_file",
    "tls",
];
const PROMETHEUS_KEYS: &[&str] = &["max_concurrent_queries"];
const BASIC_AUTH_KEYS: &[&str] = &["username", "password_file"];
const TLS_KEYS: &[&str] = &[
    "ca_file",
    "cert_file",
    "key_file",
    "server_name",
    "insecure_skip_verify",
];
const ALERTING_KEYS: &[&str] = &[
    "alertmanagers",
    "webhooks",
    "resend_interval",
    "pending_for",
    "evaluation_failing_after",
];
const WEB_KEYS: &[&str] = &["listen_address", "config_file", "external_url"];
const STORAGE_KEYS: &[&str] = &["path"];
const DEPLOYMENT_KEYS: &[&str] = &["query", "kind", "service_label", "version_label"];
const POLICY_KEYS: &[&str] = &["overrides_file", "maintenance_file"];

/// Every settings key the parser accepts, as dotted paths
/// (`alerting.alertmanagers.tls.ca_file`; list items add no index).
/// `headers` holds free-form header names and is not descended into.
pub fn settings_keys() -> Vec<String> {
    fn client(prefix: &str, extra: &[&str], out: &mut Vec<String>) {
        for k in CLIENT_KEYS.iter().chain(extra) {
            out.push(format!("{prefix}.{k}"));
        }
        for k in BASIC_AUTH_KEYS {
            out.push(format!("{prefix}.basic_auth.{k}"));
        }
        for k in TLS_KEYS {
            out.push(format!("{prefix}.tls.{k}"));
        }
    }
    let mut out: Vec<String> = TOP_KEYS.iter().map(|k| k.to_string()).collect();
    client("prometheus", PROMETHEUS_KEYS, &mut out);
    for k in ALERTING_KEYS {
        out.push(format!("alerting.{k}"));
    }
    client("alerting.alertmanagers", &[], &mut out);
    client("alerting.webhooks", &[], &mut out);
    for k in WEB_KEYS {
        out.push(format!("web.{k}"));
    }
    for k in STORAGE_KEYS {
        out.push(format!("storage.{k}"));
    }
    for k in DEPLOYMENT_KEYS {
        out.push(format!("deployments.{k}"));
    }
    for k in POLICY_KEYS {
        out.push(format!("policy.{k}"));
    }
    out
}

/// Parses settings text. Pure: `file` names the file in messages and is the
/// base for relative paths.
pub fn parse_settings(file: &str, text: &str) -> Result<Settings, Vec<Diagnostic>> {
    parse_settings_with_positions(file, text).map(|(s, _)| s)
}

/// As [`parse_settings`], plus where each `slo_files` entry was written, so
/// that a glob matching nothing can be reported at its line.
pub(crate) fn parse_settings_with_positions(
    file: &str,
    text: &str,
) -> Result<(Settings, Vec<Pos>), Vec<Diagnostic>> {
    parse_document(
        file,
        text,
        "a settings file",
        |cx| {
            cx.err(
                Pos { line: 1, column: 1 },
                "empty settings file: prometheus.url is required",
            );
            None
        },
        |r, cx, doc| r.settings(cx, doc, file),
    )
}

/// Keys of an HTTP client file: a client block without `url` and
/// `timeout`, which the command's own flags give.
const CLIENT_FILE_KEYS: &[&str] = &["headers", "basic_auth", "bearer_token_file", "tls"];

/// An HTTP client file (`gate` and `healthcheck --http.config.file`): the
/// headers, credentials and TLS a client block of the settings takes, with
/// paths relative to the file's directory, so the commands can reach an
/// errbudget whose web config asks for basic auth or client certificates.
/// An empty file is a client without any. Every problem is reported.
pub fn parse_client_file(file: &str, text: &str) -> Result<HttpClientSettings, Vec<Diagnostic>> {
    parse_document(
        file,
        text,
        "an HTTP client file",
        |_| Some(HttpClientSettings::default()),
        |r, cx, doc| {
            Map::open(cx, doc, "", CLIENT_FILE_KEYS).and_then(|m| r.client_options(cx, &m))
        },
    )
}

/// A YAML list file (`path` names it in messages), each item read by
/// `item` (with its 1-based place); every problem is reported.
fn parse_list_file<T>(
    file: &str,
    text: &str,
    what: &str,
    path: &str,
    mut item: impl FnMut(&mut Cx<'_>, &Field<'_, '_>, usize) -> Option<T>,
) -> Result<Vec<T>, Vec<Diagnostic>> {
    parse_document(
        file,
        text,
        what,
        |_| Some(vec![]),
        |_, cx, doc| {
            let top = yaml::Field {
                key_pos: Pos { line: 1, column: 1 },
                path: path.into(),
                node: doc,
            };
            let mut out = vec![];
            let mut ok = true;
            for (n, f) in top.seq(cx)?.into_iter().enumerate() {
                match item(cx, &f, n + 1) {
                    Some(x) => out.push(x),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        },
    )
}

/// The maintenance file (`policy.maintenance_file`): a YAML list of
/// windows as `POST /api/v1/exclusions` takes them (`service`, `slo`?,
/// `reason`, and `start` + `end`, or `rrule` + `duration` with
/// `time_zone`, `first`); ids `file-<n>`. An empty file is no window.
/// Every problem is reported as `file:line:column: message`.
pub fn parse_maintenance_file(
    file: &str,
    text: &str,
) -> Result<Vec<crate::records::Maintenance>, Vec<Diagnostic>> {
    use crate::records::MAINTENANCE_FIELDS;
    parse_list_file(
        file,
        text,
        "a maintenance file",
        "maintenance",
        |cx, item, n| {
            let m = item.map(cx, MAINTENANCE_FIELDS)?;
            let mut fields = serde_json::Map::new();
            let mut at = std::collections::BTreeMap::new();
            for key in MAINTENANCE_FIELDS {
                if let Some(v) = m.str(cx, key) {
                    at.insert(*key, v.pos);
                    fields.insert(key.to_string(), serde_json::Value::String(v.value));
                }
            }
            crate::records::maintenance_from_fields(&fields, format!("file-{n}"))
                .map_err(|e| {
                    let pos = at.get(e.field.as_str()).copied().unwrap_or(m.pos);
                    cx.err(
                        pos,
                        format!("{}: {}", yaml::join(&m.path, &e.field), e.message),
                    );
                })
                .ok()
        },
    )
}

/// Keys of one item of the overrides file.
const OVERRIDE_KEYS: &[&str] = &["service", "slo", "reason", "by", "from", "until"];

/// The overrides file (`policy.overrides_file`): a YAML list of
/// `{service, slo?, reason, by, from?, until}`, times RFC 3339. Items are
/// trusted as written (the file is the operators'), so neither the specs'
/// `policy.override` users nor its `max_duration` apply; each gets the id
/// `file-<n>` (n from 1, in file order). An empty file is no override.
/// Every problem is reported as `file:line:column: message`.
pub fn parse_overrides_file(
    file: &str,
    text: &str,
) -> Result<Vec<crate::records::Override>, Vec<Diagnostic>> {
    parse_list_file(file, text, "an overrides file", "overrides", read_override)
}

fn read_override(
    cx: &mut Cx<'_>,
    item: &Field<'_, '_>,
    n: usize,
) -> Option<crate::records::Override> {
    let m = item.map(cx, OVERRIDE_KEYS)?;
    let text = |cx: &mut Cx<'_>, key: &str, required: bool| -> Option<Option<String>> {
        let v = if required {
            m.req_str(cx, key)
        } else {
            m.str(cx, key)
        };
        match v {
            Some(s) if s.value.trim().is_empty() || s.value.chars().any(char::is_control) => {
                cx.err(
                    s.pos,
                    format!(
                        "{}: must be a non-empty line of text",
                        yaml::join(&m.path, key)
                    ),
                );
                None
            }
            Some(s) => Some(Some(s.value.trim().to_string())),
            None if required => None,
            None => Some(None),
        }
    };
    let service = text(cx, "service", true);
    let slo = text(cx, "slo", false);
    let reason = text(cx, "reason", true);
    let by = text(cx, "by", true);
    let time = |cx: &mut Cx<'_>, key: &str, required: bool| -> Option<Option<i64>> {
        let v = if required {
            m.req_str(cx, key)
        } else {
            m.str(cx, key)
        };
        match v {
            None if required => None,
            None => Some(None),
            Some(s) => match crate::time::parse_rfc3339(s.value.trim()) {
                Some(t) => Some(Some(t)),
                None => {
                    cx.err(
                        s.pos,
                        format!(
                            "{}: {:?} is not an RFC 3339 time (2026-12-03T10:02:00Z)",
                            yaml::join(&m.path, key),
                            s.value
                        ),
                    );
                    None
                }
            },
        }
    };
    let from = time(cx, "from", false);
    let until = time(cx, "until", true);
    let (from, until) = (from?.unwrap_or(0), until??);
    if until <= from {
        cx.err(m.pos, format!("{}: until is not after from", m.path));
        return None;
    }
    Some(crate::records::Override {
        id: format!("file-{n}"),
        service: service??,
        slo: slo?,
        reason: reason??,
        by: by??,
        from,
        until,
        source: crate::records::Source::File,
    })
}

/// Reads the one YAML document of `file` with `read` (paths relative to
/// the file's directory), or `empty` when there is none; every problem is
/// reported, sorted by position. `what` names the file in messages.
fn parse_document<T>(
    file: &str,
    text: &str,
    what: &str,
    empty: impl FnOnce(&mut Cx<'_>) -> Option<T>,
    read: impl FnOnce(&Reader, &mut Cx<'_>, &yaml::Node<'_>) -> Option<T>,
) -> Result<T, Vec<Diagnostic>> {
    let docs = yaml::load(text)
        .map_err(|(pos, msg)| vec![Diagnostic::new(file, pos.line, pos.column, msg)])?;
    let mut cx = Cx::of_text(file, text);
    let base = Path::new(file)
        .parent()
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let r = Reader { base };
    let parsed = match docs.as_slice() {
        [doc] if !yaml::is_null(doc) => read(&r, &mut cx, doc),
        [] | [_] => empty(&mut cx),
        [_, second, ..] => {
            cx.err(
                Pos {
                    line: second.span.start.line(),
                    column: second.span.start.col() + 1,
                },
                format!("{what} holds one YAML document"),
            );
            None
        }
    };
    match parsed {
        Some(s) if !cx.has_errors() => Ok(s),
        _ => {
            let mut d = cx.diags;
            d.sort();
            Err(d)
        }
    }
}

struct Reader {
    base: PathBuf,
}

impl Reader {
    fn settings(
        &self,
        cx: &mut Cx<'_>,
        doc: &yaml::Node<'_>,
        file: &str,
    ) -> Option<(Settings, Vec<Pos>)> {
        let m = Map::open(cx, doc, "", TOP_KEYS)?;
        let prometheus = m
            .req(cx, "prometheus")
            .and_then(|f| self.prometheus(cx, &f));
        let evaluation_interval =
            self.duration(cx, &m, "evaluation_interval", DEFAULT_EVALUATION_INTERVAL);
        let mut globs = Vec::new();
        if let Some(items) = m.get("slo_files").and_then(|f| f.seq(cx)) {
            for i in items {
                if let Some(s) = i.str(cx) {
                    globs.push(s);
                }
            }
        }
        let alerting = match m.get("alerting") {
            None => Some(AlertingSettings::default()),
            Some(f) => self.alerting(cx, &f),
        };
        let web = match m.get("web") {
            None => Some(WebSettings::default()),
            Some(f) => self.web(cx, &f),
        };
        let storage = match m.get("storage") {
            None => Some(StorageSettings::default()),
            Some(f) => f.map(cx, STORAGE_KEYS).map(|s| StorageSettings {
                path: self.path(cx, &s, "path"),
            }),
        };
        let deployments = match m.get("deployments") {
            None => Some(None),
            Some(f) => self.deployments(cx, &f).map(Some),
        };
        let policy = match m.get("policy") {
            None => Some(PolicySettings::default()),
            Some(f) => f.map(cx, POLICY_KEYS).map(|p| PolicySettings {
                overrides_file: self.path(cx, &p, "overrides_file"),
                maintenance_file: self.path(cx, &p, "maintenance_file"),
            }),
        };
        let positions = globs.iter().map(|g| g.pos).collect();
        Some((
            Settings {
                prometheus: prometheus?,
                evaluation_interval: evaluation_interval?,
                slo_files: globs.into_iter().map(|g| g.value).collect(),
                alerting: alerting?,
                web: web?,
                storage: storage?,
                deployments: deployments?,
                policy: policy?,
                path: PathBuf::from(file),
            },
            positions,
        ))
    }

    fn prometheus(&self, cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<PrometheusSettings> {
        let m = f.map(cx, &with_client_fields(PROMETHEUS_KEYS))?;
        let client = self.client(cx, &m, true);
        let max = match m.get("max_concurrent_queries") {
            None => Some(DEFAULT_MAX_CONCURRENT_QUERIES),
            Some(f) => f.usize(cx).and_then(|n| {
                if n.value == 0 {
                    cx.err(n.pos, format!("{}: must be at least 1", f.path));
                    None
                } else {
                    Some(n.value)
                }
            }),
        };
        Some(PrometheusSettings {
            client: client?,
            max_concurrent_queries: max?,
        })
    }

    fn alerting(&self, cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<AlertingSettings> {
        let m = f.map(cx, ALERTING_KEYS)?;
        let mut ok = true;
        let mut list = |cx: &mut Cx<'_>, key: &str| -> Vec<HttpClientSettings> {
            let Some(items) = m.get(key).and_then(|f| f.seq(cx)) else {
                return Vec::new();
            };
            items
                .iter()
                .filter_map(|i| {
                    let c = i
                        .map(cx, &with_client_fields(&[]))
                        .and_then(|m| self.client(cx, &m, key == "alertmanagers"));
                    ok &= c.is_some();
                    c
                })
                .collect()
        };
        let alertmanagers = list(cx, "alertmanagers");
        let webhooks = list(cx, "webhooks");
        let resend_interval = self.duration(cx, &m, "resend_interval", DEFAULT_RESEND_INTERVAL);
        let pending_for = if m.has("pending_for") {
            self.duration(cx, &m, "pending_for", Duration::ZERO)
        } else {
            Some(Duration::ZERO)
        };
        let failing_after = self.duration(
            cx,
            &m,
            "evaluation_failing_after",
            DEFAULT_EVALUATION_FAILING_AFTER,
        );
        ok.then_some(AlertingSettings {
            alertmanagers,
            webhooks,
            resend_interval: resend_interval?,
            pending_for: pending_for?,
            evaluation_failing_after: failing_after?,
        })
    }

    fn deployments(&self, cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<DeploymentSettings> {
        let m = f.map(cx, DEPLOYMENT_KEYS)?;
        let query = m.req_str(cx, "query");
        if let Some(q) = &query {
            if let Err(e) = promql_parser::parser::parse(&q.value) {
                cx.err(q.pos, format!("deployments.query: not PromQL: {e}"));
                return None;
            }
        }
        let label = |cx: &mut Cx<'_>, key: &str, default: &str| match m.str(cx, key) {
            None => Some(default.to_string()),
            Some(l)
                if !l.value.is_empty()
                    && !l.value.starts_with(|c: char| c.is_ascii_digit())
                    && l.value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Some(l.value)
            }
            Some(l) => {
                cx.err(
                    l.pos,
                    format!("deployments.{key}: {:?} is not a label name", l.value),
                );
                None
            }
        };
        let service_label = label(cx, "service_label", "service");
        let version_label = label(cx, "version_label", "version");
        let kind = match m.str(cx, "kind") {
            None => Some(DeploymentMetric::Info),
            Some(k) if k.value == "info" => Some(DeploymentMetric::Info),
            Some(k) if k.value == "counter" => Some(DeploymentMetric::Counter),
            Some(k) => {
                cx.err(
                    k.pos,
                    format!(
                        "deployments.kind: {:?} is neither info nor counter",
                        k.value
                    ),
                );
                None
            }
        };
        Some(DeploymentSettings {
            query: query?.value,
            kind: kind?,
            service_label: service_label?,
            version_label: version_label?,
        })
    }

    fn web(&self, cx: &mut Cx<'_>, f: &Field<'_, '_>) -> Option<WebSettings> {
        let m = f.map(cx, WEB_KEYS)?;
        let external_url = m
            .str(cx, "external_url")
            .and_then(|u| check_url(cx, &m.path, u));
        let listen_address = match m.str(cx, "listen_address") {
            None => Some(DEFAULT_LISTEN_ADDRESS.to_string()),
            Some(a) => {
                let port_ok = a
                    .value
                    .rsplit_once(':')
                    .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
                if port_ok {
                    Some(a.value)
                } else {
                    cx.err(
                        a.pos,
                        format!(
                            "web.listen_address: {:?} is not host:port, e.g. {DEFAULT_LISTEN_ADDRESS}",
                            a.value
                        ),
                    );
                    None
                }
            }
        };
        Some(WebSettings {
            listen_address: listen_address?,
            config_file: self.path(cx, &m, "config_file"),
            external_url,
        })
    }

    /// The HTTP client block shared by Prometheus and the receivers;
    /// `base`: the URL is an API base (no query string).
    fn client(&self, cx: &mut Cx<'_>, m: &Map<'_, '_>, base: bool) -> Option<HttpClientSettings> {
        let url = m.req_str(cx, "url").and_then(|u| {
            if base {
                check_base_url(cx, &m.path, u)
            } else {
                check_url(cx, &m.path, u)
            }
        });
        let timeout = self.duration(cx, m, "timeout", DEFAULT_TIMEOUT);
        let options = self.client_options(cx, m);
        Some(HttpClientSettings {
            url: url?,
            timeout: timeout?,
            ..options?
        })
    }

    /// Headers, credentials and TLS of a client block (no URL, the
    /// default timeout).
    fn client_options(&self, cx: &mut Cx<'_>, m: &Map<'_, '_>) -> Option<HttpClientSettings> {
        let mut headers = BTreeMap::new();
        for (k, v) in m.string_map(cx, "headers") {
            if reqwest::header::HeaderName::from_bytes(k.value.as_bytes()).is_err() {
                cx.err(
                    k.pos,
                    format!(
                        "{}: invalid header name {:?}",
                        yaml::join(&m.path, "headers"),
                        k.value
                    ),
                );
            } else if reqwest::header::HeaderValue::from_str(&v.value).is_err() {
                cx.err(
                    v.pos,
                    format!(
                        "{}.{}: invalid header value",
                        yaml::join(&m.path, "headers"),
                        k.value
                    ),
                );
            } else {
                headers.insert(k.value, v.value);
            }
        }
        let basic_auth = m.get("basic_auth").and_then(|f| {
            let b = f.map(cx, BASIC_AUTH_KEYS)?;
            let username = b.req_str(cx, "username");
            b.req(cx, "password_file");
            let password_file = self.path(cx, &b, "password_file");
            Some(BasicAuth {
                username: username?.value,
                password_file: password_file?,
            })
        });
        let bearer_token_file = self.path(cx, m, "bearer_token_file");
        if let (Some(b), true) = (m.get("basic_auth"), bearer_token_file.is_some()) {
            cx.err(
                b.key_pos,
                format!(
                    "{}give at most one of basic_auth and bearer_token_file",
                    if m.path.is_empty() {
                        String::new()
                    } else {
                        format!("{}: ", m.path)
                    }
                ),
            );
        }
        let tls = match m.get("tls") {
            None => TlsSettings::default(),
            Some(f) => {
                let t = f.map(cx, TLS_KEYS)?;
                let tls = TlsSettings {
                    ca_file: self.path(cx, &t, "ca_file"),
                    cert_file: self.path(cx, &t, "cert_file"),
                    key_file: self.path(cx, &t, "key_file"),
                    server_name: t.str(cx, "server_name").map(|s| s.value),
                    insecure_skip_verify: t.bool(cx, "insecure_skip_verify").unwrap_or(false),
                };
                if tls.cert_file.is_some() != tls.key_file.is_some() {
                    cx.err(
                        t.pos,
                        format!("{}: cert_file and key_file go together", t.path),
                    );
                }
                tls
            }
        };
        Some(HttpClientSettings {
            headers,
            basic_auth,
            bearer_token_file,
            tls,
            ..HttpClientSettings::default()
        })
    }

    fn duration(
        &self,
        cx: &mut Cx<'_>,
        m: &Map<'_, '_>,
        key: &str,
        default: Duration,
    ) -> Option<Duration> {
        let Some(f) = m.get(key) else {
            return Some(default);
        };
        let s = f.str(cx)?;
        time::parse(&s.value)
            .map_err(|e| cx.err(s.pos, format!("{}: {e}", f.path)))
            .ok()
    }

    /// A file path, relative to the config file's directory.
    fn path(&self, cx: &mut Cx<'_>, m: &Map<'_, '_>, key: &str) -> Option<PathBuf> {
        let s = m.str(cx, key)?;
        if s.value.trim().is_empty() {
            cx.err(s.pos, format!("{}: empty path", yaml::join(&m.path, key)));
            return None;
        }
        Some(self.base.join(s.value))
    }
}

fn with_client_fields(extra: &[&'static str]) -> Vec<&'static str> {
    let mut v = CLIENT_KEYS.to_vec();
    v.extend_from_slice(extra);
    v
}

/// An http(s) URL with a host. The URL may hold credentials, so messages
/// name it redacted ([`crate::diag::redact`]).
fn check_url(cx: &mut Cx<'_>, path: &str, u: Sp<String>) -> Option<String> {
    let at = yaml::join(path, "url");
    let shown = crate::diag::redact(&u.value);
    match reqwest::Url::parse(u.value.trim()) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {
            Some(u.value)
        }
        Ok(parsed) => {
            cx.err(
                u.pos,
                format!(
                    "{at}: {shown:?} must be an http or https URL with a host (scheme is {})",
                    parsed.scheme()
                ),
            );
            None
        }
        Err(e) => {
            cx.err(u.pos, format!("{at}: invalid URL {shown:?}: {e}"));
            None
        }
    }
}

/// [`check_url`] for an API base that paths are joined to (Prometheus,
/// Alertmanager): no query string or fragment, as the client requires.
fn check_base_url(cx: &mut Cx<'_>, path: &str, u: Sp<String>) -> Option<String> {
    let pos = u.pos;
    let url = check_url(cx, path, u)?;
    if url.contains(['?', '#']) {
        cx.err(
            pos,
            format!(
                "{}: {:?} must not have a query string or fragment (give credentials with basic_auth or bearer_token_file, and headers with headers)",
                yaml::join(path, "url"),
                crate::diag::redact(&url)
            ),
        );
        return None;
    }
    Some(url)
}

#[cfg(test)]
mod tests {
    proptest::proptest! {
        /// A mangled overrides file is diagnostics inside it, never a panic.
        #[test]
        fn mangled_overrides_files_never_panic(bytes in crate::fuzzing::mutated(vec![
            b"- service: checkout\n  slo: avail\n  reason: fix\n  by: ops\n  from: 2026-12-03T00:00:00Z\n  until: 2026-12-04T00:00:00+01:00\n".to_vec(),
        ], 12)) {
            if let Ok(text) = std::str::from_utf8(&bytes) {
                if let Err(d) = super::parse_overrides_file("o.yaml", text) {
                    proptest::prop_assert!(!d.is_empty());
                }
            }
        }
    }

    #[test]
    fn the_maintenance_file_is_a_list_checked_with_positions() {
        let ok = "- service: checkout\n  reason: failover drill\n  start: 2026-12-05T22:00:00Z\n  end: 2026-12-06T01:00:00Z\n- service: search\n  slo: latency\n  rrule: FREQ=WEEKLY;BYDAY=SA;BYHOUR=3\n  duration: 1h\n  time_zone: Europe/Berlin\n";
        let list = super::parse_maintenance_file("m.yaml", ok).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].id.as_str(), list[0].service.as_str()),
            ("file-1", "checkout")
        );
        assert_eq!(list[1].slo.as_deref(), Some("latency"));
        assert!(super::parse_maintenance_file("m.yaml", "")
            .unwrap()
            .is_empty());
        let bad = "- service: checkout\n  start: 2026-12-05T22:01:00Z\n  end: 2026-12-06T01:00:00Z\n- service: x\n  rrule: FREQ=DAILY\n  duration: 1h\n  time_zone: Mars/Olympus\n- reason: no service\n  start: 2026-12-05T22:00:00Z\n  end: 2026-12-06T01:00:00Z\n";
        let errs: Vec<String> = super::parse_maintenance_file("m.yaml", bad)
            .unwrap_err()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            errs,
            vec![
                "m.yaml:2:10: maintenance[0].start: a maintenance window starts and ends on a 5-minute boundary (errbudget keeps events in 5-minute buckets, and only whole buckets are removed exactly)",
                "m.yaml:7:14: maintenance[1].time_zone: \"Mars/Olympus\" is not an IANA time zone name",
                "m.yaml:8:3: maintenance[2].service: required",
            ]
        );
    }

    #[test]
    fn the_overrides_file_is_a_list_checked_with_positions() {
        let ok = "- service: checkout\n  reason: fix for INC-7\n  by: ops\n  until: 2026-12-04T00:00:00Z\n\
                  - service: search\n  slo: latency\n  reason: r\n  by: ops\n  from: 2026-12-03T00:00:00Z\n  until: 2026-12-03T06:00:00+01:00\n";
        let list = super::parse_overrides_file("etc/overrides.yaml", ok).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(
            (list[0].id.as_str(), list[0].from, list[0].slo.as_deref()),
            ("file-1", 0, None)
        );
        assert_eq!(list[1].until - list[1].from, 5 * 3_600);
        assert_eq!(list[1].source, crate::records::Source::File);
        assert!(super::parse_overrides_file("o.yaml", "")
            .unwrap()
            .is_empty());
        let bad = "- service: checkout\n  reason: x\n  until: tomorrow\n  when: now\n";
        let errs: Vec<String> = super::parse_overrides_file("o.yaml", bad)
            .unwrap_err()
            .iter()
            .map(|d| d.to_string())
            .collect();
        assert_eq!(
            errs,
            [
                "o.yaml:1:3: overrides[0]: missing required field \"by\"",
                "o.yaml:3:10: overrides[0].until: \"tomorrow\" is not an RFC 3339 time (2026-12-03T10:02:00Z)",
                "o.yaml:4:3: overrides[0]: unknown field \"when\"",
            ],
        );
        let not_a_list = super::parse_overrides_file("o.yaml", "service: x\n").unwrap_err();
        assert!(
            not_a_list[0].to_string().contains("expected a list"),
            "{not_a_list:?}"
        );
    }

    use super::*;

    #[test]
    fn an_empty_key_at_the_end_is_reported_inside_the_file() {
        // Found by the settings fuzz target: the parser placed the empty
        // key past the last line of a file without a final newline.
        let text = include_str!("../tests/fixtures/fuzz-found/settings-empty-key-at-end.yaml");
        let lines = text.split('\n').count();
        let diags = parse_settings("f.yaml", text).expect_err("invalid settings");
        assert!(
            diags.iter().all(|d| d.line >= 1 && d.line <= lines),
            "{lines} lines: {diags:?}"
        );
        assert!(diags
            .iter()
            .any(|d| d.message.contains("keys must be strings, found null")));
    }

    #[test]
    fn the_path_prefix_is_the_external_urls_path() {
        for (url, want) in [
            ("http://host/errbudget/", "/errbudget"),
            ("https://host:8443/a/b?x=1#y", "/a/b"),
            ("http://host:9465", ""),
            ("http://host/", ""),
        ] {
            assert_eq!(path_of(url), want, "{url}");
        }
    }

    fn errors(text: &str) -> Vec<String> {
        parse_settings("etc/errbudget.yaml", text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Dotted key paths written in `text`, commented-out keys included
    /// (`#   key: value` lines are read as if uncommented), so that an
    /// example may document a setting without enabling it.
    fn documented_keys(text: &str) -> Vec<String> {
        let uncommented: String = text
            .lines()
            .map(|l| {
                let trimmed = l.trim_start();
                let indent = &l[..l.len() - trimmed.len()];
                match trimmed.strip_prefix("# ") {
                    // `#   key: v`, `# - key: v`: commented YAML, not prose.
                    Some(rest)
                        if rest
                            .trim_start()
                            .trim_start_matches("- ")
                            .split_once(':')
                            .is_some_and(|(k, _)| {
                                !k.is_empty()
                                    && k.trim().chars().all(|c| c.is_ascii_lowercase() || c == '_')
                                    && !k.ends_with(' ')
                            }) =>
                    {
                        format!("{indent}{rest}")
                    }
                    _ => l.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let docs = yaml::load(&uncommented)
            .unwrap_or_else(|(p, e)| panic!("{}:{}: {e}\n{uncommented}", p.line, p.column));
        let mut cx = Cx::new("example");
        let mut out = Vec::new();
        fn walk(cx: &mut Cx<'_>, f: &Field<'_, '_>, path: &str, out: &mut Vec<String>) {
            out.push(path.to_string());
            if path.ends_with("headers") {
                return;
            }
            // Errors of this throwaway context are irrelevant: a scalar is
            // neither a mapping nor a list and simply ends the walk.
            let nodes: Vec<&yaml::Node<'_>> = match Map::open_any(cx, f.node, path) {
                Some(_) => vec![f.node],
                None => f
                    .seq(cx)
                    .map(|items| items.iter().map(|i| i.node).collect())
                    .unwrap_or_default(),
            };
            for node in nodes {
                if let Some(m) = Map::open_any(cx, node, path) {
                    for (k, v) in m.entries() {
                        walk(cx, &v, &format!("{path}.{}", k.value), out);
                    }
                }
            }
        }
        let top = Map::open_any(&mut cx, &docs[0], "").expect("a mapping");
        for (k, v) in top.entries() {
            walk(&mut cx, &v, k.value, &mut out);
        }
        out
    }

    #[test]
    fn the_example_documents_every_setting_the_parser_reads() {
        let text = include_str!("../config/errbudget.example.yaml");
        parse_settings("config/errbudget.example.yaml", text)
            .unwrap_or_else(|d| panic!("the example does not load: {d:?}"));
        let documented = documented_keys(text);
        let missing: Vec<String> = settings_keys()
            .into_iter()
            .filter(|k| !documented.contains(k))
            .collect();
        assert!(
            missing.is_empty(),
            "config/errbudget.example.yaml does not document: {}",
            missing.join(", ")
        );
        let unknown: Vec<&String> = documented
            .iter()
            .filter(|k| !settings_keys().contains(k) && !k.contains(".headers."))
            .collect();
        assert!(
            unknown.is_empty(),
            "the example documents keys the parser rejects: {unknown:?}"
        );
    }

    #[test]
    fn external_url_defaults_to_the_listen_address() {
        let web = |listen: &str, external: Option<&str>| WebSettings {
            listen_address: listen.into(),
            config_file: None,
            external_url: external.map(String::from),
        };
        assert_eq!(
            web("127.0.0.1:9465", None).external_url(),
            "http://127.0.0.1:9465"
        );
        assert_eq!(
            web(":9465", None).external_url_on(Some("slo-1")),
            "http://slo-1:9465"
        );
        assert_eq!(
            web("0.0.0.0:9465", None).external_url(),
            "http://localhost:9465"
        );
        assert_eq!(
            web(":9465", Some("https://eb.example.com/")).external_url_on(Some("x")),
            "https://eb.example.com"
        );
        assert!(is_loopback_url("http://127.0.0.1:9465"));
        assert!(is_loopback_url("http://localhost:9465/x"));
        assert!(is_loopback_url("http://[::1]:9465"));
        assert!(!is_loopback_url("https://eb.example.com"));
        assert!(!is_loopback_url("http://10.0.0.5:9465"));
    }

    #[test]
    fn defaults_fill_what_is_not_given() {
        let s = parse_settings(
            "etc/errbudget.yaml",
            "prometheus:\n  url: http://prom:9090\n",
        )
        .unwrap();
        assert_eq!(s.prometheus.client.timeout, Duration::from_secs(30));
        assert_eq!(s.prometheus.max_concurrent_queries, 8);
        assert_eq!(s.evaluation_interval, Duration::from_secs(30));
        assert_eq!(s.alerting.resend_interval, Duration::from_secs(60));
        assert_eq!(s.web.listen_address, "127.0.0.1:9465");
        assert!(s.slo_files.is_empty());
        assert_eq!(s.path, PathBuf::from("etc/errbudget.yaml"));
    }

    #[test]
    fn a_client_file_takes_a_client_block_without_url_and_timeout() {
        let c = parse_client_file(
            "/etc/eb/client.yml",
            "basic_auth:\n  username: ci\n  password_file: pw\ntls:\n  ca_file: /ca.pem\n",
        )
        .unwrap();
        let auth = c.basic_auth.unwrap();
        assert_eq!(auth.username, "ci");
        assert_eq!(auth.password_file, PathBuf::from("/etc/eb/pw"));
        assert_eq!(c.tls.ca_file, Some(PathBuf::from("/ca.pem")));
        assert_eq!(
            parse_client_file("c.yml", "").unwrap(),
            HttpClientSettings::default()
        );
        let errs =
            parse_client_file("c.yml", "url: http://x\nheaders:\n  \"bad name\": v\n").unwrap_err();
        let text: Vec<String> = errs.iter().map(|d| d.to_string()).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(
            text[0].starts_with("c.yml:1:1: ") && text[0].contains("url"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("c.yml:3:3: headers: invalid header name"),
            "{text:?}"
        );
    }

    #[test]
    fn client_blocks_resolve_paths_against_the_config_dir() {
        let text = r#"
prometheus:
  url: https://mimir.example.com/prometheus
  timeout: 1m
  headers: {X-Scope-OrgID: tenant-1}
  basic_auth: {username: errbudget, password_file: secrets/pw}
  tls: {ca_file: /etc/ca.pem, cert_file: tls/c.pem, key_file: tls/k.pem, server_name: mimir, insecure_skip_verify: true}
  max_concurrent_queries: 2
slo_files: [slos/*.yaml]
alerting:
  alertmanagers:
    - url: http://am:9093
      bearer_token_file: am-token
  webhooks:
    - {url: "https://hooks.example.com/x", timeout: 5s}
  resend_interval: 5m
web: {listen_address: ":9465", config_file: web.yaml}
"#;
        let s = parse_settings("etc/errbudget.yaml", text).unwrap();
        let c = &s.prometheus.client;
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!(
            c.headers.get("X-Scope-OrgID").map(String::as_str),
            Some("tenant-1")
        );
        assert_eq!(
            c.basic_auth,
            Some(BasicAuth {
                username: "errbudget".into(),
                password_file: PathBuf::from("etc/secrets/pw"),
            })
        );
        assert_eq!(c.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.tls.cert_file, Some(PathBuf::from("etc/tls/c.pem")));
        assert!(c.tls.insecure_skip_verify);
        assert_eq!(s.prometheus.max_concurrent_queries, 2);
        assert_eq!(
            s.alerting.alertmanagers[0].bearer_token_file,
            Some(PathBuf::from("etc/am-token"))
        );
        assert_eq!(s.alerting.webhooks[0].timeout, Duration::from_secs(5));
        assert_eq!(s.alerting.resend_interval, Duration::from_secs(300));
        assert_eq!(s.web.config_file, Some(PathBuf::from("etc/web.yaml")));
        assert_eq!(s.slo_files, ["slos/*.yaml"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_position() {
        let text = "\
prometheus:
  url: ftp://prom
  timeout: soon
  partial_response: true
  max_concurrent_queries: 0
  basic_auth: {username: u}
evaluation_intervl: 30s
alerting:
  alertmanagers:
    - url: not a url
web:
  listen_address: localhost
";
        assert_eq!(
            errors(text),
            [
                "etc/errbudget.yaml:2:8: prometheus.url: \"ftp://prom\" must be an http or https URL with a host (scheme is ftp)",
                "etc/errbudget.yaml:3:12: prometheus.timeout: invalid duration \"soon\": expected number at 0 (expected e.g. 5m, 1h30m, 30d)",
                "etc/errbudget.yaml:4:3: prometheus: unknown field \"partial_response\"",
                "etc/errbudget.yaml:5:27: prometheus.max_concurrent_queries: must be at least 1",
                "etc/errbudget.yaml:6:15: prometheus.basic_auth: missing required field \"password_file\"",
                "etc/errbudget.yaml:7:1: top level: unknown field \"evaluation_intervl\", did you mean \"evaluation_interval\"?",
                "etc/errbudget.yaml:10:12: alerting.alertmanagers[0].url: invalid URL \"not a url\": relative URL without a base",
                "etc/errbudget.yaml:12:19: web.listen_address: \"localhost\" is not host:port, e.g. 127.0.0.1:9465",
            ]
        );
    }

    #[test]
    fn missing_prometheus_and_conflicting_auth() {
        assert_eq!(
            errors("web: {}\n"),
            ["etc/errbudget.yaml:1:1: top level: missing required field \"prometheus\""]
        );
        assert_eq!(
            errors(""),
            ["etc/errbudget.yaml:1:1: empty settings file: prometheus.url is required"]
        );
        assert_eq!(
            errors("prometheus:\n  url: http://p\n  basic_auth: {username: u, password_file: p}\n  bearer_token_file: t\n  tls: {cert_file: c}\n"),
            [
                "etc/errbudget.yaml:3:3: prometheus: give at most one of basic_auth and bearer_token_file",
                "etc/errbudget.yaml:5:8: prometheus.tls: cert_file and key_file go together",
            ]
        );
    }
}
