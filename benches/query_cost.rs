//! Query cost of errbudget against the naive plan, on 30 days of
//! backfilled minute data. Run: `cargo bench --bench query_cost`.
//!
//! Prints (a) samples Prometheus read for errbudget per evaluation cycle
//! after start-up (delta of `errbudget_prometheus_query_samples_total`
//! between cycles), (b) samples the naive plan reads — for each window in
//! 5m,30m,1h,2h,6h,1d,3d,30d, `sum(rate(...[W]))` for the error and the
//! total query of every SLO, summing `stats.samples.totalQueryableSamples`
//! — and their ratio; the cycle duration and errbudget's RSS.
//!
//! Knobs (env): BENCH_SLOS (100), BENCH_SERVICES (10), BENCH_CYCLES (3),
//! BENCH_INTERVAL (10s).

#[allow(dead_code)]
#[path = "../tests/integration/bins.rs"]
mod bins;
#[allow(dead_code)]
#[path = "../tests/integration/events.rs"]
mod events;
#[allow(dead_code)]
#[path = "../tests/integration/fixtures.rs"]
mod fixtures;
#[allow(dead_code)]
#[path = "../tests/integration/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "../tests/integration/http.rs"]
mod http;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use events::{Series, Traffic, DAY, MINUTE};
use harness::{poll, Daemon, Prometheus, Workspace};

const NAIVE_WINDOWS: [&str; 8] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"];

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let slos = env_num("BENCH_SLOS", 100).max(1);
    let services = env_num("BENCH_SERVICES", 10).clamp(1, slos);
    let cycles = env_num("BENCH_CYCLES", 3).max(1);
    let interval = env_num("BENCH_INTERVAL", 10).max(1);

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let end = now - now.rem_euclid(MINUTE);
    let start = end - 31 * DAY;
    let names: Vec<&'static str> = (0..services)
        .map(|i| &*Box::leak(format!("svc{i:03}").into_boxed_str()))
        .collect();
    let t = Instant::now();
    let gens: Vec<_> = names
        .iter()
        .enumerate()
        .map(|(i, name)| Series {
            service: name,
            labels: vec![],
            traffic: Traffic::Steady {
                base: 500,
                spread: 100,
                p: 0.001,
                incidents: vec![],
            },
            resets: vec![],
            histogram: false,
            seed: 100 + i as u64,
        })
        .map(|s| s.generate(start, end))
        .collect();
    let (_tmp, blocks) = harness::backfill(&events::openmetrics_days(&gens, start, end), false);
    eprintln!("backfilled {services} services x 31d in {:?}", t.elapsed());
    let prom = Prometheus::start(&blocks);

    // `slos` SLOs spread over the services, objectives varied.
    let ws = Workspace::new();
    let mut specs = vec![];
    let per = slos.div_ceil(services);
    let mut made = 0;
    for name in &names {
        let objectives = ["99", "99.5", "99.9", "99.95"];
        let slo_names: Vec<String> = (0..per.min(slos - made))
            .map(|j| format!("slo{j:03}"))
            .collect();
        made += slo_names.len() as u64;
        let v: Vec<fixtures::Slo> = slo_names
            .iter()
            .enumerate()
            .map(|(j, n)| fixtures::slo(n, objectives[j % objectives.len()], name, false))
            .collect();
        specs.push((format!("{name}.yaml"), fixtures::spec(name, "bench", &v)));
    }
    let spec_refs: Vec<(&str, &str)> = specs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let cfg = ws.config(&prom.url(), &format!("{interval}s"), &spec_refs);

    let d = Daemon::start(&cfg);
    let ready = poll(Duration::from_secs(300), || {
        (d.get("/-/ready").status == 200).then_some(())
    });
    assert!(
        ready.is_some(),
        "errbudget not ready in 300s\n{}",
        d.guard.log_tail()
    );

    // Wait for cycle boundaries via the evaluation-duration histogram count.
    let read = || {
        let m = d.get("/metrics").body;
        (
            metric(&m, "errbudget_evaluation_duration_seconds_count").unwrap_or(0.0),
            metric(&m, "errbudget_evaluation_duration_seconds_sum").unwrap_or(0.0),
            metric(&m, "errbudget_prometheus_query_samples_total").unwrap_or(0.0),
        )
    };
    let next_cycle = |after: f64| {
        poll(Duration::from_secs(interval * 3 + 120), || {
            let r = read();
            (r.0 > after).then_some(r)
        })
        .unwrap_or_else(|| panic!("no evaluation cycle completed\n{}", d.guard.log_tail()))
    };
    let first = next_cycle(read().0);
    let mut last = first;
    for _ in 0..cycles {
        last = next_cycle(last.0);
    }
    let n = last.0 - first.0;
    let samples_per_cycle = (last.2 - first.2) / n;
    let cycle_secs = (last.1 - first.1) / n;

    // The naive plan at the same data: every window, both queries, per SLO.
    let at = end;
    let mut naive_per_service = 0.0;
    for w in NAIVE_WINDOWS {
        for sel in ["{service=\"svc000\",code=\"500\"}", "{service=\"svc000\"}"] {
            let q = format!("sum(rate(http_requests_total{sel}[{w}]))");
            let v = prom.query_raw(&q, at, true);
            naive_per_service += v["data"]["stats"]["samples"]["totalQueryableSamples"]
                .as_f64()
                .unwrap_or_else(|| panic!("no stats for {q}: {v}"));
        }
    }
    // Every service has the same series shape, so one service's cost is
    // every SLO's cost.
    let naive = naive_per_service * slos as f64;

    println!("query_cost: {slos} SLOs over {services} services, 31 days of 1-minute samples");
    println!("  errbudget samples/cycle (after start-up, {n} cycles): {samples_per_cycle:.0}");
    println!("  naive plan samples/cycle:                         {naive:.0}");
    println!(
        "  ratio naive/errbudget:                            {:.1}x",
        naive / samples_per_cycle.max(1.0)
    );
    println!("  cycle duration:                                   {cycle_secs:.3}s");
    match rss_kib(d.guard.pid()) {
        Some(kib) => println!(
            "  errbudget RSS:                                    {:.1} MiB",
            kib as f64 / 1024.0
        ),
        None => println!("  errbudget RSS:                                    unknown"),
    }
}
