//! The configuration file as written: serde types that mirror the TOML, with spans.
//!
//! Values whose parsing can fail for reasons serde cannot explain well (durations,
//! addresses, enumerations) are kept as spanned strings here and parsed in
//! `validate`, so that one run reports every problem instead of the first.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A value with the byte range it was read from, for messages that point at it.
pub type S<T> = Spanned<T>;

/// The whole file as written. Each field is the table of the same name.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[admin]`: the admin API.
    #[serde(default)]
    pub admin: Option<S<AdminFile>>,
    /// `[[listener]]`: where clients connect.
    #[serde(default)]
    pub listener: Vec<S<ListenerFile>>,
    /// `[[route]]`: which pool gets a request, first match wins.
    #[serde(default)]
    pub route: Vec<S<RouteFile>>,
    /// `[[pool]]`: backends and how traffic is spread over them.
    #[serde(default)]
    pub pool: Vec<S<PoolFile>>,
    /// Lint rules allowed on purpose, each with a reason.
    #[serde(default)]
    pub allow: Vec<S<AllowFile>>,
    /// Where alerts go besides the log and the journal.
    #[serde(default)]
    pub alerts: Option<S<AlertsFile>>,
    /// What a reload must pass, and the watch after it.
    #[serde(default)]
    pub guard: Option<S<GuardFile>>,
}

/// `[guard]`, as written; defaults in `config::defaults::guard`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardFile {
    /// Judge reloads.
    pub enabled: Option<S<bool>>,
    /// Points a backend's predicted share may move in a reload.
    pub max_shift: Option<S<f64>>,
    /// How long a reload's pools are watched (a duration).
    pub canary: Option<S<String>>,
    /// Restore the previous configuration on an alert in the canary.
    pub rollback: Option<S<bool>>,
    /// Standard errors a sampled move must clear beyond `max_shift`.
    pub noise_sigmas: Option<S<f64>>,
    /// Sampled requests a hash pool's prediction needs.
    pub min_sample: Option<S<i64>>,
    /// Pools whose predicted shift the reload adding them here may make.
    #[serde(default)]
    pub allow_shift: Vec<S<String>>,
}

/// `[alerts]`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    /// POSTed a JSON document per alert fired or resolved.
    pub webhook: Option<S<String>>,
    /// Base URL of an Alertmanager (its `/api/v2/alerts` is used).
    pub alertmanager: Option<S<String>>,
}

/// `[admin]`, as written; defaults in `config::defaults::admin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    /// The admin API's `IP:port`.
    pub listen: Option<S<String>>,
    /// The bearer token, inline.
    pub token: Option<S<String>>,
    /// A file holding the token, so the secret need not sit in this file.
    pub token_file: Option<S<String>>,
    /// Where the journal is kept.
    pub state_dir: Option<S<String>>,
    /// Size at which the journal file rotates.
    pub journal_max_bytes: Option<S<u64>>,
}

/// One `[[listener]]`, as written; defaults in `config::defaults::listener`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    /// Name in logs and the API.
    pub name: Option<S<String>>,
    /// `IP:port` to bind.
    pub listen: S<String>,
    /// Certificates and keys: TLS with ALPN, a certificate picked by SNI.
    pub tls: Option<S<TlsFile>>,
    /// Accept a PROXY protocol header (v1 or v2) from the trusted sources.
    pub proxy_protocol: Option<S<ProxyProtocolFile>>,
    /// Time for a request head, from its first byte (a duration).
    pub header_timeout: Option<S<String>>,
    /// Time a new connection may stay silent (a duration).
    pub first_byte_timeout: Option<S<String>>,
    /// Keep-alive time with no request in progress (a duration).
    pub idle_timeout: Option<S<String>>,
    /// Bound on a whole request, all tries included (a duration).
    pub request_timeout: Option<S<String>>,
    /// Time a write to the client may make no progress (a duration).
    pub send_timeout: Option<S<String>>,
    /// Open client connections allowed.
    pub max_connections: Option<S<i64>>,
    /// Largest request head, in bytes.
    pub max_header_bytes: Option<S<i64>>,
    /// Addresses or CIDR blocks whose forwarded headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<S<String>>,
}

