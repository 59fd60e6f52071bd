//! Turns a snapshot into alert observations: the labels and annotations
//! docs/interface.md promises on every alert, and the condition of each. Pure.

use crate::alert::decide::{Condition, Observation};
use crate::model::{slo_url, Severity};
use crate::state::{AlertStatus, Figures, Instance, LabelSet, Snapshot, Status};

pub const EVALUATION_FAILING: &str = "ErrorBudgetEvaluationFailing";

pub struct BuildOptions {
    /// Base URL for `generatorURL` links to the SLO's page.
    pub external_url: String,
    /// Seconds of failed evaluations before `ErrorBudgetEvaluationFailing`.
    pub evaluation_failing_after: i64,
}

fn human_duration(secs: f64) -> String {
    crate::time::human(secs).unwrap_or_else(|| "never at this rate".into())
}

/// What is left of the budget, worded for the three cases on-call meets:
/// budget left, budget overspent, and a period the backend holds only
/// part of (where only the failure seen in the covered time counts).
fn budget_sentence(i: &Instance, f: &Figures, exhaustion: f64, long: &str) -> String {
    // A calendar period is named (`2026-12`), and its budget is the
    // current period's less maintenance, as every figure has it.
    let period = i
        .period_name()
        .unwrap_or_else(|| crate::time::format(i.slo.period));
    let budget = i.budget_seconds();
    let when = |t: f64| {
        if t.is_finite() {
            format!("exhausted in {} at the {long} rate", human_duration(t))
        } else {
            format!("not shrinking at the {long} rate")
        }
    };
    if f.coverage.is_partial() {
        let held = human_duration(f.coverage.seconds);
        let spent = (budget - f.remaining_seconds).max(0.0);
        return if f.remaining_seconds <= 0.0 {
            format!(
                "The {period} period holds only {held} of data, and its {} error budget is already spent (overspent by {}).",
                human_duration(budget),
                human_duration(-f.remaining_seconds)
            )
        } else {
            format!(
                "The {period} period holds only {held} of data: {} of its {} error budget spent in that time, {}.",
                human_duration(spent),
                human_duration(budget),
                when(exhaustion)
            )
        };
    }
    if f.remaining_ratio < 0.0 {
        format!(
            "The {period} error budget is spent: {:.1}% of it is gone (overspent by {}).",
            (1.0 - f.remaining_ratio) * 100.0,
            human_duration(-f.remaining_seconds)
        )
    } else {
        format!(
            "{:.1}% of the {period} error budget is left, {}.",
            f.remaining_ratio * 100.0,
            when(exhaustion)
        )
    }
}

/// Labels of a burn-rate alert. The spec's page/ticket labels come last and
/// win, since teams route on them (Sloth's `severity: critical`, say); the
/// identity labels cannot be overridden.
pub fn alert_labels(i: &Instance, a: &AlertStatus) -> LabelSet {
    let slo = &i.slo;
    let alerting = &slo.alerting;
    let severity = a.effective_severity();
    let mut l = i.labels();
    l.extend(alerting.labels.clone());
    l.insert("severity".into(), severity.as_str().into());
    l.extend(match severity {
        Severity::Page => alerting.page_labels.clone(),
        Severity::Ticket => alerting.ticket_labels.clone(),
    });
    l.insert("alertname".into(), alerting.name.clone());
    l.insert("service".into(), slo.service.clone());
    l.insert("slo".into(), slo.name.clone());
    l.insert("long_window".into(), a.long.to_string());
    l.insert("short_window".into(), a.short.to_string());
    l
}

fn alert_annotations(
    i: &Instance,
    a: &AlertStatus,
    burn: f64,
    now: i64,
    book: &crate::records::Book,
) -> LabelSet {
    let slo = &i.slo;
    let alerting = &slo.alerting;
    let fig = i.figures.as_ref();
    let remaining = fig.map_or(1.0, |f| f.remaining_ratio);
    let exhaustion = fig
        .and_then(|f| f.windows.iter().find(|w| w.window == a.long))
        .map_or(f64::INFINITY, |w| w.exhaustion_seconds);
    let mut ann = LabelSet::new();
    ann.insert(
        "summary".into(),
        format!(
            "{}/{}: error budget burning {burn:.1}× too fast ({} over {} and {})",
            slo.service,
            slo.name,
            a.severity.as_str(),
            a.long,
            a.short
        ),
    );
    let budget = fig.map_or_else(
        || "The error budget is not known yet.".to_string(),
        |f| budget_sentence(i, f, exhaustion, &a.long.to_string()),
    );
    let mut description = format!(
        "Burn rate is above {:.2} over both {} and {}. {budget}",
        a.burn_rate_threshold, a.long, a.short,
    );
    if a.low_traffic {
        description.push_str(" Sent as a ticket: too few bad events in the long window to page.");
    }
    ann.insert("description".into(), description);
    ann.insert("burn_rate".into(), format!("{burn:.4}"));
    ann.insert("error_budget_remaining".into(), format!("{remaining:.4}"));
    let long = a.long.secs() as i64;
    let deploys: Vec<_> = book.deployments_of(&slo.service, now - long, now).collect();
    if let Some(s) = crate::records::deployments_sentence(&slo.service, &deploys, long, now) {
        ann.insert("deployments".into(), s);
    }
    ann.extend(alerting.annotations.clone());
    ann.extend(match a.effective_severity() {
        Severity::Page => alerting.page_annotations.clone(),
        Severity::Ticket => alerting.ticket_annotations.clone(),
    });
    ann
}

