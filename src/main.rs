use std::process::ExitCode;

use clap::Parser;
use errbudget::cli::{Cli, Command, LogFormat};
use errbudget::{commands, daemon};
use tracing_subscriber::EnvFilter;

fn init_logging(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    match format {
        LogFormat::Json => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .json()
            .init(),
        LogFormat::Logfmt => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .event_format(tracing_logfmt::EventsFormatter::default())
            .fmt_fields(tracing_logfmt::FieldsFormatter::default())
            .init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("errbudget: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run {
                config_file,
                listen_address,
                web_config_file,
            } => {
                match daemon::run(daemon::RunOptions {
                    config_file,
                    listen_address,
                    web_config_file,
                })
                .await
                {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("errbudget: {e:#}");
                        1
                    }
                }
            }
            Command::Check { config_file, specs } => {
                commands::check(config_file.as_deref(), &specs)
            }
            Command::Eval {
                config_file,
                at,
                output,
            } => commands::eval(&config_file, at.as_deref(), output).await,
            Command::Rules {
                config_file,
                format,
                interval,
                prometheusrule_name,
                prometheusrule_labels,
            } => commands::rules(
                &config_file,
                &errbudget::rules::Options {
                    interval_secs: interval.as_secs(),
                    format,
                    name: prometheusrule_name,
                    labels: prometheusrule_labels.into_iter().collect(),
                },
            ),
            Command::Convert { config_file, specs } => {
                commands::convert(config_file.as_deref(), &specs)
            }
            Command::Backtest {
                config_file,
                from,
                to,
                step,
                output,
            } => commands::backtest(&config_file, &from, &to, step, output).await,
            Command::Gate {
                url,
                service,
                slo,
                timeout,
            } => commands::gate(&url, &service, slo.as_deref(), timeout).await,
        }
    });
    ExitCode::from(code as u8)
}
