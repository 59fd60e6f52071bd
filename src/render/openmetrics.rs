//! The OpenMetrics 1.0 text format for the `prometheus` crate's metric
//! families, which that crate only encodes as text 0.0.4. The differences
//! that matter to a parser: a counter family is named without its
//! `_total` suffix (its samples keep it), help text escapes `"` too,
//! untyped is `unknown`, and the exposition ends with `# EOF`.
//! Spec: <https://github.com/OpenObservability/OpenMetrics/blob/main/specification/OpenMetrics.md>

use std::fmt::Write;

use prometheus::proto::{LabelPair, Metric, MetricFamily, MetricType};

pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The line that ends every OpenMetrics exposition.
pub const EOF: &str = "# EOF\n";

/// Appends `families` to `out`, without the closing [`EOF`] so that
/// several encodings can be joined.
pub fn encode(families: &[MetricFamily], out: &mut String) {
    for mf in families {
        if mf.get_metric().is_empty() {
            continue;
        }
        let name = mf.name();
        let (family, kind) = match mf.get_field_type() {
            MetricType::COUNTER => (name.strip_suffix("_total").unwrap_or(name), "counter"),
            MetricType::GAUGE => (name, "gauge"),
            MetricType::HISTOGRAM => (name, "histogram"),
            MetricType::SUMMARY => (name, "summary"),
            MetricType::UNTYPED => (name, "unknown"),
        };
        let _ = writeln!(out, "# TYPE {family} {kind}");
        if !mf.help().is_empty() {
            let _ = writeln!(out, "# HELP {family} {}", escape(mf.help()));
        }
        for m in mf.get_metric() {
            match mf.get_field_type() {
                MetricType::COUNTER => {
                    sample(out, family, "_total", m.get_label(), None, counter(m));
                }
                MetricType::GAUGE => {
                    sample(
                        out,
                        family,
                        "",
                        m.get_label(),
                        None,
                        m.get_gauge().get_value(),
                    );
                }
                MetricType::UNTYPED => {
                    sample(out, family, "", m.get_label(), None, untyped(m));
                }
                MetricType::HISTOGRAM => {
                    let h = m.get_histogram();
                    let mut saw_inf = false;
                    for b in h.get_bucket() {
                        let le = b.upper_bound();
                        saw_inf |= le == f64::INFINITY;
                        let le = value(le);
                        sample(
                            out,
                            family,
                            "_bucket",
                            m.get_label(),
                            Some(("le", &le)),
                            b.cumulative_count() as f64,
                        );
                    }
                    if !saw_inf {
                        sample(
                            out,
                            family,
                            "_bucket",
                            m.get_label(),
                            Some(("le", "+Inf")),
                            h.get_sample_count() as f64,
                        );
                    }
                    sample(out, family, "_sum", m.get_label(), None, h.get_sample_sum());
                    let count = h.get_sample_count() as f64;
                    sample(out, family, "_count", m.get_label(), None, count);
                }
                MetricType::SUMMARY => {
                    let s = m.get_summary();
                    for q in s.get_quantile() {
                        let quantile = value(q.quantile());
                        sample(
                            out,
                            family,
                            "",
                            m.get_label(),
                            Some(("quantile", &quantile)),
                            q.value(),
                        );
                    }
                    sample(out, family, "_sum", m.get_label(), None, s.sample_sum());
                    let count = s.sample_count() as f64;
                    sample(out, family, "_count", m.get_label(), None, count);
                }
            }
        }
    }
}

fn counter(m: &Metric) -> f64 {
    m.get_counter().get_value()
}

// Only the accessor is deprecated (for its protobuf origin); nothing here
// makes untyped series, but a collector may.
#[allow(deprecated)]
fn untyped(m: &Metric) -> f64 {
    m.get_untyped().get_value()
}

fn sample(
    out: &mut String,
    family: &str,
    suffix: &str,
    labels: &[LabelPair],
    extra: Option<(&str, &str)>,
    v: f64,
) {
    out.push_str(family);
    out.push_str(suffix);
    let pairs = labels.iter().map(|l| (l.name(), l.value())).chain(extra);
    let mut first = true;
    for (k, val) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        out.push_str(k);
        out.push_str("=\"");
        out.push_str(&escape(val));
        out.push('"');
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    write_value(out, v);
    out.push('\n');
}

/// Label values and help text: backslash, double quote and line feed.
/// The text format escapes label values alike.
pub(crate) fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', '"', '\n']) {
        return s.into();
    }
    let mut e = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => e.push_str("\\\\"),
            '"' => e.push_str("\\\""),
            '\n' => e.push_str("\\n"),
            c => e.push(c),
        }
    }
    e.into()
}

fn value(v: f64) -> String {
    let mut s = String::new();
    write_value(&mut s, v);
    s
}

/// A sample value as both formats spell it: `NaN`, `+Inf`, `-Inf`, else
/// Rust's shortest round-trip form (`1`, `0.999`, `1e-7`).
pub(crate) fn write_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Histogram, HistogramOpts, IntCounterVec, Opts, Registry};

    #[test]
    fn counters_drop_total_from_the_family_and_histograms_keep_their_buckets() {
        let r = Registry::new();
        let c = IntCounterVec::new(
            Opts::new("x_requests_total", "Requests \"served\".\nBy code."),
            &["code"],
        )
        .unwrap();
        c.with_label_values(&["a\"b\\c\nd"]).inc_by(3);
        let h =
            Histogram::with_opts(HistogramOpts::new("x_seconds", "Time.").buckets(vec![0.5, 1.0]))
                .unwrap();
        h.observe(0.7);
        r.register(Box::new(c)).unwrap();
        r.register(Box::new(h)).unwrap();
        let mut out = String::new();
        encode(&r.gather(), &mut out);
        assert_eq!(
            out,
            "# TYPE x_requests counter\n\
             # HELP x_requests Requests \\\"served\\\".\\nBy code.\n\
             x_requests_total{code=\"a\\\"b\\\\c\\nd\"} 3\n\
             # TYPE x_seconds histogram\n\
             # HELP x_seconds Time.\n\
             x_seconds_bucket{le=\"0.5\"} 0\n\
             x_seconds_bucket{le=\"1\"} 1\n\
             x_seconds_bucket{le=\"+Inf\"} 1\n\
             x_seconds_sum 0.7\n\
             x_seconds_count 1\n"
        );
    }
}
