//! errbudget: SLO specs in, error budgets and burn rates out.
//!
//! Data flow: `config` + `spec` → `model` → `plan` → `prom` → `budget` →
//! `state` → `exposition` / `http`; `engine` drives the loop.

pub mod alert;
pub mod backend;
pub mod backtest;
pub mod batch;
pub mod budget;
pub mod cli;
pub mod commands;
pub mod config;
pub mod console;
pub mod convert;
pub mod daemon;
pub mod duration;
pub mod engine;
pub mod evaluate;
pub mod exposition;
#[doc(hidden)]
pub mod fuzz_targets;
#[cfg(test)]
mod fuzzing;
pub mod gzip;
pub mod history;
pub mod http;
pub mod httpclient;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod openmetrics;
pub mod output;
pub mod pages;
pub mod plan;
pub mod prom;
pub mod readfile;
pub mod rules;
pub mod share;
pub mod sli;
pub mod spec;
pub mod state;
pub mod store;
pub mod systemd;
pub mod trend;
pub mod version;
pub mod web;
