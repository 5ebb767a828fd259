//! Review of a configuration change: what changes ([`journal::summarize_changes`] plus
//! the few things that can move traffic it does not track), where the traffic moves per
//! backend (each pool simulated under the old and the new configuration with the same
//! keys and seed), and a verdict that fails when a backend's predicted share moves more
//! than a threshold, judged as the reload guard judges it ([`judge_moves`]). The pure
//! half of `tango diff`.
//!
//! [`journal::summarize_changes`]: crate::journal::summarize_changes

pub(crate) mod judge;
mod routes;

pub use judge::{judge_moves, KeptShare, Moves, SampleNoise};
pub(crate) use routes::route_moves;
pub use routes::{redirect_label, redirected_routes, route_label};

use crate::config::{Config, Pool, Target};
use crate::diag::Diagnostic;
use crate::journal::{summarize_changes, Change};
use crate::simulate::{simulate, BackendShare, SimError, SimOptions, SimReport};
use serde::Serialize;

/// Default largest move of a backend's predicted share, in percentage points: the same
/// as `[guard] max_shift`'s.
pub use crate::config::defaults::guard::MAX_SHIFT_POINTS as DEFAULT_MAX_SHIFT_POINTS;

/// How a change is reviewed.
#[derive(Debug, Clone, PartialEq)]
pub struct DiffOptions {
    /// How each pool is simulated (requests, keys, seed); the scenario is not used.
    pub sim: SimOptions,
    /// The largest move of a backend's predicted share that passes, in points.
    pub max_shift_points: f64,
    /// Pools whose shifts are expected (a planned migration): reported, never failing.
    pub allow_shift: Vec<String>,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            sim: SimOptions::default(),
            max_shift_points: DEFAULT_MAX_SHIFT_POINTS,
            allow_shift: Vec::new(),
        }
    }
}

/// Whether the change moves too much traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffVerdict {
    /// No pool moves more than allowed.
    Pass,
    /// Some pool does.
    Fail,
}

/// One backend's predicted share before and after. A backend is the one of the same
/// name (its address may change), or failing that of the same address (a rename): either
/// way one row, not a removal and an addition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendShift {
    /// The backend's name (the new one when renamed).
    pub name: String,
    /// Its address (the new one when moved).
    pub address: String,
    /// The old name, when the backend was renamed (same address, new name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// The old address, when the backend (same name) moved to a new address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<String>,
    /// `None`: not in the old (or new) pool.
    pub old_pct: Option<f64>,
    /// Its share under the new configuration, in percent; `None`: not in it.
    pub new_pct: Option<f64>,
    /// New minus old share, in percentage points (a missing side counts as 0).
    pub delta_points: f64,
}

/// Whether a pool is in both configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PoolStatus {
    /// In both.
    Kept,
    /// Only in the new one.
    Added,
    /// Only in the old one.
    Removed,
}

/// One pool's predicted traffic before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoolShift {
    /// The pool.
    pub pool: String,
    /// Whether it is in both configurations.
    pub status: PoolStatus,
    /// Each backend's shift.
    pub backends: Vec<BackendShift>,
    /// The moves judged, as the reload guard judges them: among the backends both
    /// versions have, and each backend added against those it joins.
    #[serde(flatten)]
    pub moves: Moves,
    /// Listed in `allow_shift`.
    pub allowed: bool,
    /// A judged move is over the threshold and the pool is not allowed to shift.
    pub fails: bool,
}

/// What a change changes, and where it moves traffic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiffReport {
    /// What changed in the pools and which pool each route sends to, as the journal
    /// records it.
    pub changes: Vec<Change>,
    /// Routes whose requests go from a pool to a redirect or back: their traffic
    /// leaves (or joins) a pool whole, as sentences. Reported, not judged: the
    /// threshold is about shares between a pool's backends.
    pub split_changes: Vec<String>,
    /// Changes outside the pools that can still move traffic (redirect routes, trusted proxies,
    /// per-backend caps), then those that move none (header edits, redirects' details,
    /// pools' TLS, protocol and PROXY protocol), as sentences.
    pub other_changes: Vec<String>,
    /// Each pool's predicted shift.
    pub pools: Vec<PoolShift>,
    /// The threshold applied.
    pub max_shift_points: f64,
    /// Fail when a pool moves more than the threshold without being allowed to.
    pub verdict: DiffVerdict,
}

/// Compare two configurations. Fails only on simulation errors (a key source the pool's
/// hash key cannot be read from).
pub fn diff(old: &Config, new: &Config, opts: &DiffOptions) -> Result<DiffReport, SimError> {
    let mut pools = Vec::new();
    for np in &new.pools {
        let op = old.pool(&np.name);
        pools.push(pool_shift(op, Some(np), opts)?);
    }
    for op in old.pools.iter().filter(|p| new.pool(&p.name).is_none()) {
        pools.push(pool_shift(Some(op), None, opts)?);
    }
    let verdict = match pools.iter().any(|p| p.fails) {
        true => DiffVerdict::Fail,
        false => DiffVerdict::Pass,
    };
    Ok(DiffReport {
        changes: summarize_changes(old, new),
        split_changes: routes::split_changes(old, new),
        other_changes: other_changes(old, new),
        pools,
        max_shift_points: opts.max_shift_points,
        verdict,
    })
}

