//! A calendar-month SLO (Europe/Berlin) with a weekly maintenance window
//! and two deploys told to its API, run as users run it: a daemon on the
//! current month, scraped by the Prometheus it reads, and the report of
//! last month. The status page, the
//! Grafana SLO dashboard's queries and `errbudget report` must show the
//! figures the generated events give.
//!
//! Month boundaries and the window's UTC instants come from the system's
//! zone database through GNU `date` (package tzdata), not from errbudget's
//! compiled-in one, so a boundary errbudget puts elsewhere fails.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::deploys;
use crate::events::{openmetrics_days, Generated, Series, Traffic, DAY, HOUR, MINUTE};
use crate::expect::prometheus_rel;
use crate::harness::{self, backfill, poll, run_bounded, Daemon, Prometheus, Workspace};
use crate::scraped::unix_now;

const SERVICE: &str = "checkout";
const ZONE: &str = "Europe/Berlin";

/// `TZ=Europe/Berlin date -d TEXT +FORMAT`.
fn berlin_date(args: &[&str]) -> String {
    let (code, out, err) = run_bounded(
        Command::new("date").env("TZ", ZONE).args(args),
        Duration::from_secs(10),
    );
    assert_eq!(
        code,
        Some(0),
        "date {args:?}: {err} (the zone database comes with `apt-get install tzdata`)"
    );
    out.trim().to_string()
}

/// Unix time of local `YYYY-MM-DD HH:MM` in Berlin.
fn local(text: &str) -> i64 {
    berlin_date(&["-d", text, "+%s"]).parse().expect("seconds")
}

/// `(start, end, name)` of the Berlin month holding the instant `t` (an
/// instant at a boundary closes the month before it).
fn month_of(t: i64) -> (i64, i64, String) {
    let name = berlin_date(&["-d", &format!("@{}", t - 1), "+%Y-%m"]);
    let start = local(&format!("{name}-01 00:00"));
    // (Relative items after a time would be read as a UTC offset.)
    let next = berlin_date(&["-d", &format!("@{}", start + 32 * DAY), "+%Y-%m"]);
    (start, local(&format!("{next}-01 00:00")), name)
}

/// The maintenance window: weekly on the weekday and hour (local) of an
/// instant 30 hours before `end`, 1 hour long, so one occurrence is in
/// the data and over before the daemon starts. Its occurrences as
/// `(start, end]` in UTC, from 9 weeks before to 6 weeks after (last
/// month and all of this one).
fn maintenance(end: i64) -> (String, Vec<(i64, i64)>) {
    let anchor = end - 30 * HOUR;
    let day = berlin_date(&["-d", &format!("@{anchor}"), "+%Y-%m-%d"]);
    let hour: u32 = berlin_date(&["-d", &format!("@{anchor}"), "+%H"])
        .parse()
        .expect("hour");
    let weekday = berlin_date(&["-d", &format!("@{anchor}"), "+%a"])
        .to_uppercase()
        .chars()
        .take(2)
        .collect::<String>();
    let rule = format!("FREQ=WEEKLY;BYDAY={weekday};BYHOUR={hour}");
    let noon = local(&format!("{day} 12:00"));
    let windows = (-9i64..=6)
        .map(|k| {
            // Noon moves by an hour across a DST change, never off its day.
            let date = berlin_date(&["-d", &format!("@{}", noon + 7 * k * DAY), "+%Y-%m-%d"]);
            let s = local(&format!("{date} {hour:02}:00"));
            (s, s + HOUR)
        })
        .collect();
    (rule, windows)
}

struct Scenario {
    generated: Generated,
    windows: Vec<(i64, i64)>,
}

impl Scenario {
    /// (total, bad) of the minutes ending in `(from, to]` outside every
    /// maintenance window.
    fn outside(&self, from: i64, to: i64) -> (f64, f64) {
        // No events after the data's last minute.
        let last = self.generated.start + (self.generated.total.len() as i64 - 1) * MINUTE;
        let to = to.min(last);
        let mut t = from + MINUTE;
        let (mut total, mut bad) = (0.0, 0.0);
        for (tot, b) in self.generated.minutes(to, to - from) {
            if !self.windows.iter().any(|&(s, e)| t > s && t <= e) {
                total += tot as f64;
                bad += b as f64;
            }
            t += MINUTE;
        }
        (total, bad)
    }

