//! Integration tests of alert delivery (`errbudget::alert::dispatch`)
//! against real Alertmanagers started on loopback, and against a webhook
//! receiver of the test's own. The fake webhook exists only to capture
//! request bodies and to be slow or fail on purpose; everything
//! Alertmanager-side is asserted through Alertmanager's own API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use errbudget::alert::decide::Notification;
use errbudget::alert::dispatch::{fingerprint, DeliveryOptions, Dispatcher};
use errbudget::config::{AlertingSettings, HttpClientSettings};
use errbudget::metrics::DaemonMetrics;
use serde_json::Value;
use tokio::sync::watch;

use crate::harness::{free_port, Alertmanager};

/// Upper bound for anything the tests wait for.
const WAIT: Duration = Duration::from_secs(10);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A firing alert as `decide` would send it: started a minute ago, ends a
/// few resend intervals ahead unless re-sent.
fn firing(slo: &str) -> Notification {
    let t = now();
    Notification {
        labels: labels(&[
            ("alertname", "ErrorBudgetBurn"),
            ("service", "checkout"),
            ("slo", slo),
            ("severity", "page"),
            ("long_window", "1h"),
            ("short_window", "5m"),
        ]),
        annotations: labels(&[
            ("summary", "checkout is burning its error budget"),
            ("burn_rate", "15.2"),
        ]),
        starts_at: t - 60,
        ends_at: t + 240,
        resolved: false,
        generator_url: format!("http://errbudget.test:9465/slo/checkout/{slo}"),
    }
}

fn resolved(mut n: Notification) -> Notification {
    n.resolved = true;
    n.ends_at = now() - 1;
    n
}

fn client(url: &str) -> HttpClientSettings {
    HttpClientSettings {
        url: url.into(),
        timeout: Duration::from_secs(5),
        ..HttpClientSettings::default()
    }
}

/// Quick retries so the outage test stays short.
fn fast_options() -> DeliveryOptions {
    DeliveryOptions {
        external_url: "http://errbudget.test:9465".into(),
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
        retry_for: Some(Duration::from_secs(20)),
        ..DeliveryOptions::default()
    }
}

fn count(metrics: &DaemonMetrics, receiver: &str, outcome: &str) -> u64 {
    metrics
        .notifications_total
        .with_label_values(&[receiver, outcome])
        .get()
}

/// Polls `check` until it returns Some, at most `WAIT`.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// A real Alertmanager on loopback.

/// The harness's Alertmanager, started off the runtime's thread: its
/// bounded wait blocks, and a dispatcher may already be retrying against
/// the port.
async fn start_alertmanager(port: u16) -> Alertmanager {
    tokio::task::spawn_blocking(move || Alertmanager::start_on(port))
        .await
        .expect("start alertmanager")
}

/// The active (unresolved) alerts, from `GET /api/v2/alerts`; asynchronous,
/// unlike the harness's, so the dispatcher under test keeps running.
async fn alerts(am: &Alertmanager) -> Vec<Value> {
    let body: Value = reqwest::Client::new()
        .get(format!("{}/api/v2/alerts", am.url()))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .expect("GET /api/v2/alerts")
        .json()
        .await
        .expect("alerts JSON");
    body.as_array().cloned().unwrap_or_default()
}

async fn alerts_for(am: &Alertmanager, slo: &str) -> Vec<Value> {
    let mut found = alerts(am).await;
    found.retain(|a| a["labels"]["slo"] == slo);
    found
}