/// One pool's predicted shares under the old and the new version (either may be
/// missing), simulated with `opts.sim` (its scenario ignored).
pub(crate) fn pool_shift(
    old: Option<&Pool>,
    new: Option<&Pool>,
    opts: &DiffOptions,
) -> Result<PoolShift, SimError> {
    let sim = SimOptions {
        scenario: Default::default(),
        ..opts.sim.clone()
    };
    let run = |p: Option<&Pool>| -> Result<Option<SimReport>, SimError> {
        p.map(|p| simulate(p, &sim, &mut |_, _| {})).transpose()
    };
    let (o, n) = (run(old)?, run(new)?);
    let status = match (&o, &n) {
        (Some(_), Some(_)) => PoolStatus::Kept,
        (None, _) => PoolStatus::Added,
        (_, None) => PoolStatus::Removed,
    };
    let name = new.or(old).map_or(String::new(), |p| p.name.clone());
    let none = Vec::new();
    let olds = o.as_ref().map_or(&none, |r| &r.backends);
    let news = n.as_ref().map_or(&none, |r| &r.backends);
    let mut backends = match_backends(olds, news);
    for b in &mut backends {
        b.delta_points = b.new_pct.unwrap_or(0.0) - b.old_pct.unwrap_or(0.0);
    }
    // A pool that appears or disappears carries new or no traffic: nothing shifts
    // between its backends, so it cannot fail the review. Nor does a backend added or
    // removed shift the others: `judge_moves` measures what the guard measures.
    let moves = judge_moves(status, &backends, None, opts.max_shift_points);
    let allowed = opts.allow_shift.contains(&name);
    Ok(PoolShift {
        fails: !allowed && moves.over,
        pool: name,
        status,
        backends,
        moves,
        allowed,
    })
}

/// Pair old and new backends: by name first, then (a rename) by address; the rest are
/// added or removed. New backends in their order, then removed ones.
fn match_backends(olds: &[BackendShare], news: &[BackendShare]) -> Vec<BackendShift> {
    let mut used = vec![false; olds.len()];
    let mut pair: Vec<Option<usize>> = news
        .iter()
        .map(|b| {
            let i = olds.iter().position(|x| x.name == b.name)?;
            used[i] = true;
            Some(i)
        })
        .collect();
    for (j, b) in news.iter().enumerate() {
        if pair[j].is_none() {
            let found = (0..olds.len()).find(|&i| !used[i] && olds[i].address == b.address);
            if let Some(i) = found {
                used[i] = true;
                pair[j] = Some(i);
            }
        }
    }
    let mut out: Vec<BackendShift> = news
        .iter()
        .zip(&pair)
        .map(|(b, p)| {
            let before = p.map(|i| &olds[i]);
            BackendShift {
                name: b.name.clone(),
                address: b.address.clone(),
                renamed_from: before.filter(|x| x.name != b.name).map(|x| x.name.clone()),
                moved_from: before
                    .filter(|x| x.address != b.address)
                    .map(|x| x.address.clone()),
                old_pct: before.map(|x| x.simulated_pct),
                new_pct: Some(b.simulated_pct),
                delta_points: 0.0,
            }
        })
        .collect();
    for (b, _) in olds.iter().zip(&used).filter(|(_, u)| !**u) {
        out.push(BackendShift {
            name: b.name.clone(),
            address: b.address.clone(),
            renamed_from: None,
            moved_from: None,
            old_pct: Some(b.simulated_pct),
            new_pct: None,
            delta_points: 0.0,
        });
    }
    out
}

/// What the journal's change summary does not track but can move traffic: redirect
/// routes added or removed, the proxies trusted for client-address hashing, and per-backend caps
/// (a backend at its `max_in_flight` is skipped).
pub fn other_changes(old: &Config, new: &Config) -> Vec<String> {
    let mut out = Vec::new();
    // Routes to a pool are in the change summary (`ChangeKind::Route`); what is left are
    // redirect routes added or removed. A route that turned from a pool to a redirect (or
    // back) is a split change.
    let routes = |c: &Config| -> Vec<String> {
        (c.routes.iter())
            .filter(|r| matches!(r.target, Target::Redirect(_)) && !routes::turned(old, new, r))
            .map(|r| format!("{} -> a redirect", route_label(r)))
            .collect()
    };
    let (ro, rn) = (routes(old), routes(new));
    for r in rn.iter().filter(|r| !ro.contains(r)) {
        out.push(format!("added route {r}"));
    }
    for r in ro.iter().filter(|r| !rn.contains(r)) {
        out.push(format!("removed route {r}"));
    }
    for nl in &new.listeners {
        let Some(ol) = old.listeners.iter().find(|l| l.name == nl.name) else {
            continue;
        };
        if ol.trusted_proxies != nl.trusted_proxies {
            out.push(format!(
                "changed listener {}'s trusted_proxies (client-address hash keys may move)",
                nl.name
            ));
        }
        if ol.proxy_protocol != nl.proxy_protocol {
            out.push(format!(
                "changed listener {}'s proxy_protocol (client-address hash keys may move)",
                nl.name
            ));
        }
    }
    for np in &new.pools {
        let Some(op) = old.pool(&np.name) else {
            continue;
        };
        for nb in &np.backends {
            let Some(ob) = op.backends.iter().find(|b| b.address == nb.address) else {
                continue;
            };
            if ob.max_in_flight != nb.max_in_flight {
                out.push(format!(
                    "changed {}'s max_in_flight in pool {} from {} to {}",
                    nb.name,
                    np.name,
                    cap(ob.max_in_flight),
                    cap(nb.max_in_flight)
                ));
            }
        }
    }
    out.extend(routes::setting_changes(old, new));
    out
}

fn cap(c: Option<u32>) -> String {
    c.map_or("unset".into(), |c| c.to_string())
}

/// Lint findings of the new configuration that the old one did not have: a finding is
/// new when no old finding has the same rule and key.
pub fn new_findings(old: &[Diagnostic], new: &[Diagnostic]) -> Vec<Diagnostic> {
    new.iter()
        .filter(|d| !old.iter().any(|o| o.code == d.code && o.key == d.key))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;
