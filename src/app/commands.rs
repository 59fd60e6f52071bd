//! The one-shot subcommands: `check`, `eval`, `backtest`, `rules`,
//! `convert`, `gate` and `healthcheck`. Each returns how it ended: an
//! [`Outcome`] (its exit code when there is nothing more to say) or a
//! [`Failure`], which `main` alone prints and turns into an exit code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::gate;
use crate::app::load;
use crate::cli::{GateOutput, OutputFormat, ReportOutput};
use crate::diag::Diagnostic;
use crate::eval::engine::Engine;
use crate::metrics::DaemonMetrics;
use crate::prom::Client;
use crate::render::{json, table};
use crate::state::State;
use crate::time::unix_now;

/// A command that ran to its end: 0, or the code of a decision it printed
/// (`gate`: 1 frozen, 2 cannot tell; `eval`: 1 when an SLO failed).
pub type Outcome = u8;

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad usage: a flag or argument that cannot be used.
    #[error("{0}")]
    Usage(String),
    /// The settings or specs could not be loaded; every problem is listed.
    #[error("{}", load::join(.0))]
    Load(Vec<Diagnostic>),
    /// The files loaded but hold problems the command reports as its
    /// result (`check`, `convert`); `summary` closes the list.
    #[error("{}\n{summary}", load::join(.problems))]
    Problems {
        problems: Vec<Diagnostic>,
        summary: String,
    },
    #[error(transparent)]
    Client(#[from] load::PromClientError),
    /// The rules cannot be written for these SLOs.
    #[error("{}", .0.join("\n"))]
    Rules(Vec<String>),
    #[error("cannot encode JSON")]
    Json(#[source] serde_json::Error),
    #[error("{0} of the replayed evaluations failed: figures around them are incomplete")]
    Incomplete(usize),
    #[error("unhealthy")]
    Unhealthy(#[source] reqwest::Error),
    /// The client `gate` or `healthcheck` would ask with.
    #[error(transparent)]
    Endpoint(#[from] load::EndpointError),
    /// The daemon stopped on an error (its causes are in the message).
    #[error("errbudget: {0:#}")]
    Run(anyhow::Error),
    #[error("errbudget: cannot render the man page")]
    Man(#[source] std::io::Error),
}

impl Failure {
    /// 2 for what stops a command before it starts (usage, files, the
    /// client), 1 for a result that is not good.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::Load(_) | Failure::Client(_) | Failure::Endpoint(_) => 2,
            Failure::Problems { .. }
            | Failure::Rules(_)
            | Failure::Json(_)
            | Failure::Incomplete(_)
            | Failure::Unhealthy(_)
            | Failure::Run(_)
            | Failure::Man(_) => 1,
        }
    }
}

pub fn check(config_file: Option<&Path>, specs: &[PathBuf]) -> Result<Outcome, Failure> {
    if config_file.is_none() && specs.is_empty() {
        return Err(Failure::Usage(
            "nothing to check: give --config.file FILE or spec files".into(),
        ));
    }
    let mut problems = Vec::new();
    let mut count = 0;
    if let Some(path) = config_file {
        // The same loading `run` does up to binding its port.
        let metrics = Arc::new(DaemonMetrics::new());
        match load::prepare(path, None, &metrics) {
            Ok(p) => count += p.slos.len(),
            Err(d) => problems.extend(d),
        }
    }
    if !specs.is_empty() {
        match load::load_specs(specs) {
            Ok(slos) => count += slos.len(),
            Err(d) => problems.extend(d),
        }
    }
    if problems.is_empty() {
        crate::outln!("OK: {count} SLOs");
        Ok(0)
    } else {
        let summary = format!("{} problem(s) found", problems.len());
        Err(Failure::Problems { problems, summary })
    }
}

/// The engine `eval` and `backtest` evaluate with: the client and alerting
/// configured as in `run`; `wrap` puts the Prometheus client behind what
/// the command needs (as is for `eval`, a replay cache for `backtest`).
fn engine<C: crate::prom::QueryApi>(
    config_file: &Path,
    wrap: impl FnOnce(Client) -> C,
) -> Result<Engine<C>, Failure> {
    let (settings, slos) = load::settings_and_specs(config_file).map_err(Failure::Load)?;
    engine_of(&settings, slos, wrap)
}

fn engine_of<C: crate::prom::QueryApi>(
    settings: &crate::config::Settings,
    slos: Vec<crate::model::Slo>,
    wrap: impl FnOnce(Client) -> C,
) -> Result<Engine<C>, Failure> {
    let metrics = Arc::new(DaemonMetrics::new());
    let client = load::prom_client(settings, &metrics)?;
    let mut engine = Engine::new(
        Arc::new(wrap(client)),
        slos,
        Arc::new(State::new()),
        metrics,
    );
    load::configure_alerting(&mut engine, settings);
    engine.set_records(Arc::new(stored_records(settings)?));
    Ok(engine)
}

/// The overrides a running daemon with these settings would hold: those
/// of the overrides file, and those made through its API when its state
/// directory has a records file (read, never written). A records file
/// that does not load is left out with a warning; the daemon reports it.
fn stored_records(settings: &crate::config::Settings) -> Result<crate::records::Records, Failure> {
    let mut book = match &settings.storage.path {
        Some(dir) => crate::store::load_records(dir).unwrap_or_else(|e| {
            tracing::warn!(file = %crate::store::records_path_in(dir).display(), reason = %e, "ignoring the records file");
            None
        }),
        None => None,
    }
    .unwrap_or_default();
    book.set_from_files(load::load_overrides(settings).map_err(Failure::Load)?);
    Ok(crate::records::Records::new(book))
}

fn print_json(v: &serde_json::Value) -> Result<(), Failure> {
    let s = serde_json::to_string_pretty(v).map_err(Failure::Json)?;
    crate::outln!("{s}");
    Ok(())
}

pub async fn eval(
    config_file: &Path,
    at: Option<&str>,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let at = match at.map(crate::cli::parse_time).transpose() {
        Ok(t) => t.unwrap_or_else(unix_now),
        Err(e) => return Err(Failure::Usage(e)),
    };
    let mut engine = engine(config_file, |c| c)?;
    let failed = engine.cycle(at).await;
    let snapshot = engine.state().snapshot();
    match format {
        OutputFormat::Json => {
            let mut doc = json::snapshot_json(&snapshot);
            engine
                .records()
                .read(|book| json::add_overrides(&mut doc, book, at));
            print_json(&doc)?
        }
        OutputFormat::Table => crate::console::out(format_args!("{}", table::table(&snapshot))),
    }
    // Each failed SLO says why in its own row or document.
    Ok(if failed > 0 { 1 } else { 0 })
}

pub async fn backtest(
    config_file: &Path,
    from: &str,
    to: &str,
    step: std::time::Duration,
    format: OutputFormat,
) -> Result<Outcome, Failure> {
    let (from, to) = match (crate::cli::parse_time(from), crate::cli::parse_time(to)) {
        (Ok(f), Ok(t)) if f <= t => (f, t),
        (Ok(_), Ok(_)) => return Err(Failure::Usage("--from must not be after --to".into())),
        (Err(e), _) | (_, Err(e)) => return Err(Failure::Usage(e)),
    };
    let step_secs = step.as_secs().max(1);
    let mut engine = engine(config_file, |c| {
        crate::backtest::Prefetch::new(c, from, to, step_secs)
    })?;
    let report = crate::backtest::replay(&mut engine, from, to, step_secs).await;
    match format {
        OutputFormat::Json => {
            print_json(&crate::backtest::report::json(&report, from, to, step_secs))?
        }
        OutputFormat::Table => {
            crate::console::out(format_args!("{}", crate::backtest::report::table(&report)))
        }
    }
    if report.failed_cycles > 0 {
        return Err(Failure::Incomplete(report.failed_cycles));
    }
    Ok(0)
}

/// The report of the period `name` for every SLO (of `service`), one
/// replay per distinct period (calendar SLOs in different zones differ).
pub async fn report(
    config_file: &Path,
    name: &str,
    service: Option<&str>,
    step: std::time::Duration,
    format: ReportOutput,
) -> Result<Outcome, Failure> {
    let (settings, slos) = load::settings_and_specs(config_file).map_err(Failure::Load)?;
    let slos: Vec<_> = slos
        .into_iter()
        .filter(|s| service.is_none_or(|want| s.service == want))
        .collect();
    if slos.is_empty() {
        return Err(Failure::Usage(match service {
            Some(s) => format!("no SLO of service {s:?} in the specs"),
            None => "the specs define no SLO".into(),
        }));
    }
    let now = unix_now();
    let mut groups: Vec<(crate::calendar::Bounds, Vec<crate::model::Slo>)> = Vec::new();
    for slo in slos {
        let Some(b) = crate::report::period_of(&slo, name) else {
            return Err(Failure::Usage(format!(
                "{}: {}/{}: {name:?} names no period of its {}: give 2026-11 for a month, 2026-Q4 for a quarter, 2026-W48 for an ISO week",
                slo.origin,
                slo.service,
                slo.name,
                slo.period_text()
            )));
        };
        if b.end > now {
            return Err(Failure::Usage(format!(
                "{name} ends at {} ({}/{}): a report is of a closed period",
                crate::time::rfc3339(b.end),
                slo.service,
                slo.name
            )));
        }
        match groups.iter_mut().find(|(g, _)| *g == b) {
            Some((_, v)) => v.push(slo),
            None => groups.push((b, vec![slo])),
        }
    }
    let step_secs = step.as_secs().max(1);
    let mut report = crate::report::PeriodReport {
        name: name.to_string(),
        step: step_secs,
        slos: Vec::new(),
        failed_cycles: 0,
    };
    for (bounds, slos) in groups {
        let mut engine = engine_of(&settings, slos, |c| {
            crate::backtest::Prefetch::new(c, bounds.start, bounds.end, step_secs)
        })?;
        let (mut slos, failed) =
            crate::report::replay_period(&mut engine, &bounds, step_secs).await;
        report.slos.append(&mut slos);
        report.failed_cycles += failed;
    }
    match format {
        ReportOutput::Json => print_json(&crate::report::render::json(&report))?,
        ReportOutput::Markdown => {
            crate::console::out(format_args!("{}", crate::report::render::markdown(&report)))
        }
        ReportOutput::Html => {
            crate::console::out(format_args!("{}", crate::report::render::html(&report)))
        }
    }
    if report.failed_cycles > 0 {
        return Err(Failure::Incomplete(report.failed_cycles));
    }
    Ok(0)
}

pub fn rules(config_file: &Path, opts: &crate::rules::Options) -> Result<Outcome, Failure> {
    let (_, slos) = load::settings_and_specs(config_file).map_err(Failure::Load)?;
    let text = crate::rules::render(&slos, opts).map_err(Failure::Rules)?;
    crate::console::out(format_args!("{text}"));
    Ok(0)
}

/// Prints the specs as errbudget's own format; the specs' problems are
/// reported as `check` reports them.
pub fn convert(config_file: Option<&Path>, specs: &[PathBuf]) -> Result<Outcome, Failure> {
    let loaded = match (config_file, specs.is_empty()) {
        (Some(path), true) => load::settings_and_specs(path).map(|(_, slos)| slos),
        (None, false) => load::load_specs(specs),
        _ => {
            return Err(Failure::Usage(
                "give either --config.file FILE or spec files to convert".into(),
            ))
        }
    };
    match loaded {
        Ok(slos) => {
            crate::console::out(format_args!("{}", crate::convert::render(&slos)));
            Ok(0)
        }
        Err(problems) => {
            let summary = format!("{} problem(s) found: nothing converted", problems.len());
            Err(Failure::Problems { problems, summary })
        }
    }
}

/// Asks a running errbudget whether `service` (and `slo`) may deploy, and
/// prints the answer for a CI log or, with `json`, for a pipeline.
pub async fn gate(
    url: &str,
    service: &str,
    slo: Option<&str>,
    timeout: std::time::Duration,
    http_config: Option<&Path>,
    output: GateOutput,
) -> Result<Outcome, Failure> {
    let client = load::endpoint_client(http_config, timeout)?;
    let endpoint = format!("{}/api/v1/slos", url.trim_end_matches('/'));
    let parsed = crate::httpclient::parse_url(&endpoint, "errbudget");
    let body = async {
        let url = parsed.map_err(|e| e.to_string())?;
        let answer = async {
            // The daemon narrows the list (an older one ignores this and
            // `decide` filters all the same).
            let mut query = vec![("service", service)];
            query.extend(slo.map(|s| ("slo", s)));
            client
                .get(url)
                .query(&query)
                .timeout(timeout)
                .send()
                .await?
                .error_for_status()?
                .json::<serde_json::Value>()
                .await
        };
        // Without the URL: it may carry credentials.
        answer.await.map_err(crate::httpclient::describe)
    };
    let endpoint = crate::diag::redact(&endpoint);
    // "cannot tell" is the gate's answer, on stdout where CI logs read it.
    let (doc, answer) = match body.await {
        Ok(doc) => {
            let answer = gate::decide(&doc, service, slo);
            (doc, answer)
        }
        Err(e) => (
            serde_json::Value::Null,
            gate::Answer::cannot_tell(format!("{endpoint}: {e}")),
        ),
    };
    match output {
        GateOutput::Text => {
            for line in answer.lines() {
                crate::outln!("{line}");
            }
        }
        GateOutput::Json => print_json(&answer.json(&endpoint, service, slo, &doc))?,
    }
    Ok(answer.decision.code())
}

/// For a container's HEALTHCHECK: 0 when `url` answers 2xx.
pub async fn healthcheck(
    url: &str,
    timeout: std::time::Duration,
    http_config: Option<&Path>,
) -> Result<Outcome, Failure> {
    let client = load::endpoint_client(http_config, timeout)?;
    let url = crate::httpclient::parse_url(url, "health check")
        .map_err(|e| Failure::Usage(e.to_string()))?;
    client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| Failure::Unhealthy(e.without_url()))?;
    Ok(0)
}
