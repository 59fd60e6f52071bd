//! The web config file (`--web.config.file`, `web.config_file`) in the
//! Prometheus exporter-toolkit format: `tls_server_config`,
//! `basic_auth_users` (bcrypt hashes) and `http_server_config.headers`.
//! Read with the positioned YAML reader so every problem is reported as
//! `file:line:column: message`, all at once; then the certificate files
//! are loaded into a rustls `ServerConfig`, with file errors reported at
//! the line that names the file. Knows nothing of sockets or requests.
//!
//! Exporter-toolkit keys errbudget does not implement (inline `cert`/`key`/
//! `client_ca`, `cipher_suites`, `curve_preferences`,
//! `prefer_server_cipher_suites`, `client_allowed_sans`, `rate_limit`) are
//! rejected by name rather than ignored: a file written for another
//! exporter must not silently lose a restriction. `http2` is accepted and
//! has no effect: errbudget serves HTTP/1.1 only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rustls::crypto::ring;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::diag::yaml::{self, Cx, Map, Pos, Sp};
use crate::diag::Diagnostic;
use crate::tls as pem;

/// A loaded and checked web config.
#[derive(Clone)]
pub struct WebConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// `None`: plain HTTP.
    pub tls: Option<Arc<ServerConfig>>,
    /// What `tls` was built from, for the startup log line.
    pub tls_summary: Option<TlsSummary>,
    /// User name → bcrypt hash. Empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Extra response headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl std::fmt::Debug for WebConfig {
    /// Leaves the password hashes out: they are secrets too.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls_summary)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TlsSummary {
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

/// Go's `tls.ClientAuthType`, as the exporter-toolkit spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

const CLIENT_AUTH: &[(&str, ClientAuth)] = &[
    ("NoClientCert", ClientAuth::NoClientCert),
    ("RequestClientCert", ClientAuth::RequestClientCert),
    ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
    // The exporter-toolkit keeps this old name for RequireAnyClientCert.
    ("RequireClientCert", ClientAuth::RequireAnyClientCert),
    (
        "VerifyClientCertIfGiven",
        ClientAuth::VerifyClientCertIfGiven,
    ),
    (
        "RequireAndVerifyClientCert",
        ClientAuth::RequireAndVerifyClientCert,
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// The headers the exporter-toolkit allows, with the values it allows
/// (`None`: any value).
const HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Content-Security-Policy", None),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-XSS-Protection", None),
    ("Strict-Transport-Security", None),
];

const UNSUPPORTED_TLS: &[&str] = &[
    "cert",
    "key",
    "client_ca",
    "cipher_suites",
    "curve_preferences",
    "prefer_server_cipher_suites",
    "client_allowed_sans",
];

/// Why the web config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// Every problem found, one `file:line:column: message` per line.
    #[error("invalid web config:\n{}", join(.0))]
    Invalid(Vec<Diagnostic>),
}

fn join(d: &[Diagnostic]) -> String {
    d.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads `path`, checks it and loads the certificate files it names
/// (relative paths are taken from the web config's directory).
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let file = path.display().to_string();
    let text = crate::readfile::read_text(path, crate::readfile::WEB_CONFIG).map_err(|e| {
        WebConfigError::Invalid(vec![match e {
            crate::readfile::ReadError::NotUtf8 { .. } => e.diagnostic(&file),
            e => Diagnostic::whole_file(&file, format!("cannot read the web config: {e}")),
        }])
    })?;
    let raw = parse(&file, &text).map_err(WebConfigError::Invalid)?;
    build(&file, raw).map_err(WebConfigError::Invalid)
}

/// The file as written, paths already joined to its directory. Pure.
#[derive(Debug, PartialEq)]
pub struct RawWebConfig {
    pub tls: Option<RawTls>,
    pub users: BTreeMap<String, String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, PartialEq)]
pub struct RawTls {
    pub cert_file: Sp<PathBuf>,
    pub key_file: Sp<PathBuf>,
    pub client_ca_file: Option<Sp<PathBuf>>,
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
}

