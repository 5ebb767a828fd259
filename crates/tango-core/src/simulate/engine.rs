//! The event-driven model the real selector runs in: a fixed number of closed-loop
//! clients, each sending its next request the moment the previous one completes, and
//! backends that serve every request they get in parallel with an exponentially
//! distributed service time around their latency.
//!
//! It is deliberately simple: it exists to give `least_request`, `peak_ewma` and bounded
//! load the in-flight counts and latencies they react to (a slow backend holds its
//! requests longer, so it has more in flight and its EWMA is higher), not to predict
//! response times. Simulated time is in nanoseconds; events sit in a binary heap.

use super::keys::KeyStream;
use super::rng::Rng;
use crate::policy::{ewma_at, peak_ewma, Pick, PickEnv, Selector};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// The starting latency estimate of a backend, as the proxy's cells start.
const INITIAL_EWMA: f64 = 0.005;
/// How long a client whose request was refused (400, 503) waits before the next one.
const REFUSED_PAUSE_NS: u64 = 1_000_000;
/// Progress is reported every this many requests.
const PROGRESS_EVERY: u64 = 1 << 16;

/// What the model runs: backend state that does not change during the run.
pub(super) struct Model<'a> {
    pub(super) selector: &'a Selector,
    /// Eligible as health and ejection would leave them (panic mode applied).
    pub(super) up: Vec<bool>,
    /// `max_in_flight` per backend (`u64::MAX` when unset).
    pub(super) caps: Vec<u64>,
    /// Mean service time per backend, in seconds.
    pub(super) service: Vec<f64>,
    pub(super) concurrency: u32,
    pub(super) decay: Duration,
}

/// What the run counted.
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub(super) per_backend: Vec<u64>,
    /// Requests without a key in a pool with `on_missing_key = "reject"` (400).
    pub(super) rejected: u64,
    /// Requests no backend was eligible for (503).
    pub(super) unserved: u64,
}

/// The `PickEnv` of the simulation: the model's state at the current simulated time.
struct SimEnv<'m> {
    model: &'m Model<'m>,
    in_flight: Vec<u64>,
    /// Peak-EWMA estimate and the time of its last sample, per backend.
    ewma: Vec<(f64, u64)>,
    now_ns: u64,
    rng: Rng,
}

impl PickEnv for SimEnv<'_> {
    fn eligible(&self, i: usize) -> bool {
        self.model.up[i] && self.in_flight[i] < self.model.caps[i]
    }
    fn in_flight(&self, i: usize) -> u64 {
        self.in_flight[i]
    }
    fn latency(&self, i: usize) -> f64 {
        let (v, at) = self.ewma[i];
        ewma_at(v, at, self.now_ns, self.model.decay)
    }
    fn random(&self) -> u64 {
        self.rng.next()
    }
}

/// A request's completion (or a refused client's retry time). Ordered by time, then
/// client, so runs are reproducible.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    at_ns: u64,
    client: u32,
    /// The backend serving it, or `NONE` for a client that was refused.
    backend: u32,
    service_ns: u64,
}

const NONE: u32 = u32::MAX;

/// Run `requests` requests through the selector.
pub(super) fn run(
    model: &Model<'_>,
    keys: &mut KeyStream,
    requests: u64,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Counts {
    let n = model.up.len();
    let mut env = SimEnv {
        model,
        in_flight: vec![0; n],
        ewma: vec![(INITIAL_EWMA, 0); n],
        now_ns: 0,
        rng: Rng::new(seed),
    };
    let mut counts = Counts {
        per_backend: vec![0; n],
        ..Counts::default()
    };
    // More clients than the eligible backends' in-flight caps admit would only measure
    // refusals: the model is a pool running within its caps.
    let cap_total: u64 = model
        .caps
        .iter()
        .zip(&model.up)
        .filter(|(_, up)| **up)
        .map(|(c, _)| *c)
        .fold(0u64, u64::saturating_add);
    let clients = u64::from(model.concurrency.max(1)).min(cap_total.max(1)) as u32;
    let mut heap = BinaryHeap::with_capacity(clients as usize);
    // Clients start one nanosecond apart: a deterministic order without a burst tie.
    for c in 0..clients {
        heap.push(Reverse(Event {
            at_ns: u64::from(c),
            client: c,
            backend: NONE,
            service_ns: 0,
        }));
    }
    let mut issued = 0u64;
    while issued < requests {
        let Some(Reverse(ev)) = heap.pop() else { break };
        env.now_ns = ev.at_ns;
        if ev.backend != NONE {
            let b = ev.backend as usize;
            env.in_flight[b] -= 1;
            let (v, at) = env.ewma[b];
            let sample = ev.service_ns as f64 / 1e9;
            env.ewma[b] = (peak_ewma(v, at, sample, ev.at_ns, model.decay), ev.at_ns);
        }
        let key = keys.next(&env.rng);
        let next = match model.selector.pick(key, &env) {
            Pick::Backend(i) => {
                counts.per_backend[i] += 1;
                env.in_flight[i] += 1;
                let service_ns = (env.rng.exp(model.service[i]) * 1e9).max(1.0) as u64;
                Event {
                    at_ns: ev.at_ns + service_ns,
                    client: ev.client,
                    backend: i as u32,
                    service_ns,
                }
            }
            refused => {
                match refused {
                    Pick::MissingKey => counts.rejected += 1,
                    _ => counts.unserved += 1,
                }
                Event {
                    at_ns: ev.at_ns + REFUSED_PAUSE_NS,
                    client: ev.client,
                    backend: NONE,
                    service_ns: 0,
                }
            }
        };
        heap.push(Reverse(next));
        issued += 1;
        if issued % PROGRESS_EVERY == 0 {
            progress(issued, requests);
        }
    }
    progress(issued, requests);
    counts
}
