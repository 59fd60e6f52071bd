//! The `/metrics` exposition: the daemon's own series, gathered at each
//! scrape, and the `slo_*` series, rendered from a snapshot once per
//! evaluation and kept ([`Cache`]), so that scrapes cost a copy of a
//! shared buffer and concurrent scrapes do not each build the text.
//! A scrape never queries Prometheus.
//!
//! Formats: text 0.0.4 and OpenMetrics 1.0, chosen from the scraper's
//! `Accept`; the daemon's own series go through the `prometheus` crate's
//! encoder and `openmetrics`, the `slo_*` series are written directly.
//! gzip when `Accept-Encoding` asks for it: the `slo_*` part is compressed
//! once per snapshot and format as well, and joined with the own series,
//! compressed at each scrape, into one gzip member (`gzip`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use prometheus::proto::MetricFamily;
use prometheus::{Encoder, TextEncoder};

use super::{gzip, openmetrics};
use crate::metrics::DaemonMetrics;
use crate::state::{Instance, Snapshot};

/// `slo_deployments_total{service}`: the deploys recorded per service,
/// read from the records at each scrape (a deploy posted to the API shows
/// at once, not after the next evaluation). Per service, not per SLO: a
/// deploy is of the service, and a copy per SLO would make
/// `sum(increase(...))` count it once per SLO. The totals persist with the
/// records, so the counter only resets where the records do.
pub struct DeploymentsCollector {
    records: crate::records::SharedRecords,
    desc: Vec<prometheus::core::Desc>,
}

const DEPLOYMENTS_HELP: &str =
    "Deploys errbudget has recorded for the service (from the deployments metric or the API).";

fn deployments_vec() -> prometheus::Result<prometheus::IntCounterVec> {
    prometheus::IntCounterVec::new(
        prometheus::Opts::new("slo_deployments_total", DEPLOYMENTS_HELP),
        &["service"],
    )
}

impl DeploymentsCollector {
    pub fn new(records: crate::records::SharedRecords) -> prometheus::Result<Self> {
        use prometheus::core::Collector;
        let desc = deployments_vec()?.desc().into_iter().cloned().collect();
        Ok(DeploymentsCollector { records, desc })
    }
}

impl prometheus::core::Collector for DeploymentsCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.desc.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let Ok(v) = deployments_vec() else {
            return vec![];
        };
        self.records.read(|b| {
            for (service, n) in &b.totals {
                v.with_label_values(&[service.as_str()]).inc_by(*n);
            }
        });
        if self.records.read(|b| b.totals.is_empty()) {
            return vec![];
        }
        v.collect()
    }
}

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
pub fn render(metrics: &DaemonMetrics, snapshot: &Snapshot) -> Result<String, prometheus::Error> {
    let mut out = encode(&metrics.registry.gather(), Format::Text)?;
    out.extend_from_slice(&slo_exposition(snapshot, Format::Text));
    Ok(String::from_utf8_lossy(&out).into_owned())
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

/// Whether the body goes out gzip-compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

impl Encoding {
    /// gzip when `Accept-Encoding` names it (or `x-gzip`, or `*`) with a
    /// q-value above 0 (RFC 9110 §12.5.3: a coding named outright wins
    /// over `*`); the body as it is otherwise.
    pub fn negotiate(accept_encoding: Option<&str>) -> Encoding {
        let (mut gzip, mut any) = (None::<f64>, None::<f64>);
        for item in accept_encoding.unwrap_or("").split(',') {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse().unwrap_or(0.0));
            let slot = match coding.as_str() {
                "gzip" | "x-gzip" => &mut gzip,
                "*" => &mut any,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old: f64| old.max(q)));
        }
        if gzip.or(any).is_some_and(|q| q > 0.0) {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }
}

/// Why a scrape failed: a server error, the scraper gets a 500.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    #[error("encoding the daemon's own series: {0}")]
    Encode(prometheus::Error),
    #[error("compressing the exposition: {0}")]
    Compress(flate2::CompressError),
    #[error("rendering the exposition did not finish: {0}")]
    Task(tokio::task::JoinError),
}

