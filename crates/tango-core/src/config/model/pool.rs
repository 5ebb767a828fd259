//! The validated pool settings: the balancing policy and its hashing, health checks,
//! outlier ejection, and the backends with their weights.

use super::{ProxyVersion, UpstreamProtocol, UpstreamTls};
use crate::diag::Span;
use std::time::Duration;

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
    /// Bounded load: no backend above factor x its weight's share of the in-flight load.
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
