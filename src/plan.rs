//! The only place PromQL text is written. The engine, `rules` and the pages
//! all take their queries from here; nothing here executes a query.
//!
//! Cost design: a naive plan asks Prometheus for `sum(rate(x[W]))` for every
//! window including the 30-day period, every cycle, reading every raw sample
//! of the period each time. Instead, windows up to [`DIRECT_MAX`] are queried
//! directly (they decide pages and must be exact), and longer windows and the
//! period are summed from 5-minute buckets that are fetched once and then
//! extended by one bucket at a time.

use crate::backend::Semantics;
use crate::model::{Sli, Slo, Window};

/// Width of the history buckets kept in memory.
pub const BUCKET_SECS: u64 = 300;
/// Windows up to this length are queried directly each cycle.
pub const DIRECT_MAX_SECS: u64 = 6 * 3_600;
/// Start-up range queries are split into 1-day chunks (288 points a
/// series): far below Prometheus' limit of 11,000 points per series, and
/// small enough that an answer over hundreds of groups stays within a
/// query's share of the response memory budget and its timeout.
pub const MAX_POINTS_PER_RANGE_QUERY: u64 = 288;

/// The expressions of one SLO, with `{{.window}}` still to be filled in.
#[derive(Clone, Debug, PartialEq)]
pub enum Queries {
    /// Per-second rates of bad and of all events.
    Events { bad: String, total: String },
    /// An error ratio in [0, 1], weighted by time.
    Ratio { ratio: String },
}

impl Queries {
    pub fn for_slo(slo: &Slo) -> Queries {
        match &slo.sli {
            Sli::Events {
                error_query,
                total_query,
            } => Queries::Events {
                bad: error_query.clone(),
                total: total_query.clone(),
            },
            Sli::Raw { error_ratio_query } => Queries::Ratio {
                ratio: error_ratio_query.clone(),
            },
            Sli::Latency {
                metric,
                selector,
                threshold,
            } => latency_queries(metric, selector, *threshold),
        }
    }
}

impl Queries {
    /// The same expressions with `{{.window}}` filled in: what the engine
    /// runs for a window, and what the status page runs over a range.
    pub fn at_window(&self, window: &str) -> Queries {
        match self {
            Queries::Events { bad, total } => Queries::Events {
                bad: with_window(bad, window),
                total: with_window(total, window),
            },
            Queries::Ratio { ratio } => Queries::Ratio {
                ratio: with_window(ratio, window),
            },
        }
    }
}

impl Queries {
    /// The expressions counting the events of `(t - secs, t]` on a backend
    /// with these range semantics: what the engine and the pages run.
    pub fn at_range(&self, secs: u64, semantics: Semantics) -> Queries {
        let fill = |q: &str| with_range(q, secs, semantics);
        match self {
            Queries::Events { bad, total } => Queries::Events {
                bad: fill(bad),
                total: fill(total),
            },
            Queries::Ratio { ratio } => Queries::Ratio { ratio: fill(ratio) },
        }
    }
}

/// Fills `{{.window}}` so that a range selector over `secs` holds the
/// samples on both sides of `(t - secs, t]`: rates times `secs` are then
/// the counter increase the samples prove, and adjacent ranges tile.
///
/// - closed ranges (Prometheus 2.x) already include the sample at `t - secs`;
/// - left-open ranges (Prometheus 3.x) need 1 ms more to reach it (the
///   extrapolation then covers exactly that millisecond: on samples at the
///   range ends `rate` is the increase over `secs`);
/// - `anchored` (Prometheus with extended range selectors, Mimir) takes the
///   sample at or before the start without extrapolating;
/// - VictoriaMetrics takes the last sample before the range as its base.
pub fn with_range(template: &str, secs: u64, semantics: Semantics) -> String {
    let text = window_text(secs);
    match semantics {
        Semantics::Closed | Semantics::LastBefore => with_window(template, &text),
        Semantics::LeftOpen => with_window(template, &format!("{text}1ms")),
        Semantics::Anchored => fill(template, &text, " anchored"),
    }
}

/// Probes with a known answer, built from `vector()` alone so that they
/// need no data: see `backend::classify`. Subqueries evaluate the inner
/// expression at multiples of their step, so at a minute-aligned instant
/// these see samples at every minute.
pub mod probe {
    /// 6 on closed ranges, 5 on left-open ones.
    pub const COUNT: &str = "count_over_time(vector(1)[5m:1m])";
    /// Prometheus extrapolates two minutes of samples to 150; a backend
    /// that takes the sample before the range as its base says 180.
    pub const BASE: &str = "increase(vector(time())[150s:1m])";
    /// Parses only where the `anchored` modifier exists; then 180.
    pub const ANCHORED: &str = "increase(vector(time())[150s:1m] anchored)";
}

/// Fills `{{.window}}` (Sloth's Go template, spaces allowed) with a
/// PromQL duration.
pub fn with_window(template: &str, window: &str) -> String {
    fill(template, window, "")
}

