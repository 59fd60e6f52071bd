use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use errbudget::cli::{Cli, Command};
use errbudget::{commands, console, daemon, errln, logging};

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
    let code = runtime.block_on(async {
        match command {
            Command::Run {
                config_file,
                listen_address,
                web_config_file,
                external_url,
                storage_path,
            } => {
                match daemon::run(daemon::RunOptions {
                    config_file,
                    listen_address,
                    web_config_file,
                    external_url,
                    storage_path,
                })
                .await
                {
                    Ok(()) => 0,
                    Err(e) => {
                        errln!("errbudget: {e:#}");
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
            Command::Healthcheck { url, timeout } => commands::healthcheck(&url, timeout).await,
            Command::Completions { shell } => {
                console::out(format_args!(
                    "{}",
                    String::from_utf8_lossy(&errbudget::cli::completions(shell))
                ));
                0
            }
            Command::Man => match errbudget::cli::man_page() {
                Ok(page) => {
                    console::out(format_args!("{}", String::from_utf8_lossy(&page)));
                    0
                }
                Err(e) => {
                    errln!("errbudget: cannot render the man page: {e}");
                    1
                }
            },
        }
    });
    ExitCode::from(code as u8)
}
