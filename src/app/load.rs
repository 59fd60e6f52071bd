//! Reading the files a command or the daemon starts from: the settings,
//! the spec files their globs name, the web config; and building the
//! clients those files describe. The format readers (`config`, `spec`,
//! `web::config`) take text; only this module opens files for them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use crate::alert::dispatch::{DeliveryOptions, Dispatcher};
use crate::config::Settings;
use crate::diag::Diagnostic;
use crate::eval::engine::Engine;
use crate::metrics::DaemonMetrics;
use crate::model::Slo;
use crate::prom::Client;
use crate::spec;

/// Reads and parses spec files together (see [`spec::parse_sources`]). A
/// directory stands for every `.yml` / `.yaml` file below it, as Sloth
/// reads `-i DIR`.
pub fn load_specs(paths: &[PathBuf]) -> Result<Vec<Slo>, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        for f in expand(p, &mut diags) {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    let mut texts = Vec::new();
    for p in &files {
        let file = p.display().to_string();
        match crate::readfile::read_text(p, crate::readfile::SPEC) {
            // A file that defines nothing is a mistake (an empty file, a
            // secret or a device matched by a glob), never "0 SLOs". A file
            // of OpenSLO SLIs or alert policies, or a catalogue, is not.
            Ok(text) if spec::defines_nothing(&text) => {
                diags.push(Diagnostic::whole_file(&file, spec::NO_SLO));
            }
            Ok(text) => texts.push((file, text)),
            Err(e) => diags.push(e.diagnostic(&file)),
        }
    }
    let sources: Vec<(&str, &str)> = texts
        .iter()
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    match spec::parse_sources(&sources) {
        Ok(slos) if diags.is_empty() => Ok(slos),
        Ok(_) => Err(diags),
        Err(d) => {
            diags.extend(d);
            Err(diags)
        }
    }
}