/// An answer to a scrape: chunks to send one after the other, compressed
/// as `encoding` says.
pub struct Exposition {
    pub chunks: Vec<Bytes>,
    pub encoding: Encoding,
}

/// The `slo_*` part of `/metrics` for the latest snapshot: its sample
/// lines, the same in both formats, built by the first scrape after an
/// evaluation, and each format's body compressed by the first scrape
/// that asks for that format in gzip.
#[derive(Default)]
pub struct Cache {
    slot: tokio::sync::Mutex<Option<Rendered>>,
    renders: AtomicUsize,
    compressions: AtomicUsize,
}

struct Rendered {
    of: Weak<Snapshot>,
    families: Vec<SloFamily>,
    text: Option<Arc<Part>>,
    openmetrics: Option<Arc<Part>>,
}

/// One family's sample lines, as both formats write them.
struct SloFamily {
    name: &'static str,
    help: &'static str,
    samples: Bytes,
}

/// One format's `slo_*` part of one snapshot: each family's header, then
/// its samples (shared with the other format).
struct Part {
    chunks: Vec<Bytes>,
    gzip: tokio::sync::OnceCell<gzip::Piece>,
}

impl Part {
    fn new(families: &[SloFamily], format: Format) -> Part {
        let mut chunks = Vec::with_capacity(2 * families.len());
        for f in families {
            let help = match format {
                Format::Text => escape_text_help(f.help),
                Format::OpenMetrics => openmetrics::escape(f.help),
            };
            let (help, kind) = (
                format!("# HELP {} {help}\n", f.name),
                format!("# TYPE {} gauge\n", f.name),
            );
            let header = match format {
                Format::Text => help + &kind,
                Format::OpenMetrics => kind + &help,
            };
            chunks.push(Bytes::from(header));
            chunks.push(f.samples.clone());
        }
        Part {
            chunks,
            gzip: tokio::sync::OnceCell::new(),
        }
    }
}

impl Cache {
    /// The exposition: the daemon's own series gathered now, the `slo_*`
    /// part of `snapshot` from the cache.
    pub async fn scrape(
        &self,
        metrics: &DaemonMetrics,
        snapshot: &Arc<Snapshot>,
        format: Format,
        encoding: Encoding,
    ) -> Result<Exposition, ScrapeError> {
        let own = encode(&metrics.registry.gather(), format).map_err(ScrapeError::Encode)?;
        let slos = self.slo_part(snapshot, format).await?;
        let tail = match format {
            Format::Text => "",
            Format::OpenMetrics => openmetrics::EOF,
        };
        let chunks = match encoding {
            Encoding::Identity => {
                let mut chunks = Vec::with_capacity(slos.chunks.len() + 2);
                chunks.push(Bytes::from(own));
                chunks.extend(slos.chunks.iter().cloned());
                if !tail.is_empty() {
                    chunks.push(Bytes::from_static(tail.as_bytes()));
                }
                chunks
            }
            Encoding::Gzip => {
                let slos = self.compressed(&slos).await?;
                // A few kilobytes: compressed here, at every scrape.
                let own = gzip::Piece::new(&[own]).map_err(ScrapeError::Compress)?;
                gzip::member(&[&own, slos], tail.as_bytes()).map_err(ScrapeError::Compress)?
            }
        };
        Ok(Exposition { chunks, encoding })
    }

