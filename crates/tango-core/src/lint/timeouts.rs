//! Rules about timeouts and limits that work against each other: load-aware policies
//! with long-lived connections (TNG012), no per-backend cap (TNG014), retries that
//! cannot fit in the pool's timeout (TNG015), a pool timeout the listener cuts first
//! (TNG016).

use super::rules::*;
use super::{dur, sp, Cx};
use crate::config::PolicyKind;
use std::time::Duration;

/// Listener idle or request timeouts at least this long suggest long-lived connections.
const LONG_LIVED: Duration = Duration::from_secs(300);

pub(super) fn check(cx: &mut Cx<'_>) {
    let listeners = &cx.loaded.config.listeners;
    let routes = &cx.loaded.config.routes;
    for (i, (pool, pf)) in cx.pools().enumerate() {
        let k = format!("pool[{}]", pool.name);
        let name = Some(pool.name.as_str());
        let name_span = sp(&pf.name);
        // Every listener serves every route, so a routed pool meets every listener.
        let routed = routes.iter().any(|r| r.pool == i);
        let load_aware = matches!(pool.policy, PolicyKind::LeastRequest | PolicyKind::PeakEwma);
        if load_aware && routed {
            if let Some(l) = listeners
                .iter()
                .find(|l| l.idle_timeout >= LONG_LIVED || l.request_timeout >= LONG_LIVED)
            {
                cx.report(
                    &LEAST_REQUEST_LONG_LIVED,
                    name,
                    format!("{k}.policy"),
                    pool.policy_span.or(Some(name_span)),
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
        }
        let capped = pool
            .backends
            .iter()
            .any(|b| b.max_connections.is_some() || b.max_in_flight.is_some());
        if !capped {
            cx.report(
                &NO_CONNECTION_CAP,
                name,
                k.clone(),
                Some(name_span),
                format!(
                    "no backend of pool `{}` has max_in_flight or max_connections",
                    pool.name
                ),
                None,
            );
        }
        let all_tries = pool.try_timeout * pool.max_attempts;
        if all_tries > pool.timeout {
            let (key, span) = match (&pf.try_timeout, &pf.max_attempts, &pf.timeout) {
                (Some(t), _, _) => (format!("{k}.try_timeout"), sp(t)),
                (None, Some(m), _) => (format!("{k}.max_attempts"), sp(m)),
                (None, None, Some(t)) => (format!("{k}.timeout"), sp(t)),
                (None, None, None) => (k.clone(), name_span),
            };
            cx.report(
                &RETRIES_EXCEED_TIMEOUT,
                name,
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
        if !routed {
            continue;
        }
        if let Some(l) = listeners
            .iter()
            .filter(|l| l.request_timeout < pool.timeout)
            .min_by_key(|l| l.request_timeout)
        {
            let span = pf.timeout.as_ref().map(sp).unwrap_or(name_span);
            cx.report(
                &POOL_TIMEOUT_EXCEEDS_REQUEST_TIMEOUT,
                name,
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
    }
}
