//! What stops a reload ([`Refusal`]), and how each refusal reads: the one sentence of
//! what was found or predicted, and the next step that fixes, allows or overrides it.
//! The reload API, `tango reload` and `tango diff` all print these.

use super::{num, pool_of, JudgedFinding, KeyBasis, RouteShift};
use crate::diag::Severity;
use crate::diff::Moves;

/// Something that stops a reload.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// A new checklist error, or a new warning neither allowed nor forced.
    Finding(JudgedFinding),
    /// A backend's predicted share moves more than `max_shift`.
    Shift {
        /// The pool.
        pool: String,
        /// The backend that moves most.
        backend: String,
        /// Its share among the kept backends before, in percent.
        from_pct: f64,
        /// And after.
        to_pct: f64,
        /// The pool's observed request rate.
        rate_rps: f64,
        /// The limit it is over.
        max_shift_points: f64,
        /// Backends were added or removed: the shares are among the others.
        membership_changed: bool,
        /// The backend is one the reload adds: `from_pct` is what each backend it joins
        /// takes, `to_pct` its own share, both of the whole pool.
        joins: bool,
        /// Where the prediction's keys came from.
        basis: KeyBasis,
        /// How far the move may be sampling noise, in points.
        noise_points: f64,
        /// The configuration in force already lists the pool in `[guard] allow_shift`,
        /// which allowed only the reload that added it: the file cannot allow this one
        /// by listing it again.
        listed_in_force: bool,
    },
    /// A route change would send a backend more of all requests than the busiest
    /// backend takes today, by more than `max_shift`.
    Route(Box<RouteShift>),
    /// The pool's split could not be predicted.
    Unpredictable {
        /// The pool.
        pool: String,
        /// Why.
        error: String,
    },
    /// The reload request allows a shift in a pool the new file does not have: a
    /// misspelt name would leave the shift it meant to allow refused, or unnoticed.
    UnknownPool {
        /// The name given.
        pool: String,
        /// The new file's pools.
        known: Vec<String>,
    },
}

impl Refusal {
    /// The shift gate's refusal of pool `pool`, whose judged `moves` are over
    /// `max_shift_points`: it names the backend whose move most exceeds its noise
    /// (`None` when the pool has no backend to name). The guard and `tango diff` both
    /// build it here, so a review refuses in the reload's words. `listed_in_force`: the
    /// configuration in force lists the pool in `[guard] allow_shift` already.
    pub fn shift(
        pool: &str,
        moves: &Moves,
        basis: KeyBasis,
        rate_rps: f64,
        max_shift_points: f64,
        listed_in_force: bool,
    ) -> Option<Refusal> {
        let w = moves.worst()?;
        Some(Refusal::Shift {
            pool: pool.to_string(),
            backend: w.name.clone(),
            from_pct: w.from_pct,
            to_pct: w.to_pct,
            rate_rps,
            max_shift_points,
            membership_changed: moves.membership_changed,
            joins: moves.joins(w),
            basis,
            noise_points: w.noise_points,
            listed_in_force,
        })
    }

    /// One sentence: what was found or predicted.
    pub fn sentence(&self) -> String {
        match self {
            Refusal::Finding(f) => format!(
                "new {} {} at {}: {}",
                f.diagnostic.severity.as_str(),
                f.diagnostic.code.unwrap_or("TNG000"),
                f.location,
                f.diagnostic.message
            ),
            Refusal::Shift {
                pool,
                backend,
                from_pct,
                to_pct,
                rate_rps,
                max_shift_points,
                membership_changed,
                basis,
                noise_points,
                joins,
                ..
            } => {
                let of = match membership_changed {
                    true => format!("of what pool {pool}'s kept backends get"),
                    false => format!("of pool {pool}"),
                };
                let rate = if *rate_rps >= 1.0 && (!membership_changed || *joins) {
                    format!(
                        "; about {:.0} of the pool's {:.0} requests/s",
                        rate_rps * to_pct / 100.0,
                        rate_rps
                    )
                } else {
                    String::new()
                };
                // A sampled prediction says how many requests it rests on and how far
                // its move may be noise, so the operator can weigh it.
                let noise = match basis {
                    KeyBasis::LiveSample { requests } => format!(
                        "; predicted from {requests} sampled requests, noise ±{noise_points:.1} points"
                    ),
                    _ => String::new(),
                };
                let (delta, limit) = (to_pct - from_pct, num(*max_shift_points));
                match joins {
                    true => format!(
                        "{backend} would join pool {pool} taking {to_pct:.0}% of it, where the backends it joins take {from_pct:.0}% each ({delta:+.1} points, limit {limit}{rate}{noise})"
                    ),
                    false => format!(
                        "{backend} would take {to_pct:.0}% {of} instead of {from_pct:.0}% ({delta:+.1} points, limit {limit}{rate}{noise})"
                    ),
                }
            }
            Refusal::Route(r) => r.sentence(),
            Refusal::Unpredictable { pool, error } => {
                format!("pool {pool}'s split cannot be predicted: {error}")
            }
            Refusal::UnknownPool { pool, known } => format!(
                "allow_shift names pool {pool}, which the new file does not have (its pools: {})",
                known.join(", ")
            ),
        }
    }

    /// How to go on: fix, allow or override.
    pub fn next_step(&self) -> String {
        match self {
            Refusal::Finding(f) if f.diagnostic.severity == Severity::Error => format!(
                "fix {} ({}); an error is never forced, and only an [[allow]] with a reason in the file accepts it",
                f.diagnostic.code.unwrap_or("TNG000"),
                f.diagnostic.key
            ),
            Refusal::Finding(f) => {
                let rule = f.diagnostic.code.unwrap_or("TNG000");
                let pool = pool_of(&f.diagnostic.key)
                    .map(|p| format!(" pool = \"{p}\""))
                    .unwrap_or_default();
                format!(
                    "fix {} ({}), or allow it in the file ([[allow]] rule = \"{rule}\"{pool} reason = \"...\"), or override this one reload with `tango reload --force` (POST /api/v1/reload?force=true; SIGHUP has no override)",
                    rule, f.diagnostic.key
                )
            }
            Refusal::Shift {
                pool,
                listed_in_force,
                ..
            } => {
                let sighup = match listed_in_force {
                    false => format!("add \"{pool}\" to [guard] allow_shift in the file"),
                    // Adding what is there already changes nothing: say how it counts.
                    true => format!(
                        "the configuration in force already lists \"{pool}\" in [guard] allow_shift, which allowed only the reload that added it: reload once without the entry (and without this change), then add it back with the change"
                    ),
                };
                format!(
                    "if pool {pool}'s shift is intended, allow it for this reload: `tango reload --allow-shift {pool}` (POST /api/v1/reload?allow_shift={pool}), or for SIGHUP {sighup}"
                )
            }
            Refusal::Route(r) => r.next_step(),
            Refusal::Unpredictable { .. } => {
                "override this one reload with `tango reload --force` if the change is safe".into()
            }
            Refusal::UnknownPool { .. } => {
                "name the pool as the file does (`tango reload --allow-shift NAME`), or leave allow_shift out".into()
            }
        }
    }
}
