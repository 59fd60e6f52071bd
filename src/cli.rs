//! Flags and subcommands, Prometheus-ecosystem style. Opens no file or socket.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::logging::{Format as LogFormat, Level as LogLevel};

#[derive(Debug, Parser)]
#[command(
    name = "errbudget",
    about = "Error budgets and burn rates from SLO specs",
    // `--version` prints the build facts the way Prometheus components do.
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Print version and build information, then exit.
    #[arg(long, exclusive = true)]
    pub version: bool,
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", global = true, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Output format of log messages.
    #[arg(long = "log.format", global = true, value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// How `gate` answers: lines for a CI log, or one JSON document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GateOutput {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportOutput {
    Markdown,
    Html,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: evaluate every interval, serve /metrics and the API.
    Run {
        #[arg(short = 'c', long = "config.file")]
        config_file: PathBuf,
        /// Address to serve on; repeat it to serve on several. Overrides
        /// web.listen_address.
        #[arg(long = "web.listen-address", value_name = "ADDRESS")]
        listen_address: Vec<String>,
        /// Exporter-toolkit web config (TLS, basic auth); overrides web.config_file.
        #[arg(long = "web.config.file")]
        web_config_file: Option<PathBuf>,
        /// The URL errbudget is reached at, for alert links and the status
        /// page; overrides web.external_url (default http://<listen address>,
        /// the host name for a wildcard address).
        #[arg(long = "web.external-url", value_parser = parse_external_url)]
        external_url: Option<String>,
        /// Directory to keep state in across restarts (bucket histories,
        /// alert state), so a restart reads only the gap from Prometheus
        /// and firing alerts keep their start; overrides storage.path.
        /// Unset: nothing is kept.
        #[arg(long = "storage.path", value_name = "DIR")]
        storage_path: Option<PathBuf>,
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
    /// The record of one closed period: objective, achieved, budget
    /// consumed, time in freeze, incidents, per SLO.
    Report {
        #[arg(short = 'c', long = "config.file")]
        config_file: PathBuf,
        /// The period: 2026-11 (month), 2026-Q4 (quarter), 2026-W48 (ISO week).
        #[arg(long)]
        period: String,
        /// Only this service's SLOs.
        #[arg(long)]
        service: Option<String>,
        /// Replay step: how finely incidents and freezes are timed.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        step: std::time::Duration,
        #[arg(long, value_enum, default_value_t = ReportOutput::Markdown)]
        output: ReportOutput,
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
        /// Headers, basic auth or bearer token and TLS for reaching it (a
        /// client block of the settings without url and timeout).
        #[arg(long = "http.config.file", value_name = "FILE")]
        http_config_file: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = GateOutput::Text)]
        output: GateOutput,
    },
    /// Exit 0 if a running errbudget answers /-/healthy (for container
    /// health checks, where no curl is installed).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:9465/-/healthy")]
        url: String,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: std::time::Duration,
        /// As for `gate`: credentials and TLS for reaching it.
        #[arg(long = "http.config.file", value_name = "FILE")]
        http_config_file: Option<PathBuf>,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
}

/// The completion script for `shell`, generated from these definitions.
pub fn completions(shell: Shell) -> Vec<u8> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, "errbudget", &mut out);
    out
}

/// The man page errbudget(1), with one section per subcommand.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    use clap::CommandFactory;
    let cmd = Cli::command().version(crate::version::VERSION);
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
        let name = sub.get_name();
        out.extend_from_slice(format!(".SH \"ERRBUDGET {}\"\n", name.to_uppercase()).as_bytes());
        if let Some(about) = sub.get_about() {
            out.extend_from_slice(format!("{}\n", roff_escape(&about.to_string())).as_bytes());
        }
        let sub_man = clap_mangen::Man::new(sub.clone().bin_name(format!("errbudget {name}")));
        sub_man.render_synopsis_section(&mut out)?;
        sub_man.render_options_section(&mut out)?;
    }
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Keeps a line of text from being read as a roff request.
fn roff_escape(s: &str) -> String {
    let s = s.replace('\\', "\\e");
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s
    }
}

fn parse_external_url(s: &str) -> Result<String, String> {
    match reqwest::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {
            Ok(s.trim_end_matches('/').to_string())
        }
        _ => Err(format!(
            "{s:?} is not an http or https URL with a host, e.g. https://errbudget.example.com"
        )),
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    crate::time::parse(s)
}

/// Parses `--at`: RFC 3339 (`2026-11-26T01:00:00Z`) or unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(secs.floor() as i64);
        }
    }
    crate::time::parse_rfc3339(s).ok_or_else(|| {
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
        assert_eq!(parse_time("2025-11-26T02:00:00+01:00"), Ok(1_764_118_800));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("-5").is_err());
    }

    #[test]
    fn convert_takes_a_config_or_spec_paths() {
        let cli = Cli::try_parse_from(["errbudget", "convert", "slos/", "more.yaml"]).unwrap();
        assert!(
            matches!(&cli.command, Some(Command::Convert { config_file: None, specs }) if specs.len() == 2)
        );
        let cli = Cli::try_parse_from(["errbudget", "convert", "-c", "e.yaml"]).unwrap();
        assert!(matches!(
            &cli.command,
            Some(Command::Convert {
                config_file: Some(_),
                ..
            })
        ));
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
        assert!(matches!(cli.command, Some(Command::Run { .. })));
        let cli = Cli::try_parse_from([
            "errbudget",
            "run",
            "-c",
            "x.yaml",
            "--web.external-url",
            "https://eb.example.com/",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Run { external_url: Some(ref u), .. }) if u == "https://eb.example.com"
        ));
        assert!(Cli::try_parse_from([
            "errbudget",
            "run",
            "-c",
            "x",
            "--web.external-url",
            "errbudget:9465"
        ])
        .is_err());
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
            Some(Command::Eval {
                output: OutputFormat::Json,
                ..
            })
        ));
    }

    #[test]
    fn listen_address_repeats_and_bad_log_values_are_refused() {
        let cli = Cli::try_parse_from([
            "errbudget",
            "run",
            "-c",
            "x",
            "--web.listen-address",
            "127.0.0.1:1",
            "--web.listen-address",
            "[::1]:1",
        ])
        .unwrap();
        let Some(Command::Run { listen_address, .. }) = cli.command else {
            panic!("not run");
        };
        assert_eq!(listen_address, ["127.0.0.1:1", "[::1]:1"]);
        for (flag, value) in [("--log.level", "bogus"), ("--log.format", "xml")] {
            let e = Cli::try_parse_from(["errbudget", flag, value, "check", "x"]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let text = e.to_string();
            assert!(text.contains("possible values"), "{text}");
        }
    }

    #[test]
    fn completions_and_man_page_cover_every_subcommand() {
        let bash = String::from_utf8(completions(Shell::Bash)).unwrap();
        let man = String::from_utf8(man_page().unwrap()).unwrap();
        for sub in ["run", "check", "eval", "rules", "backtest", "gate"] {
            assert!(bash.contains(sub), "{sub} not in bash completions");
            assert!(
                man.contains(&format!("ERRBUDGET {}", sub.to_uppercase())),
                "{sub} not in the man page"
            );
        }
        assert!(bash.contains("--web.listen-address"));
        assert!(man.contains("web.listen\\-address"), "{man}");
    }
}
