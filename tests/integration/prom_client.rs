//! Integration tests of the Prometheus client (`errbudget::prom`).
//!
//! Queries, decoding, stats and API errors are tested against a real
//! Prometheus started on loopback with backfilled data. A small fake HTTP
//! server of the test's own is used only where a real Prometheus cannot help:
//! to capture the headers and form we send, and to produce faults on demand
//! (truncated body, hang past the timeout, 503 then success, 429 with
//! Retry-After, oversized bodies, plain-text errors).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use errbudget::config::{BasicAuth, HttpClientSettings};
use errbudget::metrics::DaemonMetrics;
use errbudget::prom::{Client, ClientError, QueryApi, QueryError, RangeSeries, Sample};
use errbudget::tls::TlsError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{self, free_port, Prometheus, PrometheusOptions};

/// First sample of the backfilled data; one sample a minute for 10 minutes.
const T0: i64 = 1_700_000_000;

fn settings(url: &str) -> HttpClientSettings {
    HttpClientSettings {
        url: url.to_owned(),
        timeout: Duration::from_secs(5),
        ..HttpClientSettings::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn count(metrics: &DaemonMetrics, outcome: &str) -> u64 {
    metrics.queries_total.with_label_values(&[outcome]).get()
}

// ---------------------------------------------------------------------------
// A real Prometheus on loopback.

/// OpenMetrics for `promtool tsdb create-blocks-from openmetrics`: gauge
/// `test_requests` with `code="200"` = 0..=10 and `code="500"` = 0..=20 by 2,
/// one sample a minute from T0.
/// Services of the shared-query test.
const SERVICES: [&str; 3] = ["a.b", "c+d|e", "plain"];

fn backfill_data() -> String {
    let mut text = String::from("# HELP test_requests Test data.\n# TYPE test_requests gauge\n");
    for i in 0..=10i64 {
        let t = T0 + 60 * i;
        text.push_str(&format!("test_requests{{code=\"200\"}} {i} {t}\n"));
        text.push_str(&format!("test_requests{{code=\"500\"}} {} {t}\n", 2 * i));
    }
    // Counters of services whose names a regular expression could
    // misread, and `aXb`, which `a.b` read as a pattern would match.
    text.push_str("# HELP svc_requests Requests by service.\n# TYPE svc_requests counter\n");
    for (k, service) in SERVICES.iter().chain(["aXb"].iter()).enumerate() {
        for i in 0..=10i64 {
            let t = T0 + 60 * i;
            let k = k as i64 + 1;
            for (code, v) in [("200", 10 * k * i), ("500", k * i * i)] {
                for instance in 0..2 {
                    text.push_str(&format!(
                        "svc_requests_total{{service=\"{service}\",code=\"{code}\",instance=\"i{instance}\"}} {} {t}\n",
                        v * (instance + 1)
                    ));
                }
            }
        }
    }
    text.push_str("# EOF\n");
    text
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A Prometheus on the backfilled data serving under `/prometheus`, so
/// every test also covers a URL path prefix.
fn start_prometheus() -> Prometheus {
    let (_work, blocks) = harness::backfill(&[backfill_data()], false);
    let mut prom = Prometheus::spawn(Some(&blocks), "scrape_configs: []\n", &prefixed(None));
    prom.wait_ready(Duration::from_secs(90));
    prom
}

fn prefixed(web_config: Option<&Path>) -> PrometheusOptions<'_> {
    PrometheusOptions {
        prefix: Some("/prometheus"),
        web_config,
    }
}

/// TLS for the Prometheus web server: its exporter-toolkit web config, and
/// a reqwest client able to reach `/-/ready` through it.
struct WebTls {
    web_config: PathBuf,
    ready_client: reqwest::Client,
}

/// As `start_prometheus`, over HTTPS; readiness is probed with the
/// caller's TLS client, which the harness's plain-HTTP probe cannot be.
async fn start_prometheus_tls(tls: WebTls) -> Prometheus {
    let (_work, blocks) = harness::backfill(&[backfill_data()], false);
    let mut prom = Prometheus::spawn(
        Some(&blocks),
        "scrape_configs: []\n",
        &prefixed(Some(&tls.web_config)),
    );
    let ready = format!("{}/-/ready", prom.url());
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = tls
            .ready_client
            .get(&ready)
            .timeout(Duration::from_millis(500))
            .send()
            .await;
        let up = answer.is_ok_and(|r| r.status().is_success());
        if prom.poll_ready(|| up) {
            return prom;
        }
        assert!(
            Instant::now() < deadline,
            "prometheus not ready over TLS within 90s\n{}",
            prom.guard.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One Prometheus for all real-server checks: starting it is the slow part.
#[tokio::test]
async fn against_real_prometheus() {
    let prom = start_prometheus();
    let metrics = Arc::new(DaemonMetrics::new());
    let client = Client::new(&settings(&prom.url()), 4, metrics.clone()).expect("client");

    // Instant vector of a constant.
    assert_eq!(
        client.instant("vector(1)", T0).await.unwrap(),
        vec![Sample {
            labels: BTreeMap::new(),
            value: 1.0
        }]
    );

    // Scalar result: one sample without labels.
    assert_eq!(
        client.instant("scalar(vector(0.25))", T0).await.unwrap(),
        vec![Sample {
            labels: BTreeMap::new(),
            value: 0.25
        }]
    );

    // NaN and ±Inf come through as values.
    let nan = client.instant("vector(0) / 0", T0).await.unwrap();
    assert!(nan[0].value.is_nan());
    let inf = client.instant("vector(1) / 0", T0).await.unwrap();
    assert_eq!(inf[0].value, f64::INFINITY);
    let ninf = client.instant("vector(-1) / 0", T0).await.unwrap();
    assert_eq!(ninf[0].value, f64::NEG_INFINITY);

    // Range query of a constant.
    assert_eq!(
        client.range("vector(1)", T0, T0 + 120, 60).await.unwrap(),
        vec![RangeSeries {
            labels: BTreeMap::new(),
            points: vec![(T0, 1.0), (T0 + 60, 1.0), (T0 + 120, 1.0)]
        }]
    );

    // Real stored data, labels kept.
    let mut by_code = client
        .instant("sum by (code) (test_requests)", T0 + 600)
        .await
        .unwrap();
    by_code.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(
        by_code,
        vec![
            Sample {
                labels: labels(&[("code", "200")]),
                value: 10.0
            },
            Sample {
                labels: labels(&[("code", "500")]),
                value: 20.0
            },
        ]
    );
    let series = client
        .range("test_requests{code=\"500\"}", T0, T0 + 120, 60)
        .await
        .unwrap();
    assert_eq!(
        series,
        vec![RangeSeries {
            labels: labels(&[("__name__", "test_requests"), ("code", "500")]),
            points: vec![(T0, 0.0), (T0 + 60, 2.0), (T0 + 120, 4.0)]
        }]
    );

    // Empty result is not an error.
    assert_eq!(
        client
            .instant("test_requests{code=\"404\"}", T0 + 600)
            .await
            .unwrap(),
        vec![]
    );

    // stats=all: Prometheus reports the samples it read; they are counted.
    let before = metrics.query_samples.get();
    client
        .instant("sum_over_time(test_requests{code=\"200\"}[10m])", T0 + 600)
        .await
        .unwrap();
    let read = metrics.query_samples.get() - before;
    assert!(
        (10..=11).contains(&read),
        "samples read for 10m of 1/min data: {read}"
    );

    // A syntax error is Prometheus' own message, not retried.
    let started = Instant::now();
    match client.instant("sum(", T0).await {
        Err(QueryError::Api {
            status,
            error_type,
            error,
        }) => {
            assert_eq!(status, 400);
            assert_eq!(error_type, "bad_data");
            assert!(error.contains("parse error"), "{error}");
        }
        other => panic!("want Api error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "retried a bad query"
    );

    // A trailing slash on the URL is fine.
    let slash = Client::new(&settings(&format!("{}/", prom.url())), 1, metrics.clone()).unwrap();
    assert_eq!(slash.instant("vector(3)", T0).await.unwrap()[0].value, 3.0);

    assert_eq!(count(&metrics, "success"), 11);
    assert_eq!(count(&metrics, "error"), 1);
    assert_eq!(metrics.query_duration.get_sample_count(), 12);
}

// ---------------------------------------------------------------------------
// A fake server, for captured headers and faults only.

#[derive(Clone)]
enum Reply {
    /// Raw HTTP response bytes, then close.
    Raw(Vec<u8>),
    /// Read the request, never answer.
    Hang,
}

fn json_reply(status: &str, extra_headers: &str, body: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

const VECTOR_ONE: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"1"]}]}}"#;
const MATRIX_ONE: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"]]}]}}"#;

struct Captured {
    head: String,
    body: String,
}

struct FakeServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Captured>>>,
}

