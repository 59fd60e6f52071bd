//! The human status page: `/` lists every SLO, `/slo/{service}/{slo}`
//! shows one in depth. Server-rendered HTML with inline CSS and SVG, no
//! script and nothing fetched from elsewhere, readable on a phone. Renders
//! a snapshot (and, for one SLO, its trend); queries nothing itself.
//! Everything that comes from specs or Prometheus goes through [`escape`].

mod overview;
mod slo;
mod svg;

pub use overview::overview;
pub use slo::{not_found, slo_page};

#[cfg(test)]
pub(crate) use slo::tests::figures as test_figures;

use crate::model::Severity;
use crate::state::{Figures, Instance};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page of one SLO, relative to the site root: the same path as the
/// `generatorURL` of its alerts.
pub fn slo_path(service: &str, slo: &str) -> String {
    crate::model::slo_url("", service, slo)
}

const CSS: &str = "\
:root{--ok:#1a7f37;--warn:#b35900;--bad:#c62828;--muted:#666;--line:#ddd}\
*{box-sizing:border-box}\
body{font:15px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:.8em;color:#111;background:#fff;max-width:70em}\
h1{font-size:1.3em;margin:.2em 0}h2{font-size:1.1em;margin:1.2em 0 .4em}\
a{color:#0b57d0}.muted{color:var(--muted)}.small{font-size:.85em}\
table{border-collapse:collapse;width:100%}\
th,td{padding:.35em .5em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}\
th{font-size:.85em;color:var(--muted);font-weight:600}\
.bar{position:relative;height:1.1em;background:#eee;border-radius:3px;min-width:6em;overflow:hidden}\
.bar>span{position:absolute;left:0;top:0;bottom:0}\
.bar>b{position:relative;font-size:.8em;padding-left:.3em;font-weight:600}\
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}\
.bg-ok{background:#8fd19e}.bg-warn{background:#ffcc80}.bg-bad{background:#ef9a9a}\
.pill{display:inline-block;padding:0 .45em;border-radius:1em;font-size:.8em;font-weight:600;margin:0 .2em .2em 0;white-space:nowrap}\
.pill.page{background:var(--bad);color:#fff}.pill.ticket{background:var(--warn);color:#fff}\
.pill.frozen{background:#37474f;color:#fff}.pill.open{background:#e8f5e9;color:var(--ok)}\
.rates{font-variant-numeric:tabular-nums;font-size:.85em;white-space:nowrap}\
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(9em,1fr));gap:.5em}\
.grid>div{border:1px solid var(--line);border-radius:4px;padding:.4em}\
.grid>div>b{display:block;font-size:1.1em}\
svg{width:100%;height:auto;display:block}\
.note{background:#fff8e1;border:1px solid #ffcc80;padding:.5em;border-radius:4px}\
@media (max-width:600px){\
table.slos thead{display:none}\
table.slos tr{display:block;border-bottom:2px solid var(--line);padding:.3em 0}\
table.slos td{display:block;border:0;padding:.15em 0}\
table.slos td.rates{white-space:normal}\
table.slos td[data-label]::before{content:attr(data-label)\": \";color:var(--muted);font-size:.85em}\
}";

/// A whole document around `body`.
fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{}</title><style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// Colour class of a remaining-budget ratio.
fn budget_class(remaining: f64) -> &'static str {
    if remaining < 0.0 {
        "bad"
    } else if remaining < 0.25 {
        "warn"
    } else {
        "ok"
    }
}

/// A horizontal bar of the remaining budget with the figure on it.
fn budget_bar(remaining: f64) -> String {
    let width = (remaining.clamp(0.0, 1.0) * 100.0).round();
    format!(
        "<div class=\"bar\" role=\"img\" aria-label=\"budget left {label}\">\
<span class=\"bg-{class}\" style=\"width:{width}%\"></span><b>{label}</b></div>",
        class = budget_class(remaining),
        label = percent(remaining),
    )
}

fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "-".into();
    }
    format!("{:.1}%", ratio * 100.0)
}

