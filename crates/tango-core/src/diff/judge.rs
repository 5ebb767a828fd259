//! The one judgement of a pool's predicted move, given by `tango diff` and by the reload
//! guard alike, so that a change reviewed before a reload gets the verdict the reload
//! will give, for the same reason.
//!
//! The move is measured among the backends both versions have (`kept_split`): a backend
//! added or removed takes or leaves its own share, which is the point of adding or
//! removing it, and is not a shift of the others. A backend added is judged against the
//! backends it joins (`joined_split`): its share of the pool beside their median share.
//! A prediction from sampled requests carries their noise, and a move counts only
//! beyond it (`SampleNoise`); only the guard has such a sample.

use super::{BackendShift, PoolStatus};
use serde::Serialize;

/// A backend in both versions of a pool: its share among those backends before and
/// after, in percent. For a backend added: its share of the pool (`to_pct`) beside the
/// median share of the backends it joins (`from_pct`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptShare {
    /// The backend's name.
    pub name: String,
    /// Its share among the kept backends before, in percent.
    pub from_pct: f64,
    /// And after.
    pub to_pct: f64,
    /// How far the move may be sampling noise, in points (0 when the prediction did
    /// not come from sampled requests).
    pub noise_points: f64,
    /// The move exceeds `max_shift` beyond its noise: what makes [`Moves::over`]. Not
    /// in the JSON, whose `over` is the pool's.
    #[serde(skip)]
    pub over: bool,
}

impl KeptShare {
    /// The move in points.
    pub fn move_points(&self) -> f64 {
        self.to_pct - self.from_pct
    }

    /// How far the move exceeds its noise, in points: what is compared with
    /// `max_shift`.
    pub fn excess_points(&self) -> f64 {
        self.move_points().abs() - self.noise_points
    }
}

/// The sample a prediction was read from, and how many standard errors of its noise a
/// move must clear (`[guard] noise_sigmas`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleNoise {
    /// Sampled requests.
    pub requests: usize,
    /// Standard errors of the difference of a backend's two shares.
    pub sigmas: f64,
}

/// One pool's judged moves.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Moves {
    /// The split among the backends in both versions.
    pub kept: Vec<KeptShare>,
    /// Each backend added, against the median share of those it joins.
    pub joined: Vec<KeptShare>,
    /// The pool is in both versions and backends were added to it or removed from it
    /// (false for a pool added or removed whole).
    pub membership_changed: bool,
    /// Largest move in `kept` and `joined`, in points.
    pub largest_shift_points: f64,
    /// A move exceeds `max_shift` beyond its noise.
    pub over: bool,
}

impl Moves {
    /// The backend whose move most exceeds its noise (with no noise, the one that
    /// moves most): the one a verdict names.
    pub fn worst(&self) -> Option<&KeptShare> {
        (self.kept.iter().chain(&self.joined))
            .max_by(|a, b| a.excess_points().total_cmp(&b.excess_points()))
    }

    /// Whether `k` is a backend the new version adds.
    pub fn joins(&self, k: &KeptShare) -> bool {
        self.joined.iter().any(|j| j.name == k.name)
    }
}

/// Judge a pool's predicted shares (`backends`, as [`pool_shift`](super::pool_shift)
/// pairs them) against `max_shift_points`. A pool added or removed moves nothing
/// between its backends. With `noise`, each move carries that sample's noise.
pub fn judge_moves(
    status: PoolStatus,
    backends: &[BackendShift],
    noise: Option<SampleNoise>,
    max_shift_points: f64,
) -> Moves {
    let (mut kept, mut joined) = match status {
        PoolStatus::Kept => (kept_split(backends), joined_split(backends)),
        _ => (Vec::new(), Vec::new()),
    };
    if let Some(n) = noise {
        add_noise(&mut kept, backends, n);
        for j in &mut joined {
            let v = var(j.from_pct, n.requests as f64) + var(j.to_pct, n.requests as f64);
            j.noise_points = n.sigmas * v.sqrt() * 100.0;
        }
    }
    let largest = kept
        .iter()
        .chain(&joined)
        .map(|k| k.move_points().abs())
        .fold(0.0, f64::max);
    for k in kept.iter_mut().chain(&mut joined) {
        k.over = k.excess_points() > max_shift_points;
    }
    let over = kept.iter().chain(&joined).any(|k| k.over);
    Moves {
        // A pool added or removed whole has no kept backends but no change of members
        // either: it is a new pool, or a pool gone.
        membership_changed: status == PoolStatus::Kept && kept.len() != backends.len(),
        kept,
        joined,
        largest_shift_points: largest,
        over,
    }
}

