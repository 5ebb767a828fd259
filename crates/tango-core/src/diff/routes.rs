//! What a change does to routes and to settings that move no traffic between backends:
//! a route that turns into a redirect (or back) takes its requests from a pool (or
//! gives them to one), which is a change of the split; header edits, a redirect's
//! details and a pool's TLS, protocol and PROXY protocol towards its backends change
//! how requests are carried, not where they go.

use crate::config::{Config, Redirect, Route, Target};

/// `host H path P`: a route as the diff names it.
pub fn route_label(r: &Route) -> String {
    format!(
        "host {} path {}",
        r.host.as_deref().unwrap_or("*"),
        r.path_prefix.as_deref().unwrap_or("/"),
    )
}

/// A redirect as the diff and the simulator describe it: its status and what it
/// changes (`301 to scheme https, host new.example`).
pub fn redirect_label(r: &Redirect) -> String {
    let mut parts = Vec::new();
    if let Some(s) = &r.scheme {
        parts.push(format!("scheme {s}"));
    }
    if let Some(h) = &r.host {
        parts.push(format!("host {h}"));
    }
    if let Some(p) = r.port {
        parts.push(format!("port {p}"));
    }
    if let Some(p) = &r.path {
        parts.push(format!("path {p}"));
    }
    format!("{} to {}", r.status, parts.join(", "))
}

/// The routes that answer with a redirect, each as `route host H path P: redirect 301
/// to ...`: their requests reach no pool.
pub fn redirected_routes(c: &Config) -> Vec<String> {
    (c.routes.iter())
        .filter_map(|r| match &r.target {
            Target::Redirect(red) => Some(format!(
                "route {}: redirect {}",
                route_label(r),
                redirect_label(red)
            )),
            Target::Pool(_) => None,
        })
        .collect()
}

/// The routes of both configurations with the same host and path prefix.
fn pairs<'a>(old: &'a Config, new: &'a Config) -> impl Iterator<Item = (&'a Route, &'a Route)> {
    new.routes.iter().filter_map(|n| {
        let o = (old.routes.iter()).find(|o| o.host == n.host && o.path_prefix == n.path_prefix)?;
        Some((o, n))
    })
}

/// The pool a route sends to; `None` for a redirect.
fn target_pool<'a>(c: &'a Config, r: &Route) -> Option<&'a str> {
    match r.target {
        Target::Pool(i) => Some(pool_name(c, i)),
        Target::Redirect(_) => None,
    }
}

/// Each route (by host and path prefix) whose pool differs between the two
/// configurations, as (`host H path P`, pool before, pool after); a missing route or a
/// redirect has no pool. Pools are compared by name: reordering them moves nothing.
pub(crate) fn route_moves(
    old: &Config,
    new: &Config,
) -> Vec<(String, Option<String>, Option<String>)> {
    let same = |a: &Route, b: &Route| a.host == b.host && a.path_prefix == b.path_prefix;
    let mut out = Vec::new();
    for n in &new.routes {
        let from = (old.routes.iter().find(|o| same(o, n))).and_then(|o| target_pool(old, o));
        let to = target_pool(new, n);
        if from != to {
            out.push((
                route_label(n),
                from.map(str::to_string),
                to.map(str::to_string),
            ));
        }
    }
    for o in (old.routes.iter()).filter(|o| !new.routes.iter().any(|n| same(o, n))) {
        if let Some(from) = target_pool(old, o) {
            out.push((route_label(o), Some(from.to_string()), None));
        }
    }
    out
}

fn pool_name(c: &Config, i: usize) -> &str {
    c.pools.get(i).map_or("?", |p| p.name.as_str())
}

/// Routes whose requests go from a pool to a redirect, or from a redirect to a pool.
pub(crate) fn split_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (o, n) in pairs(old, new) {
        let label = route_label(n);
        match (&o.target, &n.target) {
            (Target::Pool(p), Target::Redirect(r)) => out.push(format!(
                "route {label}: its requests leave pool {} for a redirect {}",
                pool_name(old, *p),
                redirect_label(r)
            )),
            (Target::Redirect(r), Target::Pool(p)) => out.push(format!(
                "route {label}: its requests go to pool {} instead of a redirect {}",
                pool_name(new, *p),
                redirect_label(r)
            )),
            _ => {}
        }
    }
    out
}

/// Whether the route of the same host and path turned from a pool to a redirect or
/// back (reported by [`split_changes`], not as a removed and an added route).
pub(crate) fn turned(old: &Config, new: &Config, r: &Route) -> bool {
    pairs(old, new).any(|(o, n)| {
        (o.host == r.host && o.path_prefix == r.path_prefix)
            && matches!(o.target, Target::Pool(_)) != matches!(n.target, Target::Pool(_))
    })
}

/// Changes that move no traffic: routes' header edits and redirects, and pools' TLS,
/// protocol and PROXY protocol towards their backends.
pub(crate) fn setting_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for (o, n) in pairs(old, new) {
        let label = route_label(n);
        let edits = |r: &Route| (r.headers.request.clone(), r.headers.response.clone());
        if edits(o) != edits(n) {
            out.push(format!(
                "changed route {label}'s header edits (no traffic moves)"
            ));
        }
        if let (Target::Redirect(a), Target::Redirect(b)) = (&o.target, &n.target) {
            let (a, b) = (redirect_label(a), redirect_label(b));
            if a != b {
                out.push(format!("changed route {label}'s redirect from {a} to {b}"));
            }
        }
    }
    for np in &new.pools {
        let Some(op) = old.pool(&np.name) else {
            continue;
        };
        let tls = |p: &crate::config::Pool| {
            p.tls.as_ref().map(|t| {
                (
                    t.ca.clone(),
                    t.server_name.clone(),
                    t.client_cert.clone(),
                    t.verify,
                )
            })
        };
        let mut changed = Vec::new();
        if tls(op) != tls(np) {
            changed.push("tls");
        }
        if op.protocol != np.protocol {
            changed.push("protocol");
        }
        if op.send_proxy_protocol != np.send_proxy_protocol {
            changed.push("send_proxy_protocol");
        }
        if !changed.is_empty() {
            out.push(format!(
                "changed pool {}'s {} (how requests reach its backends; no traffic moves)",
                np.name,
                changed.join(", ")
            ));
        }
    }
    out
}
