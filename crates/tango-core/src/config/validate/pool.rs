//! `[[pool]]` and its `[[pool.backend]]`s: the policy and its hashing, timeouts,
//! retries, and each backend's address, weight and caps.

use super::fields::{one_of, span, V};
use super::health::{health, outlier};
use super::tls::{pool_protocols, pool_tls};
use crate::config::defaults::{backend as backend_default, pool as default};
use crate::config::file::{BackendFile, PoolFile, S};
use crate::config::{Backend, HashKey, Hashing, OnMissingKey, PolicyKind, Pool};
use crate::diag::Diagnostic;
use std::collections::HashSet;
use std::net::SocketAddr;

pub(super) fn pools(v: &mut V<'_>, ps: &[S<PoolFile>]) -> Vec<Pool> {
    let mut names = HashSet::new();
    let out = ps.iter().map(|p| pool(v, p, &mut names)).collect();
    if ps.is_empty() {
        v.diags.push(
            Diagnostic::error("pool", None, "no [[pool]] is configured")
                .with_hint("add a [[pool]] with a name and at least one [[pool.backend]]"),
        );
    }
    out
}

fn pool(v: &mut V<'_>, p: &S<PoolFile>, names: &mut HashSet<String>) -> Pool {
    let pf = p.get_ref();
    let name = pf.name.get_ref().clone();
    let k = format!("pool[{name}]");
    check_name(v, &k, pf, names);
    let policy = v
        .table(&k)
        .choice("policy", &pf.policy, &PolicyKind::ALL, default::POLICY);
    let hashing = hashing(v, &k, pf, policy);
    let mut t = v.table(&k);
    let ring_points = t.int(
        "ring_points",
        &pf.ring_points,
        1..=10_000,
        default::RING_POINTS,
    );
    let ewma_decay = t.duration("ewma_decay", &pf.ewma_decay, default::EWMA_DECAY);
    let slow_start = t.optional_duration("slow_start", &pf.slow_start);
    let connect_timeout = t.duration(
        "connect_timeout",
        &pf.connect_timeout,
        default::CONNECT_TIMEOUT,
    );
    let try_timeout = t.duration("try_timeout", &pf.try_timeout, default::TRY_TIMEOUT);
    let timeout = t.duration("timeout", &pf.timeout, default::TIMEOUT);
    let idle_timeout = t.duration("idle_timeout", &pf.idle_timeout, default::IDLE_TIMEOUT);
    let max_attempts = t.int(
        "max_attempts",
        &pf.max_attempts,
        1..=10,
        default::MAX_ATTEMPTS,
    );
    let retry_budget = t.float(
        "retry_budget",
        &pf.retry_budget,
        0.0..=1.0,
        default::RETRY_BUDGET,
    );
    let panic_threshold = t.float(
        "panic_threshold",
        &pf.panic_threshold,
        0.0..=1.0,
        default::PANIC_THRESHOLD,
    );
    let (protocol, send_proxy_protocol) = pool_protocols(v, &k, pf);
    let health = pf.health.as_ref().map(|h| health(v, &k, h, protocol));
    let outlier = pf.outlier.as_ref().map(|o| outlier(v, &k, o));
    let tls = pf.tls.as_ref().and_then(|t| pool_tls(v, &k, t));
    let backends = backends(v, &k, pf);
    Pool {
        name,
        policy,
        policy_span: pf.policy.as_ref().map(span),
        hashing,
        ring_points,
        ewma_decay,
        slow_start,
        connect_timeout,
        try_timeout,
        timeout,
        idle_timeout,
        max_attempts,
        retry_budget,
        panic_threshold,
        health,
        outlier,
        tls,
        protocol,
        protocol_span: pf.protocol.as_ref().map(span),
        send_proxy_protocol,
        send_proxy_protocol_span: pf.send_proxy_protocol.as_ref().map(span),
        backends,
        span: span(p),
    }
}

fn check_name(v: &mut V<'_>, k: &str, pf: &PoolFile, names: &mut HashSet<String>) {
    let name = pf.name.get_ref();
    let usable = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !usable {
        v.err(
            &format!("{k}.name"),
            span(&pf.name),
            format!("pool name `{name}` is not usable"),
            "use 1-64 letters, digits, '-', '_' or '.'",
        );
    }
    if !names.insert(name.clone()) {
        v.err(
            &format!("{k}.name"),
            span(&pf.name),
            format!("pool `{name}` is defined twice"),
            "rename one of the pools or merge their backends",
        );
    }
}

