//! Event history of one SLO instance in fixed 5-minute buckets, so that
//! long windows and the period are sums in memory instead of a month of
//! raw samples read from Prometheus every cycle. Pure: no I/O, no clock.

use std::collections::VecDeque;

use crate::budget::Events;

/// Buckets aligned to multiples of `width` seconds since the epoch; a bucket
/// is keyed by its end and holds the events in `(end - width, end]`.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    width: u64,
    /// End of the newest bucket; the buckets are contiguous and end here.
    last_end: Option<i64>,
    buckets: VecDeque<Events>,
}

impl History {
    pub fn new(width: u64) -> Self {
        History {
            width,
            last_end: None,
            buckets: VecDeque::new(),
        }
    }

    pub fn last_end(&self) -> Option<i64> {
        self.last_end
    }

    pub fn first_end(&self) -> Option<i64> {
        let last = self.last_end?;
        Some(last - (self.buckets.len() as i64 - 1) * self.width as i64)
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Starts the history at `end` (exclusive): the first bucket pushed
    /// ends at `end + width`.
    pub fn start_at(&mut self, end: i64) {
        self.buckets.clear();
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
            self.buckets.push_back(get(t).non_negative());
        }
        self.last_end = Some(t);
    }

    /// Drops buckets that end at or before `keep_after`.
    pub fn prune(&mut self, keep_after: i64) {
        while let Some(first) = self.first_end() {
            if first > keep_after || self.buckets.is_empty() {
                break;
            }
            self.buckets.pop_front();
        }
    }

    /// Events of the whole buckets inside `(from, to]`: those ending in
    /// `(from, to]` and starting at or after `from`. Buckets tile, so for
    /// aligned `from` and `to` this is exactly the events of the span; the
    /// caller counts a partial edge itself (with a query of its own).
    pub fn events_between(&self, from: i64, to: i64) -> Events {
        let (Some(first_end), Some(_)) = (self.first_end(), self.last_end) else {
            return Events::default();
        };
        let w = self.width as i64;
        let mut sum = Events::default();
        for (i, b) in self.buckets.iter().enumerate() {
            let end = first_end + i as i64 * w;
            if end - w >= from && end <= to {
                sum = sum + *b;
            }
        }
        sum
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
    fn aligns_down() {
        assert_eq!(align_down(599, 300), 300);
        assert_eq!(align_down(600, 300), 600);
        assert_eq!(align_down(-1, 300), -300);
        assert_eq!(align_up(301, 300), 600);
        assert_eq!(align_up(300, 300), 300);
        assert_eq!(align_up(-1, 300), 0);
    }
}
