//! The example configs shipped in `config/` load in the real tools
//! (`promtool check config`, `amtool check-config`), the Alertmanager one is
//! the routing the docs describe, and `--web.external-url` reaches the
//! alerts Alertmanager shows, with a warning when alert links would point
//! at a loopback address.

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bins;
use crate::events::{openmetrics, Series, Traffic, MINUTE};
use crate::fixtures::{slo, spec};
use crate::harness::{
    backfill, errbudget_bin, free_port, loopback, poll, run_bounded, Alertmanager, Guard,
    Prometheus, Workspace,
};

fn repo(rel: &str) -> String {
    format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn example_prometheus_config_passes_promtool() {
    bins::require(bins::promtool(), "prometheus");
    let (code, out, err) = run_bounded(
        Command::new(bins::promtool())
            .args(["check", "config"])
            .arg(repo("config/prometheus.example.yml")),
        Duration::from_secs(60),
    );
    assert_eq!(
        code,
        Some(0),
        "{} ({}):\n{out}\n{err}",
        bins::promtool(),
        bins::backends()
    );
    assert!(format!("{out}{err}").contains("SUCCESS"), "{out}\n{err}");
}

/// The yaml block after `marker` in a Markdown file.
fn yaml_block(file: &str, marker: &str) -> String {
    let doc = std::fs::read_to_string(repo(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let from = doc
        .find(marker)
        .unwrap_or_else(|| panic!("{file} has no {marker} marker"));
    let rest = &doc[from..];
    let start = rest.find("```yaml\n").expect("yaml block after the marker") + 8;
    let end = start + rest[start..].find("```").expect("end of the yaml block");
    rest[start..end].to_string()
}

#[test]
fn example_alertmanager_config_passes_amtool_and_is_the_documented_routing() {
    bins::require(bins::amtool(), "prometheus-alertmanager");
    let file = repo("config/alertmanager.example.yml");
    let (code, out, err) = run_bounded(
        Command::new(bins::amtool()).arg("check-config").arg(&file),
        Duration::from_secs(60),
    );
    assert_eq!(
        code,
        Some(0),
        "{} ({}):\n{out}\n{err}",
        bins::amtool(),
        bins::backends()
    );
    assert!(out.contains("1 inhibit rules"), "{out}");
    let example = std::fs::read_to_string(&file).expect("read the example");
    for doc in ["README.md", "docs/alerts.md"] {
        let block = yaml_block(doc, "<!-- alertmanager.yml -->");
        assert!(
            example.contains(&block),
            "config/alertmanager.example.yml differs from the routing in {doc}:\n{block}"
        );
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `errbudget run` with extra flags, on a free port; waits for health.
fn run(cfg: &std::path::Path, extra: &[&str], log: std::path::PathBuf) -> Guard {
    let port = free_port();
    let mut g = Guard::spawn(
        "errbudget",
        Command::new(errbudget_bin())
            .arg("run")
            .arg("--config.file")
            .arg(cfg)
            .arg("--web.listen-address")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra),
        log,
    );
    let healthy = poll(Duration::from_secs(30), || {
        if g.exited().is_some() {
            return Some(false);
        }
        crate::http::get(loopback(port), "/-/healthy")
            .ok()
            .filter(|r| r.status == 200)
            .map(|_| true)
    });
    assert_eq!(
        healthy,
        Some(true),
        "errbudget did not come up\n{}",
        g.log_tail()
    );
    g
}

#[test]
fn external_url_reaches_alertmanager_and_loopback_links_are_warned_about() {
    // Ten minutes of 5% errors on a 99.9% SLO: the 1h/5m page fires at the
    // first evaluation.
    let end = unix_now() - unix_now().rem_euclid(MINUTE);
    let start = end - 10 * MINUTE;
    let g = Series {
        service: "linked",
        labels: vec![],
        traffic: Traffic::Steady {
            base: 300,
            spread: 40,
            p: 0.05,
            incidents: vec![],
        },
        resets: vec![],
        seed: 72,
        histogram: false,
    }
    .generate(start, end);
    let (_tmp, blocks) = backfill(&[openmetrics(&[g], start, end + 1)], false);
    let prom = Prometheus::start(&blocks);
    let am = Alertmanager::start();
    let ws = Workspace::new();
    let cfg = ws.config_with(
        &prom.url(),
        "2s",
        &format!("alerting:\n  alertmanagers:\n    - url: {}\n", am.url()),
        &[(
            "linked.yaml",
            &spec(
                "linked",
                "web",
                &[slo("availability", "99.9", "linked", false)],
            ),
        )],
    );

    let log = ws.path("default.log");
    let default = run(&cfg, &[], log.clone());
    let warned = poll(Duration::from_secs(10), || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("loopback address"))
    });
    assert!(
        warned.is_some(),
        "no loopback warning\n{}",
        default.log_tail()
    );
    drop(default);

    let log = ws.path("external.log");
    let linked = run(
        &cfg,
        &["--web.external-url", "https://errbudget.example.com/"],
        log.clone(),
    );
    let alert = poll(Duration::from_secs(30), || {
        am.alerts().into_iter().find(|a| {
            a["labels"]["severity"] == "page"
                && a["generatorURL"] == "https://errbudget.example.com/slo/linked/availability"
        })
    });
    assert!(
        alert.is_some(),
        "no page linking to the external URL: {:?}\n{}",
        am.alerts(),
        linked.log_tail()
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!text.contains("loopback address"), "{text}");
}
