//! Checks on the PromQL templates written in specs: does a query parse once
//! `{{.window}}` is filled in, and which labels does it keep. Writes no
//! PromQL for evaluation (that is `plan`'s job).

use std::panic;

use promql_parser::label::Labels;
use promql_parser::parser::{self, Expr, LabelModifier};

/// The range written in place of `{{.window}}` to check a template: any
/// valid duration would do.
const CHECK_WINDOW: &str = "5m";

/// Whether the template holds a `{{.window}}` (spaces allowed inside the
/// braces, as Go templates allow them).
pub fn has_window(query: &str) -> bool {
    substitute_window(query, "") != query
}

/// Replaces every `{{.window}}` / `{{ .window }}` with `with`.
pub fn substitute_window(query: &str, with: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if after[..end].trim() == ".window" => {
                out.push_str(&rest[..start]);
                out.push_str(with);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The longest query accepted, and the most binary operators in one.
/// promql-parser's type check takes time quadratic in the number of
/// operators (measured, release build: 1,000 `+` 24 ms, 4,096 0.7 s, 8,192
/// 2.6 s; a 20,000-term sum 28 s), and a spec is parsed on every reload.
/// Real SLI queries are a few hundred bytes with a handful of operators.
pub const MAX_QUERY_BYTES: usize = 16 * 1024;
pub const MAX_OPERATORS: usize = 500;

/// Refuses a query too large to parse in bounded time, before parsing.
pub fn check_size(query: &str) -> Result<(), String> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(format!(
            "query is {} bytes long, more than the {} KiB accepted",
            query.len(),
            MAX_QUERY_BYTES / 1024
        ));
    }
    let ops = count_operators(query);
    if ops > MAX_OPERATORS {
        return Err(format!(
            "query has {ops} binary operators, more than the {MAX_OPERATORS} accepted"
        ));
    }
    Ok(())
}

