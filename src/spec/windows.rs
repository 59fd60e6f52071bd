//! Sloth's `AlertWindows` catalogues (`apiVersion: sloth.slok.dev/v1`,
//! `kind: AlertWindows`): the four burn-rate window pairs for one SLO
//! period. As in Sloth, a catalogue is chosen by period: an SLO whose period
//! equals a catalogue's `sloPeriod` and that gives no `alerting.windows` of
//! its own alerts with that catalogue's pairs. Other SLOs keep the default
//! policy scaled to their period (Sloth would refuse them).
//!
//! Factors follow Sloth's `errorBudgetPercent / 100 × sloPeriod /
//! longWindow` (google-30d: 14.4, 6, 3, 1), the same formula as
//! `budget_percent` in `alerting.windows`.

use std::collections::BTreeMap;

use super::validate::{Draft, DraftPeriod, DraftWindow};
use crate::diag::yaml::{Cx, Map, Pos, Sp};
use crate::diag::Diagnostic;
use crate::time;

/// One catalogue as read.
#[derive(Clone, Debug)]
struct Catalogue {
    file: String,
    pos: Pos,
    period_text: String,
    windows: Vec<DraftWindow>,
}

/// Every catalogue of the files read together, by period in seconds.
#[derive(Default)]
pub struct Catalogues {
    by_period: BTreeMap<u64, Catalogue>,
    conflicts: Vec<Diagnostic>,
}

impl Catalogues {
    /// Reads one `AlertWindows` document into the catalogue set.
    pub fn read(&mut self, cx: &mut Cx<'_>, top: &Map<'_, '_>) {
        let Some(top) = Map::open(cx, top.node, &top.path, &["apiVersion", "kind", "spec"]) else {
            return;
        };
        let Some(spec) = top
            .req(cx, "spec")
            .and_then(|f| f.map(cx, &["sloPeriod", "page", "ticket"]))
        else {
            return;
        };
        let before = cx.diags.len();
        let period = spec.req_str(cx, "sloPeriod");
        let period_secs = period.as_ref().and_then(|p| {
            if let Some(unit) = super::validate::calendar_unit(&p.value) {
                cx.err(
                    p.pos,
                    format!(
                        "{}.sloPeriod: {:?} is a calendar {unit}: a catalogue applies to rolling periods of its length; give days, e.g. 30d",
                        spec.path, p.value
                    ),
                );
                return None;
            }
            time::parse(&p.value)
                .map_err(|e| cx.err(p.pos, format!("{}.sloPeriod: {e}", spec.path)))
                .ok()
        });
        let mut windows = Vec::new();
        for (severity, key) in [("page", "page"), ("ticket", "ticket")] {
            let Some(sev) = spec
                .req(cx, key)
                .and_then(|f| f.map(cx, &["quick", "slow"]))
            else {
                continue;
            };
            for speed in ["quick", "slow"] {
                let Some(w) = sev
                    .req(cx, speed)
                    .and_then(|f| f.map(cx, &["errorBudgetPercent", "shortWindow", "longWindow"]))
                else {
                    continue;
                };
                let budget = w.req(cx, "errorBudgetPercent").and_then(|f| f.f64(cx));
                let short = w.req_str(cx, "shortWindow");
                let long = w.req_str(cx, "longWindow");
                windows.push(DraftWindow {
                    pos: w.pos,
                    path: w.path.clone(),
                    severity: Some(Sp {
                        value: severity.to_string(),
                        pos: w.pos,
                    }),
                    long,
                    short,
                    factor: None,
                    budget_percent: budget,
                    min_bad_events: None,
                    file: Some(cx.file.to_string()),
                });
            }
        }
        let (Some(period), Some(secs)) = (period, period_secs) else {
            return;
        };
        if cx.diags.len() > before {
            return;
        }
        let new = Catalogue {
            file: cx.file.to_string(),
            pos: top.pos,
            period_text: period.value,
            windows,
        };
        match self.by_period.get(&secs.as_secs()) {
            // Sloth accepts the same catalogue twice and refuses two that differ.
            Some(old) if same_windows(&old.windows, &new.windows) => {}
            Some(old) => self.conflicts.push(Diagnostic::new(
                &new.file,
                new.pos.line,
                new.pos.column,
                format!(
                    "AlertWindows for period {} already given at {}:{}:{} with other windows: give one catalogue per period",
                    new.period_text, old.file, old.pos.line, old.pos.column
                ),
            )),
            None => {
                self.by_period.insert(secs.as_secs(), new);
            }
        }
    }

    /// Two catalogues for one period that disagree.
    pub fn conflicts(&self) -> Vec<Diagnostic> {
        self.conflicts.clone()
    }

    /// Gives `d` the catalogue of its period when it names no windows itself.
    pub fn apply(&self, file: &str, d: &mut Draft) {
        if d.alerting.windows.is_some() {
            return;
        }
        // A calendar period has no fixed length for a catalogue to match.
        let period = match &d.period {
            None => 30 * 86_400,
            Some(DraftPeriod::Rolling(p)) => match time::parse(&p.value) {
                Ok(p) => p.as_secs(),
                Err(_) => return, // reported by validate
            },
            Some(DraftPeriod::Calendar { .. }) => return,
        };
        if let Some(c) = self.by_period.get(&period) {
            let mut windows = c.windows.clone();
            for w in &mut windows {
                if w.file.as_deref() == Some(file) {
                    w.file = None;
                }
            }
            d.alerting.windows = Some(windows);
        }
    }
}

fn same_windows(a: &[DraftWindow], b: &[DraftWindow]) -> bool {
    let key = |w: &DraftWindow| {
        (
            w.severity.as_ref().map(|s| s.value.clone()),
            w.long.as_ref().map(|s| s.value.clone()),
            w.short.as_ref().map(|s| s.value.clone()),
            w.budget_percent.as_ref().map(|s| s.value.to_bits()),
        )
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key(x) == key(y))
}
