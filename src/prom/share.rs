//! One query for many SLOs over one metric. SLOs are often written once
//! per service over a shared metric (`sum(rate(x{service="a"}[5m]))`,
//! `…{service="b"}…`): queries that differ only in the value of one
//! equality matcher present in every selector are asked as one,
//! `sum by (service) (rate(x{service=~"a|b"}[5m]))`, and the answer is
//! split by that label. Prometheus then looks the series up and evaluates
//! the expression once instead of once per SLO; the samples it reads are
//! the same.
//!
//! The rewrite is exact only for expressions where adding the label to
//! every aggregation cannot change what each value's series add up to, so
//! anything else is left alone: every path to a selector goes through an
//! aggregation (`by`, never `without`, and none already by the label),
//! vector matching is plain one-to-one or a set operator without
//! `on`/`ignoring`, and only functions that work per series are used.
//!
//! Parsing every query of every cycle would cost more than it saves, so a
//! query's string literals are cut out first (a scan, no parse) and the
//! analysis is done once per remaining text and kept.

use std::collections::HashMap;
use std::fmt::Write;

use promql_parser::label::MatchOp;
use promql_parser::parser::{self, Expr, LabelModifier, VectorMatchCardinality, VectorSelector};

use crate::plan::escape_label_value;

/// Analyses kept; past this the cache starts again (queries of one
/// template differ only in their durations, so a few hundred is usual).
const CACHE_ENTRIES: usize = 4096;

/// A query with its string literals replaced by numbered markers.
#[derive(Debug, PartialEq)]
pub struct Masked {
    pub text: String,
    /// Each literal as written (quotes included), and its value where it
    /// is plain (no escapes, no control characters), so it can be matched
    /// against answers and put in a regular expression.
    pub literals: Vec<(String, Option<String>)>,
}

fn marker(i: usize) -> String {
    format!("__errbudget_str_{i}__")
}

