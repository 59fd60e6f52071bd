//! The `/metrics` exposition: the daemon's own series, gathered at each
//! scrape, and the `slo_*` series, rendered from a snapshot once per
//! evaluation and kept ([`Cache`]), so that scrapes cost a copy of a
//! shared buffer and concurrent scrapes do not each build the text.
//! A scrape never queries Prometheus.
//!
//! Formats: text 0.0.4 (the `prometheus` crate's encoder) and
//! OpenMetrics 1.0 (`openmetrics`), chosen from the scraper's `Accept`.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::metrics::DaemonMetrics;
use crate::openmetrics;
use crate::state::{Instance, LabelSet, Snapshot};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => openmetrics::CONTENT_TYPE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::OpenMetrics => "openmetrics",
        }
    }

    /// OpenMetrics when the `Accept` header rates it at least as high as
    /// the text format, as Prometheus asks by default; text otherwise,
    /// also when there is no header.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Text;
        };
        let (mut om, mut text) = (0.0_f64, 0.0_f64);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0;
            let mut version = None;
            for p in parts {
                if let Some((k, v)) = p.split_once('=') {
                    match k.trim().to_ascii_lowercase().as_str() {
                        "q" => q = v.trim().parse().unwrap_or(0.0),
                        "version" => version = Some(v.trim().to_string()),
                        _ => {}
                    }
                }
            }
            match media.as_str() {
                "application/openmetrics-text"
                    if version
                        .as_deref()
                        .is_none_or(|v| v == "1.0.0" || v == "0.0.1") =>
                {
                    om = om.max(q)
                }
                "text/plain" | "text/*" | "*/*" => text = text.max(q),
                _ => {}
            }
        }
        if om > 0.0 && om >= text {
            Format::OpenMetrics
        } else {
            Format::Text
        }
    }
}

/// Renders the daemon's own series and every SLO series as text, at once.
/// Every `slo_*` series an event SLO with the default policy is exposed
/// with; `rules` records the same set.
pub const SLO_SERIES: [&str; 17] = [
    "slo_info",
    "slo_objective_ratio",
    "slo_period_seconds",
    "slo_error_ratio",
    "slo_burn_rate",
    "slo_period_error_ratio",
    "slo_error_budget_remaining_ratio",
    "slo_error_budget_seconds",
    "slo_error_budget_remaining_seconds",
    "slo_period_coverage_ratio",
    "slo_error_budget_exhaustion_seconds",
    "slo_period_events",
    "slo_alert_firing",
    "slo_alert_burn_rate_threshold",
    "slo_release_frozen",
    "slo_evaluation_success",
    "slo_last_evaluation_timestamp_seconds",
];

