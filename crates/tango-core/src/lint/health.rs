//! Rules about how a pool notices and recovers from failing backends: no health checks
//! (TNG005), slow health checks (TNG006), no slow start (TNG013), ejection that can
//! empty a small pool (TNG017).

use super::rules::*;
use super::{dur, num, sp, Cx};
use crate::config::file::{HealthFile, PoolFile};
use crate::config::{HealthCheck, PolicyKind, Pool};
use crate::diag::Severity;
use std::time::Duration;

/// Longest acceptable time from a backend's failure to its removal by health checks.
const MAX_DETECTION: Duration = Duration::from_secs(30);

pub(super) fn check(cx: &mut Cx<'_>) {
    for (pool, pf) in cx.pools() {
        let k = format!("pool[{}]", pool.name);
        match (&pool.health, &pf.health) {
            (None, _) => no_health_check(cx, pool, pf, &k),
            (Some(h), Some(hf)) => slow_health_check(cx, pool, h, hf.get_ref(), &k),
            (Some(_), None) => {}
        }
        no_slow_start(cx, pool, pf, &k);
        ejection(cx, pool, pf, &k);
    }
}

/// TNG005: no health checks; only informative when passive ejection is on.
fn no_health_check(cx: &mut Cx<'_>, pool: &Pool, pf: &PoolFile, k: &str) {
    let d = cx.report(
        &NO_HEALTH_CHECK,
        Some(&pool.name),
        k.to_string(),
        Some(sp(&pf.name)),
        format!("pool `{}` has no health checks", pool.name),
        None,
    );
    if pool.outlier.is_some() {
        // Passive ejection does catch failures, only after users were hit.
        d.severity = Severity::Info;
        d.message
            .push_str(": only passive ejection notices a dead backend");
    } else {
        d.message
            .push_str(": a dead backend keeps its share until it is fixed");
    }
}

/// TNG006: a failed backend is marked down only after more than [`MAX_DETECTION`].
fn slow_health_check(cx: &mut Cx<'_>, pool: &Pool, h: &HealthCheck, hf: &HealthFile, k: &str) {
    let detect = h.interval * h.fall;
    if detect <= MAX_DETECTION {
        return;
    }
    let (key, span) = match (&hf.interval, &hf.fall) {
        (Some(i), _) => (format!("{k}.health.interval"), sp(i)),
        (None, Some(f)) => (format!("{k}.health.fall"), sp(f)),
        (None, None) => (format!("{k}.health"), h.span),
    };
    let fall_for_30s = (MAX_DETECTION.as_secs_f64() / h.interval.as_secs_f64())
        .floor()
        .max(1.0);
    cx.report(
        &SLOW_HEALTH_CHECK,
        Some(&pool.name),
        key,
        Some(span),
        format!(
            "a failed backend in pool `{}` is marked down only after {} (interval {} x fall {})",
            pool.name,
            dur(detect),
            dur(h.interval),
            h.fall
        ),
        Some(format!(
            "with interval {}, use fall = {} or less; or shorten the interval",
            dur(h.interval),
            num(fall_for_30s)
        )),
    );
}

/// TNG013: no slow start where a new or recovered backend would get a burst (a
/// warning) or its full share with cold caches (informative).
fn no_slow_start(cx: &mut Cx<'_>, pool: &Pool, pf: &PoolFile, k: &str) {
    let load_aware = matches!(pool.policy, PolicyKind::LeastRequest | PolicyKind::PeakEwma);
    if pool.slow_start.is_some() || !(load_aware || pool.health.is_some()) {
        return;
    }
    let (why, severity) = if load_aware {
        (
            format!(
                "{} sends a new or recovered backend (zero in-flight requests) a burst",
                pool.policy.name()
            ),
            Severity::Warning,
        )
    } else {
        (
            "a backend that recovers gets its full share at once, with cold caches".to_string(),
            Severity::Info,
        )
    };
    let span = pool.policy_span.or(Some(sp(&pf.name)));
    let d = cx.report(
        &NO_SLOW_START,
        Some(&pool.name),
        format!("{k}.slow_start"),
        span,
        format!("pool `{}` has no slow_start: {why}", pool.name),
        None,
    );
    d.severity = severity;
}

/// TNG017: in a pool of 2 or 3, ejecting half or more leaves too few to carry the load.
fn ejection(cx: &mut Cx<'_>, pool: &Pool, pf: &PoolFile, k: &str) {
    let (Some(o), Some(of)) = (&pool.outlier, &pf.outlier) else {
        return;
    };
    let n = pool.backends.len();
    if !(2..=3).contains(&n) {
        return;
    }
    // The cap the outlier detector itself applies (at least one of two or more).
    let ejectable = crate::outlier::max_ejected(n, o.max_ejected_percent);
    if ejectable == 0 || 2 * ejectable < n {
        return;
    }
    let (key, span) = match &of.get_ref().max_ejected_percent {
        Some(p) => (format!("{k}.outlier.max_ejected_percent"), sp(p)),
        None => (format!("{k}.outlier"), o.span),
    };
    let left = n - ejectable;
    cx.report(
        &EJECTION_EMPTIES_SMALL_POOL,
        Some(&pool.name),
        key,
        Some(span),
        format!(
            "max_ejected_percent {} lets outlier ejection remove {ejectable} of the {n} backends of pool `{}`, leaving {left} to carry all its traffic",
            num(o.max_ejected_percent),
            pool.name
        ),
        Some(if n == 2 {
            "with two backends one ejection sends everything to the other: add a backend, or allow the rule with the reason".to_string()
        } else {
            "set max_ejected_percent below 66 so at most one of the three can be ejected, or add backends".to_string()
        }),
    );
}