    async fn slo_part(
        &self,
        snapshot: &Arc<Snapshot>,
        format: Format,
    ) -> Result<Arc<Part>, ScrapeError> {
        // Held while rendering: scrapes that arrive meanwhile wait for
        // this render instead of making their own.
        let mut slot = self.slot.lock().await;
        let current = slot
            .as_ref()
            .and_then(|r| r.of.upgrade())
            .is_some_and(|s| Arc::ptr_eq(&s, snapshot));
        if !current {
            // The previous snapshot's bodies, compressed or not, go before
            // the new ones take as much memory again.
            *slot = None;
            // Over 100 ms at 10,000 SLOs: not on an async worker.
            let of = snapshot.clone();
            let families = tokio::task::spawn_blocking(move || slo_families(&of))
                .await
                .map_err(ScrapeError::Task)?;
            self.renders.fetch_add(1, Ordering::Relaxed);
            *slot = Some(Rendered {
                of: Arc::downgrade(snapshot),
                families,
                text: None,
                openmetrics: None,
            });
        }
        let Some(Rendered {
            families,
            text,
            openmetrics,
            ..
        }) = slot.as_mut()
        else {
            unreachable!("filled above");
        };
        let cached = match format {
            Format::Text => text,
            Format::OpenMetrics => openmetrics,
        };
        Ok(cached
            .get_or_insert_with(|| Arc::new(Part::new(families, format)))
            .clone())
    }

    /// The part's gzip piece, compressed by the first scrape that asks;
    /// the others wait for it.
    async fn compressed<'a>(&self, part: &'a Part) -> Result<&'a gzip::Piece, ScrapeError> {
        part.gzip
            .get_or_try_init(|| async {
                let chunks = part.chunks.clone();
                let piece = tokio::task::spawn_blocking(move || gzip::Piece::new(&chunks))
                    .await
                    .map_err(ScrapeError::Task)?
                    .map_err(ScrapeError::Compress)?;
                self.compressions.fetch_add(1, Ordering::Relaxed);
                Ok(piece)
            })
            .await
    }

    /// How many times the `slo_*` sample lines were built, for tests.
    pub fn renders(&self) -> usize {
        self.renders.load(Ordering::Relaxed)
    }

    /// How many times a format's `slo_*` part was compressed, for tests.
    pub fn compressions(&self) -> usize {
        self.compressions.load(Ordering::Relaxed)
    }
}

/// The `slo_*` families of `snapshot` in `format`, without the closing
/// `# EOF` of OpenMetrics.
fn slo_exposition(snapshot: &Snapshot, format: Format) -> Vec<u8> {
    Part::new(&slo_families(snapshot), format).chunks.concat()
}

/// The sample lines of every `slo_*` family, sorted by name as the
/// registry sorts the daemon's own; within a family the series follow the
/// snapshot's instances. Written directly rather than through the
/// `prometheus` crate's metric families: at 10,000 SLOs those are 400,000
/// series, each a struct with its own label strings, that the encoder
/// then escapes label by label. Apart from the family headers the two
/// formats spell samples alike (label values escape `\`, `"` and line
/// feeds in both; special values are `+Inf`, `-Inf` and `NaN`).
fn slo_families(snapshot: &Snapshot) -> Vec<SloFamily> {
    let mut f = Families::default();
    let mut instances = snapshot.instances.iter();
    if let Some(first) = instances.next() {
        instance_series(&mut f, first);
        // Instances are much alike: room for all of them at the size of
        // the first and a tenth more spares growing each buffer by
        // doubling (copies and page faults of tens of megabytes).
        let more = snapshot.instances.len() - 1;
        for fam in f.0.values_mut() {
            fam.samples.reserve(fam.samples.len() * more / 10 * 11);
        }
    }
    for i in instances {
        instance_series(&mut f, i);
    }
    f.0.into_iter()
        .map(|(name, fam)| {
            let mut samples = fam.samples;
            samples.shrink_to_fit();
            SloFamily {
                name,
                help: fam.help,
                samples: Bytes::from(samples),
            }
        })
        .collect()
}

/// Help text in the text format escapes backslashes and line feeds only.
fn escape_text_help(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['\\', '\n']) {
        return s.into();
    }
    s.replace('\\', "\\\\").replace('\n', "\\n").into()
}

struct Family {
    help: &'static str,
    /// Sample lines, one per series.
    samples: String,
}

