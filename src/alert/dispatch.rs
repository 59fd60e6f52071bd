//! Alert delivery: takes the notifications `decide` produced and delivers
//! them to every Alertmanager (API v2) and every webhook (Alertmanager's
//! webhook format, version 4). Owns the per-receiver queues and workers,
//! retries with backoff, the request bodies and
//! `errbudget_notifications_total{receiver, outcome}`. Decides nothing:
//! what fires, when it is re-sent and when it resolves is `decide`'s job.
//!
//! Queueing: each receiver has its own worker task and a bounded FIFO queue
//! of batches ([`DEFAULT_QUEUE_CAPACITY`]). [`Dispatcher::dispatch`] never
//! waits: when a receiver's queue is full the batch is dropped for that
//! receiver only, so a dead webhook never delays the Alertmanagers, and the
//! evaluation loop never waits for anyone. A worker sends one batch at a
//! time, in order, so a resolved notification never overtakes the firing
//! one it ends; while a batch is being retried, later batches wait.
//!
//! Counting: `errbudget_notifications_total` counts alerts (notifications),
//! not batches or HTTP requests: `sent` when the receiver accepted the batch
//! holding it, `failed` when its batch gave up (non-retryable answer,
//! retry time used up, shutdown), `dropped` when its batch found the queue
//! full. Retries are not counted, so per receiver
//! `sent + failed + dropped` = alerts handed to `dispatch`, once every
//! queue has drained.
//!
//! Never logs header values, tokens, passwords, URL userinfo or query
//! strings: receivers are named `alertmanager:<host:port>` and
//! `webhook:<host:port>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::CONTENT_TYPE;
use reqwest::{StatusCode, Url};
use serde::Serialize;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::decide::Notification;
use crate::config::{AlertingSettings, HttpClientSettings};
use crate::httpclient::{self, ClientError, HttpClient};
use crate::metrics::DaemonMetrics;
use crate::state::LabelSet;
use crate::time::rfc3339;

/// Batches each receiver's queue holds besides the one being sent. One
/// batch is what one evaluation cycle decided, so 256 covers hours of
/// cycles: enough to ride out a receiver outage of the retry length, small
/// enough that a dead receiver costs little memory.
pub const DEFAULT_QUEUE_CAPACITY: usize = 256;
/// First retry delay; doubled per retry up to [`DEFAULT_MAX_BACKOFF`],
/// each delay plus up to 100% jitter so an HA pair of errbudgets does not
/// retry in lockstep.
pub const DEFAULT_MIN_BACKOFF: Duration = Duration::from_millis(500);
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(15);
/// By default a batch is retried for this many resend intervals: long
/// enough that an Alertmanager restarted or down for a few minutes still
/// gets the resolved notification, after which a firing alert has been
/// re-sent anyway.
pub const DEFAULT_RETRY_RESENDS: u32 = 5;
/// How long `shutdown` waits past its deadline for workers to notice it
/// before they are aborted.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// How delivery behaves, beyond the receivers' own settings.
#[derive(Clone, Debug)]
pub struct DeliveryOptions {
    /// errbudget's own URL, sent to webhooks as `externalURL`.
    pub external_url: String,
    /// See [`DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
    /// How long one batch is retried, from its first attempt. `None`:
    /// [`DEFAULT_RETRY_RESENDS`] × `resend_interval`.
    pub retry_for: Option<Duration>,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            external_url: String::new(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            retry_for: None,
            min_backoff: DEFAULT_MIN_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

/// Delivery could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// `receiver` is the position in the settings, e.g.
    /// `alerting.webhooks[1]`, since the URL itself may be what is wrong.
    #[error("cannot set up {receiver}")]
    Receiver {
        receiver: String,
        #[source]
        source: ClientError,
    },
    #[error("alert delivery must be started inside a tokio runtime")]
    NoRuntime,
    #[error("the delivery queue capacity must be at least 1")]
    NoQueue,
}

/// Where a receiver's alerts go and in which format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverKind {
    /// `POST <url>/api/v2/alerts`, a JSON array of postable alerts.
    Alertmanager,
    /// `POST <url>`, Alertmanager's webhook message version 4.
    Webhook,
}

