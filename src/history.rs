//! Event history of one SLO instance in fixed 5-minute buckets, so that
//! long windows and the period are sums in memory instead of a month of
//! raw samples read from Prometheus every cycle. Pure: no I/O, no clock.
//!
//! Buckets are packed: counts of a counter SLI are almost always whole
//! numbers (increases of integer counters), so a bucket is two varints,
//! usually 2 to 8 bytes instead of two f64s (16). Any other value (a ratio
//! SLI's error-seconds, a fraction) is kept as its exact f64. Sums are
//! therefore exact: the packed form loses nothing but rounding noise of
//! `rate * seconds` (see `whole`). The packed bytes are also what the
//! state file stores.

use crate::budget::Events;
use crate::exclusion::Mask;

/// Buckets aligned to multiples of `width` seconds since the epoch; a bucket
/// is keyed by its end and holds the events in `(end - width, end]`.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    width: u64,
    /// End of the newest bucket; the buckets are contiguous and end here.
    last_end: Option<i64>,
    /// The packed buckets, oldest first, from `head` on: bytes before
    /// `head` are pruned ones not yet compacted away.
    packed: Vec<u8>,
    head: usize,
    len: usize,
    /// End of the oldest bucket the backend returned a sample for; kept
    /// after pruning, since data older than the history still covers it.
    first_data: Option<i64>,
}

/// Whole counts up to here are packed (2^52, so `2 * v` fits a u64 and
/// every such f64 is an exact integer).
const MAX_WHOLE: f64 = (1u64 << 52) as f64;
/// A value whose varint is this is followed by its little-endian f64.
const EXACT_TAG: u64 = 1;
/// Relative distance to the nearest integer taken as rounding noise of
/// `rate * seconds` (a few ulps), far inside the 1e-9 the figures need.
const WHOLE_NOISE: f64 = 1e-14;

