//! The one-shot subcommands: `check`, `eval`, `backtest`, `rules`,
//! `convert` and `gate`. Each returns its exit code; `main` only prints errors and exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::OutputFormat;
use crate::daemon::{load_config, unix_now};
use crate::engine::Engine;
use crate::metrics::DaemonMetrics;
use crate::output;
use crate::prom::Client;
use crate::state::State;

pub fn check(config_file: Option<&Path>, specs: &[PathBuf]) -> i32 {
    let mut problems = Vec::new();
    let mut count = 0;
    if let Some(path) = config_file {
        // The same loading `run` does up to binding its port.
        let metrics = Arc::new(DaemonMetrics::new());
        match crate::daemon::prepare(path, None, &metrics) {
            Ok(p) => count += p.slos.len(),
            Err(d) => problems.extend(d),
        }
    }
    if !specs.is_empty() {
        match crate::spec::load_specs(specs) {
            Ok(slos) => count += slos.len(),
            Err(d) => problems.extend(d),
        }
    }
    if config_file.is_none() && specs.is_empty() {
        crate::errln!("nothing to check: give --config.file FILE or spec files");
        return 2;
    }
    if problems.is_empty() {
        crate::outln!("OK: {count} SLOs");
        0
    } else {
        for p in &problems {
            crate::errln!("{p}");
        }
        crate::errln!("{} problem(s) found", problems.len());
        1
    }
}

/// The engine `eval` and `backtest` evaluate with, alerting configured as
/// in `run`; `wrap` puts the Prometheus client behind what the command
/// needs (as is for `eval`, a replay cache for `backtest`).
fn engine<C: crate::prom::QueryApi>(
    config_file: &Path,
    wrap: impl FnOnce(Client) -> C,
) -> Result<Engine<C>, String> {
    let (settings, slos) = load_config(config_file)?;
    let metrics = Arc::new(DaemonMetrics::new());
    let client = Client::new(
        &settings.prometheus.client,
        settings.prometheus.max_concurrent_queries.max(1),
        metrics.clone(),
    )
    .map_err(|e| format!("cannot set up the Prometheus client: {e}"))?;
    let mut engine = Engine::new(
        Arc::new(wrap(client)),
        slos,
        Arc::new(State::new()),
        metrics,
    );
    crate::daemon::configure_alerting(&mut engine, &settings);
    Ok(engine)
}

/// Prints pretty JSON; 0 on success, 1 if it cannot be encoded.
fn print_json(v: &serde_json::Value) -> i32 {
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            crate::outln!("{s}");
            0
        }
        Err(e) => {
            crate::errln!("cannot encode JSON: {e}");
            1
        }
    }
}

pub async fn eval(config_file: &Path, at: Option<&str>, format: OutputFormat) -> i32 {
    let at = match at.map(crate::cli::parse_time).transpose() {
        Ok(t) => t.unwrap_or_else(unix_now),
        Err(e) => {
            crate::errln!("{e}");
            return 2;
        }
    };
    let mut engine = match engine(config_file, |c| c) {
        Ok(e) => e,
        Err(e) => {
            crate::errln!("{e}");
            return 2;
        }
    };
    let failed = engine.cycle(at).await;
    let snapshot = engine.state().snapshot();
    match format {
        OutputFormat::Json => {
            if print_json(&output::snapshot_json(&snapshot)) != 0 {
                return 1;
            }
        }
        OutputFormat::Table => crate::console::out(format_args!("{}", output::table(&snapshot))),
    }
    if failed > 0 {
        1
    } else {
        0
    }
}

pub async fn backtest(
    config_file: &Path,
    from: &str,
    to: &str,
    step: std::time::Duration,
    format: OutputFormat,
) -> i32 {
    let (from, to) = match (crate::cli::parse_time(from), crate::cli::parse_time(to)) {
        (Ok(f), Ok(t)) if f <= t => (f, t),
        (Ok(_), Ok(_)) => {
            crate::errln!("--from must not be after --to");
            return 2;
        }
        (Err(e), _) | (_, Err(e)) => {
            crate::errln!("{e}");
            return 2;
        }
    };
    let step_secs = step.as_secs().max(1);
    let mut engine = match engine(config_file, |c| {
        crate::backtest::Prefetch::new(c, from, to, step_secs)
    }) {
        Ok(e) => e,
        Err(e) => {
            crate::errln!("{e}");
            return 2;
        }
    };
    let report = crate::backtest::replay(&mut engine, from, to, step_secs).await;
    match format {
        OutputFormat::Json => {
            if print_json(&output::backtest_json(&report, from, to, step_secs)) != 0 {
                return 1;
            }
        }
        OutputFormat::Table => {
            crate::console::out(format_args!("{}", output::backtest_table(&report)))
        }
    }
    if report.failed_cycles > 0 {
        crate::errln!(
            "{} of the replayed evaluations failed: figures around them are incomplete",
            report.failed_cycles
        );
        return 1;
    }
    0
}

