//! `errbudget run`: the web server, the evaluation loop, reload on
//! SIGHUP or `POST /-/reload`, graceful shutdown on SIGTERM/SIGINT.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::alert::deliver::{DeliveryOptions, Dispatcher};
use crate::config::Settings;
use crate::engine::Engine;
use crate::http::{self, AppState, ReloadRequest};
use crate::metrics::DaemonMetrics;
use crate::model::Slo;
use crate::prom::Client;
use crate::state::State;
use crate::trend::Trends;

pub struct RunOptions {
    pub config_file: PathBuf,
    /// Overrides `web.listen_address`; several serve on each.
    pub listen_address: Vec<String>,
    /// Overrides `web.config_file`.
    pub web_config_file: Option<PathBuf>,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Loads settings and specs, joining every diagnostic into one message.
pub fn load_config(path: &Path) -> Result<(Settings, Vec<Slo>), String> {
    crate::spec::load(path).map_err(|diags| {
        diags
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn new_client(settings: &Settings, metrics: &Arc<DaemonMetrics>) -> anyhow::Result<Arc<Client>> {
    let client = Client::new(
        &settings.prometheus.client,
        settings.prometheus.max_concurrent_queries.max(1),
        metrics.clone(),
    )
    .context("cannot set up the Prometheus client")?
    // Retries must never make a cycle outlast the next one.
    .with_retry_budget(settings.evaluation_interval);
    Ok(Arc::new(client))
}

/// Applies the alerting part of the settings to the engine.
pub fn configure_alerting<C: crate::prom::QueryApi>(engine: &mut Engine<C>, settings: &Settings) {
    let a = &settings.alerting;
    engine.set_alerting(
        a.pending_for.as_secs() as i64,
        a.resend_interval.as_secs() as i64,
        crate::alert::build::BuildOptions {
            external_url: settings.web.external_url(),
            evaluation_failing_after: a.evaluation_failing_after.as_secs() as i64,
        },
    );
}

/// The dispatcher for the configured receivers, if any.
fn new_dispatcher(
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

/// Makes the engine hand its notifications to `dispatcher`.
fn wire(engine: &mut Engine<Client>, dispatcher: &Option<Arc<Dispatcher>>) {
    match dispatcher.clone() {
        Some(d) => engine.set_sink(Box::new(move |batch| d.dispatch(batch))),
        None => engine.set_sink(Box::new(|_| {})),
    }
}

/// Lets a replaced or final dispatcher deliver what it holds.
async fn stop_delivery(dispatcher: Option<Arc<Dispatcher>>, deadline: Duration) {
    if let Some(d) = dispatcher {
        match Arc::try_unwrap(d) {
            Ok(d) => d.shutdown(deadline).await,
            Err(_) => tracing::warn!("alert dispatcher still in use at shutdown"),
        }
    }
}

fn record_reload(metrics: &DaemonMetrics, ok: bool) {
    metrics
        .config_last_reload_successful
        .set(if ok { 1 } else { 0 });
    metrics
        .config_reloads_total
        .with_label_values(&[if ok { "success" } else { "failure" }])
        .inc();
    if ok {
        metrics
            .config_last_reload_success_timestamp
            .set(unix_now() as f64);
    }
}

pub async fn run(opts: RunOptions) -> anyhow::Result<()> {
    let (mut settings, slos) = load_config(&opts.config_file)
        .map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))?;
    let metrics = Arc::new(DaemonMetrics::new());
    record_reload(&metrics, true);
    let state = Arc::new(State::new());
    let client = new_client(&settings, &metrics)?;
    // The pages query through the engine's client, and follow it on reload.
    let trends = Arc::new(Trends::new(client.clone()));
    let mut engine = Engine::new(client, slos, state.clone(), metrics.clone());
    configure_alerting(&mut engine, &settings);
    let mut dispatcher = new_dispatcher(&settings, &metrics)?;
    wire(&mut engine, &dispatcher);

    let web_config = crate::web::load(
        opts.web_config_file
            .as_deref()
            .or(settings.web.config_file.as_deref()),
    )?;
    let addresses = if opts.listen_address.is_empty() {
        vec![settings.web.listen_address.clone()]
    } else {
        opts.listen_address.clone()
    };
    let mut listeners = Vec::new();
    for address in &addresses {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or(address.clone()), "listening");
        listeners.push(listener);
    }

    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let app = AppState {
        state: state.clone(),
        metrics: metrics.clone(),
        reload: reload_tx,
        trends: Some(trends.clone()),
    };
    let router = http::router(app);
    let servers: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            let mut server_shutdown = shutdown_rx.clone();
            let (router, web_config) = (router.clone(), web_config.clone());
            tokio::spawn(async move {
                crate::web::serve(listener, router, web_config, async move {
                    let _ = server_shutdown.wait_for(|&s| s).await;
                })
                .await
            })
        })
        .collect();
    crate::systemd::notify(&[sd_notify::NotifyState::Ready]);

    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut interval = new_interval(settings.evaluation_interval);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                engine.cycle(unix_now()).await;
            }
            Some(reply) = reload_rx.recv() => {
                let outcome = reload(&opts.config_file, &mut settings, &mut engine, &trends, &metrics, &mut dispatcher).await;
                if outcome.is_ok() {
                    interval = new_interval(settings.evaluation_interval);
                }
                let _ = reply.send(outcome);
            }
            _ = hup.recv() => {
                if reload(&opts.config_file, &mut settings, &mut engine, &trends, &metrics, &mut dispatcher).await.is_ok() {
                    interval = new_interval(settings.evaluation_interval);
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    engine.set_sink(Box::new(|_| {}));
    stop_delivery(dispatcher, Duration::from_secs(5)).await;
    crate::systemd::notify(&[sd_notify::NotifyState::Stopping]);
    let mut result = Ok(());
    for server in servers {
        match tokio::time::timeout(Duration::from_secs(10), server).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => result = Err(e).context("web server failed"),
            Ok(Err(e)) => result = Err(e).context("web server task failed"),
            Err(_) => tracing::warn!("web server did not stop within 10s"),
        }
    }
    result
}