/// The `receiver` label value: `alertmanager:<host:port>` or
/// `webhook:<host:port>`. Userinfo, path and query string are left out
/// because they may hold credentials (Slack-style URLs keep the token in
/// the path).
pub fn receiver_name(kind: ReceiverKind, url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    let host_port = match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    match kind {
        ReceiverKind::Alertmanager => format!("alertmanager:{host_port}"),
        ReceiverKind::Webhook => format!("webhook:{host_port}"),
    }
}

/// Hands batches of notifications to one worker per receiver. Every
/// Alertmanager gets every alert (an HA pair deduplicates itself), and so
/// does every webhook.
pub struct Dispatcher {
    queues: Vec<Queue>,
    workers: Vec<JoinHandle<()>>,
    /// Set once by `shutdown`: the instant workers must stop by.
    stop: watch::Sender<Option<Instant>>,
    metrics: Arc<DaemonMetrics>,
}

struct Queue {
    receiver: String,
    tx: mpsc::Sender<Batch>,
}

/// Builds every receiver's client and endpoint as [`Dispatcher::new`]
/// does, without starting anything: `check` accepts what `run` starts.
pub fn check_receivers(settings: &AlertingSettings) -> Result<(), DeliverError> {
    receivers(settings).map(drop)
}

/// Every receiver is built before any worker starts, so a bad one leaves
/// nothing running behind.
fn receivers(settings: &AlertingSettings) -> Result<Vec<Receiver>, DeliverError> {
    let configured = settings
        .alertmanagers
        .iter()
        .enumerate()
        .map(|(i, s)| (ReceiverKind::Alertmanager, i, s))
        .chain(
            settings
                .webhooks
                .iter()
                .enumerate()
                .map(|(i, s)| (ReceiverKind::Webhook, i, s)),
        );
    let mut receivers = Vec::new();
    for (kind, index, client) in configured {
        let receiver = Receiver::new(kind, client).map_err(|source| {
            let list = match kind {
                ReceiverKind::Alertmanager => "alertmanagers",
                ReceiverKind::Webhook => "webhooks",
            };
            DeliverError::Receiver {
                receiver: format!("alerting.{list}[{index}]"),
                source,
            }
        })?;
        receivers.push(receiver);
    }
    Ok(receivers)
}

/// One `dispatch` call's notifications, shared by all receivers' queues.
type Batch = Arc<[Notification]>;

