//! The HTTP client shared by everything errbudget calls out to (the
//! Prometheus API, Alertmanagers, webhooks): builds a reqwest client from
//! `HttpClientSettings` (TLS, extra headers, basic auth or bearer token),
//! validates endpoint URLs, and holds the small helpers every caller needs
//! to report failures without leaking secrets (URL without userinfo,
//! transport error chains without the URL, bounded error-body excerpts,
//! `Retry-After`). It knows nothing of queries or alerts: retries, bodies
//! and metrics belong to the callers. TLS setup lives in `tls`.

use std::error::Error as _;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, Url};

use crate::config::HttpClientSettings;
use crate::diag::redact;

mod error;

pub use error::ClientError;

/// How much of an error body we read: enough for a JSON error message,
/// bounded so a proxy's huge error page costs nothing.
const MAX_ERROR_BODY_BYTES: u64 = 64 * 1024;
/// How much of an error body goes into an error message or a log line.
pub const BODY_EXCERPT_CHARS: usize = 512;

/// A reqwest client for one endpoint, with its TLS, extra headers and
/// credentials. Cloning is cheap and clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    http: reqwest::Client,
    auth: Arc<Auth>,
}

/// Credentials, applied per request by reqwest, which marks the resulting
/// `Authorization` header sensitive (left out of its debug output).
enum Auth {
    None,
    Basic { username: String, password: String },
    Bearer(String),
}

// Hand-written so a `{:?}` can never print a credential.
impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// Builds the client. Reads the password, token and TLS files now, so a
    /// missing or unreadable file is a configuration error at load/reload,
    /// not a failure in the middle of a query or a notification.
    /// `settings.url` is not looked at: each caller validates its own
    /// endpoints ([`base_url`], [`parse_url`]).
    pub fn new(settings: &HttpClientSettings) -> Result<HttpClient, ClientError> {
        let auth = match (&settings.basic_auth, &settings.bearer_token_file) {
            (Some(_), Some(_)) => return Err(ClientError::ConflictingAuth),
            (Some(basic), None) => Auth::Basic {
                username: basic.username.clone(),
                password: read_secret("basic_auth.password_file", &basic.password_file)?,
            },
            (None, Some(path)) => {
                let token = read_secret("bearer_token_file", path)?;
                if token.is_empty() {
                    return Err(ClientError::EmptyFile {
                        what: "bearer_token_file",
                        path: path.clone(),
                    });
                }
                Auth::Bearer(token)
            }
            (None, None) => Auth::None,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &settings.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ClientError::InvalidHeader {
                    name: name.clone(),
                    reason: "not a valid header name",
                }
            })?;
            if header == AUTHORIZATION {
                return Err(ClientError::InvalidHeader {
                    name: name.clone(),
                    reason: "set credentials with basic_auth or bearer_token_file",
                });
            }
            let mut value =
                HeaderValue::from_str(value).map_err(|_| ClientError::InvalidHeader {
                    name: name.clone(),
                    reason: "value has characters not allowed in a header",
                })?;
            // Extra headers may carry API keys; keep them out of debug output.
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(crate::tls::client_config(&settings.tls)?)
            .default_headers(headers)
            .connect_timeout(settings.timeout)
            // A redirect would replay a POST as GET and could carry
            // credentials elsewhere; surface it as an HTTP error instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(format!("errbudget/{}", crate::version::VERSION))
            .build()
            .map_err(ClientError::Build)?;
        Ok(HttpClient {
            http,
            auth: Arc::new(auth),
        })
    }

    /// A POST to `url` with the credentials applied.
    pub fn post(&self, url: Url) -> RequestBuilder {
        self.authed(self.http.post(url))
    }

    /// A GET to `url` with the credentials applied (status endpoints).
    pub fn get(&self, url: Url) -> RequestBuilder {
        self.authed(self.http.get(url))
    }

    fn authed(&self, request: RequestBuilder) -> RequestBuilder {
        match &*self.auth {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }
}

