//! Probing how tango treats a backend's connection: tango on one worker, so every
//! client connection meets the same idle connections to a backend.

/// tango with `config` on one worker, so every client connection meets the same idle
/// connections to a backend.
pub fn one_worker(config: &str) -> crate::support::Tango {
    crate::support::Tango::start_with(config, &["--workers", "1"])
}
