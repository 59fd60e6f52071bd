//! The backfilled world shared by the evaluation scenarios: 31 days of
//! minute samples ending at `T0` for every scenario's service, built once
//! into TSDB blocks (cached by content hash) and served by a fresh
//! Prometheus per test process.

use crate::events::{Generated, Series, Traffic, DAY, HOUR, MINUTE, T0};
use crate::harness::{self, Prometheus};

/// First sample: one day more than the longest period (30d), so every
/// window at T0 is fully covered by samples.
pub const START: i64 = T0 - 31 * DAY;

fn steady(base: u64, spread: u64, p: f64, incidents: Vec<(i64, i64, f64)>) -> Traffic {
    Traffic::Steady {
        base,
        spread,
        p,
        incidents,
    }
}

fn series(service: &'static str, traffic: Traffic, seed: u64) -> Series {
    Series {
        service,
        labels: vec![],
        traffic,
        resets: vec![],
        histogram: false,
        seed,
    }
}

/// Every series of the world. Scenarios pick theirs by service (and route).
pub fn world() -> Vec<Series> {
    let mut v = vec![
        // 0.05% errors, ~1000 req/min.
        series("steady", steady(900, 200, 0.0005, vec![]), 1),
        // 0.1% baseline; 40% errors in (T0−70m, T0−50m]: 30m sees none, 1h
        // sees 10 of its 20 minutes, 2h all of it, 6h diluted. An older
        // 50% hour at T0−29d is inside a 30d period but outside 28d.
        series(
            "incident",
            steady(
                600,
                100,
                0.001,
                vec![
                    (T0 - 70 * MINUTE, T0 - 50 * MINUTE, 0.4),
                    (T0 - 29 * DAY, T0 - 29 * DAY + HOUR, 0.5),
                ],
            ),
            2,
        ),
        // ~2000 req/min by day, ~10 at night; a 50% burst in the quiet hour
        // (T0−4h, T0−3h] (20:00–21:00 UTC). Events-weighted and
        // ratio-averaged figures differ by more than 10× here.
        series(
            "diurnal",
            Traffic::Diurnal {
                busy: 2000,
                quiet: 10,
                p: 0.001,
                incidents: vec![(T0 - 4 * HOUR, T0 - 3 * HOUR, 0.5)],
            },
            3,
        ),
        // Counters exist but never move.
        series("flat", Traffic::Flat, 5),
    ];
    // Latency: ~800 req/min, 0.5% slower than 0.3 s, and 30% slow in
    // (T0−45m, T0−25m]. Exposed as a histogram (and as counters).
    let mut latency = series(
        "latency",
        steady(
            800,
            100,
            0.005,
            vec![(T0 - 45 * MINUTE, T0 - 25 * MINUTE, 0.3)],
        ),
        9,
    );
    latency.histogram = true;
    v.push(latency);
    let mut resets = series("resets", steady(300, 50, 0.002, vec![]), 4);
    // Restarts inside the 1h, 6h, 3d and 30d windows.
    resets.resets = vec![T0 - 30 * MINUTE, T0 - 5 * HOUR, T0 - 2 * DAY, T0 - 20 * DAY];
    v.push(resets);
    for (route, base, p, seed, incidents) in [
        ("/a", 400, 0.001, 6, vec![]),
        ("/b", 100, 0.01, 7, vec![]),
        (
            "/c",
            50,
            0.002,
            8,
            vec![(T0 - 40 * MINUTE, T0 - 10 * MINUTE, 0.3)],
        ),
    ] {
        let mut s = series("grouped", steady(base, base / 10, p, incidents), seed);
        s.labels = vec![("route", route)];
        v.push(s);
    }
    v
}

pub struct World {
    pub gens: Vec<Generated>,
    pub prom: Prometheus,
}

impl World {
    /// Generates the events, backfills (cached) and starts Prometheus.
    pub fn start() -> World {
        let gens: Vec<Generated> = world().iter().map(|s| s.generate(START, T0)).collect();
        let days = crate::events::openmetrics_days(&gens, START, T0);
        let (_tmp, blocks) = harness::backfill(&days, true);
        let prom = Prometheus::start(&blocks);
        World { gens, prom }
    }

    /// Generated series of one service (all routes).
    pub fn service(&self, name: &str) -> Vec<&Generated> {
        self.gens
            .iter()
            .filter(|g| g.series.service == name)
            .collect()
    }

    pub fn route(&self, service: &str, route: &str) -> &Generated {
        self.gens
            .iter()
            .find(|g| g.series.service == service && g.series.labels.contains(&("route", route)))
            .expect("route in world")
    }
}
