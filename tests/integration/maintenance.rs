//! Maintenance windows told at run time, against a real Prometheus: one
//! posted to `POST /api/v1/exclusions` over a past outage takes its events
//! out of every window that holds it, withdrawing it puts them back, and a
//! window from `policy.maintenance_file` (re-read on reload) does the
//! same. Expected figures are sums of the generated events.

use std::time::Duration;

use serde_json::Value;

use crate::deploys::{self, send};
use crate::events::{Generated, Series, Traffic, HOUR, MINUTE};
use crate::fixtures::{slo, spec};
use crate::harness::{self, day_ending_now, free_port, poll, Daemon, Workspace};

const SERVICE: &str = "patched";

/// (total, bad) of the minutes ending in `(from, to]` outside `(s, e]`.
fn outside(g: &Generated, from: i64, to: i64, s: i64, e: i64) -> (f64, f64) {
    let mut t = from + MINUTE;
    let (mut total, mut bad) = (0.0, 0.0);
    for (tot, b) in g.minutes(to, to - from) {
        if !(t > s && t <= e) {
            total += tot as f64;
            bad += b as f64;
        }
        t += MINUTE;
    }
    (total, bad)
}

fn slos(d: &Daemon) -> Value {
    serde_json::from_str(&send(d, "GET", "/api/v1/slos", "").body).expect("JSON")
}

/// Waits (bounded) for the 6h window's figures to match `want` of the
/// document's own evaluation instant (a new evaluation after a change).
/// The want is worked out per document: once evaluations pass the data's
/// last minute, the window's start moves on and leaves minutes behind.
fn six_hours_become(d: &Daemon, want: impl Fn(&Value) -> (f64, f64), what: &str) -> Value {
    let mut last = None;
    poll(Duration::from_secs(30), || {
        let doc = slos(d);
        let (total, bad) = want(&doc);
        let ratio = bad / total;
        let got = doc["slos"][0]["error_ratio"]["6h"].as_f64()?;
        last = Some((got, ratio));
        ((got - ratio).abs() <= ratio * 1e-6).then_some(doc)
    })
    .unwrap_or_else(|| {
        panic!(
            "{what}: 6h error ratio (errbudget, events) last {last:?}: {}\n{}",
            slos(d)["slos"][0]["error_ratio"],
            d.guard.log_tail()
        )
    })
}

#[test]
fn windows_told_at_run_time_leave_their_events_out() {
    let (prom, gens) = day_ending_now(|end| {
        vec![Series {
            service: SERVICE,
            labels: vec![],
            traffic: Traffic::Steady {
                base: 300,
                spread: 31,
                p: 0.001,
                incidents: vec![(end - 4 * HOUR, end - 3 * HOUR, 0.3)],
            },
            resets: vec![],
            seed: 5,
            histogram: false,
        }]
    });
    let g = &gens[0];
    let end = g.start + (g.total.len() as i64 - 1) * MINUTE;
    // Aligned to 5 minutes around the outage.
    let s = (end - 4 * HOUR) - (end - 4 * HOUR).rem_euclid(300);
    let e = s + HOUR + 300;
    let ws = Workspace::new();
    let cfg = ws.config_with(
        &prom.url(),
        "2s",
        "policy:\n  maintenance_file: maintenance.yaml\n",
        &[(
            "s.yaml",
            &spec(
                SERVICE,
                "sre",
                &[slo("availability", "99.9", SERVICE, false)],
            ),
        )],
    );
    std::fs::write(ws.path("maintenance.yaml"), "").expect("empty maintenance file");
    let web = deploys::web_config(&ws);
    let args = [std::ffi::OsStr::new("--web.config.file"), web.as_os_str()];
    let d = Daemon::start_as(
        &cfg,
        free_port(),
        &args,
        Some((deploys::USER, deploys::PASSWORD)),
    );
    // The 6h window of a document: minutes ending after its start, up to
    // its evaluation or the data's last minute.
    let window = |doc: &Value| {
        let at = harness::evaluated_at(doc);
        let from = at - 6 * HOUR;
        (from - from.rem_euclid(MINUTE), at.min(end))
    };
    let six = |doc: &Value| {
        let (from, to) = window(doc);
        outside(g, from, to, 0, 0)
    };
    let first = poll(Duration::from_secs(60), || {
        let doc = slos(&d);
        (doc["slos"][0]["status"] == "ok").then_some(doc)
    })
    .expect("figures");
    assert_eq!(first["slos"][0]["status"], "ok");
    six_hours_become(&d, six, "before any window");

    // A bad body names its field; a good one is kept and applied.
    let r = send(
        &d,
        "POST",
        "/api/v1/exclusions",
        &format!(
            r#"{{"service": "{SERVICE}", "reason": "x", "start": "{}", "end": "{}"}}"#,
            harness::rfc3339(s + 60),
            harness::rfc3339(e)
        ),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("start: a maintenance window starts and ends on a 5-minute boundary"),
        "{}",
        r.body
    );
    let r = send(
        &d,
        "POST",
        "/api/v1/exclusions",
        &format!(
            r#"{{"service": "{SERVICE}", "reason": "database failover", "start": "{}", "end": "{}"}}"#,
            harness::rfc3339(s),
            harness::rfc3339(e)
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = serde_json::from_str::<Value>(&r.body).expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let excluded = |doc: &Value| {
        let (from, to) = window(doc);
        outside(g, from, to, s, e)
    };
    let doc = six_hours_become(&d, excluded, "with the window");
    assert_eq!(
        doc["slos"][0]["excluded_seconds"]["6h"].as_f64(),
        Some((e - s) as f64)
    );
    let listed: Value =
        serde_json::from_str(&send(&d, "GET", "/api/v1/exclusions", "").body).expect("JSON");
    assert_eq!(listed["exclusions"][0]["reason"], "database failover");
    assert_eq!(listed["exclusions"][0]["by"], deploys::USER);
    let page = send(&d, "GET", &format!("/slo/{SERVICE}/availability"), "").body;
    assert!(
        page.contains("database failover"),
        "the page lists the window:\n{page}"
    );

    // Withdrawn, the outage counts again.
    let r = send(&d, "DELETE", &format!("/api/v1/exclusions/{id}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    six_hours_become(&d, six, "after withdrawing it");

    // The same window from the maintenance file, on reload.
    std::fs::write(
        ws.path("maintenance.yaml"),
        format!(
            "- service: {SERVICE}\n  reason: failover, from the file\n  start: {}\n  end: {}\n",
            harness::rfc3339(s),
            harness::rfc3339(e)
        ),
    )
    .expect("maintenance file");
    let r = send(&d, "POST", "/-/reload", "");
    assert_eq!(r.status, 200, "{}", r.body);
    six_hours_become(&d, excluded, "from the file");
}