/// Parses web config text; `file` names it in messages and is the base
/// for relative paths.
pub fn parse(file: &str, text: &str) -> Result<RawWebConfig, Vec<Diagnostic>> {
    let docs = yaml::load(text)
        .map_err(|(pos, msg)| vec![Diagnostic::new(file, pos.line, pos.column, msg)])?;
    let base = Path::new(file)
        .parent()
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let mut cx = Cx::of_text(file, text);
    let raw = match docs.as_slice() {
        // An empty file is valid: plain HTTP, no auth (as the toolkit).
        [] => Some(RawWebConfig {
            tls: None,
            users: BTreeMap::new(),
            headers: Vec::new(),
        }),
        [doc] if yaml::is_null(doc) => Some(RawWebConfig {
            tls: None,
            users: BTreeMap::new(),
            headers: Vec::new(),
        }),
        [doc] => top(&mut cx, doc, &base),
        [_, second, ..] => {
            cx.err(
                Pos {
                    line: second.span.start.line(),
                    column: second.span.start.col() + 1,
                },
                "a web config file holds one YAML document",
            );
            None
        }
    };
    match raw {
        Some(r) if !cx.has_errors() => Ok(r),
        _ => {
            let mut d = cx.diags;
            d.sort();
            Err(d)
        }
    }
}

fn top(cx: &mut Cx<'_>, doc: &yaml::Node<'_>, base: &Path) -> Option<RawWebConfig> {
    let m = Map::open(
        cx,
        doc,
        "",
        &[
            "tls_server_config",
            "http_server_config",
            "basic_auth_users",
            "rate_limit",
        ],
    )?;
    if let Some(f) = m.get("rate_limit") {
        cx.err(f.key_pos, "rate_limit: not supported by errbudget");
    }
    let tls = match m.get("tls_server_config") {
        None => Some(None),
        Some(f) => f.map(cx, &tls_fields()).map(|t| tls(cx, &t, base)),
    };
    let headers = match m.get("http_server_config") {
        None => Some(Vec::new()),
        Some(f) => f.map(cx, &["http2", "headers"]).map(|h| {
            // Accepted for compatibility; HTTP/2 is not served either way.
            let _ = h.bool(cx, "http2");
            headers(cx, &h)
        }),
    };
    let users = m
        .get("basic_auth_users")
        .map(|f| users(cx, &f))
        .unwrap_or_default();
    Some(RawWebConfig {
        tls: tls?,
        users,
        headers: headers?,
    })
}

fn tls_fields() -> Vec<&'static str> {
    let mut v = vec![
        "cert_file",
        "key_file",
        "client_auth_type",
        "client_ca_file",
        "min_version",
        "max_version",
    ];
    v.extend_from_slice(UNSUPPORTED_TLS);
    v
}

fn tls(cx: &mut Cx<'_>, t: &Map<'_, '_>, base: &Path) -> Option<RawTls> {
    for key in UNSUPPORTED_TLS {
        if let Some(f) = t.get(key) {
            cx.err(f.key_pos, format!("{}: not supported by errbudget", f.path));
        }
    }
    t.req(cx, "cert_file");
    t.req(cx, "key_file");
    let cert_file = path(cx, t, "cert_file", base);
    let key_file = path(cx, t, "key_file", base);
    let client_ca_file = path(cx, t, "client_ca_file", base);
    let client_auth = match t.str(cx, "client_auth_type") {
        None => Some(ClientAuth::NoClientCert),
        Some(s) => match CLIENT_AUTH.iter().find(|(name, _)| *name == s.value) {
            Some((_, a)) => Some(*a),
            None => {
                cx.err(
                    s.pos,
                    format!(
                        "tls_server_config.client_auth_type: {:?} is not one of NoClientCert, \
                         RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, \
                         RequireAndVerifyClientCert",
                        s.value
                    ),
                );
                None
            }
        },
    };
    let min_version = version(cx, t, "min_version", TlsVersion::Tls12);
    let max_version = version(cx, t, "max_version", TlsVersion::Tls13);
    if let (Some(min), Some(max)) = (min_version, max_version) {
        if min > max {
            cx.err(
                t.pos,
                "tls_server_config: min_version is above max_version".to_string(),
            );
        }
    }
    if let Some(auth) = client_auth {
        let verifies = matches!(
            auth,
            ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
        );
        match (&client_ca_file, verifies) {
            (Some(ca), false) => cx.err(
                ca.pos,
                format!(
                    "tls_server_config.client_ca_file: set, but client_auth_type {auth:?} \
                     does not verify client certificates (use RequireAndVerifyClientCert)"
                ),
            ),
            (None, true) => cx.err(
                t.pos,
                format!(
                    "tls_server_config: client_auth_type {auth:?} needs client_ca_file \
                     to verify client certificates against"
                ),
            ),
            _ => {}
        }
    }
    Some(RawTls {
        cert_file: cert_file?,
        key_file: key_file?,
        client_ca_file,
        client_auth: client_auth?,
        min_version: min_version?,
        max_version: max_version?,
    })
}

