//! End-to-end tests: a real Prometheus on backfilled synthetic data, the
//! real errbudget binary, and expected figures computed from the generated
//! events (never from Prometheus or errbudget).
//!
//! Needs `/usr/bin/prometheus` and `/usr/bin/promtool` (Debian package
//! `prometheus`); tests fail, never skip, when they are missing.

mod alerts;
mod backtest;
#[path = "../support/bins.rs"]
mod bins;
mod check;
mod chromium;
mod compat;
mod convert;
mod coverage;
mod daemon;
mod dashboards;
mod dataset;
mod demo_config;
mod eval;
mod events;
mod expect;
mod exposition;
mod faults;
mod fixtures;
mod golden;
mod harness;
mod hostile;
mod http;
mod logs;
mod packaging;
mod pages;
mod realistic;
mod recorded;
mod restart;
mod rules;
mod scraped;
mod selftest;
mod synthetic;
mod web;
