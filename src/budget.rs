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

/// `1 − period_error_ratio / (1 − objective)`; below 0 once overspent.
pub fn remaining_ratio(period_error_ratio: f64, budget_ratio: f64) -> f64 {
    1.0 - burn_rate(period_error_ratio, budget_ratio)
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
            let before = remaining_ratio(Events::new(bad, total).error_ratio(), budget);
            let after = remaining_ratio(Events::new(bad + extra, total).error_ratio(), budget);
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
        assert!((remaining_ratio(0.0005, budget) - 0.5).abs() < 1e-12);
        assert!((remaining_ratio(0.002, budget) + 1.0).abs() < 1e-12);
        // Half the budget left, burning at 14.4: 0.5 × 30d / 14.4 = 25h.
        let t = exhaustion_seconds(0.5, 14.4, 30.0 * 86_400.0);
        assert!((t - 90_000.0).abs() < 1e-6);
        assert_eq!(exhaustion_seconds(0.5, 0.0, 1.0), f64::INFINITY);
        assert_eq!(exhaustion_seconds(-0.1, 3.0, 1.0), 0.0);
    }
}
