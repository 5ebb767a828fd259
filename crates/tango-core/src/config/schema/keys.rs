//! The key lists the shape check walks a file against: every table of the file, each
//! key in it with the type of its value and whether serde requires it. They mirror the
//! serde types of `file.rs` (a test keeps them in step).

#[derive(Clone, Copy)]
pub(super) enum Ty {
    Str,
    Int,
    UInt,
    Float,
    Bool,
    Strs,
    /// A table of string values under any keys (header names).
    StrMap,
    Table(&'static [F]),
    Tables(&'static [F]),
}

/// A key, its type, and whether serde requires it (a required key is never blanked).
pub(super) struct F(pub(super) &'static str, pub(super) Ty, pub(super) bool);

use Ty::*;

pub(super) const ROOT: &[F] = &[
    F("admin", Table(ADMIN), false),
    F("listener", Tables(LISTENER), false),
    F("route", Tables(ROUTE), false),
    F("pool", Tables(POOL), false),
    F("allow", Tables(ALLOW), false),
    F("alerts", Table(ALERTS), false),
    F("guard", Table(GUARD), false),
];
pub(super) const GUARD: &[F] = &[
    F("enabled", Bool, false),
    F("max_shift", Float, false),
    F("canary", Str, false),
    F("rollback", Bool, false),
    F("noise_sigmas", Float, false),
    F("min_sample", UInt, false),
    F("allow_shift", Strs, false),
];
pub(super) const ALERTS: &[F] = &[F("webhook", Str, false), F("alertmanager", Str, false)];
pub(super) const ADMIN: &[F] = &[
    F("listen", Str, false),
    F("token", Str, false),
    F("token_file", Str, false),
    F("state_dir", Str, false),
    F("journal_max_bytes", UInt, false),
];
pub(super) const LISTENER: &[F] = &[
    F("name", Str, false),
    F("listen", Str, true),
    F("tls", Table(TLS), false),
    F("header_timeout", Str, false),
    F("first_byte_timeout", Str, false),
    F("idle_timeout", Str, false),
    F("request_timeout", Str, false),
    F("send_timeout", Str, false),
    F("max_connections", Int, false),
    F("max_header_bytes", Int, false),
    F("trusted_proxies", Strs, false),
    F("proxy_protocol", Table(PROXY_PROTOCOL), false),
];
pub(super) const TLS: &[F] = &[
    F("cert", Str, false),
    F("key", Str, false),
    F("certs", Tables(CERT), false),
];
pub(super) const CERT: &[F] = &[
    F("cert", Str, true),
    F("key", Str, true),
    F("names", Strs, false),
    F("default", Bool, false),
];
pub(super) const PROXY_PROTOCOL: &[F] = &[F("trusted", Strs, false)];
pub(super) const ROUTE: &[F] = &[
    F("host", Str, false),
    F("path_prefix", Str, false),
    F("pool", Str, false),
    F("headers", Table(HEADERS), false),
    F("redirect", Table(REDIRECT), false),
];
pub(super) const HEADERS: &[F] = &[
    F("request", Table(HEADER_EDITS), false),
    F("response", Table(HEADER_EDITS), false),
];
pub(super) const HEADER_EDITS: &[F] = &[
    F("set", StrMap, false),
    F("append", StrMap, false),
    F("remove", Strs, false),
];
pub(super) const REDIRECT: &[F] = &[
    F("status", Int, false),
    F("scheme", Str, false),
    F("host", Str, false),
    F("port", Int, false),
    F("path", Str, false),
];
pub(super) const POOL: &[F] = &[
    F("name", Str, true),
    F("policy", Str, false),
    F("hash_key", Table(HASH_KEY), false),
    F("on_missing_key", Str, false),
    F("max_load_factor", Float, false),
    F("ring_points", Int, false),
    F("ewma_decay", Str, false),
    F("slow_start", Str, false),
    F("connect_timeout", Str, false),
    F("try_timeout", Str, false),
    F("timeout", Str, false),
    F("idle_timeout", Str, false),
    F("max_attempts", Int, false),
    F("retry_budget", Float, false),
    F("panic_threshold", Float, false),
    F("tls", Table(POOL_TLS), false),
    F("protocol", Str, false),
    F("send_proxy_protocol", Str, false),
    F("health", Table(HEALTH), false),
    F("outlier", Table(OUTLIER), false),
    F("backend", Tables(BACKEND), false),
];
pub(super) const POOL_TLS: &[F] = &[
    F("ca", Str, false),
    F("server_name", Str, false),
    F("cert", Str, false),
    F("key", Str, false),
    F("verify", Bool, false),
];
pub(super) const HASH_KEY: &[F] = &[F("source", Str, true), F("name", Str, false)];
pub(super) const HEALTH: &[F] = &[
    F("kind", Str, false),
    F("service", Str, false),
    F("path", Str, false),
    F("method", Str, false),
    F("host", Str, false),
    F("expect", Strs, false),
    F("interval", Str, false),
    F("timeout", Str, false),
    F("jitter", Float, false),
    F("rise", Int, false),
    F("fall", Int, false),
];
pub(super) const OUTLIER: &[F] = &[
    F("consecutive_failures", Int, false),
    F("base_ejection", Str, false),
    F("max_ejection", Str, false),
    F("max_ejected_percent", Float, false),
];
pub(super) const BACKEND: &[F] = &[
    F("name", Str, false),
    F("address", Str, true),
    F("weight", Int, false),
    F("max_connections", Int, false),
    F("max_in_flight", Int, false),
];
pub(super) const ALLOW: &[F] = &[
    F("rule", Str, true),
    F("reason", Str, false),
    F("pool", Str, false),
];

/// Every table of the schema with the header that introduces it, for "a key of ..." hints.
pub(super) const TABLES: &[(&str, &[F])] = &[
    ("[admin]", ADMIN),
    ("[[listener]]", LISTENER),
    ("[listener.tls]", TLS),
    ("[[listener.tls.certs]]", CERT),
    ("[listener.proxy_protocol]", PROXY_PROTOCOL),
    ("[[route]]", ROUTE),
    ("[route.headers]", HEADERS),
    ("[route.headers.request]", HEADER_EDITS),
    ("[route.redirect]", REDIRECT),
    ("[[pool]]", POOL),
    ("[pool.tls]", POOL_TLS),
    ("[pool.hash_key]", HASH_KEY),
    ("[pool.health]", HEALTH),
    ("[pool.outlier]", OUTLIER),
    ("[[pool.backend]]", BACKEND),
    ("[[allow]]", ALLOW),
    ("[alerts]", ALERTS),
    ("[guard]", GUARD),
];
