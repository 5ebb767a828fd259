//! The reload guard's judgement: may this configuration replace the one in force?
//!
//! [`judge`] runs the whole checklist on the new file and, for every pool the reload
//! changes, predicts each backend's share under both versions with the simulator, fed
//! with what the running instance observed (the pool's request rate and latency, and for
//! hash pools a sample of recent requests). Two gates then decide:
//!
//! - **findings**: a finding the live configuration did not have (same rule, same key)
//!   refuses the reload when it is an error, or a warning the file does not `[[allow]]`
//!   and the operator did not `force`. Errors cannot be forced.
//! - **shift**: a backend whose predicted share moves more than `max_shift` points
//!   (its share among the backends both versions have: adding or removing a backend is
//!   not a shift of the others; a backend added is measured against the median share
//!   of those it joins) refuses the reload, unless its pool is allowed to shift for this reload (by the
//!   request, or by the file adding the pool to `[guard] allow_shift`) or it is forced.
//!   A move predicted from sampled requests counts only beyond its sampling noise.
//! - **routes**: when the routes change, the live requests are routed through both
//!   versions and a backend that would take more of all requests than the busiest
//!   backend does today, by more than `max_shift`, refuses the reload ([`routes`]),
//!   allowed as a shift of the pool that gains the traffic.
//!
//! The settings that judge are those of the configuration in force: a file cannot
//! loosen the gate that decides whether it is applied. The [`canary`] module decides,
//! after an applied reload, which alerts that reload caused.

pub mod canary;
mod predict;
mod refusal;
pub mod routes;
#[cfg(test)]
mod tests;

pub use crate::diff::KeptShare;
pub use predict::{KeyBasis, PoolObservation};
pub use refusal::Refusal;
pub use routes::{RoutePrediction, RouteShift};

use crate::config::{Guard, Loaded};
use crate::diag::{Diagnostic, Severity};
use crate::diff::{new_findings, BackendShift, Moves};
use crate::journal::{FindingRecord, PredictedShare};
use crate::lint;
use canary::ScopePool;
use std::collections::HashMap;

/// What the operator overrides for one reload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Overrides {
    /// Let new warnings and predicted shifts through (never errors).
    pub force: bool,
    /// Pools whose predicted shift is intended.
    pub allow_shift: Vec<String>,
}

/// A checklist finding on the new file.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedFinding {
    /// The finding.
    pub diagnostic: Diagnostic,
    /// `file:line:col`.
    pub location: String,
    /// Not in the configuration in force.
    pub new: bool,
    /// The `[[allow]]` reason, when the file allows it.
    pub allowed: Option<String>,
}

impl JudgedFinding {
    /// Whether the findings gate stops a reload for it: new, not allowed, and an error
    /// or a warning (a warning only until the reload is forced; an error always).
    pub fn refuses(&self) -> bool {
        self.new && self.allowed.is_none() && self.diagnostic.severity != Severity::Info
    }
}

/// Why a pool may shift although the prediction is over the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftAllowance {
    /// `--allow-shift POOL` or `?allow_shift=POOL`.
    Request,
    /// The file adds the pool to `[guard] allow_shift`.
    File,
}

/// One changed pool's predicted shares.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolPrediction {
    /// The pool.
    pub pool: String,
    /// Where the keys of the prediction came from.
    pub basis: KeyBasis,
    /// Requests per second the pool was observed to serve.
    pub rate_rps: f64,
    /// Each backend's predicted share of the whole pool before and after.
    pub backends: Vec<BackendShift>,
    /// The moves judged, as `tango diff` judges them: the split among the backends in
    /// both versions and each backend added against those it joins (what the gate
    /// measures), and whether a move is over `max_shift`.
    pub moves: Moves,
    /// Why it may shift over the limit, when it may.
    pub allowed: Option<ShiftAllowance>,
    /// Over the limit, not allowed, let through by `force`.
    pub forced: bool,
}

impl PoolPrediction {
    /// The watch may expect the new split: the gate predicted it and nobody had to force
    /// it through.
    pub fn expected(&self) -> bool {
        !self.forced
    }
}

/// The judgement on one reload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Judgement {
    /// Every finding on the new file, allowed ones included, in file order.
    pub findings: Vec<JudgedFinding>,
    /// Predicted shares of the pools the reload changes (when the guard is enabled).
    pub pools: Vec<PoolPrediction>,
    /// What stops the reload.
    pub refusals: Vec<Refusal>,
    /// What would have stopped it, had the operator not overridden it.
    pub overridden: Vec<Refusal>,
    /// The pools the reload changes, for the canary.
    pub scope: Vec<ScopePool>,
    /// Where the new routes would send the live traffic, when the routes change (and
    /// the guard is enabled).
    pub routes: Option<RoutePrediction>,
}

