//! Prints the detector's false-alarm and detection tables (seeded, deterministic): the
//! share detector's, then the latency-outlier rule's under simulated CPU stalls.
//!
//! `cargo run --release -p tango-core --example detector_table`

use tango_core::detector::{sim, DetectorConfig};

fn main() {
    let cfg = DetectorConfig::default();
    let (ticks, trials, limit) = (10_000, 20, 1800);
    let mut rows = Vec::new();
    for backends in [3, 10, 50] {
        for rps in [1, 10, 100, 1000] {
            rows.push(sim::row(backends, rps, &cfg, ticks, trials, limit));
        }
    }
    print!("{}", sim::table(&rows, ticks, limit));
    println!();
    print!("{}", sim::latency_table(&cfg, ticks));
}
