//! Calendar periods and maintenance windows against generated events: a
//! calendar month in Europe/Berlin across the end of daylight saving time
//! (October 2026 has 31 days and 1 hour), with a weekly maintenance window
//! on Sundays 02:00-04:00 local time, and the period report of October.
//!
//! The boundaries and windows are written out below as UTC instants (from
//! the calendar, not from errbudget): October begins 2026-09-30T22:00Z
//! (midnight CEST) and ends 2026-10-31T23:00Z (midnight CET); a Sunday
//! 02:00 local is 00:00Z in CEST and 01:00Z in CET; on 25 October, when
//! 02:00-03:00 happens twice, the window begins at the first 02:00 (CEST).
//!
//! Samples are minute-aligned, so every figure must match the events to
//! the tolerance `expect` states (float summation only): a window or a
//! minute counted on the wrong side of a boundary is off by a whole minute
//! of events, ≥ 1e-5 of any figure here.

use serde_json::Value;

use crate::events::{openmetrics_days, Generated, Series, Traffic, HOUR, MINUTE};
use crate::expect::prometheus_rel;
use crate::harness::{self, backfill, Prometheus, Workspace};

fn utc(s: &str) -> i64 {
    humantime::parse_rfc3339(s)
        .expect("test instant")
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

const SERVICE: &str = "calendar";

/// Maintenance windows `(start, end]` in UTC, from the calendar.
fn maintenance() -> Vec<(i64, i64)> {
    [
        "2026-09-27T00:00:00Z",
        "2026-10-04T00:00:00Z",
        "2026-10-11T00:00:00Z",
        "2026-10-18T00:00:00Z",
        "2026-10-25T00:00:00Z",
        "2026-11-01T01:00:00Z",
        "2026-11-08T01:00:00Z",
        "2026-11-15T01:00:00Z",
        "2026-11-22T01:00:00Z",
        "2026-11-29T01:00:00Z",
    ]
    .iter()
    .map(|s| (utc(s), utc(s) + 2 * HOUR))
    .collect()
}

fn october() -> (i64, i64) {
    (utc("2026-09-30T22:00:00Z"), utc("2026-10-31T23:00:00Z"))
}

fn november_start() -> i64 {
    utc("2026-10-31T23:00:00Z")
}

/// Incidents: one inside the 18 October window (must vanish), one on 20
/// October (must page and be reported), one in the first hour of November
/// local time, which is still October in UTC, and one inside the 1
/// November window.
fn series() -> Series {
    Series {
        service: SERVICE,
        labels: vec![],
        traffic: Traffic::Steady {
            base: 100,
            spread: 21,
            p: 0.0005,
            incidents: vec![
                (
                    utc("2026-10-18T00:30:00Z"),
                    utc("2026-10-18T01:30:00Z"),
                    0.5,
                ),
                (
                    utc("2026-10-20T10:00:00Z"),
                    utc("2026-10-20T10:40:00Z"),
                    0.2,
                ),
                (
                    utc("2026-10-31T23:10:00Z"),
                    utc("2026-10-31T23:40:00Z"),
                    0.3,
                ),
                (
                    utc("2026-11-01T01:10:00Z"),
                    utc("2026-11-01T01:50:00Z"),
                    0.5,
                ),
            ],
        },
        resets: vec![],
        seed: 2026,
        histogram: false,
    }
}

const START: &str = "2026-09-26T00:00:00Z";
const END: &str = "2026-11-03T00:00:00Z";

fn spec() -> String {
    format!(
        r#"version: "prometheus/v1"
service: "{SERVICE}"
exclusions:
  - reason: weekly patching
    rrule: FREQ=WEEKLY;BYDAY=SU;BYHOUR=2
    duration: 2h
    time_zone: Europe/Berlin
slos:
  - name: availability
    objective: 99.9
    period:
      calendar: month
      time_zone: Europe/Berlin
    policy:
      release_freeze_below: 0.5
    sli:
      events:
        error_query: 'sum(rate(http_requests_total{{service="{SERVICE}",code="500"}}[{{{{.window}}}}]))'
        total_query: 'sum(rate(http_requests_total{{service="{SERVICE}"}}[{{{{.window}}}}]))'
"#
    )
}

struct World {
    prom: Prometheus,
    generated: Generated,
    _blocks: Option<tempfile::TempDir>,
}

fn world() -> World {
    let (start, end) = (utc(START), utc(END));
    let generated = series().generate(start, end);
    let (blocks_dir, blocks) = backfill(
        &openmetrics_days(std::slice::from_ref(&generated), start, end),
        true,
    );
    World {
        prom: Prometheus::start(&blocks),
        generated,
        _blocks: blocks_dir,
    }
}

/// (total, bad) of minutes ending in `(from, to]` outside every window.
fn events_outside(g: &Generated, from: i64, to: i64) -> (f64, f64) {
    let windows = maintenance();
    let mut t = from + MINUTE;
    let (mut total, mut bad) = (0.0, 0.0);
    for (tot, b) in g.minutes(to, to - from) {
        if !windows.iter().any(|&(s, e)| t > s && t <= e) {
            total += tot as f64;
            bad += b as f64;
        }
        t += MINUTE;
    }
    (total, bad)
}

fn excluded_in(from: i64, to: i64) -> f64 {
    maintenance()
        .iter()
        .map(|&(s, e)| (e.min(to) - s.max(from)).max(0))
        .sum::<i64>() as f64
}

fn close(got: f64, want: f64, what: &str) {
    let tol = (want.abs() * prometheus_rel()).max(1e-9);
    assert!(
        (got - want).abs() <= tol,
        "{what}: errbudget {got}, events {want} (tolerance {tol})"
    );
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"))
}

/// Checks one evaluation against the events: period bounds and length,
/// period events, budget, remaining ratio, excluded time.
fn check_period(g: &Generated, doc: &Value, at: i64, start: i64, end: i64, name: &str) {
    let slo = &doc["slos"][0];
    assert_eq!(slo["status"], "ok", "{slo}");
    assert_eq!(slo["period"]["kind"], "calendar");
    assert_eq!(slo["period"]["name"], name, "at {}", harness::rfc3339(at));
    assert_eq!(slo["period"]["start"], harness::rfc3339(start));
    assert_eq!(slo["period"]["end"], harness::rfc3339(end));
    assert_eq!(slo["period_seconds"].as_i64(), Some(end - start));
    let (total, bad) = events_outside(g, start, at);
    close(
        num(&slo["period_events"]["total"], "total"),
        total,
        "period total",
    );
    close(num(&slo["period_events"]["bad"], "bad"), bad, "period bad");
    let budget = (end - start) as f64 - excluded_in(start, end);
    close(
        num(&slo["error_budget_seconds"], "budget"),
        budget * 0.001,
        "budget seconds",
    );
    let excluded = excluded_in(start, at);
    close(
        num(&slo["period_excluded_seconds"], "excluded"),
        excluded,
        "excluded so far",
    );
    // Budget spent: the period's error ratio over the time outside windows.
    let covered = (at - start) as f64 - excluded;
    let want_remaining = 1.0 - (bad / total) * covered / (budget * 0.001);
    let got = num(&slo["error_budget_remaining_ratio"], "remaining");
    let tol = prometheus_rel() * (bad / total) / 0.001 * 2.0 + 1e-9;
    assert!(
        (got - want_remaining).abs() <= tol,
        "remaining ratio at {}: errbudget {got}, events {want_remaining}",
        harness::rfc3339(at)
    );
}

#[test]
fn a_berlin_month_across_daylight_saving_with_weekly_maintenance() {
    let w = world();
    let ws = Workspace::new();
    let cfg = ws.config(&w.prom.url(), "30s", &[("calendar.yaml", &spec())]);
    let (oct_start, oct_end) = october();
    let nov_end = utc("2026-11-30T23:00:00Z");

    // Mid-October: three Sundays' windows so far (18 October's incident in
    // one of them), the 25th and the hour gained still ahead.
    let at = utc("2026-10-20T12:00:00Z");
    let doc = harness::eval_json(&cfg, at);
    check_period(&w.generated, &doc, at, oct_start, oct_end, "2026-10");
    // The 18 October incident is in no window any more; the 20 October one
    // is in the 6h window.
    let slo = &doc["slos"][0];
    assert_eq!(num(&slo["excluded_seconds"]["3d"], "3d"), 2.0 * HOUR as f64);

    // Five minutes before the end of October (23:00Z): all four windows.
    let at = oct_end - 5 * MINUTE;
    let doc = harness::eval_json(&cfg, at);
    check_period(&w.generated, &doc, at, oct_start, oct_end, "2026-10");

    // 00:00Z on 1 November: one hour into November in Berlin, holding the
    // 23:10Z incident, which UTC would count in October.
    let at = utc("2026-11-01T00:00:00Z");
    let doc = harness::eval_json(&cfg, at);
    check_period(&w.generated, &doc, at, november_start(), nov_end, "2026-11");

    // Inside the 1 November window (01:00Z-03:00Z) with an incident in it:
    // nothing of it counts, and the page pair sees no traffic at all.
    let at = utc("2026-11-01T02:00:00Z");
    let doc = harness::eval_json(&cfg, at);
    check_period(&w.generated, &doc, at, november_start(), nov_end, "2026-11");
    let slo = &doc["slos"][0];
    assert_eq!(num(&slo["excluded_seconds"]["1h"], "1h"), HOUR as f64);
    assert_eq!(num(&slo["error_ratio"]["5m"], "5m"), 0.0);
    assert_eq!(num(&slo["error_ratio"]["1h"], "1h"), 0.0);
    assert_eq!(num(&slo["error_ratio"]["30m"], "30m"), 0.0);
    // No page: both page pairs' short windows lie inside the window. (The
    // tickets' 6h and 3d windows still hold the 23:10Z incident.)
    let paging: Vec<&Value> = slo["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .filter(|a| a["severity"] == "page" && a["condition"] == true)
        .collect();
    assert!(
        paging.is_empty(),
        "no page condition inside maintenance: {paging:?}"
    );
}

#[test]
fn the_october_report_holds_its_incident_and_not_the_maintenance_one() {
    let w = world();
    let ws = Workspace::new();
    let cfg = ws.config(&w.prom.url(), "30s", &[("calendar.yaml", &spec())]);
    let (start, end) = october();
    let run = |output: &str| {
        let (code, out, err) = harness::run_bounded(
            std::process::Command::new(harness::errbudget_bin())
                .args(["report", "--config.file"])
                .arg(&cfg)
                .args(["--period", "2026-10", "--step", "15m", "--output", output]),
            std::time::Duration::from_secs(300),
        );
        assert_eq!(code, Some(0), "report exit code\n{out}\n{err}");
        out
    };
    let doc: Value = serde_json::from_str(&run("json")).expect("report JSON");
    let slo = &doc["slos"][0];
    assert_eq!(slo["period"]["name"], "2026-10");
    assert_eq!(slo["period"]["start"], harness::rfc3339(start));
    assert_eq!(slo["period"]["end"], harness::rfc3339(end));
    let (total, bad) = events_outside(&w.generated, start, end);
    close(
        num(&slo["period_events"]["total"], "total"),
        total,
        "October total",
    );
    close(num(&slo["period_events"]["bad"], "bad"), bad, "October bad");
    close(
        num(&slo["achieved_ratio"], "achieved"),
        1.0 - bad / total,
        "achieved",
    );
    assert_eq!(slo["met"], Value::Bool(1.0 - bad / total >= 0.999));
    close(
        num(&slo["excluded_seconds"], "excluded"),
        4.0 * 2.0 * HOUR as f64,
        "excluded",
    );
    let budget = ((end - start) as f64 - 8.0 * HOUR as f64) * 0.001;
    let consumed = (bad / total) * ((end - start) as f64 - 8.0 * HOUR as f64) / budget;
    let got = num(&slo["budget_consumed_ratio"], "consumed");
    assert!(
        (got - consumed).abs() < 1e-6,
        "consumed {got} vs {consumed}"
    );

    // One incident: 20 October. The 18 October one was maintenance; the
    // 23:10Z one on 31 October is November's in Berlin.
    let incidents = slo["incidents"].as_array().expect("incidents");
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    let inc = &incidents[0];
    assert_eq!(inc["severity"], "page");
    let (from, to) = (utc("2026-10-20T10:00:00Z"), utc("2026-10-20T10:40:00Z"));
    let inc_start = utc(inc["start"].as_str().expect("start"));
    let inc_end = utc(inc["end"].as_str().expect("ended in October"));
    assert!(
        inc_start > from && inc_start <= from + 15 * MINUTE,
        "the page fires within 15 minutes of the incident's start: {inc}"
    );
    assert!(inc_end > to, "it ends after the incident does: {inc}");
    // Its budget share: its bad events over the period's, of what October consumed.
    // Counted from one replay step (15m) and one short window (the
    // page's 5m) before the page: the page fired somewhere in the step
    // before the replay saw it. So the whole outage is in it.
    let counted_from = utc(inc["counted_from"].as_str().expect("counted_from"));
    assert_eq!(counted_from, inc_start - 20 * MINUTE, "{inc}");
    assert!(
        counted_from <= from,
        "the outage's first minutes are left out: {inc}"
    );
    let (_, inc_bad) = events_outside(&w.generated, counted_from, inc_end);
    close(
        num(&inc["bad_events"], "bad_events"),
        inc_bad,
        "incident bad events",
    );
    let share = num(&inc["budget_consumed_ratio"], "share");
    assert!(
        (share - consumed * inc_bad / bad).abs() < 1e-6,
        "incident share {share} vs {}",
        consumed * inc_bad / bad
    );
    // With the freeze at 50% remaining, October is frozen from when half
    // the budget is gone, if it ever is.
    let freeze = slo["time_in_freeze_seconds"].as_i64().expect("freeze");
    if consumed > 0.5 {
        assert!(freeze > 0, "consumed {consumed} but no freeze");
    } else {
        assert_eq!(freeze, 0, "consumed {consumed} yet frozen");
    }

    let md = run("markdown");
    assert!(md.starts_with("# SLO report 2026-10\n"), "{md}");
    assert!(md.contains("| calendar/availability |"), "{md}");
    assert!(md.contains("| page |"), "{md}");
    println!("{md}");
    let html = run("html");
    assert!(html.contains("<h1>SLO report 2026-10</h1>"), "{html}");
}