/// Cuts the string literals out of `query`. `None` when the query has a
/// comment or an unterminated string (left to Prometheus to judge).
pub fn mask(query: &str) -> Option<Masked> {
    let bytes = query.as_bytes();
    let mut text = String::with_capacity(query.len());
    let mut literals = vec![];
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => return None,
            q @ (b'"' | b'\'' | b'`') => {
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    if bytes[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= bytes.len() {
                    return None;
                }
                let raw = &query[start..=i];
                let inner = &raw[1..raw.len() - 1];
                let plain = !inner.contains('\\') && !inner.chars().any(char::is_control);
                text.push_str(&query[copied..start]);
                let _ = write!(text, "\"{}\"", marker(literals.len()));
                literals.push((raw.to_owned(), plain.then(|| inner.to_owned())));
                copied = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    text.push_str(&query[copied..]);
    Some(Masked { text, literals })
}

/// A label whose value may vary between queries of one masked text.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub label: String,
    /// The literals holding its value, one per selector.
    pub positions: Vec<usize>,
    /// The masked text with the label added to every aggregation.
    pub template: String,
}

/// The labels a masked text can be shared on; none if it cannot be.
pub fn analyse(masked: &str) -> Vec<Candidate> {
    let Ok(ast) = parser::parse(masked) else {
        return vec![];
    };
    // What is asked is what this crate prints, not what was written: it
    // must mean the same.
    // (It prints matchers sorted, which changes nothing.)
    match parser::parse(&ast.to_string()) {
        Ok(mut again) => {
            let mut sorted = ast.clone();
            sort_matchers(&mut sorted);
            sort_matchers(&mut again);
            if again != sorted {
                return vec![];
            }
        }
        Err(_) => return vec![],
    }
    if !allowed(&ast) || !aggregated(&ast) {
        return vec![];
    }
    let mut selectors = vec![];
    collect_selectors(&ast, &mut selectors);
    let Some(first) = selectors.first() else {
        return vec![];
    };
    if selectors.iter().any(|s| !s.matchers.or_matchers.is_empty()) {
        return vec![];
    }
    let mut grouped = vec![];
    collect_groupings(&ast, &mut grouped);
    let mut out = vec![];
    for m in &first.matchers.matchers {
        let label = &m.name;
        if label == "__name__" || !is_label_name(label) || grouped.contains(label) {
            continue;
        }
        let positions: Option<Vec<usize>> = selectors
            .iter()
            .map(|s| {
                let mut on_label = s.matchers.matchers.iter().filter(|m| &m.name == label);
                match (on_label.next(), on_label.next()) {
                    (Some(m), None) if matches!(m.op, MatchOp::Equal) => marker_index(&m.value),
                    _ => None,
                }
            })
            .collect();
        let Some(positions) = positions else {
            continue;
        };
        let mut with_label = ast.clone();
        add_grouping(&mut with_label, label);
        let template = with_label.to_string();
        let each_once = positions.iter().all(|&i| {
            template
                .matches(&format!("{label}=\"{}\"", marker(i)))
                .count()
                == 1
        });
        if each_once && parser::parse(&template).is_ok() {
            out.push(Candidate {
                label: label.clone(),
                positions,
                template,
            });
        }
    }
    out
}

fn marker_index(value: &str) -> Option<usize> {
    value
        .strip_prefix("__errbudget_str_")?
        .strip_suffix("__")?
        .parse()
        .ok()
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Functions that work on each series alone and keep its labels.
const PER_SERIES: &[&str] = &[
    "rate",
    "increase",
    "irate",
    "delta",
    "idelta",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "clamp",
    "clamp_min",
    "clamp_max",
    "histogram_quantile",
];

const AGGREGATIONS: &[&str] = &[
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar",
];

/// Every node is one the rewrite keeps exact.
fn allowed(e: &Expr) -> bool {
    match e {
        Expr::Aggregate(a) => {
            AGGREGATIONS.contains(&a.op.to_string().as_str())
                && a.param.is_none()
                && !matches!(a.modifier, Some(LabelModifier::Exclude(_)))
                && allowed(&a.expr)
        }
        Expr::Binary(b) => {
            let plain = match &b.modifier {
                None => true,
                Some(m) => {
                    m.matching.is_none()
                        && m.fill_values.lhs.is_none()
                        && m.fill_values.rhs.is_none()
                        && matches!(
                            m.card,
                            VectorMatchCardinality::OneToOne | VectorMatchCardinality::ManyToMany
                        )
                }
            };
            plain && allowed(&b.lhs) && allowed(&b.rhs)
        }
        Expr::Paren(p) => allowed(&p.expr),
        Expr::Unary(u) => allowed(&u.expr),
        Expr::Subquery(s) => allowed(&s.expr),
        Expr::NumberLiteral(_) | Expr::VectorSelector(_) | Expr::MatrixSelector(_) => true,
        Expr::Call(c) => {
            PER_SERIES.contains(&c.func.name) && c.args.args.iter().all(|a| allowed(a))
        }
        Expr::StringLiteral(_) | Expr::Extension(_) => false,
    }
}

/// Every path from the top to a selector passes an aggregation, so the
/// original answer carries none of the selectors' own labels.
fn aggregated(e: &Expr) -> bool {
    fn walk(e: &Expr) -> Option<bool> {
        // Some(true): aggregated; Some(false): reaches a selector
        // unaggregated; None: no selector below (a number).
        match e {
            Expr::Aggregate(_) => Some(true),
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => None,
            Expr::VectorSelector(_) | Expr::MatrixSelector(_) | Expr::Extension(_) => Some(false),
            Expr::Paren(p) => walk(&p.expr),
            Expr::Unary(u) => walk(&u.expr),
            Expr::Subquery(s) => walk(&s.expr),
            Expr::Binary(b) => match (walk(&b.lhs), walk(&b.rhs)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (None, None) => None,
                _ => Some(true),
            },
            Expr::Call(c) => {
                c.args
                    .args
                    .iter()
                    .map(|a| walk(a))
                    .fold(None, |acc, w| match (acc, w) {
                        (Some(false), _) | (_, Some(false)) => Some(false),
                        (None, w) => w,
                        (a, None) => a,
                        _ => Some(true),
                    })
            }
        }
    }
    walk(e) == Some(true)
}

/// The expressions directly below `e`.
fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::Aggregate(a) => vec![&a.expr],
        Expr::Binary(b) => vec![&b.lhs, &b.rhs],
        Expr::Paren(p) => vec![&p.expr],
        Expr::Unary(u) => vec![&u.expr],
        Expr::Subquery(s) => vec![&s.expr],
        Expr::Call(c) => c.args.args.iter().map(|a| &**a).collect(),
        _ => vec![],
    }
}