pub fn render(metrics: &DaemonMetrics, snapshot: &Snapshot) -> Result<String, prometheus::Error> {
    let mut families = metrics.registry.gather();
    families.extend(slo_families(snapshot));
    encode(&families, Format::Text).map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn encode(families: &[MetricFamily], format: Format) -> Result<Vec<u8>, prometheus::Error> {
    match format {
        Format::Text => {
            let mut buf = Vec::new();
            TextEncoder::new().encode(families, &mut buf)?;
            Ok(spell_special_values(&buf))
        }
        Format::OpenMetrics => {
            let mut s = String::new();
            openmetrics::encode(families, &mut s);
            Ok(s.into_bytes())
        }
    }
}

/// The text format spells the special values `+Inf`, `-Inf` and `NaN`;
/// the `prometheus` crate's encoder writes a sample with Rust's
/// `f64::to_string`, which gives `inf` and `-inf` (Prometheus's parser
/// happens to accept them, stricter ones do not). A sample line ends with
/// its value after the last space (no timestamps here), and label values
/// cannot hold a line break, so the last token of a line is the value.
fn spell_special_values(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    for line in text.split_inclusive(|&b| b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let fixed = match body.iter().rposition(|&b| b == b' ') {
            Some(i) if !body.starts_with(b"#") => match &body[i + 1..] {
                b"inf" => Some(("+Inf", i)),
                b"-inf" => Some(("-Inf", i)),
                _ => None,
            },
            _ => None,
        };
        match fixed {
            Some((value, i)) => {
                out.extend_from_slice(&body[..=i]);
                out.extend_from_slice(value.as_bytes());
                out.extend_from_slice(&line[body.len()..]);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// The `slo_*` part of `/metrics` for the latest snapshot, per format,
/// built by the first scrape that asks for it after an evaluation.
#[derive(Default)]
pub struct Cache {
    slot: tokio::sync::Mutex<Option<Rendered>>,
    renders: std::sync::atomic::AtomicUsize,
}

struct Rendered {
    of: Weak<Snapshot>,
    text: Option<Bytes>,
    openmetrics: Option<Bytes>,
}

impl Cache {
    /// The exposition as chunks to send one after the other.
    pub async fn scrape(
        &self,
        metrics: &DaemonMetrics,
        snapshot: &Arc<Snapshot>,
        format: Format,
    ) -> Result<Vec<Bytes>, prometheus::Error> {
        let own = Bytes::from(encode(&metrics.registry.gather(), format)?);
        let slos = self.slo_part(snapshot, format).await?;
        let mut chunks = vec![own, slos];
        if format == Format::OpenMetrics {
            chunks.push(Bytes::from_static(openmetrics::EOF.as_bytes()));
        }
        Ok(chunks)
    }

    async fn slo_part(
        &self,
        snapshot: &Arc<Snapshot>,
        format: Format,
    ) -> Result<Bytes, prometheus::Error> {
        // Held while rendering: scrapes that arrive meanwhile wait for
        // this render instead of making their own.
        let mut slot = self.slot.lock().await;
        let current = slot
            .as_ref()
            .and_then(|r| r.of.upgrade())
            .is_some_and(|s| Arc::ptr_eq(&s, snapshot));
        if !current {
            *slot = Some(Rendered {
                of: Arc::downgrade(snapshot),
                text: None,
                openmetrics: None,
            });
        }
        let Some(r) = slot.as_mut() else {
            unreachable!("filled above");
        };
        let cached = match format {
            Format::Text => &mut r.text,
            Format::OpenMetrics => &mut r.openmetrics,
        };
        if let Some(b) = cached {
            return Ok(b.clone());
        }
        let body = Bytes::from(encode(&slo_families(snapshot), format)?);
        self.renders
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *cached = Some(body.clone());
        Ok(body)
    }

    /// How many times the `slo_*` part was built, for tests.
    pub fn renders(&self) -> usize {
        self.renders.load(std::sync::atomic::Ordering::Relaxed)
    }
}

struct Family {
    help: &'static str,
    metrics: Vec<Metric>,
}

#[derive(Default)]
struct Families(BTreeMap<&'static str, Family>);

impl Families {
    fn add(&mut self, name: &'static str, help: &'static str, labels: &LabelSet, value: f64) {
        let pairs = labels
            .iter()
            .map(|(k, v)| {
                let mut p = LabelPair::default();
                p.set_name(k.clone());
                p.set_value(v.clone());
                p
            })
            .collect();
        let mut g = Gauge::default();
        g.set_value(value);
        let mut m = Metric::from_label(pairs);
        m.set_gauge(g);
        self.0
            .entry(name)
            .or_insert_with(|| Family {
                help,
                metrics: Vec::new(),
            })
            .metrics
            .push(m);
    }
}

fn with(base: &LabelSet, extra: &[(&str, String)]) -> LabelSet {
    let mut l = base.clone();
    for (k, v) in extra {
        l.insert((*k).to_string(), v.clone());
    }
    l
}

fn instance_series(f: &mut Families, i: &Instance) {
    let slo = &i.slo;
    let mut base = i.labels();
    base.insert("service".into(), slo.service.clone());
    base.insert("slo".into(), slo.name.clone());
    let info = with(
        &base,
        &[
            ("objective", slo.objective.ratio().to_string()),
            ("period", crate::duration::format(slo.period)),
            ("sli_type", slo.sli.kind().to_string()),
            ("description", slo.description.clone()),
        ],
    );
    f.add("slo_info", "SLO definition, value 1.", &info, 1.0);
    f.add(
        "slo_objective_ratio",
        "SLO target as a ratio, e.g. 0.999.",
        &base,
        slo.objective.ratio(),
    );
    f.add(
        "slo_period_seconds",
        "SLO compliance period in seconds.",
        &base,
        slo.period.as_secs() as f64,
    );
    f.add(
        "slo_error_budget_seconds",
        "Error budget of the period in seconds of full failure: period × (1 − objective).",
        &base,
        slo.error_budget_seconds(),
    );
    let ok = i.status != crate::state::Status::Error;
    f.add(
        "slo_evaluation_success",
        "1 if the last evaluation of this SLO succeeded.",
        &base,
        if ok { 1.0 } else { 0.0 },
    );
    if let Some(t) = i.last_success {
        f.add(
            "slo_last_evaluation_timestamp_seconds",
            "Unix time of the last successful evaluation of this SLO.",
            &base,
            t as f64,
        );
    }
    let Some(fig) = &i.figures else {
        return;
    };
    for w in &fig.windows {
        let l = with(&base, &[("window", w.window.to_string())]);
        f.add(
            "slo_error_ratio",
            "Bad events / total events over the window.",
            &l,
            w.error_ratio,
        );
        f.add(
            "slo_burn_rate",
            "Error ratio over the window / (1 − objective).",
            &l,
            w.burn_rate,
        );
        f.add(
            "slo_error_budget_exhaustion_seconds",
            "Seconds until the remaining budget reaches 0 at the window's burn rate (+Inf if not burning).",
            &l,
            w.exhaustion_seconds,
        );
    }
    f.add(
        "slo_period_error_ratio",
        "Bad events / total events over the whole period.",
        &base,
        fig.period_error_ratio,
    );
    f.add(
        "slo_error_budget_remaining_ratio",
        "1 − period error ratio / (1 − objective); below 0 once overspent.",
        &base,
        fig.remaining_ratio,
    );
    f.add(
        "slo_error_budget_remaining_seconds",
        "Error budget seconds minus the failure seen in the covered part of the period (remaining ratio × budget seconds once the period is covered).",
        &base,
        fig.remaining_seconds,
    );
    f.add(
        "slo_period_coverage_ratio",
        "Share of the period the backend holds data for (1 once the data is at least a period old).",
        &base,
        fig.coverage.ratio,
    );
    if let Some(e) = fig.period_events {
        for (kind, v) in [("total", e.total), ("bad", e.bad)] {
            f.add(
                "slo_period_events",
                "Events over the period, by kind (total, bad).",
                &with(&base, &[("kind", kind.to_string())]),
                v,
            );
        }
    }
    for a in &fig.alerts {
        let l = with(
            &base,
            &[
                ("severity", a.severity.as_str().to_string()),
                ("long_window", a.long.to_string()),
                ("short_window", a.short.to_string()),
            ],
        );
        f.add(
            "slo_alert_firing",
            "1 while this multiwindow burn-rate alert fires.",
            &l,
            if a.firing { 1.0 } else { 0.0 },
        );
        f.add(
            "slo_alert_burn_rate_threshold",
            "Burn rate both windows must exceed for this alert to fire (the policy's factor).",
            &l,
            a.burn_rate_threshold,
        );
    }
    f.add(
        "slo_release_frozen",
        "1 while the remaining budget ratio is below the release-freeze policy.",
        &base,
        if fig.release_frozen { 1.0 } else { 0.0 },
    );
}

fn slo_families(snapshot: &Snapshot) -> Vec<MetricFamily> {
    let mut f = Families::default();
    for i in &snapshot.instances {
        instance_series(&mut f, i);
    }
    f.0.into_iter()
        .map(|(name, fam)| {
            let mut mf = MetricFamily::default();
            mf.set_name(name.to_string());
            mf.set_help(fam.help.to_string());
            mf.set_field_type(MetricType::GAUGE);
            mf.set_metric(fam.metrics);
            mf
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Events;
    use crate::model::{test_slo, Severity, Window};
    use crate::state::{AlertStatus, Figures, SloOutcome, Status, WindowFigures};
    use std::sync::Arc;

    fn snapshot() -> Snapshot {
        let mut slo = test_slo("check\"out", "avail", 99.9, 30);
        slo.labels.insert("team".into(), "pay\nments\\".into());
        slo.description = "a \"quoted\" description".into();
        let w = Window::from_secs(300).unwrap();
        let figures = Figures {
            windows: vec![WindowFigures {
                window: w,
                events: Events::new(2.0, 1000.0),
                error_ratio: 0.002,
                burn_rate: 2.0,
                exhaustion_seconds: f64::INFINITY,
            }],
            period_error_ratio: 0.0005,
            remaining_ratio: 0.5,
            remaining_seconds: 1296.0,
            coverage: crate::budget::Coverage::at(Some(1_764_118_200), 1_764_118_800, 2_592_000.0),
            period_events: Some(Events::new(500.0, 1e6)),
            release_frozen: false,
            alerts: vec![AlertStatus {
                severity: Severity::Page,
                long: Window::from_secs(3600).unwrap(),
                short: w,
                burn_rate_threshold: 14.4,
                condition: false,
                low_traffic: false,
                firing: false,
            }],
        };
        let mut group = LabelSet::new();
        group.insert("route".into(), "/pay".into());
        let ok: SloOutcome = Ok(vec![(group, Status::Ok, figures)]);
        Snapshot::default().next(1_764_118_800, vec![(Arc::new(slo), ok)])
    }

    #[test]
    fn openmetrics_only_when_the_scraper_prefers_it() {
        let cases = [
            (None, Format::Text),
            (Some("*/*"), Format::Text),
            (Some("text/plain;version=0.0.4"), Format::Text),
            // Prometheus 2.x's default.
            (Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), Format::OpenMetrics),
            (Some("application/openmetrics-text; version=0.0.1"), Format::OpenMetrics),
            (Some("text/plain;q=0.9,application/openmetrics-text;q=0.5"), Format::Text),
            (Some("application/openmetrics-text;version=2.0.0,text/plain;q=0.1"), Format::Text),
            (Some("application/openmetrics-text;q=0"), Format::Text),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    #[tokio::test]
    async fn slo_series_are_built_once_per_snapshot_and_format() {
        let metrics = DaemonMetrics::new();
        let cache = Cache::default();
        let first = Arc::new(snapshot());
        let mut bodies = Vec::new();
        for _ in 0..5 {
            for format in [Format::Text, Format::OpenMetrics] {
                let chunks = cache.scrape(&metrics, &first, format).await.unwrap();
                bodies.push((format, chunks.concat()));
            }
        }
        assert_eq!(cache.renders(), 2);
        let (_, text) = &bodies[0];
        let (_, om) = &bodies[1];
        let text = String::from_utf8_lossy(text);
        let om = String::from_utf8_lossy(om);
        assert!(text.contains("# TYPE slo_burn_rate gauge"), "{text}");
        assert!(!text.contains("# EOF"));
        assert!(om.ends_with("\n# EOF\n"), "{om}");
        assert!(
            om.contains("# TYPE errbudget_prometheus_queries counter"),
            "{om}"
        );
        assert!(
            om.contains("errbudget_prometheus_queries_total{outcome=\"success\"} 0"),
            "{om}"
        );
        // The same SLO samples in both formats.
        let slo_lines = |s: &str| -> Vec<(String, f64)> {
            s.lines()
                .filter(|l| l.starts_with("slo_"))
                .filter_map(|l| l.rsplit_once(' '))
                .map(|(k, v)| (k.to_string(), v.parse::<f64>().unwrap()))
                .collect()
        };
        assert_eq!(slo_lines(&text), slo_lines(&om));
        // A new evaluation is rendered anew.
        let second = Arc::new(snapshot());
        cache.scrape(&metrics, &second, Format::Text).await.unwrap();
        assert_eq!(cache.renders(), 3);
    }

    #[test]
    fn special_values_are_spelt_as_the_text_format_wants() {
        let text =
            "# HELP x inf\nx{a=\"inf\"} inf\nx{a=\"b -inf\"} -inf\nx NaN\nx 1\ny{le=\"+Inf\"} 3";
        let out = String::from_utf8(spell_special_values(text.as_bytes())).unwrap();
        assert_eq!(
            out,
            "# HELP x inf\nx{a=\"inf\"} +Inf\nx{a=\"b -inf\"} -Inf\nx NaN\nx 1\ny{le=\"+Inf\"} 3"
        );
    }

    #[test]
    fn every_contract_series_is_rendered_with_escaped_labels() {
        let text = render(&DaemonMetrics::new(), &snapshot()).unwrap();
        for name in SLO_SERIES.iter().copied().chain([
            "errbudget_build_info",
            "errbudget_evaluation_duration_seconds",
            "errbudget_prometheus_queries_total",
            "errbudget_prometheus_query_duration_seconds",
            "errbudget_prometheus_query_samples_total",
            "errbudget_config_last_reload_successful",
            "errbudget_config_last_reload_success_timestamp_seconds",
        ]) {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing:\n{text}"
            );
        }
        assert!(text.contains(r#"service="check\"out""#), "{text}");
        assert!(text.contains(r#"team="pay\nments\\""#), "{text}");
        assert!(text.contains(r#"route="/pay""#));
        assert!(text.contains(r#"window="5m""#));
        assert!(text.contains("slo_error_budget_exhaustion_seconds{"));
        // Not burning: +Inf, spelt as the text format spells it.
        let exhaustion: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("slo_error_budget_exhaustion_seconds{"))
            .collect();
        assert!(
            exhaustion.iter().any(|l| l.ends_with("} +Inf")),
            "{exhaustion:?}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or_default();
            assert!(
                !value.eq_ignore_ascii_case("inf") && value != "-inf",
                "{line}"
            );
        }
        assert!(text.contains(r#"kind="bad""#));
    }
}
