//! A live synthetic service for the alert tests: an HTTP server of the
//! test's own on a loopback port that serves `/metrics` with
//! `http_requests_total{code="200"|"500"}` counters, fed by a thread that
//! counts requests at a fixed rate with an error fraction the test switches
//! at will. It also records every POST body it receives, so it doubles as
//! a capturing webhook receiver.
//!
//! Errors are counted deterministically, not at random: each request adds
//! the error fraction to an accumulator and is an error when that reaches
//! 1, so from the switch on exactly `fraction` of the requests fail (±1).
//! Both counters exist (at 0) from the first scrape, so `rate()` sees the
//! first errors as an increase, not as a new series.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

struct Shared {
    stop: AtomicBool,
    /// The error fraction, as f64 bits.
    fraction: AtomicU64,
    good: AtomicU64,
    bad: AtomicU64,
    posts: Mutex<Vec<(SystemTime, Value)>>,
}

pub struct Service {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Service {
    /// Starts serving and counting `rate` requests per second, error-free.
    pub fn start(rate: u64) -> Service {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind synthetic service");
        let addr = listener.local_addr().expect("local addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            fraction: AtomicU64::new(0f64.to_bits()),
            good: AtomicU64::new(0),
            bad: AtomicU64::new(0),
            posts: Mutex::new(Vec::new()),
        });
        let traffic = {
            let shared = shared.clone();
            std::thread::spawn(move || count_requests(&shared, rate))
        };
        let server = {
            let shared = shared.clone();
            std::thread::spawn(move || serve(&shared, &listener))
        };
        Service {
            addr,
            shared,
            threads: vec![traffic, server],
        }
    }

    /// Sets the error fraction from now on; returns when it took effect.
    pub fn set_errors(&self, fraction: f64) -> (Instant, SystemTime) {
        assert!((0.0..=1.0).contains(&fraction));
        self.shared
            .fraction
            .store(fraction.to_bits(), Ordering::SeqCst);
        (Instant::now(), SystemTime::now())
    }

    /// (good, bad) requests counted so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.shared.good.load(Ordering::SeqCst),
            self.shared.bad.load(Ordering::SeqCst),
        )
    }

    /// JSON bodies POSTed to this server, with their arrival times.
    pub fn posts(&self) -> Vec<(SystemTime, Value)> {
        self.shared
            .posts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Counts requests on a 10 ms tick so that after `s` seconds `rate·s`
/// requests were counted, whatever the tick jitter.
fn count_requests(shared: &Shared, rate: u64) {
    let started = Instant::now();
    let mut counted = 0u64;
    let mut acc = 0.0f64;
    while !shared.stop.load(Ordering::SeqCst) {
        let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
        while counted < due {
            counted += 1;
            acc += f64::from_bits(shared.fraction.load(Ordering::SeqCst));
            if acc >= 1.0 {
                acc -= 1.0;
                shared.bad.fetch_add(1, Ordering::SeqCst);
            } else {
                shared.good.fetch_add(1, Ordering::SeqCst);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn serve(shared: &Shared, listener: &TcpListener) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                // A bad client only costs its own request.
                let _ = handle(shared, stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn handle(shared: &Shared, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let (status, body) = if head.starts_with("GET /metrics") {
        let good = shared.good.load(Ordering::SeqCst);
        let bad = shared.bad.load(Ordering::SeqCst);
        (
            "200 OK",
            format!(
                "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n\
                 http_requests_total{{code=\"200\"}} {good}\nhttp_requests_total{{code=\"500\"}} {bad}\n"
            ),
        )
    } else if head.starts_with("POST ") {
        let text = String::from_utf8_lossy(&buf[head_end..]).to_string();
        let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
        shared
            .posts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((SystemTime::now(), v));
        ("200 OK", String::new())
    } else {
        ("404 Not Found", String::new())
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes())?;
    stream.flush()
}
