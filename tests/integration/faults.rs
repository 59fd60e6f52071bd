//! Backend faults against the real binary: Prometheus gone for several
//! cycles, each way a Prometheus-compatible API can misbehave, errbudget
//! itself killed with SIGKILL, one Alertmanager of an HA pair down.
//!
//! A real Prometheus cannot hang, answer 503/429, send a `status: error`
//! for a good query, cut its JSON short or send 100 MB on demand, so
//! those faults come from a small proxy of the tests' own
//! (`fault_proxy.rs`) between errbudget and the real Prometheus: it
//! forwards every request unchanged until a test flips its switch.
//! Client-level behaviour (one query against a fake server) is covered by
//! `prom_client.rs`; here the question is what the daemon as a whole does:
//! `/metrics`, the JSON API, alert state, evaluation pace and memory.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::daemon::{samples, value_of};
use crate::events::{Series, Traffic, MINUTE};
use crate::fault_proxy::{Fault, Proxy, INJECTED};
use crate::fixtures::{slo, spec};
use crate::harness::day_ending_now;
use crate::harness::{self, poll, Alertmanager, Daemon, Prometheus, Workspace};

// ---------------------------------------------------------------------------
// The world: one day of data ending at the current minute.

/// `burning`: the last 70 minutes at 40% errors, so every default window
/// pair of a 99.9% SLO burns far above its factor at "now" and the pages
/// fire at the first cycle. `quiet`: 0.1% errors, a burn rate of about 1,
/// below every factor, so none of its alerts fires.
fn world() -> Prometheus {
    let (prom, _) = day_ending_now(|end| {
        vec![
            Series {
                service: "burning",
                labels: vec![],
                traffic: Traffic::Steady {
                    base: 500,
                    spread: 50,
                    p: 0.001,
                    incidents: vec![(end - 70 * MINUTE, end, 0.4)],
                },
                resets: vec![],
                seed: 31,
                histogram: false,
            },
            Series {
                service: "quiet",
                labels: vec![],
                traffic: Traffic::Steady {
                    base: 500,
                    spread: 50,
                    p: 0.0005,
                    incidents: vec![],
                },
                resets: vec![],
                seed: 32,
                histogram: false,
            },
        ]
    });
    prom
}

fn specs(with_quiet: bool) -> Vec<(&'static str, String)> {
    let mut v = vec![(
        "burning.yaml",
        spec(
            "burning",
            "sre",
            &[slo("availability", "99.9", "burning", false)],
        ),
    )];
    if with_quiet {
        v.push((
            "quiet.yaml",
            spec(
                "quiet",
                "sre",
                &[slo("availability", "99.9", "quiet", false)],
            ),
        ));
    }
    v
}

/// Writes the config with the given `prometheus.timeout` (the harness
/// writes 30s).
fn config(
    ws: &Workspace,
    url: &str,
    interval: &str,
    timeout: &str,
    extra: &str,
    specs: &[(&str, String)],
) -> std::path::PathBuf {
    let specs: Vec<(&str, &str)> = specs.iter().map(|(n, s)| (*n, s.as_str())).collect();
    let cfg = ws.config_with(url, interval, extra, &specs);
    let text = std::fs::read_to_string(&cfg).expect("read config");
    assert!(
        text.contains("timeout: 30s"),
        "harness config changed:\n{text}"
    );
    std::fs::write(
        &cfg,
        text.replace("timeout: 30s", &format!("timeout: {timeout}")),
    )
    .expect("write config");
    cfg
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

// ---------------------------------------------------------------------------
// Reading the daemon.

fn metric(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    value_of(body, name, labels).and_then(|v| v.parse().ok())
}

/// Every `slo_*` sample but `slo_evaluation_success`, by series.
fn slo_series(body: &str) -> BTreeMap<String, String> {
    samples(body)
        .into_iter()
        .filter(|(n, _, _)| n.starts_with("slo_") && n != "slo_evaluation_success")
        .map(|(n, l, v)| (format!("{n}{l:?}"), v))
        .collect()
}

/// `slo_alert_firing` by series.
fn firing(body: &str) -> BTreeMap<String, String> {
    samples(body)
        .into_iter()
        .filter(|(n, _, _)| n == "slo_alert_firing")
        .map(|(n, l, v)| (format!("{n}{l:?}"), v))
        .collect()
}

fn success(body: &str, service: &str) -> Option<f64> {
    metric(body, "slo_evaluation_success", &[("service", service)])
}

fn cycles(body: &str) -> u64 {
    metric(body, "errbudget_evaluation_duration_seconds_count", &[]).unwrap_or(0.0) as u64
}

fn query_errors(body: &str) -> f64 {
    metric(
        body,
        "errbudget_prometheus_queries_total",
        &[("outcome", "error")],
    )
    .unwrap_or(0.0)
}

fn api(d: &Daemon) -> Value {
    let r = d.get("/api/v1/slos");
    assert_eq!(r.status, 200, "/api/v1/slos: {}", r.body);
    serde_json::from_str(&r.body).expect("/api/v1/slos JSON")
}

fn api_slo<'a>(doc: &'a Value, service: &str) -> &'a Value {
    doc["slos"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["service"] == service))
        .unwrap_or_else(|| panic!("no SLO of {service} in {doc}"))
}

