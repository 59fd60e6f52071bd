//! The evaluation loop: `engine` runs a cycle over every SLO, `slo`
//! evaluates one SLO from its planned queries, `sli` turns answers into
//! events, `trend` fetches an SLO's history for its page.

pub mod deploys;
pub mod engine;
pub mod sli;
pub mod slo;
pub mod trend;
