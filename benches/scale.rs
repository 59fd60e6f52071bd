//! Scale and cost of the daemon against a real Prometheus.
//! Run: `cargo bench --bench scale` (BENCH_SCENARIOS picks a subset).
//!
//! Scenarios (one availability SLO per service, the total query over two
//! series `code="200"|"500"`, the error query over one, 30 s evaluation
//! interval, one Prometheus; 2.42 at /usr/bin/prometheus unless
//! BENCH_PROMETHEUS or ERRBUDGET_PROMETHEUS from `scripts/backends.sh --env`
//! names another build):
//!
//! * `cost`: 50 services with 31 days of 60 s samples, and 50 more whose
//!   last BENCH_FINE_HOURS (8) are sampled every 5 s (older data at 60 s),
//!   in one Prometheus, one daemon for each 50. This is the only scenario
//!   with a whole period of data, so its cold start is the real one; its
//!   steady state is averaged over BENCH_CYCLES (10) cycles, i.e. 5 minutes,
//!   which includes the one new 5-minute bucket each SLO fetches per
//!   5 minutes. The naive plan (`sum(rate(x[W]))` per window
//!   5m,30m,1h,2h,6h,1d,3d,30d, error and total query, per SLO, per cycle)
//!   is measured on one service of each kind with `stats=all` and
//!   multiplied by the SLOs (every service has the same series shape).
//! * `100`, `1000`, `10000`: that many services with BENCH_SCALE_HOURS (8)
//!   of 60 s samples. 30 days for 10,000 services (864 M samples) cannot be
//!   backfilled here in minutes; 8 h holds every window the daemon reads
//!   from Prometheus each cycle (up to 6 h), and the bucket history is laid
//!   out over the whole period whatever the data holds (empty buckets
//!   included), so the per-cycle figures (queries, samples, duration, CPU,
//!   RSS, /metrics) are those of a daemon with a full period of data. Only
//!   the cold start is smaller than a real one (it reads 8 h, not 30 days):
//!   scale it by the `cost` scenario's per-SLO cold start. The naive ratio
//!   there uses the per-SLO naive cost measured in `cost` (30 days), or
//!   3 series × W/60 s per window when `cost` did not run.
//!
//! Every dataset extends past the bench's start by a margin, so that the
//! queries at "now" keep reading full windows while the bench runs.
//! Samples, queries and duration come from the daemon's own counters
//! (`errbudget_prometheus_query_samples_total`, `..._queries_total`) and
//! its `evaluation cycle done` debug log lines; CPU from utime+stime in
//! /proc/PID/stat of each process between two cycle ends; RSS from
//! /proc/PID/status (VmRSS now, VmHWM the peak since start).
//!
//! Start-up after a restart: when `errbudget run --help` lists
//! `--storage.path`, the daemon runs with it, is stopped for
//! BENCH_RESTART_GAP seconds (120) and started again; its first cycle is
//! measured against the cold start. Otherwise "n/a".
//!
//! Knobs (env): BENCH_SCENARIOS (cost,100,1000,10000), BENCH_CYCLES (10),
//! BENCH_SCALE_CYCLES (4), BENCH_SCALE_HOURS (8), BENCH_FINE_HOURS (8),
//! BENCH_RESTART_GAP (120), BENCH_PROMETHEUS.

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

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use events::{DAY, HOUR, MINUTE};
use harness::{free_port, loopback, Guard, Prometheus, Workspace};

const NAIVE_WINDOWS: [(&str, i64); 8] = [
    ("5m", 300),
    ("30m", 1_800),
    ("1h", HOUR),
    ("2h", 2 * HOUR),
    ("6h", 6 * HOUR),
    ("1d", DAY),
    ("3d", 3 * DAY),
    ("30d", 30 * DAY),
];
const INTERVAL: u64 = 30;
const BLOCK: i64 = 2 * HOUR;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

// ---------------------------------------------------------------- data

/// One service's two counters; `fine_from`: from then on sampled every 5 s.
struct Gen {
    service: &'static str,
    rng: u64,
    good: u64,
    bad: u64,
    fine_from: i64,
    last: Option<i64>,
}

