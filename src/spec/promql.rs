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

/// Parses the template with a sample window. The error is the parser's own
/// message.
pub fn parse(query: &str) -> Result<Expr, String> {
    let text = substitute_window(query, CHECK_WINDOW);
    // A parser bug on odd input must become a message, not a crash.
    match panic::catch_unwind(|| parser::parse(&text)) {
        Ok(r) => r,
        Err(_) => Err("the PromQL parser failed on this query".into()),
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
    fn parse_reports_the_parser_message() {
        assert!(parse("sum(rate(x[{{.window}}]))").is_ok());
        let err = parse("sum(rate(x[{{.window}}])").unwrap_err();
        assert!(!err.is_empty());
    }
}
