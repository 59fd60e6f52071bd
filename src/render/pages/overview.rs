//! `/`: one row per SLO (per group of a grouped SLO), worst first, each
//! linking to its page. On a narrow screen the rows become cards (CSS only).

use crate::state::{Instance, Snapshot, Status};
use crate::time::rfc3339;

use super::{
    badness, budget_bar, budget_time, coverage_text, document, escape, firing_pills, freeze_pill,
    labels_text, rate, slo_path,
};

pub fn overview(s: &Snapshot, prefix: &str) -> String {
    let mut rows: Vec<&Instance> = s.instances.iter().collect();
    rows.sort_by(|a, b| {
        let (ra, va) = badness(a);
        let (rb, vb) = badness(b);
        ra.cmp(&rb).then(va.total_cmp(&vb))
    });
    let firing = rows
        .iter()
        .filter(|i| {
            i.figures
                .as_ref()
                .is_some_and(|f| f.alerts.iter().any(|a| a.firing))
        })
        .count();
    let frozen = rows
        .iter()
        .filter(|i| i.figures.as_ref().is_some_and(|f| f.release_frozen))
        .count();
    let failing = rows.iter().filter(|i| i.status == Status::Error).count();
    let at = s
        .evaluated_at
        .map(rfc3339)
        .unwrap_or_else(|| "never".into());

    let mut body = format!(
        "<h1>errbudget</h1>\n<p class=\"muted small\">Last evaluation: <time>{}</time></p>\n\
<p>{} SLOs · <span class=\"{}\">{} with firing alerts</span> · {} release-frozen · {} failing evaluation</p>\n",
        escape(&at),
        rows.len(),
        if firing > 0 { "bad" } else { "ok" },
        firing,
        frozen,
        failing
    );
    if rows.is_empty() {
        body.push_str("<p class=\"note\">No SLO evaluated yet.</p>\n");
        body.push_str(&footer(prefix));
        return document("errbudget", &body);
    }
    body.push_str(
        "<table class=\"slos\"><thead><tr><th>SLO</th><th>Budget left</th><th>Burn rate by window</th>\
<th>Firing alerts</th><th>Releases</th><th>Evaluated</th></tr></thead><tbody>\n",
    );
    for i in rows {
        body.push_str(&row(i, prefix));
    }
    body.push_str("</tbody></table>\n");
    body.push_str(&footer(prefix));
    document("errbudget", &body)
}

/// What a monitoring engineer looks for on an exporter's landing page: the
/// version and the machine-readable endpoints.
fn footer(prefix: &str) -> String {
    let p = escape(prefix);
    format!(
        "<p class=\"small muted\">errbudget {} · <a href=\"{p}/metrics\">/metrics</a> · \
<a href=\"{p}/api/v1/slos\">/api/v1/slos</a> (JSON) · <a href=\"{p}/-/healthy\">/-/healthy</a> · \
<a href=\"{p}/-/ready\">/-/ready</a></p>\n",
        // The same facts as `errbudget_build_info` and `--version`.
        escape(&crate::version::short())
    )
}

