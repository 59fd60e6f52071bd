//! Durations as users write them (Prometheus `1h30m`, humantime `1h 30m`)
//! and as PromQL needs them printed (`1h30m`, never humantime's `1h 30m`);
//! instants as Unix seconds and as RFC 3339 text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses `5m`, `1h30m`, `30d`, `1w` (Prometheus) or `1h 30m` (humantime).
/// Zero and sub-second durations are rejected: no SLO window can use them.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let d = match parse_prometheus(t) {
        Some(d) => d,
        None => humantime::parse_duration(t).map_err(|e| {
            format!("invalid duration {text:?}: {e} (expected e.g. 5m, 1h30m, 30d)")
        })?,
    };
    if d.as_secs() == 0 || d.subsec_nanos() != 0 {
        return Err(format!(
            "invalid duration {text:?}: must be a positive whole number of seconds"
        ));
    }
    Ok(d)
}

fn parse_prometheus(t: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = match &rest[..unit_len] {
            "w" => 7 * 86_400,
            "d" => 86_400,
            "h" => 3_600,
            "m" => 60,
            "s" => 1,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    Some(Duration::from_secs(total))
}

/// Formats whole seconds the way PromQL accepts and people read them:
/// `5m`, `1h30m`, `1d`, `30d`. Weeks are not used so that `28d` stays `28d`.
pub fn format(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if s >= len {
            out.push_str(&(s / len).to_string());
            out.push_str(unit);
            s %= len;
        }
    }
    out
}

/// A span of seconds for people, coarse on purpose: `3d4h`, `2h05m`,
/// `12m`, and seconds below a minute (`53s`), so a small figure never
/// reads as nothing. `None` for an infinite span, which each caller words its own way.
pub fn human(secs: f64) -> Option<String> {
    if !secs.is_finite() {
        return None;
    }
    let s = secs.max(0.0) as u64;
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3_600, (s % 3_600) / 60);
    Some(match (d, h) {
        (0, 0) if m == 0 => format!("{s}s"),
        (0, 0) => format!("{m}m"),
        (0, _) => format!("{h}h{m:02}m"),
        _ => format!("{d}d{h}h"),
    })
}

/// The wall clock in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 UTC (`2026-11-26T01:00:00Z`). Clamped to years
/// 1970..=9999, the range humantime formats, so no instant can panic.
/// An RFC 3339 time, `Z` or a numeric offset (`2026-12-03T10:02:00Z`,
/// `2026-12-03T11:02:00+01:00`), or humantime's looser spelling
/// (`2026-12-03 10:02:00`, UTC), in Unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64)
}

pub fn rfc3339(secs: i64) -> String {
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let secs = u64::try_from(secs.clamp(0, MAX)).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_and_never_panic() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_790_000_000), "2026-09-21T14:13:20Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn parses_prometheus_and_humantime_forms() {
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("30d"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(parse("1w"), Ok(Duration::from_secs(604_800)));
        assert!(parse("").is_err());
        assert!(parse("0s").is_err());
        assert!(parse("5x").is_err());
        assert!(parse("500ms").is_err());
    }

    #[test]
    fn human_spans() {
        assert_eq!(human(90_000.0).as_deref(), Some("1d1h"));
        assert_eq!(human(5_400.0).as_deref(), Some("1h30m"));
        assert_eq!(human(125.0 * 60.0).as_deref(), Some("2h05m"));
        assert_eq!(human(53.4).as_deref(), Some("53s"));
        assert_eq!(human(0.0).as_deref(), Some("0s"));
        assert_eq!(human(f64::INFINITY), None);
    }

    #[test]
    fn formats_for_promql() {
        assert_eq!(format(Duration::from_secs(300)), "5m");
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::from_secs(86_400)), "1d");
        assert_eq!(format(Duration::from_secs(28 * 86_400)), "28d");
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
    }
}