impl Dispatcher {
    /// Builds a client per receiver (reading credential and TLS files now,
    /// so a bad file is a configuration error) and starts one worker task
    /// per receiver on the current tokio runtime (called outside one, it
    /// fails with [`DeliverError::NoRuntime`]). No receivers is fine:
    /// `dispatch` then does nothing.
    pub fn new(
        settings: &AlertingSettings,
        options: DeliveryOptions,
        metrics: Arc<DaemonMetrics>,
    ) -> Result<Dispatcher, DeliverError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| DeliverError::NoRuntime)?;
        if options.queue_capacity == 0 {
            return Err(DeliverError::NoQueue);
        }
        let receivers = receivers(settings)?;
        let retry_for = options.retry_for.unwrap_or_else(|| {
            settings
                .resend_interval
                .saturating_mul(DEFAULT_RETRY_RESENDS)
        });
        let external_url: Arc<str> = options.external_url.as_str().into();
        let (stop, _) = watch::channel(None);
        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for receiver in receivers {
            // Exposed at 0 from the start, so a dashboard can tell "nothing
            // failed" from "not configured".
            for outcome in ["sent", "failed", "dropped"] {
                metrics
                    .notifications_total
                    .with_label_values(&[receiver.name.as_str(), outcome]);
            }
            let (tx, rx) = mpsc::channel(options.queue_capacity);
            queues.push(Queue {
                receiver: receiver.name.clone(),
                tx,
            });
            let worker = Worker {
                receiver,
                rx,
                stop: stop.subscribe(),
                external_url: external_url.clone(),
                retry_for,
                min_backoff: options.min_backoff,
                max_backoff: options.max_backoff.max(options.min_backoff),
                metrics: metrics.clone(),
            };
            workers.push(runtime.spawn(worker.run()));
        }
        Ok(Dispatcher {
            queues,
            workers,
            stop,
            metrics,
        })
    }

    /// The receivers' `receiver` label values, in settings order
    /// (Alertmanagers, then webhooks).
    pub fn receivers(&self) -> impl Iterator<Item = &str> {
        self.queues.iter().map(|q| q.receiver.as_str())
    }

    /// Never blocks and never awaits: enqueues the batch on every receiver's
    /// bounded queue. A full queue drops the batch for that receiver,
    /// counted as `outcome="dropped"` and logged. An empty batch is ignored.
    pub fn dispatch(&self, batch: Vec<Notification>) {
        if batch.is_empty() {
            return;
        }
        let alerts = batch.len();
        let batch: Batch = batch.into();
        for queue in &self.queues {
            let closed = match queue.tx.try_send(batch.clone()) {
                Ok(()) => continue,
                Err(TrySendError::Full(_)) => false,
                // Only if the worker panicked: nothing will ever send.
                Err(TrySendError::Closed(_)) => true,
            };
            self.metrics
                .notifications_total
                .with_label_values(&[queue.receiver.as_str(), "dropped"])
                .inc_by(alerts as u64);
            if closed {
                tracing::error!(
                    receiver = %queue.receiver,
                    alerts,
                    "notification worker is gone; batch dropped"
                );
            } else {
                tracing::warn!(
                    receiver = %queue.receiver,
                    alerts,
                    "notification queue is full (receiver slow or down); batch dropped"
                );
            }
        }
    }

    /// Stops accepting, lets workers send what is in flight and queued until
    /// `deadline` from now, then returns. Batches still unsent then count as
    /// `failed`.
    pub async fn shutdown(self, deadline: Duration) {
        let until = Instant::now() + deadline;
        // send_replace stores the value even when no worker is listening.
        self.stop.send_replace(Some(until));
        // Closing the queues: workers drain what is queued, then end.
        drop(self.queues);
        let mut workers = self.workers;
        let finished = futures::future::join_all(workers.iter_mut());
        if tokio::time::timeout_at(until + SHUTDOWN_GRACE, finished)
            .await
            .is_err()
        {
            tracing::warn!("notification workers did not stop in time; aborting them");
            for worker in &workers {
                worker.abort();
            }
        }
    }
}

/// One receiver's endpoint and client.
struct Receiver {
    kind: ReceiverKind,
    name: String,
    url: Url,
    http: HttpClient,
    timeout: Duration,
}

impl Receiver {
    fn new(kind: ReceiverKind, settings: &HttpClientSettings) -> Result<Receiver, ClientError> {
        let url = match kind {
            // The URL may carry a path prefix (`http://host/alertmanager`).
            ReceiverKind::Alertmanager => {
                let base = httpclient::base_url(&settings.url, "Alertmanager")?;
                httpclient::join(&base, "api/v2/alerts", "Alertmanager")?
            }
            // Used as given: a webhook's query string may be its token.
            ReceiverKind::Webhook => httpclient::parse_url(&settings.url, "webhook")?,
        };
        Ok(Receiver {
            kind,
            name: receiver_name(kind, &url),
            http: HttpClient::new(settings)?,
            url,
            timeout: settings.timeout,
        })
    }

    fn body(&self, batch: &[Notification], external_url: &str) -> serde_json::Result<Vec<u8>> {
        match self.kind {
            ReceiverKind::Alertmanager => serde_json::to_vec(&alertmanager_body(batch)),
            ReceiverKind::Webhook => {
                serde_json::to_vec(&webhook_body(batch, &self.name, external_url))
            }
        }
    }
}

struct Worker {
    receiver: Receiver,
    rx: mpsc::Receiver<Batch>,
    stop: watch::Receiver<Option<Instant>>,
    external_url: Arc<str>,
    retry_for: Duration,
    min_backoff: Duration,
    max_backoff: Duration,
    metrics: Arc<DaemonMetrics>,
}

impl Worker {
    async fn run(mut self) {
        while let Some(batch) = self.rx.recv().await {
            self.deliver(&batch).await;
        }
    }

