//! Maintenance windows: time whose events count toward neither bad nor
//! total, and during which no page goes out. One-off (start, end) or
//! recurring (an RFC 5545 RRULE with a duration and a time zone). Pure:
//! the caller says which span it asks about.
//!
//! Windows start and end on the history's 5-minute bucket boundaries, so
//! masking whole buckets removes exactly the events inside them.

use std::fmt;

use chrono::{NaiveDateTime, TimeZone};
use chrono_tz::Tz;

/// The bucket width windows must align to (`plan::BUCKET_SECS`; this layer
/// sits below `plan`'s users but beside it, so the figure is repeated and a
/// unit test keeps the two equal).
pub const ALIGN_SECS: i64 = 300;

/// Occurrences looked at per question; a rule that recurs more often than
/// this many times in the span asked about is cut off there.
const MAX_OCCURRENCES: u16 = 10_000;

/// When an exclusion applies.
#[derive(Clone, Debug, PartialEq)]
pub enum When {
    /// `(start, end]`, unix seconds.
    Once { start: i64, end: i64 },
    /// Each occurrence of `rule` (starting at `dtstart` in `tz`) for
    /// `duration` seconds.
    Recurring {
        rule: String,
        tz: Tz,
        dtstart: NaiveDateTime,
        duration: i64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Exclusion {
    pub when: When,
    pub reason: String,
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Once { start, end } => write!(
                f,
                "{} to {}",
                crate::time::rfc3339(*start),
                crate::time::rfc3339(*end)
            ),
            When::Recurring {
                rule, tz, duration, ..
            } => write!(
                f,
                "{rule} ({}) for {}",
                tz.name(),
                crate::time::format(std::time::Duration::from_secs((*duration).max(0) as u64))
            ),
        }
    }
}

fn aligned(t: i64) -> bool {
    t.rem_euclid(ALIGN_SECS) == 0
}

impl Exclusion {
    pub fn once(start: i64, end: i64, reason: String) -> Result<Exclusion, String> {
        if end <= start {
            return Err("the end must be after the start".into());
        }
        if !aligned(start) || !aligned(end) {
            return Err(
                "a maintenance window starts and ends on a 5-minute boundary (errbudget keeps events in 5-minute buckets, and only whole buckets are removed exactly)"
                    .into(),
            );
        }
        Ok(Exclusion {
            when: When::Once { start, end },
            reason,
        })
    }

    /// A recurring window. `rule` is an RRULE value such as
    /// `FREQ=WEEKLY;BYDAY=SU;BYHOUR=2` (minutes and seconds not given by
    /// it are those of `dtstart`).
    pub fn recurring(
        rule: &str,
        tz: Tz,
        dtstart: NaiveDateTime,
        duration: i64,
        reason: String,
    ) -> Result<Exclusion, String> {
        let rule = rule.trim().trim_start_matches("RRULE:").to_string();
        // RFC 5545 rule values are ASCII; rrule 0.14 panics slicing a
        // BYDAY value with a multi-byte character, and a line break would
        // smuggle in properties of its own.
        if rule.is_empty() || !rule.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{rule:?} is not an RRULE: give RFC 5545 parts such as FREQ=WEEKLY;BYDAY=SU;BYHOUR=2 (ASCII, no spaces)"
            ));
        }
        if duration <= 0 || !aligned(duration) {
            return Err("the duration must be a positive multiple of 5m".into());
        }
        let e = Exclusion {
            when: When::Recurring {
                rule,
                tz,
                dtstart,
                duration,
            },
            reason,
        };
        let set = e.rule_set()?;
        let first = set.all(100);
        if let Some(t) = first
            .dates
            .iter()
            .map(|d| d.timestamp())
            .find(|&t| !aligned(t))
        {
            return Err(format!(
                "an occurrence starts at {}, not on a 5-minute boundary (errbudget keeps events in 5-minute buckets); give BYMINUTE in multiples of 5 and no BYSECOND",
                crate::time::rfc3339(t)
            ));
        }
        Ok(e)
    }

    fn rule_set(&self) -> Result<rrule::RRuleSet, String> {
        let When::Recurring {
            rule, tz, dtstart, ..
        } = &self.when
        else {
            return Err("not a recurring window".into());
        };
        let text = format!(
            "DTSTART;TZID={}:{}\nRRULE:{rule}",
            tz.name(),
            dtstart.format("%Y%m%dT%H%M%S")
        );
        text.parse::<rrule::RRuleSet>()
            .map_err(|e| format!("RRULE {rule:?}: {e}"))
    }

    /// The windows that overlap `(from, to]`, clipped to it.
    pub fn intervals(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        let clip = |s: i64, e: i64| (s.max(from) < e.min(to)).then_some((s.max(from), e.min(to)));
        match &self.when {
            When::Once { start, end } => clip(*start, *end).into_iter().collect(),
            When::Recurring { tz, duration, .. } => {
                let Ok(set) = self.rule_set() else {
                    return Vec::new();
                };
                let rtz: rrule::Tz = (*tz).into();
                let (Some(after), Some(before)) = (
                    rtz.timestamp_opt(from - duration, 0).earliest(),
                    rtz.timestamp_opt(to, 0).earliest(),
                ) else {
                    return Vec::new();
                };
                set.after(after)
                    .before(before)
                    .all(MAX_OCCURRENCES)
                    .dates
                    .iter()
                    .filter_map(|d| clip(d.timestamp(), d.timestamp() + duration))
                    .collect()
            }
        }
    }
}

