//! Rules about hashing pools: a key that may be missing (TNG007), client-address
//! hashing without trusted proxies (TNG008), a low-cardinality key (TNG009), too few
//! ring points (TNG010), no load bound (TNG011).

use super::ring;
use super::rules::*;
use super::{sp, Cx};
use crate::config::{HashKey, PolicyKind};

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

pub(super) fn check(cx: &mut Cx<'_>) {
    let any_trusted = cx
        .loaded
        .config
        .listeners
        .iter()
        .any(|l| !l.trusted_proxies.is_empty());
    for (pool, pf) in cx.pools() {
        let (Some(h), Some(hf)) = (&pool.hashing, &pf.hash_key) else {
            continue;
        };
        if !pool.policy.is_hash() {
            continue;
        }
        let k = format!("pool[{}]", pool.name);
        let key_span = Some(sp(hf));
        let name = Some(pool.name.as_str());
        let missable = matches!(
            h.key,
            HashKey::Header(_) | HashKey::Cookie(_) | HashKey::Query(_)
        );
        if missable && h.on_missing.is_none() {
            cx.report(
                &HASH_KEY_MAY_BE_MISSING,
                name,
                format!("{k}.hash_key"),
                key_span,
                format!(
                    "requests without {} lose their affinity: pool `{}` sends each to a random backend (on_missing_key is unset and defaults to random)",
                    h.key.describe(),
                    pool.name
                ),
                None,
            );
        }
        if h.key == HashKey::ClientAddress && !any_trusted {
            cx.report(
                &CLIENT_ADDRESS_WITHOUT_PROXIES,
                name,
                format!("{k}.hash_key"),
                key_span,
                format!(
                    "pool `{}` hashes the client address and no listener has trusted_proxies: if tango runs behind a proxy or load balancer, all traffic comes from its few addresses",
                    pool.name
                ),
                None,
            );
        }
        if let HashKey::Header(hn) = &h.key {
            if LOW_CARDINALITY_HEADERS.contains(&hn.as_str()) {
                let span = hf.get_ref().name.as_ref().map(sp).or(key_span);
                cx.report(
                    &LOW_CARDINALITY_HASH_KEY,
                    name,
                    format!("{k}.hash_key.name"),
                    span,
                    format!(
                        "header `{hn}` has few distinct values: most of pool `{}`'s traffic will map to a few backends",
                        pool.name
                    ),
                    None,
                );
            }
        }
        if pool.policy == PolicyKind::RingHash {
            let weights: Vec<u32> = pool.backends.iter().map(|b| b.weight).collect();
            // The ring may place more points than configured (a floor on the ring size).
            let per_unit = |rp: u32| crate::policy::ring_points_per_unit(&weights, rp);
            let r = ring::expected_max_ratio(&weights, per_unit(pool.ring_points));
            if r > RING_LIMIT {
                let span = pf.ring_points.as_ref().map(sp).or(pool.policy_span);
                let hint = match ring::points_needed(&weights, RING_LIMIT, per_unit) {
                    Some(p) => format!("set ring_points = {p} or more"),
                    None => "even ring_points = 10000 is not enough at these weights: use maglev, or scale the weights up".to_string(),
                };
                cx.report(
                    &TOO_FEW_RING_POINTS,
                    name,
                    format!("{k}.ring_points"),
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
        }
        if h.max_load_factor.is_none() {
            cx.report(
                &UNBOUNDED_HASH_LOAD,
                name,
                format!("{k}.max_load_factor"),
                pool.policy_span.or(key_span),
                format!(
                    "pool `{}` hashes without max_load_factor: a hot key can overload one backend",
                    pool.name
                ),
                None,
            );
        }
    }
}
