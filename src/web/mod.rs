//! The web server around the router: optional TLS (with client
//! certificates) and basic auth from the exporter-toolkit web config, and
//! bounds that keep one client from starving the others. Owns sockets,
//! connections and the access check; knows nothing of routes (`http`)
//! and never looks at request contents beyond the auth header and
//! `Content-Length`.
//!
//! The web config is read once, at start (`load`), and a bad file makes
//! `errbudget run` fail with its diagnostics. It is not re-read per
//! request as the exporter-toolkit does, nor on reload: changing users or
//! certificates needs a restart.
//!
//! Bounds (see [`Limits`]), chosen for a metrics endpoint whose clients
//! are a few Prometheus servers, dashboards and people:
//! - request head ≤ 16 KiB, else 431: Prometheus sends ~300 bytes; 16 KiB
//!   leaves room for long tokens and cookies from a browser;
//! - request body ≤ 64 KiB, else 413: no endpoint takes a body;
//! - 10 s to send the request head, and the same 10 s bound on an idle
//!   keep-alive connection (hyper starts the header timer as soon as a
//!   connection waits for its next request). A slow-loris client trickling
//!   bytes is dropped after 10 s. Prometheus' default scrape timeout is
//!   10 s too and it writes its request in one go, so a real scraper never
//!   meets the limit; a scraper idle for longer just reconnects;
//! - 10 s for the TLS handshake, the same idea one layer down;
//! - 256 connections at once; beyond that new ones wait in the kernel's
//!   accept queue. With the 10 s timeouts, an attacker must keep 256
//!   sockets busy to delay anyone, and memory stays bounded
//!   (256 × ≤ 16 KiB head buffer + TLS state ≈ a few tens of MiB), well
//!   under the usual 1024 open-files limit.
//! - On shutdown, open requests get up to 10 s to finish.

pub mod auth;
pub mod config;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use auth::BasicAuth;
pub use config::{WebConfig, WebConfigError};

/// The server's bounds; [`Limits::default`] holds the documented values.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
    pub header_read_timeout: Duration,
    pub tls_handshake_timeout: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error(transparent)]
    Config(#[from] WebConfigError),
    #[error(transparent)]
    Key(#[from] auth::KeyError),
}

/// Loads the web config named by the flag or the settings, if any.
pub fn load(path: Option<&Path>) -> Result<Option<WebConfig>, WebError> {
    Ok(path.map(config::load).transpose()?)
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// requests finish for up to [`Limits::shutdown_grace`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: Option<WebConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WebError> {
    serve_with(listener, router, web, Limits::default(), shutdown).await
}

/// [`serve`] with explicit bounds (tests use small ones).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    web: Option<WebConfig>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WebError> {
    let (tls, users, headers) = match web {
        Some(w) => {
            log_config(&w);
            (
                w.tls.map(tokio_rustls::TlsAcceptor::from),
                w.users,
                w.headers,
            )
        }
        None => (None, Default::default(), Vec::new()),
    };
    let app = guarded(router, BasicAuth::new(users)?, headers, &limits);
    let builder = builder(&limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // Take a connection slot before accepting, so that at the cap new
        // clients wait in the kernel's queue instead of in our memory.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Responses are small and written at once; don't let Nagle delay them.
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let svc = TowerToHyperService::new(app.clone().layer(axum::Extension(Peer(peer.ip()))));
        let builder = builder.clone();
        let tls = tls.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let result = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection(TokioIo::new(stream), svc))
                        .await
                }
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => {
                            watcher
                                .watch(builder.serve_connection(TokioIo::new(s), svc))
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                // Header timeouts, resets, oversized heads: the client's
                // problem, not worth more than a debug line.
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(grace = ?limits.shutdown_grace, "open connections did not finish in time; closing them");
        }
    }
    Ok(())
}

fn log_config(w: &WebConfig) {
    match &w.tls_summary {
        Some(t) => tracing::info!(
            web_config = %w.path.display(),
            client_auth = ?t.client_auth,
            min_version = ?t.min_version,
            max_version = ?t.max_version,
            "TLS enabled"
        ),
        None => tracing::info!(web_config = %w.path.display(), "TLS disabled"),
    }
    if !w.users.is_empty() {
        tracing::info!(users = w.users.len(), "basic authentication enabled");
        if w.tls.is_none() {
            tracing::warn!("basic authentication without TLS sends passwords in clear text");
        }
    }
}

/// The HTTP/1.1 connection settings from `limits`.
fn builder(limits: &Limits) -> http1::Builder {
    let mut b = http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper refuses less than 8 KiB; its 431 answers a longer head.
        .max_buf_size(limits.max_head_bytes.max(8192))
        .keep_alive(true);
    b
}

/// Serves one connection over any byte stream (tests use an in-memory one).
pub fn serve_connection<I>(
    io: I,
    app: Router,
    limits: &Limits,
) -> impl Future<Output = Result<(), hyper::Error>>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    builder(limits).serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
}

/// The client address of a request, for the fairness of password checks.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub std::net::IpAddr);

struct Guard {
    auth: BasicAuth,
    headers: Vec<(HeaderName, HeaderValue)>,
    max_body_bytes: u64,
}

/// `router` behind the body limit, basic auth and the configured headers.
pub fn guarded(
    router: Router,
    auth: BasicAuth,
    headers: Vec<(HeaderName, HeaderValue)>,
    limits: &Limits,
) -> Router {
    let guard = Arc::new(Guard {
        auth,
        headers,
        max_body_bytes: limits.max_body_bytes as u64,
    });
    router
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(guard, check))
}

async fn check(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    let mut resp = if too_large(&req, g.max_body_bytes) {
        (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
    } else {
        let peer = req.extensions().get::<Peer>().map(|p| p.0);
        match g
            .auth
            .verify(req.headers().get(header::AUTHORIZATION), peer)
            .await
        {
            auth::Verdict::Pass => next.run(req).await,
            auth::Verdict::Deny => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic")],
                "Unauthorized\n",
            )
                .into_response(),
            auth::Verdict::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "a password check from this address is already running\n",
            )
                .into_response(),
        }
    };
    for (k, v) in &g.headers {
        resp.headers_mut().insert(k.clone(), v.clone());
    }
    resp
}

/// A declared body above the limit is refused before anything reads it;
/// a chunked one is cut off by `DefaultBodyLimit` where a handler reads it.
fn too_large(req: &Request, max: u64) -> bool {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > max)
}

#[cfg(test)]
mod tests;
