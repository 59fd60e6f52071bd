//! What `/metrics` costs at 1,000 and 10,000 SLOs, without Prometheus:
//! `cargo run --release --example metrics_render`.
//!
//! The SLOs are those of `cargo bench --bench scale` (one availability
//! SLO per service, the default windows and alert policy, label `team`),
//! with figures computed as an evaluation computes them from made-up event
//! counts. Each scrape goes through the exposition cache as the web server
//! calls it, in this order: the first plain scrape of a snapshot renders
//! (`render ms`), the first gzip one compresses what was rendered
//! (`gzip ms`), then a cached plain and a cached gzip scrape, which gather
//! and encode the daemon's own series and copy the rest. Bytes are those
//! of the whole body. METRICS_RENDER_SIZES (1000,10000) and
//! METRICS_RENDER_RUNS (5; the best of the runs is printed) change the run.

use std::sync::Arc;
use std::time::Instant;

use errbudget::budget::{self, Coverage, Events};
use errbudget::metrics::DaemonMetrics;
use errbudget::model::{Severity, Slo};
use errbudget::render::metrics::{Cache, Encoding, Format};
use errbudget::state::{
    AlertStatus, Figures, LabelSet, SloOutcome, Snapshot, Status, WindowFigures,
};

const NOW: i64 = 1_764_118_800;

fn spec(service: &str) -> String {
    format!(
        "version: \"prometheus/v1\"\nservice: \"{service}\"\nlabels:\n  team: \"bench\"\nslos:\n\
         \x20 - name: \"availability\"\n    objective: 99.9\n    description: \"availability of {service}\"\n\
         \x20   sli:\n      events:\n\
         \x20       error_query: 'sum (rate(http_requests_total{{service=\"{service}\",code=\"500\"}}[{{{{.window}}}}]))'\n\
         \x20       total_query: 'sum (rate(http_requests_total{{service=\"{service}\"}}[{{{{.window}}}}]))'\n\
         \x20   alerting:\n      name: \"{service}HighErrorRate\"\n      page_alert:\n        labels:\n\
         \x20         severity: page\n      ticket_alert:\n        labels:\n          severity: ticket\n"
    )
}

/// A small deterministic generator in [0, 1), so the figures repeat.
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

/// Figures as the evaluation derives them from event counts: 50 to 150
/// requests a second (rates, so not whole numbers, as Prometheus returns
/// them) of which up to 0.2 % fail, none for every seventh service (so
/// some exhaustion times are +Inf).
fn figures(slo: &Slo, n: usize) -> Figures {
    let budget_ratio = slo.objective.budget_ratio();
    let period_secs = slo.period.as_secs() as f64;
    let mut seed = n as u64 + 1;
    let ratio = if n % 7 == 0 {
        0.0
    } else {
        0.002 * lcg(&mut seed)
    };
    let per_second = 50.0 + 100.0 * lcg(&mut seed);
    let coverage = Coverage::full(period_secs);
    let total = per_second * period_secs;
    let period = Events::new(total * ratio, total);
    let period_error_ratio = period.error_ratio();
    let remaining_seconds = budget::remaining_seconds(
        period_error_ratio,
        budget_ratio,
        period_secs,
        coverage.seconds,
    );
    let windows: Vec<WindowFigures> = slo
        .windows()
        .into_iter()
        .map(|window| {
            let total = window.secs() as f64 * per_second * (0.9 + 0.2 * lcg(&mut seed));
            let events = Events::new(total * ratio * 2.0 * lcg(&mut seed), total);
            let error_ratio = events.error_ratio();
            WindowFigures {
                window,
                events,
                error_ratio,
                burn_rate: budget::burn_rate(error_ratio, budget_ratio),
                exhaustion_seconds: budget::exhaustion_after(remaining_seconds, error_ratio),
                excluded_seconds: 0.0,
            }
        })
        .collect();
    let burn = |w| {
        windows
            .iter()
            .find(|f| f.window == w)
            .map_or(0.0, |f| f.burn_rate)
    };
    let alerts = slo
        .alerting
        .windows
        .iter()
        .map(|a| {
            let condition = burn(a.long) > a.factor && burn(a.short) > a.factor;
            AlertStatus {
                severity: a.severity,
                long: a.long,
                short: a.short,
                burn_rate_threshold: a.factor,
                condition,
                low_traffic: false,
                firing: condition && a.severity == Severity::Page,
            }
        })
        .collect();
    let remaining_ratio = budget::remaining_ratio(
        period_error_ratio,
        budget_ratio,
        period_secs,
        coverage.seconds,
    );
    Figures {
        windows,
        period_error_ratio,
        remaining_ratio,
        remaining_seconds,
        coverage,
        period_events: Some(period),
        period_start: 1_761_526_800,
        period_end: 1_761_526_800 + period_secs as i64,
        budget_seconds: period_secs * budget_ratio,
        excluded_seconds: 0.0,
        release_frozen: remaining_ratio < slo.release_freeze_below,
        alerts,
    }
}