/// Excluded time within one span: sorted, merged `(start, end]` intervals.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mask(Vec<(i64, i64)>);

impl Mask {
    /// Every window of `exclusions` within `(from, to]`.
    pub fn of<'a>(exclusions: impl IntoIterator<Item = &'a Exclusion>, from: i64, to: i64) -> Mask {
        let mut all: Vec<(i64, i64)> = exclusions
            .into_iter()
            .flat_map(|e| e.intervals(from, to))
            .collect();
        all.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(all.len());
        for (s, e) in all {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Mask(merged)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The part of the mask inside `(from, to]`.
    pub fn clip(&self, from: i64, to: i64) -> Mask {
        Mask(
            self.0
                .iter()
                .filter_map(|&(s, e)| (s.max(from) < e.min(to)).then_some((s.max(from), e.min(to))))
                .collect(),
        )
    }

    pub fn intervals(&self) -> &[(i64, i64)] {
        &self.0
    }

    /// Seconds of `(from, to]` that are excluded.
    pub fn seconds_in(&self, from: i64, to: i64) -> i64 {
        self.0
            .iter()
            .map(|&(s, e)| (e.min(to) - s.max(from)).max(0))
            .sum()
    }

    /// `(from, to]` is wholly excluded.
    pub fn covers(&self, from: i64, to: i64) -> bool {
        from >= to || self.0.iter().any(|&(s, e)| s <= from && to <= e)
    }

    /// Some of `(from, to]` is excluded.
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        self.seconds_in(from, to) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("test time")
            .timestamp()
    }

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").expect("test time")
    }

    #[test]
    fn the_width_is_the_history_bucket() {
        assert_eq!(ALIGN_SECS as u64, crate::plan::BUCKET_SECS);
    }

    #[test]
    fn sunday_two_am_in_berlin_follows_daylight_saving() {
        let e = Exclusion::recurring(
            "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
            chrono_tz::Europe::Berlin,
            local("2026-01-01T00:00:00"),
            3_600,
            "patching".into(),
        )
        .expect("valid");
        // 2026-10-25 repeats 02:00-03:00 local; the first one (CEST, 00:00
        // UTC) is the window. After it, 02:00 CET is 01:00 UTC.
        let got = e.intervals(utc("2026-10-17T00:00:00Z"), utc("2026-11-02T00:00:00Z"));
        assert_eq!(
            got,
            vec![
                (utc("2026-10-18T00:00:00Z"), utc("2026-10-18T01:00:00Z")),
                (utc("2026-10-25T00:00:00Z"), utc("2026-10-25T01:00:00Z")),
                (utc("2026-11-01T01:00:00Z"), utc("2026-11-01T02:00:00Z")),
            ]
        );
        // Clipped to the span asked about, and one that began before it counts.
        let got = e.intervals(utc("2026-11-01T01:30:00Z"), utc("2026-11-01T03:00:00Z"));
        assert_eq!(
            got,
            vec![(utc("2026-11-01T01:30:00Z"), utc("2026-11-01T02:00:00Z"))]
        );
    }

    #[test]
    fn unaligned_windows_are_refused() {
        assert!(Exclusion::once(0, 301, String::new()).is_err());
        assert!(Exclusion::once(600, 300, String::new()).is_err());
        assert!(Exclusion::recurring(
            "FREQ=DAILY;BYHOUR=2;BYMINUTE=7",
            chrono_tz::UTC,
            local("2026-01-01T00:00:00"),
            600,
            String::new()
        )
        .is_err());
        assert!(Exclusion::recurring(
            "FREQ=WEEKLY;BYDAY=S\u{fffd}U",
            chrono_tz::UTC,
            local("2026-01-01T00:00:00"),
            600,
            String::new()
        )
        .is_err());
        assert!(Exclusion::recurring(
            "FREQ=SOMETIMES",
            chrono_tz::UTC,
            local("2026-01-01T00:00:00"),
            600,
            String::new()
        )
        .is_err());
    }

    #[test]
    fn masks_merge_and_measure() {
        let a = Exclusion::once(0, 600, String::new()).expect("valid");
        let b = Exclusion::once(300, 1_200, String::new()).expect("valid");
        let c = Exclusion::once(3_000, 3_300, String::new()).expect("valid");
        let m = Mask::of([&a, &b, &c], -100, 3_100);
        assert_eq!(m.intervals(), &[(0, 1_200), (3_000, 3_100)]);
        assert_eq!(m.seconds_in(600, 3_050), 650);
        assert!(m.covers(300, 900));
        assert!(!m.covers(900, 1_500));
        assert!(m.overlaps(900, 1_500));
        assert!(!m.overlaps(1_200, 3_000));
        assert_eq!(
            m.clip(600, 3_050).intervals(),
            &[(600, 1_200), (3_000, 3_050)]
        );
        assert_eq!(Mask::of([&a, &b, &c], 600, 3_050), m.clip(600, 3_050));
    }
}
