//! Rules about routing: a route shadowed by an earlier one (TNG018), a pool no route
//! sends traffic to (TNG019).

use super::rules::*;
use super::{sp, Cx};
use crate::config::{Config, Route, Target};

pub(super) fn check(cx: &mut Cx<'_>) {
    let config = &cx.loaded.config;
    let files = &cx.loaded.file.route;
    // Without [[route]] entries validation adds one implicit default route: nothing to shadow.
    if files.len() == config.routes.len() {
        for (j, (later, rf)) in config.routes.iter().zip(files).enumerate() {
            let Some(i) = config.routes[..j].iter().position(|r| covers(r, later)) else {
                continue;
            };
            let rf = rf.get_ref();
            let (key, span) = match (&rf.path_prefix, &rf.host, &rf.pool) {
                (Some(p), _, _) => (format!("route[{j}].path_prefix"), sp(p)),
                (None, Some(h), _) => (format!("route[{j}].host"), sp(h)),
                (None, None, Some(p)) => (format!("route[{j}].pool"), sp(p)),
                (None, None, None) => (format!("route[{j}]"), later.span),
            };
            let earlier = &config.routes[i];
            let pool = later.pool().map(|p| config.pools[p].name.as_str());
            cx.report(
                &SHADOWED_ROUTE,
                pool,
                key,
                Some(span),
                format!(
                    "route {j} ({}) never matches: route {i} ({}) comes first and matches all of its requests",
                    describe(later, config),
                    describe(earlier, config)
                ),
                None,
            );
        }
    }
    for (i, (pool, pf)) in cx.pools().enumerate() {
        if !config.routes.iter().any(|r| r.pool() == Some(i)) {
            cx.report(
                &UNROUTED_POOL,
                Some(&pool.name),
                format!("pool[{}]", pool.name),
                Some(sp(&pf.name)),
                format!("no route sends traffic to pool `{}`", pool.name),
                None,
            );
        }
    }
}

/// Whether every request `later` matches is taken by `earlier` first. A redirect that
/// may lead a request back where it is lets that request through
/// (`Redirect::leads_back`), so it shadows nothing unless it sets a port.
fn covers(earlier: &Route, later: &Route) -> bool {
    if let Target::Redirect(r) = &earlier.target {
        if r.port.is_none() {
            return false;
        }
    }
    let host = match (&earlier.host, &later.host) {
        (None, _) => true,
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
    };
    let path = match (&earlier.path_prefix, &later.path_prefix) {
        (None, _) => true,
        (Some(a), Some(b)) => b.starts_with(a.as_str()),
        (Some(_), None) => false,
    };
    host && path
}

fn describe(r: &Route, config: &Config) -> String {
    let host = r.host.as_deref().unwrap_or("*");
    let path = r.path_prefix.as_deref().unwrap_or("/");
    match &r.target {
        Target::Pool(p) => format!("{host}{path} -> {}", config.pools[*p].name),
        Target::Redirect(red) => format!("{host}{path} -> redirect {}", red.status),
    }
}
