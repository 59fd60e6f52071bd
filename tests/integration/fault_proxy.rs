//! A proxy between errbudget and a real Prometheus that forwards every
//! request unchanged until a test switches it to a fault: refused
//! connections, a hang past the timeout, 503, 429, a `status: error`
//! answer, truncated JSON or a 100 MB body. A real Prometheus cannot be made
//! to do these on demand.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::harness::loopback;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Forward to the real Prometheus.
    Forward,
    /// Nobody listens on the port: connection refused, as when Prometheus
    /// is stopped.
    Refuse,
    /// Answer (by forwarding) only after [`HANG`], past errbudget's timeout.
    Hang,
    /// `503 Service Unavailable`, a plain-text body, as a load balancer
    /// sends it.
    Unavailable,
    /// `429 Too Many Requests` with `Retry-After: 1`.
    TooMany,
    /// HTTP 422 with a Prometheus `{"status":"error",...}` body.
    StatusError,
    /// HTTP 200 with a correctly framed body holding cut-off JSON.
    Truncated,
    /// HTTP 200 streaming 100 MB of well-formed vector JSON, with no
    /// Content-Length (so the size is only known by reading it).
    Huge,
}

const FAULTS: [Fault; 8] = [
    Fault::Forward,
    Fault::Refuse,
    Fault::Hang,
    Fault::Unavailable,
    Fault::TooMany,
    Fault::StatusError,
    Fault::Truncated,
    Fault::Huge,
];

const HANG: Duration = Duration::from_secs(3);
const HUGE_BYTES: usize = 100_000_000;
pub const INJECTED: &str = "injected: query processing would load too many samples into memory";

pub struct Proxy {
    port: u16,
    fault: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    pub fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let fault = Arc::new(AtomicU8::new(Fault::Forward as u8));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, s) = (fault.clone(), stop.clone());
        let thread = std::thread::spawn(move || accept_loop(Some(listener), port, upstream, f, s));
        Proxy {
            port,
            fault,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set(&self, f: Fault) {
        self.fault.store(f as u8, Ordering::SeqCst);
        // The accept loop drops or rebinds its listener within 10 ms.
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn current(fault: &AtomicU8) -> Fault {
    FAULTS[fault.load(Ordering::SeqCst) as usize]
}

fn accept_loop(
    mut listener: Option<TcpListener>,
    port: u16,
    upstream: std::net::SocketAddr,
    fault: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
) {
    if let Some(l) = &listener {
        l.set_nonblocking(true).expect("nonblocking listener");
    }
    while !stop.load(Ordering::SeqCst) {
        if current(&fault) == Fault::Refuse {
            listener = None;
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        if listener.is_none() {
            // std sets SO_REUSEADDR, so the port can be bound again at once.
            match TcpListener::bind(loopback(port)) {
                Ok(l) => {
                    l.set_nonblocking(true).expect("nonblocking listener");
                    listener = Some(l);
                }
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
        }
        let Some(l) = &listener else { continue };
        match l.accept() {
            Ok((conn, _)) => {
                let f = fault.clone();
                std::thread::spawn(move || {
                    let _ = handle(conn, upstream, &f);
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Reads one request (head and Content-Length body).
fn read_request(conn: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = conn.read(&mut byte)?;
        if n == 0 || buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("no request head"));
        }
        buf.extend_from_slice(&byte[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::Error::other("short request body"));
        }
        body.extend_from_slice(&byte[..n]);
    }
    Ok((head, body))
}

fn respond(conn: &mut TcpStream, status: &str, headers: &str, body: &str) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// One request per connection: errbudget's pool just reconnects.
fn handle(
    mut conn: TcpStream,
    upstream: std::net::SocketAddr,
    fault: &AtomicU8,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let (head, body) = read_request(&mut conn)?;
    match current(fault) {
        Fault::Forward | Fault::Refuse => forward(&mut conn, upstream, &head, &body),
        Fault::Hang => {
            std::thread::sleep(HANG);
            forward(&mut conn, upstream, &head, &body)
        }
        Fault::Unavailable => respond(
            &mut conn,
            "503 Service Unavailable",
            "Content-Type: text/plain\r\n",
            "upstream connect error: no healthy upstream",
        ),
        Fault::TooMany => respond(
            &mut conn,
            "429 Too Many Requests",
            "Content-Type: text/plain\r\nRetry-After: 1\r\n",
            "rate limited",
        ),
        Fault::StatusError => respond(
            &mut conn,
            "422 Unprocessable Entity",
            "Content-Type: application/json\r\n",
            &format!(r#"{{"status":"error","errorType":"execution","error":"{INJECTED}"}}"#),
        ),
        Fault::Truncated => respond(
            &mut conn,
            "200 OK",
            "Content-Type: application/json\r\n",
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1790812800,"0.5"#,
        ),
        Fault::Huge => {
            write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n\
                 {{\"status\":\"success\",\"data\":{{\"resultType\":\"vector\",\"result\":["
            )?;
            let item = r#"{"metric":{"route":"/r"},"value":[1790812800,"1"]},"#;
            let chunk = item.repeat(64 * 1024 / item.len());
            let mut sent = 0;
            // Streamed: the test holds one 64 KiB chunk, never the body.
            // errbudget hangs up at its size cap; the write then fails.
            while sent < HUGE_BYTES {
                conn.write_all(chunk.as_bytes())?;
                sent += chunk.len();
            }
            conn.write_all(br#"{"metric":{},"value":[1790812800,"1"]}]}}"#)
        }
    }
}

fn forward(
    conn: &mut TcpStream,
    upstream: std::net::SocketAddr,
    head: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let mut up = TcpStream::connect_timeout(&upstream, Duration::from_secs(5))?;
    up.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut lines: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    up.write_all(format!("{}\r\n\r\n", lines.join("\r\n")).as_bytes())?;
    up.write_all(body)?;
    std::io::copy(&mut up, conn)?;
    Ok(())
}
