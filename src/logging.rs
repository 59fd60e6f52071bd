//! The daemon's log, written as Prometheus components write theirs: one
//! line per event on stderr, logfmt (`ts=… level=info caller=daemon.rs:120
//! msg="…" key=value`) or JSON with the same keys at the top level.
//!
//! A log write never takes the process down: a full disk, a closed
//! stderr or a file-size limit (`ulimit -f`, whose SIGXFSZ is ignored so
//! the write fails instead of killing us) drops the line and counts it
//! in `errbudget_log_lines_dropped_total`.
//!
//! Also owns the lines the daemon writes about alerts changing state.

use std::fmt;
use std::io::Write;
use std::sync::OnceLock;
use std::time::SystemTime;

use clap::ValueEnum;
use prometheus::IntCounter;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Logfmt,
    Json,
}

/// The process-wide count of lines lost; every `DaemonMetrics` registers it.
pub fn dropped_counter() -> IntCounter {
    static DROPPED: OnceLock<IntCounter> = OnceLock::new();
    DROPPED
        .get_or_init(|| {
            IntCounter::new(
                "errbudget_log_lines_dropped_total",
                "Log lines that could not be written (full disk, closed stderr, file-size limit).",
            )
            .unwrap_or_else(|_| unreachable!("the metric name is valid"))
        })
        .clone()
}

/// Installs the global subscriber. `level` applies to errbudget's own
/// events; other crates' are kept at warn and above, so `debug` shows
/// our decisions rather than every socket read.
pub fn init(level: Level, format: Format) {
    ignore_sigxfsz();
    let others = level.min(Level::Warn);
    let filter = EnvFilter::new(format!("{},errbudget={}", others.as_str(), level.as_str()));
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(Stderr)
        .event_format(Line { format })
        .log_internal_errors(false);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
}

/// With SIGXFSZ at its default a write past `ulimit -f` kills the process;
/// ignored, the write returns EFBIG and the line is dropped.
fn ignore_sigxfsz() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no
    // handler code and touches no Rust state.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// stderr that never fails: a line it cannot write is counted and dropped.
struct Stderr;

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Stderr;
    fn make_writer(&'a self) -> Stderr {
        Stderr
    }
}

impl Write for Stderr {
    /// The formatter hands over one whole line per call.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::io::stderr().lock().write_all(buf).is_err() {
            dropped_counter().inc();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Line {
    format: Format,
}

impl<S, N> FormatEvent<S, N> for Line
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut entries: Vec<(&str, Value)> = vec![
            (
                "ts",
                Value::String(humantime::format_rfc3339_millis(SystemTime::now()).to_string()),
            ),
            ("level", Value::String(level_name(meta.level()).into())),
        ];
        let file = meta.file().unwrap_or("?");
        let file = file.rsplit('/').next().unwrap_or(file);
        entries.push((
            "caller",
            Value::String(format!("{file}:{}", meta.line().unwrap_or(0))),
        ));
        entries.push(("msg", Value::String(fields.message.unwrap_or_default())));
        let line = match self.format {
            Format::Json => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.to_string(), v);
                }
                for (k, v) in fields.rest {
                    map.insert(k.to_string(), v);
                }
                Value::Object(map).to_string()
            }
            Format::Logfmt => {
                let mut out = String::new();
                for (k, v) in entries
                    .iter()
                    .map(|(k, v)| (*k, v))
                    .chain(fields.rest.iter().map(|(k, v)| (*k, v)))
                {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(k);
                    out.push('=');
                    logfmt_value(&mut out, v);
                }
                out
            }
        };
        writeln!(writer, "{line}")
    }
}

fn level_name(l: &tracing::Level) -> &'static str {
    match *l {
        tracing::Level::ERROR => "error",
        tracing::Level::WARN => "warn",
        tracing::Level::INFO => "info",
        tracing::Level::DEBUG => "debug",
        tracing::Level::TRACE => "trace",
    }
}

/// A value as go-logfmt writes it: bare when it needs no quoting, else a
/// double-quoted string with JSON escapes.
fn logfmt_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => {
            let bare = !s.is_empty()
                && s.chars()
                    .all(|c| c > ' ' && c != '"' && c != '=' && c != '\\' && c != '\u{7f}');
            if bare {
                out.push_str(s);
            } else {
                out.push_str(&Value::String(s.clone()).to_string());
            }
        }
        other => out.push_str(&other.to_string()),
    }
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    rest: Vec<(&'static str, Value)>,
}

impl Fields {
    fn put(&mut self, field: &Field, v: Value) {
        if field.name() == "message" {
            self.message = Some(match v {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.rest.push((field.name(), v));
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or Inf; those are written as strings.
        let v = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field, v);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_only_what_needs_it() {
        let cases = [
            ("plain", "plain"),
            ("two words", "\"two words\""),
            ("a=b", "\"a=b\""),
            ("", "\"\""),
            ("say \"hi\"\n", "\"say \\\"hi\\\"\\n\""),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            logfmt_value(&mut out, &Value::String(input.into()));
            assert_eq!(out, want, "{input:?}");
        }
    }
}