fn unix(rfc3339: &Value) -> i64 {
    let t = humantime::parse_rfc3339_weak(rfc3339.as_str().expect("a time string"))
        .expect("RFC 3339 time");
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn assert_alert_is(shown: &Value, sent: &Notification) {
    assert_eq!(shown["labels"], serde_json::to_value(&sent.labels).unwrap());
    assert_eq!(
        shown["annotations"],
        serde_json::to_value(&sent.annotations).unwrap()
    );
    assert_eq!(shown["generatorURL"], sent.generator_url.as_str());
    assert_eq!(unix(&shown["startsAt"]), sent.starts_at);
    assert_eq!(unix(&shown["endsAt"]), sent.ends_at);
    assert_eq!(shown["fingerprint"], fingerprint(&sent.labels).as_str());
}

#[tokio::test]
async fn firing_then_resolved_reaches_both_alertmanagers_of_a_pair() {
    let (a, b) = tokio::join!(
        start_alertmanager(free_port()),
        start_alertmanager(free_port())
    );
    let settings = AlertingSettings {
        alertmanagers: vec![client(&a.url()), client(&format!("{}/", b.url()))],
        ..AlertingSettings::default()
    };
    let metrics = Arc::new(DaemonMetrics::new());
    let dispatcher = Dispatcher::new(&settings, fast_options(), metrics.clone()).unwrap();
    let receivers: Vec<String> = dispatcher.receivers().map(str::to_owned).collect();
    assert_eq!(
        receivers,
        [
            a.url().replace("http://", "alertmanager:"),
            b.url().replace("http://", "alertmanager:")
        ]
    );

    let alert = firing("availability");
    let other = firing("latency");
    dispatcher.dispatch(vec![]); // nothing to send: ignored
    dispatcher.dispatch(vec![alert.clone(), other.clone()]);
    for am in [&a, &b] {
        let shown = eventually("the firing alert", || async {
            let found = alerts_for(am, "availability").await;
            (!found.is_empty()).then_some(found)
        })
        .await;
        assert_eq!(shown.len(), 1, "{shown:?}");
        assert_alert_is(&shown[0], &alert);
        assert_eq!(shown[0]["status"]["state"], "active");
        assert_eq!(alerts_for(am, "latency").await.len(), 1);
    }

    dispatcher.dispatch(vec![resolved(alert.clone())]);
    for am in [&a, &b] {
        eventually("the alert to resolve", || async {
            alerts_for(am, "availability")
                .await
                .is_empty()
                .then_some(())
        })
        .await;
        // Only the resolved one is gone.
        assert_eq!(alerts_for(am, "latency").await.len(), 1);
    }
    for receiver in &receivers {
        eventually("the counts", || async {
            (count(&metrics, receiver, "sent") == 3).then_some(())
        })
        .await;
        assert_eq!(count(&metrics, receiver, "failed"), 0);
        assert_eq!(count(&metrics, receiver, "dropped"), 0);
    }
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn alertmanager_down_for_a_while_gets_every_alert_once_it_is_up() {
    // Nothing listens on the port until the Alertmanager starts.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let settings = AlertingSettings {
        alertmanagers: vec![client(&url)],
        ..AlertingSettings::default()
    };
    let metrics = Arc::new(DaemonMetrics::new());
    let dispatcher = Dispatcher::new(&settings, fast_options(), metrics.clone()).unwrap();
    let receiver = format!("alertmanager:127.0.0.1:{port}");

    let first = firing("availability");
    let second = firing("latency");
    let t0 = Instant::now();
    dispatcher.dispatch(vec![first.clone()]);
    dispatcher.dispatch(vec![second.clone()]);
    assert!(t0.elapsed() < Duration::from_millis(50));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&metrics, &receiver, "sent"), 0, "nothing listens yet");
    assert_eq!(count(&metrics, &receiver, "failed"), 0, "still retrying");

    let am = start_alertmanager(port).await;
    for sent in [&first, &second] {
        let slo = &sent.labels["slo"];
        let shown = eventually("the alert sent while down", || async {
            let found = alerts_for(&am, slo).await;
            (!found.is_empty()).then_some(found)
        })
        .await;
        assert_eq!(shown.len(), 1, "one alert, not one per retry: {shown:?}");
        assert_alert_is(&shown[0], sent);
    }
    eventually("both batches counted", || async {
        (count(&metrics, &receiver, "sent") == 2).then_some(())
    })
    .await;
    assert_eq!(count(&metrics, &receiver, "failed"), 0);
    assert_eq!(alerts(&am).await.len(), 2);
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

