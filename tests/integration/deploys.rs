//! Deploys beside the budget, against a real Prometheus and Alertmanager:
//! deploys posted to the API and read from a `deploy_info` series the
//! Prometheus scrapes from an exporter of the test's own; their
//! `deployments` annotation on the pages Alertmanager holds; the budget
//! spent in the hour after a deploy against the generated events;
//! `slo_deployments_total`; a restart that neither loses nor double-counts,
//! and dates a deploy made while errbudget was down.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::events::{openmetrics_days, Generated, Series, Traffic, DAY, MINUTE};
use crate::fixtures::{slo, spec};
use crate::harness::{self, free_port, poll, Alertmanager, Daemon, Prometheus, Workspace};
use crate::http;

pub const USER: &str = "release-bot";
pub const PASSWORD: &str = "deploy-secret";

/// Serves `deploy_info{service="burning",version=V} 1` on `/metrics`,
/// `V` switchable at any time, and the counter
/// `deploys_total{service="burning"}`.
pub struct Exporter {
    pub addr: SocketAddr,
    version: Arc<Mutex<String>>,
    count: Arc<std::sync::atomic::AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    pub fn start(version: &str) -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind exporter");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let version = Arc::new(Mutex::new(version.to_string()));
        let count = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (version, stop, count) = (version.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut s, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let v = version.lock().map(|v| v.clone()).unwrap_or_default();
                    let n = count.load(Ordering::Relaxed);
                    let body = format!(
                        "# TYPE deploy_info gauge\ndeploy_info{{service=\"burning\",version=\"{v}\"}} 1\n\
                         # TYPE deploys_total counter\ndeploys_total{{service=\"burning\"}} {n}\n"
                    );
                    let _ = write!(
                        s,
                        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                }
            })
        };
        Exporter {
            addr,
            version,
            count,
            stop,
            thread: Some(thread),
        }
    }

    /// Counts one deploy; returns when (unix s).
    pub fn count_deploy(&self) -> i64 {
        self.count.fetch_add(1, Ordering::Relaxed);
        unix_now()
    }

    /// Switches the version; returns when it was switched (unix s).
    pub fn deploy(&self, version: &str) -> i64 {
        if let Ok(mut v) = self.version.lock() {
            *v = version.to_string();
        }
        unix_now()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// One day of `burning` ending at the current minute, its last 70 minutes
/// at 40% errors (every default page fires), in a Prometheus that also
/// scrapes `exporter` every second. Returns the generated events.
fn burning_world_scraping(
    exporter: SocketAddr,
) -> (Prometheus, Generated, Option<tempfile::TempDir>) {
    let now = unix_now();
    let end = now - now.rem_euclid(MINUTE);
    let start = end - DAY;
    let generated = Series {
        service: "burning",
        labels: vec![],
        traffic: Traffic::Steady {
            base: 500,
            spread: 50,
            p: 0.001,
            incidents: vec![(end - 70 * MINUTE, end, 0.4)],
        },
        resets: vec![],
        seed: 21,
        histogram: false,
    }
    .generate(start, end);
    let (tmp, blocks) = harness::backfill(
        &openmetrics_days(std::slice::from_ref(&generated), start, end),
        false,
    );
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: deploys\n    static_configs:\n      - targets: [\"{exporter}\"]\n"
    );
    (
        Prometheus::start_with_config(&blocks, &config),
        generated,
        tmp,
    )
}

pub fn web_config(ws: &Workspace) -> std::path::PathBuf {
    let path = ws.path("web.yml");
    // Cost 4, the lowest: the daemon checks it once and caches it.
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt hash");
    std::fs::write(&path, format!("basic_auth_users:\n  {USER}: {hash}\n"))
        .expect("write web config");
    path
}

pub fn send(d: &Daemon, method: &str, path: &str, body: &str) -> http::Response {
    http::request_as(d.addr, method, path, Some((USER, PASSWORD)), body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", d.guard.log_tail()))
}

fn json(r: &http::Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("JSON: {e}\n{}", r.body))
}

/// `HH:MM`, with the date first when not on `today`'s UTC day: the
/// annotation's wording, written out here from the times the test chose.
fn clock(t: i64, today: i64) -> String {
    let s = harness::rfc3339(t);
    if t.div_euclid(DAY) == today.div_euclid(DAY) {
        s[11..16].to_string()
    } else {
        format!("{} {}", &s[..10], &s[11..16])
    }
}

/// Waits until the current second of the minute is in 5..=45, so that a
/// deploy dated within a few seconds of now has a known `HH:MM`.
fn away_from_a_minute_edge() {
    let waited = poll(Duration::from_secs(30), || {
        (5..=45).contains(&unix_now().rem_euclid(60)).then_some(())
    });
    assert!(waited.is_some(), "the clock never left a minute's edge");
}

fn metrics_value(d: &Daemon, series: &str) -> Option<String> {
    let m = send(d, "GET", "/metrics", "").body;
    m.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .map(String::from)
}

#[test]
fn posted_and_scraped_deploys_reach_alertmanager_and_survive_a_restart() {
    let exporter = Exporter::start("v1.41");
    let (prom, generated, _blocks) = burning_world_scraping(exporter.addr);
    // Prometheus scrapes a new target only a few seconds after it starts:
    // v1.41 must be there before errbudget's first reading.
    let scraped = poll(Duration::from_secs(30), || {
        prom.query_value("deploy_info{version=\"v1.41\"}", unix_now())
    });
    assert!(scraped.is_some(), "Prometheus never scraped the exporter");
    let am = Alertmanager::start();
    let ws = Workspace::new();
    let extra = format!(
        "alerting:\n  alertmanagers:\n    - url: {}\n  resend_interval: 2s\n\
         deployments:\n  query: deploy_info\nstorage:\n  path: {}\n",
        am.url(),
        ws.path("state").display()
    );
    let cfg = ws.config_with(
        &prom.url(),
        "2s",
        &extra,
        &[(
            "burning.yaml",
            &spec(
                "burning",
                "sre",
                &[slo("availability", "99.9", "burning", false)],
            ),
        )],
    );
    let web = web_config(&ws);
    let args = [std::ffi::OsStr::new("--web.config.file"), web.as_os_str()];
    let port = free_port();
    let mut d = Daemon::start_as(&cfg, port, &args, Some((USER, PASSWORD)));
    let ready = poll(Duration::from_secs(60), || {
        (send(&d, "GET", "/-/ready", "").status == 200).then_some(())
    });
    assert!(ready.is_some(), "never ready\n{}", d.guard.log_tail());

    // Writes need the user; a bad body names its field.
    let anonymous = http::post(d.addr, "/api/v1/deployments", "{}").expect("POST");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    let bad = send(
        &d,
        "POST",
        "/api/v1/deployments",
        r#"{"service": "burning"}"#,
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(json(&bad)["error"], "version: required");
    let bad = send(
        &d,
        "POST",
        "/api/v1/deployments",
        r#"{"service": "burning", "version": "x", "at": "noon"}"#,
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(
        json(&bad)["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("at: "),
        "{}",
        bad.body
    );

    // An old deploy whose hour is in the backfilled data (before the
    // incident), and a recent one inside the page's 1h window.
    let end = generated.start + DAY;
    let old_at = end - 3 * 3_600 - 120;
    let recent_at = unix_now() - 20 * 60;
    for (version, at) in [("v1.40", old_at), ("v1.42", recent_at)] {
        let body = format!(
            r#"{{"service": "burning", "version": "{version}", "at": "{}", "description": "pipeline 7"}}"#,
            harness::rfc3339(at)
        );
        let r = send(&d, "POST", "/api/v1/deployments", &body);
        assert_eq!(r.status, 201, "{}", r.body);
        let rec = json(&r);
        assert_eq!(rec["version"], version);
        assert_eq!(rec["at"], harness::rfc3339(at));
        assert_eq!(rec["source"], "api");
        // The same deploy again (a retried request) is one record.
        let again = send(&d, "POST", "/api/v1/deployments", &body);
        assert_eq!(again.status, 200, "{}", again.body);
    }

    // The metric: v1.41 ran before errbudget started (no deploy); v1.43
    // appears now.
    away_from_a_minute_edge();
    let switched = exporter.deploy("v1.43");
    let listed = poll(Duration::from_secs(30), || {
        let doc = json(&send(&d, "GET", "/api/v1/deployments?service=burning", ""));
        let list = doc["deployments"].as_array().cloned().unwrap_or_default();
        (list.len() == 3).then_some(list)
    })
    .unwrap_or_else(|| {
        panic!(
            "the metric's deploy was not listed: {}\n{}",
            send(&d, "GET", "/api/v1/deployments", "").body,
            d.guard.log_tail()
        )
    });
    let versions: Vec<&str> = listed
        .iter()
        .filter_map(|x| x["version"].as_str())
        .collect();
    assert_eq!(versions, ["v1.40", "v1.42", "v1.43"], "{listed:?}");
    assert_eq!(listed[2]["source"], "metric");
    let seen_at = harness::evaluated_at(&serde_json::json!({"evaluated_at": listed[2]["at"]}));
    // Dated by its first sample: within one scrape interval (1 s) of the
    // switch, plus a second of rounding of Prometheus' float timestamps.
    assert!(
        (switched..=switched + 2).contains(&seen_at),
        "v1.43 dated {seen_at}, switched at {switched}; Prometheus has its samples from {:?}\n{}",
        prom.query_value(
            "min_over_time(timestamp(deploy_info{version=\"v1.43\"})[1m:1s])",
            unix_now()
        ),
        d.guard.log_tail()
    );

    // What one reading costs Prometheus: one sample per running version.
    let expr = errbudget::eval::deploys::expression(&errbudget::config::DeploymentSettings {
        query: "deploy_info".into(),
        kind: errbudget::config::DeploymentMetric::Info,
        service_label: "service".into(),
        version_label: "version".into(),
    });
    let stats = prom.query_raw(&expr, unix_now(), true);
    let samples = &stats["data"]["stats"]["samples"]["totalQueryableSamples"];
    assert_eq!(samples.as_i64(), Some(1), "{stats}");
    assert_eq!(
        stats["data"]["result"][0]["metric"]["errbudget_deploy_version"], "v1.43",
        "{stats}"
    );

    // The page carries the deploys of its long window, worded from the
    // times above.
    let today = switched;
    let want_1h = format!(
        "2 deploys of burning in the last hour: v1.42 at {}, v1.43 at {}",
        clock(recent_at, today),
        clock(switched, today)
    );
    let want_6h = format!(
        "3 deploys of burning in the last 6h: v1.40 at {}, v1.42 at {}, v1.43 at {}",
        clock(old_at, today),
        clock(recent_at, today),
        clock(switched, today)
    );
    let annotation = |long: &str| {
        am.alerts()
            .into_iter()
            .find(|a| a["labels"]["long_window"] == long && a["labels"]["severity"] == "page")
            .and_then(|a| a["annotations"]["deployments"].as_str().map(String::from))
    };
    let got = poll(Duration::from_secs(30), || {
        let (one, six) = (annotation("1h")?, annotation("6h")?);
        (one == want_1h && six == want_6h).then_some(())
    });
    assert!(
        got.is_some(),
        "Alertmanager's pages: 1h {:?} (want {want_1h:?}), 6h {:?} (want {want_6h:?})",
        annotation("1h"),
        annotation("6h")
    );

    // The hour after v1.40 is in the history: its share of the budget,
    // from the generated events.
    let from = old_at - old_at.rem_euclid(300);
    let to = from + 3_600;
    let (_, bad_in_hour) = generated.events(to, 3_600);
    let (period_total, _) = generated.events(to, to - generated.start);
    let want_share = bad_in_hour as f64 / (period_total as f64 * 0.001);
    let share = poll(Duration::from_secs(30), || {
        let doc = json(&send(&d, "GET", "/api/v1/deployments?service=burning", ""));
        doc["deployments"][0]["slos"][0]["budget_consumed_ratio"].as_f64()
    })
    .unwrap_or_else(|| {
        panic!(
            "no budget share for v1.40: {}",
            send(&d, "GET", "/api/v1/deployments", "").body
        )
    });
    // The history's first bucket starts at a 5-minute edge at or after the
    // first sample, so the period total may miss up to 5 minutes of the
    // day's events (0.35%); the hour itself is whole buckets.
    assert!(
        (share - want_share).abs() <= want_share * 0.005,
        "budget share {share}, generated {want_share}"
    );
    let since = send(
        &d,
        "GET",
        &format!(
            "/api/v1/deployments?since={}",
            http::encode(&harness::rfc3339(recent_at))
        ),
        "",
    );
    assert_eq!(
        json(&since)["deployments"].as_array().map(Vec::len),
        Some(2)
    );

    // The SLO's page marks the deploys on its burn-down, which ends at the
    // evaluation instant of its figures: v1.43, just made, may be after it.
    let (page, chart_end) = poll(Duration::from_secs(30), || {
        let at = || harness::evaluated_at(&json(&send(&d, "GET", "/api/v1/slos", "")));
        let before = at();
        let page = send(&d, "GET", "/slo/burning/availability", "");
        (at() == before).then_some((page, before))
    })
    .expect("a page between two evaluations");
    assert_eq!(page.status, 200);
    let marked: Vec<&str> = [("v1.40", old_at), ("v1.42", recent_at), ("v1.43", seen_at)]
        .into_iter()
        .filter(|(_, at)| *at <= chart_end)
        .map(|(v, _)| v)
        .collect();
    assert!(marked.len() >= 2, "chart ends at {chart_end}");
    assert_eq!(
        page.body.matches("<g class=\"mark\">").count(),
        marked.len(),
        "{}",
        page.body
    );
    for v in &marked {
        assert!(
            page.body.contains(&format!(">{v}</text>")),
            "{v} not marked"
        );
    }
    assert!(page.body.contains(&format!(
        "{} deploys of burning in this range",
        marked.len()
    )));

    let counter = "slo_deployments_total{service=\"burning\"}";
    assert_eq!(metrics_value(&d, counter).as_deref(), Some("3"));

    // Stopped: a deploy meanwhile is dated when errbudget is back, and
    // nothing already recorded is counted again.
    d.guard.signal("TERM");
    assert!(d.guard.wait_exit(Duration::from_secs(20)).is_some());
    away_from_a_minute_edge();
    let while_down = exporter.deploy("v1.44");
    std::thread::sleep(Duration::from_secs(3));
    let d = Daemon::start_as(&cfg, port, &args, Some((USER, PASSWORD)));
    let back = poll(Duration::from_secs(30), || {
        let doc = json(&send(&d, "GET", "/api/v1/deployments?service=burning", ""));
        let list = doc["deployments"].as_array().cloned().unwrap_or_default();
        (list.len() == 4).then_some(list)
    })
    .unwrap_or_else(|| {
        panic!(
            "after the restart: {}\n{}",
            send(&d, "GET", "/api/v1/deployments", "").body,
            d.guard.log_tail()
        )
    });
    let v144 = harness::evaluated_at(&serde_json::json!({"evaluated_at": back[3]["at"]}));
    assert_eq!(back[3]["version"], "v1.44");
    assert!(
        (while_down..=while_down + 2).contains(&v144),
        "v1.44 dated {v144}, switched at {while_down}"
    );
    assert_eq!(metrics_value(&d, counter).as_deref(), Some("4"));
    // A few more cycles: still four.
    std::thread::sleep(Duration::from_secs(5));
    let doc = json(&send(&d, "GET", "/api/v1/deployments", ""));
    assert_eq!(
        doc["deployments"].as_array().map(Vec::len),
        Some(4),
        "{doc}"
    );
}

#[test]
fn writes_are_refused_without_authenticated_clients() {
    let ws = Workspace::new();
    let cfg = ws.config(
        "http://127.0.0.1:9",
        "1s",
        &[(
            "live.yaml",
            &spec("live", "sre", &[slo("availability", "99.9", "live", false)]),
        )],
    );
    let d = Daemon::start(&cfg);
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/deployments",
            r#"{"service": "live", "version": "1"}"#,
        ),
        ("POST", "/api/v1/overrides", "{}"),
        ("DELETE", "/api/v1/overrides/abc", ""),
    ] {
        let r = http::request_as(d.addr, method, path, None, body).expect("request");
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert!(r.body.contains("basic_auth_users"), "{}", r.body);
    }
    // Reading is open: the list is there, empty.
    let r = d.get("/api/v1/deployments");
    assert_eq!(r.status, 200);
    assert_eq!(json(&r)["deployments"], serde_json::json!([]));
}

/// `errbudget gate --url URL --service burning --output json` with the
/// client file: (exit code, JSON, how long the command took).
fn gate(d: &Daemon, client_file: &std::path::Path) -> (Option<i32>, Value, Duration) {
    let started = std::time::Instant::now();
    let (code, out, err) = harness::run_bounded(
        std::process::Command::new(harness::errbudget_bin())
            .args(["gate", "--url", &format!("http://{}", d.addr)])
            .args(["--service", "burning", "--output", "json"])
            .arg("--http.config.file")
            .arg(client_file),
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("gate JSON: {e}\n{out}\n{err}"));
    (code, doc, took)
}

/// A burning service (a third of its budget left) frozen by a policy at 90%: the gate
/// says frozen; an override through the API (checked against the spec's
/// `policy.override`) lets it through with who, until when and why; ending
/// it freezes again; an override in the overrides file, read on reload,
/// does the same; a broken file is refused at its line.
#[test]
fn gate_decisions_with_and_without_overrides() {
    let exporter = Exporter::start("v1");
    let (prom, _generated, _blocks) = burning_world_scraping(exporter.addr);
    let ws = Workspace::new();
    let mut text = spec(
        "burning",
        "sre",
        &[slo("availability", "99.9", "burning", false)],
    );
    text.push_str(
        "    policy:\n      release_freeze_below: 0.9\n      override:\n        allowed_users: [release-bot]\n        max_duration: 6h\n",
    );
    let overrides_file = ws.path("overrides.yaml");
    std::fs::write(&overrides_file, "[]\n").expect("write overrides file");
    let cfg = ws.config_with(
        &prom.url(),
        "2s",
        "policy:\n  overrides_file: overrides.yaml\n",
        &[("burning.yaml", &text)],
    );
    // Two users: release-bot may override, carol may not.
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt hash");
    let web = ws.path("web.yml");
    std::fs::write(
        &web,
        format!("basic_auth_users:\n  {USER}: {hash}\n  carol: {hash}\n"),
    )
    .expect("write web config");
    let password_file = ws.path("password");
    std::fs::write(&password_file, PASSWORD).expect("write password");
    let client_file = ws.path("client.yml");
    std::fs::write(
        &client_file,
        format!(
            "basic_auth:\n  username: {USER}\n  password_file: {}\n",
            password_file.display()
        ),
    )
    .expect("write client file");
    let args = [std::ffi::OsStr::new("--web.config.file"), web.as_os_str()];
    let d = Daemon::start_as(&cfg, free_port(), &args, Some((USER, PASSWORD)));
    let ready = poll(Duration::from_secs(60), || {
        (send(&d, "GET", "/-/ready", "").status == 200).then_some(())
    });
    assert!(ready.is_some(), "never ready\n{}", d.guard.log_tail());

    let (code, doc, _) = gate(&d, &client_file);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["decision"], "frozen");
    assert_eq!(doc["overrides"], serde_json::json!([]));

    // Who and how long, as the spec's policy says.
    let until = harness::rfc3339(unix_now() + 2 * 3_600);
    let body =
        format!(r#"{{"service": "burning", "reason": "fix for INC-7", "until": "{until}"}}"#);
    let carol = http::request_as(
        d.addr,
        "POST",
        "/api/v1/overrides",
        Some(("carol", PASSWORD)),
        &body,
    )
    .expect("POST as carol");
    assert_eq!(carol.status, 400, "{}", carol.body);
    assert_eq!(
        json(&carol)["error"],
        "service: user \"carol\" may not override the freeze of burning/availability (policy.override.allowed_users)"
    );
    let too_long = format!(
        r#"{{"service": "burning", "reason": "x", "until": "{}"}}"#,
        harness::rfc3339(unix_now() + 7 * 3_600)
    );
    let r = send(&d, "POST", "/api/v1/overrides", &too_long);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        json(&r)["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("until: an override may last at most 6h"),
        "{}",
        r.body
    );
    let r = send(&d, "POST", "/api/v1/overrides", &body);
    assert_eq!(r.status, 201, "{}", r.body);
    let created = json(&r);
    assert_eq!(created["by"], USER);
    assert_eq!(created["until"], until);
    let id = created["id"].as_str().expect("id").to_string();

    let (code, doc, took) = gate(&d, &client_file);
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["decision"], "allowed");
    let reason = doc["reasons"][0].as_str().unwrap_or("");
    assert!(
        reason.ends_with(&format!(
            "below the release-freeze policy; freeze overridden by {USER} until {until}: fix for INC-7"
        )),
        "{reason}"
    );
    assert_eq!(doc["overrides"][0]["id"], id.as_str());
    assert_eq!(doc["slos"][0]["overrides"][0]["reason"], "fix for INC-7");
    eprintln!("gate with an override answered in {took:?} (process start included):\n{doc:#}");

    // Ended early: frozen again.
    let r = send(&d, "DELETE", &format!("/api/v1/overrides/{id}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        send(&d, "DELETE", &format!("/api/v1/overrides/{id}"), "").status,
        404
    );
    let (code, doc, _) = gate(&d, &client_file);
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(doc["overrides"], serde_json::json!([]));

    // The overrides file, read on reload.
    let file_until = harness::rfc3339(unix_now() + 3_600);
    std::fs::write(
        &overrides_file,
        format!("- service: burning\n  slo: availability\n  reason: change freeze exception CAB-12\n  by: ops\n  until: {file_until}\n"),
    )
    .expect("write overrides file");
    let r = send(&d, "POST", "/-/reload", "");
    assert_eq!(r.status, 200, "{}", r.body);
    let (code, doc, _) = gate(&d, &client_file);
    assert_eq!(code, Some(0), "{doc}");
    assert!(
        doc["reasons"][0].as_str().unwrap_or("").ends_with(&format!(
            "freeze overridden by ops until {file_until}: change freeze exception CAB-12"
        )),
        "{doc}"
    );
    let listed = json(&send(&d, "GET", "/api/v1/overrides", ""));
    let file_one = listed["overrides"]
        .as_array()
        .and_then(|l| l.iter().find(|o| o["source"] == "file").cloned())
        .unwrap_or_else(|| panic!("{listed}"));
    assert_eq!(file_one["active"], true);
    // eval reads the same file.
    let doc = harness::eval_json(&cfg, unix_now());
    assert_eq!(doc["slos"][0]["overrides"][0]["by"], "ops", "{doc}");
    assert_eq!(doc["slos"][0]["overrides"][0]["source"], "file");

    // A broken file is refused at its line; the running overrides stay.
    std::fs::write(&overrides_file, "- service: burning\n  until: soon\n").expect("write");
    let r = send(&d, "POST", "/-/reload", "");
    assert_eq!(r.status, 500, "{}", r.body);
    let name = overrides_file.display();
    assert!(
        r.body.contains(&format!(
            "{name}:2:10: overrides[0].until: \"soon\" is not an RFC 3339 time"
        )),
        "{}",
        r.body
    );
    let (code, _, _) = gate(&d, &client_file);
    assert_eq!(code, Some(0));
}

/// `deployments.kind: counter` on a counter without a version label: each
/// rise is a deploy, dated by the sample that shows it.
#[test]
fn a_deploy_counter_records_each_rise() {
    let exporter = Exporter::start("v1");
    let (prom, _generated, _blocks) = burning_world_scraping(exporter.addr);
    let scraped = poll(Duration::from_secs(30), || {
        prom.query_value("deploys_total", unix_now())
    });
    assert_eq!(scraped, Some(0.0), "Prometheus never scraped the counter");
    let ws = Workspace::new();
    let cfg = ws.config_with(
        &prom.url(),
        "2s",
        "deployments:\n  query: deploys_total\n  kind: counter\n",
        &[(
            "burning.yaml",
            &spec(
                "burning",
                "sre",
                &[slo("availability", "99.9", "burning", false)],
            ),
        )],
    );
    let d = Daemon::start(&cfg);
    let ready = poll(Duration::from_secs(60), || {
        (d.get("/-/ready").status == 200).then_some(())
    });
    assert!(ready.is_some(), "never ready\n{}", d.guard.log_tail());
    // The first reading (0) is the baseline; then two deploys 3 s apart.
    std::thread::sleep(Duration::from_secs(3));
    let first = exporter.count_deploy();
    std::thread::sleep(Duration::from_secs(3));
    let second = exporter.count_deploy();
    let list = poll(Duration::from_secs(30), || {
        let doc = json(&d.get("/api/v1/deployments?service=burning"));
        let list = doc["deployments"].as_array().cloned().unwrap_or_default();
        (list.len() == 2).then_some(list)
    })
    .unwrap_or_else(|| {
        panic!(
            "{}\n{}",
            d.get("/api/v1/deployments").body,
            d.guard.log_tail()
        )
    });
    for (rec, counted) in list.iter().zip([first, second]) {
        let at = harness::evaluated_at(&serde_json::json!({"evaluated_at": rec["at"]}));
        assert!(
            (counted..=counted + 2).contains(&at),
            "deploy counted at {counted} dated {at}: {rec}"
        );
        assert_eq!(rec["version"], "");
        assert_eq!(rec["source"], "metric");
    }
    let m = d.get("/metrics").body;
    assert!(
        m.contains("slo_deployments_total{service=\"burning\"} 2\n"),
        "{m}"
    );
}