fn hashing(v: &mut V<'_>, k: &str, pf: &PoolFile, policy: PolicyKind) -> Option<Hashing> {
    let mut t = v.table(k);
    let on_missing = t.optional_choice(
        "on_missing_key",
        &pf.on_missing_key,
        &[
            ("random", OnMissingKey::Random),
            ("round_robin", OnMissingKey::RoundRobin),
            ("reject", OnMissingKey::Reject),
        ],
    );
    let max_load_factor = t.optional_float("max_load_factor", &pf.max_load_factor, 1.0..=100.0);
    let Some(h) = &pf.hash_key else {
        if policy.is_hash() {
            v.err(
                &format!("{k}.policy"),
                pf.policy.as_ref().map(span).unwrap_or(span(&pf.name)),
                format!("policy `{}` needs a hash_key", policy.name()),
                "add e.g. `hash_key = { source = \"header\", name = \"x-user-id\" }`",
            );
        }
        return None;
    };
    if !policy.is_hash() {
        v.err(
            &format!("{k}.hash_key"),
            span(h),
            format!(
                "hash_key is set but policy `{}` does not hash",
                policy.name()
            ),
            "use policy \"ring_hash\" or \"maglev\", or remove hash_key",
        );
    }
    Some(Hashing {
        key: hash_key(v, k, h)?,
        on_missing,
        max_load_factor,
        span: span(h),
    })
}

fn hash_key(v: &mut V<'_>, k: &str, h: &S<crate::config::file::HashKeyFile>) -> Option<HashKey> {
    let hf = h.get_ref();
    let need_name = |v: &mut V<'_>, what: &str| -> Option<String> {
        match &hf.name {
            Some(n) if !n.get_ref().is_empty() => Some(n.get_ref().clone()),
            _ => {
                v.err(
                    &format!("{k}.hash_key.name"),
                    span(h),
                    format!("hash_key source `{what}` needs a name"),
                    format!("add `name = \"...\"` naming the {what}"),
                );
                None
            }
        }
    };
    match hf.source.get_ref().as_str() {
        "client_address" => Some(HashKey::ClientAddress),
        "path" => Some(HashKey::Path),
        "header" => need_name(v, "header").map(|n| HashKey::Header(n.to_ascii_lowercase())),
        "cookie" => need_name(v, "cookie").map(HashKey::Cookie),
        "query" => need_name(v, "query").map(HashKey::Query),
        other => {
            v.err(
                &format!("{k}.hash_key.source"),
                span(&hf.source),
                format!("unknown hash key source `{other}`"),
                one_of(
                    other,
                    &["client_address", "header", "cookie", "path", "query"],
                ),
            );
            None
        }
    }
}

/// The pool's backends; a pool without any is an error.
fn backends(v: &mut V<'_>, k: &str, pf: &PoolFile) -> Vec<Backend> {
    if pf.backend.is_empty() {
        v.err(
            k,
            span(&pf.name),
            format!("pool `{}` has no backends", pf.name.get_ref()),
            "add a [[pool.backend]] with an address",
        );
    }
    let mut names = HashSet::new();
    pf.backend
        .iter()
        .enumerate()
        .map(|(i, b)| backend(v, &format!("{k}.backend[{i}]"), b, &mut names))
        .collect()
}

fn backend(v: &mut V<'_>, bk: &str, b: &S<BackendFile>, names: &mut HashSet<String>) -> Backend {
    let bf = b.get_ref();
    let address = bf.address.get_ref().trim().to_string();
    let name = bf
        .name
        .as_ref()
        .map(|n| n.get_ref().clone())
        .unwrap_or_else(|| address.clone());
    if !valid_host_port(&address) {
        v.err(
            &format!("{bk}.address"),
            span(&bf.address),
            format!("`{address}` is not a host:port address"),
            "write e.g. \"10.0.0.5:8080\" or \"app-1.internal:8080\" (the port is required)",
        );
    }
    if let Some(n) = bf.name.as_ref().filter(|n| n.get_ref().trim().is_empty()) {
        v.err(
            &format!("{bk}.name"),
            span(n),
            "backend name is empty",
            "write a name, or leave `name` out to name the backend by its address",
        );
    } else if !names.insert(name.clone()) {
        let s = bf.name.as_ref().map(span).unwrap_or(span(&bf.address));
        v.err(
            &format!("{bk}.name"),
            s,
            format!("backend name `{name}` is used twice in this pool"),
            "give each backend its own name",
        );
    }
    let mut t = v.table(bk);
    Backend {
        name,
        address,
        weight: t.int("weight", &bf.weight, 0..=10_000, backend_default::WEIGHT),
        max_connections: t.optional_int("max_connections", &bf.max_connections, 1..=1_000_000),
        max_in_flight: t.optional_int("max_in_flight", &bf.max_in_flight, 1..=1_000_000),
        span: span(b),
        weight_span: bf.weight.as_ref().map(span),
    }
}

fn valid_host_port(s: &str) -> bool {
    if s.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    let port_ok = port.parse::<u16>().map(|p| p > 0).unwrap_or(false);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
        });
    port_ok && host_ok
}
