//! The only place PromQL text is written. The engine, `rules` and the pages
//! all take their queries from here; nothing here executes a query.
//!
//! Cost design: a naive plan asks Prometheus for `sum(rate(x[W]))` for every
//! window including the 30-day period, every cycle, reading every raw sample
//! of the period each time. Instead every window is summed from pieces that
//! tile exactly (`with_tile`): 5-minute buckets fetched once, and running
//! sums grown by a slice a cycle (see `evaluate`). Only windows that cannot
//! be pieced are queried whole, and on backends where pieces would be
//! estimates, up to [`DIRECT_MAX_SECS`].

use crate::model::{Sli, Slo, Window};
use crate::promql::windows_only_in_rates;

/// How a range selector `x[W]` evaluated at `t` picks its samples, which
/// decides how [`with_range`] spells a range so that rates times the
/// range are the increase between the samples on both sides of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Semantics {
    /// `[t - W, t]`: Prometheus 2.x (and a Thanos or Cortex built on it).
    Closed,
    /// `(t - W, t]`: Prometheus 3.x, Mimir without `anchored`.
    LeftOpen,
    /// Has the `anchored` modifier: the sample at or before `t - W` is the
    /// base and nothing is extrapolated.
    Anchored,
    /// `(t - W, t]` with the last sample before it as the base, no
    /// extrapolation: VictoriaMetrics.
    LastBefore,
}

impl Semantics {
    /// Whether adjacent ranges count exactly the increases between samples
    /// whatever the sample times, so any window can be summed from pieces.
    /// Where `rate` extrapolates (Prometheus without `anchored`) pieces are
    /// exact only on samples at the piece boundaries; on real scrapes every
    /// boundary adds an estimate, so windows that page stay one query there.
    pub fn tiles_exactly(self) -> bool {
        matches!(self, Semantics::Anchored | Semantics::LastBefore)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Semantics::Closed => "closed",
            Semantics::LeftOpen => "left_open",
            Semantics::Anchored => "anchored",
            Semantics::LastBefore => "last_sample_before",
        }
    }
}

/// Width of the history buckets kept in memory.
pub const BUCKET_SECS: u64 = 300;
/// Where pieces would be estimates (a template read through something
/// other than `rate()` on Prometheus without `anchored`), windows up to
/// this length are queried whole each cycle.
pub const DIRECT_MAX_SECS: u64 = 6 * 3_600;
/// Start-up range queries are split into 1-day chunks (288 points a
/// series): far below Prometheus' limit of 11,000 points per series, and
/// small enough that an answer over hundreds of groups stays within a
/// query's share of the response memory budget and its timeout.
pub const MAX_POINTS_PER_RANGE_QUERY: u64 = 288;
/// Resolution of the subqueries that make Prometheus without `anchored`
/// count increases between samples (`with_tile`). Every piece starts and
/// ends on a multiple of it, so evaluations are for such an instant too.
/// A sample is seen by the step after it; only where two samples fall in
/// one step and the second is a counter reset do the events between them
/// go uncounted, so it is no coarser than the scrape intervals in use.
pub const STEP_SECS: u64 = 15;

/// The instant an evaluation asked for at `now` is for: the step boundary
/// at or before it, so that every window ends where pieces can end.
pub fn evaluation_instant(now: i64) -> i64 {
    now.div_euclid(STEP_SECS as i64) * STEP_SECS as i64
}

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
        self.map(|q| with_window(q, window))
    }

    /// The same expressions, each rewritten by `f`.
    fn map(&self, f: impl Fn(&str) -> String) -> Queries {
        match self {
            Queries::Events { bad, total } => Queries::Events {
                bad: f(bad),
                total: f(total),
            },
            Queries::Ratio { ratio } => Queries::Ratio { ratio: f(ratio) },
        }
    }
}

impl Queries {
    /// Whether every window of these queries is a range read by `rate()`,
    /// so that `at_tile` spells pieces that sum exactly on any backend.
    pub fn tile_on_any_backend(&self) -> bool {
        match self {
            Queries::Events { bad, total } => {
                windows_only_in_rates(bad) && windows_only_in_rates(total)
            }
            Queries::Ratio { ratio } => windows_only_in_rates(ratio),
        }
    }