impl FakeServer {
    /// Answers the n-th connection with `replies[n]` (the last one repeats).
    async fn start(replies: Vec<Reply>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = listener.accept().await {
                let reply = replies[n.min(replies.len() - 1)].clone();
                n += 1;
                tokio::spawn(serve_one(stream, reply, seen.clone()));
            }
        });
        FakeServer { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}/prefix", self.addr)
    }

    fn requests(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn serve_one(mut stream: TcpStream, reply: Reply, seen: Arc<Mutex<Vec<Captured>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
    seen.lock().unwrap().push(Captured { head, body });
    match reply {
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Reply::Hang => tokio::time::sleep(Duration::from_secs(30)).await,
    }
}

fn secret_file(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write secret");
    path
}

#[tokio::test]
async fn sends_form_auth_and_headers() {
    let dir = tempfile::tempdir().unwrap();
    let server = FakeServer::start(vec![
        json_reply("200 OK", "", VECTOR_ONE),
        json_reply("200 OK", "", MATRIX_ONE),
        json_reply("200 OK", "", VECTOR_ONE),
    ])
    .await;

    // Basic auth, password file with a trailing newline, tenant header.
    let mut s = settings(&server.url());
    s.basic_auth = Some(BasicAuth {
        username: "alice".into(),
        password_file: secret_file(dir.path(), "password", "s3cret\n"),
    });
    s.headers.insert("X-Scope-OrgID".into(), "tenant-1".into());
    let client = Client::new(&s, 1, Arc::new(DaemonMetrics::new())).unwrap();
    client
        .instant("sum(rate(x[5m]))", 1700000000)
        .await
        .unwrap();
    client.range("up", 1, 61, 30).await.unwrap();
    // The client's debug output never shows credentials.
    assert!(!format!("{client:?}").contains("s3cret"));

    // Bearer token.
    let mut s = settings(&server.url());
    s.bearer_token_file = Some(secret_file(dir.path(), "token", "tok-123\n"));
    let client = Client::new(&s, 1, Arc::new(DaemonMetrics::new())).unwrap();
    client.instant("up", 5).await.unwrap();

    let requests = server.requests.lock().unwrap();
    let (instant, range, bearer) = (&requests[0], &requests[1], &requests[2]);
    let head = instant.head.to_ascii_lowercase();
    assert!(
        instant
            .head
            .starts_with("POST /prefix/api/v1/query HTTP/1.1\r\n"),
        "{}",
        instant.head
    );
    assert!(
        head.contains("\r\nauthorization: basic ywxpy2u6cznjcmv0\r\n"),
        "{head}"
    );
    assert!(head.contains("\r\nx-scope-orgid: tenant-1\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: application/x-www-form-urlencoded\r\n"));
    assert_eq!(
        instant.body,
        "query=sum%28rate%28x%5B5m%5D%29%29&time=1700000000&stats=all&partial_response=false"
    );
    assert!(range
        .head
        .starts_with("POST /prefix/api/v1/query_range HTTP/1.1\r\n"));
    assert_eq!(
        range.body,
        "query=up&start=1&end=61&step=30&stats=all&partial_response=false"
    );
    assert!(
        bearer
            .head
            .contains("\r\nauthorization: Bearer tok-123\r\n"),
        "{}",
        bearer.head
    );
}

#[tokio::test]
async fn truncated_body_is_a_decode_error_and_not_retried() {
    let server = FakeServer::start(vec![json_reply(
        "200 OK",
        "",
        r#"{"status":"success","data":{"resultType":"vector","result":[{"metr"#,
    )])
    .await;
    let metrics = Arc::new(DaemonMetrics::new());
    let client = Client::new(&settings(&server.url()), 1, metrics.clone()).unwrap();
    let err = client.instant("up", 1).await.unwrap_err();
    assert!(matches!(err, QueryError::Decode { .. }), "{err:?}");
    assert_eq!(server.requests(), 1);
    assert_eq!(count(&metrics, "error"), 1);
    assert_eq!(count(&metrics, "success"), 0);
}

#[tokio::test]
async fn hang_past_timeout_is_a_timeout_within_the_budget() {
    let server = FakeServer::start(vec![Reply::Hang]).await;
    let mut s = settings(&server.url());
    s.timeout = Duration::from_millis(300);
    let client = Client::new(&s, 1, Arc::new(DaemonMetrics::new()))
        .unwrap()
        .with_retry_budget(Duration::from_millis(1500));
    let started = Instant::now();
    let err = client.instant("up", 1).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, QueryError::Timeout { .. }), "{err:?}");
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    // Timeouts are transient: it was tried more than once.
    assert!(server.requests() >= 2, "{} attempts", server.requests());
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = FakeServer::start(vec![
        json_reply(
            "503 Service Unavailable",
            "",
            r#"{"status":"error","errorType":"unavailable","error":"starting up"}"#,
        ),
        json_reply("200 OK", "", VECTOR_ONE),
    ])
    .await;
    let metrics = Arc::new(DaemonMetrics::new());
    let client = Client::new(&settings(&server.url()), 1, metrics.clone()).unwrap();
    assert_eq!(client.instant("up", 1).await.unwrap().len(), 1);
    assert_eq!(server.requests(), 2);
    // One logical query, counted once.
    assert_eq!(count(&metrics, "success"), 1);
    assert_eq!(count(&metrics, "error"), 0);
    assert_eq!(metrics.query_duration.get_sample_count(), 1);
}