fn new_interval(every: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(every.max(Duration::from_secs(1)));
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// Applies a new config, or keeps the running one if the new one is bad.
async fn reload(
    path: &Path,
    settings: &mut Settings,
    engine: &mut Engine<Client>,
    trends: &Trends<Client>,
    metrics: &Arc<DaemonMetrics>,
    dispatcher: &mut Option<Arc<Dispatcher>>,
) -> Result<(), String> {
    let outcome = load_config(path).and_then(|(new, slos)| {
        let client = if new.prometheus != settings.prometheus {
            Some(new_client(&new, metrics).map_err(|e| format!("{e:#}"))?)
        } else {
            None
        };
        let delivery = if new.alerting != settings.alerting || new.web != settings.web {
            Some(new_dispatcher(&new, metrics).map_err(|e| format!("{e:#}"))?)
        } else {
            None
        };
        if new.web.listen_address != settings.web.listen_address {
            tracing::warn!("web.listen_address changed; it takes effect after a restart");
        }
        Ok((new, slos, client, delivery))
    });
    match outcome {
        Ok((new, slos, client, delivery)) => {
            if let Some(c) = client {
                trends.set_client(c.clone());
                engine.set_client(c);
            }
            tracing::info!(slos = slos.len(), "configuration reloaded");
            engine.replace_slos(slos);
            configure_alerting(engine, &new);
            if let Some(d) = delivery {
                wire(engine, &d);
                let old = std::mem::replace(dispatcher, d);
                stop_delivery(old, Duration::from_secs(2)).await;
            }
            *settings = new;
            record_reload(metrics, true);
            Ok(())
        }
        Err(e) => {
            tracing::error!(errors = %e.replace('\n', "; "), "configuration rejected, previous one kept");
            record_reload(metrics, false);
            Err(e)
        }
    }
}
