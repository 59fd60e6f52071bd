//! `errbudget convert`: validated SLOs back out as errbudget's own spec
//! format (Sloth `prometheus/v1` plus errbudget's extensions), whatever
//! format they were read from. Everything a reader derived (Pyrra's window
//! pairs, an OpenSLO policy's conditions, a catalogue's factors) is written
//! out explicitly, so that loading the output gives the same model and the
//! diff against the original can be reviewed. Pure: models in, text out.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::exclusion::When;
use crate::model::{default_policy, AlertWindow, Sli, Slo};
use crate::time;

/// One `prometheus/v1` document per service, in the order services first
/// appear, each SLO preceded by a comment saying where it was read.
pub fn render(slos: &[Slo]) -> String {
    let mut services: Vec<&str> = Vec::new();
    for s in slos {
        if !services.contains(&s.service.as_str()) {
            services.push(&s.service);
        }
    }
    let mut out = String::new();
    for (i, service) in services.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str("version: \"prometheus/v1\"\n");
        let _ = writeln!(out, "service: {}", scalar(service));
        out.push_str("slos:\n");
        for s in slos.iter().filter(|s| s.service == *service) {
            slo(&mut out, s);
        }
    }
    out
}

/// The service's windows are written into each of its SLOs, in order.
fn exclusions(out: &mut String, s: &Slo) {
    if s.exclusions.is_empty() {
        return;
    }
    out.push_str("    exclusions:\n");
    for e in &s.exclusions {
        let _ = writeln!(out, "      - reason: {}", scalar(&e.reason));
        match &e.when {
            When::Once { start, end } => {
                let _ = writeln!(out, "        start: {}", time::rfc3339(*start));
                let _ = writeln!(out, "        end: {}", time::rfc3339(*end));
            }
            When::Recurring {
                rule,
                tz,
                dtstart,
                duration,
            } => {
                let _ = writeln!(out, "        rrule: {}", scalar(rule));
                let _ = writeln!(
                    out,
                    "        duration: {}",
                    time::format(std::time::Duration::from_secs((*duration).max(0) as u64))
                );
                let _ = writeln!(out, "        time_zone: {}", scalar(tz.name()));
                let _ = writeln!(
                    out,
                    "        start: {}",
                    dtstart.format("%Y-%m-%dT%H:%M:%S")
                );
            }
        }
    }
}

fn slo(out: &mut String, s: &Slo) {
    let _ = writeln!(out, "  # from {}", s.origin);
    let _ = writeln!(out, "  - name: {}", scalar(&s.name));
    let _ = writeln!(out, "    objective: {}", s.objective.percent());
    if !s.description.is_empty() {
        let _ = writeln!(out, "    description: {}", block(&s.description, 6));
    }
    match &s.calendar {
        None => {
            let _ = writeln!(out, "    period: {}", time::format(s.period));
        }
        Some(c) => {
            let _ = writeln!(
                out,
                "    period:\n      calendar: {}\n      time_zone: {}",
                c.unit.as_str(),
                scalar(c.tz.name())
            );
        }
    }
    exclusions(out, s);
    map(out, 4, "labels", &s.labels);
    out.push_str("    sli:\n");
    match &s.sli {
        Sli::Events {
            error_query,
            total_query,
        } => {
            out.push_str("      events:\n");
            let _ = writeln!(out, "        error_query: {}", block(error_query, 10));
            let _ = writeln!(out, "        total_query: {}", block(total_query, 10));
        }
        Sli::Raw { error_ratio_query } => {
            out.push_str("      raw:\n");
            let _ = writeln!(
                out,
                "        error_ratio_query: {}",
                block(error_ratio_query, 10)
            );
        }
        Sli::Latency {
            metric,
            selector,
            threshold,
        } => {
            out.push_str("      latency:\n");
            let _ = writeln!(out, "        metric: {}", scalar(metric));
            if !selector.is_empty() {
                let _ = writeln!(out, "        selector: {}", scalar(selector));
            }
            let _ = writeln!(out, "        threshold: {threshold}");
        }
    }
    alerting(out, s);
    let rules = &s.override_rules;
    if s.release_freeze_below != 0.0 || *rules != Default::default() {
        out.push_str("    policy:\n");
    }
    if s.release_freeze_below != 0.0 {
        let _ = writeln!(
            out,
            "      release_freeze_below: {}",
            s.release_freeze_below
        );
    }
    if *rules != Default::default() {
        out.push_str("      override:\n");
        if let Some(users) = &rules.allowed_users {
            let users: Vec<String> = users.iter().map(|u| scalar(u)).collect();
            let _ = writeln!(out, "        allowed_users: [{}]", users.join(", "));
        }
        if let Some(d) = rules.max_duration {
            let _ = writeln!(out, "        max_duration: {}", crate::time::format(d));
        }
    }
}

fn alerting(out: &mut String, s: &Slo) {
    let a = &s.alerting;
    let mut body = String::new();
    if a.name != "ErrorBudgetBurn" {
        let _ = writeln!(body, "      name: {}", scalar(&a.name));
    }
    map(&mut body, 6, "labels", &a.labels);
    map(&mut body, 6, "annotations", &a.annotations);
    for (key, enabled, labels, annotations) in [
        (
            "page_alert",
            a.page_enabled,
            &a.page_labels,
            &a.page_annotations,
        ),
        (
            "ticket_alert",
            a.ticket_enabled,
            &a.ticket_labels,
            &a.ticket_annotations,
        ),
    ] {
        let mut inner = String::new();
        if !enabled {
            inner.push_str("        disable: true\n");
        }
        map(&mut inner, 8, "labels", labels);
        map(&mut inner, 8, "annotations", annotations);
        if !inner.is_empty() {
            let _ = writeln!(body, "      {key}:");
            body.push_str(&inner);
        }
    }
    // The default policy is what an absent `windows` means; anything else
    // (a catalogue, Pyrra's pairs, OpenSLO conditions) is written out.
    if a.windows != default_policy(s.period) {
        body.push_str("      windows:\n");
        for w in &a.windows {
            window(&mut body, w);
        }
    }
    if !body.is_empty() {
        out.push_str("    alerting:\n");
        out.push_str(&body);
    }
}

