//! Rules about timeouts and limits that work against each other: load-aware policies
//! with long-lived connections (TNG012), no per-backend cap (TNG014), retries that
//! cannot fit in the pool's timeout (TNG015), a pool timeout the listener cuts first
//! (TNG016).

use super::rules::*;
use super::{dur, sp, Cx};
use crate::config::file::PoolFile;
use crate::config::{Listener, PolicyKind, Pool};
use std::time::Duration;

/// Listener idle or request timeouts at least this long suggest long-lived connections.
const LONG_LIVED: Duration = Duration::from_secs(300);

pub(super) fn check(cx: &mut Cx<'_>) {
    let listeners = &cx.loaded.config.listeners;
    let routes = &cx.loaded.config.routes;
    for (i, (pool, pf)) in cx.pools().enumerate() {
        let k = format!("pool[{}]", pool.name);
        // Every listener serves every route, so a routed pool meets every listener.
        let routed = routes.iter().any(|r| r.pool() == Some(i));
        if routed {
            load_aware_long_lived(cx, pool, pf, listeners, &k);
        }
        no_connection_cap(cx, pool, pf, &k);
        retries_exceed_timeout(cx, pool, pf, &k);
        if routed {
            pool_timeout_exceeds_request_timeout(cx, pool, pf, listeners, &k);
        }
    }
}

/// TNG012: a load-aware policy behind a listener that keeps connections or requests
/// for long.
fn load_aware_long_lived(
    cx: &mut Cx<'_>,
    pool: &Pool,
    pf: &PoolFile,
    listeners: &[Listener],
    k: &str,
) {
    if !matches!(pool.policy, PolicyKind::LeastRequest | PolicyKind::PeakEwma) {
        return;
    }
    let Some(l) = listeners
        .iter()
        .find(|l| l.idle_timeout >= LONG_LIVED || l.request_timeout >= LONG_LIVED)
    else {
        return;
    };
    cx.report(
        &LEAST_REQUEST_LONG_LIVED,
        Some(&pool.name),
        format!("{k}.policy"),
        pool.policy_span.or(Some(sp(&pf.name))),
        format!(
            "pool `{}` balances in-flight requests ({}) but listener `{}` keeps connections for {} and requests for {}: long-lived streams skew the counts",
            pool.name,
            pool.policy.name(),
            l.name,
            dur(l.idle_timeout),
            dur(l.request_timeout)
        ),
        None,
    );
}

/// TNG014: no backend of the pool has a cap.
fn no_connection_cap(cx: &mut Cx<'_>, pool: &Pool, pf: &PoolFile, k: &str) {
    let capped = pool
        .backends
        .iter()
        .any(|b| b.max_connections.is_some() || b.max_in_flight.is_some());
    if capped {
        return;
    }
    cx.report(
        &NO_CONNECTION_CAP,
        Some(&pool.name),
        k.to_string(),
        Some(sp(&pf.name)),
        format!(
            "no backend of pool `{}` has max_in_flight or max_connections",
            pool.name
        ),
        None,
    );
}

/// TNG015: every attempt at its `try_timeout` does not fit in the pool's `timeout`.
fn retries_exceed_timeout(cx: &mut Cx<'_>, pool: &Pool, pf: &PoolFile, k: &str) {
    let all_tries = pool.try_timeout * pool.max_attempts;
    if all_tries <= pool.timeout {
        return;
    }
    let (key, span) = match (&pf.try_timeout, &pf.max_attempts, &pf.timeout) {
        (Some(t), _, _) => (format!("{k}.try_timeout"), sp(t)),
        (None, Some(m), _) => (format!("{k}.max_attempts"), sp(m)),
        (None, None, Some(t)) => (format!("{k}.timeout"), sp(t)),
        (None, None, None) => (k.to_string(), sp(&pf.name)),
    };
    cx.report(
        &RETRIES_EXCEED_TIMEOUT,
        Some(&pool.name),
        key,
        Some(span),
        format!(
            "max_attempts {} x try_timeout {} = {}, longer than pool `{}`'s timeout {}: the last attempts are cut short",
            pool.max_attempts,
            dur(pool.try_timeout),
            dur(all_tries),
            pool.name,
            dur(pool.timeout)
        ),
        Some(format!(
            "set try_timeout to {} or less, or timeout to {} or more",
            dur(pool.timeout / pool.max_attempts),
            dur(all_tries)
        )),
    );
}

/// TNG016: a listener ends requests before the pool's timeout would.
fn pool_timeout_exceeds_request_timeout(
    cx: &mut Cx<'_>,
    pool: &Pool,
    pf: &PoolFile,
    listeners: &[Listener],
    k: &str,
) {
    let Some(l) = listeners
        .iter()
        .filter(|l| l.request_timeout < pool.timeout)
        .min_by_key(|l| l.request_timeout)
    else {
        return;
    };
    let span = pf.timeout.as_ref().map(sp).unwrap_or(sp(&pf.name));
    cx.report(
        &POOL_TIMEOUT_EXCEEDS_REQUEST_TIMEOUT,
        Some(&pool.name),
        format!("{k}.timeout"),
        Some(span),
        format!(
            "pool `{}` allows {} but listener `{}` ends every request after {} (request_timeout)",
            pool.name,
            dur(pool.timeout),
            l.name,
            dur(l.request_timeout)
        ),
        Some(format!(
            "set the pool's timeout below {}, or raise the listener's request_timeout",
            dur(l.request_timeout)
        )),
    );
}