fn rate(r: f64) -> String {
    if !r.is_finite() {
        return "-".into();
    }
    if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

/// A span of seconds for people: `3d4h`, `2h05m`, `12m`.
fn human_secs(secs: f64) -> String {
    crate::time::human(secs).unwrap_or_else(|| "never".into())
}

/// `period holds 10m of 30d` while the backend holds less than the
/// period; `None` once the whole period is covered.
fn coverage_text(i: &Instance, f: &Figures) -> Option<String> {
    f.coverage.is_partial().then(|| {
        format!(
            "period holds {} of {}",
            human_secs(f.coverage.seconds),
            covered_of(i, f)
        )
    })
}

/// What coverage is measured against: the rolling period, or the part of
/// the calendar period that has passed.
pub(crate) fn covered_of(i: &Instance, f: &Figures) -> String {
    match &i.slo.calendar {
        None => crate::time::format(i.slo.period),
        Some(_) if f.coverage.ratio > 0.0 => format!(
            "{} so far",
            human_secs(f.coverage.seconds / f.coverage.ratio)
        ),
        Some(_) => "the period so far".into(),
    }
}

/// The budget left as time of full failure: `42m of 43m` while coverage is
/// partial (only failure seen in the covered time is counted), `overspent
/// by 2h` once it is gone.
fn budget_time(i: &Instance, f: &Figures) -> String {
    if f.remaining_seconds < 0.0 {
        format!("overspent by {}", human_secs(-f.remaining_seconds))
    } else if f.coverage.is_partial() {
        format!(
            "{} of {}",
            human_secs(f.remaining_seconds),
            human_secs(i.budget_seconds())
        )
    } else {
        human_secs(f.remaining_seconds)
    }
}

/// Pills for the firing alerts of one instance (none: empty string).
fn firing_pills(f: &Figures) -> String {
    f.alerts
        .iter()
        .filter(|a| a.firing)
        .map(|a| {
            let sev = a.effective_severity().as_str();
            format!(
                "<span class=\"pill {sev}\">{sev} {}/{}</span>",
                escape(&a.long.to_string()),
                escape(&a.short.to_string())
            )
        })
        .collect()
}

fn freeze_pill(f: &Figures) -> &'static str {
    if f.release_frozen {
        "<span class=\"pill frozen\">frozen</span>"
    } else {
        "<span class=\"pill open\">open</span>"
    }
}

/// How bad an instance is, smallest first: unknown figures, then firing
/// pages, then firing tickets, then the least budget left.
fn badness(i: &Instance) -> (u8, f64) {
    let Some(f) = &i.figures else {
        return (0, f64::NEG_INFINITY);
    };
    let firing = |s: Severity| {
        f.alerts
            .iter()
            .any(|a| a.firing && a.effective_severity() == s)
    };
    let rank = if firing(Severity::Page) {
        1
    } else if firing(Severity::Ticket) {
        2
    } else {
        3
    };
    (rank, f.remaining_ratio)
}

/// `k=v, k=v` of a label set, escaped.
fn labels_text(labels: &crate::state::LabelSet) -> String {
    escape(
        &labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

fn before_body_end(page: &mut String, section: &str) {
    match page.rfind("</body>") {
        Some(i) => page.insert_str(i, section),
        None => page.push_str(section),
    }
}

/// The maintenance windows told at run time for one SLO (the spec's own
/// are listed with its figures), put before the end of `page`'s body.
pub fn told_maintenance(page: &mut String, told: &[crate::records::Maintenance]) {
    if told.is_empty() {
        return;
    }
    let mut t = String::from("<h2>Maintenance told at run time</h2>\n<ul class=\"small\">\n");
    for m in told {
        t.push_str(&format!(
            "<li>{}: {} ({}, {})</li>\n",
            escape(&m.exclusion.reason),
            escape(&m.exclusion.when.to_string()),
            escape(m.source.as_str()),
            escape(&m.by)
        ));
    }
    t.push_str("</ul>\n");
    before_body_end(page, &t);
}

/// The closed calendar periods of one SLO, newest first, as a table put
/// before the end of `page`'s body (nothing without any).
pub fn closed_periods(page: &mut String, closed: &[crate::state::ClosedPeriod]) {
    if closed.is_empty() {
        return;
    }
    let mut t = String::from(
        "<h2>Closed periods</h2>\n<table>\n<tr><th>Period</th><th>Group</th><th>Objective</th><th>Achieved</th><th>Budget left</th><th>Maintenance</th></tr>\n",
    );
    for c in closed.iter().rev() {
        t.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:.3}%</td><td>{:.3}%</td><td>{:.1}%</td><td>{}</td></tr>\n",
            escape(&c.name),
            escape(&labels_text(&c.group)),
            c.objective * 100.0,
            (1.0 - c.period_error_ratio) * 100.0,
            c.remaining_ratio * 100.0,
            escape(&human_secs(c.excluded_seconds)),
        ));
    }
    t.push_str("</table>\n<p class=\"small muted\">As the last evaluation in each period saw it; <code>errbudget report --period NAME</code> recomputes one from the backend.</p>\n");
    before_body_end(page, &t);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html_and_attribute_characters() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn slo_paths_are_percent_encoded_like_generator_urls() {
        assert_eq!(slo_path("check out", "a/b"), "/slo/check%20out/a%2Fb");
        assert_eq!(slo_path("<x>", "\""), "/slo/%3Cx%3E/%22");
    }

    #[test]
    fn formats_figures_for_people() {
        assert_eq!(percent(0.1234), "12.3%");
        assert_eq!(percent(f64::NAN), "-");
        assert_eq!(rate(0.5), "0.50");
        assert_eq!(rate(14.4), "14.4");
        assert_eq!(rate(400.0), "400");
        assert_eq!(human_secs(f64::INFINITY), "never");
        assert_eq!(human_secs(3_600.0 * 26.0), "1d2h");
        assert_eq!(human_secs(125.0 * 60.0), "2h05m");
        assert_eq!(budget_class(-0.1), "bad");
        assert_eq!(budget_class(0.1), "warn");
        assert_eq!(budget_class(0.9), "ok");
    }
}