#[tokio::test]
async fn gives_up_after_three_attempts() {
    let server = FakeServer::start(vec![Reply::Raw(
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 21\r\nConnection: close\r\n\r\n<html>upstream</html>"
            .to_vec(),
    )])
    .await;
    let client = Client::new(&settings(&server.url()), 1, Arc::new(DaemonMetrics::new())).unwrap();
    let err = client.instant("up", 1).await.unwrap_err();
    assert_eq!(
        err,
        QueryError::Http {
            status: 502,
            body: "<html>upstream</html>".into()
        }
    );
    assert_eq!(server.requests(), 3);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let server = FakeServer::start(vec![
        json_reply("429 Too Many Requests", "Retry-After: 1\r\n", "slow down"),
        json_reply("200 OK", "", VECTOR_ONE),
    ])
    .await;
    let client = Client::new(&settings(&server.url()), 1, Arc::new(DaemonMetrics::new())).unwrap();
    let started = Instant::now();
    client.instant("up", 1).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "retried after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(server.requests(), 2);
}

#[tokio::test]
async fn retry_after_past_the_budget_fails_at_once() {
    let server = FakeServer::start(vec![json_reply(
        "429 Too Many Requests",
        "Retry-After: 60\r\n",
        "slow down",
    )])
    .await;
    let client = Client::new(&settings(&server.url()), 1, Arc::new(DaemonMetrics::new()))
        .unwrap()
        .with_retry_budget(Duration::from_secs(5));
    let started = Instant::now();
    let err = client.instant("up", 1).await.unwrap_err();
    assert_eq!(
        err,
        QueryError::Http {
            status: 429,
            body: "slow down".into()
        }
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let server = FakeServer::start(vec![json_reply(
        "422 Unprocessable Entity",
        "",
        r#"{"status":"error","errorType":"execution","error":"many-to-many matching not allowed"}"#,
    )])
    .await;
    let client = Client::new(&settings(&server.url()), 1, Arc::new(DaemonMetrics::new())).unwrap();
    let err = client.instant("up", 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "Prometheus rejected the query (HTTP 422, execution): many-to-many matching not allowed"
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let big = format!(
        r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"pad":"{}"}},"value":[1,"1"]}}]}}}}"#,
        "x".repeat(10_000)
    );
    // Announced with Content-Length: refused before reading.
    let server = FakeServer::start(vec![json_reply("200 OK", "", &big)]).await;
    let client = Client::new(&settings(&server.url()), 1, Arc::new(DaemonMetrics::new()))
        .unwrap()
        .with_max_body_bytes(4096);
    assert_eq!(
        client.instant("up", 1).await.unwrap_err(),
        QueryError::TooLarge { limit: 4096 }
    );
    // Chunked, no length: refused once the cap is passed.
    let mut chunked =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    for piece in big.as_bytes().chunks(1000) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let server = FakeServer::start(vec![Reply::Raw(chunked)]).await;
    let client = Client::new(&settings(&server.url()), 1, Arc::new(DaemonMetrics::new()))
        .unwrap()
        .with_max_body_bytes(4096);
    assert_eq!(
        client.instant("up", 1).await.unwrap_err(),
        QueryError::TooLarge { limit: 4096 }
    );
    assert_eq!(server.requests(), 1);
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error_without_secrets() {
    let port = free_port(); // nothing listens there once the probe is dropped
    let client = Client::new(
        &settings(&format!("http://bob:hunter2@127.0.0.1:{port}/")),
        1,
        Arc::new(DaemonMetrics::new()),
    )
    .unwrap()
    .with_retry_budget(Duration::from_secs(3));
    let err = client.instant("up", 1).await.unwrap_err();
    assert!(matches!(err, QueryError::Transport { .. }), "{err:?}");
    let text = err.to_string();
    assert!(!text.contains("hunter2") && !text.contains("bob"), "{text}");
    assert!(!format!("{client:?}").contains("hunter2"));
}

