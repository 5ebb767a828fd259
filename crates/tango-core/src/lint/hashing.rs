//! Rules about hashing pools: a key that may be missing (TNG007), client-address
//! hashing without trusted proxies (TNG008), a low-cardinality key (TNG009), too few
//! ring points (TNG010), no load bound (TNG011).

use super::ring;
use super::rules::*;
use super::{sp, Cx};
use crate::config::file::{HashKeyFile, PoolFile, S};
use crate::config::{HashKey, Hashing, PolicyKind, Pool};
use crate::diag::Span;

/// Expected worst backend's share / its weight's share above which TNG010 fires.
const RING_LIMIT: f64 = 1.10;

/// Headers with few distinct values across a site's traffic.
const LOW_CARDINALITY_HEADERS: &[&str] = &[
    "host",
    ":authority",
    ":method",
    ":scheme",
    "user-agent",
    "accept",
    "accept-language",
    "accept-encoding",
    "content-type",
    "connection",
    "origin",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// Why keys drawn at random cannot stand for this hash key's real traffic (it has few
/// distinct values, TNG009), or `None` when they can. `tango simulate` says so.
pub(crate) fn low_cardinality(key: &HashKey) -> Option<String> {
    match key {
        HashKey::Header(hn) if LOW_CARDINALITY_HEADERS.contains(&hn.as_str()) => {
            Some(format!("header `{hn}` has few distinct values (TNG009)"))
        }
        _ => None,
    }
}

/// A hash pool as the rules see it.
struct Hashed<'a> {
    pool: &'a Pool,
    pf: &'a PoolFile,
    h: &'a Hashing,
    hf: &'a S<HashKeyFile>,
    /// The pool's key path, `pool[NAME]`.
    k: String,
}

impl Hashed<'_> {
    fn name(&self) -> Option<&str> {
        Some(self.pool.name.as_str())
    }

    fn key_span(&self) -> Option<Span> {
        Some(sp(self.hf))
    }
}

pub(super) fn check(cx: &mut Cx<'_>) {
    let any_trusted = cx
        .loaded
        .config
        .listeners
        .iter()
        .any(|l| !l.trusted_proxies.is_empty() || l.proxy_protocol.is_some());
    for (pool, pf) in cx.pools() {
        let (Some(h), Some(hf)) = (&pool.hashing, &pf.hash_key) else {
            continue;
        };
        if !pool.policy.is_hash() {
            continue;
        }
        let k = format!("pool[{}]", pool.name);
        let p = Hashed { pool, pf, h, hf, k };
        missing_key(cx, &p);
        if h.key == HashKey::ClientAddress && !any_trusted {
            client_address_without_proxies(cx, &p);
        }
        low_cardinality_key(cx, &p);
        if pool.policy == PolicyKind::RingHash {
            ring_points(cx, &p);
        }
        if h.max_load_factor.is_none() {
            unbounded_load(cx, &p);
        }
    }
}

/// TNG007: a key a request may lack, with nothing said about such requests.
fn missing_key(cx: &mut Cx<'_>, p: &Hashed<'_>) {
    let missable = matches!(
        p.h.key,
        HashKey::Header(_) | HashKey::Cookie(_) | HashKey::Query(_)
    );
    if !missable || p.h.on_missing.is_some() {
        return;
    }
    cx.report(
        &HASH_KEY_MAY_BE_MISSING,
        p.name(),
        format!("{}.hash_key", p.k),
        p.key_span(),
        format!(
            "requests without {} lose their affinity: pool `{}` sends each to a random backend (on_missing_key is unset and defaults to random)",
            p.h.key.describe(),
            p.pool.name
        ),
        None,
    );
}

/// TNG008: the client address hashed, and no listener believes a proxy's headers.
fn client_address_without_proxies(cx: &mut Cx<'_>, p: &Hashed<'_>) {
    cx.report(
        &CLIENT_ADDRESS_WITHOUT_PROXIES,
        p.name(),
        format!("{}.hash_key", p.k),
        p.key_span(),
        format!(
            "pool `{}` hashes the client address and no listener has trusted_proxies: if tango runs behind a proxy or load balancer, all traffic comes from its few addresses",
            p.pool.name
        ),
        None,
    );
}

/// TNG009: a header with few distinct values.
fn low_cardinality_key(cx: &mut Cx<'_>, p: &Hashed<'_>) {
    let HashKey::Header(hn) = &p.h.key else {
        return;
    };
    if !LOW_CARDINALITY_HEADERS.contains(&hn.as_str()) {
        return;
    }
    let span = p.hf.get_ref().name.as_ref().map(sp).or(p.key_span());
    cx.report(
        &LOW_CARDINALITY_HASH_KEY,
        p.name(),
        format!("{}.hash_key.name", p.k),
        span,
        format!(
            "header `{hn}` has few distinct values: most of pool `{}`'s traffic will map to a few backends",
            p.pool.name
        ),
        None,
    );
}

/// TNG010: a ring too coarse for its weights.
fn ring_points(cx: &mut Cx<'_>, p: &Hashed<'_>) {
    let pool = p.pool;
    let weights: Vec<u32> = pool.backends.iter().map(|b| b.weight).collect();
    // The ring may place more points than configured (a floor on the ring size).
    let per_unit = |rp: u32| crate::policy::ring_points_per_unit(&weights, rp);
    let r = ring::expected_max_ratio(&weights, per_unit(pool.ring_points));
    if r <= RING_LIMIT {
        return;
    }
    let span = p.pf.ring_points.as_ref().map(sp).or(pool.policy_span);
    let hint = match ring::points_needed(&weights, RING_LIMIT, per_unit) {
        Some(points) => format!("set ring_points = {points} or more"),
        None => "even ring_points = 10000 is not enough at these weights: use maglev, or scale the weights up".to_string(),
    };
    cx.report(
        &TOO_FEW_RING_POINTS,
        p.name(),
        format!("{}.ring_points", p.k),
        span,
        format!(
            "with ring_points = {} the busiest backend of pool `{}` is expected to own {:.0}% more key space than its weight gives it",
            pool.ring_points,
            pool.name,
            (r - 1.0) * 100.0
        ),
        Some(hint),
    );
}

/// TNG011: no bound on a hot key's load.
fn unbounded_load(cx: &mut Cx<'_>, p: &Hashed<'_>) {
    cx.report(
        &UNBOUNDED_HASH_LOAD,
        p.name(),
        format!("{}.max_load_factor", p.k),
        p.pool.policy_span.or(p.key_span()),
        format!(
            "pool `{}` hashes without max_load_factor: a hot key can overload one backend",
            p.pool.name
        ),
        None,
    );
}