fn snapshot(n: usize) -> Snapshot {
    let results: Vec<(Arc<Slo>, SloOutcome)> = (0..n)
        .map(|i| {
            let service = format!("svc{i:05}");
            let mut slos = match errbudget::spec::parse_specs("bench.yaml", &spec(&service)) {
                Ok(s) => s,
                Err(d) => panic!("the example's spec is invalid: {d:?}"),
            };
            let slo = Arc::new(slos.remove(0));
            let f = figures(&slo, i);
            (slo, Ok(vec![(LabelSet::new(), Status::Ok, f)]))
        })
        .collect();
    Snapshot::default().next(NOW, results)
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(name) {
        Ok(v) => v
            .split(',')
            .map(|s| match s.trim().parse() {
                Ok(n) => n,
                Err(e) => panic!("{name}={v}: {e}"),
            })
            .collect(),
        Err(_) => default.to_vec(),
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let sizes = env_list("METRICS_RENDER_SIZES", &[1_000, 10_000]);
    let runs = env_list("METRICS_RENDER_RUNS", &[5])[0].max(1);
    let metrics = DaemonMetrics::new();
    println!(
        "{:>6} {:<11} {:>9} {:>8} {:>11} {:>10} {:>10} {:>9}",
        "SLOs", "format", "render ms", "gzip ms", "plain ms", "gzipped ms", "plain B", "gzip B"
    );
    for n in sizes {
        let snap = Arc::new(snapshot(n));
        for format in [Format::Text, Format::OpenMetrics] {
            // Best of `runs`: first plain scrape (renders), first gzip
            // scrape (compresses), then a cached scrape of each.
            let mut best = [f64::MAX; 4];
            let (mut plain_bytes, mut gzip_bytes) = (0, 0);
            for _ in 0..runs {
                let cache = Cache::default();
                let mut times = [0.0; 4];
                for (k, encoding) in [
                    Encoding::Identity,
                    Encoding::Gzip,
                    Encoding::Identity,
                    Encoding::Gzip,
                ]
                .into_iter()
                .enumerate()
                {
                    let t = Instant::now();
                    let answer = match cache.scrape(&metrics, &snap, format, encoding).await {
                        Ok(a) => a,
                        Err(e) => panic!("scrape: {e}"),
                    };
                    times[k] = ms(t);
                    let bytes: usize = answer.chunks.iter().map(|c| c.len()).sum();
                    match encoding {
                        Encoding::Identity => plain_bytes = bytes,
                        Encoding::Gzip => gzip_bytes = bytes,
                    }
                }
                assert_eq!((cache.renders(), cache.compressions()), (1, 1));
                for (b, t) in best.iter_mut().zip(times) {
                    *b = b.min(t);
                }
            }
            let [render, gzip, plain, gzipped] = best;
            println!(
                "{n:>6} {:<11} {render:>9.1} {gzip:>8.1} {plain:>11.2} {gzipped:>10.2} {plain_bytes:>10} {gzip_bytes:>9}",
                format.name()
            );
        }
    }
}