fn children_mut(e: &mut Expr) -> Vec<&mut Expr> {
    match e {
        Expr::Aggregate(a) => vec![&mut a.expr],
        Expr::Binary(b) => vec![&mut b.lhs, &mut b.rhs],
        Expr::Paren(p) => vec![&mut p.expr],
        Expr::Unary(u) => vec![&mut u.expr],
        Expr::Subquery(s) => vec![&mut s.expr],
        Expr::Call(c) => c.args.args.iter_mut().map(|a| &mut **a).collect(),
        _ => vec![],
    }
}

fn collect_selectors<'a>(e: &'a Expr, out: &mut Vec<&'a VectorSelector>) {
    match e {
        Expr::VectorSelector(v) => out.push(v),
        Expr::MatrixSelector(m) => out.push(&m.vs),
        _ => children(e)
            .into_iter()
            .for_each(|c| collect_selectors(c, out)),
    }
}

fn sort_matchers(e: &mut Expr) {
    let selector = match e {
        Expr::VectorSelector(v) => v,
        Expr::MatrixSelector(m) => &mut m.vs,
        _ => return children_mut(e).into_iter().for_each(sort_matchers),
    };
    selector.matchers.matchers.sort_by(|a, b| {
        (&a.name, &a.value, a.op.to_string()).cmp(&(&b.name, &b.value, b.op.to_string()))
    });
}

fn collect_groupings(e: &Expr, out: &mut Vec<String>) {
    if let Expr::Aggregate(a) = e {
        if let Some(m) = &a.modifier {
            out.extend(m.labels().labels.iter().cloned());
        }
    }
    children(e)
        .into_iter()
        .for_each(|c| collect_groupings(c, out));
}

fn add_grouping(e: &mut Expr, label: &str) {
    if let Expr::Aggregate(a) = e {
        match &mut a.modifier {
            Some(LabelModifier::Include(ls)) => ls.labels.push(label.to_owned()),
            m => {
                *m = Some(LabelModifier::Include(promql_parser::label::Labels {
                    labels: vec![label.to_owned()],
                }))
            }
        }
    }
    children_mut(e)
        .into_iter()
        .for_each(|c| add_grouping(c, label));
}

/// The shared query: `candidate`'s template with the label matching any
/// of `values` and every other literal as `masked` wrote it.
pub fn instantiate(candidate: &Candidate, masked: &Masked, values: &[&str]) -> String {
    let alternatives: Vec<String> = values.iter().map(|v| regex::escape(v)).collect();
    let matcher = format!(
        "{}=~\"{}\"",
        candidate.label,
        escape_label_value(&alternatives.join("|"))
    );
    let mut out = candidate.template.clone();
    for (i, (raw, _)) in masked.literals.iter().enumerate() {
        if candidate.positions.contains(&i) {
            out = out.replace(&format!("{}=\"{}\"", candidate.label, marker(i)), &matcher);
        } else {
            out = out.replace(&format!("\"{}\"", marker(i)), raw);
        }
    }
    // The value moves to a label of its own and the label itself goes (an
    // empty replacement deletes it): answers never carry a label the
    // queries asked for did not, `service` and the like being errbudget's.
    let label = &candidate.label;
    format!(
        "label_replace(label_replace({out}, \"{SHARE_LABEL}\", \"$1\", \"{label}\", \"(.*)\"), \"{label}\", \"\", \"\", \"\")"
    )
}

/// The label a shared query's answer holds each series' value in.
pub const SHARE_LABEL: &str = "errbudget_shared_value";

/// How a query can be shared: on which label, with which value, and the
/// key that queries shared together have in common.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub key: String,
    pub label: String,
    pub value: String,
}

/// A masked text's candidates, shared by every query of that text.
pub type Candidates = std::sync::Arc<Vec<std::sync::Arc<Candidate>>>;

