//! The synthetic event model: the independent source of truth.
//!
//! Per series and per minute it decides how many requests arrived and how
//! many of them failed (deterministic, seeded xorshift). Counters
//! `http_requests_total{service,code[,route]}` accumulate those events and
//! are sampled every 60 s at exact minute multiples. Expected figures for a
//! window W at instant T are sums of the per-minute events in (T−W, T] —
//! computed here, never from Prometheus or errbudget.
//!
//! Minute `m` of a dataset is the interval (t_{m-1}, t_m] with
//! t_m = start + 60·m; the counter sample at t_m includes minute m's events.

use std::fmt::Write as _;

/// 2026-10-01T00:00:00Z: the fixed evaluation instant of the backfilled data.
pub const T0: i64 = 1_790_812_800;
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// Per-minute traffic of one service (or one route of a service).
#[derive(Clone, Debug)]
pub enum Traffic {
    /// `base + rng % spread` requests per minute with error probability
    /// `p`, except during `incidents` `(from, to, p)` (unix s, minute end in
    /// (from, to]) where the error probability is the incident's.
    Steady {
        base: u64,
        spread: u64,
        p: f64,
        incidents: Vec<(i64, i64, f64)>,
    },
    /// Busy from 06:00 to 20:00 UTC (`busy` req/min), quiet otherwise
    /// (`quiet` req/min), error probability `p` plus `incidents`.
    Diurnal {
        busy: u64,
        quiet: u64,
        p: f64,
        incidents: Vec<(i64, i64, f64)>,
    },
    /// No requests at all: the counters exist but never move.
    Flat,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub service: &'static str,
    /// Extra labels beside `service` and `code` (e.g. `route`).
    pub labels: Vec<(&'static str, &'static str)>,
    pub traffic: Traffic,
    /// Unix seconds t_m at which the process restarted: the counters
    /// dropped to 0 during minute m, so the sample at t_m holds only that
    /// minute's events.
    pub resets: Vec<i64>,
    pub seed: u64,
    /// Also expose the events as the latency histogram
    /// `http_request_duration_seconds{service,...}`: "bad" requests are
    /// the ones slower than 0.3 s (the `le="0.3"` bucket holds the good
    /// ones). Resets are not modelled for histograms.
    pub histogram: bool,
}

/// Per-minute events of one series over a dataset.
pub struct Generated {
    pub series: Series,
    pub start: i64,
    /// `total[m]`, `bad[m]` for minute m (index 0 is the first sample,
    /// which carries no events).
    pub total: Vec<u64>,
    pub bad: Vec<u64>,
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn incident_p(incidents: &[(i64, i64, f64)], t: i64) -> Option<f64> {
    incidents
        .iter()
        .find(|(from, to, _)| t > *from && t <= *to)
        .map(|(_, _, p)| *p)
}

impl Series {
    /// Events for every minute of `start..=end` (both minute-aligned).
    pub fn generate(&self, start: i64, end: i64) -> Generated {
        assert_eq!(start % MINUTE, 0);
        assert_eq!(end % MINUTE, 0);
        let n = ((end - start) / MINUTE) as usize + 1;
        let mut rng = XorShift(self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut total = vec![0u64; n];
        let mut bad = vec![0u64; n];
        for m in 1..n {
            let t = start + m as i64 * MINUTE;
            let (count, p) = match &self.traffic {
                Traffic::Steady {
                    base,
                    spread,
                    p,
                    incidents,
                } => (
                    base + rng.next() % spread.max(&1),
                    incident_p(incidents, t).unwrap_or(*p),
                ),
                Traffic::Diurnal {
                    busy,
                    quiet,
                    p,
                    incidents,
                } => {
                    // Hour of day of the minute's start.
                    let hour = ((t - MINUTE).rem_euclid(DAY)) / HOUR;
                    let rate = if (6..20).contains(&hour) {
                        *busy
                    } else {
                        *quiet
                    };
                    (
                        rate + rng.next() % (rate / 10).max(1),
                        incident_p(incidents, t).unwrap_or(*p),
                    )
                }
                Traffic::Flat => (0, 0.0),
            };
            // Stochastic rounding keeps the long-run error ratio at p.
            let b = ((count as f64 * p) + rng.unit()).floor() as u64;
            total[m] = count;
            bad[m] = b.min(count);
        }
        Generated {
            series: self.clone(),
            start,
            total,
            bad,
        }
    }
}

impl Generated {
    /// The minute whose sample is the last at or before `t`: between two
    /// samples, what a counter proves ends at the earlier one.
    fn index(&self, t: i64) -> usize {
        assert!(t >= self.start, "instant {t} before data start");
        ((t - self.start).div_euclid(MINUTE)) as usize
    }

    /// (total, bad) events in (t − window, t].
    pub fn events(&self, t: i64, window: i64) -> (u64, u64) {
        let hi = self.index(t);
        let lo = self.index(t - window);
        let total = self.total[lo + 1..=hi].iter().sum();
        let bad = self.bad[lo + 1..=hi].iter().sum();
        (total, bad)
    }

    /// Per-minute (total, bad) in (t − window, t], oldest first.
    pub fn minutes(&self, t: i64, window: i64) -> Vec<(u64, u64)> {
        let hi = self.index(t);
        let lo = self.index(t - window);
        (lo + 1..=hi)
            .map(|i| (self.total[i], self.bad[i]))
            .collect()
    }