/// `x` as a whole number if it is one but for rounding noise.
fn whole(x: f64) -> Option<u64> {
    let r = x.round();
    ((0.0..=MAX_WHOLE).contains(&r) && (x - r).abs() <= r * WHOLE_NOISE).then_some(r as u64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    // A plain loop: this decodes every bucket of every window each cycle,
    // and a `step_by` range costs several times more in unoptimised builds.
    let mut v: u64 = 0;
    let mut shift = 0u32;
    while shift < 64 {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
    }
    None
}

/// One value: a whole one as the varint `2 v`, any other as the tag and
/// its exact f64 (so a ratio SLI's fractional error-seconds cost 9 bytes
/// and its whole seconds 2).
fn put_value(out: &mut Vec<u8>, x: f64) {
    match whole(x) {
        Some(v) => put_varint(out, v << 1),
        None => {
            put_varint(out, EXACT_TAG);
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

fn get_value(bytes: &[u8], at: &mut usize) -> Option<f64> {
    let first = get_varint(bytes, at)?;
    if first & 1 == 0 {
        return Some((first >> 1) as f64);
    }
    if first != EXACT_TAG {
        return None;
    }
    let b: [u8; 8] = bytes.get(*at..*at + 8)?.try_into().ok()?;
    *at += 8;
    let x = f64::from_le_bytes(b);
    // Only what `extend_to` stores: finite and not negative.
    (x.is_finite() && x >= 0.0).then_some(x)
}

/// Appends one bucket in packed form: total, then bad.
fn pack(out: &mut Vec<u8>, e: Events) {
    put_value(out, e.total);
    put_value(out, e.bad);
}

/// The bucket at `*at`, moving past it; `None` if the bytes end or are
/// not a bucket.
fn unpack(bytes: &[u8], at: &mut usize) -> Option<Events> {
    let total = get_value(bytes, at)?;
    let bad = get_value(bytes, at)?;
    Some(Events::new(bad, total))
}

/// Why packed buckets read back from outside were refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    #[error("bucket {0} is not a valid packed bucket")]
    Bucket(usize),
    #[error("{0} bytes after the last bucket")]
    Trailing(usize),
    #[error("bucket width {0}s is not {1}s")]
    Width(u64, u64),
    #[error("bucket ends are not aligned to the bucket width")]
    Unaligned,
}

/// A history taken apart for storage: [`History::parts`] and
/// [`History::from_parts`] are inverse.
#[derive(Clone, Debug, PartialEq)]
pub struct Parts<'a> {
    pub width: u64,
    pub last_end: i64,
    pub first_data: Option<i64>,
    pub len: usize,
    pub packed: &'a [u8],
}

impl History {
    pub fn new(width: u64) -> Self {
        History {
            width,
            last_end: None,
            packed: Vec::new(),
            head: 0,
            len: 0,
            first_data: None,
        }
    }

    /// Records that the backend returned a sample for the bucket ending at
    /// `end`. Empty buckets of a series that exists are data (no traffic);
    /// buckets without any sample are not.
    pub fn mark_data(&mut self, end: i64) {
        self.first_data = Some(self.first_data.map_or(end, |f| f.min(end)));
    }

    /// Start of the oldest bucket marked as data: where the backend's data
    /// for this instance begins. `None` before any.
    pub fn data_since(&self) -> Option<i64> {
        self.first_data.map(|end| end - self.width as i64)
    }

    pub fn last_end(&self) -> Option<i64> {
        self.last_end
    }

    pub fn first_end(&self) -> Option<i64> {
        let last = self.last_end?;
        Some(last - (self.len as i64 - 1) * self.width as i64)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held for the buckets (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.packed.capacity()
    }

    /// Starts the history at `end` (exclusive): the first bucket pushed
    /// ends at `end + width`.
    pub fn start_at(&mut self, end: i64) {
        self.packed.clear();
        self.head = 0;
        self.len = 0;
        self.first_data = None;
        self.last_end = Some(end);
    }

    /// Appends buckets up to `end`, taking each bucket's events from `get`
    /// (missing data means no events). `end` must be aligned.
    pub fn extend_to(&mut self, end: i64, mut get: impl FnMut(i64) -> Events) {
        let w = self.width as i64;
        let Some(mut t) = self.last_end else {
            return;
        };
        while t + w <= end {
            t += w;
            pack(&mut self.packed, get(t).non_negative());
            self.len += 1;
        }
        self.last_end = Some(t);
        self.trim();
    }

    /// Drops buckets that end at or before `keep_after`.
    pub fn prune(&mut self, keep_after: i64) {
        while let Some(first) = self.first_end() {
            if first > keep_after || self.len == 0 {
                break;
            }
            let mut at = self.head;
            if unpack(&self.packed, &mut at).is_none() {
                // Only `pack` wrote these bytes; never reached.
                break;
            }
            self.head = at;
            self.len -= 1;
        }
        self.trim();
    }

    /// Gives back pruned bytes and spare capacity once they are a good
    /// part of the whole, so the cost stays amortised per bucket.
    fn trim(&mut self) {
        if self.head > 0 && self.head * 2 >= self.packed.len() {
            self.packed.drain(..self.head);
            self.head = 0;
        }
        let used = self.packed.len();
        if self.packed.capacity() > used + used / 4 + 64 {
            self.packed.shrink_to(used + used / 8);
        }
    }

    /// The buckets, oldest first, with their ends.
    fn buckets(&self) -> impl Iterator<Item = (i64, Events)> + '_ {
        let w = self.width as i64;
        let mut end = self.first_end().unwrap_or(0);
        let mut at = self.head;
        let mut left = self.len;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let e = unpack(&self.packed, &mut at)?;
            let out = (end, e);
            end += w;
            Some(out)
        })
    }

    /// Events of the whole buckets inside `(from, to]`: those ending in
    /// `(from, to]` and starting at or after `from`. Buckets tile, so for
    /// aligned `from` and `to` this is exactly the events of the span; the
    /// caller counts a partial edge itself (with a query of its own).
    pub fn events_between(&self, from: i64, to: i64) -> Events {
        self.events_between_except(from, to, &Mask::default())
    }

    /// The events since each of `bases` up to `to` (as
    /// [`History::events_between_except`] for each), in one pass over the
    /// packed buckets: decoding is the cost, and every window of a cycle
    /// reads the same buckets.
    pub fn sums_from(&self, bases: &[i64], to: i64, mask: &Mask) -> Vec<Events> {
        let w = self.width as i64;
        let mut sums = vec![Events::default(); bases.len()];
        for (end, b) in self.buckets() {
            if end > to {
                break;
            }
            if !mask.is_empty() && mask.covers(end - w, end) {
                continue;
            }
            for (sum, &base) in sums.iter_mut().zip(bases) {
                if end - w >= base {
                    *sum = *sum + b;
                }
            }
        }
        sums
    }

    /// As [`History::events_between`], leaving out the buckets `mask`
    /// covers (maintenance windows, which are bucket-aligned).
    pub fn events_between_except(&self, from: i64, to: i64, mask: &Mask) -> Events {
        self.sums_from(&[from], to, mask)[0]
    }

    /// The history as stored; `None` before `start_at`.
    pub fn parts(&self) -> Option<Parts<'_>> {
        Some(Parts {
            width: self.width,
            last_end: self.last_end?,
            first_data: self.first_data,
            len: self.len,
            packed: &self.packed[self.head..],
        })
    }

    /// Rebuilds a history from stored parts, checking every bucket: bytes
    /// from a file are never trusted.
    pub fn from_parts(parts: Parts<'_>, width: u64) -> Result<History, UnpackError> {
        if parts.width != width {
            return Err(UnpackError::Width(parts.width, width));
        }
        let w = width as i64;
        if w <= 0
            || parts.last_end.rem_euclid(w) != 0
            || parts.first_data.is_some_and(|f| f.rem_euclid(w) != 0)
        {
            return Err(UnpackError::Unaligned);
        }
        let mut at = 0;
        for i in 0..parts.len {
            unpack(parts.packed, &mut at).ok_or(UnpackError::Bucket(i))?;
        }
        if at != parts.packed.len() {
            return Err(UnpackError::Trailing(parts.packed.len() - at));
        }
        Ok(History {
            width,
            last_end: Some(parts.last_end),
            packed: parts.packed.to_vec(),
            head: 0,
            len: parts.len,
            first_data: parts.first_data,
        })
    }
}