    /// Sends one batch, retrying, and counts the outcome.
    async fn deliver(&self, batch: &[Notification]) {
        let alerts = batch.len();
        let result = match self.receiver.body(batch, &self.external_url) {
            Ok(body) => self.send(&body).await,
            Err(e) => Err(SendError::Encode(e.to_string())),
        };
        let outcome = match &result {
            Ok(()) => "sent",
            Err(_) => "failed",
        };
        self.metrics
            .notifications_total
            .with_label_values(&[self.receiver.name.as_str(), outcome])
            .inc_by(alerts as u64);
        match result {
            Ok(()) => tracing::debug!(receiver = %self.receiver.name, alerts, "notifications sent"),
            Err(error) => tracing::warn!(
                receiver = %self.receiver.name,
                alerts,
                %error,
                "giving up on notification batch"
            ),
        }
    }

    /// Retries until `retry_for` has passed since the first attempt, or
    /// until the shutdown deadline, whichever comes first. A `Retry-After`
    /// that points past that deadline ends the retries at once: waiting
    /// could not lead to a send.
    async fn send(&self, body: &[u8]) -> Result<(), SendError> {
        let now = Instant::now();
        let stop_at = *self.stop.borrow();
        if stop_at.is_some_and(|at| at <= now) {
            return Err(SendError::ShutDown);
        }
        let deadline = match stop_at {
            Some(at) => at.min(now + self.retry_for),
            None => now + self.retry_for,
        };
        let mut stop = self.stop.clone();
        tokio::select! {
            sent = self.send_with_retries(body, deadline) => sent,
            // Shutdown began while this batch was in flight or waiting to
            // retry: stop at its deadline, not the batch's.
            () = wait_for_stop(&mut stop) => Err(SendError::ShutDown),
        }
    }

    async fn send_with_retries(&self, body: &[u8], deadline: Instant) -> Result<(), SendError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            // Bounded by time instead, in `adjust`.
            .without_max_times()
            .with_jitter()
            .with_jitter_seed(httpclient::jitter_seed());
        (|| self.attempt(body, deadline))
            .retry(backoff)
            .when(|f: &Failure| f.error.is_transient())
            .adjust(|f: &Failure, next: Option<Duration>| {
                let delay = f.retry_after.or(next)?;
                (Instant::now() + delay < deadline).then_some(delay)
            })
            .notify(|f: &Failure, delay: Duration| {
                tracing::debug!(
                    receiver = %self.receiver.name,
                    error = %f.error,
                    ?delay,
                    "retrying notification batch"
                );
            })
            .await
            .map_err(|f| f.error)
    }

    /// One POST, its timeout cut to what is left before `deadline`.
    async fn attempt(&self, body: &[u8], deadline: Instant) -> Result<(), Failure> {
        let timeout = self
            .receiver
            .timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if timeout.is_zero() {
            return Err(SendError::Timeout {
                after: self.receiver.timeout,
            }
            .into());
        }
        let mut response = self
            .receiver
            .http
            .post(self.receiver.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    SendError::Timeout { after: timeout }
                } else {
                    SendError::Transport {
                        reason: httpclient::describe(e),
                    }
                }
            })?;
        let status = response.status();
        // Read (bounded) even on success so the connection can be reused.
        let answer = httpclient::read_error_body(&mut response).await;
        if status.is_success() {
            return Ok(());
        }
        let retry_after = (status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE)
            .then(|| httpclient::retry_after(response.headers()))
            .flatten();
        Err(Failure {
            error: SendError::Http {
                status: status.as_u16(),
                body: httpclient::excerpt(&answer),
            },
            retry_after,
        })
    }
}

/// Resolves at the shutdown deadline once `shutdown` has set one; never if
/// the dispatcher is dropped without it (the queue closing ends the worker).
async fn wait_for_stop(stop: &mut watch::Receiver<Option<Instant>>) {
    let at = match stop.wait_for(Option::is_some).await {
        Ok(at) => *at,
        Err(_) => None,
    };
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Why a batch was not delivered. Never holds a URL or a credential.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("no answer within {}", humantime::format_duration(*.after))]
    Timeout { after: Duration },
    #[error("cannot reach the receiver: {reason}")]
    Transport { reason: String },
    #[error("receiver answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("errbudget is shutting down")]
    ShutDown,
    #[error("cannot encode the notifications: {0}")]
    Encode(String),
}