    /// The expressions counting the increase between the samples around
    /// `(t - secs, t]`, for `t` and `secs` multiples of [`STEP_SECS`]: the
    /// pieces of a window. Needs `tile_on_any_backend` or a backend whose
    /// semantics tile exactly.
    pub fn at_tile(&self, secs: u64, semantics: Semantics) -> Queries {
        self.map(|q| with_tile(q, secs, semantics))
    }
}

/// Fills `{{.window}}` so that `rate(x[W])` is the increase between the
/// sample at or before `t - W` and the last one at or before `t`, divided
/// by `W`, resets included — what `anchored` does — on backends without
/// it: `x[W:15s]` is a subquery whose steps each hold the latest sample, so
/// its first point is the sample before the range and its last the sample
/// before `t`; points on both range ends leave nothing to extrapolate.
/// Left-open ranges (Prometheus 3.x) get 1 ms more to hold the first step;
/// `rate` then extrapolates over exactly that millisecond and divides by
/// it. (Should the counter be exactly 0 at the first step, Prometheus does
/// not extrapolate and the piece comes out `1 ms / W` short: 3e-6 of a
/// 5-minute piece.) Backends that tile natively keep their spelling.
pub fn with_tile(template: &str, secs: u64, semantics: Semantics) -> String {
    let text = window_text(secs);
    match semantics {
        Semantics::Closed => with_window(template, &format!("{text}:{STEP_SECS}s")),
        Semantics::LeftOpen => with_window(template, &format!("{text}1ms:{STEP_SECS}s")),
        Semantics::Anchored | Semantics::LastBefore => with_range(template, secs, semantics),
    }
}

