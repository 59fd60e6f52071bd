//! Burn-rate alerts: `decide` (a pure state machine, `now` passed in),
//! then senders that only deliver.

pub mod build;
pub mod decide;
pub mod deliver;