/// Parses an endpoint URL: http or https, with a host. `what` names the
/// endpoint in the error. The raw string may hold userinfo, so errors
/// never echo it.
pub fn parse_url(raw: &str, what: &'static str) -> Result<Url, ClientError> {
    let url = Url::parse(raw.trim()).map_err(|e| ClientError::InvalidUrl {
        what,
        url: String::new(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid_url(what, &url, "scheme must be http or https"));
    }
    if url.cannot_be_a_base() || url.host_str().is_none() {
        return Err(invalid_url(what, &url, "no host"));
    }
    Ok(url)
}

/// Parses the base URL of an API (`http://host/prefix`) that paths are
/// joined to: as [`parse_url`], without query string or fragment, and
/// ending in a slash so [`Url::join`] keeps any path prefix.
pub fn base_url(raw: &str, what: &'static str) -> Result<Url, ClientError> {
    let mut base = parse_url(raw, what)?;
    if base.query().is_some() || base.fragment().is_some() {
        return Err(invalid_url(
            what,
            &base,
            "must not have a query string or fragment",
        ));
    }
    // `Url::join` replaces the last path segment unless the path ends in a
    // slash: without this, `/prometheus` + `api/v1/query` would lose the prefix.
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    Ok(base)
}

/// `base` (from [`base_url`]) joined with a relative API path.
pub fn join(base: &Url, path: &str, what: &'static str) -> Result<Url, ClientError> {
    base.join(path)
        .map_err(|e| invalid_url(what, base, &e.to_string()))
}

fn invalid_url(what: &'static str, url: &Url, reason: &str) -> ClientError {
    ClientError::InvalidUrl {
        what,
        url: redacted(url),
        reason: reason.to_owned(),
    }
}

/// The URL without userinfo and query string, for logs and errors.
pub fn redacted(url: &Url) -> String {
    redact(url.as_str())
}

/// A credential file's content without the trailing newline editors add.
fn read_secret(what: &'static str, path: &Path) -> Result<String, ClientError> {
    let text = crate::readfile::read_text(path, crate::readfile::SECRET).map_err(|reason| {
        ClientError::ReadFile {
            what,
            path: path.to_owned(),
            reason,
        }
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

/// A reqwest error as one line, without its URL (it may hold userinfo).
/// reqwest's own message is generic ("error sending request"); the cause
/// (refused, TLS, reset) is in its sources, so they are appended.
pub fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut reason = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !reason.ends_with(&text) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        source = cause.source();
    }
    reason
}

/// Reads at most 64 KiB of an error body; a read error just ends it, since
/// the status already says the request failed.
pub async fn read_error_body(response: &mut Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY_BYTES.saturating_sub(body.len() as u64);
        let take = chunk.len().min(usize::try_from(room).unwrap_or(0));
        body.extend_from_slice(&chunk[..take]);
        if take < chunk.len() {
            break;
        }
    }
    body
}

/// The start of an error body on one line, for an error message.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(BODY_EXCERPT_CHARS)
        .collect();
    if out.len() < text.trim().len() && out.chars().count() == BODY_EXCERPT_CHARS {
        out.push('…');
    }
    out
}

/// `Retry-After` in seconds. The HTTP-date form is ignored (the caller's
/// backoff applies): Prometheus-compatible servers and Alertmanager send
/// seconds.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// A seed for backon's jitter. backon is built without `std`, where its
/// jitter seed is a constant; std's per-process random keys make replicas
/// retry out of lockstep.
pub fn jitter_seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_keep_path_prefix() {
        let cases = [
            ("http://localhost:9090", "http://localhost:9090/x"),
            ("http://mimir/prometheus", "http://mimir/prometheus/x"),
            ("https://h/a/b/", "https://h/a/b/x"),
            (" http://h:1/p ", "http://h:1/p/x"),
        ];
        for (raw, want) in cases {
            let base = base_url(raw, "test").unwrap();
            assert_eq!(join(&base, "x", "test").unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn bad_urls_are_rejected_without_userinfo() {
        for raw in ["localhost:9090", "ftp://h/", "http://h/?x=1", "not a url"] {
            assert!(base_url(raw, "test").is_err(), "{raw}");
        }
        // A webhook may carry a query string; only the base form forbids it.
        assert!(parse_url("http://h/hook?x=1", "webhook").is_ok());
        let err = base_url("ftp://user:s3cret@h/", "Alertmanager")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.starts_with("invalid Alertmanager URL"), "{err}");
    }

    #[test]
    fn redaction_hides_userinfo_query_and_fragment_even_when_unparsable() {
        let cases = [
            (
                "http://user:PASS@host:190900",
                "http://<redacted>@host:190900",
            ),
            ("https://h:1/api?token=s3cret", "https://h:1/api?<redacted>"),
            (
                "http://a:b@h/p?x=1#frag",
                "http://<redacted>@h/p?<redacted>",
            ),
            ("http://h/p#s3cret", "http://h/p#<redacted>"),
            ("user:s3cret@h:9090/x", "<redacted>@h:9090/x"),
            ("http://h:9090/prefix", "http://h:9090/prefix"),
            (" http://u@h?k ", "http://<redacted>@h?<redacted>"),
        ];
        for (raw, want) in cases {
            assert_eq!(redact(raw), want, "{raw}");
        }
        let url = Url::parse("http://u:s3cret@h/x?token=t0k#f").unwrap();
        assert_eq!(redacted(&url), "http://<redacted>@h/x?<redacted>");
    }

    #[test]
    fn excerpt_is_one_bounded_line() {
        assert_eq!(
            excerpt(b"<html>\n  Bad   Gateway\n</html>"),
            "<html> Bad Gateway </html>"
        );
        let long = "x".repeat(2000);
        let e = excerpt(long.as_bytes());
        assert_eq!(e.chars().count(), BODY_EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
    }

    #[test]
    fn retry_after_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }
}