/// One observation per alert of every instance at `now`.
pub fn observations(
    snapshot: &Snapshot,
    now: i64,
    opts: &BuildOptions,
    book: &crate::records::Book,
) -> Vec<Observation> {
    let mut out = Vec::new();
    for i in &snapshot.instances {
        let url = slo_url(&opts.external_url, &i.slo.service, &i.slo.name);
        let failed = i.status == Status::Error;
        if let Some(fig) = &i.figures {
            for a in &fig.alerts {
                let burn = |w| {
                    fig.windows
                        .iter()
                        .find(|x| x.window == w)
                        .map_or(0.0, |x| x.burn_rate)
                };
                let deciding = burn(a.long).min(burn(a.short));
                out.push(Observation {
                    labels: alert_labels(i, a),
                    annotations: alert_annotations(i, a, deciding, now, book),
                    condition: if failed {
                        Condition::Unknown
                    } else if a.condition {
                        Condition::Firing
                    } else {
                        Condition::Clear
                    },
                    generator_url: url.clone(),
                    burn_rate: deciding,
                });
            }
        }
        let mut labels = i.labels();
        labels.insert("alertname".into(), EVALUATION_FAILING.into());
        labels.insert("service".into(), i.slo.service.clone());
        labels.insert("slo".into(), i.slo.name.clone());
        labels.insert("severity".into(), Severity::Ticket.as_str().into());
        let failing_for = i.failing_since.map(|t| now - t);
        let mut ann = LabelSet::new();
        ann.insert(
            "summary".into(),
            format!("{}/{}: SLO cannot be evaluated", i.slo.service, i.slo.name),
        );
        ann.insert(
            "description".into(),
            format!(
                "errbudget has not evaluated this SLO for {}; its figures and alerts are stale. Last error: {}",
                human_duration(failing_for.unwrap_or(0) as f64),
                i.error.as_ref().map_or("none".to_string(), |e| e.to_string())
            ),
        );
        out.push(Observation {
            labels,
            annotations: ann,
            condition: match failing_for {
                Some(d) if failed && d >= opts.evaluation_failing_after => Condition::Firing,
                _ => Condition::Clear,
            },
            generator_url: url,
            burn_rate: 0.0,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_escape_spec_names() {
        assert_eq!(
            slo_url("http://eb:9465/", "check out", "a/b"),
            "http://eb:9465/slo/check%20out/a%2Fb"
        );
    }

    fn instance(remaining: f64, coverage: crate::budget::Coverage) -> Instance {
        // 99.9% over 30d: 2592 s (43m) of budget.
        let slo = crate::model::test_slo("shop", "avail", 99.9, 30);
        let budget = slo.error_budget_seconds();
        let mut f = crate::render::pages::test_figures(remaining, true);
        f.coverage = coverage;
        f.remaining_seconds = if coverage.is_partial() {
            budget - 0.0886 * coverage.seconds
        } else {
            remaining * budget
        };
        Instance {
            slo: std::sync::Arc::new(slo),
            group: LabelSet::new(),
            status: Status::Ok,
            error: None,
            figures: Some(f),
            last_success: Some(0),
            failing_since: None,
        }
    }

    fn sentence(i: &Instance, exhaustion: f64) -> String {
        budget_sentence(i, i.figures.as_ref().unwrap(), exhaustion, "1h")
    }

    #[test]
    fn budget_texts_read_naturally_in_every_case() {
        let full = crate::budget::Coverage::full(2_592_000.0);
        assert_eq!(
            sentence(&instance(0.101, full), 120.0),
            "10.1% of the 30d error budget is left, exhausted in 2m at the 1h rate."
        );
        assert_eq!(
            sentence(&instance(-0.596, full), 0.0),
            "The 30d error budget is spent: 159.6% of it is gone (overspent by 25m44s)."
                .replace("25m44s", &crate::time::human(0.596 * 2_592.0).unwrap())
        );
        // Ten minutes of data at 8.86% errors: 53 s of the 43 m spent.
        let young = crate::budget::Coverage::at(Some(0), 600, 2_592_000.0);
        assert_eq!(
            sentence(&instance(-87.6, young), 28_655.0),
            "The 30d period holds only 10m of data: 53s of its 43m error budget spent in that time, exhausted in 7h57m at the 1h rate."
        );
        let mut spent = instance(-87.6, young);
        spent.figures.as_mut().unwrap().remaining_seconds = -30.0;
        assert_eq!(
            sentence(&spent, 0.0),
            "The 30d period holds only 10m of data, and its 43m error budget is already spent (overspent by 30s)."
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(90_000.0), "1d1h");
        assert_eq!(human_duration(5_400.0), "1h30m");
        assert_eq!(human_duration(f64::INFINITY), "never at this rate");
    }
}