#[tokio::test]
async fn construction_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = Arc::new(DaemonMetrics::new());
    let missing = dir.path().join("nope");

    let mut s = settings("http://127.0.0.1:9090");
    s.bearer_token_file = Some(missing.clone());
    let err = Client::new(&s, 1, metrics.clone()).unwrap_err();
    assert!(matches!(err, ClientError::ReadFile { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read bearer_token_file {}: No such file or directory (os error 2)",
            missing.display()
        )
    );

    let mut s = settings("http://127.0.0.1:9090");
    s.tls.ca_file = Some(missing.clone());
    assert_eq!(
        Client::new(&s, 1, metrics.clone()).unwrap_err().to_string(),
        format!(
            "cannot read tls.ca_file {}: No such file or directory (os error 2)",
            missing.display()
        )
    );

    let mut s = settings("http://127.0.0.1:9090");
    s.tls.ca_file = Some(secret_file(dir.path(), "ca.pem", "not a certificate\n"));
    assert!(matches!(
        Client::new(&s, 1, metrics.clone()).unwrap_err(),
        ClientError::Tls(TlsError::Pem { .. })
    ));

    let mut s = settings("http://127.0.0.1:9090");
    s.tls.cert_file = Some(missing.clone());
    assert!(matches!(
        Client::new(&s, 1, metrics.clone()).unwrap_err(),
        ClientError::Tls(TlsError::IncompleteClientCert)
    ));

    let mut s = settings("http://127.0.0.1:9090");
    s.headers
        .insert("Authorization".into(), "Bearer leaked".into());
    let err = Client::new(&s, 1, metrics.clone()).unwrap_err().to_string();
    assert!(!err.contains("leaked"), "{err}");

    assert!(matches!(
        Client::new(&settings("http://127.0.0.1:9090"), 0, metrics).unwrap_err(),
        ClientError::NoConcurrency
    ));
}

