//! The validated configuration: every value parsed, every reference resolved, defaults
//! applied. Built only by `validate`, so holding a `Config` means it is coherent.

use crate::diag::Span;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub admin: Admin,
    pub listeners: Vec<Listener>,
    pub routes: Vec<Route>,
    pub pools: Vec<Pool>,
    pub allows: Vec<Allow>,
    pub alerts: Alerts,
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
    pub webhook: Option<String>,
    pub alertmanager: Option<String>,
}

impl Config {
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name == name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Admin {
    pub listen: SocketAddr,
    /// Where the admin API's bearer token comes from; `None`: the API is open (loopback).
    pub token: Option<TokenSource>,
    pub state_dir: Option<PathBuf>,
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

#[derive(Debug, Clone, PartialEq)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Listener {
    pub name: String,
    pub listen: SocketAddr,
    pub tls: Option<Tls>,
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
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub trusted_proxies: Vec<Cidr>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
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

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Lower-case host without port; `None` matches any host.
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    /// Index into `Config::pools`.
    pub pool: usize,
    pub span: Span,
}

impl Route {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    RoundRobin,
    Random,
    LeastRequest,
    PeakEwma,
    RingHash,
    Maglev,
}

impl PolicyKind {
    pub const ALL: [(&'static str, PolicyKind); 6] = [
        ("round_robin", PolicyKind::RoundRobin),
        ("random", PolicyKind::Random),
        ("least_request", PolicyKind::LeastRequest),
        ("peak_ewma", PolicyKind::PeakEwma),
        ("ring_hash", PolicyKind::RingHash),
        ("maglev", PolicyKind::Maglev),
    ];

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    pub fn is_hash(self) -> bool {
        matches!(self, PolicyKind::RingHash | PolicyKind::Maglev)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HashKey {
    /// The client's address; forwarded headers are believed only from trusted proxies.
    ClientAddress,
    Header(String),
    Cookie(String),
    Path,
    Query(String),
}

impl HashKey {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissingKey {
    Random,
    RoundRobin,
    Reject,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hashing {
    pub key: HashKey,
    pub on_missing: Option<OnMissingKey>,
    /// Bounded load: no backend above factor x average in-flight.
    pub max_load_factor: Option<f64>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthKind {
    Http,
    Tcp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub kind: HealthKind,
    pub path: String,
    pub method: String,
    pub host: Option<String>,
    /// Inclusive status ranges that count as healthy.
    pub expect: Vec<(u16, u16)>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Fraction of the interval added or removed at random, so probes do not align.
    pub jitter: f64,
    pub rise: u32,
    pub fall: u32,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Outlier {
    pub consecutive_failures: u32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    pub max_ejected_percent: f64,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    pub name: String,
    pub policy: PolicyKind,
    pub policy_span: Option<Span>,
    pub hashing: Option<Hashing>,
    /// Ring points per unit of weight (ring_hash).
    pub ring_points: u32,
    /// Decay time of peak-EWMA latency.
    pub ewma_decay: Duration,
    pub slow_start: Option<Duration>,
    pub connect_timeout: Duration,
    /// Per-attempt limit until response headers arrive.
    pub try_timeout: Duration,
    /// Upper bound across all attempts.
    pub timeout: Duration,
    /// Idle time of pooled upstream keep-alive connections.
    pub idle_timeout: Duration,
    pub max_attempts: u32,
    /// Retries allowed as a fraction of requests.
    pub retry_budget: f64,
    /// Below this eligible fraction, balance over every backend.
    pub panic_threshold: f64,
    pub health: Option<HealthCheck>,
    pub outlier: Option<Outlier>,
    pub backends: Vec<Backend>,
    pub span: Span,
}

impl Pool {
    pub fn total_weight(&self) -> u64 {
        self.backends.iter().map(|b| u64::from(b.weight)).sum()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Backend {
    pub name: String,
    /// `host:port`; the host may be a DNS name.
    pub address: String,
    pub weight: u32,
    pub max_connections: Option<u32>,
    pub max_in_flight: Option<u32>,
    pub span: Span,
    pub weight_span: Option<Span>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Allow {
    pub rule: String,
    pub reason: String,
    pub pool: Option<String>,
    pub span: Span,
}
