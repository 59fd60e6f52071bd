//! errbudget: SLO specs in, error budgets and burn rates out.
//!
//! Modules are laid out in layers, each importing only the layers below
//! it (a test reads the `use` lines and checks this):
//!
//! 1. foundations: `diag` (positioned YAML, `Diagnostic`), `time`, `tls`,
//!    `readfile`, `console`, `version`, `logging`, `metrics`, `systemd`
//! 2. domain, no I/O: `model`, `calendar`, `exclusion`, `promql`, `plan`,
//!    `budget`, `history`, `state`, `rules`, `convert`, `records`
//! 3. format readers: `spec`, `config` (text in, model out)
//! 4. clients and persistence: `httpclient`, `prom`, `alert`, `store`
//! 5. use-cases: `eval` (the evaluation loop), `backtest`, `report`
//! 6. views: `render` (`/metrics`, JSON, table, HTML pages)
//! 7. the edge: `app` (loading files, the daemon, the commands), `http`,
//!    `web`, `cli`

// 1. foundations
pub mod console;
pub mod diag;
pub mod logging;
pub mod metrics;
pub mod readfile;
pub mod systemd;
pub mod time;
pub mod tls;
pub mod version;

// 2. domain
pub mod budget;
pub mod calendar;
pub mod convert;
pub mod exclusion;
pub mod history;
pub mod model;
pub mod plan;
pub mod promql;
pub mod records;
pub mod rules;
pub mod state;

// 3. format readers
pub mod config;
pub mod spec;

// 4. clients and persistence
pub mod alert;
pub mod httpclient;
pub mod prom;
pub mod store;

// 5. use-cases
pub mod backtest;
pub mod eval;
pub mod report;

// 6. views
pub mod render;

// 7. the edge
pub mod app;
pub mod cli;
#[doc(hidden)]
pub mod fuzz_targets;
#[cfg(test)]
mod fuzzing;
pub mod http;
#[cfg(test)]
mod interface_doc;
#[cfg(test)]
mod layering;
pub mod web;
