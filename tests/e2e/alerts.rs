//! Alert delivery: a service burning its budget now pages through a real
//! Alertmanager with the CONTRACT labels and annotations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::events::{openmetrics_days, Generated, Series, Traffic, DAY, MINUTE};
use crate::fixtures::{slo, spec};
use crate::harness::{backfill, poll, Alertmanager, Daemon, Prometheus, Workspace};

/// One day of data ending at the current minute; the last 70 minutes at
/// 40% errors, so at "now" every default window pair burns far above its
/// factor (1h ≈ 400×, 5m ≈ 400× against 14.4).
fn burning_world() -> Prometheus {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let end = now - now.rem_euclid(MINUTE);
    let start = end - DAY;
    let gens: Vec<Generated> = [Series {
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
    }]
    .iter()
    .map(|s| s.generate(start, end))
    .collect();
    let (_tmp, blocks) = backfill(&openmetrics_days(&gens, start, end), false);
    Prometheus::start(&blocks)
}

#[test]
fn burning_budget_pages_through_alertmanager() {
    let prom = burning_world();
    let am = Alertmanager::start();
    let ws = Workspace::new();
    let extra = format!(
        "alerting:\n  alertmanagers:\n    - url: {}\n  resend_interval: 1m\n",
        am.url()
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
    let d = Daemon::start(&cfg);

    // First the decision, visible on /metrics, then its delivery.
    let firing = poll(Duration::from_secs(60), || {
        let m = d.get("/metrics").body;
        m.lines()
            .any(|l| {
                l.starts_with("slo_alert_firing{")
                    && l.contains("long_window=\"1h\"")
                    && l.contains("short_window=\"5m\"")
                    && l.ends_with(" 1")
            })
            .then_some(())
    });
    assert!(
        firing.is_some(),
        "slo_alert_firing for 1h/5m never 1:\n{}",
        d.get("/metrics").body
    );

    let page = poll(Duration::from_secs(30), || {
        am.alerts().into_iter().find(|a| {
            let l = &a["labels"];
            l["long_window"] == "1h" && l["short_window"] == "5m"
        })
    })
    .unwrap_or_else(|| {
        panic!(
            "no 1h/5m alert reached Alertmanager within 30s; got {:?}\n{}",
            am.alerts(),
            d.guard.log_tail()
        )
    });
    let l = &page["labels"];
    for (k, v) in [
        ("alertname", "burningHighErrorRate"),
        ("service", "burning"),
        ("slo", "availability"),
        ("severity", "page"),
        ("team", "sre"),
    ] {
        assert_eq!(l[k].as_str(), Some(v), "label {k} of {page}");
    }
    for k in [
        "summary",
        "description",
        "burn_rate",
        "error_budget_remaining",
    ] {
        assert!(
            page["annotations"][k]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "annotation {k} of {page}"
        );
    }
    // Each window pair is its own alert: all four default pairs fire here.
    let pairs = poll(Duration::from_secs(30), || {
        let got: Vec<(String, String)> = am
            .alerts()
            .iter()
            .map(|a| {
                (
                    a["labels"]["long_window"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    a["labels"]["short_window"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                )
            })
            .collect();
        let want = [("1h", "5m"), ("6h", "30m"), ("1d", "2h"), ("3d", "6h")];
        want.iter()
            .all(|(l, s)| got.iter().any(|(a, b)| a == l && b == s))
            .then_some(got)
    });
    assert!(
        pairs.is_some(),
        "not every window pair fired: {:?}",
        am.alerts()
    );
}