impl Queries {
    /// The expressions counting the events of `(t - secs, t]` on a backend
    /// with these range semantics: what the engine and the pages run.
    pub fn at_range(&self, secs: u64, semantics: Semantics) -> Queries {
        self.map(|q| with_range(q, secs, semantics))
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
/// - VictoriaMetrics takes the last sample before the range as its base,
///   but its `rate` divides by the time its samples span, not by the range
///   (a series that starts or stops inside the range would count several
///   times over): there `rate(x[W])` is spelt `(increase(x[W]) / W)`, which
///   is exactly the increase between the samples around the range.
pub fn with_range(template: &str, secs: u64, semantics: Semantics) -> String {
    let text = window_text(secs);
    match semantics {
        Semantics::Closed => with_window(template, &text),
        Semantics::LastBefore => with_window(&rate_as_increase(template, secs), &text),
        Semantics::LeftOpen => with_window(template, &format!("{text}1ms")),
        Semantics::Anchored => fill(template, &text, " anchored"),
    }
}

/// Rewrites every `rate(...)` call over a `{{.window}}` range as
/// `(increase(...) / secs)`. Other calls (`irate`, a `rate` over a fixed
/// range) and string literals are left alone.
fn rate_as_increase(template: &str, secs: u64) -> String {
    let bytes = template.as_bytes();
    let mut out = String::with_capacity(template.len() + 32);
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'r' if template[i..].starts_with("rate") && (i == 0 || !is_ident(bytes[i - 1])) => {
                let after = i + 4;
                let open = after + template[after..].len() - template[after..].trim_start().len();
                if bytes.get(open) == Some(&b'(') {
                    if let Some(close) = matching_paren(bytes, open) {
                        let arg = &template[open + 1..close];
                        if arg.contains(".window") {
                            out.push_str(&template[copied..i]);
                            out.push_str("(increase(");
                            out.push_str(&rate_as_increase(arg, secs));
                            out.push_str(&format!(") / {secs})"));
                            i = close + 1;
                            copied = i;
                            continue;
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&template[copied..]);
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b':'
}

/// The index just past the string literal opening at `start`.
fn skip_string(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == b'\\' && quote != b'`' {
            i += 2;
            continue;
        }
        if bytes[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// The `)` closing the `(` at `open`, skipping string literals.
fn matching_paren(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => {
                i = skip_string(bytes, i);
                continue;
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The label a merged query tags each part's series with.
pub const BATCH_LABEL: &str = "errbudget_batch_part";

/// Several instant-vector expressions as one: each part's series tagged
/// with its index in [`BATCH_LABEL`], joined with `or` (the tags keep every
/// part's series apart, so `or` drops nothing). Saves one HTTP request per
/// part; the samples Prometheus reads are the same.
pub fn merge_queries<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for (i, q) in parts.into_iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        let _ = std::fmt::Write::write_fmt(
            &mut out,
            format_args!("label_replace({q}, \"{BATCH_LABEL}\", \"{i}\", \"\", \"\")"),
        );
    }
    out
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
            "sum((increase(x[5m]) / 300)) + sum((increase(y[ 5m ] offset 1m) / 300))"
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
    fn tiles_are_subqueries_on_prometheus_without_anchored() {
        let t = "sum(rate(x{a=\"b\"}[{{.window}}]))";
        assert_eq!(
            with_tile(t, 300, Semantics::Closed),
            "sum(rate(x{a=\"b\"}[5m:15s]))"
        );
        assert_eq!(
            with_tile(t, 3_600, Semantics::LeftOpen),
            "sum(rate(x{a=\"b\"}[1h1ms:15s]))"
        );
        assert_eq!(
            with_tile(t, 300, Semantics::LastBefore),
            with_range(t, 300, Semantics::LastBefore)
        );
        assert_eq!(
            with_tile(t, 300, Semantics::Anchored),
            with_range(t, 300, Semantics::Anchored)
        );
        for s in [Semantics::Closed, Semantics::LeftOpen] {
            let q = with_tile(t, 86_400, s);
            promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
        assert_eq!(evaluation_instant(1_000_007), 999_990 + 15);
        assert_eq!(evaluation_instant(-1), -15);
        let latency = latency_queries("h", "{job=\"a\"}", 0.3);
        assert!(latency.tile_on_any_backend());
        let raw = Queries::Ratio {
            ratio: "1 - avg_over_time(up[{{.window}}])".into(),
        };
        assert!(!raw.tile_on_any_backend());
    }

    #[test]
    fn only_rates_over_the_window_become_increases() {
        let t = r#"sum(irate(a[{{.window}}])) / sum(rate(b{x="rate(", y=')'}[{{.window}}])) - rate(c[1m]) + my_rate(d[{{.window}}])"#;
        assert_eq!(
            with_range(t, 60, Semantics::LastBefore),
            r#"sum(irate(a[1m])) / sum((increase(b{x="rate(", y=')'}[1m]) / 60)) - rate(c[1m]) + my_rate(d[1m])"#
        );
        let nested = "rate ( sum_over_time(rate(x[{{.window}}])[5m:]) [{{.window}}])";
        let q = with_range(nested, 300, Semantics::LastBefore);
        assert!(
            q.starts_with("(increase( sum_over_time((increase(x[5m]) / 300)[5m:]) [5m]) / 300)"),
            "{q}"
        );
        let latency = latency_queries("h", "{job=\"a\"}", 0.3);
        for q in [latency.at_range(300, Semantics::LastBefore)] {
            let Queries::Events { bad, total } = q else {
                panic!()
            };
            for q in [bad, total] {
                assert!(!q.contains("rate("), "{q}");
                promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
            }
        }
    }

    #[test]
    fn merged_queries_parse_and_tag_each_part() {
        let q = merge_queries(["sum(rate(a[5m]))", "sum by (route) (rate(b[5m]))"]);
        assert_eq!(
            q,
            "label_replace(sum(rate(a[5m])), \"errbudget_batch_part\", \"0\", \"\", \"\") or \
             label_replace(sum by (route) (rate(b[5m])), \"errbudget_batch_part\", \"1\", \"\", \"\")"
        );
        promql_parser::parser::parse(&q).unwrap_or_else(|e| panic!("{q}: {e}"));
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
