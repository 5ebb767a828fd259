//! The configuration file as written: serde types that mirror the TOML, with spans.
//!
//! Values whose parsing can fail for reasons serde cannot explain well (durations,
//! addresses, enumerations) are kept as spanned strings here and parsed in
//! `validate`, so that one run reports every problem instead of the first.

use serde::Deserialize;
use toml::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub admin: Option<S<AdminFile>>,
    #[serde(default)]
    pub listener: Vec<S<ListenerFile>>,
    #[serde(default)]
    pub route: Vec<S<RouteFile>>,
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardFile {
    pub enabled: Option<S<bool>>,
    pub max_shift: Option<S<f64>>,
    pub canary: Option<S<String>>,
    pub rollback: Option<S<bool>>,
    #[serde(default)]
    pub allow_shift: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    /// POSTed a JSON document per alert fired or resolved.
    pub webhook: Option<S<String>>,
    /// Base URL of an Alertmanager (its `/api/v2/alerts` is used).
    pub alertmanager: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Option<S<String>>,
    pub token: Option<S<String>>,
    /// A file holding the token, so the secret need not sit in this file.
    pub token_file: Option<S<String>>,
    pub state_dir: Option<S<String>>,
    pub journal_max_bytes: Option<S<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    pub name: Option<S<String>>,
    pub listen: S<String>,
    pub tls: Option<S<TlsFile>>,
    pub header_timeout: Option<S<String>>,
    pub first_byte_timeout: Option<S<String>>,
    pub idle_timeout: Option<S<String>>,
    pub request_timeout: Option<S<String>>,
    pub send_timeout: Option<S<String>>,
    pub max_connections: Option<S<i64>>,
    pub max_header_bytes: Option<S<i64>>,
    #[serde(default)]
    pub trusted_proxies: Vec<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: S<String>,
    pub key: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub host: Option<S<String>>,
    pub path_prefix: Option<S<String>>,
    pub pool: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    pub name: S<String>,
    pub policy: Option<S<String>>,
    pub hash_key: Option<S<HashKeyFile>>,
    pub on_missing_key: Option<S<String>>,
    pub max_load_factor: Option<S<f64>>,
    pub ring_points: Option<S<i64>>,
    pub ewma_decay: Option<S<String>>,
    pub slow_start: Option<S<String>>,
    pub connect_timeout: Option<S<String>>,
    pub try_timeout: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub idle_timeout: Option<S<String>>,
    pub max_attempts: Option<S<i64>>,
    pub retry_budget: Option<S<f64>>,
    pub panic_threshold: Option<S<f64>>,
    pub health: Option<S<HealthFile>>,
    pub outlier: Option<S<OutlierFile>>,
    #[serde(default)]
    pub backend: Vec<S<BackendFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashKeyFile {
    pub source: S<String>,
    pub name: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    pub kind: Option<S<String>>,
    pub path: Option<S<String>>,
    pub method: Option<S<String>>,
    pub host: Option<S<String>>,
    #[serde(default)]
    pub expect: Vec<S<String>>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub jitter: Option<S<f64>>,
    pub rise: Option<S<i64>>,
    pub fall: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierFile {
    pub consecutive_failures: Option<S<i64>>,
    pub base_ejection: Option<S<String>>,
    pub max_ejection: Option<S<String>>,
    pub max_ejected_percent: Option<S<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendFile {
    pub name: Option<S<String>>,
    pub address: S<String>,
    pub weight: Option<S<i64>>,
    pub max_connections: Option<S<i64>>,
    pub max_in_flight: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowFile {
    pub rule: S<String>,
    pub reason: Option<S<String>>,
    pub pool: Option<S<String>>,
}