#[derive(Default)]
struct Families(BTreeMap<&'static str, Family>);

/// A label on every series of one instance, its value escaped once.
struct Label<'a> {
    name: &'a str,
    // Read by the tests' reference encoding.
    #[cfg_attr(not(test), allow(dead_code))]
    value: &'a str,
    escaped: std::borrow::Cow<'a, str>,
}

/// Where the series of an instance go.
trait Sink {
    /// One sample: the instance's labels (`base`, sorted by name) and
    /// `extra` (sorted by name; an extra label replaces an instance label
    /// of the same name).
    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        base: &[Label<'_>],
        extra: &[(&str, &str)],
        value: f64,
    );
}

impl Sink for Families {
    fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        base: &[Label<'_>],
        extra: &[(&str, &str)],
        value: f64,
    ) {
        debug_assert!(extra.is_sorted_by_key(|(k, _)| *k), "{extra:?}");
        let out = &mut self
            .0
            .entry(name)
            .or_insert_with(|| Family {
                help,
                samples: String::new(),
            })
            .samples;
        out.push_str(name);
        let mut sep = '{';
        let mut label = |k: &str, v: &str| {
            out.push(sep);
            sep = ',';
            for s in [k, "=\"", v, "\""] {
                out.push_str(s);
            }
        };
        let (mut b, mut e) = (base.iter().peekable(), extra.iter().peekable());
        loop {
            match (b.peek(), e.peek()) {
                (Some(l), Some((k, v))) if *k <= l.name => {
                    if *k == l.name {
                        b.next();
                    }
                    label(k, &openmetrics::escape(v));
                    e.next();
                }
                (Some(l), _) => {
                    label(l.name, &l.escaped);
                    b.next();
                }
                (None, Some((k, v))) => {
                    label(k, &openmetrics::escape(v));
                    e.next();
                }
                (None, None) => break,
            }
        }
        if sep == ',' {
            out.push('}');
        }
        out.push(' ');
        openmetrics::write_value(out, value);
        out.push('\n');
    }
}

