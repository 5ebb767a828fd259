//! The validated configuration: every value parsed, every reference resolved, defaults
//! applied. Built only by `validate`, so holding a `Config` means it is coherent. The
//! protocol settings (TLS, PROXY protocol, header edits, redirects) are in `protocols`,
//! the pools' (policy, hashing, health checks, outlier ejection, backends) in `pool`.

use crate::diag::Span;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

mod pool;
mod protocols;
pub use pool::*;
pub use protocols::*;

/// A validated configuration: what tango runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The admin API.
    pub admin: Admin,
    /// Where clients connect.
    pub listeners: Vec<Listener>,
    /// Which pool gets a request, first match wins.
    pub routes: Vec<Route>,
    /// Backends and how traffic is spread over them.
    pub pools: Vec<Pool>,
    /// Checklist findings accepted on purpose.
    pub allows: Vec<Allow>,
    /// Where incidents are delivered.
    pub alerts: Alerts,
    /// What a reload must pass, and the canary after it.
    pub guard: Guard,
}

/// The reload guard (`[guard]`): the gates a reload must pass and the canary after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Guard {
    /// Judge reloads: refuse new checklist findings and large predicted shifts.
    pub enabled: bool,
    /// Largest move of a backend's predicted share a reload may make, in points.
    pub max_shift_points: f64,
    /// How long the pools a reload changed are watched for alerts it caused.
    pub canary: Duration,
    /// Restore the previous configuration when such an alert fires in the canary.
    pub rollback: bool,
    /// Standard errors of its sampling noise a move predicted from sampled requests must
    /// clear beyond `max_shift_points`.
    pub noise_sigmas: f64,
    /// Sampled requests a hash pool's prediction is read from; fewer give way to the
    /// key space's split, unless they show a shift over the limit beyond their noise.
    pub min_sample: usize,
    /// Pools allowed to shift by the reload that adds them to this list.
    pub allow_shift: Vec<String>,
}

/// Alert delivery targets (`http://` URLs).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alerts {
    /// Receives a JSON document per incident opened, changed or resolved.
    pub webhook: Option<String>,
    /// Base URL of an Alertmanager.
    pub alertmanager: Option<String>,
}

impl Config {
    /// The pool named `name`.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// The index into `routes` of the route a request for `host` (no port) and `path`,
    /// over TLS or not, takes: the first that matches and, if it redirects, would send
    /// the client somewhere else ([`Route::takes`]).
    pub fn route_index(&self, host: Option<&str>, path: &str, tls: bool) -> Option<usize> {
        self.routes.iter().position(|r| r.takes(host, path, tls))
    }
}

/// The admin API (`[admin]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    /// Address of the admin API.
    pub listen: SocketAddr,
    /// Where the admin API's bearer token comes from; `None`: the API is open (loopback).
    pub token: Option<TokenSource>,
    /// Where the journal file is kept; `None`: memory only.
    pub state_dir: Option<PathBuf>,
    /// Size at which the journal file rotates.
    pub journal_max_bytes: u64,
}

/// The shortest admin token accepted, from any source.
pub const MIN_TOKEN_LEN: usize = 16;

/// Where the admin token comes from. The environment wins over the file; the file may
/// name the token or a file holding it, not both.
#[derive(Clone, PartialEq)]
pub enum TokenSource {
    /// `TANGO_ADMIN_TOKEN` (see [`super::ADMIN_TOKEN_ENV`]).
    Env(String),
    /// `token = "..."`.
    Inline(String),
    /// `token_file = "path"`: read when tango starts, surrounding whitespace trimmed.
    File(PathBuf),
}

impl TokenSource {
    /// The token itself when it is known without reading a file.
    pub fn value(&self) -> Option<&str> {
        match self {
            TokenSource::Env(t) | TokenSource::Inline(t) => Some(t),
            TokenSource::File(_) => None,
        }
    }

    /// Where the token comes from, for messages (never the token).
    pub fn describe(&self) -> String {
        match self {
            TokenSource::Env(_) => format!("the {} environment variable", super::ADMIN_TOKEN_ENV),
            TokenSource::Inline(_) => "admin.token".to_string(),
            TokenSource::File(p) => format!("admin.token_file ({})", p.display()),
        }
    }
}

/// Debug output never shows the secret: a `Config` may end up in a log line.
impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env(_) => f.write_str("Env(<redacted>)"),
            TokenSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            TokenSource::File(p) => f.debug_tuple("File").field(p).finish(),
        }
    }
}

