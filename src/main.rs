use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use errbudget::app::commands::{self, Failure, Outcome};
use errbudget::app::run;
use errbudget::cli::{Cli, Command};
use errbudget::{console, errln, logging};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        console::out(format_args!("{}", errbudget::version::print()));
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingSubcommand,
                "a subcommand is required",
            )
            .exit();
    };
    logging::init(cli.log_level, cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("errbudget: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let ended: Result<Outcome, Failure> = runtime.block_on(async {
        match command {
            Command::Run {
                config_file,
                listen_address,
                web_config_file,
                external_url,
                storage_path,
            } => run::run(run::RunOptions {
                config_file,
                listen_address,
                web_config_file,
                external_url,
                storage_path,
            })
            .await
            .map(|()| 0)
            .map_err(Failure::Run),
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
            Command::Report {
                config_file,
                period,
                service,
                step,
                output,
            } => commands::report(&config_file, &period, service.as_deref(), step, output).await,
            Command::Gate {
                url,
                service,
                slo,
                timeout,
                http_config_file,
                output,
            } => {
                commands::gate(
                    &url,
                    &service,
                    slo.as_deref(),
                    timeout,
                    http_config_file.as_deref(),
                    output,
                )
                .await
            }
            Command::Healthcheck {
                url,
                timeout,
                http_config_file,
            } => commands::healthcheck(&url, timeout, http_config_file.as_deref()).await,
            Command::Completions { shell } => {
                console::out(format_args!(
                    "{}",
                    String::from_utf8_lossy(&errbudget::cli::completions(shell))
                ));
                Ok(0)
            }
            Command::Man => errbudget::cli::man_page()
                .map(|page| {
                    console::out(format_args!("{}", String::from_utf8_lossy(&page)));
                    0
                })
                .map_err(Failure::Man),
        }
    });
    // The one place an error is printed and its exit code chosen.
    match ended {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            errln!("{}", errbudget::diag::chain(&failure));
            ExitCode::from(failure.exit_code())
        }
    }
}
