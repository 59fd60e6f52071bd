//! Validated domain types. Constructors reject bad values, so everything
//! downstream (plan, budget, engine) can trust them. No serde, no I/O.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::calendar::Calendar;
use crate::exclusion::Exclusion;
use crate::time;

/// The default burn-rate windows whose figures are always exposed.
pub const DEFAULT_WINDOWS: [u64; 7] = [300, 1_800, 3_600, 7_200, 21_600, 86_400, 259_200];

/// A look-back duration in whole seconds, printed as a PromQL duration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window(u64);

impl Window {
    pub fn from_secs(secs: u64) -> Result<Self, String> {
        if secs == 0 {
            return Err("window must be longer than 0s".into());
        }
        Ok(Window(secs))
    }
    pub fn from_duration(d: Duration) -> Result<Self, String> {
        if d.subsec_nanos() != 0 {
            return Err("window must be a whole number of seconds".into());
        }
        Window::from_secs(d.as_secs())
    }
    pub fn secs(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&time::format(Duration::from_secs(self.0)))
    }
}

/// An SLO objective. Specs give percent (Sloth's `99.9`); the error budget
/// is computed once from the percent as `(100 - p) / 100` so that no
/// `0.000999999` leaks into labels or thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    percent: f64,
}

impl Objective {
    pub fn from_percent(percent: f64) -> Result<Self, String> {
        if !(percent.is_finite() && percent > 0.0 && percent < 100.0) {
            return Err(format!(
                "objective {percent} is outside (0, 100): give a percentage such as 99.9"
            ));
        }
        Ok(Objective { percent })
    }
    pub fn percent(self) -> f64 {
        self.percent
    }
    pub fn ratio(self) -> f64 {
        round12(self.percent / 100.0)
    }
    /// Allowed error ratio, `1 - objective`. Rounded to 12 decimals: specs
    /// never give more precision, and `100 - 99.9` is `0.0999…943` in f64.
    pub fn budget_ratio(self) -> f64 {
        round12((100.0 - self.percent) / 100.0)
    }
}

fn round12(x: f64) -> f64 {
    (x * 1e12).round() / 1e12
}

/// How an SLI is measured. Queries are templates holding `{{.window}}`.
#[derive(Clone, Debug, PartialEq)]
pub enum Sli {
    /// Bad and total event rates (per second) over the window.
    Events {
        error_query: String,
        total_query: String,
    },
    /// A precomputed error ratio in [0, 1] over the window; weighted by time.
    Raw { error_ratio_query: String },
    /// Histogram latency: good = `<metric>_bucket{le=threshold}`,
    /// total = `<metric>_count`.
    Latency {
        metric: String,
        selector: String,
        threshold: f64,
    },
}