/// Analyses by masked text, kept between cycles.
#[derive(Default)]
pub struct Shapes {
    cache: HashMap<String, Candidates>,
}

impl Shapes {
    /// The ways `query` can be shared, with its masked form.
    pub fn of(&mut self, query: &str) -> Option<(Masked, Candidates)> {
        let masked = mask(query)?;
        if self.cache.len() >= CACHE_ENTRIES && !self.cache.contains_key(&masked.text) {
            self.cache.clear();
        }
        let candidates = self
            .cache
            .entry(masked.text.clone())
            .or_insert_with(|| {
                std::sync::Arc::new(
                    analyse(&masked.text)
                        .into_iter()
                        .map(std::sync::Arc::new)
                        .collect(),
                )
            })
            .clone();
        Some((masked, candidates))
    }
}

/// For one candidate of a masked query: the share, if its literals on the
/// label agree and are plain.
pub fn share(masked: &Masked, c: &Candidate) -> Option<Share> {
    let mut at = c.positions.iter().map(|&i| masked.literals.get(i));
    let (raw, value) = at.next()??;
    let value = value.as_ref()?;
    if value.is_empty() || !at.all(|l| l.map(|(r, _)| r) == Some(raw)) {
        return None;
    }
    let mut key = format!("{}\u{0}{}", masked.text, c.label);
    for (i, (raw, _)) in masked.literals.iter().enumerate() {
        if !c.positions.contains(&i) {
            key.push('\u{0}');
            key.push_str(raw);
        }
    }
    Some(Share {
        key,
        label: c.label.clone(),
        value: value.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(queries: &[&str]) -> Option<(String, Vec<String>)> {
        let mut shapes = Shapes::default();
        let mut key = None;
        let mut values = vec![];
        let mut first = None;
        for q in queries {
            let (masked, cands) = shapes.of(q)?;
            let c = cands.first()?.clone();
            let s = share(&masked, &c)?;
            if *key.get_or_insert(s.key.clone()) != s.key {
                return None;
            }
            values.push(s.value);
            first.get_or_insert((masked, c));
        }
        let (masked, c) = first?;
        let vs: Vec<&str> = values.iter().map(String::as_str).collect();
        let q = instantiate(&c, &masked, &vs);
        assert!(parser::parse(&q).is_ok(), "{q}");
        // The expression inside the two label_replace calls.
        let inner = q
            .strip_prefix("label_replace(label_replace(")?
            .split(&format!(", \"{SHARE_LABEL}\""))
            .next()?;
        Some((inner.to_string(), values))
    }

    #[test]
    fn sloth_style_queries_share_one_query() {
        let (q, values) = shared(&[
            r#"sum(rate(http_requests_total{service="checkout",code=~"(5..|429)"}[30s:15s]))"#,
            r#"sum(rate(http_requests_total{service="cart",code=~"(5..|429)"}[30s:15s]))"#,
        ])
        .unwrap();
        assert_eq!(values, ["checkout", "cart"]);
        assert_eq!(
            q,
            r#"sum by (service) (rate(http_requests_total{code=~"(5..|429)",service=~"checkout|cart"}[30s:15s]))"#
        );
        assert!(parser::parse(&q).is_ok());
    }

    #[test]
    fn every_tiling_spelling_can_be_shared() {
        use crate::plan::Semantics;
        use crate::plan::{with_range, with_tile};
        let template = |s: &str| format!("sum(rate(x{{service=\"{s}\"}}[{{{{.window}}}}]))");
        for semantics in [
            Semantics::Closed,
            Semantics::LeftOpen,
            Semantics::LastBefore,
        ] {
            for spell in [with_tile, with_range] {
                let (a, b) = (
                    spell(&template("a"), 300, semantics),
                    spell(&template("b"), 300, semantics),
                );
                let (q, _) = shared(&[&a, &b]).unwrap_or_else(|| panic!("{a} not shared"));
                let again = parser::parse(&q).unwrap().to_string();
                assert!(again.contains("service=~\"a|b\""), "{semantics:?}: {q}");
                // The window is the one asked for.
                let window = |q: &str| {
                    q.split('[')
                        .nth(1)
                        .map(|r| r.split(']').next().map(str::to_owned))
                };
                assert_eq!(window(&q), window(&a), "{q} vs {a}");
            }
        }
    }

    #[test]
    fn ratios_and_groupings_keep_their_shape() {
        let (q, _) = shared(&[
            r#"sum by (route) (rate(errors_total{job="a"}[5m])) / sum by (route) (rate(requests_total{job="a"}[5m]))"#,
            r#"sum by (route) (rate(errors_total{job="b"}[5m])) / sum by (route) (rate(requests_total{job="b"}[5m]))"#,
        ])
        .unwrap();
        assert_eq!(
            q,
            r#"sum by (route, job) (rate(errors_total{job=~"a|b"}[5m])) / sum by (route, job) (rate(requests_total{job=~"a|b"}[5m]))"#
        );
    }

    #[test]
    fn values_are_quoted_for_the_regular_expression() {
        let (q, values) = shared(&[
            r#"sum(rate(x{path="/a.b"}[1m]))"#,
            r#"sum(rate(x{path='/c+d|e'}[1m]))"#,
        ])
        .unwrap();
        assert_eq!(values, ["/a.b", "/c+d|e"]);
        assert_eq!(
            q,
            r#"sum by (path) (rate(x{path=~"/a\\.b|/c\\+d\\|e"}[1m]))"#
        );
    }

    #[test]
    fn what_the_rewrite_would_change_is_not_shared() {
        for q in [
            // Unaggregated: the answer carries the label already.
            r#"rate(x{service="a"}[5m])"#,
            // `without` keeps the label; topk and quantile pick across it.
            r#"sum without (instance) (rate(x{service="a"}[5m]))"#,
            r#"topk(3, rate(x{service="a"}[5m]))"#,
            // Already grouped by the label.
            r#"sum by (service) (rate(x{service="a"}[5m]))"#,
            // A selector without the label: its total is not per value.
            r#"sum(rate(x{service="a"}[5m])) / sum(rate(y[5m]))"#,
            // Matching on chosen labels, functions that rename or invent.
            r#"sum(rate(x{service="a"}[5m])) / on () sum(rate(y{service="a"}[5m]))"#,
            r#"sum(label_replace(rate(x{service="a"}[5m]), "service", "b", "", ""))"#,
            r#"sum(rate(x{service="a"}[5m])) or vector(0)"#,
            r#"sum(absent(x{service="a"}))"#,
            // Regular-expression and negative matchers are not one value.
            r#"sum(rate(x{service=~"a"}[5m]))"#,
            r#"sum(rate(x{service!="a"}[5m]))"#,
            // Comments, escapes, and what does not parse.
            "sum(rate(x{service=\"a\"}[5m])) # c",
            r#"sum(rate(x{service="a\"b"}[5m]))"#,
            r#"sum(rate(x{service="a"}[5m] anchored))"#,
        ] {
            let Some((masked, cands)) = Shapes::default().of(q) else {
                continue;
            };
            let shares: Vec<_> = cands.iter().filter_map(|c| share(&masked, c)).collect();
            assert!(shares.is_empty(), "{q}: {shares:?}");
        }
    }

    #[test]
    fn the_label_must_hold_one_value_in_every_selector() {
        let q = r#"sum(rate(x{service="a"}[5m])) / sum(rate(y{service="b"}[5m]))"#;
        let (masked, cands) = Shapes::default().of(q).unwrap();
        assert_eq!(cands.len(), 1);
        assert_eq!(share(&masked, &cands[0]), None);
    }

    #[test]
    fn masking_keeps_every_literal_as_written() {
        let m = mask(r#"x{a="1",b='2',c=`3\`} "#).unwrap();
        assert_eq!(
            m.text,
            r#"x{a="__errbudget_str_0__",b="__errbudget_str_1__",c="__errbudget_str_2__"} "#
        );
        assert_eq!(m.literals[1], ("'2'".to_string(), Some("2".to_string())));
        assert_eq!(m.literals[2].1, None, "a backslash is not plain");
        assert_eq!(mask(r#"x{a="1}"#), None);
    }
}
