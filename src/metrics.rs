//! The daemon's own series (`errbudget_*`), all in one struct on the app's
//! own registry: no global registry, so tests can build as many as they like.
//! The `slo_*` series are rendered from state at scrape time by `render::metrics`.

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

pub struct DaemonMetrics {
    pub registry: Registry,
    pub build_info: IntGaugeVec,
    /// The query backend as detected: `product`, `version`, `semantics`.
    pub backend_info: IntGaugeVec,
    pub evaluation_duration: Histogram,
    /// `outcome` = `success` | `error` | `cancelled` (dropped unfinished
    /// when another query of the same SLO failed).
    pub queries_total: IntCounterVec,
    pub query_duration: Histogram,
    pub query_samples: IntCounter,
    /// `receiver`, `outcome`.
    pub notifications_total: IntCounterVec,
    pub config_last_reload_successful: IntGauge,
    pub config_last_reload_success_timestamp: Gauge,
    /// `outcome` = `success` | `failure`.
    pub config_reloads_total: IntCounterVec,
    /// State file writes, `outcome` = `success` | `failure`; no series
    /// without `--storage.path`.
    pub storage_writes_total: IntCounterVec,
    /// Size of the last state file written.
    pub storage_last_write_bytes: IntGaugeVec,
    /// Log lines that could not be written (full disk, closed stderr).
    pub log_lines_dropped: IntCounter,
}

impl DaemonMetrics {
    pub fn new() -> Self {
        Self::try_new().expect("metric definitions are static and valid")
    }

    fn try_new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let labels = crate::version::labels();
        let names: Vec<&str> = labels.iter().map(|(k, _)| *k).collect();
        let values: Vec<&str> = labels.iter().map(|(_, v)| *v).collect();
        let build_info = IntGaugeVec::new(
            Opts::new(
                "errbudget_build_info",
                "A metric with a constant '1' value labeled by version, revision, branch, build user and date, Rust version and target from which errbudget was built.",
            ),
            &names,
        )?;
        build_info.with_label_values(&values).set(1);
        let backend_info = IntGaugeVec::new(
            Opts::new(
                "errbudget_backend_info",
                "The query backend as detected by probe queries, value 1: product and version as it reports them, and the range semantics the queries are spelt for.",
            ),
            &["product", "version", "semantics"],
        )?;
        let evaluation_duration = Histogram::with_opts(
            HistogramOpts::new(
                "errbudget_evaluation_duration_seconds",
                "Duration of one evaluation cycle over every SLO.",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
            ]),
        )?;
        let queries_total = IntCounterVec::new(
            Opts::new(
                "errbudget_prometheus_queries_total",
                "Queries sent to the Prometheus API, by outcome.",
            ),
            &["outcome"],
        )?;
        let query_duration = Histogram::with_opts(
            HistogramOpts::new(
                "errbudget_prometheus_query_duration_seconds",
                "Duration of queries to the Prometheus API, retries included.",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )?;
        let query_samples = IntCounter::new(
            "errbudget_prometheus_query_samples_total",
            "Samples Prometheus reports it read for errbudget's queries (stats.samples.totalQueryableSamples).",
        )?;
        let notifications_total = IntCounterVec::new(
            Opts::new(
                "errbudget_notifications_total",
                "Alert notifications, by receiver and outcome.",
            ),
            &["receiver", "outcome"],
        )?;
        let config_last_reload_successful = IntGauge::new(
            "errbudget_config_last_reload_successful",
            "1 if the last configuration load succeeded.",
        )?;
        let config_last_reload_success_timestamp = Gauge::new(
            "errbudget_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
        )?;
        let config_reloads_total = IntCounterVec::new(
            Opts::new(
                "errbudget_config_reloads_total",
                "Configuration reloads, by outcome.",
            ),
            &["outcome"],
        )?;
        let storage_writes_total = IntCounterVec::new(
            Opts::new(
                "errbudget_storage_writes_total",
                "Writes of the state file (--storage.path), by outcome.",
            ),
            &["outcome"],
        )?;
        let storage_last_write_bytes = IntGaugeVec::new(
            Opts::new(
                "errbudget_storage_last_write_bytes",
                "Size in bytes of the last state file written.",
            ),
            &[],
        )?;
        let log_lines_dropped = crate::logging::dropped_counter();
        registry.register(Box::new(build_info.clone()))?;
        registry.register(Box::new(backend_info.clone()))?;
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        registry.register(Box::new(log_lines_dropped.clone()))?;
        registry.register(Box::new(evaluation_duration.clone()))?;
        registry.register(Box::new(queries_total.clone()))?;
        registry.register(Box::new(query_duration.clone()))?;
        registry.register(Box::new(query_samples.clone()))?;
        registry.register(Box::new(notifications_total.clone()))?;
        registry.register(Box::new(config_last_reload_successful.clone()))?;
        registry.register(Box::new(config_last_reload_success_timestamp.clone()))?;
        registry.register(Box::new(config_reloads_total.clone()))?;
        registry.register(Box::new(storage_writes_total.clone()))?;
        registry.register(Box::new(storage_last_write_bytes.clone()))?;
        for outcome in ["success", "error", "cancelled"] {
            queries_total.with_label_values(&[outcome]);
        }
        for outcome in ["success", "failure"] {
            config_reloads_total.with_label_values(&[outcome]);
        }
        Ok(DaemonMetrics {
            registry,
            build_info,
            backend_info,
            evaluation_duration,
            queries_total,
            query_duration,
            query_samples,
            notifications_total,
            config_last_reload_successful,
            config_last_reload_success_timestamp,
            config_reloads_total,
            storage_writes_total,
            storage_last_write_bytes,
            log_lines_dropped,
        })
    }
}

impl Default for DaemonMetrics {
    fn default() -> Self {
        Self::new()
    }
}