fn row(i: &Instance, prefix: &str) -> String {
    let slo = &i.slo;
    let mut name = format!(
        "<a href=\"{}{}\"><b>{}</b> / {}</a>",
        escape(prefix),
        escape(&slo_path(&slo.service, &slo.name)),
        escape(&slo.service),
        escape(&slo.name)
    );
    if !i.group.is_empty() {
        name.push_str(&format!(
            "<br><span class=\"small muted\">{}</span>",
            labels_text(&i.group)
        ));
    }
    if !slo.description.is_empty() {
        name.push_str(&format!(
            "<br><span class=\"small muted\">{}</span>",
            escape(&slo.description)
        ));
    }
    let evaluated = match (&i.status, i.last_success) {
        (Status::Error, Some(t)) => format!(
            "<span class=\"bad\">failing</span> <span class=\"small\">figures from {}</span>",
            escape(&rfc3339(t))
        ),
        (Status::Error, None) => "<span class=\"bad\">failing, never evaluated</span>".into(),
        (Status::NoData, Some(t)) => format!(
            "<span class=\"warn\">no data</span> <span class=\"small\">{}</span>",
            escape(&rfc3339(t))
        ),
        (_, Some(t)) => format!("<span class=\"small\">{}</span>", escape(&rfc3339(t))),
        (_, None) => "-".into(),
    };
    let (bar, rates, firing, freeze) = match &i.figures {
        Some(f) => {
            let rates = f
                .windows
                .iter()
                .map(|w| {
                    format!(
                        "{}&nbsp;{}",
                        escape(&w.window.to_string()),
                        escape(&rate(w.burn_rate))
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ");
            let firing = firing_pills(f);
            let mut bar = budget_bar(f.remaining_ratio);
            if let Some(c) = coverage_text(i, f) {
                bar.push_str(&format!(
                    "<span class=\"small warn\">{} · {} left</span>",
                    escape(&c),
                    escape(&budget_time(i, f))
                ));
            }
            (
                bar,
                rates,
                if firing.is_empty() {
                    "<span class=\"muted\">none</span>".into()
                } else {
                    firing
                },
                freeze_pill(f).to_string(),
            )
        }
        None => (
            "-".into(),
            "-".into(),
            "<span class=\"muted\">unknown</span>".into(),
            "-".into(),
        ),
    };
    format!(
        "<tr><td>{name}</td><td data-label=\"Budget left\">{bar}</td>\
<td data-label=\"Burn rates\" class=\"rates\">{rates}</td><td data-label=\"Firing\">{firing}</td>\
<td data-label=\"Releases\">{freeze}</td><td data-label=\"Evaluated\">{evaluated}</td></tr>\n"
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::test_slo;
    use crate::render::pages::slo::tests::figures;
    use crate::state::LabelSet;

    fn instance(service: &str, name: &str, remaining: f64, firing: bool) -> Instance {
        Instance {
            slo: Arc::new(test_slo(service, name, 99.9, 30)),
            group: LabelSet::new(),
            status: Status::Ok,
            error: None,
            figures: Some(figures(remaining, firing)),
            last_success: Some(1_000),
            failing_since: None,
        }
    }

    #[test]
    fn lists_worst_first_and_links_each_row() {
        let s = Snapshot {
            evaluated_at: Some(1_000),
            instances: vec![
                instance("a", "fine", 0.9, false),
                instance("b", "low", 0.1, false),
                instance("c", "burning", 0.8, true),
            ],
        };
        let html = overview(&s, "");
        let pos = |needle: &str| html.find(needle).unwrap_or_else(|| panic!("{needle}"));
        assert!(pos("/slo/c/burning") < pos("/slo/b/low"));
        assert!(pos("/slo/b/low") < pos("/slo/a/fine"));
        assert!(html.contains("<span class=\"pill page\">page 1h/5m</span>"));
        assert!(html.contains("1 with firing alerts"));
        assert!(html.contains("name=\"viewport\""));
        for link in ["/metrics", "/api/v1/slos", "/-/healthy", "/-/ready"] {
            assert!(html.contains(&format!("href=\"{link}\"")), "{link}");
        }
        let build: std::collections::BTreeMap<_, _> =
            crate::version::labels().into_iter().collect();
        let rev: String = build["revision"].chars().take(12).collect();
        assert!(
            html.contains(&format!("errbudget {} ({rev})", build["version"])),
            "{html}"
        );
    }

    #[test]
    fn escapes_everything_from_specs() {
        let mut i = instance(
            "<script>alert(1)</script>",
            "x\"onmouseover=\"y",
            0.5,
            false,
        );
        let mut slo = (*i.slo).clone();
        slo.description = "<img src=x onerror=alert(1)>".into();
        i.slo = Arc::new(slo);
        i.group.insert("route".into(), "</td><script>".into());
        let html = overview(
            &Snapshot {
                evaluated_at: Some(1),
                instances: vec![i],
            },
            "",
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("\"onmouseover"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains(
            "href=\"/slo/%3Cscript%3Ealert%281%29%3C%2Fscript%3E/x%22onmouseover%3D%22y\""
        ));
    }

    #[test]
    fn says_so_when_nothing_was_evaluated() {
        assert!(overview(&Snapshot::default(), "").contains("No SLO evaluated yet"));
    }
}
