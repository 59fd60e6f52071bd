//! Calendar compliance periods: a week, month or quarter in an IANA time
//! zone. The budget resets at each boundary, so the figures are over the
//! part of the current period that has passed. Pure: no clock, no I/O.

use std::fmt;
use std::time::Duration;

use chrono::{Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// ISO weeks, Monday to Sunday.
    Week,
    Month,
    Quarter,
}

impl Unit {
    pub fn parse(s: &str) -> Option<Unit> {
        match s {
            "week" => Some(Unit::Week),
            "month" => Some(Unit::Month),
            "quarter" => Some(Unit::Quarter),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Week => "week",
            Unit::Month => "month",
            Unit::Quarter => "quarter",
        }
    }

    /// The length alert factors are scaled to and the spec checks use:
    /// a fixed figure per unit, so a page threshold does not move at the
    /// turn of a month (a 28-day February would otherwise page at 13.4
    /// where January pages at 14.4, for the same traffic).
    pub fn nominal(self) -> Duration {
        let days = match self {
            Unit::Week => 7,
            Unit::Month => 30,
            Unit::Quarter => 91,
        };
        Duration::from_secs(days * 86_400)
    }
}

/// One calendar period kind in one time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Calendar {
    pub unit: Unit,
    pub tz: Tz,
}

/// One period: events in `(start, end]`, unix seconds, and its name
/// (`2026-11`, `2026-Q4`, `2026-W48`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub start: i64,
    pub end: i64,
    pub name: String,
}

impl Bounds {
    pub fn seconds(&self) -> i64 {
        self.end - self.start
    }
}

impl Calendar {
    pub fn parse_time_zone(name: &str) -> Option<Tz> {
        name.parse::<Tz>().ok()
    }

    /// The period holding the instant `t`. An event at exactly a boundary
    /// belongs to the period that ends there, as a bucket holds `(start, end]`.
    pub fn period_at(&self, t: i64) -> Bounds {
        // `t - 1`: the boundary instant itself closes the previous period.
        let local = self.local_date(t - 1);
        let first = self.first_day(local);
        self.bounds_from(first)
    }

    /// The period a name such as `2026-11`, `2026-Q4` or `2026-W48` denotes.
    pub fn named(&self, name: &str) -> Option<Bounds> {
        let first = match self.unit {
            Unit::Month => {
                let (y, m) = name.split_once('-')?;
                NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?
            }
            Unit::Quarter => {
                let (y, q) = name.split_once("-Q")?;
                let q: u32 = q.parse().ok()?;
                if !(1..=4).contains(&q) {
                    return None;
                }
                NaiveDate::from_ymd_opt(y.parse().ok()?, 3 * q - 2, 1)?
            }
            Unit::Week => {
                let (y, w) = name.split_once("-W")?;
                NaiveDate::from_isoywd_opt(y.parse().ok()?, w.parse().ok()?, chrono::Weekday::Mon)?
            }
        };
        let b = self.bounds_from(first);
        (b.name == name).then_some(b)
    }

    fn local_date(&self, t: i64) -> NaiveDate {
        match self.tz.timestamp_opt(t, 0) {
            LocalResult::Single(d) | LocalResult::Ambiguous(d, _) => d.date_naive(),
            LocalResult::None => chrono::DateTime::<chrono::Utc>::MIN_UTC.date_naive(),
        }
    }

    fn first_day(&self, d: NaiveDate) -> NaiveDate {
        match self.unit {
            Unit::Week => d - Days::new(u64::from(d.weekday().num_days_from_monday())),
            Unit::Month => d.with_day(1).unwrap_or(d),
            Unit::Quarter => {
                let m = (d.month0() / 3) * 3 + 1;
                NaiveDate::from_ymd_opt(d.year(), m, 1).unwrap_or(d)
            }
        }
    }

    fn next_first(&self, first: NaiveDate) -> NaiveDate {
        match self.unit {
            Unit::Week => first + Days::new(7),
            Unit::Month => first + Months::new(1),
            Unit::Quarter => first + Months::new(3),
        }
    }