// ---------------------------------------------------------------------------
// TLS against a real Prometheus: custom CA, client certificate required by
// the server, and a certificate whose only name is not the URL's host.

fn openssl(dir: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    run_ok(&mut cmd, &format!("openssl {}", args.join(" ")));
}

/// A CA, a server certificate for `prom.internal` only (no IP SAN, so
/// reaching it by 127.0.0.1 needs `server_name`) and a client certificate.
fn make_pki(dir: &Path) {
    assert!(
        Command::new("openssl").arg("version").output().is_ok(),
        "openssl not found: install it with `apt-get install -y openssl`"
    );
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=errbudget test CA",
    ]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=DNS:prom.internal\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("write ext");
        let mut req = vec!["req"];
        req.extend(ec);
        let (key, csr, crt, extfile) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        let subj = format!("/CN={name}");
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "1",
                "-extfile",
                &extfile,
            ],
        );
    }
}

#[tokio::test]
async fn tls_with_ca_client_cert_and_server_name() {
    let pki = tempfile::tempdir().unwrap();
    let dir = pki.path();
    make_pki(dir);
    let web_config = dir.join("web.yml");
    std::fs::write(
        &web_config,
        format!(
            "tls_server_config:\n  cert_file: {0}/server.crt\n  key_file: {0}/server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {0}/ca.crt\n",
            dir.display()
        ),
    )
    .unwrap();
    let mut identity = std::fs::read(dir.join("client.crt")).unwrap();
    identity.extend(std::fs::read(dir.join("client.key")).unwrap());
    let ready_client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .identity(reqwest::Identity::from_pem(&identity).unwrap())
        .build()
        .unwrap();
    let prom = start_prometheus_tls(WebTls {
        web_config,
        ready_client,
    })
    .await;

    let metrics = Arc::new(DaemonMetrics::new());
    let mut s = settings(&prom.url());
    s.tls.ca_file = Some(dir.join("ca.crt"));
    s.tls.cert_file = Some(dir.join("client.crt"));
    s.tls.key_file = Some(dir.join("client.key"));
    s.tls.server_name = Some("prom.internal".into());
    let client = Client::new(&s, 1, metrics.clone())
        .unwrap()
        .with_retry_budget(Duration::from_secs(3));
    assert_eq!(client.instant("vector(1)", T0).await.unwrap()[0].value, 1.0);

    // Without server_name the certificate does not match 127.0.0.1.
    let mut wrong_name = s.clone();
    wrong_name.tls.server_name = None;
    let client = Client::new(&wrong_name, 1, metrics.clone())
        .unwrap()
        .with_retry_budget(Duration::from_secs(3));
    let err = client.instant("vector(1)", T0).await.unwrap_err();
    assert!(
        matches!(&err, QueryError::Transport { reason } if reason.contains("certificate not valid for name")),
        "{err:?}"
    );

    // Without a client certificate the server refuses the handshake.
    let mut no_cert = s.clone();
    no_cert.tls.cert_file = None;
    no_cert.tls.key_file = None;
    let client = Client::new(&no_cert, 1, metrics.clone())
        .unwrap()
        .with_retry_budget(Duration::from_secs(3));
    assert!(client.instant("vector(1)", T0).await.is_err());

    // insecure_skip_verify: no CA, no server_name, still connects.
    let mut insecure = s.clone();
    insecure.tls.ca_file = None;
    insecure.tls.server_name = None;
    insecure.tls.insecure_skip_verify = true;
    let client = Client::new(&insecure, 1, metrics).unwrap();
    assert_eq!(client.instant("vector(2)", T0).await.unwrap()[0].value, 2.0);
}