impl Judgement {
    /// Whether the reload is refused.
    pub fn refused(&self) -> bool {
        !self.refusals.is_empty()
    }

    /// Each refusal as a sentence.
    pub fn reasons(&self) -> Vec<String> {
        self.refusals.iter().map(Refusal::sentence).collect()
    }

    /// How to proceed, one line per distinct step.
    pub fn next_steps(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.refusals.iter().map(Refusal::next_step) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// What the operator's overrides let through, as sentences.
    pub fn overrides(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .overridden
            .iter()
            .map(|r| format!("forced: {}", r.sentence()))
            .collect();
        for p in self.pools.iter().filter(|p| p.moves.over) {
            if let (Some(a), Some(w)) = (p.allowed, p.moves.worst()) {
                out.push(format!(
                    "shift allowed ({}): {} moves {:+.1} points in pool {}",
                    match a {
                        ShiftAllowance::Request => "by the request",
                        ShiftAllowance::File => "by [guard] allow_shift",
                    },
                    w.name,
                    w.move_points(),
                    p.pool
                ));
            }
        }
        if let Some(r) = self.routes.as_ref().filter(|r| r.over) {
            if let (Some(a), Some(w)) = (r.allowed, r.worst()) {
                out.push(format!(
                    "shift allowed ({}): {} (pool {}) takes {:.0}% of all requests instead of {:.0}% after the route change",
                    match a {
                        ShiftAllowance::Request => "by the request",
                        ShiftAllowance::File => "by [guard] allow_shift",
                    },
                    w.backend,
                    w.pool,
                    w.to_pct,
                    w.from_pct
                ));
            }
        }
        out
    }

    /// What the guard could not judge and says so rather than guessing (a route change
    /// with no live traffic to predict it from).
    pub fn notes(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter_map(RoutePrediction::note)
            .collect()
    }

    /// The findings as the journal records them.
    pub fn finding_records(&self) -> Vec<FindingRecord> {
        self.findings
            .iter()
            .map(|f| FindingRecord {
                rule: f.diagnostic.code.unwrap_or("TNG000").to_string(),
                severity: f.diagnostic.severity.as_str().to_string(),
                location: f.location.clone(),
                key: f.diagnostic.key.clone(),
                message: f.diagnostic.message.clone(),
                new: f.new,
                allowed: f.allowed.clone(),
            })
            .collect()
    }

    /// Each backend's predicted share before and after, as the journal records it.
    pub fn predicted(&self) -> Vec<PredictedShare> {
        self.pools
            .iter()
            .flat_map(|p| {
                p.backends.iter().map(|b| PredictedShare {
                    pool: p.pool.clone(),
                    backend: b.name.clone(),
                    from_pct: b.old_pct,
                    to_pct: b.new_pct,
                    basis: Some(p.basis.describe()),
                })
            })
            .collect()
    }

    /// The split the watch should expect from now on, per pool it may expect one of:
    /// (backend, share in 0..1) in the new pool's order.
    pub fn expectations(&self) -> Vec<(String, Vec<(String, f64)>)> {
        self.pools
            .iter()
            .filter(|p| p.expected())
            .map(|p| {
                let shares = p
                    .backends
                    .iter()
                    .filter_map(|b| Some((b.name.clone(), b.new_pct? / 100.0)))
                    .collect();
                (p.pool.clone(), shares)
            })
            .collect()
    }
}

/// Everything `judge` reads.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The configuration in force, re-read from its text.
    pub live: &'a Loaded,
    /// The configuration offered.
    pub new: &'a Loaded,
    /// The gate's settings: those of the configuration in force.
    pub settings: &'a Guard,
    /// What the operator overrides for this reload.
    pub overrides: &'a Overrides,
    /// What the running instance observed, per pool name.
    pub observed: &'a HashMap<String, PoolObservation>,
}

