//! A running errbudget on synthetic data, scraped by the Prometheus it
//! queries: the world the dashboards and the status page are checked in.
//! One day of traffic ending at the current minute for two services:
//! `healthy` (0.02% errors) and `burning` (40% errors for the last 70
//! minutes, so its page alerts fire and its budget is gone).

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::events::{openmetrics_days, Generated, Series, Traffic, DAY, MINUTE};
use crate::fixtures::{slo, spec};
use crate::harness::{backfill, poll, Daemon, Prometheus, Workspace};

/// The healthy SLO's description: markup a browser must show as text.
pub const HOSTILE_DESCRIPTION: &str =
    "<script>document.body.setAttribute('data-pwned','1')</script> healthy";

pub struct World {
    pub prom: Prometheus,
    pub daemon: Daemon,
    _ws: Workspace,
    _targets: tempfile::TempDir,
    _gens: Vec<Generated>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

pub fn start() -> World {
    let end = now() - now().rem_euclid(MINUTE);
    let start = end - DAY;
    let series = |service, p, incidents, seed| Series {
        service,
        labels: vec![],
        traffic: Traffic::Steady {
            base: 500,
            spread: 50,
            p,
            incidents,
        },
        resets: vec![],
        histogram: false,
        seed,
    };
    let gens: Vec<Generated> = [
        series("healthy", 0.0002, vec![], 31),
        series("burning", 0.001, vec![(end - 70 * MINUTE, end, 0.4)], 32),
    ]
    .iter()
    .map(|s| s.generate(start, end))
    .collect();
    let (_tmp, blocks) = backfill(&openmetrics_days(&gens, start, end), false);

    // Prometheus learns errbudget's port from a file, since errbudget
    // needs Prometheus' address first.
    let targets = tempfile::tempdir().expect("tempdir");
    let targets_file: PathBuf = targets.path().join("errbudget.json");
    std::fs::write(&targets_file, "[]").expect("write targets");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n\
         \x20 - job_name: errbudget\n    scrape_interval: 1s\n    file_sd_configs:\n\
         \x20     - files: [\"{}\"]\n        refresh_interval: 1s\n",
        targets_file.display()
    );
    let prom = Prometheus::start_with_config(&blocks, &config);

    let healthy = spec(
        "healthy",
        "web",
        &[slo("availability", "99.9", "healthy", false)],
    )
    .replace(
        "description: \"availability of healthy\"",
        &format!(
            "description: \"{}\"",
            HOSTILE_DESCRIPTION.replace('"', "\\\"")
        ),
    );
    assert!(
        healthy.contains("data-pwned"),
        "fixture text changed:\n{healthy}"
    );
    let burning = spec(
        "burning",
        "payments",
        &[slo("availability", "99.9", "burning", false)],
    );
    let ws = Workspace::new();
    let cfg = ws.config(
        &prom.url(),
        "2s",
        &[("healthy.yaml", &healthy), ("burning.yaml", &burning)],
    );
    let daemon = Daemon::start(&cfg);
    std::fs::write(
        &targets_file,
        format!("[{{\"targets\": [\"{}\"]}}]", daemon.addr),
    )
    .expect("write targets");

    let world = World {
        prom,
        daemon,
        _ws: ws,
        _targets: targets,
        _gens: gens,
    };
    world.wait_for_alerts();
    world
}

impl World {
    /// Waits (bounded) until Prometheus has scraped errbudget at least
    /// twice and holds a firing page alert of `burning`.
    fn wait_for_alerts(&self) {
        let scraped = poll(Duration::from_secs(90), || {
            let t = now();
            let up = self.prom.query_value("up{job=\"errbudget\"}", t)?;
            let samples = self.prom.query_value(
                "count_over_time(slo_alert_firing{service=\"burning\",long_window=\"1h\"}[1m])",
                t,
            )?;
            let firing = self.prom.query_value(
                "max(slo_alert_firing{service=\"burning\",severity=\"page\"})",
                t,
            )?;
            (up == 1.0 && samples >= 2.0 && firing == 1.0).then_some(())
        });
        assert!(
            scraped.is_some(),
            "Prometheus never held two scrapes of errbudget with burning's page alert firing\n{}\n{}",
            self.daemon.guard.log_tail(),
            self.prom.guard.log_tail()
        );
    }

    pub fn daemon_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.daemon.addr)
    }
}

pub fn unix_now() -> i64 {
    now()
}