fn scrape(d: &Daemon) -> String {
    let m = d.get("/metrics");
    assert_eq!(m.status, 200, "/metrics: {}", m.body);
    m.body
}

/// Per-cycle durations seen from outside: between two scrapes the cycle
/// counter and the duration sum of `errbudget_evaluation_duration_seconds`
/// move together, so the sum's growth bounds the longest cycle in between.
#[derive(Default)]
struct Pace {
    last: Option<(u64, f64)>,
    /// The longest cycle seen alone between two scrapes. When a scrape
    /// comes late, two cycles may end between them and their durations
    /// cannot be told apart: those count in `cycles`, not here.
    longest: f64,
    cycles: u64,
    /// Cycles over 5 s (the histogram bucket above the bound), whenever
    /// they ended: this count misses no cycle.
    over_5s: u64,
    first_at: Option<Instant>,
    last_at: Option<Instant>,
}

impl Pace {
    fn observe(&mut self, body: &str) {
        let count = cycles(body);
        let sum = metric(body, "errbudget_evaluation_duration_seconds_sum", &[]).unwrap_or(0.0);
        let within_5s = metric(
            body,
            "errbudget_evaluation_duration_seconds_bucket",
            &[("le", "5")],
        )
        .unwrap_or(0.0) as u64;
        self.over_5s = count.saturating_sub(within_5s);
        if let Some((c, s)) = self.last {
            if count > c {
                self.cycles += count - c;
            }
            if count == c + 1 {
                self.longest = self.longest.max(sum - s);
            }
        }
        self.last = Some((count, sum));
        self.first_at.get_or_insert_with(Instant::now);
        self.last_at = Some(Instant::now());
    }

