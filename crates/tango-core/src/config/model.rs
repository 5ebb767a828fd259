//! The validated configuration: every value parsed, every reference resolved, defaults
//! applied. Built only by `validate`, so holding a `Config` means it is coherent. The
//! protocol settings (TLS, PROXY protocol, header edits, redirects) are in `protocols`.

use crate::diag::Span;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

mod protocols;
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

/// A balancing policy (see docs/policies.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Each backend in turn, by weight.
    RoundRobin,
    /// A backend drawn at random, by weight.
    Random,
    /// Of two backends drawn by weight, the one with fewer requests in flight per weight.
    LeastRequest,
    /// Of two backends drawn by weight, the one with the lower peak-EWMA latency x load.
    PeakEwma,
    /// Consistent hashing on a ring of points.
    RingHash,
    /// Maglev's lookup table.
    Maglev,
}

impl PolicyKind {
    /// Every policy with its name in the file.
    pub const ALL: [(&'static str, PolicyKind); 6] = [
        ("round_robin", PolicyKind::RoundRobin),
        ("random", PolicyKind::Random),
        ("least_request", PolicyKind::LeastRequest),
        ("peak_ewma", PolicyKind::PeakEwma),
        ("ring_hash", PolicyKind::RingHash),
        ("maglev", PolicyKind::Maglev),
    ];

    /// The policy's name in the file.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Whether the policy picks by a hash of the request's key.
    pub fn is_hash(self) -> bool {
        matches!(self, PolicyKind::RingHash | PolicyKind::Maglev)
    }
}

/// What a hash pool hashes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// The client's address; forwarded headers are believed only from trusted proxies.
    ClientAddress,
    /// A request header, by lower-case name.
    Header(String),
    /// A cookie, by name.
    Cookie(String),
    /// The request path.
    Path,
    /// A query parameter, by name.
    Query(String),
}

impl HashKey {
    /// The key for messages: "header x-user-id".
    pub fn describe(&self) -> String {
        match self {
            HashKey::ClientAddress => "client_address".into(),
            HashKey::Header(h) => format!("header {h}"),
            HashKey::Cookie(c) => format!("cookie {c}"),
            HashKey::Path => "path".into(),
            HashKey::Query(q) => format!("query {q}"),
        }
    }
}

/// What a hash pool does with a request that lacks the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissingKey {
    /// A backend at random, by weight.
    Random,
    /// Round robin.
    RoundRobin,
    /// Answer 400.
    Reject,
}

/// How a hash pool hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct Hashing {
    /// What is hashed.
    pub key: HashKey,
    /// Requests without the key; `None` is random.
    pub on_missing: Option<OnMissingKey>,
    /// Bounded load: no backend above factor x average in-flight.
    pub max_load_factor: Option<f64>,
    /// Where `hash_key` is in the file.
    pub span: Span,
}

/// How a health probe is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthKind {
    /// An HTTP request whose status is judged.
    Http,
    /// A TCP connect.
    Tcp,
    /// A gRPC `grpc.health.v1.Health/Check` call (HTTP/2 pools only), healthy when it
    /// answers SERVING.
    Grpc,
}

/// Active health checks (`[pool.health]`).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// HTTP, TCP or gRPC.
    pub kind: HealthKind,
    /// The service a gRPC check asks about; empty: the server as a whole.
    pub service: String,
    /// The probe's path.
    pub path: String,
    /// The probe's method, upper case.
    pub method: String,
    /// The probe's Host header; the backend's address when `None`.
    pub host: Option<String>,
    /// Inclusive status ranges that count as healthy.
    pub expect: Vec<(u16, u16)>,
    /// Probe period.
    pub interval: Duration,
    /// Probe limit.
    pub timeout: Duration,
    /// Fraction of the interval added or removed at random, so probes do not align.
    pub jitter: f64,
    /// Passes in a row to come back.
    pub rise: u32,
    /// Failures in a row to go down.
    pub fall: u32,
    /// Where the table is in the file.
    pub span: Span,
}

/// Passive outlier detection (`[pool.outlier]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Outlier {
    /// Failures in a row that eject a backend.
    pub consecutive_failures: u32,
    /// The first ejection's length; the k-th lasts k times as long.
    pub base_ejection: Duration,
    /// The cap on an ejection's length.
    pub max_ejection: Duration,
    /// The most of the pool ejected at once, in percent.
    pub max_ejected_percent: f64,
    /// Where the table is in the file.
    pub span: Span,
}

/// A pool (`[[pool]]`): backends and how traffic is spread over them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// The pool's name.
    pub name: String,
    /// The balancing policy.
    pub policy: PolicyKind,
    /// Where `policy` is in the file, when given.
    pub policy_span: Option<Span>,
    /// Hashing, for hash policies.
    pub hashing: Option<Hashing>,
    /// Ring points per unit of weight (ring_hash).
    pub ring_points: u32,
    /// Decay time of peak-EWMA latency.
    pub ewma_decay: Duration,
    /// Weight ramp-up of a new or recovered backend; `None`: off.
    pub slow_start: Option<Duration>,
    /// Per connection attempt.
    pub connect_timeout: Duration,
    /// Per-attempt limit until response headers arrive.
    pub try_timeout: Duration,
    /// Upper bound across all attempts.
    pub timeout: Duration,
    /// Idle time of pooled upstream keep-alive connections.
    pub idle_timeout: Duration,
    /// Counted tries per request, each on a different backend (see `crate::retry`).
    pub max_attempts: u32,
    /// Retries allowed as a fraction of requests.
    pub retry_budget: f64,
    /// Below this eligible fraction, balance over every backend.
    pub panic_threshold: f64,
    /// TLS to the backends, when configured.
    pub tls: Option<UpstreamTls>,
    /// The HTTP version spoken to the backends.
    pub protocol: UpstreamProtocol,
    /// Where `protocol` is in the file, when given.
    pub protocol_span: Option<Span>,
    /// The PROXY protocol header sent on each upstream connection; `None`: none.
    pub send_proxy_protocol: Option<ProxyVersion>,
    /// Where `send_proxy_protocol` is in the file, when given.
    pub send_proxy_protocol_span: Option<Span>,
    /// Active health checks, when configured.
    pub health: Option<HealthCheck>,
    /// Passive outlier detection, when configured.
    pub outlier: Option<Outlier>,
    /// The backends, in file order; indexes into this list name them everywhere.
    pub backends: Vec<Backend>,
    /// Where the table is in the file.
    pub span: Span,
}

impl Pool {
    /// The sum of the backends' configured weights.
    pub fn total_weight(&self) -> u64 {
        self.backends.iter().map(|b| u64::from(b.weight)).sum()
    }
}

/// A backend (`[[pool.backend]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    /// Name in metrics, logs and alerts; the address by default.
    pub name: String,
    /// `host:port`; the host may be a DNS name.
    pub address: String,
    /// Share of traffic relative to the pool's other backends; 0 sends nothing.
    pub weight: u32,
    /// Upstream connections to this backend; `None`: no cap.
    pub max_connections: Option<u32>,
    /// Requests in progress at this backend; `None`: no cap.
    pub max_in_flight: Option<u32>,
    /// Where the table is in the file.
    pub span: Span,
    /// Where `weight` is in the file, when given.
    pub weight_span: Option<Span>,
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