fn instance_series(f: &mut impl Sink, i: &Instance) {
    let slo = &i.slo;
    let mut labels = i.labels();
    labels.insert("service".into(), slo.service.clone());
    labels.insert("slo".into(), slo.name.clone());
    let base: Vec<Label<'_>> = labels
        .iter()
        .map(|(k, v)| Label {
            name: k,
            value: v,
            escaped: openmetrics::escape(v),
        })
        .collect();
    let base = &base[..];
    let objective = slo.objective.ratio().to_string();
    let period = slo.period_text();
    f.add(
        "slo_info",
        "SLO definition, value 1.",
        base,
        &[
            ("description", &slo.description),
            ("objective", &objective),
            ("period", &period),
            ("sli_type", slo.sli.kind()),
        ],
        1.0,
    );
    f.add(
        "slo_objective_ratio",
        "SLO target as a ratio, e.g. 0.999.",
        base,
        &[],
        slo.objective.ratio(),
    );
    f.add(
        "slo_period_seconds",
        "SLO compliance period in seconds (of the current period, for a calendar one).",
        base,
        &[],
        i.period_seconds(),
    );
    f.add(
        "slo_error_budget_seconds",
        "Error budget of the period in seconds of full failure: (period − maintenance time) × (1 − objective).",
        base,
        &[],
        i.budget_seconds(),
    );
    let ok = i.status != crate::state::Status::Error;
    f.add(
        "slo_evaluation_success",
        "1 if the last evaluation of this SLO succeeded.",
        base,
        &[],
        if ok { 1.0 } else { 0.0 },
    );
    if let Some(t) = i.last_success {
        f.add(
            "slo_last_evaluation_timestamp_seconds",
            "Unix time of the last successful evaluation of this SLO.",
            base,
            &[],
            t as f64,
        );
    }
    let Some(fig) = &i.figures else {
        return;
    };
    for w in &fig.windows {
        let window = w.window.to_string();
        let l = &[("window", window.as_str())];
        f.add(
            "slo_error_ratio",
            "Bad events / total events over the window.",
            base,
            l,
            w.error_ratio,
        );
        f.add(
            "slo_burn_rate",
            "Error ratio over the window / (1 − objective).",
            base,
            l,
            w.burn_rate,
        );
        f.add(
            "slo_error_budget_exhaustion_seconds",
            "Seconds until the remaining budget reaches 0 at the window's burn rate (+Inf if not burning).",
            base,
            l,
            w.exhaustion_seconds,
        );
    }
    f.add(
        "slo_period_error_ratio",
        "Bad events / total events over the whole period.",
        base,
        &[],
        fig.period_error_ratio,
    );
    f.add(
        "slo_error_budget_remaining_ratio",
        "1 − period error ratio / (1 − objective); below 0 once overspent.",
        base,
        &[],
        fig.remaining_ratio,
    );
    f.add(
        "slo_error_budget_remaining_seconds",
        "Error budget seconds minus the failure seen in the covered part of the period (remaining ratio × budget seconds once the period is covered).",
        base,
        &[],
        fig.remaining_seconds,
    );
    f.add(
        "slo_period_coverage_ratio",
        "Share of the period the backend holds data for (1 once the data is at least a period old).",
        base,
        &[],
        fig.coverage.ratio,
    );
    if slo.calendar.is_some() {
        f.add(
            "slo_period_start_timestamp_seconds",
            "Unix time the current calendar period began.",
            base,
            &[],
            fig.period_start as f64,
        );
        f.add(
            "slo_period_end_timestamp_seconds",
            "Unix time the current calendar period ends.",
            base,
            &[],
            fig.period_end as f64,
        );
    }
    if i.has_exclusions() {
        f.add(
            "slo_period_excluded_seconds",
            "Seconds of the period so far inside maintenance windows (their events count toward neither bad nor total).",
            base,
            &[],
            fig.excluded_seconds,
        );
        for w in &fig.windows {
            let window = w.window.to_string();
            f.add(
                "slo_excluded_seconds",
                "Seconds of the window inside maintenance windows.",
                base,
                &[("window", window.as_str())],
                w.excluded_seconds,
            );
        }
    }
    if let Some(e) = fig.period_events {
        for (kind, v) in [("total", e.total), ("bad", e.bad)] {
            f.add(
                "slo_period_events",
                "Events over the period, by kind (total, bad).",
                base,
                &[("kind", kind)],
                v,
            );
        }
    }
    for a in &fig.alerts {
        let (long, short) = (a.long.to_string(), a.short.to_string());
        let l = &[
            ("long_window", long.as_str()),
            ("severity", a.severity.as_str()),
            ("short_window", short.as_str()),
        ];
        f.add(
            "slo_alert_firing",
            "1 while this multiwindow burn-rate alert fires.",
            base,
            l,
            if a.firing { 1.0 } else { 0.0 },
        );
        f.add(
            "slo_alert_burn_rate_threshold",
            "Burn rate both windows must exceed for this alert to fire (the policy's factor).",
            base,
            l,
            a.burn_rate_threshold,
        );
    }
    f.add(
        "slo_release_frozen",
        "1 while the remaining budget ratio is below the release-freeze policy.",
        base,
        &[],
        if fig.release_frozen { 1.0 } else { 0.0 },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Events;
    use crate::model::{test_slo, Severity, Window};
    use crate::state::{AlertStatus, Figures, LabelSet, SloOutcome, Status, WindowFigures};
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
                excluded_seconds: 0.0,
            }],
            period_error_ratio: 0.0005,
            remaining_ratio: 0.5,
            remaining_seconds: 1296.0,
            coverage: crate::budget::Coverage::at(Some(1_764_118_200), 1_764_118_800, 2_592_000.0),
            period_events: Some(Events::new(500.0, 1e6)),
            period_start: 1_761_526_800,
            period_end: 1_764_118_800,
            budget_seconds: 2_592.0,
            excluded_seconds: 0.0,
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

    /// Two more instances beside `snapshot()`'s: a grouped one whose
    /// group and spec labels share names with the labels errbudget adds
    /// (errbudget's win, as on every series), with special and extreme
    /// values, and a failed one that never had figures.
    fn varied_snapshot() -> Snapshot {
        let first = snapshot().instances.remove(0);
        let Some(figures) = first.figures.clone() else {
            unreachable!("snapshot() has figures");
        };
        let mut grouped = (*first.slo).clone();
        grouped.name = "latency".into();
        grouped.labels.insert("period".into(), "spec's own".into());
        grouped.labels.insert("a".into(), String::new());
        grouped.labels.insert("zz".into(), "ü \\\"".into());
        let mut extreme = figures.clone();
        extreme.windows.push(WindowFigures {
            window: Window::from_secs(86_400).unwrap(),
            events: Events::new(0.0, 0.0),
            error_ratio: f64::NAN,
            burn_rate: 1e21,
            exhaustion_seconds: f64::NEG_INFINITY,
            excluded_seconds: 0.0,
        });
        extreme.remaining_ratio = -0.0;
        extreme.remaining_seconds = -1.5e-7;
        let mut group = LabelSet::new();
        group.insert("route".into(), "/a\nb".into());
        group.insert("window".into(), "group's own".into());
        let results: Vec<(Arc<crate::model::Slo>, SloOutcome)> = vec![
            (first.slo, Ok(vec![(first.group, Status::Ok, figures)])),
            (
                Arc::new(grouped),
                Ok(vec![(group, Status::NoData, extreme)]),
            ),
            (
                Arc::new(test_slo("down", "avail", 99.0, 7)),
                Err("query failed".into()),
            ),
        ];
        Snapshot::default().next(1_764_118_830, results)
    }

    /// The `slo_*` series as `prometheus` metric families, with labels
    /// merged in a `LabelSet`, encoded by the `prometheus` crate (text)
    /// and by `openmetrics::encode`: what the direct writer replaced, and
    /// must match byte for byte.
    #[derive(Default)]
    struct Reference(BTreeMap<&'static str, (&'static str, Vec<prometheus::proto::Metric>)>);

    impl Sink for Reference {
        fn add(
            &mut self,
            name: &'static str,
            help: &'static str,
            base: &[Label<'_>],
            extra: &[(&str, &str)],
            value: f64,
        ) {
            use prometheus::proto::{Gauge, LabelPair, Metric};
            let mut labels: LabelSet = base
                .iter()
                .map(|l| (l.name.to_string(), l.value.to_string()))
                .collect();
            for (k, v) in extra {
                labels.insert(k.to_string(), v.to_string());
            }
            let pairs = labels
                .into_iter()
                .map(|(k, v)| {
                    let mut p = LabelPair::default();
                    p.set_name(k);
                    p.set_value(v);
                    p
                })
                .collect();
            let mut g = Gauge::default();
            g.set_value(value);
            let mut m = Metric::from_label(pairs);
            m.set_gauge(g);
            self.0.entry(name).or_insert((help, Vec::new())).1.push(m);
        }
    }

    fn reference(snapshot: &Snapshot, format: Format) -> Vec<u8> {
        let mut r = Reference::default();
        for i in &snapshot.instances {
            instance_series(&mut r, i);
        }
        let families: Vec<MetricFamily> =
            r.0.into_iter()
                .map(|(name, (help, metrics))| {
                    let mut mf = MetricFamily::default();
                    mf.set_name(name.to_string());
                    mf.set_help(help.to_string());
                    mf.set_field_type(prometheus::proto::MetricType::GAUGE);
                    mf.set_metric(metrics);
                    mf
                })
                .collect();
        encode(&families, format).unwrap()
    }

    #[test]
    fn slo_series_are_written_as_the_prometheus_crate_encodes_them() {
        let snap = varied_snapshot();
        for format in [Format::Text, Format::OpenMetrics] {
            let got = String::from_utf8(slo_exposition(&snap, format)).unwrap();
            let want = String::from_utf8(reference(&snap, format)).unwrap();
            assert_eq!(got, want, "{format:?}");
        }
        let text = String::from_utf8(slo_exposition(&snap, Format::Text)).unwrap();
        // What the snapshot was built to hold, so the comparison above
        // covers it.
        for expected in [
            r#"window="1d""#,
            r#"period="30d""#,
            r#"zz="ü \\\"""#,
            r#"route="/a\nb""#,
            "} NaN\n",
            "} -Inf\n",
            "} 1000000000000000000000\n",
            "} -0\n",
            "} -0.00000015\n",
            r#"slo_evaluation_success{service="down",slo="avail"} 0"#,
        ] {
            assert!(text.contains(expected), "{expected} not in\n{text}");
        }
        // Where errbudget adds a label the instance has too, it wins.
        for line in text.lines() {
            if line.starts_with("slo_info{") {
                assert!(!line.contains("spec's own"), "{line}");
            }
            if line.starts_with("slo_burn_rate{") {
                assert!(!line.contains("group's own"), "{line}");
            }
        }
        assert!(text.contains(r#"slo_objective_ratio{a="",period="spec's own""#));
    }

    fn gunzip(chunks: &[Bytes]) -> String {
        use std::io::Read;
        let body = chunks.concat();
        // Reads one member only: the answer must be a single one.
        let mut d = flate2::read::GzDecoder::new(&body[..]);
        let mut out = String::new();
        d.read_to_string(&mut out).expect("gzip");
        assert!(d.into_inner().is_empty(), "bytes after the gzip member");
        out
    }

    /// The exposition without the process's own series, which change from
    /// one scrape to the next (CPU time, memory).
    fn steady(body: &str) -> String {
        body.lines()
            .filter(|l| !l.contains("process_"))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[tokio::test]
    async fn gzip_answers_decode_to_the_plain_ones_and_are_compressed_once_per_snapshot() {
        let metrics = DaemonMetrics::new();
        let first = Arc::new(snapshot());
        let second = Arc::new(varied_snapshot());
        for format in [Format::Text, Format::OpenMetrics] {
            let cache = Cache::default();
            let scrape = |snap: &Arc<Snapshot>, encoding| {
                let (cache, metrics, snap) = (&cache, &metrics, snap.clone());
                async move {
                    let answer = cache
                        .scrape(metrics, &snap, format, encoding)
                        .await
                        .unwrap();
                    assert_eq!(answer.encoding, encoding);
                    answer.chunks
                }
            };
            let plain = scrape(&first, Encoding::Identity).await.concat();
            assert_ne!(plain[..2], [0x1f, 0x8b]);
            let plain = String::from_utf8(plain).unwrap();
            assert!(plain.contains("slo_burn_rate{"), "{plain}");
            for _ in 0..3 {
                let gz = scrape(&first, Encoding::Gzip).await;
                assert_eq!(steady(&gunzip(&gz)), steady(&plain));
            }
            assert_eq!((cache.renders(), cache.compressions()), (1, 1));
            // A new snapshot replaces both bodies.
            let gz = scrape(&second, Encoding::Gzip).await;
            assert_eq!((cache.renders(), cache.compressions()), (2, 2));
            let plain2 = scrape(&second, Encoding::Identity).await.concat();
            let plain2 = String::from_utf8(plain2).unwrap();
            assert_eq!(steady(&gunzip(&gz)), steady(&plain2));
            assert!(plain2.contains(r#"slo="latency""#));
            assert!(!plain.contains(r#"slo="latency""#));
            // Nothing of the first is kept: going back renders again.
            let gz = scrape(&first, Encoding::Gzip).await;
            assert_eq!((cache.renders(), cache.compressions()), (3, 3));
            assert_eq!(steady(&gunzip(&gz)), steady(&plain));
        }
    }

    #[test]
    fn gzip_only_when_the_scraper_accepts_it() {
        let cases = [
            (None, Encoding::Identity),
            (Some(""), Encoding::Identity),
            (Some("identity"), Encoding::Identity),
            (Some("br, deflate"), Encoding::Identity),
            // Prometheus, as Go's net/http sends it.
            (Some("gzip"), Encoding::Gzip),
            (Some("deflate, GZIP;q=0.5"), Encoding::Gzip),
            (Some("x-gzip"), Encoding::Gzip),
            (Some("*"), Encoding::Gzip),
            (Some("gzip;q=0"), Encoding::Identity),
            (Some("gzip; q=0.000"), Encoding::Identity),
            (Some("gzip;q=0, *"), Encoding::Identity),
            (Some("*;q=0, gzip"), Encoding::Gzip),
            (Some("gzip;q=nonsense"), Encoding::Identity),
        ];
        for (header, want) in cases {
            assert_eq!(Encoding::negotiate(header), want, "{header:?}");
        }
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
    async fn slo_series_are_built_once_per_snapshot_for_both_formats() {
        let metrics = DaemonMetrics::new();
        let cache = Cache::default();
        let first = Arc::new(snapshot());
        let mut bodies = Vec::new();
        for _ in 0..5 {
            for format in [Format::Text, Format::OpenMetrics] {
                let answer = cache
                    .scrape(&metrics, &first, format, Encoding::Identity)
                    .await
                    .unwrap();
                bodies.push((format, answer.chunks.concat()));
            }
        }
        assert_eq!(cache.renders(), 1);
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
        cache
            .scrape(&metrics, &second, Format::Text, Encoding::Identity)
            .await
            .unwrap();
        assert_eq!(cache.renders(), 2);
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
    fn every_documented_series_is_rendered_with_escaped_labels() {
        // A calendar SLO with a maintenance window beside the rolling ones:
        // its series exist only for such SLOs.
        let mut snap = snapshot();
        let mut monthly = snap.instances[0].clone();
        let mut slo = (*monthly.slo).clone();
        slo.name = "monthly".into();
        slo.calendar = Some(crate::calendar::Calendar {
            unit: crate::calendar::Unit::Month,
            tz: chrono_tz::Europe::Berlin,
        });
        slo.exclusions = vec![crate::exclusion::Exclusion::once(0, 300, String::new()).unwrap()];
        monthly.slo = std::sync::Arc::new(slo);
        snap.instances.push(monthly);
        let metrics = DaemonMetrics::new();
        let records = Arc::new(crate::records::Records::default());
        records.write(|b| {
            b.add_deployment(crate::records::Deployment {
                service: "check\"out".into(),
                version: "v1".into(),
                at: 1_000,
                source: crate::records::Source::Api,
                description: String::new(),
            })
        });
        metrics
            .registry
            .register(Box::new(DeploymentsCollector::new(records).unwrap()))
            .unwrap();
        let text = render(&metrics, &snap).unwrap();
        assert!(
            text.contains("slo_deployments_total{service=\"check\\\"out\"} 1\n"),
            "{text}"
        );
        // OpenMetrics names the family without `_total`, the sample with it.
        let om =
            String::from_utf8(encode(&metrics.registry.gather(), Format::OpenMetrics).unwrap())
                .unwrap();
        assert!(om.contains("# TYPE slo_deployments counter\n"), "{om}");
        assert!(
            om.contains("slo_deployments_total{service=\"check\\\"out\"} 1\n"),
            "{om}"
        );
        let documented = crate::interface_doc::documented_series();
        let types: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .filter(|(n, _)| n.starts_with("slo_") || n.starts_with("errbudget_"))
            .collect();
        // Every rendered series is documented, with its type.
        for (name, kind) in &types {
            assert!(
                documented.iter().any(|(n, k)| n == name && k == kind),
                "{name} ({kind}) is rendered but not in docs/interface.md"
            );
        }
        // Every documented slo_* series is rendered for an event SLO with
        // the default policy; daemon series need their feature (receivers,
        // a state directory) to have samples.
        for (name, _) in documented.iter().filter(|(n, _)| n.starts_with("slo_")) {
            assert!(
                types.iter().any(|(n, _)| n == name),
                "{name} is documented but not rendered:\n{text}"
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