    fn excluded(&self, from: i64, to: i64) -> f64 {
        self.windows
            .iter()
            .map(|&(s, e)| (e.min(to) - s.max(from)).max(0))
            .sum::<i64>() as f64
    }

    /// The remaining-budget ratio at `at` of the period `(start, end]`.
    fn remaining(&self, start: i64, end: i64, at: i64) -> f64 {
        let (total, bad) = self.outside(start, at);
        let budget = ((end - start) as f64 - self.excluded(start, end)) * 0.001;
        let covered = (at - start) as f64 - self.excluded(start, at);
        1.0 - (bad / total) * covered / budget
    }
}

fn spec(rule: &str) -> String {
    format!(
        r#"version: "prometheus/v1"
service: "{SERVICE}"
exclusions:
  - reason: weekly database maintenance
    rrule: {rule}
    duration: 1h
    time_zone: {ZONE}
slos:
  - name: availability
    objective: 99.9
    period:
      calendar: month
      time_zone: {ZONE}
    sli:
      events:
        error_query: 'sum(rate(http_requests_total{{service="{SERVICE}",code="500"}}[{{{{.window}}}}]))'
        total_query: 'sum(rate(http_requests_total{{service="{SERVICE}"}}[{{{{.window}}}}]))'
"#
    )
}

fn close(got: f64, want: f64, rel: f64, what: &str) {
    let tol = (want.abs() * rel).max(1e-9);
    assert!(
        (got - want).abs() <= tol,
        "{what}: errbudget {got}, events {want} (tolerance {tol})"
    );
}

