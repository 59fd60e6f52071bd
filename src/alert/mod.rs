//! Alerts: the burn-rate state machine (`decide`), the labels and
//! annotations of each alert (`payload`) and their delivery to
//! Alertmanager and webhooks (`dispatch`).

pub mod decide;
pub mod dispatch;
pub mod payload;