/// A listener's `tls`: one certificate (`cert`, `key`) or several (`certs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    /// PEM certificate chain path (one certificate).
    pub cert: Option<S<String>>,
    /// PEM private key path (one certificate).
    pub key: Option<S<String>>,
    /// Several certificates, picked by the client's server name (SNI).
    #[serde(default)]
    pub certs: Vec<S<CertFile>>,
}

/// One entry of a listener's `tls.certs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFile {
    /// PEM certificate chain path.
    pub cert: S<String>,
    /// PEM private key path.
    pub key: S<String>,
    /// Server names it answers (`a.example`, `*.b.example`); the certificate's own
    /// names when absent.
    pub names: Option<S<Vec<S<String>>>>,
    /// The certificate for a server name no entry has (the first entry when none is).
    pub default: Option<S<bool>>,
}

/// A listener's `proxy_protocol = { trusted = [...] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyProtocolFile {
    /// Addresses or CIDR blocks allowed (and required) to send a PROXY header.
    #[serde(default)]
    pub trusted: Vec<S<String>>,
}

/// One `[[route]]`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// Exact host, case-insensitive, port ignored.
    pub host: Option<S<String>>,
    /// Path prefix, starting with `/`.
    pub path_prefix: Option<S<String>>,
    /// The pool's name (a route redirects or names a pool).
    pub pool: Option<S<String>>,
    /// Headers set, appended or removed on the way in and out.
    pub headers: Option<S<HeadersFile>>,
    /// Answer with a redirect instead of forwarding.
    pub redirect: Option<S<RedirectFile>>,
}

/// A route's `headers = { request = {...}, response = {...} }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadersFile {
    /// Edits to the request before it is forwarded.
    pub request: Option<S<HeaderEditsFile>>,
    /// Edits to the response before it is returned.
    pub response: Option<S<HeaderEditsFile>>,
}

/// `{ set = {name = "value"}, append = {...}, remove = ["name"] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderEditsFile {
    /// Headers replaced (or added), by name.
    pub set: Option<S<BTreeMap<S<String>, S<String>>>>,
    /// Headers added beside any already there, by name.
    pub append: Option<S<BTreeMap<S<String>, S<String>>>>,
    /// Headers removed, by name.
    #[serde(default)]
    pub remove: Vec<S<String>>,
}

/// A route's `redirect = { status, scheme, host, port, path }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedirectFile {
    /// 301, 302, 303, 307 or 308.
    pub status: Option<S<i64>>,
    /// `http` or `https`.
    pub scheme: Option<S<String>>,
    /// The host to send the client to.
    pub host: Option<S<String>>,
    /// The port to send the client to.
    pub port: Option<S<i64>>,
    /// The path to send the client to (the query is kept).
    pub path: Option<S<String>>,
}

/// One `[[pool]]`, as written; defaults in `config::defaults::pool`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    /// Letters, digits, `-`, `_`, `.`.
    pub name: S<String>,
    /// Balancing policy by name.
    pub policy: Option<S<String>>,
    /// What hash policies hash.
    pub hash_key: Option<S<HashKeyFile>>,
    /// What a hash pool does with a request without the key.
    pub on_missing_key: Option<S<String>>,
    /// Bounded load for hash policies.
    pub max_load_factor: Option<S<f64>>,
    /// Ring points per unit of weight.
    pub ring_points: Option<S<i64>>,
    /// Peak EWMA's time constant (a duration).
    pub ewma_decay: Option<S<String>>,
    /// Weight ramp-up of a new or recovered backend (a duration).
    pub slow_start: Option<S<String>>,
    /// Per connection attempt (a duration).
    pub connect_timeout: Option<S<String>>,
    /// Per try, until the response head (a duration).
    pub try_timeout: Option<S<String>>,
    /// All tries of one request (a duration).
    pub timeout: Option<S<String>>,
    /// Idle time of pooled upstream connections (a duration).
    pub idle_timeout: Option<S<String>>,
    /// Tries per request.
    pub max_attempts: Option<S<i64>>,
    /// Re-sends of received requests, as a fraction of requests.
    pub retry_budget: Option<S<f64>>,
    /// Eligible fraction below which every backend is used.
    pub panic_threshold: Option<S<f64>>,
    /// TLS to the backends.
    pub tls: Option<S<PoolTlsFile>>,
    /// `http1`, `h2` or `auto` (by ALPN, over TLS).
    pub protocol: Option<S<String>>,
    /// `v1` or `v2`: a PROXY protocol header on each upstream connection.
    pub send_proxy_protocol: Option<S<String>>,
    /// `[pool.health]`: active probes.
    pub health: Option<S<HealthFile>>,
    /// `[pool.outlier]`: passive ejection.
    pub outlier: Option<S<OutlierFile>>,
    /// `[[pool.backend]]`s.
    #[serde(default)]
    pub backend: Vec<S<BackendFile>>,
}

