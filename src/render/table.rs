//! The fixed-width table `eval` prints for people, from a state snapshot.

use crate::state::{Snapshot, Status};

/// A fixed-width table for people, one row per SLO instance.
pub fn table(s: &Snapshot) -> String {
    let header = [
        "SERVICE",
        "SLO",
        "GROUP",
        "STATUS",
        "OBJECTIVE",
        "BUDGET LEFT",
        "PERIOD HOLDS",
        "BURN 5m",
        "BURN 1h",
        "BURN 6h",
        "BURN 3d",
        "FROZEN",
        "FIRING",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for i in &s.instances {
        let fig = i.figures.as_ref();
        let burn = |w: &str| {
            fig.and_then(|f| f.windows.iter().find(|x| x.window.to_string() == w))
                .map_or("-".to_string(), |x| format!("{:.2}", x.burn_rate))
        };
        let group = i
            .group
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let firing = fig
            .map(|f| {
                f.alerts
                    .iter()
                    .filter(|a| a.firing)
                    .map(|a| format!("{}({}/{})", a.severity.as_str(), a.long, a.short))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let status = match (&i.status, &i.error) {
            (Status::Error, Some(e)) => format!("error: {e}"),
            (st, _) => st.as_str().to_string(),
        };
        rows.push(vec![
            i.slo.service.clone(),
            i.slo.name.clone(),
            if group.is_empty() { "-".into() } else { group },
            status,
            format!("{}%", i.slo.objective.percent()),
            fig.map_or("-".into(), |f| format!("{:.1}%", f.remaining_ratio * 100.0)),
            fig.map_or("-".into(), |f| {
                if f.coverage.is_partial() {
                    format!(
                        "{} of {}",
                        crate::time::human(f.coverage.seconds).unwrap_or_default(),
                        crate::render::pages::covered_of(i, f)
                    )
                } else {
                    "all".into()
                }
            }),
            burn("5m"),
            burn("1h"),
            burn("6h"),
            burn("3d"),
            fig.map_or("-".into(), |f| {
                if f.release_frozen { "yes" } else { "no" }.into()
            }),
            if firing.is_empty() {
                "-".into()
            } else {
                firing
            },
        ]);
    }
    let cols = header.len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(c, v)| format!("{v:<w$}", w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
