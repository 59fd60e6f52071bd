//! `errbudget run`: the web server, the evaluation loop, reload on
//! SIGHUP or `POST /-/reload`, graceful shutdown on SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::alert::dispatch::Dispatcher;
use crate::app::load::{self, configure_alerting, load_config, prepare, Prepared};
use crate::config::Settings;
use crate::eval::engine::Engine;
use crate::eval::trend::Trends;
use crate::http::{self, AppState, RecordsApi, ReloadRequest};
use crate::metrics::DaemonMetrics;
use crate::model::Slo;
use crate::prom::Client;
use crate::records::{Book, OverridePolicy, Records, SharedRecords, SpecPolicy};
use crate::state::State;
use crate::time::unix_now;

pub struct RunOptions {
    pub config_file: PathBuf,
    /// Overrides `web.listen_address`; several serve on each.
    pub listen_address: Vec<String>,
    /// Overrides `web.config_file`.
    pub web_config_file: Option<PathBuf>,
    /// Overrides `web.external_url`.
    pub external_url: Option<String>,
    /// Overrides `storage.path`.
    pub storage_path: Option<PathBuf>,
}

/// Settles the URL alerts and pages link to: the flag, else the config,
/// else derived from the address errbudget listens on.
fn resolve_external_url(settings: &mut Settings, opts: &RunOptions) {
    if let Some(a) = opts.listen_address.first() {
        settings.web.listen_address = a.clone();
    }
    if let Some(u) = &opts.external_url {
        settings.web.external_url = Some(u.clone());
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    let url = settings
        .web
        .external_url_on(hostname.as_deref().map(str::trim).filter(|h| !h.is_empty()));
    settings.web.external_url = Some(url);
}

/// Alert links to a loopback address reach no one who gets the alert.
fn warn_if_loopback(settings: &Settings) {
    let a = &settings.alerting;
    let url = settings.web.external_url();
    if (!a.alertmanagers.is_empty() || !a.webhooks.is_empty())
        && crate::config::is_loopback_url(&url)
    {
        tracing::warn!(
            external_url = %url,
            "alerts go out with links to a loopback address, which their receivers cannot open; set --web.external-url or web.external_url"
        );
    }
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
    let metrics = Arc::new(DaemonMetrics::new());
    let Prepared {
        mut settings,
        slos,
        client,
        web: web_config,
        overrides,
    } = prepare(&opts.config_file, opts.web_config_file.as_deref(), &metrics)
        .map_err(|diags| anyhow::anyhow!("invalid configuration:\n{}", load::join(&diags)))?;
    resolve_external_url(&mut settings, &opts);
    warn_if_loopback(&settings);
    record_reload(&metrics, true);
    let state = Arc::new(State::new());
    let policy = Arc::new(SpecPolicy::new(&slos)) as Arc<dyn OverridePolicy>;
    // The pages query through the engine's client, and follow it on reload.
    let mut engine = Engine::new(client.clone(), slos, state.clone(), metrics.clone());
    let storage_dir = opts
        .storage_path
        .clone()
        .or_else(|| settings.storage.path.clone());
    let mut persist = match storage_dir {
        Some(dir) => Some(Persist::open(dir, &mut engine)?),
        None => None,
    };
    let records_file = persist
        .as_ref()
        .map(|p| Arc::new(crate::store::RecordsFile::new(p.dir.clone())));
    let records: SharedRecords = Arc::new(Records::new(match &persist {
        Some(p) => load_records(&p.dir),
        None => Book::default(),
    }));
    records.write(|b| b.set_from_files(overrides));
    records.set_policy(policy);
    engine.set_records(records.clone());
    engine.set_deployments(settings.deployments.clone());
    metrics
        .registry
        .register(Box::new(crate::render::metrics::DeploymentsCollector::new(
            records.clone(),
        )?))
        .context("cannot register slo_deployments_total")?;
    let mut saver = records_file
        .clone()
        .map(|file| RecordsSaver { file, last: None });
    let records_api = RecordsApi {
        records: records.clone(),
        identity: crate::web::identifies_clients(web_config.as_ref()),
        file: records_file.clone(),
    };
    if settings.deployments.is_some() || records_api.identity.is_some() {
        tracing::info!(
            deployments_metric = settings
                .deployments
                .as_ref()
                .map_or("", |d| d.query.as_str()),
            writes = records_api.identity.is_some(),
            "deploy and override records"
        );
    }
    let trends = Arc::new(Trends::new(client, engine.backend()));
    configure_alerting(&mut engine, &settings);
    let mut dispatcher = load::dispatcher(&settings, &metrics)?;
    wire(&mut engine, &dispatcher);

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
        prefix: settings.web.path_prefix().into(),
        records: records_api.clone(),
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
    // Handlers before READY=1: systemd may stop or reload the unit the
    // moment it is told, and a SIGTERM or SIGHUP without a handler kills
    // the process on the spot (no state saved, no STOPPING=1).
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    crate::systemd::notify(&[sd_notify::NotifyState::Ready]);
    let mut interval = new_interval(settings.evaluation_interval);
    let mut reloads = Reloads::default();
    loop {
        let start_at = reloads.start_at();
        tokio::select! {
            _ = interval.tick() => {
                engine.cycle(unix_now()).await;
                if let Some(p) = &mut persist {
                    p.write(&engine, &metrics, false).await;
                }
                if let Some(saver) = &mut saver {
                    saver.save(&records, false).await;
                }
            }
            Some(reply) = reload_rx.recv() => reloads.ask(Some(reply)),
            _ = hup.recv() => reloads.ask(None),
            () = sleep_until(start_at), if start_at.is_some() => {
                let path = opts.config_file.clone();
                reloads.start(tokio::task::spawn_blocking(move || load_config(&path)));
            }
            loaded = reloads.loaded(), if reloads.is_loading() => {
                let loaded = loaded.unwrap_or_else(|e| Err(format!("reading the configuration failed: {e}")));
                let outcome = apply(&opts, loaded, &mut settings, &mut engine, &trends, &metrics, &mut dispatcher).await;
                if outcome.is_ok() {
                    interval = new_interval(settings.evaluation_interval);
                }
                reloads.finish(&outcome);
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down");
    if let Some(p) = &mut persist {
        p.write(&engine, &metrics, true).await;
    }
    if let Some(saver) = &mut saver {
        saver.save(&records, true).await;
    }
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

/// The records file of the state directory, or an empty book. A file that
/// cannot be read is moved aside (it holds what the API was told, which
/// exists nowhere else) and the start has no records.
fn load_records(dir: &std::path::Path) -> Book {
    let file = crate::store::records_path_in(dir);
    match crate::store::load_records(dir) {
        Ok(Some(book)) => {
            tracing::info!(file = %file.display(), deployments = book.deployments.len(), overrides = book.overrides.len(), "records loaded");
            book
        }
        Ok(None) => Book::default(),
        Err(e) => {
            let aside = file.with_extension(format!("json.damaged-{}", unix_now()));
            let moved = std::fs::rename(&file, &aside).is_ok();
            tracing::warn!(file = %file.display(), reason = %e, moved_to = %if moved { aside.display().to_string() } else { String::new() }, "ignoring the records file");
            Book::default()
        }
    }
}

/// Saves the records file when the records changed since the last save
/// (the deploy metric, pruning; the API handlers save their own changes
/// too), or at once when `force`. When the metric was last read is not a
/// change: saving at every cycle would only move `seen.at`.
struct RecordsSaver {
    file: Arc<crate::store::RecordsFile>,
    last: Option<u64>,
}

impl RecordsSaver {
    async fn save(&mut self, records: &SharedRecords, force: bool) {
        let revision = records.read(|b| b.revision);
        if !force && self.last == Some(revision) {
            return;
        }
        self.last = Some(revision);
        let (file, records) = (self.file.clone(), records.clone());
        match tokio::task::spawn_blocking(move || file.save(&records)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(file = %self.file.path().display(), error = %e, "cannot write the records file")
            }
            Err(e) => tracing::warn!(error = %e, "the records file write did not finish"),
        }
    }
}

/// The state file is written after a cycle at most this often, and at
/// shutdown: a crash loses at most this much, which the next start reads
/// from Prometheus again.
const WRITE_GAP: Duration = Duration::from_secs(30);

/// The state kept under `--storage.path`.
struct Persist {
    dir: PathBuf,
    last_write: Option<tokio::time::Instant>,
}

impl Persist {
    /// Creates the directory if needed and resumes the engine from the
    /// state file in it. A file that cannot be used is ignored with one
    /// warning: the start is then cold, as without the flag.
    fn open<C: crate::prom::QueryApi>(
        dir: PathBuf,
        engine: &mut Engine<C>,
    ) -> anyhow::Result<Persist> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the storage directory {}", dir.display()))?;
        let file = crate::store::path_in(&dir);
        match crate::store::load(&dir, crate::plan::BUCKET_SECS) {
            Ok(Some(stored)) => {
                let saved_at = stored.saved_at;
                let (slos, alerts) = engine.restore(stored, unix_now());
                tracing::info!(file = %file.display(), saved_at, slos, alerts, "resuming from the stored state");
            }
            Ok(None) => {
                tracing::info!(file = %file.display(), "no stored state yet; starting cold")
            }
            Err(e) => tracing::warn!(
                file = %file.display(),
                reason = %e,
                "ignoring the stored state; starting cold"
            ),
        }
        Ok(Persist {
            dir,
            last_write: None,
        })
    }

    /// Writes the state file unless one was written less than
    /// [`WRITE_GAP`] ago (`force`: at shutdown). A failed write (a full
    /// disk) is a warning and a metric; evaluation goes on.
    async fn write<C: crate::prom::QueryApi>(
        &mut self,
        engine: &Engine<C>,
        metrics: &DaemonMetrics,
        force: bool,
    ) {
        let now = tokio::time::Instant::now();
        // A second of slack, so a 30 s interval writes every cycle.
        let recent = self
            .last_write
            .is_some_and(|t| now.duration_since(t) + Duration::from_secs(1) < WRITE_GAP);
        if recent && !force {
            return;
        }
        self.last_write = Some(now);
        let bytes = engine.save(unix_now());
        let size = bytes.len();
        let dir = self.dir.clone();
        let written =
            tokio::task::spawn_blocking(move || crate::store::write_atomic(&dir, &bytes)).await;
        let outcome = match written {
            Ok(Ok(())) => {
                metrics
                    .storage_last_write_bytes
                    .with_label_values::<&str>(&[])
                    .set(size as i64);
                "success"
            }
            Ok(Err(e)) => {
                tracing::warn!(file = %crate::store::path_in(&self.dir).display(), error = %e, "cannot write the state file");
                "failure"
            }
            Err(e) => {
                tracing::warn!(error = %e, "the state file write did not finish");
                "failure"
            }
        };
        metrics
            .storage_writes_total
            .with_label_values(&[outcome])
            .inc();
    }
}

fn new_interval(every: Duration) -> tokio::time::Interval {
    let mut i = tokio::time::interval(every.max(Duration::from_secs(1)));
    i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    i
}

/// At most one reload starts per this gap: a burst of SIGHUPs or
/// `POST /-/reload` (a config-management run touching many files, a
/// script in a loop) becomes a handful of reloads, not one per request,
/// and each reload is one evaluation cycle at most.
const RELOAD_GAP: Duration = Duration::from_secs(1);

type Loaded = Result<(Settings, Vec<Slo>), String>;

/// Reload requests waiting to be served together. Files are read and
/// parsed on the blocking pool (a large spec takes a while to parse and
/// must not hold up evaluations), one reload at a time; what is asked for
/// while one runs is served by the next, since the files may have changed
/// after the running one read them.
#[derive(Default)]
struct Reloads {
    /// Asked for and not started yet; `None` entries came from SIGHUP.
    waiting: Vec<Option<ReloadRequest>>,
    running: Option<(tokio::task::JoinHandle<Loaded>, Vec<Option<ReloadRequest>>)>,
    last_start: Option<tokio::time::Instant>,
}

impl Reloads {
    fn ask(&mut self, reply: Option<ReloadRequest>) {
        self.waiting.push(reply);
    }

    /// When the next reload may start: now or at the end of the gap, and
    /// never while one runs.
    fn start_at(&self) -> Option<tokio::time::Instant> {
        if self.waiting.is_empty() || self.running.is_some() {
            return None;
        }
        let now = tokio::time::Instant::now();
        Some(self.last_start.map_or(now, |t| (t + RELOAD_GAP).max(now)))
    }

    fn start(&mut self, task: tokio::task::JoinHandle<Loaded>) {
        self.last_start = Some(tokio::time::Instant::now());
        self.running = Some((task, std::mem::take(&mut self.waiting)));
    }

    fn is_loading(&self) -> bool {
        self.running.is_some()
    }

    async fn loaded(&mut self) -> Result<Loaded, tokio::task::JoinError> {
        match &mut self.running {
            Some((task, _)) => task.await,
            None => std::future::pending().await,
        }
    }

    /// Answers everyone the finished reload served.
    fn finish(&mut self, outcome: &Result<(), String>) {
        if let Some((_, served)) = self.running.take() {
            for reply in served.into_iter().flatten() {
                let _ = reply.send(outcome.clone());
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Applies a newly loaded config, or keeps the running one if the new one
/// is bad.
async fn apply(
    opts: &RunOptions,
    loaded: Loaded,
    settings: &mut Settings,
    engine: &mut Engine<Client>,
    trends: &Trends<Client>,
    metrics: &Arc<DaemonMetrics>,
    dispatcher: &mut Option<Arc<Dispatcher>>,
) -> Result<(), String> {
    let outcome = loaded.and_then(|(mut new, slos)| {
        resolve_external_url(&mut new, opts);
        let client = if new.prometheus != settings.prometheus {
            Some(Arc::new(
                load::prom_client(&new, metrics).map_err(|e| crate::diag::chain(&e))?,
            ))
        } else {
            None
        };
        let delivery = if new.alerting != settings.alerting || new.web != settings.web {
            Some(load::dispatcher(&new, metrics).map_err(|e| format!("{e:#}"))?)
        } else {
            None
        };
        if new.storage != settings.storage {
            tracing::warn!("storage.path changed; it takes effect after a restart");
        }
        if new.web.listen_address != settings.web.listen_address {
            tracing::warn!("web.listen_address changed; it takes effect after a restart");
        }
        let overrides = load::load_overrides(&new).map_err(|d| load::join(&d))?;
        Ok((new, slos, client, delivery, overrides))
    });
    match outcome {
        Ok((new, slos, client, delivery, overrides)) => {
            let records = engine.records().clone();
            records.set_policy(Arc::new(SpecPolicy::new(&slos)));
            records.write(|b| b.set_from_files(overrides));
            if let Some(c) = client {
                trends.set_client(c.clone());
                engine.set_client(c);
            }
            tracing::info!(slos = slos.len(), "configuration reloaded");
            engine.replace_slos(slos);
            engine.set_deployments(new.deployments.clone());
            configure_alerting(engine, &new);
            if let Some(d) = delivery {
                wire(engine, &d);
                let old = std::mem::replace(dispatcher, d);
                stop_delivery(old, Duration::from_secs(2)).await;
            }
            warn_if_loopback(&new);
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