/// Each kept backend's sampling noise, `sigmas` binomial standard errors of its move
/// between the two shares measured on the sampled requests. The two shares are read
/// from the same requests, which only makes their difference steadier when few keys
/// move; treating them as independent keeps the margin on the side of letting a reload
/// through.
fn add_noise(kept: &mut [KeptShare], backends: &[BackendShift], noise: SampleNoise) {
    let (old_sum, new_sum) = backends
        .iter()
        .filter(|b| b.old_pct.is_some() && b.new_pct.is_some())
        .fold((0.0, 0.0), |(o, n), b| {
            (o + b.old_pct.unwrap_or(0.0), n + b.new_pct.unwrap_or(0.0))
        });
    let n = noise.requests as f64;
    // The sampled requests the kept backends served in each version.
    let (n_old, n_new) = (
        (n * old_sum / 100.0).max(1.0),
        (n * new_sum / 100.0).max(1.0),
    );
    for k in kept {
        let se = (var(k.from_pct, n_old) + var(k.to_pct, n_new)).sqrt() * 100.0;
        k.noise_points = noise.sigmas * se;
    }
}

/// The binomial variance of a share of `pct` percent measured on `m` requests, pulled
/// one request towards the middle so that a share of 0% or 100% in a tiny sample is not
/// taken as certain. The route gate uses it too.
pub(crate) fn var(pct: f64, m: f64) -> f64 {
    let m = m.max(1.0);
    let p = (pct / 100.0 * m + 1.0) / (m + 2.0);
    p * (1.0 - p) / m
}

/// Each backend the new version adds, against what the backends it joins take: its
/// share of the whole pool (`to_pct`) beside the median share of the kept backends in
/// the new version (`from_pct`). Adding a backend is meant to give it a share like its
/// peers'; one that would take far more (a weight typed 4 instead of 1) skews the pool
/// as a typo on a kept backend does, and is judged the same way. With no kept backend
/// (the whole pool replaced) there is nothing to compare with.
fn joined_split(backends: &[BackendShift]) -> Vec<KeptShare> {
    let mut peers: Vec<f64> = backends
        .iter()
        .filter(|b| b.old_pct.is_some())
        .filter_map(|b| b.new_pct)
        .collect();
    if peers.is_empty() {
        return Vec::new();
    }
    peers.sort_by(f64::total_cmp);
    let m = peers.len();
    let median = (peers[(m - 1) / 2] + peers[m / 2]) / 2.0;
    backends
        .iter()
        .filter(|b| b.old_pct.is_none())
        .filter_map(|b| {
            Some(KeptShare {
                name: b.name.clone(),
                from_pct: median,
                to_pct: b.new_pct?,
                noise_points: 0.0,
                over: false,
            })
        })
        .collect()
}

/// The split among the backends in both versions, each side renormalised over them.
fn kept_split(backends: &[BackendShift]) -> Vec<KeptShare> {
    let both: Vec<(&BackendShift, f64, f64)> = backends
        .iter()
        .filter_map(|b| Some((b, b.old_pct?, b.new_pct?)))
        .collect();
    let (old_sum, new_sum) = both
        .iter()
        .fold((0.0, 0.0), |(o, n), (_, a, b)| (o + a, n + b));
    let rel = |x: f64, sum: f64| if sum > 0.0 { x / sum * 100.0 } else { 0.0 };
    both.iter()
        .map(|(b, o, n)| KeptShare {
            name: b.name.clone(),
            from_pct: rel(*o, old_sum),
            to_pct: rel(*n, new_sum),
            noise_points: 0.0,
            over: false,
        })
        .collect()
}