/// SLOs over one metric, one per service: their queries go out as one per
/// shape (`sum by (service)` over `service=~"…"`) and each SLO gets what
/// its own query answers, whatever its service is called.
#[tokio::test]
async fn queries_of_many_services_are_shared_and_answer_as_asked() {
    use errbudget::prom::batch::Batching;
    let prom = start_prometheus();
    let metrics = Arc::new(DaemonMetrics::new());
    let client = Arc::new(Client::new(&settings(&prom.url()), 4, metrics.clone()).expect("client"));
    let batching = Batching::new(client.clone());
    let mut queries = vec![];
    for s in SERVICES {
        queries.push(format!(
            r#"sum(rate(svc_requests_total{{service="{s}",code="500"}}[5m]))"#
        ));
        queries.push(format!(
            r#"sum by (code) (increase(svc_requests_total{{service="{s}"}}[4m:1m]))"#
        ));
    }
    let at = T0 + 600;
    let mut want = vec![];
    for q in &queries {
        let w = client.instant(q, at).await.unwrap();
        assert!(!w.is_empty(), "{q} has data");
        want.push(w);
    }
    let before = count(&metrics, "success");
    let got = futures::future::join_all(queries.iter().map(|q| batching.instant(q, at))).await;
    assert_eq!(
        count(&metrics, "success") - before,
        1,
        "one request of two shared queries for six"
    );
    for ((q, got), mut want) in queries.iter().zip(got).zip(want) {
        let mut got = got.unwrap();
        got.sort_by(|a, b| a.labels.cmp(&b.labels));
        want.sort_by(|a, b| a.labels.cmp(&b.labels));
        assert_eq!(got, want, "{q}");
    }
    // The same for the range queries of the bucket history.
    let ranges: Vec<String> = SERVICES
        .iter()
        .map(|s| format!(r#"sum(rate(svc_requests_total{{service="{s}"}}[2m]))"#))
        .collect();
    let before = count(&metrics, "success");
    let got = futures::future::join_all(
        ranges
            .iter()
            .map(|q| batching.range(q, T0 + 120, T0 + 600, 60)),
    )
    .await;
    assert_eq!(count(&metrics, "success") - before, 1);
    for (q, got) in ranges.iter().zip(got) {
        let want = client.range(q, T0 + 120, T0 + 600, 60).await.unwrap();
        assert!(!want.is_empty(), "{q} has data");
        assert_eq!(got.unwrap(), want, "{q}");
    }
}

/// Concurrent queries for one instant (or one range) go out as one merged
/// request and come back split, each with its own labels; a bad part is
/// asked again alone so only it fails.
#[tokio::test]
async fn batched_queries_against_real_prometheus() {
    use errbudget::prom::batch::Batching;
    let prom = start_prometheus();
    let metrics = Arc::new(DaemonMetrics::new());
    let client = Arc::new(Client::new(&settings(&prom.url()), 4, metrics.clone()).expect("client"));
    let batching = Batching::new(client.clone());
    let queries = [
        "sum by (code) (test_requests)",
        "test_requests{code=\"500\"}",
        "vector(7)",
        "sum(test_requests)",
    ];
    let mut want = vec![];
    for q in queries {
        want.push(client.instant(q, T0 + 600).await.unwrap());
    }
    let before = count(&metrics, "success");
    let got =
        futures::future::join_all(queries.iter().map(|q| batching.instant(q, T0 + 600))).await;
    assert_eq!(
        count(&metrics, "success") - before,
        1,
        "one request for four"
    );
    for ((q, got), want) in queries.iter().zip(got).zip(want) {
        let mut got = got.unwrap();
        let mut want = want;
        got.sort_by(|a, b| a.labels.cmp(&b.labels));
        want.sort_by(|a, b| a.labels.cmp(&b.labels));
        assert_eq!(got, want, "{q}");
    }

    let ranges = ["test_requests{code=\"200\"}", "sum(test_requests)"];
    let before = count(&metrics, "success");
    let got =
        futures::future::join_all(ranges.iter().map(|q| batching.range(q, T0, T0 + 300, 60))).await;
    assert_eq!(count(&metrics, "success") - before, 1);
    for (q, got) in ranges.iter().zip(got) {
        assert_eq!(
            got.unwrap(),
            client.range(q, T0, T0 + 300, 60).await.unwrap(),
            "{q}"
        );
    }

    // A part the server rejects (a scalar cannot be tagged, `sum(` does not
    // parse) fails alone; the others still get their answers.
    let mixed = ["vector(1)", "sum(", "scalar(vector(2))", "vector(3)"];
    let got = futures::future::join_all(mixed.iter().map(|q| batching.instant(q, T0))).await;
    assert_eq!(got[0].as_ref().unwrap()[0].value, 1.0);
    assert!(
        matches!(got[1], Err(QueryError::Api { .. })),
        "{:?}",
        got[1]
    );
    assert_eq!(got[2].as_ref().unwrap()[0].value, 2.0);
    assert_eq!(got[3].as_ref().unwrap()[0].value, 3.0);
}