impl Sli {
    pub fn kind(&self) -> &'static str {
        match self {
            Sli::Events { .. } => "events",
            Sli::Raw { .. } => "raw",
            Sli::Latency { .. } => "latency",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One multiwindow burn-rate alert: fires when both the long and the short
/// window burn faster than `factor` (Google SRE Workbook, ch. 5).
#[derive(Clone, Debug, PartialEq)]
pub struct AlertWindow {
    pub severity: Severity,
    pub long: Window,
    pub short: Window,
    pub factor: f64,
    /// Below this many bad events in the long window a page goes out as a ticket.
    pub min_bad_events: Option<f64>,
}

/// Budget share consumed, long window, short window, severity: the default
/// policy of docs/interface.md ("Alerts"). Factors depend on the period, see [`default_policy`].
const DEFAULT_POLICY: [(f64, u64, u64, Severity); 4] = [
    (2.0, 3_600, 300, Severity::Page),
    (5.0, 21_600, 1_800, Severity::Page),
    (10.0, 86_400, 7_200, Severity::Ticket),
    (10.0, 259_200, 21_600, Severity::Ticket),
];

/// Burn-rate factor that consumes `budget_percent` of the period's budget
/// in `long`: `budget_percent/100 × period / long` (SRE Workbook table 5-8;
/// 2% of 30d in 1h = 14.4).
pub fn factor_for_budget(budget_percent: f64, period: Duration, long: Window) -> f64 {
    budget_percent / 100.0 * period.as_secs() as f64 / long.secs() as f64
}

/// The default policy with factors scaled to `period`.
pub fn default_policy(period: Duration) -> Vec<AlertWindow> {
    DEFAULT_POLICY
        .iter()
        .map(|&(pct, long, short, severity)| {
            let long = Window(long);
            AlertWindow {
                severity,
                long,
                short: Window(short),
                factor: factor_for_budget(pct, period, long),
                min_bad_events: None,
            }
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Alerting {
    /// `alertname`; Sloth's `alerting.name`, default `ErrorBudgetBurn`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub page_labels: BTreeMap<String, String>,
    pub page_annotations: BTreeMap<String, String>,
    pub ticket_labels: BTreeMap<String, String>,
    pub ticket_annotations: BTreeMap<String, String>,
    pub page_enabled: bool,
    pub ticket_enabled: bool,
    pub windows: Vec<AlertWindow>,
}

/// Where a definition came from, for messages that must say where.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Origin {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One SLO as defined in a spec. A grouped SLO (queries keeping labels)
/// becomes one instance per label set at evaluation time.
#[derive(Clone, Debug, PartialEq)]
pub struct Slo {
    pub service: String,
    pub name: String,
    pub description: String,
    /// Service-level labels merged with the SLO's own (SLO wins).
    pub labels: BTreeMap<String, String>,
    pub objective: Objective,
    /// The rolling period, or a calendar period's nominal length (the
    /// length alert factors are scaled to, see `calendar::Unit::nominal`).
    pub period: Duration,
    /// Set for a calendar period: the budget resets at its boundaries.
    pub calendar: Option<Calendar>,
    /// Maintenance windows from the spec: their events count toward
    /// neither bad nor total.
    pub exclusions: Vec<Exclusion>,
    pub sli: Sli,
    pub alerting: Alerting,
    /// Remaining-budget ratio under which releases freeze.
    pub release_freeze_below: f64,
    /// Who may override a freeze of this SLO, and for how long.
    pub override_rules: OverrideRules,
    pub origin: Origin,
}

/// `policy.override` of a spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverrideRules {
    /// `None`: any authenticated user.
    pub allowed_users: Option<Vec<String>>,
    /// `None`: the default (7d).
    pub max_duration: Option<Duration>,
}

impl Slo {
    /// Windows whose error ratio and burn rate are computed: the defaults
    /// plus every window the alert policy names, sorted, without duplicates.
    pub fn windows(&self) -> Vec<Window> {
        let mut w: Vec<Window> = DEFAULT_WINDOWS.iter().map(|&s| Window(s)).collect();
        for a in &self.alerting.windows {
            w.push(a.long);
            w.push(a.short);
        }
        w.retain(|w| w.secs() <= self.period.as_secs());
        w.sort();
        w.dedup();
        w
    }

    /// The budget of a whole period, before exclusions: for a calendar
    /// period, of its nominal length (the figures give the current one's).
    pub fn error_budget_seconds(&self) -> f64 {
        self.period.as_secs() as f64 * self.objective.budget_ratio()
    }

    /// The period in force at `now`, `(start, end]`: the rolling period
    /// ending now, or the calendar period holding `now`.
    pub fn period_at(&self, now: i64) -> (i64, i64) {
        match &self.calendar {
            Some(c) => {
                let b = c.period_at(now);
                (b.start, b.end)
            }
            None => (now - self.period.as_secs() as i64, now),
        }
    }

    /// How the period is written in messages and labels: `30d`, or
    /// `calendar month (Europe/Berlin)`.
    pub fn period_text(&self) -> String {
        match &self.calendar {
            Some(c) => c.to_string(),
            None => time::format(self.period),
        }
    }
}

/// Label names errbudget sets itself; spec labels must not reuse them.
pub const RESERVED_LABELS: [&str; 8] = [
    "service",
    "slo",
    "window",
    "kind",
    "severity",
    "long_window",
    "short_window",
    "alertname",
];

/// Percent-encodes a path segment (RFC 3986 unreserved characters kept).
fn segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The address of an SLO's status page under `external_url` (empty for
/// the path alone): alerts link to it, the pages serve it.
pub fn slo_url(external_url: &str, service: &str, slo: &str) -> String {
    format!(
        "{}/slo/{}/{}",
        external_url.trim_end_matches('/'),
        segment(service),
        segment(slo)
    )
}

/// A plain events SLO for unit tests elsewhere in the crate.
#[cfg(test)]
pub(crate) fn test_slo(service: &str, name: &str, percent: f64, period_days: u64) -> Slo {
    let period = Duration::from_secs(period_days * 86_400);
    Slo {
        service: service.into(),
        name: name.into(),
        description: String::new(),
        labels: BTreeMap::new(),
        objective: Objective { percent },
        period,
        calendar: None,
        exclusions: Vec::new(),
        sli: Sli::Events {
            error_query: "rate(bad[{{.window}}])".into(),
            total_query: "rate(total[{{.window}}])".into(),
        },
        alerting: Alerting {
            name: "ErrorBudgetBurn".into(),
            page_enabled: true,
            ticket_enabled: true,
            windows: default_policy(period),
            ..Default::default()
        },
        release_freeze_below: 0.0,
        override_rules: OverrideRules::default(),
        origin: Origin::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(d: u64) -> Duration {
        Duration::from_secs(d * 86_400)
    }

    #[test]
    fn default_factors_match_the_sre_workbook_at_30d() {
        let f: Vec<f64> = default_policy(days(30)).iter().map(|a| a.factor).collect();
        let want = [14.4, 6.0, 3.0, 1.0];
        for (got, want) in f.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{got} != {want}");
        }
    }

    #[test]
    fn default_factors_scale_with_the_period() {
        let f: Vec<f64> = default_policy(days(28)).iter().map(|a| a.factor).collect();
        let want = [13.44, 5.6, 2.8, 28.0 * 0.1 / 3.0];
        for (got, want) in f.iter().zip(want) {
            assert!((got - want).abs() < 1e-9, "{got} != {want}");
        }
        let f7: Vec<f64> = default_policy(days(7)).iter().map(|a| a.factor).collect();
        assert!((f7[0] - 3.36).abs() < 1e-9);
    }

    #[test]
    fn objective_budget_has_no_float_noise() {
        let o = Objective::from_percent(99.9).unwrap();
        assert_eq!(o.budget_ratio().to_string(), "0.001");
        assert_eq!(o.ratio().to_string(), "0.999");
        let o = Objective::from_percent(99.95).unwrap();
        assert_eq!(o.budget_ratio().to_string(), "0.0005");
        assert!(Objective::from_percent(100.0).is_err());
        assert!(Objective::from_percent(0.0).is_err());
        assert!(Objective::from_percent(f64::NAN).is_err());
    }
}
