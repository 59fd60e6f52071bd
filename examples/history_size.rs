//! Bytes one SLO instance's 30-day bucket history takes, in memory and in
//! the state file, for a few kinds of traffic:
//! `cargo run --release --example history_size`.
//!
//! Before the packed form a bucket was two f64s in a `VecDeque`: 16 bytes
//! a bucket, 138,240 bytes for 8,640 buckets (and a `VecDeque` grown one
//! bucket at a time holds a power of two: 16,384 × 16 = 262,144).

use std::collections::BTreeMap;

use errbudget::budget::Events;
use errbudget::history::History;
use errbudget::plan::BUCKET_SECS;
use errbudget::state::LabelSet;
use errbudget::store::{self, SloState};

const BUCKETS: i64 = 30 * 288;

/// A small deterministic generator, so the figures repeat.
fn lcg(seed: &mut u64) -> f64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}

fn history(per_second: f64, error_ratio: f64, whole: bool) -> History {
    let mut h = History::new(BUCKET_SECS);
    h.start_at(0);
    let mut seed = 7;
    h.extend_to(BUCKETS * BUCKET_SECS as i64, |_| {
        let total = per_second * BUCKET_SECS as f64 * (0.5 + lcg(&mut seed));
        let bad = total * error_ratio * 2.0 * lcg(&mut seed);
        if whole {
            // Counter increases, as `rate * 300` gives them back (with its
            // rounding noise).
            let (t, b) = (total.round(), bad.round().min(total.round()));
            Events::new(b / 300.0 * 300.0, t / 300.0 * 300.0)
        } else {
            // A ratio SLI: the bucket's 300 seconds, of which a fraction
            // were errors.
            Events::new(300.0 * error_ratio * 2.0 * lcg(&mut seed), 300.0)
        }
    });
    h
}

fn main() {
    println!("buckets per instance: {BUCKETS} (30 days of 5 minutes)");
    println!(
        "before: {} bytes of buckets (16 a bucket), {} as a grown VecDeque",
        BUCKETS * 16,
        (BUCKETS as usize).next_power_of_two() * 16
    );
    println!(
        "{:<38} {:>10} {:>9} {:>11}",
        "traffic", "in memory", "per bkt", "state file"
    );
    for (name, rps, ratio, whole) in [
        ("idle (0 req/s)", 0.0, 0.0, true),
        ("1 req/s, 0.1% errors", 1.0, 0.001, true),
        ("100 req/s, 0.1% errors", 100.0, 0.001, true),
        ("10k req/s, 1% errors", 10_000.0, 0.01, true),
        ("ratio SLI (fractional error-seconds)", 1.0, 0.01, false),
    ] {
        let h = history(rps, ratio, whole);
        let mut hs = BTreeMap::new();
        hs.insert(LabelSet::new(), h.clone());
        let file = store::encode(
            0,
            BUCKET_SECS,
            &[SloState {
                key: [0; 16],
                start: 0,
                last_end: BUCKETS * BUCKET_SECS as i64,
                histories: &hs,
            }],
            std::iter::empty(),
        );
        println!(
            "{:<38} {:>10} {:>9.2} {:>11}",
            name,
            h.heap_bytes(),
            h.heap_bytes() as f64 / BUCKETS as f64,
            file.len()
        );
    }
}