pub fn rules(config_file: &Path, opts: &crate::rules::Options) -> i32 {
    let slos = match load_config(config_file) {
        Ok((_, slos)) => slos,
        Err(e) => {
            crate::errln!("{e}");
            return 2;
        }
    };
    match crate::rules::render(&slos, opts) {
        Ok(text) => {
            crate::console::out(format_args!("{text}"));
            0
        }
        Err(errs) => {
            for e in errs {
                eprintln!("{e}");
            }
            1
        }
    }
}

/// Prints the specs as errbudget's own format; 0 done, 1 the specs have
/// problems (printed as `check` prints them), 2 bad usage.
pub fn convert(config_file: Option<&Path>, specs: &[PathBuf]) -> i32 {
    let loaded = match (config_file, specs.is_empty()) {
        (Some(path), true) => crate::spec::load(path).map(|(_, slos)| slos),
        (None, false) => crate::spec::load_specs(specs),
        _ => {
            eprintln!("give either --config.file FILE or spec files to convert");
            return 2;
        }
    };
    match loaded {
        Ok(slos) => {
            crate::console::out(format_args!("{}", crate::convert::render(&slos)));
            0
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("{} problem(s) found: nothing converted", problems.len());
            1
        }
    }
}

/// Asks a running errbudget whether `service` (and `slo`) may deploy.
pub async fn gate(
    url: &str,
    service: &str,
    slo: Option<&str>,
    timeout: std::time::Duration,
) -> i32 {
    let endpoint = format!("{}/api/v1/slos", url.trim_end_matches('/'));
    let body = async {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        client
            .get(&endpoint)
            .send()
            .await?
            .error_for_status()?
            .json::<serde_json::Value>()
            .await
    };
    let doc = match body.await {
        Ok(d) => d,
        Err(e) => {
            crate::outln!("cannot tell: {endpoint}: {e}");
            return 2;
        }
    };
    gate_decision(&doc, service, slo)
}

/// For a container's HEALTHCHECK: 0 when `url` answers 200, else 1 with why.
pub async fn healthcheck(url: &str, timeout: std::time::Duration) -> i32 {
    let answer = async {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        client.get(url).send().await?.error_for_status()
    };
    match answer.await {
        Ok(_) => 0,
        Err(e) => {
            crate::errln!("unhealthy: {e}");
            1
        }
    }
}

/// 0 allowed, 1 frozen, 2 cannot tell; prints why.
pub fn gate_decision(doc: &serde_json::Value, service: &str, slo: Option<&str>) -> i32 {
    let Some(list) = doc.get("slos").and_then(|s| s.as_array()) else {
        crate::outln!("cannot tell: the answer has no \"slos\" list");
        return 2;
    };
    let matching: Vec<&serde_json::Value> = list
        .iter()
        .filter(|s| s.get("service").and_then(|v| v.as_str()) == Some(service))
        .filter(|s| slo.is_none() || s.get("slo").and_then(|v| v.as_str()) == slo)
        .collect();
    if matching.is_empty() {
        crate::outln!(
            "cannot tell: no SLO of service {service:?}{} is known",
            slo.map(|s| format!(" named {s:?}")).unwrap_or_default()
        );
        return 2;
    }
    let mut code = 0;
    for s in matching {
        let name = s.get("slo").and_then(|v| v.as_str()).unwrap_or("?");
        let left = s
            .get("error_budget_remaining_ratio")
            .and_then(|v| v.as_f64());
        let status = s.get("status").and_then(|v| v.as_str()).unwrap_or("?");
        match (s.get("release_frozen").and_then(|v| v.as_bool()), left) {
            (Some(true), Some(l)) => {
                crate::outln!("frozen: {service}/{name}: {:.1}% of the error budget left, below the release-freeze policy", l * 100.0);
                code = code.max(1);
            }
            (Some(false), Some(l)) if status != "error" => {
                crate::outln!(
                    "allowed: {service}/{name}: {:.1}% of the error budget left",
                    l * 100.0
                );
            }
            _ => {
                let why = s.get("error").and_then(|v| v.as_str()).unwrap_or(status);
                crate::outln!("cannot tell: {service}/{name}: not evaluated ({why})");
                code = 2;
            }
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::gate_decision;
    use serde_json::json;

    fn doc(frozen: bool, status: &str) -> serde_json::Value {
        json!({"slos": [
            {"service": "checkout", "slo": "avail", "status": status,
             "release_frozen": frozen, "error_budget_remaining_ratio": if frozen { -0.2 } else { 0.4 }},
            {"service": "search", "slo": "avail", "status": "ok",
             "release_frozen": true, "error_budget_remaining_ratio": -1.0}
        ]})
    }

    #[test]
    fn gate_exit_codes() {
        assert_eq!(gate_decision(&doc(false, "ok"), "checkout", None), 0);
        assert_eq!(gate_decision(&doc(true, "ok"), "checkout", None), 1);
        assert_eq!(gate_decision(&doc(false, "error"), "checkout", None), 2);
        assert_eq!(
            gate_decision(&doc(false, "ok"), "checkout", Some("latency")),
            2
        );
        assert_eq!(gate_decision(&doc(false, "ok"), "search", Some("avail")), 1);
        assert_eq!(gate_decision(&json!({"x": 1}), "checkout", None), 2);
    }
}
