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
//! - 256 connections at once. A client that connects at the cap closes
//!   the oldest connection that serves no request (an idle keep-alive, or
//!   one still sending its request head: [`conns`]), so sockets that say
//!   nothing cannot make a scraper wait for their 10 s timeouts; only
//!   when all 256 are serving requests does a new one wait for a slot.
//!   Memory stays bounded (256 × ≤ 16 KiB head buffer + TLS state ≈ a
//!   few tens of MiB), well under the usual 1024 open-files limit.
//! - On shutdown, open requests get up to 10 s to finish.

pub mod auth;
pub mod config;
mod conns;

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
    let open = Arc::new(conns::Registry::default());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
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
        // At the cap, make room by closing the oldest connection that
        // serves no request; its slot frees as it closes. Only when every
        // connection is serving one does this client wait (and, since no
        // more are accepted meanwhile, the rest wait in the kernel's queue).
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                if open.shed_oldest_idle() {
                    tracing::debug!(%peer, "at the connection cap: closed the oldest idle connection");
                }
                let s = tokio::select! {
                    s = slots.clone().acquire_owned() => s,
                    () = &mut shutdown => break,
                };
                let Ok(s) = s else { break };
                s
            }
        };
        // Responses are small and written at once; don't let Nagle delay them.
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let conn = open.register();
        let svc = busy_tracking(
            TowerToHyperService::new(app.clone().layer(axum::Extension(Peer(peer.ip())))),
            conn.busy.clone(),
        );
        let builder = builder.clone();
        let tls = tls.clone();
        let handshake_timeout = limits.tls_handshake_timeout;
        tokio::spawn(async move {
            let _slot = slot;
            let shed = conn.shed.clone();
            let serve = async move {
                match tls {
                    None => {
                        watcher
                            .watch(builder.serve_connection(TokioIo::new(stream), svc))
                            .await
                    }
                    Some(acceptor) => {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
                        {
                            Ok(Ok(s)) => {
                                watcher
                                    .watch(builder.serve_connection(TokioIo::new(s), svc))
                                    .await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                Ok(())
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                Ok(())
                            }
                        }
                    }
                }
            };
            let result = tokio::select! {
                r = serve => r,
                () = shed.notified() => {
                    tracing::debug!(%peer, "idle connection closed to make room");
                    return;
                }
            };
            drop(conn);
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

/// `svc` with the connection counted busy from a request's head until its
/// response body is written, so shedding never cuts an answer short.
fn busy_tracking<S>(
    svc: S,
    busy: Arc<std::sync::atomic::AtomicUsize>,
) -> impl hyper::service::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone
where
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    use http_body_util::BodyExt;
    let svc = Arc::new(svc);
    let f = move |req| {
        let guard = conns::Busy::enter(&busy);
        let answer = svc.call(req);
        async move {
            let resp = answer.await?;
            Ok(resp.map(|body| {
                axum::body::Body::new(body.map_frame(move |frame| {
                    let _held = &guard;
                    frame
                }))
            }))
        }
    };
    hyper::service::service_fn(f)
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

/// The basic-auth user a request authenticated as, for handlers that
/// record who did something.
#[derive(Clone, Debug)]
pub struct AuthUser(pub String);

/// How the web config identifies clients, which decides whether the
/// endpoints that change records exist: `None` when anyone may call them.
pub fn identifies_clients(web: Option<&WebConfig>) -> Option<ClientIdentity> {
    let web = web?;
    if !web.users.is_empty() {
        return Some(ClientIdentity::BasicAuth);
    }
    // Only a verified certificate says who the client is: any one would
    // pass `RequireAnyClientCert`, a self-signed one included.
    let required = web
        .tls_summary
        .as_ref()
        .is_some_and(|t| t.client_auth == config::ClientAuth::RequireAndVerifyClientCert);
    required.then_some(ClientIdentity::ClientCertificate)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientIdentity {
    /// The user name is the one of the request.
    BasicAuth,
    /// Every client shows a certificate the client CA signed; records name
    /// it `client-certificate`.
    ClientCertificate,
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
            auth::Verdict::Pass => {
                let mut req = req;
                if !g.auth.is_open() {
                    let user = req
                        .headers()
                        .get(header::AUTHORIZATION)
                        .and_then(auth::user_name);
                    if let Some(user) = user {
                        req.extensions_mut().insert(AuthUser(user));
                    }
                }
                next.run(req).await
            }
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
