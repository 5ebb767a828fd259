//! TLS from tango to a pool's backends (the pool's `tls`): the rustls client
//! configuration, built once per configuration load (a reload builds it again), and the
//! handshake on a new connection.
//!
//! Verification is on unless the file says `verify = false`: against the `ca` file when
//! given, else the system's roots (rustls-native-certs, read when the configuration is
//! loaded). The name sent by SNI and verified is `server_name`, else the backend
//! address's host. `cert` and `key` add a client certificate (mTLS). Every problem
//! reading the files names the key it belongs to, so the caller can report it at that
//! key's line:col.

use std::io;
use std::sync::Arc;
use tango_core::config::{UpstreamProtocol, UpstreamTls};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};

/// Which key of a pool's `tls` a problem belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// The table itself (the system's roots, a setting that does not combine).
    Table,
    Ca,
    Cert,
    Key,
}

/// Why a pool's TLS settings cannot be served, at which key, and what to do.
#[derive(Debug, Clone)]
pub(crate) struct Problem {
    pub(crate) field: Field,
    pub(crate) message: String,
    pub(crate) hint: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Every problem with a pool's TLS settings, in the order of their keys.
#[derive(Debug, Clone)]
pub(crate) struct Problems(pub(crate) Vec<Problem>);

impl From<Problem> for Problems {
    fn from(p: Problem) -> Self {
        Problems(vec![p])
    }
}

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&p.message)?;
        }
        Ok(())
    }
}

/// What a pool's `tls` names, read: the roots (none with `verify = false`), the
/// client certificate and its key, and the server name.
struct Files {
    roots: Option<RootCertStore>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    server_name: Option<ServerName<'static>>,
}

impl Files {
    /// Read each of `t`'s files, and its server name: all of them, or every problem.
    fn read(t: &UpstreamTls) -> Result<Files, Problems> {
        let mut problems = Vec::new();
        let p = &mut problems;
        let roots = if t.verify { keep(roots(t), p) } else { None };
        let client = t.client_cert.as_ref().map(|(cert, key)| {
            let chain = keep(read_certs(cert, Field::Cert), p);
            (chain, keep(read_key(key), p))
        });
        let server_name = t.server_name.as_ref().and_then(|n| {
            let name = ServerName::try_from(n.clone())
                .map_err(|e| problem(Field::Table, format!("`{n}` is not a server name: {e}"), ""));
            keep(name, p)
        });
        if !problems.is_empty() {
            return Err(Problems(problems));
        }
        Ok(Files {
            roots,
            client: client.and_then(|(c, k)| Some((c?, k?))),
            server_name,
        })
    }
}

/// `r`'s value, or `None` with its problem added to `problems`.
fn keep<T>(r: Result<T, Problem>, problems: &mut Vec<Problem>) -> Option<T> {
    r.map_err(|e| problems.push(e)).ok()
}

fn problem(field: Field, message: String, hint: &str) -> Problem {
    Problem {
        field,
        message,
        hint: hint.to_string(),
    }
}

/// A pool's TLS client: its configuration, and the name it verifies when the file sets
/// one.
pub(crate) struct Client {
    connector: tokio_rustls::TlsConnector,
    /// `protocol = "auto"`: the same client offering only `http/1.1`, for health
    /// probes that speak HTTP/1.1 whatever the backend would choose.
    http1_only: Option<tokio_rustls::TlsConnector>,
    server_name: Option<ServerName<'static>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Read `t`'s files and build the client, offering by ALPN what `protocol` speaks:
    /// `h2`, `http/1.1`, or both for `auto` (`h2` first: the backend chooses). Every
    /// file is read whatever the others hold, so each bad one is among the problems.
    pub(crate) fn new(t: &UpstreamTls, protocol: UpstreamProtocol) -> Result<Client, Problems> {
        let provider = Arc::new(crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| problem(Field::Table, format!("TLS protocol versions: {e}"), ""))?;
        let files = Files::read(t)?;
        let builder = match files.roots {
            Some(roots) => builder.with_root_certificates(roots),
            None => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider))),
        };
        let mut config = match files.client {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                problem(
                    Field::Key,
                    format!("the key does not go with the client certificate: {e}"),
                    "give the private key the client certificate was issued for",
                )
            })?,
        };
        config.alpn_protocols = match protocol {
            UpstreamProtocol::Http1 => vec![b"http/1.1".to_vec()],
            UpstreamProtocol::H2 => vec![b"h2".to_vec()],
            UpstreamProtocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        };
        let http1_only = (protocol == UpstreamProtocol::Auto).then(|| {
            let mut c = config.clone();
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            tokio_rustls::TlsConnector::from(Arc::new(c))
        });
        Ok(Client {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            http1_only,
            server_name: files.server_name,
        })
    }

    /// The TLS handshake on `tcp`, a new connection to `address` (`host:port`);
    /// `http1_only`: offer only `http/1.1` by ALPN (a probe that speaks it).
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        address: &str,
        http1_only: bool,
    ) -> io::Result<TlsStream<TcpStream>> {
        let name = match &self.server_name {
            Some(n) => n.clone(),
            None => host_name(address)?,
        };
        let connector = match &self.http1_only {
            Some(c) if http1_only => c,
            _ => &self.connector,
        };
        connector.connect(name, tcp).await
    }
}

