//! The validated protocol settings: a listener's certificates and its PROXY protocol
//! sources, a pool's TLS and HTTP version towards its backends, and a route's header
//! edits and redirect.

use super::Cidr;
use crate::diag::Span;
use std::path::PathBuf;

/// TLS for a listener: certificates picked by the client's server name (SNI).
#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    /// The certificates, in file order (a single `cert`/`key` is the only entry).
    pub certs: Vec<CertEntry>,
    /// Index into `certs` of the one for a server name no entry has (or no SNI).
    pub default: usize,
}

/// One certificate of a listener, with the names it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct CertEntry {
    /// The PEM certificate chain, resolved against the configuration's directory.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
    /// Lower-case server names (`a.example`, `*.b.example`); empty: the certificate's
    /// own names (its subject alternative names), read when it is loaded.
    pub names: Vec<String>,
    /// The key path of `cert` as problems name it (`listener[web].tls.certs[1].cert`).
    pub key_path: String,
    /// Where `cert` is in the file.
    pub cert_span: Span,
    /// Where `key` is in the file.
    pub key_span: Span,
}

/// A listener's `proxy_protocol`: which peers must (and may) start with a PROXY header.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyProtocol {
    /// Peers whose connections must start with a PROXY header; others are refused.
    pub trusted: Vec<Cidr>,
    /// Where the table is in the file.
    pub span: Span,
}

impl ProxyProtocol {
    /// Whether a connection from `ip` is accepted (and must send a header).
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.trusted.iter().any(|c| c.contains(ip))
    }
}

/// TLS from tango to a pool's backends.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamTls {
    /// Certificate authorities trusted; `None`: the system's roots.
    pub ca: Option<PathBuf>,
    /// The name sent by SNI and verified; `None`: the backend address's host.
    pub server_name: Option<String>,
    /// A client certificate chain and key (mTLS), when configured.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Verify the backend's certificate (on unless `verify = false`).
    pub verify: bool,
    /// Where the table is in the file.
    pub span: Span,
    /// Where `verify` is in the file, when given.
    pub verify_span: Option<Span>,
}

/// The HTTP version spoken to a pool's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 (over TLS, or by prior knowledge in plain text): gRPC backends.
    H2,
    /// HTTP/2 when the backend offers it by ALPN, HTTP/1.1 otherwise (needs TLS).
    Auto,
}

impl UpstreamProtocol {
    /// Every protocol with its name in the file.
    pub const ALL: [(&'static str, UpstreamProtocol); 3] = [
        ("http1", UpstreamProtocol::Http1),
        ("h2", UpstreamProtocol::H2),
        ("auto", UpstreamProtocol::Auto),
    ];

    /// The protocol's name in the file.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(n, _)| *n)
    }
}

/// Which PROXY protocol header tango sends to a pool's backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text header (`PROXY TCP4 ...\r\n`).
    V1,
    /// The binary header.
    V2,
}

/// Headers tango owns on every message: framing and hop-by-hop headers, which an edit
/// would corrupt (a wrong length desynchronises the connection), and Date, which
/// tango (or hyper's server) writes when a response has none. Validation refuses
/// header rules that name them, and the data plane leaves such rules out anyway.
pub const MANAGED_HEADERS: &[&str] = &[
    "connection",
    "content-length",
    "date",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A route's header edits: on the request forwarded, and on the response returned.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderRules {
    /// Edits to the request before it is forwarded.
    pub request: HeaderEdits,
    /// Edits to the response before it goes back to the client.
    pub response: HeaderEdits,
    /// Where `headers` is in the file, when given.
    pub span: Option<Span>,
}

impl HeaderRules {
    /// Whether the route edits no header.
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

/// Headers set, appended and removed, by lower-case name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HeaderEdits {
    /// Replace every value of the header with this one (add it when absent).
    pub set: Vec<(String, Template)>,
    /// Add this value beside any the header has.
    pub append: Vec<(String, Template)>,
    /// Remove the header.
    pub remove: Vec<String>,
}

impl HeaderEdits {
    /// Whether nothing is edited.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.append.is_empty() && self.remove.is_empty()
    }
}

/// A header value with variables (`$client_addr`, `$request_id`, `$host`; `$$` is `$`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Text and variables, in order.
    pub parts: Vec<Part>,
}

/// A piece of a header value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text as written.
    Text(String),
    /// A value known per request.
    Var(Var),
}

/// A variable of a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    /// The client's address (after a PROXY header, the address it gave).
    ClientAddr,
    /// The request's id (`X-Request-Id`).
    RequestId,
    /// The request's host, without port.
    Host,
}

impl Var {
    /// Every variable with its name in the file (without `$`).
    pub const ALL: [(&'static str, Var); 3] = [
        ("client_addr", Var::ClientAddr),
        ("request_id", Var::RequestId),
        ("host", Var::Host),
    ];
}

impl Template {
    /// The value for one request, each variable's value from `var`.
    pub fn render<'v>(&self, var: impl Fn(Var) -> &'v str) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => out.push_str(var(*v)),
            }
        }
        out
    }
}

/// A route's redirect: the answer, and the parts of the URL it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// 301, 302, 303, 307 or 308.
    pub status: u16,
    /// `http` or `https`; `None`: the request's.
    pub scheme: Option<String>,
    /// `None`: the request's host.
    pub host: Option<String>,
    /// `None`: the scheme's default port, or the request's when the scheme is kept.
    pub port: Option<u16>,
    /// `None`: the request's path. The query is always kept.
    pub path: Option<String>,
    /// Where the table is in the file.
    pub span: Span,
}

impl Redirect {
    /// Whether following this redirect from a request for `host` (no port) and `path`,
    /// over TLS or not, leads back to the same place: nothing it sets differs from the
    /// request. A redirect is never answered then (it would loop). A `port` counts as a
    /// change, since the request's port is not known here.
    pub fn leads_back(&self, host: Option<&str>, path: &str, tls: bool) -> bool {
        let own = if tls { "https" } else { "http" };
        self.scheme.as_deref().is_none_or(|s| s == own)
            && self.port.is_none()
            && self
                .host
                .as_deref()
                .is_none_or(|h| host.is_some_and(|x| x.eq_ignore_ascii_case(h)))
            && self.path.as_deref().is_none_or(|p| p == path)
    }
}
