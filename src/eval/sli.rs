//! The one conversion from SLI query values to events, used by the engine
//! (`evaluate`) and by the status page's history (`trend`), so both count
//! the same way and reject the same nonsense. Pure: no I/O.
//!
//! Events SLIs give per-second rates of bad and of all events; a ratio SLI
//! gives an error ratio, weighed by time (error-seconds over seconds).

use crate::budget::Events;

/// Above this a rate times a window can overflow, or the query is broken.
pub const MAX_RATE: f64 = 1e300;
/// A grouped query making more SLO instances than this is an error of
/// its SLO: a `sum by (pod)` over a churning label would otherwise grow
/// the daemon's memory and `/metrics` without bound.
pub const MAX_INSTANCES: usize = 1_000;
/// Relative float noise allowed before "negative" or "bad > total" is an
/// error: `total - good` of two equal rates may come out at -1e-15.
const NOISE: f64 = 1e-9;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SliError {
    #[error("query {query:?} returned {value:?}, not a finite rate")]
    NotFinite { query: String, value: f64 },
    #[error("query {query:?} returned {value:?}, too large for a rate of events")]
    Overflow { query: String, value: f64 },
    #[error("query {query:?} returned {value:?}, a negative rate of events")]
    Negative { query: String, value: f64 },
    #[error("query {bad_query:?} returned {bad:?}, more bad events than {total_query:?} counts in total ({total:?})")]
    BadOverTotal {
        bad_query: String,
        bad: f64,
        total_query: String,
        total: f64,
    },
    #[error("query {bad_query:?} returned {bad:?} bad events where {total_query:?} counts none")]
    BadWithoutTotal {
        bad_query: String,
        bad: f64,
        total_query: String,
    },
    #[error("query {query:?} returned {value:?}, not an error ratio in [0, 1]")]
    BadRatio { query: String, value: f64 },
    #[error("the queries make {count} instances of this SLO, over the limit of {limit}: group by fewer labels")]
    TooManyInstances { count: usize, limit: usize },
}

fn rate(value: f64, query: &str) -> Result<f64, SliError> {
    let query = || query.to_string();
    if !value.is_finite() {
        return Err(SliError::NotFinite {
            query: query(),
            value,
        });
    }
    if value.abs() >= MAX_RATE {
        return Err(SliError::Overflow {
            query: query(),
            value,
        });
    }
    Ok(value)
}

/// Events over `seconds` from the bad and total rates of one label set at
/// one instant; `None` where the query returned no such series (no events).
pub fn from_rates(
    bad: Option<f64>,
    total: Option<f64>,
    seconds: f64,
    bad_query: &str,
    total_query: &str,
) -> Result<Events, SliError> {
    let b = bad.map(|v| rate(v, bad_query)).transpose()?.unwrap_or(0.0);
    let t = total
        .map(|v| rate(v, total_query))
        .transpose()?
        .unwrap_or(0.0);
    let noise = NOISE * b.abs().max(t.abs());
    for (value, query) in [(b, bad_query), (t, total_query)] {
        if value < -noise {
            return Err(SliError::Negative {
                query: query.to_string(),
                value,
            });
        }
    }
    if t <= noise && b > noise {
        return Err(SliError::BadWithoutTotal {
            bad_query: bad_query.to_string(),
            bad: b,
            total_query: total_query.to_string(),
        });
    }
    if b > t + noise {
        return Err(SliError::BadOverTotal {
            bad_query: bad_query.to_string(),
            bad: b,
            total_query: total_query.to_string(),
            total: t,
        });
    }
    let t = t.max(0.0);
    Ok(Events::new(b.clamp(0.0, t) * seconds, t * seconds))
}

/// Error-seconds and seconds over `seconds` from a ratio SLI's value. NaN
/// is 0/0, a span without traffic: no events, not an error.
pub fn from_ratio(value: f64, seconds: f64, query: &str) -> Result<Option<Events>, SliError> {
    if value.is_nan() {
        return Ok(None);
    }
    if !(-NOISE..=1.0 + NOISE).contains(&value) {
        return Err(SliError::BadRatio {
            query: query.to_string(),
            value,
        });
    }
    Ok(Some(Events::new(value.clamp(0.0, 1.0) * seconds, seconds)))
}

/// Checks the number of instances a grouped SLO makes.
pub fn check_instances(count: usize) -> Result<(), SliError> {
    if count > MAX_INSTANCES {
        return Err(SliError::TooManyInstances {
            count,
            limit: MAX_INSTANCES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(bad: Option<f64>, total: Option<f64>) -> Result<Events, SliError> {
        from_rates(bad, total, 300.0, "bad_q", "total_q")
    }

    #[test]
    fn rates_times_seconds() {
        assert_eq!(
            events(Some(0.5), Some(2.0)).unwrap(),
            Events::new(150.0, 600.0)
        );
        assert_eq!(events(None, Some(2.0)).unwrap(), Events::new(0.0, 600.0));
        assert_eq!(events(None, None).unwrap(), Events::default());
        // Float noise of `total - good` is no error, and is clamped.
        assert_eq!(
            events(Some(-1e-16), Some(1.0)).unwrap(),
            Events::new(0.0, 300.0)
        );
        assert_eq!(
            events(Some(1.0 + 1e-12), Some(1.0)).unwrap(),
            Events::new(300.0, 300.0)
        );
    }

    #[test]
    fn nonsense_is_an_error_naming_query_and_value() {
        let cases: [(Option<f64>, Option<f64>, &str); 7] = [
            (
                Some(f64::NAN),
                Some(1.0),
                "bad_q\" returned NaN, not a finite rate",
            ),
            (Some(0.0), Some(f64::INFINITY), "total_q\" returned inf"),
            (
                Some(0.0),
                Some(2e300),
                "total_q\" returned 2e300, too large",
            ),
            (
                Some(-0.5),
                Some(1.0),
                "bad_q\" returned -0.5, a negative rate",
            ),
            (
                Some(0.0),
                Some(-1.0),
                "total_q\" returned -1.0, a negative rate",
            ),
            (
                Some(2.0),
                Some(1.0),
                "bad_q\" returned 2.0, more bad events than \"total_q\"",
            ),
            (
                Some(0.1),
                None,
                "bad_q\" returned 0.1 bad events where \"total_q\" counts none",
            ),
        ];
        for (bad, total, want) in cases {
            let err = events(bad, total).unwrap_err().to_string();
            assert!(err.contains(want), "{bad:?} {total:?}: {err}");
        }
    }

    #[test]
    fn ratios_weigh_time() {
        assert_eq!(
            from_ratio(0.25, 60.0, "r").unwrap(),
            Some(Events::new(15.0, 60.0))
        );
        assert_eq!(from_ratio(f64::NAN, 60.0, "r").unwrap(), None);
        for v in [1.5, -0.1, f64::INFINITY, f64::NEG_INFINITY] {
            let err = from_ratio(v, 60.0, "r").unwrap_err().to_string();
            assert!(err.contains("not an error ratio"), "{v}: {err}");
        }
    }

    #[test]
    fn instance_cap() {
        assert!(check_instances(MAX_INSTANCES).is_ok());
        let err = check_instances(1_234).unwrap_err().to_string();
        assert!(
            err.contains("1234 instances") && err.contains("1000"),
            "{err}"
        );
    }
}