/// The host of `host:port` (an IP address, bracketed for IPv6, or a DNS name) as the
/// name to send and verify.
fn host_name(address: &str) -> io::Result<ServerName<'static>> {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{host}` is not a server name ({e}): set the pool's tls.server_name"),
        )
    })
}

/// The roots the backends' certificates are verified against.
fn roots(t: &UpstreamTls) -> Result<RootCertStore, Problem> {
    let mut roots = RootCertStore::empty();
    if let Some(ca) = &t.ca {
        for c in read_certs(ca, Field::Ca)? {
            roots.add(c).map_err(|e| {
                problem(
                    Field::Ca,
                    format!("a certificate in {} is not a usable CA: {e}", ca.display()),
                    "give the PEM certificates of the authorities that issued the backends' certificates",
                )
            })?;
        }
        return Ok(roots);
    }
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map_or_else(String::new, |e| format!(" ({e})"));
        return Err(problem(
            Field::Table,
            format!("no system root certificates were found to verify the backends with{why}"),
            "give `ca = \"...\"`, the PEM file of the authorities that issued the backends' certificates",
        ));
    }
    Ok(roots)
}

const PEM_HINT: &str = "give a PEM file of certificates";

/// The PEM certificates in `path` (the file at key `field`).
fn read_certs(
    path: &std::path::Path,
    field: Field,
) -> Result<Vec<CertificateDer<'static>>, Problem> {
    let text = std::fs::read(path).map_err(|e| unreadable(path, &e, field))?;
    let certs = rustls_pemfile::certs(&mut text.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            problem(
                field,
                format!("{} is not PEM: {e}", path.display()),
                PEM_HINT,
            )
        })?;
    if certs.is_empty() {
        return Err(problem(
            field,
            format!("no certificate found in {}", path.display()),
            PEM_HINT,
        ));
    }
    Ok(certs)
}

/// The PEM private key in `path`.
fn read_key(path: &std::path::Path) -> Result<PrivateKeyDer<'static>, Problem> {
    let text = std::fs::read(path).map_err(|e| unreadable(path, &e, Field::Key))?;
    let hint = "give a PEM private key (PKCS#8, PKCS#1 or SEC1)";
    rustls_pemfile::private_key(&mut text.as_slice())
        .map_err(|e| {
            problem(
                Field::Key,
                format!("{} is not PEM: {e}", path.display()),
                hint,
            )
        })?
        .ok_or_else(|| {
            problem(
                Field::Key,
                format!("no private key found in {}", path.display()),
                hint,
            )
        })
}

fn unreadable(path: &std::path::Path, e: &io::Error, field: Field) -> Problem {
    problem(
        field,
        format!("cannot read {}: {e}", path.display()),
        "check the path (relative paths are relative to the configuration file) and its permissions",
    )
}

/// `verify = false`: any certificate is accepted, but the handshake's signatures are
/// still checked against the key it carries (the connection is encrypted to whoever
/// holds that key, unauthenticated).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
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
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_verified_is_the_address_host() {
        let name = |a: &str| host_name(a).map(|n| n.to_str().into_owned());
        assert_eq!(name("api.internal:443").unwrap(), "api.internal");
        assert_eq!(name("10.0.0.1:8443").unwrap(), "10.0.0.1");
        assert_eq!(name("[::1]:443").unwrap(), "::1");
        assert!(name("not a name:443").is_err());
    }
}