/// Why `token` cannot be an admin token, if it cannot: too short, or not sendable in an
/// `Authorization` header (visible ASCII only, no spaces).
pub fn token_problem(token: &str) -> Option<String> {
    if token.chars().count() < MIN_TOKEN_LEN {
        return Some(format!(
            "the admin token is shorter than {MIN_TOKEN_LEN} characters"
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Some(
            "the admin token has characters other than visible ASCII (spaces, control or non-ASCII characters)"
                .to_string(),
        );
    }
    None
}

/// A listener (`[[listener]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    /// Name in logs and the API (`listener-N` by default).
    pub name: String,
    /// Address to bind; port 0 picks a free one.
    pub listen: SocketAddr,
    /// TLS with ALPN (h2, http/1.1), when configured.
    pub tls: Option<Tls>,
    /// PROXY protocol headers required from (and only accepted from) trusted peers.
    pub proxy_protocol: Option<ProxyProtocol>,
    /// Time a client has to send the request head, from its first byte.
    pub header_timeout: Duration,
    /// Time a new connection may stay silent before its first byte (for TLS: before the
    /// handshake starts, and again between the handshake and the first request).
    pub first_byte_timeout: Duration,
    /// Keep-alive idle time on client connections.
    pub idle_timeout: Duration,
    /// Upper bound on a whole request, all tries included.
    pub request_timeout: Duration,
    /// How long a write to a client may make no progress before the connection is
    /// closed (a client that stopped reading).
    pub send_timeout: Duration,
    /// Open client connections; at the cap the one idle longest is closed.
    pub max_connections: usize,
    /// Largest request head, in bytes.
    pub max_header_bytes: usize,
    /// Peers whose forwarded headers are believed for the client address.
    pub trusted_proxies: Vec<Cidr>,
    /// Where the table is in the file.
    pub span: Span,
}

/// An address block: an IP and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The block's address.
    pub addr: IpAddr,
    /// Its prefix length, in bits.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the block; an IPv4 block also matches IPv4-mapped IPv6.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => return false,
            },
            _ => ip,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// A route (`[[route]]`): a request matching host and path prefix goes to its pool, or
/// is answered with a redirect.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Lower-case host without port; `None` matches any host.
    pub host: Option<String>,
    /// Path prefix, starting with `/`; `None` matches any path.
    pub path_prefix: Option<String>,
    /// Where a matching request goes.
    pub target: Target,
    /// Headers edited on the way in and out.
    pub headers: HeaderRules,
    /// Where the table is in the file.
    pub span: Span,
}

/// What a route does with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Forward it to the pool at this index into `Config::pools`.
    Pool(usize),
    /// Answer with a redirect.
    Redirect(Redirect),
}

impl Route {
    /// The index of the pool the route forwards to; `None` for a redirect.
    pub fn pool(&self) -> Option<usize> {
        match self.target {
            Target::Pool(i) => Some(i),
            Target::Redirect(_) => None,
        }
    }

    /// Whether a request for `host` (no port) and `path`, over TLS or not, takes this
    /// route: it matches, and a redirect would not lead the client back to where it is.
    /// So `redirect = { scheme = "https" }` alone sends plain requests to https and
    /// lets those already on https through to the next route, on any listener.
    pub fn takes(&self, host: Option<&str>, path: &str, tls: bool) -> bool {
        self.matches(host, path)
            && !matches!(&self.target, Target::Redirect(r) if r.leads_back(host, path, tls))
    }

    /// Whether a request for `host` (lower case, no port) and `path` matches this route's
    /// `host` and `path_prefix`.
    pub fn matches(&self, host: Option<&str>, path: &str) -> bool {
        if let Some(want) = &self.host {
            match host {
                Some(h) if h.eq_ignore_ascii_case(want) => {}
                _ => return false,
            }
        }
        match &self.path_prefix {
            Some(p) => path.starts_with(p.as_str()),
            None => true,
        }
    }
}

/// A checklist finding accepted on purpose (`[[allow]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Allow {
    /// The rule's id.
    pub rule: String,
    /// Why it is acceptable here.
    pub reason: String,
    /// The pool it applies to; `None`: every pool.
    pub pool: Option<String>,
    /// Where the table is in the file.
    pub span: Span,
}