impl SendError {
    /// Connection trouble, timeouts, 5xx and 429 may pass; any other answer
    /// (a 400 for an alert Alertmanager rejects, a 401) will not.
    fn is_transient(&self) -> bool {
        match self {
            SendError::Timeout { .. } | SendError::Transport { .. } => true,
            SendError::Http { status, .. } => *status == 429 || *status >= 500,
            SendError::ShutDown | SendError::Encode(_) => false,
        }
    }
}

/// A failed attempt, with the receiver's requested delay if it gave one.
struct Failure {
    error: SendError,
    retry_after: Option<Duration>,
}

impl From<SendError> for Failure {
    fn from(error: SendError) -> Self {
        Failure {
            error,
            retry_after: None,
        }
    }
}

/// One element of `POST /api/v2/alerts` (Alertmanager's `postableAlert`).
#[derive(Debug, Serialize)]
struct PostableAlert<'a> {
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    #[serde(rename = "startsAt")]
    starts_at: String,
    /// A firing alert's `endsAt` lies ahead (`decide` puts it a few resend
    /// intervals out), so Alertmanager resolves it by itself if errbudget
    /// dies; a resolved alert's is when it ended, which resolves it now.
    #[serde(rename = "endsAt")]
    ends_at: String,
    /// Left out when empty: Alertmanager validates it as a URI.
    #[serde(rename = "generatorURL", skip_serializing_if = "str::is_empty")]
    generator_url: &'a str,
}

fn alertmanager_body(batch: &[Notification]) -> Vec<PostableAlert<'_>> {
    batch
        .iter()
        .map(|n| PostableAlert {
            labels: &n.labels,
            annotations: &n.annotations,
            starts_at: rfc3339(n.starts_at),
            ends_at: rfc3339(n.ends_at),
            generator_url: &n.generator_url,
        })
        .collect()
}

/// Alertmanager's webhook message, version 4, so receivers written for
/// Alertmanager read ours unchanged. Source: prometheus/alertmanager
/// `notify/webhook/webhook.go` (`Message`: the embedded `template.Data`
/// plus `version`, `groupKey`, `truncatedAlerts`), `template/template.go`
/// (`Data`, `Alert`) and the `<webhook_config>` payload in the
/// Alertmanager configuration docs. Fields in Alertmanager's order.
///
/// errbudget does not group alerts: one message carries one `dispatch`
/// batch, `groupLabels` is empty and `groupKey` is `{}:{}` (what
/// Alertmanager's root route without `group_by` sends). Receivers that
/// need an alert's identity use `alerts[].fingerprint`.
#[derive(Debug, Serialize)]
struct WebhookMessage<'a> {
    receiver: &'a str,
    /// `firing` if any alert in the message fires.
    status: &'static str,
    alerts: Vec<WebhookAlert<'a>>,
    #[serde(rename = "groupLabels")]
    group_labels: BTreeMap<&'a str, &'a str>,
    /// The label pairs every alert has.
    #[serde(rename = "commonLabels")]
    common_labels: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "commonAnnotations")]
    common_annotations: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    #[serde(rename = "groupKey")]
    group_key: &'static str,
    #[serde(rename = "truncatedAlerts")]
    truncated_alerts: u64,
}

#[derive(Debug, Serialize)]
struct WebhookAlert<'a> {
    status: &'static str,
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

fn webhook_body<'a>(
    batch: &'a [Notification],
    receiver: &'a str,
    external_url: &'a str,
) -> WebhookMessage<'a> {
    let status = |resolved: bool| if resolved { "resolved" } else { "firing" };
    WebhookMessage {
        receiver,
        status: status(batch.iter().all(|n| n.resolved)),
        alerts: batch
            .iter()
            .map(|n| WebhookAlert {
                status: status(n.resolved),
                labels: &n.labels,
                annotations: &n.annotations,
                starts_at: rfc3339(n.starts_at),
                ends_at: rfc3339(n.ends_at),
                generator_url: &n.generator_url,
                fingerprint: fingerprint(&n.labels),
            })
            .collect(),
        group_labels: BTreeMap::new(),
        common_labels: common(batch.iter().map(|n| &n.labels)),
        common_annotations: common(batch.iter().map(|n| &n.annotations)),
        external_url,
        version: "4",
        group_key: "{}:{}",
        truncated_alerts: 0,
    }
}