    fn bounds_from(&self, first: NaiveDate) -> Bounds {
        let name = match self.unit {
            Unit::Month => format!("{:04}-{:02}", first.year(), first.month()),
            Unit::Quarter => format!("{:04}-Q{}", first.year(), first.month0() / 3 + 1),
            Unit::Week => {
                let w = first.iso_week();
                format!("{:04}-W{:02}", w.year(), w.week())
            }
        };
        Bounds {
            start: self.midnight(first),
            end: self.midnight(self.next_first(first)),
            name,
        }
    }

    /// Local midnight as unix seconds. Where a DST change skips midnight
    /// (some zones switch at 00:00), the period starts at the first local
    /// time that exists; where midnight repeats, at its first occurrence.
    fn midnight(&self, d: NaiveDate) -> i64 {
        let mut at: NaiveDateTime = d.and_time(chrono::NaiveTime::MIN);
        // A gap is at most a few hours; 15-minute steps find its end.
        for _ in 0..24 * 4 {
            match self.tz.from_local_datetime(&at) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => return t.timestamp(),
                LocalResult::None => at += chrono::TimeDelta::minutes(15),
            }
        }
        at.and_utc().timestamp()
    }
}

impl fmt::Display for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "calendar {} ({})", self.unit.as_str(), self.tz.name())
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

    fn cal(unit: Unit, tz: &str) -> Calendar {
        Calendar {
            unit,
            tz: Calendar::parse_time_zone(tz).expect("zone"),
        }
    }

    #[test]
    fn months_in_berlin_follow_daylight_saving() {
        let c = cal(Unit::Month, "Europe/Berlin");
        // March 2026: CET at the start, CEST (from 29 March) at the end.
        let m = c.period_at(utc("2026-03-15T12:00:00Z"));
        assert_eq!(m.name, "2026-03");
        assert_eq!(m.start, utc("2026-02-28T23:00:00Z"));
        assert_eq!(m.end, utc("2026-03-31T22:00:00Z"));
        assert_eq!(m.seconds(), 31 * 86_400 - 3_600);
        // October 2026 gains the hour back.
        let o = c.named("2026-10").expect("October");
        assert_eq!(o.seconds(), 31 * 86_400 + 3_600);
        assert_eq!(c.named("2026-02").expect("February").seconds(), 28 * 86_400);
        assert_eq!(
            c.named("2028-02").expect("leap February").seconds(),
            29 * 86_400
        );
    }

    #[test]
    fn a_boundary_instant_closes_the_period_before_it() {
        let c = cal(Unit::Month, "UTC");
        let nov = c.named("2026-11").expect("November");
        assert_eq!(c.period_at(nov.end).name, "2026-11");
        assert_eq!(c.period_at(nov.end + 1).name, "2026-12");
        assert_eq!(c.period_at(c.period_at(nov.end + 1).start), nov);
    }

    #[test]
    fn quarters_and_iso_weeks() {
        let q = cal(Unit::Quarter, "America/New_York");
        let b = q.period_at(utc("2026-11-20T00:00:00Z"));
        assert_eq!(b.name, "2026-Q4");
        assert_eq!(b.start, utc("2026-10-01T04:00:00Z"));
        assert_eq!(b.end, utc("2027-01-01T05:00:00Z"));
        let w = cal(Unit::Week, "UTC");
        // 1 January 2027 is a Friday in ISO week 2026-W53.
        let b = w.period_at(utc("2027-01-01T10:00:00Z"));
        assert_eq!(b.name, "2026-W53");
        assert_eq!(b.start, utc("2026-12-28T00:00:00Z"));
        assert_eq!(w.named("2026-W53"), Some(b));
        assert_eq!(w.named("2026-W54"), None);
        assert_eq!(q.named("2026-Q5"), None);
        assert_eq!(q.named("2026-11"), None);
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_the_first_local_time() {
        // Santiago moves from -04 to -03 at 00:00 on the first Sunday of
        // September: 2026-09-06 begins at 01:00 local, 04:00 UTC.
        let c = cal(Unit::Week, "America/Santiago");
        let d = NaiveDate::from_ymd_opt(2026, 9, 6).expect("date");
        assert_eq!(c.midnight(d), utc("2026-09-06T04:00:00Z"));
        let b = c.period_at(utc("2026-09-08T12:00:00Z"));
        assert_eq!(c.period_at(b.start).end, b.start);
    }
}