/// Judge a reload; see the module documentation.
pub fn judge(input: Input<'_>) -> Judgement {
    let mut j = Judgement {
        scope: canary::changed_pools(&input.live.config, &input.new.config),
        ..Judgement::default()
    };
    j.findings = judge_findings(input.live, input.new);
    let known = || {
        input
            .new
            .config
            .pools
            .iter()
            .map(|p| p.name.clone())
            .collect()
    };
    for pool in &input.overrides.allow_shift {
        if input.new.config.pool(pool).is_none() {
            let (pool, known) = (pool.clone(), known());
            j.refusals.push(Refusal::UnknownPool { pool, known });
        }
    }
    if !input.settings.enabled {
        // No gate; the predictions still tell the canary what split to expect.
        if input.settings.rollback {
            shift_gate(&input, &mut j, false);
        }
        return j;
    }
    for f in j.findings.iter().filter(|f| f.refuses()) {
        match f.diagnostic.severity {
            Severity::Warning if input.overrides.force => {
                j.overridden.push(Refusal::Finding(f.clone()))
            }
            _ => j.refusals.push(Refusal::Finding(f.clone())),
        }
    }
    shift_gate(&input, &mut j, true);
    routes::route_gate(&input, &mut j);
    j
}

/// The checklist's findings on `new`, allowed ones included, in file order, each marked
/// new when `live` (the configuration in force) has no finding of the same rule at the
/// same key. The findings gate reads these; `tango diff` reads the same ones, so that a
/// review counts a finding as the reload does.
pub fn judge_findings(live: &Loaded, new: &Loaded) -> Vec<JudgedFinding> {
    let new_lint = lint::lint(new);
    let live_problems = lint::check(live);
    let fresh = new_findings(&live_problems, &new_lint.problems);
    let location = |d: &Diagnostic| crate::journal::location_of(&new.source, d);
    let mut out = Vec::new();
    for d in &new_lint.problems {
        out.push(JudgedFinding {
            diagnostic: d.clone(),
            location: location(d),
            new: fresh.contains(d),
            allowed: None,
        });
    }
    for a in &new_lint.allowed {
        out.push(JudgedFinding {
            diagnostic: a.diagnostic.clone(),
            location: location(&a.diagnostic),
            new: false,
            allowed: Some(a.reason.clone()),
        });
    }
    out.sort_by_key(|f| f.diagnostic.span.map_or(usize::MAX, |s| s.start));
    out
}

/// Predict every changed pool and, when `gate`, refuse the shifts over the limit nobody
/// allowed.
fn shift_gate(input: &Input<'_>, j: &mut Judgement, gate: bool) {
    let live_allows = &input.live.config.guard.allow_shift;
    for scope in &j.scope {
        let old = input.live.config.pool(&scope.pool);
        let new = input.new.config.pool(&scope.pool);
        let obs = input.observed.get(&scope.pool).cloned().unwrap_or_default();
        let mut p = match predict::predict(old, new, &obs, input.settings) {
            Ok(p) => p,
            Err(e) => {
                let r = Refusal::Unpredictable {
                    pool: scope.pool.clone(),
                    error: e.to_string(),
                };
                match (gate, input.overrides.force) {
                    (false, _) => {}
                    (true, true) => j.overridden.push(r),
                    (true, false) => j.refusals.push(r),
                }
                continue;
            }
        };
        if p.moves.over && gate {
            p.allowed = if input.overrides.allow_shift.contains(&p.pool) {
                Some(ShiftAllowance::Request)
            } else if file_allows_shift(&input.live.config.guard, &input.new.config.guard, &p.pool)
            {
                Some(ShiftAllowance::File)
            } else {
                None
            };
            if p.allowed.is_none() {
                let r = Refusal::shift(
                    &p.pool,
                    &p.moves,
                    p.basis,
                    p.rate_rps,
                    input.settings.max_shift_points,
                    live_allows.contains(&p.pool),
                );
                if let Some(r) = r {
                    p.forced = input.overrides.force;
                    match p.forced {
                        true => j.overridden.push(r),
                        false => j.refusals.push(r),
                    }
                }
            }
        }
        j.pools.push(p);
    }
}

/// Whether the new file allows `pool` to shift: it adds the pool to `[guard]
/// allow_shift`, which the configuration in force does not list (an entry allows only
/// the reload that adds it). `tango diff` reads the files' lists the same way.
pub fn file_allows_shift(live: &Guard, new: &Guard, pool: &str) -> bool {
    let listed = |g: &Guard| g.allow_shift.iter().any(|p| p == pool);
    listed(new) && !listed(live)
}

/// `web` from `pool[web].backend[1].weight`.
fn pool_of(key: &str) -> Option<&str> {
    key.strip_prefix("pool[")?.split(']').next()
}

/// `10`, `2.5`.
fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}
