//! Integration tests: a real Prometheus on backfilled synthetic data, the
//! real errbudget binary, and expected figures computed from the generated
//! events (never from Prometheus or errbudget). The library's Prometheus
//! client and alert delivery are tested here too, against the same real
//! servers, so that every test shares one harness and one build.
//!
//! Needs `/usr/bin/prometheus` and `/usr/bin/promtool` (Debian package
//! `prometheus`); tests fail, never skip, when they are missing.

mod alert_delivery;
mod alerts;
mod backtest;
mod bins;
mod calendar;
mod check;
mod chromium;
mod compat;
mod compliance;
mod convert;
mod coverage;
mod daemon;
mod dashboards;
mod dataset;
mod demo_config;
mod deploys;
mod eval;
mod events;
mod expect;
mod exposition;
mod fault_proxy;
mod faults;
mod fixtures;
mod golden;
mod harness;
mod hostile;
mod http;
#[path = "../../src/interface_doc.rs"]
mod interface;
mod logs;
mod maintenance;
mod packaging;
mod pages;
mod prom_client;
mod realistic;
mod recorded;
mod restart;
mod rules;
mod schema;
mod scraped;
mod selftest;
mod synthetic;
mod web;
