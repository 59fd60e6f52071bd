//! Flags and subcommands, Prometheus-ecosystem style. Opens no file or socket.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "errbudget",
    version,
    about = "Error budgets and burn rates from SLO specs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long = "log.level", global = true, default_value = "info")]
    pub log_level: String,
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: evaluate every interval, serve /metrics and the API.
    Run {
        #[arg(short = 'c', long = "config.file")]
        config_file: PathBuf,
        /// Overrides web.listen_address.
        #[arg(long = "web.listen-address")]
        listen_address: Option<String>,
        /// Exporter-toolkit web config (TLS, basic auth); overrides web.config_file.
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
    },
    /// Validate settings and SLO specs; every problem as file:line:column: message.
    Check {
        #[arg(short = 'c', long = "config.file")]
        config_file: Option<PathBuf>,
        /// SLO spec files to check on their own.
        specs: Vec<PathBuf>,
    },
    /// Evaluate once and print the figures.
    Eval {
        #[arg(short = 'c', long = "config.file")]
        config_file: PathBuf,
        /// Evaluation time: RFC 3339 or unix seconds (default now).
        #[arg(long)]
        at: Option<String>,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Replay the alert policy over history: what would have fired.
    Backtest {
        #[arg(short = 'c', long = "config.file")]
        config_file: PathBuf,
        /// Start: RFC 3339 or unix seconds.
        #[arg(long)]
        from: String,
        /// End: RFC 3339 or unix seconds.
        #[arg(long)]
        to: String,
        /// Evaluation step.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        step: std::time::Duration,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
    },
    /// Print Prometheus recording and alerting rules computing the same series.
    Rules {
        #[arg(short = 'c', long = "config.file")]
        config_file: PathBuf,
        /// `rules`: a rule file; `prometheusrule`: a Prometheus Operator resource.
        #[arg(long, value_enum, default_value_t = crate::rules::Format::Rules)]
        format: crate::rules::Format,
        /// Evaluation interval of the groups, and width of one recorded
        /// increment: scrape the SLI's series at least twice as often.
        #[arg(long, default_value = "1m", value_parser = parse_duration)]
        interval: std::time::Duration,
        /// `metadata.name` of the PrometheusRule.
        #[arg(long = "prometheusrule.name", default_value = "errbudget-slos")]
        prometheusrule_name: String,
        /// `metadata.labels` of the PrometheusRule, `KEY=VALUE`, repeatable.
        #[arg(long = "prometheusrule.label", value_parser = parse_label)]
        prometheusrule_labels: Vec<(String, String)>,
    },
    /// Rewrite Sloth, Pyrra or OpenSLO specs as errbudget's own spec format
    /// (Sloth prometheus/v1 with errbudget's extensions), printed.
    Convert {
        /// Convert every spec the settings' slo_files name.
        #[arg(short = 'c', long = "config.file")]
        config_file: Option<PathBuf>,
        /// Spec files or directories, read together.
        specs: Vec<PathBuf>,
    },
    /// For release pipelines: exit 0 deploys allowed, 1 frozen, 2 cannot tell.
    Gate {
        /// Base URL of a running errbudget.
        #[arg(long)]
        url: String,
        #[arg(long)]
        service: String,
        #[arg(long)]
        slo: Option<String>,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        timeout: std::time::Duration,
    },
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::duration::parse(s)
}

/// Parses `--at`: RFC 3339 (`2026-11-26T01:00:00Z`) or unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(secs.floor() as i64);
        }
    }
    humantime::parse_rfc3339_weak(s)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .ok_or_else(|| {
            format!("invalid time {s:?}: give RFC 3339 (2026-11-26T01:00:00Z) or unix seconds")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times() {
        assert_eq!(parse_time("1764118800"), Ok(1_764_118_800));
        assert_eq!(parse_time("1764118800.7"), Ok(1_764_118_800));
        assert_eq!(parse_time("2025-11-26T01:00:00Z"), Ok(1_764_118_800));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("-5").is_err());
    }

    #[test]
    fn flags_follow_prometheus_style() {
        let cli = Cli::try_parse_from([
            "errbudget",
            "run",
            "-c",
            "x.yaml",
            "--web.listen-address",
            ":1",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Run { .. }));
        let cli = Cli::try_parse_from([
            "errbudget",
            "eval",
            "--config.file",
            "x",
            "--output",
            "json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Eval {
                output: OutputFormat::Json,
                ..
            }
        ));
    }
}
