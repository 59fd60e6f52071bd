//! TLS for both ends: the rustls client configuration built from `tls`
//! settings (trusted CAs, client certificate, `server_name`,
//! `insecure_skip_verify`), PEM loading for the client and the web server
//! (errors name the path, never the contents), and the verifier that checks
//! handshake signatures only. Knows nothing of HTTP or queries.
//!
//! We build the `ClientConfig` ourselves instead of using reqwest's TLS
//! options because reqwest has no way to verify the server certificate
//! against another name than the URL's host. `server_name` is honoured by a
//! verifier that checks the certificate against that name; the SNI sent is
//! still the URL's host (none for an IP address), since reqwest's connector
//! takes it from the URL. Go's `tls.Config.ServerName` sets both; for the
//! usual use (connect by IP or internal alias, verify the real name) the
//! verification is what matters.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{ring, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::DistinguishedName;

use crate::readfile::ReadError;

/// The `tls` block of a client's settings (Prometheus, a receiver).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TlsSettings {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub server_name: Option<String>,
    pub insecure_skip_verify: bool,
}

/// A TLS configuration could not be built. `what` names the setting.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}: {reason}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        reason: ReadError,
    },
    #[error("cannot parse {what} {path}: {reason}")]
    Pem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("tls.cert_file and tls.key_file must be given together")]
    IncompleteClientCert,
    #[error("invalid tls.server_name {name:?}")]
    InvalidServerName { name: String },
    #[error("TLS setup failed: {reason}")]
    Setup { reason: String },
}

pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig, TlsError> {
    // ring: the provider reqwest's `rustls-tls` feature already compiles in.
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?;
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(SignatureOnly::new(false))
    } else {
        let roots = match &tls.ca_file {
            Some(path) => ca_roots(path)?,
            // Without a CA file, the Mozilla roots reqwest would use too.
            None => RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| TlsError::Setup {
                reason: e.to_string(),
            })?;
        match &tls.server_name {
            Some(name) => Arc::new(VerifyAs {
                inner: webpki,
                name: ServerName::try_from(name.clone())
                    .map_err(|_| TlsError::InvalidServerName { name: name.clone() })?,
            }),
            None => webpki,
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(client_certs(cert)?, client_key(key)?)
            .map_err(tls_error)?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::IncompleteClientCert),
    };
    // reqwest is built with HTTP/1 only; say so in ALPN so an h2-preferring
    // server does not pick a protocol we cannot speak.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn tls_error(e: rustls::Error) -> TlsError {
    TlsError::Setup {
        reason: e.to_string(),
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    crate::readfile::read_bytes(path, crate::readfile::PEM).map_err(|reason| TlsError::ReadFile {
        what,
        path: path.to_owned(),
        reason,
    })
}

pub fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what,
            path: path.to_owned(),
            reason: "no CERTIFICATE block found".to_owned(),
        });
    }
    Ok(certs)
}

fn ca_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certs("tls.ca_file", path)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            what: "tls.ca_file",
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn client_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certs("tls.cert_file", path)
}

fn client_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    private_key("tls.key_file", path)
}

/// The first PEM private key in `path`; the web server's key is read the same way.
pub fn private_key(what: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(what, path)?;
    // The parser's own message may quote lines of the file; for a private
    // key we say only that no key was found.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::Pem {
        what,
        path: path.to_owned(),
        reason: "no valid PEM private key (PKCS#8, PKCS#1 or SEC1) found".to_owned(),
    })
}

/// Verifies the chain as usual but against `name` instead of the URL host.
#[derive(Debug)]
struct VerifyAs {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for VerifyAs {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts any certificate and checks only that the handshake is signed by
/// its key, so the session belongs to whoever presented it. The client's
/// `insecure_skip_verify` and the web server's `RequireAnyClientCert` /
/// `VerifyClientCertIfGiven` without a CA ask for exactly this.
#[derive(Debug)]
pub struct SignatureOnly {
    /// For a server: whether a client must present a certificate.
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SignatureOnly {
    pub fn new(mandatory: bool) -> Self {
        SignatureOnly {
            mandatory,
            algorithms: ring::default_provider().signature_verification_algorithms,
        }
    }

    fn tls12(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }
}

impl ServerCertVerifier for SignatureOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for SignatureOnly {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls12(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
