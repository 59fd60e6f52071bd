//! CPU cost of what calendar periods and maintenance windows add to one
//! evaluation cycle of one SLO instance, measured in-process (no backend):
//! the maintenance mask over a 31-day month for weekly, daily and hourly
//! rules (computed once a day for a day ahead, then clipped each cycle),
//! the window sums over a month of 5-minute buckets in one pass against
//! one pass per window (as before), and the deploys an alert annotation
//! lists, found by binary search against a scan of the whole book.
//! Run: `cargo bench --bench period_cost`. Figures are medians of
//! BENCH_REPEAT (15) runs; compare the ratios printed, which one noisy
//! machine keeps, not the times.

use std::time::Instant;

use chrono::NaiveDate;
use errbudget::budget::Events;
use errbudget::exclusion::{Exclusion, Mask};
use errbudget::history::History;
use errbudget::records::{Book, Deployment, Source};

const MONTH: i64 = 31 * 86_400;
const END: i64 = 1_796_083_200; // 2026-12-01T00:00:00Z

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn time(repeat: usize, mut f: impl FnMut() -> usize) -> (f64, usize) {
    let mut out = 0;
    let secs = (0..repeat)
        .map(|_| {
            let t = Instant::now();
            out = std::hint::black_box(f());
            t.elapsed().as_secs_f64()
        })
        .collect();
    (median(secs), out)
}

fn main() {
    let repeat: usize = std::env::var("BENCH_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let dtstart = NaiveDate::from_ymd_opt(2020, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("date");
    println!("maintenance mask over 31 days (one cycle, one SLO):");
    for (name, rule, duration) in [
        ("weekly", "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2", 7_200),
        ("daily", "FREQ=DAILY;BYHOUR=3", 1_800),
        ("hourly", "FREQ=HOURLY;BYMINUTE=0", 300),
    ] {
        let e = Exclusion::recurring(
            rule,
            chrono_tz::Europe::Berlin,
            dtstart,
            duration,
            String::new(),
        )
        .expect("valid rule");
        let (secs, n) = time(repeat, || {
            Mask::of([&e], END - MONTH, END).intervals().len()
        });
        let day = Mask::of([&e], END - MONTH - 3_600, END + 86_400);
        let (clip, _) = time(repeat, || day.clip(END - MONTH, END).intervals().len());
        println!(
            "  {name:<7} {n:>4} windows  computed {:>9.1} µs, clipped from the day's {:>7.1} µs, ratio {:.0}",
            secs * 1e6,
            clip * 1e6,
            secs / clip
        );
    }

    let mut h = History::new(300);
    h.start_at(END - MONTH);
    h.extend_to(END, |t| {
        Events::new((t % 7) as f64, 1_000.0 + (t % 13) as f64)
    });
    let bases: Vec<i64> = [300, 1_800, 3_600, 7_200, 21_600, 86_400, 259_200, MONTH]
        .iter()
        .map(|w| END - w)
        .collect();
    let none = Mask::default();
    let (one, _) = time(repeat, || h.sums_from(&bases, END, &none).len());
    let (each, _) = time(repeat, || {
        bases
            .iter()
            .map(|&b| h.events_between(b, END).total as usize)
            .sum()
    });
    println!(
        "window sums over {} buckets, 8 windows: one pass {:.1} µs, a pass per window {:.1} µs, ratio {:.1}",
        h.len(),
        one * 1e6,
        each * 1e6,
        each / one
    );

    // The deploys an alert annotation lists: 100,000 deploys of 1,000
    // services over 100 days, 4,000 alert pairs asking for their hour.
    let mut book = Book::default();
    for k in 0..100_000i64 {
        book.add_deployment(Deployment {
            service: format!("s{}", k % 1_000),
            version: format!("v{k}"),
            at: END - 100 * 86_400 + k * 86,
            source: Source::Api,
            description: String::new(),
        });
    }
    let services: Vec<String> = (0..4_000).map(|k| format!("s{}", k % 1_000)).collect();
    let (search, n) = time(repeat, || {
        services
            .iter()
            .map(|s| book.deployments_of(s, END - 3_600, END).count())
            .sum()
    });
    let (scan, m) = time(repeat, || {
        services
            .iter()
            .map(|s| {
                book.deployments
                    .iter()
                    .filter(|d| d.service == *s && END - 3_600 < d.at && d.at <= END)
                    .count()
            })
            .sum()
    });
    assert_eq!(n, m);
    println!(
        "deploys for 4,000 alert pairs' 1h windows in 100,000 deploys: binary search {:.2} ms, a scan {:.1} ms, ratio {:.0}",
        search * 1e3,
        scan * 1e3,
        scan / search
    );
}
