//! A fast per-thread random source for picks, request ids and probe jitter (not for
//! secrets): rand's `SmallRng`, seeded once per thread from the operating system. The
//! pick benchmark (`rng_*` in tango-core/benches/pick.rs) measured it level with the
//! hand-written SplitMix64 it replaced.

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(seeded());
}

/// From the OS; should that fail, from the clock through std's per-process random keys,
/// which is still different per thread and per run.
fn seeded() -> SmallRng {
    SmallRng::try_from_os_rng().unwrap_or_else(|_| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(1),
        );
        SmallRng::seed_from_u64(h.finish())
    })
}

pub(crate) fn next_u64() -> u64 {
    RNG.with(|r| r.borrow_mut().next_u64())
}