    /// Seconds between the first and the last scrape.
    fn span(&self) -> f64 {
        match (self.first_at, self.last_at) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The figures of one SLO in the daemon's JSON and in `eval`'s agree.
fn assert_same_figures(daemon: &Value, eval: &Value, what: &str) {
    let close = |x: f64, y: f64| x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1e-9);
    for f in [
        "period_error_ratio",
        "error_budget_remaining_ratio",
        "error_budget_remaining_seconds",
    ] {
        let (x, y) = (daemon[f].as_f64(), eval[f].as_f64());
        assert!(
            matches!((x, y), (Some(x), Some(y)) if close(x, y)),
            "{what}: {f}: daemon {x:?}, eval {y:?}"
        );
    }
    for map in ["error_ratio", "burn_rate", "period_events"] {
        let (a, b) = (
            daemon[map].as_object().expect("object"),
            eval[map].as_object().expect("object"),
        );
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{what}: {map}"
        );
        for (k, x) in a {
            let (x, y) = (x.as_f64(), b[k].as_f64());
            assert!(
                matches!((x, y), (Some(x), Some(y)) if close(x, y)),
                "{what}: {map}[{k}]: daemon {x:?}, eval {y:?}"
            );
        }
    }
    let firing = |v: &Value| -> Vec<(String, bool)> {
        v["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|a| {
                (
                    format!("{}/{}", a["long_window"], a["short_window"]),
                    a["firing"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    };
    assert_eq!(firing(daemon), firing(eval), "{what}: alerts");
}

// ---------------------------------------------------------------------------
// 1. Prometheus stopped for several cycles, then back.

/// Prometheus unreachable (connection refused: the proxy closes its
/// listening socket) for ≥ 5 cycles of 1 s: every scrape answers, success
/// is 0 with `status: error` naming the cause, every `slo_*` figure and
/// the last-success timestamp stay exactly as the last successful cycle
/// left them (equal to `eval --at` that cycle), the burning SLO's pages
/// stay 1 and the quiet SLO's alerts stay 0. Once Prometheus is back the
/// next cycle succeeds and matches `eval --at` its instant.
#[test]
fn prometheus_outage_holds_figures_and_alerts_then_recovers() {
    let prom = world();
    let proxy = Proxy::start(prom.addr);
    let ws = Workspace::new();
    let cfg = config(&ws, &proxy.url(), "1s", "30s", "", &specs(true));
    let direct = Workspace::new();
    let direct_cfg = config(&direct, &prom.url(), "1s", "30s", "", &specs(true));
    let d = Daemon::start(&cfg);

    let before = poll(Duration::from_secs(60), || {
        let m = scrape(&d);
        (success(&m, "burning") == Some(1.0) && success(&m, "quiet") == Some(1.0)).then_some(m)
    })
    .unwrap_or_else(|| panic!("never evaluated\n{}", d.guard.log_tail()));
    let alerts_before = firing(&before);
    let fired: Vec<&String> = alerts_before
        .iter()
        .filter(|(_, v)| *v == "1")
        .map(|(k, _)| k)
        .collect();
    assert!(
        fired
            .iter()
            .any(|k| k.contains("\"burning\"") && k.contains("\"5m\"")),
        "the burning page must fire before the outage: {alerts_before:?}"
    );
    assert!(
        alerts_before
            .iter()
            .filter(|(k, _)| k.contains("\"quiet\""))
            .all(|(_, v)| v == "0"),
        "quiet alerts must be 0: {alerts_before:?}"
    );
    assert_eq!(
        alerts_before.len(),
        8,
        "4 pairs × 2 SLOs: {alerts_before:?}"
    );

    proxy.set(Fault::Refuse);
    let outage_started = unix_now();
    let frozen = poll(Duration::from_secs(15), || {
        let m = scrape(&d);
        (success(&m, "burning") == Some(0.0) && success(&m, "quiet") == Some(0.0)).then_some(m)
    })
    .unwrap_or_else(|| panic!("success never dropped to 0\n{}", d.guard.log_tail()));
    let held = slo_series(&frozen);
    let start_cycles = cycles(&frozen);
    let mut scrapes = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    // Several cycles, each scrape compared with the first one of the outage.
    while cycles(&scrape(&d)) < start_cycles + 5 {
        assert!(
            Instant::now() < deadline,
            "fewer than 5 cycles in 30 s during the outage\n{}",
            d.guard.log_tail()
        );
        let m = scrape(&d);
        scrapes += 1;
        assert_eq!(success(&m, "burning"), Some(0.0));
        assert_eq!(success(&m, "quiet"), Some(0.0));
        assert_eq!(slo_series(&m), held, "figures moved during the outage");
        assert_eq!(
            firing(&m),
            alerts_before,
            "an alert flipped during the outage"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let doc = api(&d);
    for service in ["burning", "quiet"] {
        let s = api_slo(&doc, service);
        assert_eq!(s["status"], "error", "{s}");
        let msg = s["error"].as_str().unwrap_or("");
        assert!(
            msg.contains("cannot reach Prometheus"),
            "error message: {msg}"
        );
    }
    // The held figures are those of the last successful cycle.
    let last_ok = metric(
        &frozen,
        "slo_last_evaluation_timestamp_seconds",
        &[("service", "burning")],
    )
    .expect("last evaluation timestamp") as i64;
    assert!(last_ok <= outage_started, "{last_ok} > {outage_started}");
    let ev = harness::eval_json(&direct_cfg, last_ok);
    for service in ["burning", "quiet"] {
        let s = api_slo(&doc, service);
        assert_same_figures(s, api_slo(&ev, service), &format!("{service} held"));
    }
    println!(
        "outage: {} cycles, {scrapes} scrapes, figures and {} alert series unchanged, last success {last_ok}",
        cycles(&scrape(&d)) - start_cycles,
        alerts_before.len()
    );

    proxy.set(Fault::Forward);
    let back = Instant::now();
    let at_back = cycles(&scrape(&d));
    let (recovered, m) = poll(Duration::from_secs(15), || {
        let m = scrape(&d);
        (success(&m, "burning") == Some(1.0) && success(&m, "quiet") == Some(1.0))
            .then(|| (back.elapsed(), m))
    })
    .unwrap_or_else(|| panic!("no successful cycle 15 s after Prometheus came back"));
    let took = cycles(&m) - at_back;
    println!(
        "recovery: {took} cycle(s), {:.2} s after Prometheus came back (interval 1 s)",
        recovered.as_secs_f64()
    );
    // The cycle running when Prometheus came back may still fail; the
    // next one must succeed.
    assert!(took <= 2, "recovery took {took} cycles");
    assert_eq!(firing(&m), alerts_before, "alerts after recovery");
    let doc = api(&d);
    let at = doc["evaluated_at"].as_str().expect("evaluated_at");
    let at = humantime::parse_rfc3339(at).expect("evaluated_at RFC 3339");
    let at = at.duration_since(UNIX_EPOCH).expect("after 1970").as_secs() as i64;
    let ev = harness::eval_json(&direct_cfg, at);
    for service in ["burning", "quiet"] {
        let s = api_slo(&doc, service);
        assert_eq!(s["status"], "ok", "{s}");
        assert_same_figures(s, api_slo(&ev, service), &format!("{service} recovered"));
    }
}

// ---------------------------------------------------------------------------
// 2. Each kind of fault.

/// Starts one SLO evaluated every 2 s with `prometheus.timeout: 1s`
/// through the proxy, and waits for its first successful cycle.
fn faulty_daemon() -> (Prometheus, Proxy, Workspace, Daemon, Pace) {
    let prom = world();
    let proxy = Proxy::start(prom.addr);
    let ws = Workspace::new();
    let cfg = config(&ws, &proxy.url(), "2s", "1s", "", &specs(false));
    let d = Daemon::start(&cfg);
    let mut pace = Pace::default();
    healthy(&d, &mut pace, "at start");
    (prom, proxy, ws, d, pace)
}

fn healthy(d: &Daemon, pace: &mut Pace, what: &str) {
    poll(Duration::from_secs(30), || {
        let m = scrape(d);
        pace.observe(&m);
        (success(&m, "burning") == Some(1.0)).then_some(())
    })
    .unwrap_or_else(|| panic!("no successful cycle {what}\n{}", d.guard.log_tail()));
}

/// Injects `fault` until the SLO reports `cause`, keeps it one more cycle,
/// then forwards again and waits for a successful cycle. Checks what every
/// fault must show; returns the daemon's peak RSS (KiB) while it lasted.
fn fault_round(proxy: &Proxy, d: &Daemon, pace: &mut Pace, fault: Fault, cause: &str) -> u64 {
    let pid = d.guard.pid();
    let errors_before = query_errors(&scrape(d));
    let started = Instant::now();
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let on = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while on.load(Ordering::SeqCst) {
                peak = peak.max(rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    proxy.set(fault);
    let msg = poll(Duration::from_secs(30), || {
        let m = scrape(d);
        pace.observe(&m);
        let s = api(d);
        let s = api_slo(&s, "burning");
        let msg = s["error"].as_str().unwrap_or("").to_string();
        (success(&m, "burning") == Some(0.0) && s["status"] == "error" && msg.contains(cause))
            .then_some(msg)
    })
    .unwrap_or_else(|| {
        panic!(
            "{fault:?}: no error naming {cause:?} within 30 s: {}\n{}",
            api(d),
            d.guard.log_tail()
        )
    });
    let reported = started.elapsed();
    // One more cycle under the fault, for the RSS peak and the pace.
    let at = cycles(&scrape(d));
    poll(Duration::from_secs(10), || {
        let m = scrape(d);
        pace.observe(&m);
        (cycles(&m) > at).then_some(())
    })
    .unwrap_or_else(|| panic!("{fault:?}: evaluation stopped\n{}", d.guard.log_tail()));
    let errors = query_errors(&scrape(d)) - errors_before;
    proxy.set(Fault::Forward);
    sampling.store(false, Ordering::SeqCst);
    let peak = sampler.join().expect("RSS sampler");
    println!(
        "{fault:?}: reported after {:.2} s, +{errors} failed queries, peak RSS {} MiB: {msg}",
        reported.as_secs_f64(),
        peak / 1024
    );
    assert!(errors >= 1.0, "{fault:?}: error counter did not grow");
    healthy(d, pace, &format!("after {fault:?}"));
    peak
}

/// Retries stay inside the retry budget (= interval, 2 s) and one HTTP
/// attempt inside the timeout (1 s); 0.25 s for a loaded 2-core machine.
fn assert_pace(pace: &Pace) {
    println!(
        "{} cycles, longest {:.2} s (bound 3 s)",
        pace.cycles, pace.longest
    );
    assert!(
        pace.longest <= 3.25,
        "a cycle took {:.2} s, more than interval + timeout",
        pace.longest
    );
    assert_eq!(pace.over_5s, 0, "cycles over 5 s");
}

/// One SLO evaluated every 2 s with `prometheus.timeout: 1s`, through the
/// proxy; each fault in turn until the SLO reports it, then back to normal.
/// For every fault: `/metrics` answers, success 0, `status: error` with a
/// message naming the cause, the error counter grows. Throughout: no
/// cycle longer than interval + timeout (3 s).
#[test]
fn each_fault_is_reported_within_the_interval() {
    let (_prom, proxy, _ws, d, mut pace) = faulty_daemon();
    for (fault, cause) in [
        (Fault::Hang, "did not answer within"),
        (Fault::Unavailable, "HTTP 503"),
        (Fault::TooMany, "HTTP 429"),
        (Fault::StatusError, INJECTED),
        (Fault::Truncated, "cannot decode"),
    ] {
        fault_round(&proxy, &d, &mut pace, fault, cause);
    }
    assert_pace(&pace);
}

/// A 100 MB answer, streamed without Content-Length, on every query at
/// once: each is refused at its share of the 64 MiB response budget
/// (64 MiB / 8 concurrent queries by default) with a clear error, and the
/// daemon's memory stays bounded.
#[test]
fn huge_body_is_refused_with_bounded_memory() {
    let (_prom, proxy, _ws, d, mut pace) = faulty_daemon();
    let baseline = rss_kib(d.guard.pid()).expect("VmRSS");
    let peak = fault_round(
        &proxy,
        &d,
        &mut pace,
        Fault::Huge,
        // 64 MiB shared by the default 8 concurrent queries.
        "larger than the 8388608-byte limit per query",
    );
    println!(
        "RSS: baseline {} MiB, peak {} MiB",
        baseline / 1024,
        peak / 1024
    );
    assert_pace(&pace);
    // All answers in flight share one 64 MiB budget (src/prom/client.rs):
    // that, the daemon's ~20 MiB and allocator slack stay well under
    // 200 MiB; more means capped bodies pile up beyond the budget.
    assert!(
        peak < 200 * 1024,
        "peak RSS {} MiB during the 100 MB body",
        peak / 1024
    );
}

// ---------------------------------------------------------------------------
// 3. errbudget killed with SIGKILL and restarted.

fn page_of(alerts: &[Value], service: &str) -> Vec<Value> {
    alerts
        .iter()
        .filter(|a| {
            let l = &a["labels"];
            l["service"] == service && l["long_window"] == "1h" && l["short_window"] == "5m"
        })
        .cloned()
        .collect()
}

fn notifications(body: &str, receiver: &str, outcome: &str) -> f64 {
    metric(
        body,
        "errbudget_notifications_total",
        &[("receiver", receiver), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

fn parse_time(s: &Value) -> SystemTime {
    humantime::parse_rfc3339_weak(s.as_str().expect("time string"))
        .unwrap_or_else(|e| panic!("time {s}: {e}"))
}

/// A page is firing and in Alertmanager; errbudget dies by SIGKILL and is
/// started again with the same config. Its first cycle fires the page
/// again, and Alertmanager still holds one alert for that label set whose
/// `startsAt` has not moved later.
#[test]
fn sigkill_restart_keeps_one_incident() {
    let prom = world();
    let am = Alertmanager::start();
    let ws = Workspace::new();
    let extra = format!(
        "alerting:\n  alertmanagers:\n    - url: {}\n  resend_interval: 1m\n",
        am.url()
    );
    let cfg = config(&ws, &prom.url(), "3s", "30s", &extra, &specs(false));
    let receiver = format!("alertmanager:{}", am.addr);

    let mut first = Daemon::start(&cfg);
    let before = poll(Duration::from_secs(60), || {
        let a = page_of(&am.alerts(), "burning");
        (!a.is_empty()).then_some(a)
    })
    .unwrap_or_else(|| {
        panic!(
            "page never reached Alertmanager\n{}",
            first.guard.log_tail()
        )
    });
    assert_eq!(before.len(), 1, "{before:?}");
    let starts_before = before[0]["startsAt"].clone();
    let m = scrape(&first);
    assert!(notifications(&m, &receiver, "sent") >= 1.0, "{m}");

    if let Some(mut c) = first.guard.child.take() {
        c.kill().expect("SIGKILL errbudget");
        let st = c.wait().expect("reap errbudget");
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&st),
            Some(9),
            "{st}"
        );
    }
    let killed = SystemTime::now();
    // Long enough that a new incident would start visibly later.
    std::thread::sleep(Duration::from_secs(2));

    let second = Daemon::start(&cfg);
    let (seen_at_cycle, m) = poll(Duration::from_secs(30), || {
        let m = scrape(&second);
        (cycles(&m) >= 1).then(|| (cycles(&m), m))
    })
    .unwrap_or_else(|| panic!("no cycle after restart\n{}", second.guard.log_tail()));
    let page_firing = samples(&m).into_iter().any(|(n, l, v)| {
        n == "slo_alert_firing"
            && l.get("long_window").map(String::as_str) == Some("1h")
            && l.get("short_window").map(String::as_str) == Some("5m")
            && v == "1"
    });
    assert!(
        page_firing,
        "page not firing after cycle {seen_at_cycle}:\n{m}"
    );
    assert_eq!(
        seen_at_cycle, 1,
        "first scrape after restart saw {seen_at_cycle} cycles"
    );

    // Wait for the restarted process's own delivery to arrive.
    poll(Duration::from_secs(30), || {
        (notifications(&scrape(&second), &receiver, "sent") >= 1.0).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "restarted errbudget sent nothing\n{}",
            second.guard.log_tail()
        )
    });
    let after = poll(Duration::from_secs(10), || {
        let a = page_of(&am.alerts(), "burning");
        a.iter()
            .all(|x| parse_time(&x["updatedAt"]) > killed)
            .then_some(a)
    })
    .unwrap_or_else(|| panic!("Alertmanager never saw the re-sent page: {:?}", am.alerts()));
    let starts_after = after[0]["startsAt"].clone();
    println!("startsAt before the kill {starts_before}, after the restart {starts_after}");
    assert_eq!(after.len(), 1, "duplicate incident: {after:?}");
    assert_eq!(after[0]["status"]["state"], "active", "{}", after[0]);
    assert!(
        parse_time(&starts_after) <= parse_time(&starts_before),
        "startsAt moved later: {starts_before} → {starts_after}"
    );
    // No duplicate of any pair either: one alert per label set.
    let all = am.alerts();
    let mut sets: Vec<String> = all.iter().map(|a| a["labels"].to_string()).collect();
    let n = sets.len();
    sets.sort();
    sets.dedup();
    assert_eq!(sets.len(), n, "duplicate label sets in {all:?}");
}

// ---------------------------------------------------------------------------
// 4. One Alertmanager of an HA pair down.

/// Two Alertmanagers configured, one killed before errbudget starts,
/// `resend_interval: 1s` so batches keep coming: the live one receives
/// every firing pair and keeps receiving re-sends while the dead one's
/// batches are retried; the dead one's `errbudget_notifications_total`
/// shows nothing `sent` and, once a batch's retries are used up (retries
/// themselves are not counted), `failed`; the evaluation keeps its 1 s
/// pace for ≥ 8 s of this.
#[test]
fn one_alertmanager_of_a_pair_down() {
    let prom = world();
    let live = Alertmanager::start();
    let mut dead = Alertmanager::start();
    let dead_addr = dead.addr;
    if let Some(mut c) = dead.guard.child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let ws = Workspace::new();
    let extra = format!(
        "alerting:\n  alertmanagers:\n    - url: {}\n    - url: http://{dead_addr}\n  resend_interval: 1s\n",
        live.url()
    );
    let cfg = config(&ws, &prom.url(), "1s", "30s", &extra, &specs(false));
    let d = Daemon::start(&cfg);
    let (live_rx, dead_rx) = (
        format!("alertmanager:{}", live.addr),
        format!("alertmanager:{dead_addr}"),
    );
    let mut pace = Pace::default();

    let want = [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")];
    poll(Duration::from_secs(30), || {
        pace.observe(&scrape(&d));
        let got = live.alerts();
        want.iter()
            .all(|(l, s)| {
                got.iter()
                    .any(|a| a["labels"]["long_window"] == *l && a["labels"]["short_window"] == *s)
            })
            .then_some(())
    })
    .unwrap_or_else(|| panic!("live Alertmanager lacks a pair: {:?}", live.alerts()));
    let first_failure = poll(Duration::from_secs(30), || {
        let m = scrape(&d);
        pace.observe(&m);
        (notifications(&m, &dead_rx, "failed") >= 1.0).then_some(m)
    })
    .unwrap_or_else(|| {
        panic!(
            "no failed notification for the dead Alertmanager\n{}",
            scrape(&d)
        )
    });
    let first_failure_after = pace.span();
    // Keep watching while the dead receiver's later batches are retried.
    let end = poll(Duration::from_secs(30), || {
        let m = scrape(&d);
        pace.observe(&m);
        (pace.span() >= 8.0).then_some(m)
    })
    .expect("bounded by the span");
    let n = |m: &str, rx: &str, outcome: &str| notifications(m, rx, outcome);
    println!(
        "first failed batch after {first_failure_after:.1} s; after {:.1} s: live sent {}, \
         dead sent {}, dead failed {}; {} cycles, longest {:.3} s",
        pace.span(),
        n(&end, &live_rx, "sent"),
        n(&end, &dead_rx, "sent"),
        n(&end, &dead_rx, "failed"),
        pace.cycles,
        pace.longest
    );
    assert_eq!(n(&end, &dead_rx, "sent"), 0.0);
    assert!(
        n(&end, &dead_rx, "failed") >= 4.0,
        "one batch of 4 alerts failed"
    );
    assert_eq!(n(&end, &live_rx, "failed"), 0.0);
    assert_eq!(n(&end, &live_rx, "dropped"), 0.0);
    // Re-sends kept reaching the live one after the dead one's failure.
    assert!(
        n(&end, &live_rx, "sent") >= n(&first_failure, &live_rx, "sent") + 4.0,
        "live re-sends stalled"
    );
    // Delivery runs beside the evaluation: cycles keep the 1 s interval
    // and none waits for the dead receiver's connection errors or backoff.
    assert!(pace.longest < 1.0, "a cycle took {:.2} s", pace.longest);
    assert!(
        pace.cycles as f64 >= pace.span() - 1.5,
        "{} cycles in {:.1} s",
        pace.cycles,
        pace.span()
    );
}