/// Fills `{{.window}}` and puts `modifier` after the `]` that closes it.
fn fill(template: &str, window: &str, modifier: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        let mut after = &rest[start + len + 2..];
        if inner == ".window" {
            out.push_str(window);
            if !modifier.is_empty() {
                if let Some(tail) = after.trim_start().strip_prefix(']') {
                    out.push(']');
                    out.push_str(modifier);
                    after = tail;
                }
            }
        } else {
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A window given in seconds as PromQL wants it (`5m`, `97s`).
pub fn window_text(secs: u64) -> String {
    Window::from_secs(secs.max(1))
        .map(|w| w.to_string())
        .unwrap_or_else(|_| format!("{secs}s"))
}

/// Escapes a string for a PromQL double-quoted label value.
pub fn escape_label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Regex matching the `le` label of a bucket boundary however the exporter
/// printed it: `0.3`, `0.30` and `0.300` are one boundary, `1` and `1.0` too.
pub fn le_regex(threshold: f64) -> String {
    let text = format!("{threshold}");
    let escaped = text.replace('.', "\\\\.");
    if text.contains('.') {
        format!("{escaped}0*")
    } else {
        format!("{escaped}(\\\\.0*)?")
    }
}

fn latency_queries(metric: &str, selector: &str, threshold: f64) -> Queries {
    let inner = selector
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim()
        .trim_end_matches(',');
    let sel = if inner.is_empty() {
        String::new()
    } else {
        format!("{{{inner}}}")
    };
    let le = format!("le=~\"{}\"", le_regex(threshold));
    let bucket_sel = if inner.is_empty() {
        format!("{{{le}}}")
    } else {
        format!("{{{inner},{le}}}")
    };
    let total = format!("sum(rate({metric}_count{sel}[{{{{.window}}}}]))");
    let good = format!("sum(rate({metric}_bucket{bucket_sel}[{{{{.window}}}}]))");
    Queries::Events {
        bad: format!("({total} - {good})"),
        total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_window_templates_with_or_without_spaces() {
        assert_eq!(
            with_window(
                "sum(rate(x[{{.window}}])) / sum(rate(y[{{ .window }}]))",
                "5m"
            ),
            "sum(rate(x[5m])) / sum(rate(y[5m]))"
        );
        assert_eq!(with_window("{{.other}} x", "5m"), "{{.other}} x");
        assert_eq!(with_window("x{a=\"{{\"}", "5m"), "x{a=\"{{\"}");
    }

    #[test]
    fn at_window_fills_every_expression() {
        let q = Queries::Events {
            bad: "sum(rate(e[{{.window}}]))".into(),
            total: "sum(rate(t[{{ .window }}]))".into(),
        };
        assert_eq!(
            q.at_window("2h24m"),
            Queries::Events {
                bad: "sum(rate(e[2h24m]))".into(),
                total: "sum(rate(t[2h24m]))".into(),
            }
        );
        let r = Queries::Ratio {
            ratio: "avg_over_time(r[{{.window}}])".into(),
        };
        assert_eq!(
            r.at_window("5m"),
            Queries::Ratio {
                ratio: "avg_over_time(r[5m])".into()
            }
        );
    }

    #[test]
    fn range_spelling_per_backend() {
        let t = "sum(rate(x[{{.window}}])) + sum(rate(y[ {{ .window }} ] offset 1m))";
        assert_eq!(
            with_range(t, 300, Semantics::Closed),
            "sum(rate(x[5m])) + sum(rate(y[ 5m ] offset 1m))"
        );
        assert_eq!(
            with_range(t, 300, Semantics::LastBefore),
            "sum(rate(x[5m])) + sum(rate(y[ 5m ] offset 1m))"
        );
        assert_eq!(
            with_range(t, 86_400, Semantics::LeftOpen),
            "sum(rate(x[1d1ms])) + sum(rate(y[ 1d1ms ] offset 1m))"
        );
        assert_eq!(
            with_range(t, 420, Semantics::Anchored),
            "sum(rate(x[7m] anchored)) + sum(rate(y[ 7m] anchored offset 1m))"
        );
        for s in [Semantics::Closed, Semantics::LeftOpen] {
            let q = with_range(t, 97, s);
            promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn le_regex_matches_every_spelling() {
        assert_eq!(le_regex(0.3), "0\\\\.30*");
        assert_eq!(le_regex(1.0), "1(\\\\.0*)?");
        assert_eq!(le_regex(0.25), "0\\\\.250*");
    }

    #[test]
    fn latency_queries_parse_and_use_le_regex() {
        let Queries::Events { bad, total } =
            latency_queries("http_request_duration_seconds", "{job=\"a\"}", 0.3)
        else {
            panic!("latency gives events queries");
        };
        assert_eq!(
            total,
            "sum(rate(http_request_duration_seconds_count{job=\"a\"}[{{.window}}]))"
        );
        assert!(
            bad.contains("_bucket{job=\"a\",le=~\"0\\\\.30*\"}"),
            "{bad}"
        );
        for q in [bad, total] {
            let q = with_window(&q, "5m");
            promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
        let Queries::Events { bad, .. } = latency_queries("m", "", 2.0) else {
            panic!()
        };
        promql_parser::parser::parse(&with_window(&bad, "1h")).unwrap();
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
