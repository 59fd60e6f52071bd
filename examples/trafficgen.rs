//! A small traffic generator for the demo: simulates requests to two
//! services and serves their metrics at `/metrics` for Prometheus to scrape.
//!
//! Series: `http_requests_total{service,route,code}` and the histogram
//! `http_request_duration_seconds{service,route}`. Traffic has a steady low
//! error ratio; every `--incident-every` the `--incident-service` has
//! `--incident-duration` of `--incident-error-ratio` errors and slow
//! responses, so burn rates and alerts have something to show.
//!
//! Run: `cargo run --example trafficgen -- --listen 127.0.0.1:9101`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::{http::header, response::IntoResponse, routing::get, Router};
use clap::Parser;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

#[derive(Parser, Debug)]
#[command(about = "Simulated HTTP traffic with errors and latency, exposed as Prometheus metrics")]
struct Flags {
    /// Address to serve /metrics on.
    #[arg(long, default_value = "127.0.0.1:9101")]
    listen: SocketAddr,
    /// Requests per second per service.
    #[arg(long, default_value_t = 50.0)]
    rps: f64,
    /// Error ratio outside incidents.
    #[arg(long, default_value_t = 0.001)]
    error_ratio: f64,
    /// Service that has the incidents.
    #[arg(long, default_value = "checkout")]
    incident_service: String,
    /// Time between incident starts.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    incident_every: Duration,
    /// How long an incident lasts (it ends each `--incident-every` period).
    #[arg(long, default_value = "4m", value_parser = humantime::parse_duration)]
    incident_duration: Duration,
    /// Error ratio during an incident.
    #[arg(long, default_value_t = 0.3)]
    incident_error_ratio: f64,
}

const SERVICES: [(&str, [&str; 2]); 2] = [
    ("checkout", ["/pay", "/cart"]),
    ("catalog", ["/search", "/item"]),
];
const TICK: Duration = Duration::from_millis(100);

struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl Metrics {
    fn new() -> prometheus::Result<Metrics> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "Simulated HTTP requests."),
            &["service", "route", "code"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Simulated request latency.",
            )
            .buckets(vec![0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0]),
            &["service", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        // Expose every series from the start, so rate() has a baseline.
        for (service, routes) in SERVICES {
            for route in routes {
                for code in ["200", "500"] {
                    requests.with_label_values(&[service, route, code]);
                }
                duration.with_label_values(&[service, route]);
            }
        }
        Ok(Metrics {
            registry,
            requests,
            duration,
        })
    }
}

/// xorshift64: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn in_incident(flags: &Flags, elapsed: Duration) -> bool {
    let every = flags.incident_every.as_secs_f64().max(1.0);
    let phase = elapsed.as_secs_f64() % every;
    phase >= every - flags.incident_duration.as_secs_f64()
}

async fn simulate(flags: Arc<Flags>, metrics: Arc<Metrics>) {
    let start = Instant::now();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut carry = 0.0;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let incident = in_incident(&flags, start.elapsed());
        // Requests per service this tick, carrying the fraction over.
        carry += flags.rps * TICK.as_secs_f64();
        let n = carry.floor() as u64;
        carry -= n as f64;
        for (service, routes) in SERVICES {
            let hit = incident && service == flags.incident_service;
            let p = if hit {
                flags.incident_error_ratio
            } else {
                flags.error_ratio
            };
            for i in 0..n {
                let route = routes[(i % 2) as usize];
                let code = if rng.unit() < p { "500" } else { "200" };
                metrics
                    .requests
                    .with_label_values(&[service, route, code])
                    .inc();
                // ~40–140 ms normally; a third of requests take 0.3–1.3 s
                // during an incident.
                let slow = hit && rng.unit() < 0.33;
                let latency = if slow {
                    0.3 + rng.unit()
                } else {
                    0.04 + 0.1 * rng.unit()
                };
                metrics
                    .duration
                    .with_label_values(&[service, route])
                    .observe(latency);
            }
        }
    }
}

async fn serve_metrics(metrics: Arc<Metrics>) -> impl IntoResponse {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    match encoder.encode(&metrics.registry.gather(), &mut buf) {
        Ok(()) => (
            axum::http::StatusCode::OK,
            [(header::CONTENT_TYPE, encoder.format_type().to_string())],
            buf,
        ),
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain".to_string())],
            e.to_string().into_bytes(),
        ),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = Arc::new(Flags::parse());
    anyhow::ensure!(flags.rps > 0.0, "--rps must be positive");
    anyhow::ensure!(
        flags.incident_duration <= flags.incident_every,
        "--incident-duration must not exceed --incident-every"
    );
    let metrics = Arc::new(Metrics::new().context("registering metrics")?);
    let app = Router::new().route(
        "/metrics",
        get({
            let m = metrics.clone();
            move || serve_metrics(m.clone())
        }),
    );
    let listener = tokio::net::TcpListener::bind(flags.listen)
        .await
        .with_context(|| format!("binding {}", flags.listen))?;
    eprintln!("trafficgen: serving http://{}/metrics", flags.listen);
    tokio::spawn(simulate(flags.clone(), metrics));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("serving /metrics")?;
    Ok(())
}
