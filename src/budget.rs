//! Error-budget arithmetic. Pure: no async, no I/O, no clock.
//!
//! Definitions follow the Google SRE Workbook (ch. 5, "Alerting on SLOs"):
//! error ratio = bad events / total events over a window (traffic-weighted,
//! never an average of shorter ratios); burn rate = error ratio / (1 − SLO),
//! so a burn rate of 1 spends exactly the budget over the period.

/// Event counts (or, for ratio SLIs, error-seconds and seconds).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Events {
    pub bad: f64,
    pub total: f64,
}

impl Events {
    pub fn new(bad: f64, total: f64) -> Self {
        Events { bad, total }
    }

    /// Bad over total. No traffic means no budget spent: 0, not NaN.
    /// Clamped to [0, 1] because rate() extrapolation of two separately
    /// queried counters can put bad a hair above total.
    pub fn error_ratio(self) -> f64 {
        if self.total <= 0.0 || !self.bad.is_finite() || !self.total.is_finite() {
            return 0.0;
        }
        (self.bad / self.total).clamp(0.0, 1.0)
    }

    pub fn scale(self, k: f64) -> Events {
        Events::new(self.bad * k, self.total * k)
    }

    /// Negative counts can only come from float noise in differences of
    /// prefix sums; a window never holds fewer than zero events.
    pub fn non_negative(self) -> Events {
        Events::new(self.bad.max(0.0), self.total.max(0.0))
    }
}

impl std::ops::Add for Events {
    type Output = Events;
    fn add(self, o: Events) -> Events {
        Events::new(self.bad + o.bad, self.total + o.total)
    }
}

/// `error_ratio / (1 − objective)`.
pub fn burn_rate(error_ratio: f64, budget_ratio: f64) -> f64 {
    if budget_ratio <= 0.0 {
        return 0.0;
    }
    error_ratio / budget_ratio
}

/// The budget left as a share of the period's budget:
/// [`remaining_seconds`] / (period × (1 − objective)), so the ratio and the
/// seconds always say the same. With the whole period covered this is
/// `1 − period_error_ratio / (1 − objective)`; while coverage is partial
/// only the failure the covered time holds is spent, so ten minutes of
/// data at 9% errors leave 98% of a 30-day budget, not −8,760%. Below 0
/// once overspent. An objective of 100% has no budget to share: the
/// full-period form (1, nothing counted against it).
pub fn remaining_ratio(
    period_error_ratio: f64,
    budget_ratio: f64,
    period_secs: f64,
    covered_secs: f64,
) -> f64 {
    let budget = period_secs * budget_ratio;
    if budget.is_nan() || budget <= 0.0 {
        return 1.0 - burn_rate(period_error_ratio, budget_ratio);
    }
    remaining_seconds(period_error_ratio, budget_ratio, period_secs, covered_secs) / budget
}

/// Seconds until the remaining budget reaches 0 if the burn rate holds.
/// A burn rate of 1 spends the whole budget in one period, so the time is
/// `remaining × period / burn_rate`. Not burning: +Inf. Already spent: 0.
/// Inputs that are not numbers give +Inf: no exhaustion is predicted.
pub fn exhaustion_seconds(remaining_ratio: f64, burn_rate: f64, period_secs: f64) -> f64 {
    if remaining_ratio <= 0.0 {
        return 0.0;
    }
    if burn_rate.is_nan() || burn_rate <= 0.0 {
        return f64::INFINITY;
    }
    let t = remaining_ratio * period_secs / burn_rate;
    if t.is_nan() {
        f64::INFINITY
    } else {
        t
    }
}

/// How much of its period an SLO instance's data covers: the backend may
/// hold less than the period (first samples recent, or retention shorter
/// than the period). Figures over the period are over this span only.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coverage {
    /// Start of the oldest data the backend returned, if any.
    pub data_since: Option<i64>,
    /// Seconds of the period that hold data: `now − data_since`, at most
    /// the period.
    pub seconds: f64,
    /// `seconds / period`, in [0, 1].
    pub ratio: f64,
}