/// Binary operators outside strings and label matchers (an over-count
/// at worst: `1e-3` counts its `-`).
fn count_operators(q: &str) -> usize {
    let b = q.as_bytes();
    let mut n = 0;
    let mut i = 0;
    let mut braces = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                // Skip the string, honouring backslash escapes (not in `raw`).
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' && c != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' => braces += 1,
            b'}' => braces = braces.saturating_sub(1),
            _ if braces > 0 => {}
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' => n += 1,
            b'=' | b'!' | b'<' | b'>' => {
                n += 1;
                if b.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                if matches!(&q[start..i], "and" | "or" | "unless" | "atan2") {
                    n += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    n
}

/// Parses the template with a sample window. The error is the parser's own
/// message, or why the query was not parsed at all.
pub fn parse(query: &str) -> Result<Expr, String> {
    check_size(query)?;
    let text = substitute_window(query, CHECK_WINDOW);
    // A parser bug on odd input must become a message, not a crash.
    match panic::catch_unwind(|| parser::parse(&text)) {
        Ok(r) => r,
        Err(_) => Err("the PromQL parser failed on this query".into()),
    }
}

/// Whether every `{{.window}}` of the template is the range of a bare
/// selector read by `rate()` (no offset, no `@`): such a range can be spelt
/// as a subquery over the selector (`plan::with_tile`), which counts the
/// increase between the samples around the range on any Prometheus. Other
/// uses (`avg_over_time`, `increase`, a subquery range, an offset) keep
/// their own meaning and cannot be pieced together exactly.
pub fn windows_only_in_rates(query: &str) -> bool {
    // A range no hand-written query uses, to find the template's windows.
    const MARK_SECS: u64 = 12_345_678;
    let windows = substitute_window(query, "xx").len() - substitute_window(query, "x").len();
    if windows == 0 || check_size(query).is_err() {
        return false;
    }
    let text = substitute_window(query, &format!("{MARK_SECS}s"));
    let Ok(Ok(expr)) = panic::catch_unwind(|| parser::parse(&text)) else {
        return false;
    };
    let mark = std::time::Duration::from_secs(MARK_SECS);
    rate_windows(&expr, mark) == windows
        && text.matches(&format!("{MARK_SECS}s")).count() == windows
}

/// Matrix selectors over `mark` read directly by `rate()`.
fn rate_windows(e: &Expr, mark: std::time::Duration) -> usize {
    match e {
        Expr::Call(c) => c
            .args
            .args
            .iter()
            .map(|a| match (c.func.name, a.as_ref()) {
                ("rate", Expr::MatrixSelector(m))
                    if m.range == mark && m.vs.offset.is_none() && m.vs.at.is_none() =>
                {
                    1
                }
                _ => rate_windows(a, mark),
            })
            .sum(),
        Expr::Aggregate(a) => {
            rate_windows(&a.expr, mark) + a.param.as_ref().map_or(0, |p| rate_windows(p, mark))
        }
        Expr::Paren(p) => rate_windows(&p.expr, mark),
        Expr::Unary(u) => rate_windows(&u.expr, mark),
        Expr::Binary(b) => rate_windows(&b.lhs, mark) + rate_windows(&b.rhs, mark),
        Expr::Subquery(s) => rate_windows(&s.expr, mark),
        _ => 0,
    }
}

/// Labels kept by the outermost aggregation of `query` (e.g. `route` for
/// `sum by (route) (...)`), after `{{.window}}` substitution. Empty when
/// the query does not parse, aggregates everything away, or uses
/// `without` (whose kept labels cannot be known from the text).
pub fn grouping_labels(query: &str) -> Vec<String> {
    parse(query)
        .map(|e| kept_labels(&e).unwrap_or_default())
        .unwrap_or_default()
}

/// `Some(labels)` once an aggregation decides what is kept; `None` when
/// this branch has no aggregation (a number or a bare selector).
fn kept_labels(e: &Expr) -> Option<Vec<String>> {
    match e {
        Expr::Aggregate(a) => Some(match &a.modifier {
            Some(LabelModifier::Include(Labels { labels })) => labels.clone(),
            _ => Vec::new(),
        }),
        Expr::Paren(p) => kept_labels(&p.expr),
        Expr::Unary(u) => kept_labels(&u.expr),
        // `1 - (sum by (x) (...) / sum by (x) (...))`: the number keeps
        // nothing, the vector side decides.
        Expr::Binary(b) => kept_labels(&b.lhs).or_else(|| kept_labels(&b.rhs)),
        // `clamp_max(sum by (x) (...), 1)`, `label_replace(...)`.
        Expr::Call(c) => c.args.args.iter().find_map(|a| kept_labels(a)),
        Expr::Subquery(s) => kept_labels(&s.expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_windows_read_only_by_rates() {
        for q in [
            "sum(rate(x{a=\"b\"}[{{.window}}]))",
            "sum by (r) (rate(x[{{ .window }}])) / sum by (r) (rate(y[{{.window}}]))",
            "1 - (sum(rate(h_bucket{le=\"0.3\"}[{{.window}}])) / sum(rate(h_count[{{.window}}])))",
        ] {
            assert!(windows_only_in_rates(q), "{q}");
        }
        for q in [
            "avg_over_time(up[{{.window}}])",
            "sum(increase(x[{{.window}}]))",
            "sum(rate(x[{{.window}}] offset 1m))",
            "sum(rate(x[{{.window}}])) / sum(avg_over_time(y[{{.window}}]))",
            "rate(sum(x)[{{.window}}:1m])",
            "sum(rate(x[5m]))",
            "sum(rate(x[{{.window}}]",
        ] {
            assert!(!windows_only_in_rates(q), "{q}");
        }
    }

    #[test]
    fn substitutes_go_template_windows() {
        assert_eq!(
            substitute_window("rate(x[{{.window}}]) + rate(y[{{ .window }}])", "5m"),
            "rate(x[5m]) + rate(y[5m])"
        );
        assert!(has_window("rate(x[{{ .window }}])"));
        assert!(!has_window("rate(x[{{.other}}])"));
        assert!(!has_window("rate(x[5m]) {{"));
    }

    #[test]
    fn finds_the_outermost_grouping() {
        let q = "sum by (route, code) (rate(http_requests_total[{{.window}}]))";
        assert_eq!(grouping_labels(q), ["route", "code"]);
        let q = "1 - (sum by (ap) (rate(a[{{.window}}])) / sum by (ap) (rate(b[{{.window}}])))";
        assert_eq!(grouping_labels(q), ["ap"]);
        assert!(grouping_labels("sum(rate(a[{{.window}}]))").is_empty());
        assert!(grouping_labels("sum without (pod) (rate(a[5m]))").is_empty());
        assert!(grouping_labels("rate(a[5m])").is_empty());
        assert!(grouping_labels("sum(").is_empty());
    }

    #[test]
    fn oversized_queries_are_refused_before_parsing() {
        let many = vec!["rate(x[{{.window}}])"; MAX_OPERATORS + 2].join(" + ");
        assert_eq!(
            parse(&many).unwrap_err(),
            format!(
                "query has {} binary operators, more than the 500 accepted",
                MAX_OPERATORS + 1
            )
        );
        let long = format!("sum(rate(x{{a=~\"{}\"}}[5m]))", "y".repeat(MAX_QUERY_BYTES));
        assert_eq!(
            parse(&long).unwrap_err(),
            format!(
                "query is {} bytes long, more than the 16 KiB accepted",
                long.len()
            )
        );
        // Operators in strings and label matchers do not count.
        assert_eq!(
            count_operators(
                r#"sum(rate(x{code=~"5..|4-2+*",a!="b"}[5m])) / on(a) sum(y or z) > 1"#
            ),
            3
        );
        assert!(parse(&vec!["rate(x[5m])"; MAX_OPERATORS + 1].join(" or ")).is_ok());
    }

    #[test]
    fn parse_reports_the_parser_message() {
        assert!(parse("sum(rate(x[{{.window}}]))").is_ok());
        let err = parse("sum(rate(x[{{.window}}])").unwrap_err();
        assert!(!err.is_empty());
    }
}
