//! Inline SVG line charts: a few series over time, with horizontal
//! reference lines. Sized by a viewBox so they scale to the screen; no
//! script, no fonts, no external references.

use super::escape;
use crate::time::rfc3339;

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

pub struct Line<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub dashed: bool,
    pub points: &'a [(i64, f64)],
}

/// A horizontal reference line (a threshold, the objective).
pub struct Rule<'a> {
    pub label: &'a str,
    pub color: &'a str,
    pub value: f64,
}

/// A vertical mark at a time (a deploy), labelled at the top.
pub struct Mark<'a> {
    pub at: i64,
    pub label: &'a str,
    pub color: &'a str,
}

/// A chart of `lines` with `rules`, y values written by `fmt`. `title` is
/// for screen readers.
pub fn chart(title: &str, lines: &[Line], rules: &[Rule], fmt: fn(f64) -> String) -> String {
    chart_with_marks(title, lines, rules, &[], fmt)
}

/// [`chart`] with vertical `marks`; those outside the lines' time span
/// are left out.
pub fn chart_with_marks(
    title: &str,
    lines: &[Line],
    rules: &[Rule],
    marks: &[Mark],
    fmt: fn(f64) -> String,
) -> String {
    let finite = |v: f64| v.is_finite();
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let (Some(x0), Some(x1)) = (xs.clone().min(), xs.max()) else {
        return "<p class=\"muted\">No points to draw.</p>".into();
    };
    let ys = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .chain(rules.iter().map(|r| r.value))
        .filter(|v| finite(*v));
    let (mut y0, mut y1) = ys.fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if y1 - y0 < 1e-12 {
        y1 = y0 + 1.0;
    }
    let pad = (y1 - y0) * 0.05;
    y1 += pad;
    if y0 < 0.0 {
        y0 -= pad;
    }
    let span_x = (x1 - x0).max(1) as f64;
    let px = |t: i64| LEFT + (t - x0) as f64 / span_x * (W - LEFT - RIGHT);
    let py = |v: f64| TOP + (y1 - v) / (y1 - y0) * (H - TOP - BOTTOM);

    let mut out = format!(
        "<svg viewBox=\"0 0 {W} {H}\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
aria-label=\"{}\" font-size=\"11\" font-family=\"sans-serif\">",
        escape(title)
    );
    // Grid and y labels: five evenly spaced values.
    for k in 0..=4 {
        let v = y0 + (y1 - y0) * k as f64 / 4.0;
        let y = py(v);
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e5e5e5\"/>\
<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#666\">{}</text>",
            W - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            escape(&fmt(v))
        ));
    }
    if y0 < 0.0 {
        let y = py(0.0);
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#999\"/>",
            W - RIGHT
        ));
    }
    // Time labels at both ends (dates; the span is shown in the caption).
    let date = |t: i64| {
        rfc3339(t)
            .chars()
            .take(16)
            .collect::<String>()
            .replace('T', " ")
    };
    out.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"{}\" fill=\"#666\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#666\">{}</text>",
        H - 6.0,
        escape(&date(x0)),
        W - RIGHT,
        H - 6.0,
        escape(&date(x1))
    ));
    for r in rules.iter().filter(|r| finite(r.value)) {
        let y = py(r.value);
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-dasharray=\"2 3\"/>\
<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{}\">{}</text>",
            W - RIGHT,
            escape(r.color),
            W - RIGHT - 2.0,
            y - 3.0,
            escape(r.color),
            escape(r.label)
        ));
    }
    for m in marks.iter().filter(|m| (x0..=x1).contains(&m.at)) {
        let x = px(m.at);
        out.push_str(&format!(
            "<g class=\"mark\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"{}\" stroke-dasharray=\"1 2\"/>\
<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\" font-size=\"9\">{}</text><title>{} at {}</title></g>",
            H - BOTTOM,
            escape(m.color),
            x + 2.0,
            TOP + 9.0,
            escape(m.color),
            escape(m.label),
            escape(m.label),
            escape(&rfc3339(m.at))
        ));
    }
    for l in lines {
        let mut d = String::new();
        let mut pen_down = false;
        for &(t, v) in l.points {
            if !finite(v) {
                pen_down = false;
                continue;
            }
            d.push_str(&format!(
                "{}{:.1},{:.1} ",
                if pen_down { "L" } else { "M" },
                px(t),
                py(v)
            ));
            pen_down = true;
        }
        out.push_str(&format!(
            "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{}><title>{}</title></path>",
            d.trim_end(),
            escape(l.color),
            if l.dashed { 1.5 } else { 2.0 },
            if l.dashed {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            },
            escape(l.label)
        ));
    }
    out.push_str("</svg>");
    // The legend in HTML, so it wraps on a phone.
    out.push_str("<p class=\"small\">");
    for l in lines {
        out.push_str(&format!(
            "<span style=\"color:{}\">{} {}</span> &nbsp;",
            escape(l.color),
            if l.dashed { "╌" } else { "━" },
            escape(l.label)
        ));
    }
    out.push_str("</p>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(v: f64) -> String {
        format!("{:.0}%", v * 100.0)
    }

    #[test]
    fn draws_paths_with_gaps_and_escaped_labels() {
        let pts = [(0, 1.0), (60, f64::NAN), (120, 0.5), (180, 0.25)];
        let svg = chart(
            "t<",
            &[Line {
                label: "<b>",
                color: "#000",
                dashed: false,
                points: &pts,
            }],
            &[Rule {
                label: "x",
                color: "red",
                value: 0.9,
            }],
            pct,
        );
        assert!(svg.starts_with("<svg viewBox=\"0 0 640 220\""));
        assert!(svg.contains("aria-label=\"t&lt;\""));
        assert!(!svg.contains("<b>"));
        // One segment before the gap, a new one after it.
        assert_eq!(
            svg.matches(" M").count() + usize::from(svg.contains("d=\"M")),
            2
        );
        assert!(svg.contains("stroke-dasharray=\"2 3\""));
    }

    #[test]
    fn empty_input_says_so() {
        assert!(chart("t", &[], &[], pct).contains("No points"));
    }
}