impl Coverage {
    /// Coverage at `now` of a period of `period_secs` whose data starts at
    /// `data_since`. No data at all covers nothing.
    pub fn at(data_since: Option<i64>, now: i64, period_secs: f64) -> Coverage {
        let seconds = match data_since {
            Some(t) if period_secs > 0.0 => ((now - t) as f64).clamp(0.0, period_secs),
            _ => 0.0,
        };
        let ratio = if period_secs > 0.0 {
            (seconds / period_secs).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Coverage {
            data_since,
            seconds,
            ratio,
        }
    }

    /// The whole period holds data.
    pub fn full(period_secs: f64) -> Coverage {
        Coverage {
            data_since: None,
            seconds: period_secs,
            ratio: 1.0,
        }
    }

    pub fn is_partial(&self) -> bool {
        self.ratio < 1.0
    }
}

/// Budget left in seconds of full failure: the period's budget
/// (`period × (1 − objective)`) minus the failure seen in the covered
/// time (`period error ratio × covered seconds`). With the whole period
/// covered this is `remaining_ratio × budget seconds`; while coverage is
/// partial it never counts more failure than the covered time can hold,
/// so ten minutes of data can spend at most ten minutes of budget.
pub fn remaining_seconds(
    period_error_ratio: f64,
    budget_ratio: f64,
    period_secs: f64,
    covered_secs: f64,
) -> f64 {
    let budget = period_secs * budget_ratio.max(0.0);
    let ratio = if period_error_ratio.is_finite() {
        period_error_ratio.clamp(0.0, 1.0)
    } else {
        0.0
    };
    budget - ratio * covered_secs.clamp(0.0, period_secs.max(0.0))
}

/// Seconds until `remaining_seconds` of budget are gone at a window's
/// error ratio: each second at error ratio `e` spends `e` seconds of
/// budget. Same as [`exhaustion_seconds`] with the whole period covered;
/// while coverage is partial it follows the budget actually spent.
/// Not burning: +Inf. Already spent: 0.
pub fn exhaustion_after(remaining_seconds: f64, error_ratio: f64) -> f64 {
    if remaining_seconds.is_nan() {
        return f64::INFINITY;
    }
    if remaining_seconds <= 0.0 {
        return 0.0;
    }
    if error_ratio.is_nan() || error_ratio <= 0.0 {
        return f64::INFINITY;
    }
    remaining_seconds / error_ratio
}

/// Events per step over the period, oldest first. Each point holds the
/// events in `(end - step, end]`; for ratio SLIs error-seconds and seconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    pub start: i64,
    pub end: i64,
    pub step: u64,
    pub points: Vec<(i64, Events)>,
}

impl Trend {
    fn total(&self) -> Events {
        self.points
            .iter()
            .fold(Events::default(), |acc, (_, e)| acc + *e)
    }

    /// Remaining share of this period's budget after each step: 1 minus
    /// the bad events so far over the budget of the whole period's traffic.
    /// It starts at 1 and ends at the engine's remaining ratio (up to the
    /// step's resolution), so the line shows *when* the budget went.
    pub fn burn_down(&self, budget_ratio: f64) -> Vec<(i64, f64)> {
        self.burn_down_of(budget_ratio, 1.0)
    }

    /// [`Trend::burn_down`] when the trend holds only `share` (0, 1] of its
    /// period (a calendar period under way): the budget is of the traffic
    /// projected over the whole period, as the engine's time-based
    /// remaining ratio assumes.
    pub fn burn_down_of(&self, budget_ratio: f64, share: f64) -> Vec<(i64, f64)> {
        let share = if share > 0.0 && share <= 1.0 {
            share
        } else {
            1.0
        };
        let allowed = self.total().total * budget_ratio / share;
        let mut bad = 0.0;
        let mut out = vec![(self.start, 1.0)];
        for (t, e) in &self.points {
            bad += e.bad;
            let remaining = if allowed > 0.0 {
                1.0 - bad / allowed
            } else {
                1.0
            };
            out.push((*t, remaining));
        }
        out
    }

