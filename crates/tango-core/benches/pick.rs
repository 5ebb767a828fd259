//! Cost of one `Selector::pick` per policy at 10 and 100 backends, every backend eligible,
//! with a cheap caller-side RNG and in-flight counts as the proxy would keep them; and
//! (`rng_*`) the pick with the random source the proxy uses, a per-thread generator, for
//! the policies that draw: rand's `SmallRng` against a hand-written SplitMix64.
//!
//! Run: `cargo bench -p tango-core --bench pick`

use divan::{black_box, Bencher};
use rand::{RngCore, SeedableRng};
use std::cell::{Cell, RefCell};
use tango_core::config::defaults::pool::RING_POINTS;
use tango_core::config::PolicyKind;
use tango_core::policy::{BackendSpec, Params, PickEnv, Selector};

fn main() {
    divan::main();
}

struct Env {
    in_flight: Vec<u64>,
    state: Cell<u64>,
    source: Source,
}

impl PickEnv for Env {
    fn eligible(&self, _i: usize) -> bool {
        true
    }
    fn in_flight(&self, i: usize) -> u64 {
        self.in_flight[i]
    }
    fn latency(&self, i: usize) -> f64 {
        0.01 + (i % 7) as f64 * 0.001
    }
    fn random(&self) -> u64 {
        match self.source {
            Source::Local => {}
            Source::SplitMix => return splitmix(),
            Source::SmallRng => return small_rng(),
        }
        // xorshift64*: the kind of generator a proxy worker keeps per thread.
        let mut x = self.state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn run(bencher: Bencher<'_, '_>, kind: PolicyKind, n: usize, max_load_factor: Option<f64>) {
    run_with(bencher, kind, n, max_load_factor, Source::Local)
}

/// Where `PickEnv::random` draws from.
#[derive(Clone, Copy)]
enum Source {
    /// A xorshift64* state in the environment.
    Local,
    /// A per-thread SplitMix64, as tango's `rng.rs` kept before rand.
    SplitMix,
    /// A per-thread `rand::rngs::SmallRng`.
    SmallRng,
}

thread_local! {
    static SPLITMIX: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) };
    static SMALL: RefCell<rand::rngs::SmallRng> = RefCell::new(rand::rngs::SmallRng::seed_from_u64(1));
}

fn splitmix() -> u64 {
    SPLITMIX.with(|s| {
        let mut z = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

fn small_rng() -> u64 {
    SMALL.with(|r| r.borrow_mut().next_u64())
}

fn run_with(
    bencher: Bencher<'_, '_>,
    kind: PolicyKind,
    n: usize,
    max_load_factor: Option<f64>,
    source: Source,
) {
    let addrs: Vec<String> = (0..n)
        .map(|i| format!("10.0.{}.{}:8080", i / 250, i % 250))
        .collect();
    let specs: Vec<BackendSpec<'_>> = addrs
        .iter()
        .enumerate()
        .map(|(i, a)| BackendSpec {
            address: a,
            weight: 1 + (i % 5) as u32,
        })
        .collect();
    let selector = Selector::new(
        &specs,
        Params {
            kind,
            ring_points: RING_POINTS,
            on_missing: None,
            max_load_factor,
        },
    );
    let env = Env {
        in_flight: (0..n as u64).map(|i| i % 4).collect(),
        state: Cell::new(0x9E37_79B9_7F4A_7C15),
        source,
    };
    let key = Cell::new(0u64);
    bencher.bench_local(|| {
        let k = key.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        key.set(k);
        black_box(selector.pick(Some(black_box(k)), &env))
    });
}

const SIZES: [usize; 2] = [10, 100];

#[divan::bench(args = SIZES)]
fn round_robin(b: Bencher<'_, '_>, n: usize) {
    run(b, PolicyKind::RoundRobin, n, None);
}

#[divan::bench(args = SIZES)]
fn random(b: Bencher<'_, '_>, n: usize) {
    run(b, PolicyKind::Random, n, None);
}

#[divan::bench(args = SIZES)]
fn least_request(b: Bencher<'_, '_>, n: usize) {
    run(b, PolicyKind::LeastRequest, n, None);
}

#[divan::bench(args = SIZES)]
fn peak_ewma(b: Bencher<'_, '_>, n: usize) {
    run(b, PolicyKind::PeakEwma, n, None);
}

#[divan::bench(args = SIZES)]
fn ring_hash(b: Bencher<'_, '_>, n: usize) {
    run(b, PolicyKind::RingHash, n, None);
}

#[divan::bench(args = SIZES)]
fn maglev(b: Bencher<'_, '_>, n: usize) {
    run(b, PolicyKind::Maglev, n, None);
}

/// Bounded load without caller-kept totals: the selector sums in-flight in O(n).
#[divan::bench(args = SIZES)]
fn maglev_bounded_scan(b: Bencher<'_, '_>, n: usize) {
    run(b, PolicyKind::Maglev, n, Some(1.25));
}

/// The policies whose picks draw random numbers, with each per-thread source.
#[divan::bench(args = SIZES)]
fn rng_random_splitmix(b: Bencher<'_, '_>, n: usize) {
    run_with(b, PolicyKind::Random, n, None, Source::SplitMix);
}

#[divan::bench(args = SIZES)]
fn rng_random_small_rng(b: Bencher<'_, '_>, n: usize) {
    run_with(b, PolicyKind::Random, n, None, Source::SmallRng);
}

#[divan::bench(args = SIZES)]
fn rng_least_request_splitmix(b: Bencher<'_, '_>, n: usize) {
    run_with(b, PolicyKind::LeastRequest, n, None, Source::SplitMix);
}

#[divan::bench(args = SIZES)]
fn rng_least_request_small_rng(b: Bencher<'_, '_>, n: usize) {
    run_with(b, PolicyKind::LeastRequest, n, None, Source::SmallRng);
}