    /// Counter samples `(t, good_counter, bad_counter)` with resets applied.
    /// `Flat` series start at fixed non-zero values so they exist but never
    /// move. Panics if a reset would be invisible to `rate()` (the new value
    /// not below the old one), which would make the model wrong, not the SUT.
    pub fn counters(&self) -> Vec<(i64, f64, f64)> {
        let (mut good, mut bad) = match self.series.traffic {
            Traffic::Flat => (5_000u64, 5u64),
            _ => (0, 0),
        };
        let mut out = Vec::with_capacity(self.total.len());
        for m in 0..self.total.len() {
            let t = self.start + m as i64 * MINUTE;
            let (g, b) = (self.total[m] - self.bad[m], self.bad[m]);
            if self.series.resets.contains(&t) {
                // A drop is a reset to rate(); a rise from 0 is counted in
                // full either way. Only "new ≥ old > 0" would lose events.
                assert!(
                    (g < good || good == 0) && (b < bad || bad == 0),
                    "reset at {t} of {} would not be seen as a reset",
                    self.series.service
                );
                good = g;
                bad = b;
            } else {
                good += g;
                bad += b;
            }
            out.push((t, good as f64, bad as f64));
        }
        out
    }

    fn label_string(&self, code: &str) -> String {
        let mut s = format!("service=\"{}\"", self.series.service);
        for (k, v) in &self.series.labels {
            let _ = write!(s, ",{k}=\"{v}\"");
        }
        let _ = write!(s, ",code=\"{code}\"");
        s
    }
}

/// Sums (total, bad) over several generated series (e.g. all routes).
pub fn sum_events<'a>(gens: impl IntoIterator<Item = &'a Generated>, t: i64, w: i64) -> (u64, u64) {
    gens.into_iter().fold((0, 0), |(a, b), g| {
        let (t2, b2) = g.events(t, w);
        (a + t2, b + b2)
    })
}

/// OpenMetrics text for `promtool tsdb create-blocks-from openmetrics`:
/// one counter family, each series' samples contiguous and time-ordered;
/// only samples with `from <= t < to`.
pub fn openmetrics(gens: &[Generated], from: i64, to: i64) -> String {
    let mut out = String::new();
    out.push_str("# HELP http_requests Requests served.\n# TYPE http_requests counter\n");
    for g in gens {
        let counters = g.counters();
        for (code, pick) in [("200", 0usize), ("500", 1usize)] {
            let labels = g.label_string(code);
            for (t, good, bad) in counters.iter().filter(|c| c.0 >= from && c.0 < to) {
                let v = if pick == 0 { good } else { bad };
                let _ = writeln!(out, "http_requests_total{{{labels}}} {v} {t}");
            }
        }
    }
    let hist: Vec<&Generated> = gens.iter().filter(|g| g.series.histogram).collect();
    if !hist.is_empty() {
        out.push_str(
            "# HELP http_request_duration_seconds Request latency.\n\
             # TYPE http_request_duration_seconds histogram\n",
        );
    }
    for g in hist {
        assert!(
            g.series.resets.is_empty(),
            "histogram resets are not modelled"
        );
        let mut labels = format!("service=\"{}\"", g.series.service);
        for (k, v) in &g.series.labels {
            let _ = write!(labels, ",{k}=\"{v}\"");
        }
        // Cumulative: ≤0.1 s holds 4/5 of the good requests, ≤0.3 s all
        // good ones, ≤1 s also 2/3 of the slow ones, +Inf everything.
        let (mut b01, mut b03, mut b1, mut inf, mut sum) = (0u64, 0u64, 0u64, 0u64, 0f64);
        for m in 0..g.total.len() {
            let t = g.start + m as i64 * MINUTE;
            let (good, slow) = (g.total[m] - g.bad[m], g.bad[m]);
            b01 += good - good / 5;
            b03 += good;
            b1 += good + slow - slow / 3;
            inf += good + slow;
            sum += good as f64 * 0.08 + slow as f64 * 0.9;
            if t < from || t >= to {
                continue;
            }
            for (le, v) in [("0.1", b01), ("0.3", b03), ("1.0", b1), ("+Inf", inf)] {
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {v} {t}"
                );
            }
            let _ = writeln!(
                out,
                "http_request_duration_seconds_count{{{labels}}} {inf} {t}"
            );
            let _ = writeln!(
                out,
                "http_request_duration_seconds_sum{{{labels}}} {sum} {t}"
            );
        }
    }
    out.push_str("# EOF\n");
    out
}

/// The dataset as one OpenMetrics text per day, aligned to UTC days (and so
/// to promtool's 2h blocks). promtool re-reads its whole input once per 2h
/// block, so day-sized inputs make a 31-day backfill ~30× cheaper.
pub fn openmetrics_days(gens: &[Generated], start: i64, end: i64) -> Vec<String> {
    let mut out = vec![];
    let mut day = start - start.rem_euclid(DAY);
    while day <= end {
        out.push(openmetrics(gens, day.max(start), (day + DAY).min(end + 1)));
        day += DAY;
    }
    out
}

/// FNV-1a, to key the block cache by the exact generated text.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