    /// Empties the steps that `covered(from, to)` says lie wholly in
    /// maintenance: their events count for nothing, as in the figures.
    pub fn leave_out(&mut self, covered: impl Fn(i64, i64) -> bool) {
        let mut from = self.start;
        for (t, e) in &mut self.points {
            if covered(from, *t) {
                *e = Events::default();
            }
            from = *t;
        }
    }

    /// The same events in steps of `step` seconds from the start (a
    /// multiple of this trend's step); the last one ends at the end, and
    /// is shorter when the end is not on a step.
    pub fn regrouped(self, step: u64) -> Trend {
        if step == self.step || step == 0 {
            return self;
        }
        let span = step as i64;
        let mut points: Vec<(i64, Events)> = Vec::new();
        for (t, e) in self.points {
            let k = (t - self.start + span - 1).div_euclid(span);
            let at = (self.start + k * span).min(self.end);
            match points.last_mut() {
                Some((last, sum)) if *last == at => *sum = *sum + e,
                _ => points.push((at, e)),
            }
        }
        Trend {
            start: self.start,
            end: self.end,
            step,
            points,
        }
    }

    /// Burn rate over each step: its error ratio over the budget ratio.
    pub fn burn_rates(&self, budget_ratio: f64) -> Vec<(i64, f64)> {
        self.points
            .iter()
            .map(|(t, e)| (*t, burn_rate(e.error_ratio(), budget_ratio)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pieces_regroup_into_steps_and_a_shorter_last_one() {
        let e = |b: f64| Events::new(b, 10.0);
        let t = Trend {
            start: 0,
            end: 1_000,
            step: 300,
            points: vec![(300, e(1.0)), (600, e(2.0)), (900, e(4.0)), (1_000, e(8.0))],
        };
        let g = t.regrouped(600);
        assert_eq!((g.start, g.end, g.step), (0, 1_000, 600));
        assert_eq!(
            g.points,
            vec![
                (600, Events::new(3.0, 20.0)),
                (1_000, Events::new(12.0, 20.0))
            ]
        );
    }

    #[test]
    fn steps_wholly_in_maintenance_are_left_out() {
        let e = Events::new(1.0, 10.0);
        let mut t = Trend {
            start: 0,
            end: 150,
            step: 60,
            points: vec![(60, e), (120, e), (150, e)],
        };
        // (50, 150] holds the steps (60, 120] and (120, 150], not (0, 60].
        t.leave_out(|from, to| 50 <= from && to <= 150);
        assert_eq!(
            t.points,
            vec![(60, e), (120, Events::default()), (150, Events::default())]
        );
    }

    #[test]
    fn a_period_under_way_burns_down_against_its_projected_traffic() {
        let t = Trend {
            start: 0,
            end: 200,
            step: 100,
            points: vec![
                (100, Events::new(1.0, 100.0)),
                (200, Events::new(1.0, 100.0)),
            ],
        };
        // Half the period behind us: the budget is 1% of twice the traffic seen.
        assert_eq!(
            t.burn_down_of(0.01, 0.5),
            vec![(0, 1.0), (100, 0.75), (200, 0.5)]
        );
        assert_eq!(t.burn_down(0.01), t.burn_down_of(0.01, 1.0));
        assert_eq!(t.burn_down_of(0.01, 0.0), t.burn_down(0.01));
    }

    fn any_f64() -> impl Strategy<Value = f64> {
        prop_oneof![
            0.0..1e12f64,
            Just(0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-1.0),
            any::<f64>()
        ]
    }

    proptest! {
        #[test]
        fn error_ratio_is_bounded_and_never_nan(bad in any_f64(), total in any_f64()) {
            let r = Events::new(bad, total).error_ratio();
            prop_assert!((0.0..=1.0).contains(&r));
        }

        #[test]
        fn remaining_budget_falls_as_bad_events_grow(
            bad in 0.0..1e9f64, extra in 0.0..1e9f64, total in 1.0..1e12f64, pct in 50.0..99.999f64
        ) {
            let budget = crate::model::Objective::from_percent(pct).unwrap().budget_ratio();
            let p = 30.0 * 86_400.0;
            let before = remaining_ratio(Events::new(bad, total).error_ratio(), budget, p, p);
            let after = remaining_ratio(Events::new(bad + extra, total).error_ratio(), budget, p, p);
            prop_assert!(after <= before);
            prop_assert!(before <= 1.0 && before.is_finite() && after.is_finite());
        }

        #[test]
        fn exhaustion_is_never_negative_or_nan(rem in any_f64(), burn in any_f64(), period in 1.0..1e8f64) {
            let t = exhaustion_seconds(rem, burn, period);
            prop_assert!(!t.is_nan() && t >= 0.0, "{t}");
        }
    }

    #[test]
    fn no_traffic_spends_nothing() {
        assert_eq!(Events::new(0.0, 0.0).error_ratio(), 0.0);
        assert_eq!(Events::new(5.0, 0.0).error_ratio(), 0.0);
        assert_eq!(Events::new(f64::NAN, 10.0).error_ratio(), 0.0);
    }

    #[test]
    fn ratios_are_weighted_by_traffic() {
        // A quiet hour with 50% errors and a busy hour with none: events
        // decide, so 10 bad out of 1020, not the 25% an average would give.
        let quiet = Events::new(10.0, 20.0);
        let busy = Events::new(0.0, 1000.0);
        let r = (quiet + busy).error_ratio();
        assert!((r - 10.0 / 1020.0).abs() < 1e-12);
    }

    #[test]
    fn budget_figures_for_a_999_slo() {
        // 99.9% over 30d, 0.05% errors: half the budget spent.
        let budget = 0.001;
        assert!((burn_rate(0.0005, budget) - 0.5).abs() < 1e-12);
        let p = 30.0 * 86_400.0;
        assert!((remaining_ratio(0.0005, budget, p, p) - 0.5).abs() < 1e-12);
        assert!((remaining_ratio(0.002, budget, p, p) + 1.0).abs() < 1e-12);
        // Half the budget left, burning at 14.4: 0.5 × 30d / 14.4 = 25h.
        let t = exhaustion_seconds(0.5, 14.4, 30.0 * 86_400.0);
        assert!((t - 90_000.0).abs() < 1e-6);
        assert_eq!(exhaustion_seconds(0.5, 0.0, 1.0), f64::INFINITY);
        assert_eq!(exhaustion_seconds(-0.1, 3.0, 1.0), 0.0);
    }

    #[test]
    fn coverage_of_a_young_period() {
        let p = 30.0 * 86_400.0;
        let c = Coverage::at(Some(1_000), 1_600, p);
        assert_eq!(c.seconds, 600.0);
        assert!((c.ratio - 600.0 / p).abs() < 1e-15);
        assert!(c.is_partial());
        // Data older than the period covers all of it.
        assert_eq!(Coverage::at(Some(0), 40 * 86_400, p).ratio, 1.0);
        assert_eq!(Coverage::at(None, 1_600, p).seconds, 0.0);
        // A clock behind the data covers nothing rather than going negative.
        assert_eq!(Coverage::at(Some(2_000), 1_600, p).seconds, 0.0);
        assert!(!Coverage::full(p).is_partial());
    }

    #[test]
    fn ten_minutes_of_data_spend_at_most_ten_minutes() {
        // 99.9% over 30d: 2592 s of budget. Ten minutes at 8.86% errors
        // spent 53.16 s of it, not the 87.6 budgets the ratio projects.
        let p = 30.0 * 86_400.0;
        let r = remaining_seconds(0.0886, 0.001, p, 600.0);
        assert!((r - (2_592.0 - 53.16)).abs() < 1e-9, "{r}");
        // Even 100% errors cannot spend more than the covered time.
        assert!((remaining_seconds(1.0, 0.001, p, 600.0) - 1_992.0).abs() < 1e-9);
        // Full coverage: the contract's remaining ratio × budget seconds.
        let full = remaining_seconds(0.002, 0.001, p, p);
        assert!((full - (1.0 - 0.002 / 0.001) * 2_592.0).abs() < 1e-9);
        // No data spends nothing.
        assert_eq!(remaining_seconds(0.0, 0.001, p, 0.0), 2_592.0);
        assert_eq!(remaining_seconds(f64::NAN, 0.001, p, 600.0), 2_592.0);
    }

    #[test]
    fn exhaustion_follows_the_budget_spent() {
        // 2538.84 s left at 8.86% errors: 28,655 s (7h57m).
        let t = exhaustion_after(2_538.84, 0.0886);
        assert!((t - 2_538.84 / 0.0886).abs() < 1e-6);
        assert_eq!(exhaustion_after(100.0, 0.0), f64::INFINITY);
        assert_eq!(exhaustion_after(-1.0, 0.5), 0.0);
        assert_eq!(exhaustion_after(f64::NAN, 0.5), f64::INFINITY);
        // Agrees with the ratio form when the whole period is covered.
        let p = 30.0 * 86_400.0;
        let rem = remaining_ratio(0.0005, 0.001, p, p);
        let secs = remaining_seconds(0.0005, 0.001, p, p);
        let a = exhaustion_after(secs, 14.4 * 0.001);
        let b = exhaustion_seconds(rem, 14.4, p);
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }

    #[test]
    fn the_ratio_left_is_the_seconds_left_over_the_budget() {
        // The same ten minutes at 8.86% errors on 99.9% over 30d: 53.16 s
        // of 2592 s spent, so 97.949% left, not 1 − 88.6 = −8,760%.
        let p = 30.0 * 86_400.0;
        let r = remaining_ratio(0.0886, 0.001, p, 600.0);
        assert!((r - (2_592.0 - 53.16) / 2_592.0).abs() < 1e-12, "{r}");
        // A covered period: the full-period definition.
        assert!((remaining_ratio(0.0886, 0.001, p, p) - (1.0 - 88.6)).abs() < 1e-9);
        // Coverage beyond the period counts as the period.
        assert_eq!(
            remaining_ratio(0.0005, 0.001, p, 2.0 * p),
            remaining_ratio(0.0005, 0.001, p, p)
        );
        // Overspent within the covered time: a day at 1% errors spends
        // 864 s of a 7-day 99.9% budget of 604.8 s.
        let week = 7.0 * 86_400.0;
        let r = remaining_ratio(0.01, 0.001, week, 86_400.0);
        assert!((r - (604.8 - 864.0) / 604.8).abs() < 1e-12, "{r}");
        // No budget (100%): nothing to share, the full-period form.
        assert_eq!(remaining_ratio(0.01, 0.0, p, 600.0), 1.0);
        assert_eq!(remaining_ratio(0.0, 0.001, p, 0.0), 1.0);
    }

    proptest! {
        #[test]
        fn ratio_and_seconds_left_always_agree(
            ratio in any_f64(), covered in 0.0..1e9f64, pct in 50.0..99.999f64, period in 60.0..1e8f64
        ) {
            let budget = crate::model::Objective::from_percent(pct).unwrap().budget_ratio();
            let secs = remaining_seconds(ratio, budget, period, covered);
            let r = remaining_ratio(ratio, budget, period, covered);
            let budget_secs = period * budget;
            prop_assert!(r.is_finite() && r <= 1.0, "{r}");
            prop_assert!((r * budget_secs - secs).abs() <= 1e-9 * budget_secs.max(secs.abs()), "{r} × {budget_secs} vs {secs}");
        }

        #[test]
        fn covered_failure_is_bounded_by_covered_time(
            ratio in any_f64(), covered in 0.0..1e8f64, pct in 50.0..99.999f64, period in 60.0..1e8f64
        ) {
            let budget = crate::model::Objective::from_percent(pct).unwrap().budget_ratio();
            let r = remaining_seconds(ratio, budget, period, covered);
            let full = period * budget;
            prop_assert!(r <= full + 1e-9 && r >= full - covered.min(period) - 1e-9, "{r}");
            let t = exhaustion_after(r, ratio);
            prop_assert!(!t.is_nan() && t >= 0.0);
        }
    }
}
