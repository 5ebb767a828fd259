//! A route prediction over the limit: allowed as a shift of the pool that gains the
//! traffic, forced, or refused naming the route, the pools, the backend and its shares.

use super::{RouteMove, RoutePrediction};
use crate::guard::{num, Input, Judgement, Refusal, ShiftAllowance};

/// A backend a reload's routes would send more than the busiest backend takes today.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteShift {
    /// The requests that would change pool and bring it the most.
    pub moved: RouteMove,
    /// The backend.
    pub backend: String,
    /// The pool it is in.
    pub backend_pool: String,
    /// Its pool: the one that gains the traffic, which `--allow-shift` names.
    pub pool: String,
    /// Its share of all requests today, in percent.
    pub from_pct: f64,
    /// After the reload.
    pub to_pct: f64,
    /// The busiest backend's share today.
    pub busiest_pct: f64,
    /// The requests per second the pools serve.
    pub rate_rps: f64,
    /// The limit it is over.
    pub max_shift_points: f64,
    /// Sampled requests the prediction rests on.
    pub requests: usize,
    /// How far its share may be sampling noise, in points.
    pub noise_points: f64,
    /// The configuration in force already lists the pool in `[guard] allow_shift`.
    pub listed_in_force: bool,
}

impl RouteShift {
    /// What was predicted, one sentence.
    pub fn sentence(&self) -> String {
        let rise = self.to_pct - self.from_pct.max(self.busiest_pct);
        let rate = match self.rate_rps >= 1.0 {
            true => format!(
                "; about {:.0} of the {:.0} requests/s",
                self.rate_rps * self.to_pct / 100.0,
                self.rate_rps
            ),
            false => String::new(),
        };
        format!(
            "{}: {} (pool {}) would take {:.0}% of all requests instead of {:.0}% ({rise:+.1} points over the busiest backend's {:.0}% today, limit {}{rate}; predicted from {} sampled requests, noise ±{:.1} points)",
            self.moved.describe(),
            self.backend,
            self.backend_pool,
            self.to_pct,
            self.from_pct,
            self.busiest_pct,
            num(self.max_shift_points),
            self.requests,
            self.noise_points,
        )
    }

    /// How to go on.
    pub fn next_step(&self) -> String {
        let pool = &self.pool;
        let sighup = match self.listed_in_force {
            false => format!("add \"{pool}\" to [guard] allow_shift in the file"),
            true => format!(
                "the configuration in force already lists \"{pool}\" in [guard] allow_shift, which allowed only the reload that added it: reload once without the entry (and without this change), then add it back with the change"
            ),
        };
        format!(
            "if sending these requests to pool {pool} is intended, allow it for this reload: `tango reload --allow-shift {pool}` (POST /api/v1/reload?allow_shift={pool}), or for SIGHUP {sighup}"
        )
    }
}

/// A prediction over the limit: allowed (the request or the file allows the shift of
/// the pool that gains the traffic), forced, or refused.
pub(super) fn judge(input: &Input<'_>, j: &mut Judgement, p: &mut RoutePrediction) {
    let Some(w) = p.worst().cloned() else {
        return;
    };
    let moved = p.move_to(&input.new.config, &w).cloned();
    let Some(moved) = moved else {
        return;
    };
    // The pool that gains the traffic: the backend's own, when the move is into it.
    let pool = moved.to_pool.clone().unwrap_or_else(|| w.pool.clone());
    let live_allows = &input.live.config.guard.allow_shift;
    p.allowed = if input.overrides.allow_shift.contains(&pool) {
        Some(ShiftAllowance::Request)
    } else if input.new.config.guard.allow_shift.contains(&pool) && !live_allows.contains(&pool) {
        Some(ShiftAllowance::File)
    } else {
        None
    };
    if p.allowed.is_some() {
        return;
    }
    let r = Refusal::Route(Box::new(RouteShift {
        moved,
        backend: w.backend.clone(),
        backend_pool: w.pool.clone(),
        listed_in_force: live_allows.contains(&pool),
        pool,
        from_pct: w.from_pct,
        to_pct: w.to_pct,
        busiest_pct: p.busiest_pct,
        rate_rps: p.rate_rps,
        max_shift_points: input.settings.max_shift_points,
        requests: match p.basis {
            super::RouteBasis::LiveSample { requests } => requests,
            super::RouteBasis::Unpredictable { .. } => 0,
        },
        noise_points: w.noise_points,
    }));
    p.forced = input.overrides.force;
    match p.forced {
        true => j.overridden.push(r),
        false => j.refusals.push(r),
    }
}
