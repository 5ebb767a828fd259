//! What a new configuration changes, per pool, backend and route ([`summarize_changes`]), as
//! the [`Change`]s attribution ranks (the type and its ranks are in `alert`).

use crate::alert::{Change, ChangeKind};
use crate::config::{Config, HealthCheck, Outlier, Pool};
use std::time::Duration;

/// Every change from `old` to `new` that can move traffic or latency, most suspect first.
/// Backends are matched by address, as the running instance matches them.
pub fn summarize_changes(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    for np in &new.pools {
        match old.pool(&np.name) {
            Some(op) => pool_changes(op, np, &mut out),
            None => out.push(Change::new(&np.name, None, ChangeKind::PoolAdded)),
        }
    }
    for op in &old.pools {
        if new.pool(&op.name).is_none() {
            out.push(Change::new(&op.name, None, ChangeKind::PoolRemoved));
        }
    }
    // A route's requests count against the pool that gains them: that pool's traffic is
    // what moves (the one that loses them, when none gains).
    for (route, from, to) in crate::diff::route_moves(old, new) {
        let pool = to.clone().or_else(|| from.clone()).unwrap_or_default();
        out.push(Change::new(
            &pool,
            None,
            ChangeKind::Route { route, from, to },
        ));
    }
    out.sort_by_key(|c| c.rank);
    out
}

fn pool_changes(o: &Pool, n: &Pool, out: &mut Vec<Change>) {
    let name = n.name.as_str();
    if o.policy != n.policy {
        let (from, to) = (o.policy.name().into(), n.policy.name().into());
        out.push(Change::new(name, None, ChangeKind::Policy { from, to }));
    }
    let key = |p: &Pool| {
        p.hashing
            .as_ref()
            .map_or("none".into(), |h| h.key.describe())
    };
    if key(o) != key(n) {
        let (from, to) = (key(o), key(n));
        out.push(Change::new(name, None, ChangeKind::HashKey { from, to }));
    }
    setting_changes(o, n, out);
    backend_changes(o, n, out);
}

/// The pool-wide settings that changed, in three groups by how they move traffic.
fn setting_changes(o: &Pool, n: &Pool, out: &mut Vec<Change>) {
    let hashing: [Setting; 3] = [
        ("on_missing_key", |p| {
            let m = p.hashing.as_ref().and_then(|h| h.on_missing);
            m.map_or("unset".into(), |m| format!("{m:?}").to_lowercase())
        }),
        ("max_load_factor", |p| {
            let f = p.hashing.as_ref().and_then(|h| h.max_load_factor);
            f.map_or("unset".into(), |f| f.to_string())
        }),
        ("ring_points", |p| p.ring_points.to_string()),
    ];
    let health: [Setting; 4] = [
        ("health check", |p| {
            p.health.as_ref().map_or("off".into(), describe_health)
        }),
        ("outlier ejection", |p| {
            p.outlier.as_ref().map_or("off".into(), describe_outlier)
        }),
        ("slow_start", |p| p.slow_start.map_or("off".into(), dur)),
        ("panic_threshold", |p| p.panic_threshold.to_string()),
    ];
    let timeouts: [Setting; 6] = [
        ("connect_timeout", |p| dur(p.connect_timeout)),
        ("try_timeout", |p| dur(p.try_timeout)),
        ("timeout", |p| dur(p.timeout)),
        ("idle_timeout", |p| dur(p.idle_timeout)),
        ("max_attempts", |p| p.max_attempts.to_string()),
        ("retry_budget", |p| p.retry_budget.to_string()),
    ];
    let groups: [(&[Setting], Kind); 3] = [
        (&hashing, |setting, from, to| ChangeKind::Hashing {
            setting,
            from,
            to,
        }),
        (&health, |setting, from, to| ChangeKind::Health {
            setting,
            from,
            to,
        }),
        (&timeouts, |setting, from, to| ChangeKind::Timeouts {
            setting,
            from,
            to,
        }),
    ];
    for (settings, kind) in groups {
        for (setting, f) in settings {
            if f(o) != f(n) {
                let change = kind(setting.to_string(), f(o), f(n));
                out.push(Change::new(&n.name, None, change));
            }
        }
    }
}

/// Weights that changed, backends added, removed and renamed; matched by address. A
/// rename is journaled so that what the journal says of the backend under its old
/// name (an ejection not yet over) follows it to the new one.
fn backend_changes(o: &Pool, n: &Pool, out: &mut Vec<Change>) {
    let name = n.name.as_str();
    for nb in &n.backends {
        let Some(ob) = o.backends.iter().find(|b| b.address == nb.address) else {
            let address = nb.address.clone();
            let kind = ChangeKind::BackendAdded { address };
            out.push(Change::new(name, Some(&nb.name), kind));
            continue;
        };
        if ob.weight != nb.weight {
            let (from, to) = (ob.weight, nb.weight);
            out.push(Change::new(
                name,
                Some(&nb.name),
                ChangeKind::Weight { from, to },
            ));
        }
        if ob.name != nb.name {
            let kind = ChangeKind::BackendRenamed {
                from: ob.name.clone(),
                to: nb.name.clone(),
                address: nb.address.clone(),
            };
            out.push(Change::new(name, Some(&nb.name), kind));
        }
    }
    for ob in &o.backends {
        if !n.backends.iter().any(|b| b.address == ob.address) {
            let address = ob.address.clone();
            let kind = ChangeKind::BackendRemoved { address };
            out.push(Change::new(name, Some(&ob.name), kind));
        }
    }
}

/// Builds a setting's change from its name and values before and after.
type Kind = fn(String, String, String) -> ChangeKind;

/// A setting's name and how to read it from a pool, for comparison and display.
type Setting = (&'static str, fn(&Pool) -> String);

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn describe_health(h: &HealthCheck) -> String {
    let kind = format!("{:?}", h.kind).to_lowercase();
    format!(
        "{kind} {} every {}, timeout {}, rise {}, fall {}",
        h.path,
        dur(h.interval),
        dur(h.timeout),
        h.rise,
        h.fall
    )
}

fn describe_outlier(o: &Outlier) -> String {
    format!(
        "{} consecutive failures, ejection {}..{}, max ejected {}",
        o.consecutive_failures,
        dur(o.base_ejection),
        dur(o.max_ejection),
        o.max_ejected_percent
    )
}