/// A file as itself; a directory as its `.yml` / `.yaml` files, recursively,
/// sorted (Sloth's discovery skips other extensions too).
fn expand(path: &Path, diags: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    if !path.is_dir() {
        return vec![path.to_path_buf()];
    }
    let mut out = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                diags.push(Diagnostic::whole_file(
                    &dir.display().to_string(),
                    format!("cannot read the directory: {e}"),
                ));
                continue;
            }
        };
        for entry in entries.filter_map(Result::ok) {
            let p = entry.path();
            if p.is_dir() {
                pending.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("yml") || e.eq_ignore_ascii_case("yaml"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Settings, then every spec file their `slo_files` globs name (relative to
/// the config file's directory). A glob matching nothing is a problem: it is
/// almost always a typo that would silently drop SLOs.
pub fn settings_and_specs(config_path: &Path) -> Result<(Settings, Vec<Slo>), Vec<Diagnostic>> {
    let file = config_path.display().to_string();
    let text = crate::readfile::read_text(config_path, crate::readfile::SETTINGS)
        .map_err(|e| vec![e.diagnostic(&file)])?;
    let (settings, globs) = crate::config::parse_settings_with_positions(&file, &text)?;
    let dir = config_path.parent().unwrap_or(Path::new(""));
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut diags = Vec::new();
    for (pattern, pos) in settings.slo_files.iter().zip(&globs) {
        let full = dir.join(pattern);
        let full_text = full.to_string_lossy();
        let matched = match glob::glob(&full_text) {
            Ok(m) => m,
            Err(e) => {
                diags.push(Diagnostic::new(
                    &file,
                    pos.line,
                    pos.column,
                    format!("slo_files: invalid glob {pattern:?}: {e}"),
                ));
                continue;
            }
        };
        // A directory matched by the glob stands for its spec files;
        // anything else that is not a regular file (a device, a FIFO) is
        // read, and refused by name there.
        let mut found: Vec<PathBuf> = Vec::new();
        for m in matched.filter_map(Result::ok) {
            if m.is_dir() {
                found.extend(expand(&m, &mut diags));
            } else {
                found.push(m);
            }
        }
        if found.is_empty() {
            diags.push(Diagnostic::new(
                &file,
                pos.line,
                pos.column,
                format!("slo_files: {pattern:?} matches no file (looked for {full_text})"),
            ));
        }
        found.sort();
        for p in found {
            // Overlapping globs must not load a file twice (that would be
            // reported as duplicate SLOs).
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    match load_specs(&paths) {
        Ok(slos) if diags.is_empty() => Ok((settings, slos)),
        Ok(_) => Err(diags),
        Err(d) => {
            diags.extend(d);
            Err(diags)
        }
    }
}

/// Loads settings and specs, joining every diagnostic into one message.
pub fn load_config(path: &Path) -> Result<(Settings, Vec<Slo>), String> {
    settings_and_specs(path).map_err(|diags| join(&diags))
}

pub fn join(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `run` reads and builds from its files before it binds the port:
/// settings and specs, the Prometheus client (credential and TLS files),
/// the alert receivers and the web config. `check` runs exactly this, so
/// any config it accepts starts.
pub struct Prepared {
    pub settings: Settings,
    pub slos: Vec<Slo>,
    pub client: Arc<Client>,
    pub web: Option<crate::web::WebConfig>,
    /// From `policy.overrides_file` and `policy.maintenance_file`.
    pub overrides: crate::records::FromFiles,
}

/// Loads and builds everything of [`Prepared`], reporting every problem
/// found (once settings and specs are valid, client, receivers and web
/// config are all tried).
pub fn prepare(
    config_file: &Path,
    web_config_file: Option<&Path>,
    metrics: &Arc<DaemonMetrics>,
) -> Result<Prepared, Vec<Diagnostic>> {
    let (settings, slos) = settings_and_specs(config_file)?;
    let file = config_file.display().to_string();
    let mut problems = Vec::new();
    let client = prom_client(&settings, metrics)
        .map(Arc::new)
        .map_err(|e| problems.push(Diagnostic::whole_file(&file, crate::diag::chain(&e))))
        .ok();
    if let Err(e) = crate::alert::dispatch::check_receivers(&settings.alerting) {
        problems.push(Diagnostic::whole_file(&file, crate::diag::chain(&e)));
    }
    let web = match web_config_file.or(settings.web.config_file.as_deref()) {
        None => None,
        Some(path) => match crate::web::config::load(path) {
            Ok(w) => Some(w),
            Err(crate::web::WebConfigError::Invalid(d)) => {
                problems.extend(d);
                None
            }
        },
    };
    let overrides = load_overrides(&settings)
        .map_err(|d| problems.extend(d))
        .unwrap_or_default();
    match client {
        Some(client) if problems.is_empty() => Ok(Prepared {
            settings,
            slos,
            client,
            web,
            overrides,
        }),
        _ => Err(problems),
    }
}

/// The Prometheus client of the settings, as `run`, `eval` and `backtest`
/// all use it.
pub fn prom_client(
    settings: &Settings,
    metrics: &Arc<DaemonMetrics>,
) -> Result<Client, PromClientError> {
    let client = Client::new(
        &settings.prometheus.client,
        settings.prometheus.max_concurrent_queries.max(1),
        metrics.clone(),
    )
    .map_err(PromClientError)?
    // Retries must never make a cycle outlast the next one.
    .with_retry_budget(settings.evaluation_interval);
    Ok(client)
}

/// What `policy.overrides_file` and `policy.maintenance_file` hold
/// (nothing without them); every problem of both.
pub fn load_overrides(settings: &Settings) -> Result<crate::records::FromFiles, Vec<Diagnostic>> {
    let read = |path: &std::path::Path| {
        let name = path.display().to_string();
        crate::readfile::read_text(path, crate::readfile::SETTINGS)
            .map(|text| (name.clone(), text))
            .map_err(|e| vec![e.diagnostic(&name)])
    };
    let overrides = match &settings.policy.overrides_file {
        None => Ok(vec![]),
        Some(path) => read(path).and_then(|(n, t)| crate::config::parse_overrides_file(&n, &t)),
    };
    let maintenance = match &settings.policy.maintenance_file {
        None => Ok(vec![]),
        Some(path) => read(path).and_then(|(n, t)| crate::config::parse_maintenance_file(&n, &t)),
    };
    match (overrides, maintenance) {
        (Ok(overrides), Ok(maintenance)) => Ok(crate::records::FromFiles {
            overrides,
            maintenance,
        }),
        (a, b) => Err(a.err().into_iter().chain(b.err()).flatten().collect()),
    }
}

/// The settings' Prometheus client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the Prometheus client")]
pub struct PromClientError(#[source] pub crate::httpclient::ClientError);

/// Applies the alerting part of the settings to the engine.
pub fn configure_alerting<C: crate::prom::QueryApi>(engine: &mut Engine<C>, settings: &Settings) {
    let a = &settings.alerting;
    engine.set_alerting(
        a.pending_for.as_secs() as i64,
        a.resend_interval.as_secs() as i64,
        crate::alert::payload::BuildOptions {
            external_url: settings.web.external_url(),
            evaluation_failing_after: a.evaluation_failing_after.as_secs() as i64,
        },
    );
}

/// The dispatcher for the configured receivers, if any.
pub fn dispatcher(
    settings: &Settings,
    metrics: &Arc<DaemonMetrics>,
) -> anyhow::Result<Option<Arc<Dispatcher>>> {
    let a = &settings.alerting;
    if a.alertmanagers.is_empty() && a.webhooks.is_empty() {
        return Ok(None);
    }
    let options = DeliveryOptions {
        external_url: settings.web.external_url(),
        ..DeliveryOptions::default()
    };
    let dispatcher =
        Dispatcher::new(a, options, metrics.clone()).context("cannot set up alert delivery")?;
    Ok(Some(Arc::new(dispatcher)))
}

/// The client `gate` and `healthcheck` reach a running errbudget with:
/// `--http.config.file`'s credentials and TLS if given, `timeout` per
/// request either way.
pub fn endpoint_client(
    file: Option<&Path>,
    timeout: std::time::Duration,
) -> Result<crate::httpclient::HttpClient, EndpointError> {
    let mut settings = match file {
        None => crate::config::HttpClientSettings::default(),
        Some(path) => {
            let name = path.display().to_string();
            let text = crate::readfile::read_text(path, crate::readfile::CLIENT_FILE)
                .map_err(|e| EndpointError::Load(vec![e.diagnostic(&name)]))?;
            crate::config::parse_client_file(&name, &text).map_err(EndpointError::Load)?
        }
    };
    settings.timeout = timeout;
    crate::httpclient::HttpClient::new(&settings).map_err(EndpointError::Client)
}

/// Why the client of `gate` or `healthcheck` could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("{}", join(.0))]
    Load(Vec<Diagnostic>),
    #[error("cannot set up the HTTP client of --http.config.file")]
    Client(#[source] crate::httpclient::ClientError),
}
