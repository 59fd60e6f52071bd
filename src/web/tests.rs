//! Web config diagnostics (one bad file per rule, exact message) and the
//! server's bounds driven over an in-memory stream, without a socket.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::{parse, ClientAuth, TlsVersion};
use super::*;

const HASH: &str = "$2y$10$X0h1gDsPszWURQaxFh.zoubFi6DXncSjhoQNJgRrnGs7EsimhC7zG";

fn errors(text: &str) -> Vec<String> {
    parse("etc/web.yml", text)
        .expect_err("should be rejected")
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_full_config_parses() {
    let raw = parse(
        "etc/web.yml",
        &format!(
            "tls_server_config:\n  cert_file: tls/server.crt\n  key_file: tls/server.key\n  \
             client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: tls/ca.crt\n  \
             min_version: TLS13\nhttp_server_config:\n  http2: false\n  headers:\n    \
             X-Frame-Options: deny\n    Content-Security-Policy: \"default-src 'self'\"\n\
             basic_auth_users:\n  alice: {HASH}\n"
        ),
    )
    .unwrap();
    let tls = raw.tls.unwrap();
    assert_eq!(tls.cert_file.value, Path::new("etc/tls/server.crt"));
    assert_eq!(
        tls.client_ca_file.map(|c| c.value),
        Some(Path::new("etc/tls/ca.crt").to_path_buf())
    );
    assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!(tls.min_version, TlsVersion::Tls13);
    assert_eq!(tls.max_version, TlsVersion::Tls13);
    assert_eq!(raw.users.get("alice").map(String::as_str), Some(HASH));
    let names: Vec<&str> = raw.headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["x-frame-options", "content-security-policy"]);
}

#[test]
fn an_empty_file_means_plain_http_without_auth() {
    let raw = parse("web.yml", "").unwrap();
    assert!(raw.tls.is_none() && raw.users.is_empty() && raw.headers.is_empty());
    let raw = parse("web.yml", "# nothing\n").unwrap();
    assert!(raw.tls.is_none());
}

#[test]
fn one_message_per_rule() {
    let cases: &[(&str, &str)] = &[
        (
            "tls_server_confg:\n  cert_file: a\n",
            "etc/web.yml:1:1: top level: unknown field \"tls_server_confg\", did you mean \"tls_server_config\"?",
        ),
        (
            "tls_server_config:\n  key_file: k\n",
            "etc/web.yml:2:3: tls_server_config: missing required field \"cert_file\"",
        ),
        (
            "tls_server_config:\n  cert_file: c\n",
            "etc/web.yml:2:3: tls_server_config: missing required field \"key_file\"",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: \"\"\n",
            "etc/web.yml:3:13: tls_server_config.key_file: empty path",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Always\n",
            "etc/web.yml:4:21: tls_server_config.client_auth_type: \"Always\" is not one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n",
            "etc/web.yml:4:19: tls_server_config.client_ca_file: set, but client_auth_type NoClientCert does not verify client certificates (use RequireAndVerifyClientCert)",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n",
            "etc/web.yml:2:3: tls_server_config: client_auth_type RequireAndVerifyClientCert needs client_ca_file to verify client certificates against",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS11\n",
            "etc/web.yml:4:16: tls_server_config.min_version: TLS11 is not supported (TLS12 and TLS13 are)",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: tls1.3\n",
            "etc/web.yml:4:16: tls_server_config.min_version: \"tls1.3\" is not one of TLS12, TLS13",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS13\n  max_version: TLS12\n",
            "etc/web.yml:2:3: tls_server_config: min_version is above max_version",
        ),
        (
            "tls_server_config:\n  cert_file: c\n  key_file: k\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n",
            "etc/web.yml:4:3: tls_server_config.cipher_suites: not supported by errbudget",
        ),
        (
            "rate_limit:\n  interval: 1s\n",
            "etc/web.yml:1:1: rate_limit: not supported by errbudget",
        ),
        (
            "basic_auth_users:\n  alice: hunter2\n",
            "etc/web.yml:2:10: basic_auth_users.alice: not a bcrypt hash (expected $2y$<cost>$ and 53 characters, e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
        ),
        (
            &format!("basic_auth_users:\n  \"a:b\": {HASH}\n"),
            "etc/web.yml:2:3: basic_auth_users: \"a:b\" cannot be a user name (empty or contains ':')",
        ),
        (
            "http_server_config:\n  headers:\n    Server: errbudget\n",
            "etc/web.yml:3:5: http_server_config.headers: \"Server\" cannot be set; allowed: Content-Security-Policy, X-Frame-Options, X-Content-Type-Options, X-XSS-Protection, Strict-Transport-Security",
        ),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "etc/web.yml:3:22: http_server_config.headers.X-Frame-Options: \"allow\" is not one of deny, sameorigin",
        ),
        (
            "http_server_config:\n  http3: true\n",
            "etc/web.yml:2:3: http_server_config: unknown field \"http3\", did you mean \"http2\"?",
        ),
        (
            "basic_auth_users: [alice]\n",
            "etc/web.yml:1:19: basic_auth_users: expected a mapping, found a list",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(errors(text), [*want], "for:\n{text}");
    }
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = errors("tls_server_config:\n  cert_file: c\n  min_version: TLS9\nbogus: 1\n");
    assert_eq!(e.len(), 3, "{e:#?}");
}