fn version(cx: &mut Cx<'_>, t: &Map<'_, '_>, key: &str, default: TlsVersion) -> Option<TlsVersion> {
    let Some(s) = t.str(cx, key) else {
        return Some(default);
    };
    match s.value.as_str() {
        "TLS12" => Some(TlsVersion::Tls12),
        "TLS13" => Some(TlsVersion::Tls13),
        "TLS10" | "TLS11" => {
            cx.err(
                s.pos,
                format!(
                    "tls_server_config.{key}: {} is not supported (TLS12 and TLS13 are)",
                    s.value
                ),
            );
            None
        }
        other => {
            cx.err(
                s.pos,
                format!("tls_server_config.{key}: {other:?} is not one of TLS12, TLS13"),
            );
            None
        }
    }
}

fn path(cx: &mut Cx<'_>, m: &Map<'_, '_>, key: &str, base: &Path) -> Option<Sp<PathBuf>> {
    let s = m.str(cx, key)?;
    if s.value.trim().is_empty() {
        cx.err(s.pos, format!("{}: empty path", yaml::join(&m.path, key)));
        return None;
    }
    Some(Sp {
        value: base.join(&s.value),
        pos: s.pos,
    })
}

fn headers(cx: &mut Cx<'_>, h: &Map<'_, '_>) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    for (k, v) in h.string_map(cx, "headers") {
        let Some((name, allowed)) = HEADERS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&k.value))
        else {
            let names: Vec<&str> = HEADERS.iter().map(|(n, _)| *n).collect();
            cx.err(
                k.pos,
                format!(
                    "http_server_config.headers: {:?} cannot be set; allowed: {}",
                    k.value,
                    names.join(", ")
                ),
            );
            continue;
        };
        // A blank value leaves the header unset, as in the toolkit.
        if v.value.is_empty() {
            continue;
        }
        if let Some(values) = allowed {
            if !values.iter().any(|a| a.eq_ignore_ascii_case(&v.value)) {
                cx.err(
                    v.pos,
                    format!(
                        "http_server_config.headers.{name}: {:?} is not one of {}",
                        v.value,
                        values.join(", ")
                    ),
                );
                continue;
            }
        }
        match HeaderValue::from_str(&v.value) {
            Ok(value) => out.push((HeaderName::from_static(lower(name)), value)),
            Err(_) => cx.err(
                v.pos,
                format!("http_server_config.headers.{name}: not a valid header value"),
            ),
        }
    }
    out
}

/// `HeaderName::from_static` wants lower case.
fn lower(name: &str) -> &'static str {
    match name {
        "Content-Security-Policy" => "content-security-policy",
        "X-Frame-Options" => "x-frame-options",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "strict-transport-security",
    }
}

fn users(cx: &mut Cx<'_>, f: &yaml::Field<'_, '_>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (user, hash) in f.string_map(cx) {
        if user.value.is_empty() || user.value.contains(':') {
            // RFC 7617: the user-id cannot contain a colon.
            cx.err(
                user.pos,
                format!(
                    "basic_auth_users: {:?} cannot be a user name (empty or contains ':')",
                    user.value
                ),
            );
        } else if !is_bcrypt(&hash.value) {
            // The value is not quoted back: it may be a plain password.
            cx.err(
                hash.pos,
                format!(
                    "basic_auth_users.{}: not a bcrypt hash (expected $2y$<cost>$ and 53 \
                     characters, e.g. from `htpasswd -nBC 10 \"\" | tr -d ':\\n'`)",
                    user.value
                ),
            );
        } else if let Some(cost) = bcrypt_cost(&hash.value).filter(|c| *c > MAX_BCRYPT_COST) {
            cx.err(
                hash.pos,
                format!(
                    "basic_auth_users.{}: bcrypt cost {cost} is above {MAX_BCRYPT_COST}, the \
                     highest accepted: every check of a wrong password would cost 2^{cost} \
                     rounds of CPU; hash the password again with a cost of 10 to {MAX_BCRYPT_COST}",
                    user.value
                ),
            );
        } else {
            out.insert(user.value, hash.value);
        }
    }
    out
}