// ---------------------------------------------------------------------------
// A webhook receiver of our own: it only captures what it is sent, and is
// slow or fails when told to.

#[derive(Default)]
struct Hook {
    /// Bodies and headers received, in arrival order.
    seen: Mutex<Vec<(HeaderMap, Value)>>,
    /// Statuses to answer, in order; 200 once they are used up.
    script: Mutex<Vec<StatusCode>>,
    /// While false, requests wait before answering.
    open: Option<watch::Receiver<bool>>,
}

impl Hook {
    fn bodies(&self) -> Vec<Value> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

async fn receive(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1]) {
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    hook.seen.lock().unwrap().push((headers, json));
    if let Some(mut open) = hook.open.clone() {
        let _ = open.wait_for(|o| *o).await;
    }
    let status = {
        let mut script = hook.script.lock().unwrap();
        if script.is_empty() {
            StatusCode::OK
        } else {
            script.remove(0)
        }
    };
    (status, [("retry-after", "1")])
}

/// Serves `hook` on a loopback port; returns the webhook URL.
async fn serve(hook: Arc<Hook>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/hook", post(receive)).with_state(hook);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/hook")
}

#[tokio::test]
async fn slow_webhook_overflows_its_queue_without_blocking_dispatch() {
    let (open_tx, open_rx) = watch::channel(false);
    let hook = Arc::new(Hook {
        open: Some(open_rx),
        ..Hook::default()
    });
    let url = serve(hook.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t0ken\n").unwrap();
    let mut webhook = client(&format!("{url}?key=s3cret"));
    webhook.bearer_token_file = Some(token_file);
    webhook.headers.insert("X-Team".into(), "sre".into());
    let settings = AlertingSettings {
        webhooks: vec![webhook],
        ..AlertingSettings::default()
    };
    let metrics = Arc::new(DaemonMetrics::new());
    let options = DeliveryOptions {
        queue_capacity: 2,
        ..fast_options()
    };
    let dispatcher = Dispatcher::new(&settings, options, metrics.clone()).unwrap();
    let receiver = dispatcher.receivers().next().unwrap().to_owned();
    assert!(receiver.starts_with("webhook:127.0.0.1:") && !receiver.contains("/hook"));
    assert!(!receiver.contains("s3cret"));

    // The first batch reaches the receiver and hangs there.
    dispatcher.dispatch(vec![firing("slo-1")]);
    eventually("the first request", || async {
        (hook.requests() == 1).then_some(())
    })
    .await;
    // Two more fill the queue; every later one is dropped, at once.
    dispatcher.dispatch(vec![firing("slo-2")]);
    dispatcher.dispatch(vec![firing("slo-3"), resolved(firing("slo-1"))]);
    let t0 = Instant::now();
    for _ in 0..200 {
        dispatcher.dispatch(vec![firing("dropped")]);
    }
    let took = t0.elapsed();
    assert!(
        took < Duration::from_millis(50),
        "dispatch blocked: {took:?}"
    );
    assert_eq!(count(&metrics, &receiver, "dropped"), 200);

    // Once the receiver speeds up, the queued batches follow, in order.
    open_tx.send_replace(true);
    eventually("the queued batches", || async {
        (count(&metrics, &receiver, "sent") == 4).then_some(())
    })
    .await;
    let bodies = hook.bodies();
    let slos: Vec<Vec<&str>> = bodies
        .iter()
        .map(|b| {
            b["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["labels"]["slo"].as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(slos, [vec!["slo-1"], vec!["slo-2"], vec!["slo-3", "slo-1"]]);
    assert_eq!(count(&metrics, &receiver, "failed"), 0);

    // Alertmanager's webhook message, version 4.
    let sent = firing("slo-1");
    let first = &bodies[0];
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "receiver",
            "status",
            "alerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "version",
            "groupKey",
            "truncatedAlerts"
        ]
    );
    assert_eq!(first["version"], "4");
    assert_eq!(first["status"], "firing");
    assert_eq!(first["truncatedAlerts"], 0);
    assert!(first["groupKey"].is_string());
    assert_eq!(first["groupLabels"], serde_json::json!({}));
    assert_eq!(first["receiver"], receiver.as_str());
    assert_eq!(first["externalURL"], "http://errbudget.test:9465");
    assert_eq!(
        first["commonLabels"],
        serde_json::to_value(&sent.labels).unwrap()
    );
    let alert = &first["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"], serde_json::to_value(&sent.labels).unwrap());
    assert_eq!(
        alert["annotations"],
        serde_json::to_value(&sent.annotations).unwrap()
    );
    assert_eq!(alert["generatorURL"], sent.generator_url.as_str());
    assert_eq!(alert["fingerprint"], fingerprint(&sent.labels).as_str());
    assert!(unix(&alert["startsAt"]) <= now() - 59);
    assert!(unix(&alert["endsAt"]) > now());
    let mixed = &bodies[2];
    assert_eq!(mixed["status"], "firing", "firing if any alert fires");
    assert_eq!(mixed["alerts"][1]["status"], "resolved");
    assert!(mixed["commonLabels"].get("slo").is_none());

    // The shared HTTP client: credentials and extra headers on every request.
    let headers = hook.seen.lock().unwrap()[0].0.clone();
    assert_eq!(headers["authorization"], "Bearer t0ken");
    assert_eq!(headers["x-team"], "sre");
    assert_eq!(headers["content-type"], "application/json");
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn webhook_retries_5xx_and_429_but_not_other_4xx() {
    let hook = Arc::new(Hook::default());
    *hook.script.lock().unwrap() = vec![
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::TOO_MANY_REQUESTS, // answered with Retry-After: 1
        StatusCode::OK,
        StatusCode::BAD_REQUEST,
    ];
    let url = serve(hook.clone()).await;
    let settings = AlertingSettings {
        webhooks: vec![client(&url)],
        ..AlertingSettings::default()
    };
    let metrics = Arc::new(DaemonMetrics::new());
    let dispatcher = Dispatcher::new(&settings, fast_options(), metrics.clone()).unwrap();
    let receiver = dispatcher.receivers().next().unwrap().to_owned();

    let t0 = Instant::now();
    dispatcher.dispatch(vec![firing("a"), firing("b")]);
    eventually("the retried batch", || async {
        (count(&metrics, &receiver, "sent") == 2).then_some(())
    })
    .await;
    assert_eq!(hook.requests(), 3);
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );

    dispatcher.dispatch(vec![firing("c")]);
    eventually("the rejected batch", || async {
        (count(&metrics, &receiver, "failed") == 1).then_some(())
    })
    .await;
    assert_eq!(hook.requests(), 4, "a 400 is not retried");
    dispatcher.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn shutdown_returns_by_its_deadline_with_a_hung_receiver() {
    let (_never_open, open_rx) = watch::channel(false);
    let hook = Arc::new(Hook {
        open: Some(open_rx),
        ..Hook::default()
    });
    let url = serve(hook.clone()).await;
    let mut settings = AlertingSettings {
        webhooks: vec![client(&url)],
        ..AlertingSettings::default()
    };
    settings.webhooks[0].timeout = Duration::from_secs(30);
    let metrics = Arc::new(DaemonMetrics::new());
    let dispatcher = Dispatcher::new(&settings, fast_options(), metrics.clone()).unwrap();
    let receiver = dispatcher.receivers().next().unwrap().to_owned();
    dispatcher.dispatch(vec![firing("hung")]);
    dispatcher.dispatch(vec![firing("queued")]);
    eventually("the hung request", || async {
        (hook.requests() == 1).then_some(())
    })
    .await;
    let t0 = Instant::now();
    dispatcher.shutdown(Duration::from_millis(500)).await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(
        count(&metrics, &receiver, "failed"),
        2,
        "in flight and queued"
    );
    assert_eq!(count(&metrics, &receiver, "sent"), 0);
}
