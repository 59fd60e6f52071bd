//! The human status page at `/`: server-rendered HTML, no external assets.
//! Everything from specs is escaped.

use crate::state::Snapshot;

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

/// One row per SLO instance, worst remaining budget first.
pub fn overview(s: &Snapshot) -> String {
    let mut rows: Vec<_> = s.instances.iter().collect();
    rows.sort_by(|a, b| {
        let r = |i: &&crate::state::Instance| {
            i.figures
                .as_ref()
                .map_or(f64::NEG_INFINITY, |f| f.remaining_ratio)
        };
        r(a).total_cmp(&r(b))
    });
    let mut body = String::new();
    for i in rows {
        let (left, firing) = match &i.figures {
            Some(f) => (
                format!("{:.1}%", f.remaining_ratio * 100.0),
                f.alerts
                    .iter()
                    .filter(|a| a.firing)
                    .map(|a| format!("{} {}/{}", a.severity.as_str(), a.long, a.short))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => ("-".into(), String::new()),
        };
        let group = i
            .group
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&i.slo.service),
            escape(&i.slo.name),
            escape(&group),
            escape(i.status.as_str()),
            escape(&left),
            escape(&firing),
        ));
    }
    let at = s
        .evaluated_at
        .map(crate::output::rfc3339)
        .unwrap_or_else(|| "never".into());
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>errbudget</title>\
<style>body{{font-family:sans-serif;margin:1em}}table{{border-collapse:collapse}}td,th{{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left}}</style></head>\
<body><h1>errbudget</h1><p>Last evaluation: {}</p><table><tr><th>Service</th><th>SLO</th><th>Group</th><th>Status</th><th>Budget left</th><th>Firing</th></tr>\n{}</table></body></html>\n",
        escape(&at),
        body
    )
}