/// bcrypt's work doubles with each step of its cost: 10 takes ~60 ms on
/// a current core, 14 ~1 s, 31 about 18 hours. Every wrong password
/// costs one check, so a high cost is a denial of service for whoever
/// can reach the port; 14 leaves room for the "a second per login"
/// policies some sites have.
pub const MAX_BCRYPT_COST: u32 = 14;

fn bcrypt_cost(h: &str) -> Option<u32> {
    h.get(4..6)?.parse().ok()
}

/// `$2a$`, `$2b$`, `$2x$` or `$2y$`, a two-digit cost in 4..=31, `$`, then
/// 53 characters of bcrypt's base64 (22 salt + 31 hash).
fn is_bcrypt(h: &str) -> bool {
    let b = h.as_bytes();
    b.len() == 60
        && h.starts_with("$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[6] == b'$'
        && h[4..6].parse::<u32>().is_ok_and(|c| (4..=31).contains(&c))
        && b[7..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'))
}

/// Loads the certificate files into a rustls config.
pub fn build(file: &str, raw: RawWebConfig) -> Result<WebConfig, Vec<Diagnostic>> {
    let (tls, tls_summary) = match &raw.tls {
        None => (None, None),
        Some(t) => (
            Some(Arc::new(server_config(file, t)?)),
            Some(TlsSummary {
                client_auth: t.client_auth,
                min_version: t.min_version,
                max_version: t.max_version,
            }),
        ),
    };
    Ok(WebConfig {
        path: PathBuf::from(file),
        tls,
        tls_summary,
        users: raw.users,
        headers: raw.headers,
    })
}

fn server_config(file: &str, t: &RawTls) -> Result<ServerConfig, Vec<Diagnostic>> {
    let at = |pos: Pos, msg: String| vec![Diagnostic::new(file, pos.line, pos.column, msg)];
    let chain = |e: pem::TlsError| crate::diag::chain(&e);
    let certs = pem::certs("tls_server_config.cert_file", &t.cert_file.value)
        .map_err(|e| at(t.cert_file.pos, chain(e)))?;
    let key = pem::private_key("tls_server_config.key_file", &t.key_file.value)
        .map_err(|e| at(t.key_file.pos, chain(e)))?;
    let provider = Arc::new(ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] =
        match (t.min_version, t.max_version) {
            (TlsVersion::Tls12, TlsVersion::Tls12) => &[&rustls::version::TLS12],
            (TlsVersion::Tls13, _) => &[&rustls::version::TLS13],
            _ => &[&rustls::version::TLS13, &rustls::version::TLS12],
        };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| at(Pos::default(), format!("TLS setup failed: {e}")))?;
    let builder = match (&t.client_ca_file, t.client_auth) {
        (Some(ca), auth) => {
            let mut roots = RootCertStore::empty();
            for c in pem::certs("tls_server_config.client_ca_file", &ca.value)
                .map_err(|e| at(ca.pos, chain(e)))?
            {
                roots
                    .add(c)
                    .map_err(|e| at(ca.pos, format!("tls_server_config.client_ca_file: {e}")))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let v = if auth == ClientAuth::VerifyClientCertIfGiven {
                v.allow_unauthenticated()
            } else {
                v
            };
            let v = v
                .build()
                .map_err(|e| at(ca.pos, format!("tls_server_config.client_ca_file: {e}")))?;
            builder.with_client_cert_verifier(v)
        }
        (None, ClientAuth::NoClientCert) => builder.with_no_client_auth(),
        // `RequestClientCert` / `RequireAnyClientCert`: a certificate is
        // asked for (and, for the latter, required) but not checked against
        // any CA, as Go does; the toolkit warns these are insecure, and they
        // exist so files written for other exporters keep working.
        (None, auth) => builder.with_client_cert_verifier(Arc::new(pem::SignatureOnly::new(
            auth == ClientAuth::RequireAnyClientCert,
        ))),
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        at(
            t.key_file.pos,
            format!("tls_server_config: certificate and key do not go together: {e}"),
        )
    })?;
    // HTTP/1.1 only (see the module docs).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