impl Gen {
    fn new(service: &'static str, seed: u64, fine_from: i64) -> Gen {
        Gen {
            service,
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            good: 0,
            bad: 0,
            fine_from,
            last: None,
        }
    }
    fn next(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
    /// Events of `step` seconds at 500..600 req/min, 0.1 % errors
    /// (stochastic rounding keeps the mean).
    fn advance(&mut self, step: i64) {
        let per_min = 500 + self.next() % 100;
        let unit = |r: u64| (r >> 11) as f64 / (1u64 << 53) as f64;
        let count = (per_min as f64 * step as f64 / 60.0 + unit(self.next())).floor();
        let bad = (count * 0.001 + unit(self.next())).floor().min(count);
        self.good += (count - bad) as u64;
        self.bad += bad as u64;
    }
    /// Appends samples with `from <= t < to` (aligned), advancing state.
    fn write(&mut self, out: &mut String, from: i64, to: i64) {
        let mut times = vec![];
        let mut t = from;
        while t < to {
            times.push(t);
            t += if t >= self.fine_from { 5 } else { MINUTE };
        }
        let mut vals = Vec::with_capacity(times.len());
        for &t in &times {
            // Chunks continue each other: the step from the last sample
            // of the previous chunk is taken here.
            if let Some(p) = self.last {
                self.advance(t - p);
            }
            self.last = Some(t);
            vals.push((self.good, self.bad));
        }
        for (code, pick) in [("200", 0), ("500", 1)] {
            for (t, v) in times.iter().zip(&vals) {
                let v = if pick == 0 { v.0 } else { v.1 };
                let _ = writeln!(
                    out,
                    "http_requests_total{{service=\"{}\",code=\"{code}\"}} {v} {t}",
                    self.service
                );
            }
        }
    }
}

/// Backfills `gens` over `[start, end)` in 2 h blocks (promtool re-reads
/// its input once per block, so one input per block reads each once).
fn backfill(gens: &mut [Gen], start: i64, end: i64) -> (Option<tempfile::TempDir>, PathBuf) {
    let mut chunks = vec![];
    let mut from = start;
    while from < end {
        let to = (from - from.rem_euclid(BLOCK) + BLOCK).min(end);
        let mut s =
            String::from("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
        for g in gens.iter_mut() {
            g.write(&mut s, from, to);
        }
        s.push_str("# EOF\n");
        chunks.push(s);
        from = to;
    }
    harness::backfill(&chunks, false)
}

// ---------------------------------------------------------------- processes

fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14, stime 15.
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / hz.max(1.0)
}

fn status_mib(pid: u32, key: &str) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

fn has_storage_flag() -> bool {
    let (_, out, err) = harness::run_bounded(
        Command::new(harness::errbudget_bin()).args(["run", "--help"]),
        Duration::from_secs(30),
    );
    format!("{out}{err}").contains("--storage.path")
}

/// `errbudget run` at debug level (for its per-cycle log line).
struct Daemon {
    addr: SocketAddr,
    guard: Guard,
    log_read: usize,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(cfg: &Path, storage: Option<&Path>) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let mut cmd = Command::new(harness::errbudget_bin());
        cmd.arg("run")
            .arg("--config.file")
            .arg(cfg)
            .arg("--web.listen-address")
            .arg(format!("127.0.0.1:{port}"))
            .args(["--log.level", "debug"]);
        if let Some(s) = storage {
            cmd.arg("--storage.path").arg(s);
        }
        let guard = Guard::spawn("errbudget", &mut cmd, dir.path().join("errbudget.log"));
        Daemon {
            addr: loopback(port),
            guard,
            log_read: 0,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Waits (bounded) for the next `evaluation cycle done` line: its
    /// `seconds` and `failed`.
    fn next_cycle(&mut self, timeout: Duration) -> (f64, u64) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = std::fs::read_to_string(&self.guard.log).unwrap_or_default();
            if let Some(pos) = log[self.log_read.min(log.len())..].find("evaluation cycle done") {
                let at = self.log_read + pos;
                if let Some(nl) = log[at..].find('\n') {
                    let line = &log[at..at + nl];
                    self.log_read = at + nl;
                    let field = |k: &str| {
                        line.split_whitespace()
                            .find_map(|kv| kv.strip_prefix(k))
                            .and_then(|v| v.parse::<f64>().ok())
                            .unwrap_or(f64::NAN)
                    };
                    return (field("seconds="), field("failed=") as u64);
                }
            }
            if let Some(st) = self.guard.exited() {
                panic!("errbudget exited ({st})\n{}", self.guard.log_tail());
            }
            assert!(
                Instant::now() < deadline,
                "no evaluation cycle within {timeout:?}\n{}",
                self.guard.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// (samples read, queries sent) so far.
    fn counters(&self) -> (f64, f64) {
        let r = http::get(self.addr, "/metrics")
            .unwrap_or_else(|e| panic!("GET /metrics: {e}\n{}", self.guard.log_tail()));
        let mut samples = 0.0;
        let mut queries = 0.0;
        for l in r.body.lines() {
            let v = l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            if l.starts_with("errbudget_prometheus_query_samples_total ") {
                samples = v.unwrap_or(0.0);
            } else if l.starts_with("errbudget_prometheus_queries_total{") {
                queries += v.unwrap_or(0.0);
            }
        }
        (samples, queries)
    }

    fn stop(&mut self) {
        self.guard.signal("TERM");
        if self.guard.wait_exit(Duration::from_secs(30)).is_none() {
            panic!("errbudget did not stop within 30s");
        }
    }
}

/// GET /metrics, optionally with gzip: (bytes on the wire, seconds).
fn scrape(addr: SocketAddr, gzip: bool) -> (usize, f64) {
    let t = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let enc = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    write!(
        s,
        "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n{enc}Connection: close\r\n\r\n"
    )
    .expect("write request");
    let mut raw = vec![];
    s.read_to_end(&mut raw).expect("read /metrics");
    let secs = t.elapsed().as_secs_f64();
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    (raw.len() - head_end, secs)
}

/// One `errbudget gate --output json` run against the daemon at `addr`:
/// process start, the `/api/v1/slos` fetch of every SLO and the decision.
fn gate_secs(addr: SocketAddr, service: &str) -> f64 {
    let url = format!("http://{addr}");
    let t = Instant::now();
    let out = Command::new(harness::errbudget_bin())
        .args([
            "gate",
            "--url",
            &url,
            "--service",
            service,
            "--output",
            "json",
        ])
        .output()
        .expect("run gate");
    let secs = t.elapsed().as_secs_f64();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("gate JSON");
    assert!(
        doc["slos"].as_array().is_some_and(|s| !s.is_empty()),
        "{doc}"
    );
    secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

// ---------------------------------------------------------------- measuring

struct Figures {
    cold_samples: f64,
    cold_secs: f64,
    cold_ready_secs: f64,
    cycles: u64,
    samples: f64,
    samples_min: f64,
    samples_max: f64,
    queries: f64,
    cycle_mean: f64,
    cycle_max: f64,
    failed: u64,
    cpu: f64,
    prom_cpu: f64,
    rss: f64,
    hwm: f64,
    first_scrape: f64,
    metrics_plain: (usize, f64),
    metrics_gzip: (usize, f64),
    /// `gate --output json` for one service, whole process: median seconds.
    gate_json: f64,
    restart: Option<(f64, f64)>,
}

/// Cold start, then `cycles` steady cycles, /metrics, and (with the
/// storage flag) a restart after `gap`.
fn measure(
    cfg: &Path,
    prom_pid: u32,
    cycles: u64,
    storage: bool,
    gap: u64,
    service: &str,
) -> Figures {
    let store = tempfile::tempdir().expect("tempdir");
    let store_path = storage.then(|| store.path().join("store"));
    let t = Instant::now();
    let mut d = Daemon::start(cfg, store_path.as_deref());
    let cold_timeout = Duration::from_secs(900);
    let (cold_secs, _) = d.next_cycle(cold_timeout);
    let cold_ready_secs = t.elapsed().as_secs_f64();
    let (cold_samples, _) = d.counters();
    // One cycle to settle (buckets that became final during the cold start).
    let step = Duration::from_secs(INTERVAL * 4 + 60);
    d.next_cycle(step);
    let (s0, q0) = d.counters();
    let (c0, p0) = (cpu_secs(d.pid()), cpu_secs(prom_pid));
    let (mut prev, mut min, mut max) = (s0, f64::MAX, 0f64);
    let (mut secs, mut failed) = (vec![], 0);
    for i in 0..cycles {
        let (s, f) = d.next_cycle(step);
        secs.push(s);
        failed += f;
        if i + 1 < cycles {
            // Per-cycle spread; these reads cost a render each, outside
            // the CPU figure only at the ends, so keep them few.
            let (now, _) = d.counters();
            min = min.min(now - prev);
            max = max.max(now - prev);
            prev = now;
        }
    }
    let (c1, p1) = (cpu_secs(d.pid()), cpu_secs(prom_pid));
    // The first scrape after a cycle renders the new snapshot; the
    // following ones are served from the exposition cache.
    let t = Instant::now();
    let (s1, q1) = d.counters();
    let first_scrape = t.elapsed().as_secs_f64();
    min = min.min(s1 - prev);
    max = max.max(s1 - prev);
    let n = cycles as f64;
    let rss = status_mib(d.pid(), "VmRSS:");
    let hwm = status_mib(d.pid(), "VmHWM:");
    let plain: Vec<(usize, f64)> = (0..5).map(|_| scrape(d.addr, false)).collect();
    let gz: Vec<(usize, f64)> = (0..5).map(|_| scrape(d.addr, true)).collect();
    let pick = |v: &[(usize, f64)]| (v[0].0, median(v.iter().map(|x| x.1).collect()));
    let gate_json = median((0..5).map(|_| gate_secs(d.addr, service)).collect());
    let restart = storage.then(|| {
        d.stop();
        std::thread::sleep(Duration::from_secs(gap));
        let mut d2 = Daemon::start(cfg, store_path.as_deref());
        let (secs, _) = d2.next_cycle(cold_timeout);
        let (samples, _) = d2.counters();
        (samples, secs)
    });
    Figures {
        cold_samples,
        cold_secs,
        cold_ready_secs,
        cycles,
        samples: (s1 - s0) / n,
        samples_min: min,
        samples_max: max,
        queries: (q1 - q0) / n,
        cycle_mean: secs.iter().sum::<f64>() / n,
        cycle_max: secs.iter().cloned().fold(0.0, f64::max),
        failed,
        cpu: (c1 - c0) / n,
        prom_cpu: (p1 - p0) / n,
        rss,
        hwm,
        first_scrape,
        metrics_plain: pick(&plain),
        metrics_gzip: pick(&gz),
        gate_json,
        restart,
    }
}

/// Samples the naive plan reads for one SLO of `service` at `at`.
fn naive_per_slo(prom: &Prometheus, service: &str, at: i64) -> f64 {
    let mut sum = 0.0;
    for (w, _) in NAIVE_WINDOWS {
        for sel in [
            format!("{{service=\"{service}\",code=\"500\"}}"),
            format!("{{service=\"{service}\"}}"),
        ] {
            let q = format!("sum(rate(http_requests_total{sel}[{w}]))");
            let v = prom.query_raw(&q, at, true);
            sum += v["data"]["stats"]["samples"]["totalQueryableSamples"]
                .as_f64()
                .unwrap_or_else(|| panic!("no stats for {q}: {v}"));
        }
    }
    sum
}

/// Naive plan on 30 days of 60 s data when not measured: 3 series × W/60.
fn naive_analytic() -> f64 {
    NAIVE_WINDOWS
        .iter()
        .map(|(_, s)| 3.0 * (*s / MINUTE) as f64)
        .sum()
}

fn config(ws: &Workspace, prom: &Prometheus, services: &[&'static str]) -> PathBuf {
    let specs: Vec<(String, String)> = services
        .iter()
        .map(|s| {
            let slo = fixtures::slo("availability", "99.9", s, false);
            (format!("{s}.yaml"), fixtures::spec(s, "bench", &[slo]))
        })
        .collect();
    let refs: Vec<(&str, &str)> = specs
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    ws.config(&prom.url(), &format!("{INTERVAL}s"), &refs)
}

fn pct(a: f64, b: f64) -> String {
    format!("{:.3} %", 100.0 * a / b.max(1.0))
}

fn print_figures(f: &Figures, slos: usize, naive: f64, naive_note: &str, targets: bool) {
    let row = |k: &str, v: String| println!("  {k:<52} {v}");
    row("cold start: samples read", format!("{:.0}", f.cold_samples));
    row(
        "cold start: first cycle / until done",
        format!("{:.2} s / {:.2} s", f.cold_secs, f.cold_ready_secs),
    );
    match f.restart {
        Some((s, secs)) => row(
            "restart: samples / seconds / share of cold",
            format!(
                "{s:.0} / {secs:.2} s / {} (target <= 1 %)",
                pct(s, f.cold_samples)
            ),
        ),
        None => row(
            "restart after a few minutes",
            "n/a (no --storage.path)".into(),
        ),
    }
    row(
        &format!("steady: samples/cycle (mean of {})", f.cycles),
        format!(
            "{:.0} (min {:.0}, max {:.0}; {:.1} per SLO)",
            f.samples,
            f.samples_min,
            f.samples_max,
            f.samples / slos as f64
        ),
    );
    row(
        "steady: queries (HTTP requests)/cycle",
        format!("{:.1}", f.queries),
    );
    row(
        &format!("naive plan samples/cycle ({naive_note})"),
        format!("{naive:.0}"),
    );
    row(
        "steady share of naive",
        format!(
            "{} ({:.0}x fewer; target <= 0.1 %)",
            pct(f.samples, naive),
            naive / f.samples.max(1.0)
        ),
    );
    row(
        "steady samples/minute",
        format!("{:.0}", f.samples * 60.0 / INTERVAL as f64),
    );
    let t = |s: &str| {
        if targets {
            s.to_string()
        } else {
            String::new()
        }
    };
    row(
        "cycle duration mean / max",
        format!(
            "{:.3} s / {:.3} s{}",
            f.cycle_mean,
            f.cycle_max,
            t(" (target at 10,000: <= 3 s)")
        ),
    );
    row(
        "failed SLO evaluations in those cycles",
        f.failed.to_string(),
    );
    row("daemon CPU/cycle", format!("{:.3} s", f.cpu));
    row("Prometheus CPU/cycle", format!("{:.3} s", f.prom_cpu));
    row(
        "daemon RSS now / peak",
        format!(
            "{:.1} MiB / {:.1} MiB{}",
            f.rss,
            f.hwm,
            t(" (targets: <= 64 MiB at 1,000, <= 512 MiB at 10,000)")
        ),
    );
    row(
        "/metrics first scrape after a cycle",
        format!(
            "{:.1} ms{}",
            f.first_scrape * 1e3,
            t(" (target <= 200 ms at 10,000)")
        ),
    );
    row(
        "/metrics plain: bytes / cached scrape",
        format!(
            "{} / {:.1} ms{}",
            f.metrics_plain.0,
            f.metrics_plain.1 * 1e3,
            ""
        ),
    );
    row(
        "/metrics gzip: bytes / scrape",
        format!("{} / {:.1} ms", f.metrics_gzip.0, f.metrics_gzip.1 * 1e3),
    );
    row(
        "gate --output json, whole process (median of 5)",
        format!("{:.1} ms (target < 100 ms)", f.gate_json * 1e3),
    );
}

fn prometheus_version() -> String {
    let (_, out, err) = harness::run_bounded(
        Command::new(harness::prometheus()).arg("--version"),
        Duration::from_secs(30),
    );
    let text = format!("{out}{err}");
    format!(
        "{} ({})",
        text.lines().next().unwrap_or("?").trim(),
        harness::prometheus()
    )
}

fn main() {
    if let Ok(p) = std::env::var("BENCH_PROMETHEUS") {
        std::env::set_var("ERRBUDGET_PROMETHEUS", p);
    }
    let scenarios = std::env::var("BENCH_SCENARIOS").unwrap_or("cost,100,1000,10000".into());
    let cycles = env_num("BENCH_CYCLES", 10).max(1);
    let scale_cycles = env_num("BENCH_SCALE_CYCLES", 4).max(1);
    let scale_hours = env_num("BENCH_SCALE_HOURS", 8).max(7) as i64;
    let fine_hours = env_num("BENCH_FINE_HOURS", 8).max(1) as i64;
    let gap = env_num("BENCH_RESTART_GAP", 120);
    let storage = has_storage_flag();
    let margin = 30 * MINUTE + 2 * gap as i64;
    println!("scale bench: {}", prometheus_version());
    println!(
        "  errbudget {} (release), evaluation interval {INTERVAL}s, --storage.path {}",
        harness::errbudget_bin(),
        if storage {
            "available"
        } else {
            "not available"
        }
    );
    let mut naive_30d: Option<f64> = None;
    for sc in scenarios
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let began = Instant::now();
        let now = unix_now();
        let now = now - now.rem_euclid(MINUTE);
        if sc == "cost" {
            let n = 50;
            let coarse: Vec<&'static str> = (0..n).map(|i| leak(format!("c{i:03}"))).collect();
            let fine: Vec<&'static str> = (0..n).map(|i| leak(format!("f{i:03}"))).collect();
            let start = now - 31 * DAY;
            let fine_from = now - fine_hours * HOUR;
            let mut gens: Vec<Gen> = coarse
                .iter()
                .enumerate()
                .map(|(i, s)| Gen::new(s, i as u64 + 1, i64::MAX))
                .chain(
                    fine.iter()
                        .enumerate()
                        .map(|(i, s)| Gen::new(s, i as u64 + 1000, fine_from)),
                )
                .collect();
            let t = Instant::now();
            let (_tmp, blocks) = backfill(&mut gens, start, now + margin);
            let backfilled = t.elapsed();
            let prom = Prometheus::start(&blocks);
            let naive_c = naive_per_slo(&prom, coarse[0], now);
            let naive_f = naive_per_slo(&prom, fine[0], now);
            naive_30d = Some(naive_c);
            let ws_c = Workspace::new();
            let ws_f = Workspace::new();
            let cfg_c = config(&ws_c, &prom, &coarse);
            let cfg_f = config(&ws_f, &prom, &fine);
            let pid = prom.guard.pid();
            // Both daemons at once: their sample counts are their own;
            // the time and CPU figures of this scenario are not the point.
            let (fc, ff) = std::thread::scope(|s| {
                let a = s.spawn(|| measure(&cfg_c, pid, cycles, storage, gap, coarse[0]));
                let b = s.spawn(|| measure(&cfg_f, pid, cycles, false, gap, fine[0]));
                (a.join().expect("60 s run"), b.join().expect("5 s run"))
            });
            println!(
                "\n[cost] 50 SLOs, 31 days of 60 s samples (backfill {:.0?}, {} blocks)",
                backfilled, prom.blocks_loaded
            );
            print_figures(&fc, n, naive_c * n as f64, "measured, 30 d", false);
            println!(
                "  {:<52} {:.0} (target <= 1,500)",
                "samples/minute, 50 SLOs over 30 days at 60 s",
                fc.samples * 60.0 / INTERVAL as f64
            );
            println!(
                "\n[cost] 50 SLOs, 31 days at 60 s, the last {fine_hours} h at 5 s (same Prometheus, run beside the first)"
            );
            print_figures(&ff, n, naive_f * n as f64, "measured, 30 d", false);
            println!("  (Prometheus CPU above is for both daemons of [cost] together)");
            println!(
                "  naive per SLO: {naive_c:.0} (60 s), {naive_f:.0} (5 s tail); 3 x W/60 s would be {:.0}",
                naive_analytic()
            );
        } else {
            let Ok(n) = sc.parse::<usize>() else {
                panic!("unknown scenario {sc:?}: cost or a number of SLOs");
            };
            let services: Vec<&'static str> = (0..n).map(|i| leak(format!("svc{i:05}"))).collect();
            let mut gens: Vec<Gen> = services
                .iter()
                .enumerate()
                .map(|(i, s)| Gen::new(s, i as u64 + 1, i64::MAX))
                .collect();
            let t = Instant::now();
            let (_tmp, blocks) = backfill(&mut gens, now - scale_hours * HOUR, now + margin);
            let backfilled = t.elapsed();
            drop(gens);
            let prom = Prometheus::start(&blocks);
            let ws = Workspace::new();
            let cfg = config(&ws, &prom, &services);
            let f = measure(
                &cfg,
                prom.guard.pid(),
                scale_cycles,
                storage,
                gap,
                services[0],
            );
            println!(
                "\n[scale] {n} SLOs, {scale_hours} h of 60 s samples (backfill {:.0?}; cold start reads {scale_hours} h, not 30 d)",
                backfilled
            );
            let (per, note) = match naive_30d {
                Some(v) => (v, "30 d, per SLO from [cost]"),
                None => (naive_analytic(), "30 d, 3 x W/60 s per SLO"),
            };
            print_figures(&f, n, per * n as f64, note, true);
        }
        println!("  (scenario took {:.0?})", began.elapsed());
    }
}