/// The name/value pairs present, with the same value, in every set.
fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> BTreeMap<&'a str, &'a str> {
    let Some(first) = sets.next() else {
        return BTreeMap::new();
    };
    let mut shared: BTreeMap<&str, &str> = first
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for set in sets {
        shared.retain(|k, v| set.get(*k).map(String::as_str) == Some(*v));
    }
    shared
}

/// An alert's fingerprint as Alertmanager computes it (Prometheus'
/// `model.LabelSet.Fingerprint`): 64-bit FNV-1a over the label names in
/// sorted order, each name and value followed by a 0xff byte (a byte that
/// never occurs in UTF-8), printed as 16 hex digits. Stable across runs and
/// independent of label order, and equal to the `fingerprint` Alertmanager
/// shows for the same alert, so receivers can correlate both.
pub fn fingerprint(labels: &LabelSet) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const SEPARATOR: u8 = 0xff;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for &b in bytes {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    // A BTreeMap iterates in byte order of the names, as Go's sort does.
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[SEPARATOR]);
        add(value.as_bytes());
        add(&[SEPARATOR]);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn notification(extra: &[(&str, &str)], resolved: bool) -> Notification {
        let mut l = labels(&[
            ("alertname", "ErrorBudgetBurn"),
            ("service", "checkout"),
            ("severity", "page"),
        ]);
        l.extend(labels(extra));
        Notification {
            labels: l,
            annotations: labels(&[("summary", "burning"), ("burn_rate", "20")]),
            starts_at: 1_790_000_000,
            ends_at: 1_790_000_240,
            resolved,
            generator_url: "http://errbudget:9465/slo/checkout/availability".into(),
        }
    }

    #[test]
    fn alertmanager_body_is_the_v2_postable_array() {
        let batch = vec![notification(&[("long_window", "1h")], false)];
        let body = serde_json::to_value(alertmanager_body(&batch)).unwrap();
        assert_eq!(
            body,
            json!([{
                "labels": {"alertname": "ErrorBudgetBurn", "long_window": "1h",
                           "service": "checkout", "severity": "page"},
                "annotations": {"burn_rate": "20", "summary": "burning"},
                "startsAt": "2026-09-21T14:13:20Z",
                "endsAt": "2026-09-21T14:17:20Z",
                "generatorURL": "http://errbudget:9465/slo/checkout/availability"
            }])
        );
        let mut no_url = notification(&[], true);
        no_url.generator_url.clear();
        let body = serde_json::to_value(alertmanager_body(&[no_url])).unwrap();
        assert!(body[0].get("generatorURL").is_none(), "{body}");
    }

    #[test]
    fn webhook_body_is_alertmanager_v4() {
        let batch = vec![
            notification(&[("long_window", "1h")], false),
            notification(&[("long_window", "6h")], true),
        ];
        let body = serde_json::to_value(webhook_body(
            &batch,
            "webhook:hooks:443",
            "http://errbudget:9465",
        ))
        .unwrap();
        let fp = |w: &str| fingerprint(&batch[usize::from(w == "6h")].labels);
        assert_eq!(
            body,
            json!({
                "receiver": "webhook:hooks:443",
                "status": "firing",
                "alerts": [
                    {"status": "firing",
                     "labels": {"alertname": "ErrorBudgetBurn", "long_window": "1h",
                                "service": "checkout", "severity": "page"},
                     "annotations": {"burn_rate": "20", "summary": "burning"},
                     "startsAt": "2026-09-21T14:13:20Z", "endsAt": "2026-09-21T14:17:20Z",
                     "generatorURL": "http://errbudget:9465/slo/checkout/availability",
                     "fingerprint": fp("1h")},
                    {"status": "resolved",
                     "labels": {"alertname": "ErrorBudgetBurn", "long_window": "6h",
                                "service": "checkout", "severity": "page"},
                     "annotations": {"burn_rate": "20", "summary": "burning"},
                     "startsAt": "2026-09-21T14:13:20Z", "endsAt": "2026-09-21T14:17:20Z",
                     "generatorURL": "http://errbudget:9465/slo/checkout/availability",
                     "fingerprint": fp("6h")}
                ],
                "groupLabels": {},
                "commonLabels": {"alertname": "ErrorBudgetBurn", "service": "checkout",
                                 "severity": "page"},
                "commonAnnotations": {"burn_rate": "20", "summary": "burning"},
                "externalURL": "http://errbudget:9465",
                "version": "4",
                "groupKey": "{}:{}",
                "truncatedAlerts": 0
            })
        );
        let all_resolved = vec![notification(&[], true)];
        let body = serde_json::to_value(webhook_body(&all_resolved, "r", "")).unwrap();
        assert_eq!(body["status"], "resolved");
    }

    #[test]
    fn receiver_names_leave_out_credentials_and_query() {
        let name = |kind, url: &str| receiver_name(kind, &Url::parse(url).unwrap());
        assert_eq!(
            name(
                ReceiverKind::Alertmanager,
                "https://bob:hunter2@am.example:9093/prefix/api/v2/alerts"
            ),
            "alertmanager:am.example:9093"
        );
        assert_eq!(
            name(ReceiverKind::Alertmanager, "http://am/api/v2/alerts"),
            "alertmanager:am:80"
        );
        assert_eq!(
            name(
                ReceiverKind::Webhook,
                "https://u:p@hooks.example/alert/x?token=s3cret#frag"
            ),
            "webhook:hooks.example:443"
        );
        assert_eq!(
            name(ReceiverKind::Webhook, "http://[::1]:8080/h"),
            "webhook:[::1]:8080"
        );
    }

    #[test]
    fn receivers_are_named_from_settings_without_secrets() {
        let settings = |url: &str| HttpClientSettings {
            url: url.into(),
            ..HttpClientSettings::default()
        };
        let am = Receiver::new(
            ReceiverKind::Alertmanager,
            &settings("http://u:pw@127.0.0.1:9093/am"),
        )
        .unwrap();
        assert_eq!(
            am.url.as_str(),
            "http://u:pw@127.0.0.1:9093/am/api/v2/alerts"
        );
        assert_eq!(am.name, "alertmanager:127.0.0.1:9093");
        let hook = Receiver::new(ReceiverKind::Webhook, &settings("http://h:1/x?key=abc")).unwrap();
        assert_eq!(hook.url.as_str(), "http://h:1/x?key=abc");
        assert_eq!(hook.name, "webhook:h:1");
        assert!(Receiver::new(ReceiverKind::Alertmanager, &settings("http://h/?q=1")).is_err());
    }

    #[test]
    fn fingerprint_is_alertmanagers_and_order_independent() {
        // Prometheus' model.LabelSet{}.Fingerprint() is FNV-1a's offset basis.
        assert_eq!(fingerprint(&LabelSet::new()), "cbf29ce484222325");
        let a = labels(&[("alertname", "X"), ("slo", "a"), ("service", "s")]);
        let b = labels(&[("service", "s"), ("slo", "a"), ("alertname", "X")]);
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()), "stable");
        // The separator keeps "ab"="c" apart from "a"="bc".
        assert_ne!(
            fingerprint(&labels(&[("ab", "c")])),
            fingerprint(&labels(&[("a", "bc")]))
        );
        assert_ne!(fingerprint(&a), fingerprint(&labels(&[("alertname", "X")])));
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let http = |status| SendError::Http {
            status,
            body: String::new(),
        };
        assert!(http(500).is_transient());
        assert!(http(503).is_transient());
        assert!(http(429).is_transient());
        assert!(!http(400).is_transient());
        assert!(!http(401).is_transient());
        assert!(!http(404).is_transient());
        assert!(SendError::Timeout {
            after: Duration::from_secs(1)
        }
        .is_transient());
        assert!(!SendError::ShutDown.is_transient());
    }

    #[test]
    fn dispatcher_needs_a_runtime() {
        let settings = AlertingSettings::default();
        let err = Dispatcher::new(
            &settings,
            DeliveryOptions::default(),
            Arc::new(DaemonMetrics::new()),
        );
        assert!(matches!(err, Err(DeliverError::NoRuntime)));
    }
}