fn window(out: &mut String, w: &AlertWindow) {
    let _ = write!(
        out,
        "        - {{severity: {}, long: {}, short: {}, factor: {}",
        w.severity.as_str(),
        w.long,
        w.short,
        w.factor
    );
    if let Some(m) = w.min_bad_events {
        let _ = write!(out, ", min_bad_events: {m}");
    }
    out.push_str("}\n");
}

fn map(out: &mut String, indent: usize, key: &str, m: &BTreeMap<String, String>) {
    if m.is_empty() {
        return;
    }
    let pad = " ".repeat(indent);
    let _ = writeln!(out, "{pad}{key}:");
    for (k, v) in m {
        let _ = writeln!(out, "{pad}  {}: {}", scalar(k), block(v, indent + 4));
    }
}

/// A string as a YAML scalar: plain when YAML would read it back as the
/// same string, else single-quoted, else (control characters) JSON's
/// double-quoted form, which YAML reads too.
fn scalar(s: &str) -> String {
    if s.chars().any(|c| c.is_control()) {
        return serde_json::to_string(s).unwrap_or_default();
    }
    if is_plain(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

/// Multi-line text as a literal block (queries stay readable in a diff),
/// with the chomping indicator that keeps its trailing newlines exact.
fn block(s: &str, indent: usize) -> String {
    let multiline = s.contains('\n');
    let simple = !s.starts_with([' ', '\n'])
        && !s.contains(['\r', '\t'])
        && !s.chars().any(|c| c.is_control() && c != '\n')
        && !s.lines().any(|l| l.ends_with(' '));
    if !multiline || !simple {
        return scalar(s);
    }
    let body = s.trim_end_matches('\n');
    let chomp = match s.len() - body.len() {
        0 => "-",
        1 => "",
        _ => return scalar(s),
    };
    let pad = " ".repeat(indent);
    let mut out = format!("|{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// Plain scalars that read back as the same string: no indicator at the
/// start, no `: ` or ` #`, and nothing YAML would type as a number,
/// boolean or null.
fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`~ ".contains(first) || s.ends_with([' ', ':']) {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.contains(['{', '}', '[', ']', ',']) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    let typed = matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~" | "y" | "n"
    ) || s.parse::<f64>().is_ok()
        || lower.starts_with("0x")
        || lower.starts_with("0o")
        || lower.starts_with(".inf")
        || lower.starts_with("-.inf")
        || lower == ".nan";
    !typed
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn without_origin(mut slos: Vec<Slo>) -> Vec<Slo> {
        for s in &mut slos {
            s.origin = Default::default();
        }
        slos
    }

    /// Every format read, converted, read again: the same model.
    #[test]
    fn every_format_round_trips_to_the_same_model() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/specs");
        let mut inputs: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("valid-"))
            })
            .collect();
        inputs.sort();
        inputs.push(dir.join("openslo-refs"));
        inputs.push(dir.join("catalogue"));
        assert!(inputs.len() >= 10, "{inputs:?}");
        for input in inputs {
            let original = crate::app::load::load_specs(std::slice::from_ref(&input))
                .unwrap_or_else(|e| panic!("{}: {e:?}", input.display()));
            assert!(!original.is_empty(), "{}", input.display());
            let text = render(&original);
            let again = crate::spec::parse_specs("converted.yaml", &text)
                .unwrap_or_else(|e| panic!("{}:\n{text}\n{e:?}", input.display()));
            assert_eq!(
                without_origin(again),
                without_origin(original),
                "{}:\n{text}",
                input.display()
            );
        }
    }

    #[test]
    fn scalars_read_back_as_the_same_string() {
        for s in [
            "checkout",
            "99.9",
            "true",
            "a: b",
            "it's",
            "{job=\"x\"}",
            "- x",
            "#x",
            "tab\there",
            "",
            "null",
            "1e3",
            "https://runbooks.example/a#b",
        ] {
            let doc = format!("k: {}\n", scalar(s));
            let docs = crate::diag::yaml::load(&doc).unwrap();
            let mut cx = crate::diag::yaml::Cx::new("t");
            let m = crate::diag::yaml::Map::open_any(&mut cx, &docs[0], "").unwrap();
            let got = m.get("k").and_then(|f| f.str(&mut cx)).map(|v| v.value);
            let want = (!s.is_empty() && s != "null").then(|| s.to_string());
            if s.is_empty() || s == "null" {
                // Quoted, so a string, not null.
                assert!(scalar(s).starts_with('\''), "{s:?} -> {}", scalar(s));
                continue;
            }
            assert_eq!(got, want, "{doc}");
        }
    }

    #[test]
    fn multiline_queries_become_literal_blocks() {
        assert_eq!(block("a\n/\nb\n", 4), "|\n    a\n    /\n    b");
        assert_eq!(block("a\nb", 2), "|-\n  a\n  b");
        assert_eq!(block("one line", 2), "one line");
        assert_eq!(block(" lead\nx", 2), r#"" lead\nx""#);
    }
}