/// A pool's `tls = { ca, server_name, cert, key, verify }`: TLS to its backends.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolTlsFile {
    /// PEM file of the certificate authorities trusted; the system's roots when absent.
    pub ca: Option<S<String>>,
    /// The name sent by SNI and verified; the backend's host when absent.
    pub server_name: Option<S<String>>,
    /// PEM client certificate chain path (mTLS, with `key`).
    pub cert: Option<S<String>>,
    /// PEM client private key path (mTLS, with `cert`).
    pub key: Option<S<String>>,
    /// Verify the backend's certificate.
    pub verify: Option<S<bool>>,
}

/// A pool's `hash_key = { source, name }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashKeyFile {
    /// `client_address`, `header`, `cookie`, `path` or `query`.
    pub source: S<String>,
    /// The header, cookie or query parameter's name.
    pub name: Option<S<String>>,
}

/// `[pool.health]`, as written; defaults in `config::defaults::health`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    /// `http`, `tcp` or `grpc`.
    pub kind: Option<S<String>>,
    /// The service a gRPC check asks about.
    pub service: Option<S<String>>,
    /// The probe's path.
    pub path: Option<S<String>>,
    /// The probe's method.
    pub method: Option<S<String>>,
    /// The probe's Host header.
    pub host: Option<S<String>>,
    /// Healthy statuses or ranges (`"200-399"`).
    #[serde(default)]
    pub expect: Vec<S<String>>,
    /// Probe period (a duration).
    pub interval: Option<S<String>>,
    /// Probe limit (a duration).
    pub timeout: Option<S<String>>,
    /// Fraction of the interval added or removed at random.
    pub jitter: Option<S<f64>>,
    /// Passes in a row to come back.
    pub rise: Option<S<i64>>,
    /// Failures in a row to go down.
    pub fall: Option<S<i64>>,
}

/// `[pool.outlier]`, as written; defaults in `config::defaults::outlier`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierFile {
    /// Failures in a row that eject a backend.
    pub consecutive_failures: Option<S<i64>>,
    /// The first ejection's length (a duration).
    pub base_ejection: Option<S<String>>,
    /// The cap on an ejection's length (a duration).
    pub max_ejection: Option<S<String>>,
    /// The most of the pool ejected at once, in percent.
    pub max_ejected_percent: Option<S<f64>>,
}

/// One `[[pool.backend]]`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendFile {
    /// Name in metrics, logs and alerts; the address when absent.
    pub name: Option<S<String>>,
    /// `host:port`.
    pub address: S<String>,
    /// Share of traffic, relative to the pool's other backends.
    pub weight: Option<S<i64>>,
    /// Upstream connections to this backend.
    pub max_connections: Option<S<i64>>,
    /// Requests in progress at this backend.
    pub max_in_flight: Option<S<i64>>,
}

/// One `[[allow]]`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowFile {
    /// The checklist rule accepted (e.g. `TNG003`).
    pub rule: S<String>,
    /// Why it is acceptable here (required).
    pub reason: Option<S<String>>,
    /// The pool it applies to; all pools when absent.
    pub pool: Option<S<String>>,
}
