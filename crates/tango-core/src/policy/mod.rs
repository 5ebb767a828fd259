//! Balancing policies: an immutable `Selector` built once per configuration snapshot from
//! a pool, and `Selector::pick`, called for every request from any thread (by the proxy
//! as `Selector::place`, which also says the bounded-load cap the pick holds its backend
//! to, for the proxy to check as it counts the request in).
//!
//! The pick path takes no lock and allocates nothing: the selector's tables are read-only
//! and the only shared mutable state is round robin's atomic ticket counter. Everything
//! that changes per request (eligibility, slow-start factor, in-flight counts, latency,
//! randomness) comes from the caller through `PickEnv`, so the same code serves the live
//! proxy, `tango simulate` and the tests.

mod ewma;
mod hash;
mod key;
mod maglev;
mod ring;
mod sampler;
mod walk;
mod wrr;

#[cfg(test)]
mod testenv;
#[cfg(test)]
mod tests;

pub use ewma::{
    ewma_at, peak_ewma, slow_start_factor, slow_start_mean, EwmaCell, SLOW_START_FLOOR,
};
pub use hash::hash_bytes;
pub use key::{client_address, hash_ip, key_hash, RequestView};
pub use maglev::{table_size as maglev_table_size, MIN_TABLE_SIZE as MAGLEV_MIN_TABLE_SIZE};
pub use ring::{points_per_unit as ring_points_per_unit, MAX_RING_POINTS};
pub use walk::load_cap;

use crate::config::{OnMissingKey, PolicyKind, Pool};
use maglev::Maglev;
use ring::Ring;
use sampler::{accept, AliasTable};
use walk::Walk;
use wrr::Wrr;

/// Per-request facts the caller owns. Indices are positions in the pool's backend list.
pub trait PickEnv {
    /// Healthy, not ejected, under its caps, not already tried by this request.
    fn eligible(&self, i: usize) -> bool;
    /// Slow-start factor in [0, 1] multiplying the configured weight.
    fn weight_factor(&self, _i: usize) -> f64 {
        1.0
    }
    /// Requests currently in flight to the backend.
    fn in_flight(&self, _i: usize) -> u64 {
        0
    }
    /// Peak-EWMA latency in seconds, decayed to now (see `EwmaCell::get`).
    fn latency(&self, _i: usize) -> f64 {
        0.0
    }
    /// A uniformly random u64 from the caller's generator.
    fn random(&self) -> u64;
    /// This pick is a retry of a request another backend failed. Round robin then draws
    /// by weight instead of taking the next slot: a retry that took a slot would shift the
    /// rotation, and with a failing backend every request's first try would land on it
    /// (the retry takes the slot after it, so the next request gets the failing one).
    fn retrying(&self) -> bool {
        false
    }
    /// For bounded load: (requests in flight across the pool, the summed configured
    /// weight of the eligible backends), if the caller keeps them; otherwise the selector
    /// sums them in O(n).
    fn load_totals(&self) -> Option<(u64, u64)> {
        None
    }
}

/// The outcome of a pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// This backend, by index in the pool.
    Backend(usize),
    /// No backend is eligible (or every weight is zero): answer 503.
    NoneEligible,
    /// A hash pool with `on_missing_key = "reject"` got a request without the key: 400.
    MissingKey,
}

/// A pick, with the bounded-load cap it holds its backend to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The pick.
    pub pick: Pick,
    /// Hash pools with `max_load_factor`: the most requests the picked backend may hold,
    /// this one included, by the counts the pick read (`load_cap`). The counts move
    /// between the pick and the moment the request is counted in, so the caller holds
    /// the backend to it then, atomically, and picks again when it is full. `None`:
    /// no such cap.
    pub cap: Option<u64>,
}

/// One backend as the selector sees it.
#[derive(Debug, Clone, Copy)]
pub struct BackendSpec<'a> {
    /// Identity for hashing: the configured `host:port`.
    pub address: &'a str,
    /// Its configured weight.
    pub weight: u32,
}

/// The pool settings a selector is built from.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    /// The policy.
    pub kind: PolicyKind,
    /// Ring points per unit of weight (`ring_hash`).
    pub ring_points: u32,
    /// Hash pools: requests without the key; `None` is random.
    pub on_missing: Option<OnMissingKey>,
    /// Hash pools: bounded load, as a multiple of each backend's weighted share of the
    /// in-flight count.
    pub max_load_factor: Option<f64>,
}