/// The bucket end at or after `t`.
pub fn align_up(t: i64, width: u64) -> i64 {
    -align_down(-t, width)
}

/// The bucket end at or before `t`.
pub fn align_down(t: i64, width: u64) -> i64 {
    t.div_euclid(width as i64) * width as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist() -> History {
        let mut h = History::new(300);
        h.start_at(0);
        // Bucket k (ending at 300k) holds k bad of 100 total.
        h.extend_to(3_000, |end| Events::new((end / 300) as f64, 100.0));
        h
    }

    #[test]
    fn sums_whole_buckets() {
        let h = hist();
        assert_eq!(h.len(), 10);
        assert_eq!(h.events_between(0, 3_000), Events::new(55.0, 1000.0));
        assert_eq!(h.events_between(2_400, 3_000), Events::new(19.0, 200.0));
    }

    #[test]
    fn partial_edge_buckets_are_left_to_the_caller() {
        let h = hist();
        // Bucket 9 (ending 2700) starts before 2550: only bucket 10 counts.
        assert_eq!(h.events_between(2_550, 3_000), Events::new(10.0, 100.0));
        assert_eq!(h.events_between(2_550, 2_999), Events::default());
    }

    #[test]
    fn clamps_to_known_history_and_prunes() {
        let mut h = hist();
        assert_eq!(h.events_between(-10_000, 10_000), Events::new(55.0, 1000.0));
        h.prune(1_500);
        assert_eq!(h.first_end(), Some(1_800));
        assert_eq!(h.events_between(0, 3_000), Events::new(40.0, 500.0));
        h.extend_to(3_600, |_| Events::new(0.0, 1.0));
        assert_eq!(h.last_end(), Some(3_600));
        assert_eq!(h.len(), 7);
    }

    #[test]
    fn remembers_where_data_starts() {
        let mut h = hist();
        assert_eq!(h.data_since(), None);
        h.mark_data(2_400);
        assert_eq!(h.data_since(), Some(2_100));
        h.mark_data(900);
        h.mark_data(3_000);
        assert_eq!(h.data_since(), Some(600));
        h.prune(1_500);
        assert_eq!(h.data_since(), Some(600));
    }

    #[test]
    fn aligns_down() {
        assert_eq!(align_down(599, 300), 300);
        assert_eq!(align_down(600, 300), 600);
        assert_eq!(align_down(-1, 300), -300);
        assert_eq!(align_up(301, 300), 600);
        assert_eq!(align_up(300, 300), 300);
        assert_eq!(align_up(-1, 300), 0);
    }

    #[test]
    fn packed_buckets_keep_every_value_exactly() {
        // Whole counts, rate-times-seconds noise, fractions, error-seconds
        // of a ratio SLI, huge and tiny values.
        let values = [
            Events::new(0.0, 0.0),
            Events::new(3.0, 41_000.0),
            Events::new(7.0 / 300.0 * 300.0, 1e6 / 300.0 * 300.0),
            Events::new(0.1, 2.5),
            Events::new(1.234_567_890_123e-3, 300.0),
            Events::new(4.0e15, 9.007_199_254_740_993e15),
            Events::new(1e-300, 1e300),
        ];
        let mut h = History::new(300);
        h.start_at(0);
        h.extend_to(300 * values.len() as i64, |end| {
            values[(end / 300 - 1) as usize]
        });
        for (i, want) in values.iter().enumerate() {
            let end = 300 * (i as i64 + 1);
            let got = h.events_between(end - 300, end);
            for (g, w) in [(got.bad, want.bad), (got.total, want.total)] {
                assert!((g - w).abs() <= w * 1e-13, "bucket {i}: {g} vs {w}");
            }
        }
        // Whole counts are varints (4 bytes here), anything else an f64.
        let mut small = History::new(300);
        small.start_at(0);
        small.extend_to(300, |_| Events::new(3.0, 41_000.0));
        assert_eq!(small.parts().unwrap().packed.len(), 4);
    }

    #[test]
    fn parts_round_trip_and_bad_bytes_are_refused() {
        let mut h = hist();
        h.extend_to(3_300, |_| Events::new(0.5, 1.5));
        h.mark_data(900);
        h.prune(600);
        let p = h.parts().unwrap();
        let back = History::from_parts(p.clone(), 300).unwrap();
        assert_eq!(back.events_between(0, 3_300), h.events_between(0, 3_300));
        assert_eq!(
            (back.first_end(), back.last_end(), back.data_since()),
            (h.first_end(), h.last_end(), h.data_since())
        );
        assert_eq!(
            History::from_parts(p.clone(), 60),
            Err(UnpackError::Width(300, 60))
        );
        let short = Parts {
            packed: &p.packed[..p.packed.len() - 1],
            ..p.clone()
        };
        assert_eq!(
            History::from_parts(short, 300),
            Err(UnpackError::Bucket(p.len - 1))
        );
        let fewer = Parts {
            len: p.len - 1,
            ..p.clone()
        };
        assert_eq!(
            History::from_parts(fewer, 300),
            Err(UnpackError::Trailing(18))
        );
        let odd = Parts {
            last_end: 3_301,
            ..p.clone()
        };
        assert_eq!(History::from_parts(odd, 300), Err(UnpackError::Unaligned));
        // Tag 3 is no bucket; a NaN in an exact bucket is refused.
        let tag = Parts {
            len: 1,
            packed: &[3],
            ..p.clone()
        };
        assert_eq!(History::from_parts(tag, 300), Err(UnpackError::Bucket(0)));
        let mut nan = vec![2u8, 1];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        let nan = Parts {
            len: 1,
            packed: &nan,
            ..p
        };
        assert_eq!(History::from_parts(nan, 300), Err(UnpackError::Bucket(0)));
    }

    #[test]
    fn a_month_of_whole_counts_is_a_fraction_of_two_f64s_per_bucket() {
        let mut h = History::new(300);
        h.start_at(0);
        let buckets = 8_640;
        h.extend_to(300 * buckets, |end| {
            Events::new(
                (end / 300 % 17) as f64,
                30_000.0 + (end / 300 % 1_000) as f64,
            )
        });
        h.prune(300 * 100);
        h.extend_to(300 * (buckets + 100), |_| Events::new(2.0, 29_000.0));
        assert_eq!(h.len(), buckets as usize);
        // Correctness of the bound, not a figure: 4 bytes a bucket here,
        // plus bounded slack.
        assert!(
            h.heap_bytes() <= buckets as usize * 4 * 5 / 4 + 64,
            "{}",
            h.heap_bytes()
        );
        let want: f64 = (101..=buckets)
            .map(|k| 30_000.0 + (k % 1_000) as f64)
            .sum::<f64>()
            + 100.0 * 29_000.0;
        assert_eq!(h.events_between(i64::MIN / 2, i64::MAX / 2).total, want);
    }
}