#[test]
fn the_plain_password_is_never_echoed() {
    let e = errors("basic_auth_users:\n  alice: hunter2\n");
    assert!(!e[0].contains("hunter2"), "{e:?}");
}

#[test]
fn missing_certificate_files_are_reported_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(
        &path,
        "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
    )
    .unwrap();
    let err = config::load(&path).unwrap_err().to_string();
    let file = path.display().to_string();
    assert!(
        err.starts_with(&format!(
            "invalid web config:\n{file}:2:14: cannot read tls_server_config.cert_file {}",
            dir.path().join("nope.crt").display()
        )),
        "{err}"
    );
}

fn app() -> Router {
    Router::new()
        .route("/metrics", get(|| async { "up 1\n" }))
        .route("/echo", post(|body: String| async move { body }))
}

fn small_limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// Writes `request` on an in-memory connection served by `app` and reads
/// until the server closes (or 5 s pass).
async fn exchange(app: Router, limits: Limits, request: Vec<u8>) -> String {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let conn = tokio::spawn(serve_connection(server, app, &limits));
    client.write_all(&request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out)).await;
    drop(client);
    let _ = conn.await;
    String::from_utf8_lossy(&out).into_owned()
}

fn guarded_app(users: BTreeMap<String, String>) -> Router {
    let headers = vec![(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("deny"),
    )];
    guarded(
        app(),
        BasicAuth::new(users).unwrap(),
        headers,
        &small_limits(),
    )
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let big = "a".repeat(20 * 1024);
    let req = format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let resp = exchange(
        guarded_app(BTreeMap::new()),
        small_limits(),
        req.into_bytes(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 431 "), "{resp:.200}");
}

#[tokio::test]
async fn a_normal_request_passes_with_the_configured_headers() {
    let req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let resp = exchange(guarded_app(BTreeMap::new()), small_limits(), req.into()).await;
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(resp.contains("x-frame-options: deny"), "{resp}");
    assert!(resp.ends_with("up 1\n"), "{resp}");
}

#[tokio::test]
async fn a_declared_oversized_body_gets_413_unread() {
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\nxx",
        10 * 1024 * 1024
    );
    let resp = exchange(
        guarded_app(BTreeMap::new()),
        small_limits(),
        req.into_bytes(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 413 "), "{resp}");
}

#[tokio::test]
async fn a_chunked_oversized_body_gets_413() {
    let chunk = "a".repeat(32 * 1024);
    let mut req =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            .to_string();
    for _ in 0..3 {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    let resp = exchange(
        guarded_app(BTreeMap::new()),
        small_limits(),
        req.into_bytes(),
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 413 "), "{resp:.300}");
}

#[tokio::test]
async fn a_small_body_is_accepted() {
    let req =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let resp = exchange(guarded_app(BTreeMap::new()), small_limits(), req.into()).await;
    assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
    assert!(resp.ends_with("hello"), "{resp}");
}

#[tokio::test]
async fn without_credentials_the_answer_is_401_with_a_challenge() {
    let hash = bcrypt::hash("pw", 4).unwrap();
    let app = guarded_app(BTreeMap::from([("alice".to_string(), hash)]));
    let req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let resp = exchange(app.clone(), small_limits(), req.into()).await;
    assert!(resp.starts_with("HTTP/1.1 401 "), "{resp}");
    assert!(resp.contains("www-authenticate: Basic"), "{resp}");
    // The configured headers go on refusals too.
    assert!(resp.contains("x-frame-options: deny"), "{resp}");
    // alice:pw
    let req = "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6cHc=\r\nConnection: close\r\n\r\n";
    let resp = exchange(app, small_limits(), req.into()).await;
    assert!(resp.starts_with("HTTP/1.1 200 "), "{resp}");
}

#[tokio::test(start_paused = true)]
async fn a_slow_head_is_dropped_after_the_header_timeout() {
    let limits = small_limits();
    let (mut client, server) = tokio::io::duplex(4096);
    let conn = tokio::spawn(serve_connection(server, app(), &limits));
    let started = tokio::time::Instant::now();
    // One byte per second, never finishing the head.
    for b in b"GET /metrics HTTP/1.1\r\nX-Slow: ".iter().cycle().take(30) {
        if client.write_all(&[*b]).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        if conn.is_finished() {
            break;
        }
    }
    assert!(conn.is_finished(), "connection still open");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= limits.header_read_timeout
            && elapsed <= limits.header_read_timeout + Duration::from_secs(2),
        "closed after {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed() {
    let limits = small_limits();
    let (mut client, server) = tokio::io::duplex(1 << 16);
    let conn = tokio::spawn(serve_connection(server, app(), &limits));
    client
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = client.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200 "));
    tokio::time::sleep(limits.header_read_timeout + Duration::from_millis(500)).await;
    assert!(conn.is_finished(), "idle keep-alive connection still open");
}