#[derive(Debug)]
enum Table {
    None,
    Ring(Ring),
    Maglev(Maglev),
}

/// A pool's policy, ready to pick: its tables built once, read by any thread.
#[derive(Debug)]
pub struct Selector {
    params: Params,
    sampler: AliasTable,
    wrr: Option<Wrr>,
    table: Table,
    /// Address hashes, salting the slow-start coin of hash policies.
    salts: Box<[u64]>,
    /// 1 / mean configured weight, for peak_ewma's cost.
    inv_mean_weight: f64,
}

impl Selector {
    /// The selector for a validated pool.
    pub fn from_pool(pool: &Pool) -> Self {
        let specs: Vec<BackendSpec<'_>> = pool
            .backends
            .iter()
            .map(|b| BackendSpec {
                address: &b.address,
                weight: b.weight,
            })
            .collect();
        let hashing = pool.hashing.as_ref();
        Selector::new(
            &specs,
            Params {
                kind: pool.policy,
                ring_points: pool.ring_points,
                on_missing: hashing.and_then(|h| h.on_missing),
                max_load_factor: hashing.and_then(|h| h.max_load_factor),
            },
        )
    }

    /// A selector over `backends` (in pool order) with `params`.
    pub fn new(backends: &[BackendSpec<'_>], params: Params) -> Self {
        let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
        let addresses: Vec<&str> = backends.iter().map(|b| b.address).collect();
        let needs_wrr = params.kind == PolicyKind::RoundRobin
            || (params.kind.is_hash() && params.on_missing == Some(OnMissingKey::RoundRobin));
        let table = match params.kind {
            PolicyKind::RingHash => {
                Table::Ring(Ring::new(&addresses, &weights, params.ring_points))
            }
            PolicyKind::Maglev => Table::Maglev(Maglev::new(&addresses, &weights)),
            _ => Table::None,
        };
        Selector {
            params,
            sampler: AliasTable::new(&weights),
            wrr: needs_wrr.then(|| Wrr::new(&weights)),
            table,
            salts: addresses.iter().map(|a| hash_bytes(a.as_bytes())).collect(),
            inv_mean_weight: match weights.iter().map(|&w| f64::from(w)).sum::<f64>() {
                t if t > 0.0 => weights.len() as f64 / t,
                _ => 0.0,
            },
        }
    }

    /// The policy it picks by.
    pub fn kind(&self) -> PolicyKind {
        self.params.kind
    }

    /// Number of backends (the valid index range of `Pick::Backend`).
    pub fn len(&self) -> usize {
        self.sampler.len()
    }

    /// Whether it has no backends.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Choose a backend. `key` is the request's hash key (`key_hash`) for hash policies
    /// and is ignored by the others.
    pub fn pick(&self, key: Option<u64>, env: &impl PickEnv) -> Pick {
        self.place(key, env).pick
    }

    /// [`pick`](Self::pick), with the bounded-load cap the pick holds its backend to.
    pub fn place(&self, key: Option<u64>, env: &impl PickEnv) -> Placement {
        let walked = match (&self.table, key) {
            (Table::Ring(r), Some(k)) => self.walk(r.owners()).pick(r.position(k), k, env),
            (Table::Maglev(m), Some(k)) if !m.owners().is_empty() => {
                self.walk(m.owners()).pick(m.position(k), k, env)
            }
            (Table::Maglev(_), Some(_)) => None,
            (Table::Ring(_) | Table::Maglev(_), None) => {
                let pick = self.missing_key(env);
                return Placement { pick, cap: None };
            }
            (Table::None, _) => self.unhashed(env).map(|b| (b, None)),
        };
        Placement {
            pick: walked.map_or(Pick::NoneEligible, |(b, _)| Pick::Backend(b)),
            cap: walked.and_then(|(_, cap)| cap),
        }
    }

    /// The policies that do not hash.
    fn unhashed(&self, env: &impl PickEnv) -> Option<usize> {
        match self.params.kind {
            PolicyKind::RoundRobin => self.round_robin(env),
            PolicyKind::LeastRequest => self.p2c(env, |_, per_weight| per_weight),
            PolicyKind::PeakEwma => self.p2c(env, |i, per_weight| {
                // latency x (in_flight / w + 1 / mean w): the "+1" (this request) is
                // counted at the pool's mean weight rather than the backend's own, so
                // that at equal latency and equal load per weight there is a tie and
                // the weighted draw decides: shares follow weights at any load. A
                // backend without samples (0 s) is clamped to a tiny latency so it
                // does not look free.
                env.latency(i).max(f64::MIN_POSITIVE) * (per_weight + self.inv_mean_weight)
            }),
            _ => self.sampler.draw_effective(env),
        }
    }

    /// Expected share of requests per backend: for hash policies the exact key-space
    /// ownership of the ring or table, otherwise the configured weight shares.
    pub fn ownership(&self) -> Vec<f64> {
        let n = self.len();
        match &self.table {
            Table::Ring(r) => r.ownership(n),
            Table::Maglev(m) => m.ownership(n),
            Table::None => {
                let total: f64 = (0..n).map(|i| f64::from(self.sampler.weight(i))).sum();
                (0..n)
                    .map(|i| match total > 0.0 {
                        true => f64::from(self.sampler.weight(i)) / total,
                        false => 0.0,
                    })
                    .collect()
            }
        }
    }

    fn missing_key(&self, env: &impl PickEnv) -> Pick {
        let found = match self.params.on_missing {
            Some(OnMissingKey::Reject) => return Pick::MissingKey,
            Some(OnMissingKey::RoundRobin) => self.round_robin(env),
            Some(OnMissingKey::Random) | None => self.sampler.draw_effective(env),
        };
        found.map_or(Pick::NoneEligible, Pick::Backend)
    }

    fn walk<'a>(&'a self, owners: &'a [u32]) -> Walk<'a> {
        Walk {
            owners,
            weights: self.sampler.weights(),
            salts: &self.salts,
            max_load_factor: self.params.max_load_factor,
        }
    }

    /// Take sequence slots until one belongs to an eligible backend that passes its
    /// slow-start coin. Skipped slots are consumed, so eligible backends keep their
    /// weight ratios; after a bounded number of tries, draw exactly at random instead.
    /// A retry draws by weight and takes no slot (see `PickEnv::retrying`).
    fn round_robin(&self, env: &impl PickEnv) -> Option<usize> {
        let wrr = self.wrr.as_ref()?;
        if env.retrying() {
            return self.sampler.draw_effective(env);
        }
        for _ in 0..2 * self.len() + 16 {
            let i = wrr.next()?;
            if env.eligible(i) && accept(env.weight_factor(i), env) {
                return Some(i);
            }
        }
        self.sampler.draw_exact(env)
    }

    /// Power of two choices: two candidates drawn by effective weight; the second wins
    /// when its `cost(i, load)` is lower both at `load = in_flight / effective_weight`
    /// and with half of the request being placed counted on each, `(in_flight + 1/2) /
    /// effective_weight`. Otherwise the first wins (so at equal cost, and in an idle
    /// pool, the result is still a weighted draw).
    ///
    /// The second comparison is why a lighter backend does not take over at low
    /// concurrency: an idle backend of weight 1 against one of weight 10 holding the
    /// only request in flight looks less loaded (0 < 1/10), and won every such pair, so
    /// with one request in flight at a time it took 36% of them instead of 9%. Counting
    /// half a request on each (0.5 against 0.15) leaves that pair to the weighted draw.
    /// With equal weights the two comparisons agree, so equal pools are unchanged.
    fn p2c(&self, env: &impl PickEnv, cost: impl Fn(usize, f64) -> f64) -> Option<usize> {
        let a = self.sampler.draw_effective(env)?;
        // The second candidate must differ from the first: drawn with replacement, a
        // pool of four would compare a backend with itself (and so take it unexamined)
        // one pick in sixteen, and a slow backend would keep a 6% share whatever its
        // latency. A few redraws suffice unless one backend carries nearly all the
        // weight, in which case it wins anyway.
        let mut b = a;
        for _ in 0..8 {
            b = self.sampler.draw_effective(env)?;
            if b != a {
                break;
            }
        }
        if a == b {
            return Some(a);
        }
        let load = |i: usize, placing: f64| {
            let eff =
                f64::from(self.sampler.weight(i)) * sampler::clamp_factor(env.weight_factor(i));
            (env.in_flight(i) as f64 + placing) / eff
        };
        let lower = |placing: f64| cost(b, load(b, placing)) < cost(a, load(a, placing));
        if lower(0.0) && lower(0.5) {
            Some(b)
        } else {
            Some(a)
        }
    }
}