#[test]
fn a_berlin_month_with_weekly_maintenance_agrees_on_the_page_in_grafana_and_in_the_report() {
    let end = unix_now() - unix_now().rem_euclid(MINUTE);
    let (cur_start, cur_end, cur_name) = month_of(end);
    let (prev_start, prev_end, prev_name) = month_of(cur_start);
    assert_eq!(prev_end, cur_start);
    let (rule, windows) = maintenance(end);
    let data_start = prev_start - prev_start.rem_euclid(DAY) - DAY;
    // Last month: an outage on its 10th (pages) and one inside a
    // maintenance window (left out).
    let mut outage = prev_start + 9 * DAY + 10 * HOUR;
    if windows
        .iter()
        .any(|&(s, e)| s < outage + 30 * MINUTE && outage < e)
    {
        outage += 3 * HOUR;
    }
    let hidden = windows
        .iter()
        .find(|(s, _)| *s > prev_start && *s < prev_end - HOUR)
        .copied()
        .expect("a maintenance window last month");
    let generated = Series {
        service: SERVICE,
        labels: vec![],
        traffic: Traffic::Steady {
            base: 200,
            spread: 41,
            p: 0.0003,
            incidents: vec![
                (outage, outage + 30 * MINUTE, 0.2),
                (hidden.0 + 10 * MINUTE, hidden.1 - 10 * MINUTE, 0.6),
            ],
        },
        resets: vec![],
        seed: 77,
        histogram: false,
    }
    .generate(data_start, end);
    let s = Scenario { generated, windows };
    let (_blocks_tmp, blocks) = backfill(
        &openmetrics_days(std::slice::from_ref(&s.generated), data_start, end),
        false,
    );

    // Prometheus scrapes the daemon, as the dashboards' Prometheus does
    // (with the user the deploys are posted as: the web config asks every
    // client to authenticate).
    let targets = tempfile::tempdir().expect("tempdir");
    let targets_file = targets.path().join("errbudget.json");
    std::fs::write(&targets_file, "[]").expect("write targets");
    let prom = Prometheus::start_with_config(
        &blocks,
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: errbudget\n    scrape_interval: 1s\n    basic_auth:\n      username: {}\n      password: {}\n    file_sd_configs:\n      - files: [\"{}\"]\n        refresh_interval: 1s\n",
            deploys::USER,
            deploys::PASSWORD,
            targets_file.display()
        ),
    );
    let ws = Workspace::new();
    let cfg = ws.config_with(
        &prom.url(),
        "2s",
        "storage:\n  path: state\n",
        &[("checkout.yaml", &spec(&rule))],
    );
    // A period the daemon kept before a restart, in its records file.
    std::fs::create_dir_all(ws.path("state")).expect("mkdir state");
    let kept = serde_json::json!({
        "version": 1, "deployments": [], "overrides": [], "totals": {},
        "seen": {"at": null, "present": {}},
        "periods": [{
            "service": SERVICE, "slo": "availability", "labels": {}, "period": "2026-01",
            "start": "2025-12-31T23:00:00Z", "end": "2026-01-31T23:00:00Z",
            "evaluated_at": "2026-01-31T22:59:45Z", "objective": 0.999,
            "period_error_ratio": 0.00042, "achieved_ratio": 0.99958,
            "error_budget_remaining_ratio": 0.58, "error_budget_seconds": 2600.0,
            "excluded_seconds": 18000.0, "period_events": null
        }]
    });
    std::fs::write(ws.path("state/errbudget.records.json"), kept.to_string()).expect("records");
    let web = deploys::web_config(&ws);
    let args = [std::ffi::OsStr::new("--web.config.file"), web.as_os_str()];
    let daemon = Daemon::start_as(
        &cfg,
        harness::free_port(),
        &args,
        Some((deploys::USER, deploys::PASSWORD)),
    );
    let get = |path: &str| deploys::send(&daemon, "GET", path, "");
    // Two deploys: one just before last month's outage, one two hours
    // before the data ends (this month, but for its first two hours).
    let deployed = [("v1.41", outage - 10 * MINUTE), ("v1.42", end - 2 * HOUR)];
    for (version, at) in deployed {
        let r = deploys::send(
            &daemon,
            "POST",
            "/api/v1/deployments",
            &format!(
                r#"{{"service": "{SERVICE}", "version": "{version}", "at": "{}"}}"#,
                harness::rfc3339(at)
            ),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    std::fs::write(
        &targets_file,
        format!("[{{\"targets\": [\"{}\"]}}]", daemon.addr),
    )
    .expect("write targets");

    // The API: this month so far.
    let doc: Value = poll(Duration::from_secs(60), || {
        let r = get("/api/v1/slos");
        let v: Value = serde_json::from_str(&r.body).ok()?;
        (v["slos"][0]["status"] == "ok").then_some(v)
    })
    .unwrap_or_else(|| panic!("no figures within 60s\n{}", daemon.guard.log_tail()));
    let slo = &doc["slos"][0];
    let at = harness::evaluated_at(&doc);
    let rel = prometheus_rel();
    assert_eq!(slo["period"]["name"], cur_name.as_str());
    assert_eq!(slo["period"]["start"], harness::rfc3339(cur_start));
    assert_eq!(slo["period"]["end"], harness::rfc3339(cur_end));
    let (total, bad) = s.outside(cur_start, at.min(end));
    close(
        slo["period_events"]["total"].as_f64().expect("total"),
        total,
        rel,
        "period total",
    );
    close(
        slo["period_events"]["bad"].as_f64().expect("bad"),
        bad,
        rel,
        "period bad",
    );
    close(
        slo["period_excluded_seconds"].as_f64().expect("excluded"),
        s.excluded(cur_start, at),
        1e-12,
        "maintenance so far",
    );
    // The remaining ratio is 1 − x, x the spent share: the events'
    // tolerance applies to x.
    let spent_tol = |x: f64| 2.0 * rel * x.abs() + 1e-9;
    let remaining = s.remaining(cur_start, cur_end, at);
    let got = slo["error_budget_remaining_ratio"]
        .as_f64()
        .expect("remaining");
    assert!(
        (got - remaining).abs() <= spent_tol(1.0 - remaining),
        "remaining ratio: errbudget {got}, events {remaining}"
    );

    // The series only such an SLO has, with the figures of the API.
    let metrics = get("/metrics").body;
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains("service=\"checkout\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{metrics}"))
    };
    assert_eq!(
        line("slo_period_start_timestamp_seconds{"),
        cur_start as f64
    );
    assert_eq!(line("slo_period_end_timestamp_seconds{"), cur_end as f64);
    assert_eq!(line("slo_period_seconds{"), (cur_end - cur_start) as f64);
    assert!(line("slo_period_excluded_seconds{") >= s.excluded(cur_start, at));
    assert!(metrics.contains("slo_excluded_seconds{"), "{metrics}");

    // The status page says which month, how much of it was maintenance,
    // and the budget left the events give (one decimal, as it prints it).
    let page = get(&format!("/slo/{SERVICE}/availability"));
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains(&format!("{cur_name} (calendar month, {ZONE})")),
        "the page names the month:\n{}",
        page.body
    );
    assert!(page.body.contains("Maintenance:"), "{}", page.body);
    assert!(
        page.body.contains("weekly database maintenance"),
        "the page lists the window"
    );
    // The kept period is on the page and in the API.
    assert!(page.body.contains("<td>2026-01</td>"), "{}", page.body);
    let periods: Value =
        serde_json::from_str(&get("/api/v1/periods?service=checkout").body).expect("JSON");
    assert_eq!(periods["periods"][0]["period"], "2026-01");
    assert_eq!(periods["periods"][0]["error_budget_remaining_ratio"], 0.58);
    // This month's deploy is marked on the burn-down chart, which runs
    // up to now (in a month's first two hours the deploy was last month's
    // and is not on it).
    let this_month = deployed[1].1 > cur_start;
    assert_eq!(
        page.body.contains("v1.42"),
        this_month,
        "v1.42 at {} marked: {this_month}\n{}",
        deployed[1].1,
        page.body
    );

    // Grafana's SLO dashboard: its "Budget left" query, run by the
    // Prometheus that scrapes the daemon, against the events at the
    // instant the scraped figures were evaluated for.
    let d = crate::dashboards::load("errbudget-slo.json");
    let panel_expr = |title: &str| {
        crate::dashboards::panels(&d)
            .into_iter()
            .find(|p| p["title"] == title)
            .and_then(|p| p["targets"][0]["expr"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("a {title} panel"))
            .replace("$service", SERVICE)
            .replace("$slo", "availability")
    };
    let expr = panel_expr("Budget left");
    let seen = poll(Duration::from_secs(30), || {
        let t = unix_now();
        let v = prom.query_value(&expr, t)?;
        let evaluated = prom.query_value(
            &format!("slo_last_evaluation_timestamp_seconds{{service=\"{SERVICE}\"}}"),
            t,
        )? as i64;
        Some((v, evaluated - evaluated.rem_euclid(15)))
    })
    .expect("Prometheus never scraped the daemon's budget");
    // The dashboard's deploy annotations read this series.
    let told = poll(Duration::from_secs(30), || {
        prom.query_value(
            &format!("slo_deployments_total{{service=\"{SERVICE}\"}}"),
            unix_now(),
        )
        .filter(|v| *v == 2.0)
    });
    assert_eq!(
        told,
        Some(2.0),
        "slo_deployments_total as Prometheus scraped it"
    );
    // The panels of what only such an SLO has: when the month resets and
    // how much of it so far was maintenance (no window is open now).
    let panel = |title: &str| {
        let expr = panel_expr(title);
        prom.query_value(&expr, unix_now())
            .unwrap_or_else(|| panic!("{title}: no data for a calendar SLO: {expr}"))
    };
    assert!(crate::dashboards::CALENDAR_ONLY.contains(&"Period resets"));
    assert_eq!(panel("Period resets"), cur_end as f64 * 1000.0);
    assert_eq!(
        panel("Maintenance left out"),
        s.excluded(cur_start, unix_now())
    );
    let want = s.remaining(cur_start, cur_end, seen.1);
    assert!(
        (seen.0 - want).abs() <= spent_tol(1.0 - want),
        "Grafana's Budget left: {} scraped, events {want} at {}",
        seen.0,
        seen.1
    );

    // Last month's report.
    let (code, out, err) = run_bounded(
        Command::new(harness::errbudget_bin())
            .args(["report", "--config.file"])
            .arg(&cfg)
            .args(["--period", &prev_name, "--step", "15m", "--output", "json"]),
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "report\n{out}\n{err}");
    let report: Value = serde_json::from_str(&out).expect("report JSON");
    let r = &report["slos"][0];
    let (total, bad) = s.outside(prev_start, prev_end);
    close(
        r["period_events"]["total"].as_f64().expect("total"),
        total,
        rel,
        "last month total",
    );
    close(
        r["achieved_ratio"].as_f64().expect("achieved"),
        1.0 - bad / total,
        rel,
        "achieved",
    );
    let consumed = 1.0 - s.remaining(prev_start, prev_end, prev_end);
    close(
        r["budget_consumed_ratio"].as_f64().expect("consumed"),
        consumed,
        1e-6,
        "consumed",
    );
    close(
        r["excluded_seconds"].as_f64().expect("excluded"),
        s.excluded(prev_start, prev_end),
        1e-12,
        "last month's maintenance",
    );
    let incidents = r["incidents"].as_array().expect("incidents");
    assert_eq!(
        incidents.len(),
        1,
        "only the outage, not the maintenance one: {incidents:#?}"
    );
    let start = humantime::parse_rfc3339(incidents[0]["start"].as_str().expect("start"))
        .expect("RFC 3339")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    assert!(
        start > outage && start <= outage + 15 * MINUTE,
        "{incidents:#?}"
    );
    assert_eq!(incidents[0]["severity"], "page");
    // Every bad event of the outage is the incident's, whichever replay
    // step saw the page first.
    let (_, outage_bad) = s.outside(outage, outage + 30 * MINUTE);
    let inc_bad = incidents[0]["bad_events"].as_f64().expect("bad_events");
    assert!(
        inc_bad >= outage_bad * (1.0 - rel),
        "the incident holds {inc_bad} bad events, the outage {outage_bad}: {incidents:#?}"
    );
    // Last month's deploys, each with the budget consumed in the hour after
    // it (from its 5-minute bucket), as a share of what the month consumed
    // in proportion to bad events, as incidents are.
    let in_report: Vec<&(&str, i64)> = deployed
        .iter()
        .filter(|(_, at)| *at > prev_start && *at <= prev_end)
        .collect();
    let listed = r["deployments"].as_array().expect("deployments");
    assert_eq!(listed.len(), in_report.len(), "{listed:#?}");
    for ((version, at), d) in in_report.iter().zip(listed) {
        assert_eq!(d["version"], *version);
        assert_eq!(d["at"], harness::rfc3339(*at));
        let from = at - at.rem_euclid(300);
        // (v1.42 is last month's in this month's first two hours; its hour
        // then runs into this month, past what the report holds.)
        if from + HOUR > prev_end - 5 * MINUTE {
            assert!(d["budget_consumed_next_hour_ratio"].is_null(), "{d}");
            continue;
        }
        let (_, hour_bad) = s.outside(from, from + HOUR);
        let want = consumed * hour_bad / bad;
        let got = d["budget_consumed_next_hour_ratio"]
            .as_f64()
            .expect("share");
        assert!((got - want).abs() < 1e-6, "{version}: {got} vs {want}");
    }
    let (code, md, err) = run_bounded(
        Command::new(harness::errbudget_bin())
            .args(["report", "--config.file"])
            .arg(&cfg)
            .args(["--period", &prev_name, "--step", "15m"]),
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "report\n{md}\n{err}");
    assert!(md.contains("| v1.41 |"), "{md}");
    println!("{md}");
    drop(targets);
}
