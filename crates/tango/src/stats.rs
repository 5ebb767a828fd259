//! Per-backend and per-pool counters kept in atomics: the hot path only adds; the watch
//! loop, the admin API and `/metrics` read. No locks, no allocation per request. A
//! backend counts its tries; a pool also counts what its clients saw (`ClientStats`), so
//! a failed try that a retry absorbed is told apart from a failure a client got.
//! Listeners count their failed TLS handshakes (`TlsFailures`), by name, and publish when
//! the certificates they serve expire (`CertificateDates`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// Status classes used as the `code` label: 1xx..5xx, and `error` when no response came.
pub(crate) const CODE_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];

/// Upper bounds (seconds) of the latency histogram buckets.
pub(crate) const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default)]
pub(crate) struct BackendStats {
    by_class: [AtomicU64; 6],
    /// Per-bucket (not cumulative) counts; the last slot is +Inf.
    latency_buckets: [AtomicU64; 15],
    latency_sum_us: AtomicU64,
    /// Failures clients saw whose last try was this backend (a failed try that a retry
    /// elsewhere absorbed is counted in `by_class` only).
    client_errors: AtomicU64,
    /// Answers below 500 whose body the backend broke off (reset, closed short, framed
    /// wrongly, or silent past the stall timeout): counted by their status in
    /// `by_class` when their head came, and failures of the backend when the body broke.
    broken: AtomicU64,
}

/// What a pool's clients saw: every answer, the failures among them, and the latency
/// (to the response head) of the answers that did not fail.
#[derive(Debug, Default)]
pub(crate) struct ClientStats {
    pub(crate) requests: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) latency_buckets: [AtomicU64; 15],
}

/// A copy of [`ClientStats`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ClientSnapshot {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) latency_buckets: [u64; 15],
}

impl ClientStats {
    /// One answer to a client: `failed` for 5xx (tango's own included).
    pub(crate) fn record(&self, failed: bool, latency: Duration) {
        self.requests.fetch_add(1, Relaxed);
        if failed {
            self.errors.fetch_add(1, Relaxed);
        } else {
            self.latency_buckets[bucket(latency)].fetch_add(1, Relaxed);
        }
    }

    /// An answer already recorded as a success whose body the backend broke off: a
    /// failure the client saw. Its head's latency stays counted: it was a response
    /// time, and counters only go up.
    pub(crate) fn record_broken(&self) {
        self.errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ClientSnapshot {
        ClientSnapshot {
            requests: self.requests.load(Relaxed),
            errors: self.errors.load(Relaxed),
            latency_buckets: std::array::from_fn(|i| self.latency_buckets[i].load(Relaxed)),
        }
    }
}

fn bucket(l: Duration) -> usize {
    let secs = l.as_secs_f64();
    LATENCY_BUCKETS.partition_point(|&b| b < secs)
}

/// A consistent-enough copy of the counters, for the watch loop and the API.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StatsSnapshot {
    pub(crate) by_class: [u64; 6],
    pub(crate) latency_buckets: [u64; 15],
    pub(crate) latency_sum_us: u64,
    pub(crate) client_errors: u64,
    pub(crate) broken: u64,
}

impl StatsSnapshot {
    pub(crate) fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// Tries that count as failures of the backend: 5xx, no response at all, and a
    /// response whose body the backend broke off.
    pub(crate) fn errors(&self) -> u64 {
        self.by_class[4] + self.by_class[5] + self.broken
    }

    pub(crate) fn latency_count(&self) -> u64 {
        self.latency_buckets.iter().sum()
    }
}

pub(crate) fn class_index(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        _ => 4,
    }
}

impl BackendStats {
    pub(crate) fn record(&self, class: usize, latency: Option<Duration>) {
        self.by_class[class].fetch_add(1, Relaxed);
        if let Some(l) = latency {
            self.latency_buckets[bucket(l)].fetch_add(1, Relaxed);
            self.latency_sum_us.fetch_add(l.as_micros() as u64, Relaxed);
        }
    }

    /// A failure a client saw whose last try was this backend.
    pub(crate) fn record_client_error(&self) {
        self.client_errors.fetch_add(1, Relaxed);
    }

    /// A try whose answer (below 500, already counted by its class) the backend broke
    /// off in its body: a failed try, and one the client saw.
    pub(crate) fn record_broken(&self) {
        self.broken.fetch_add(1, Relaxed);
        self.client_errors.fetch_add(1, Relaxed);
    }

    /// A try whose body the backend broke off before anything of it reached the
    /// client, who was answered `502` instead (and counted so, as a client error): a
    /// failed try only.
    pub(crate) fn record_broken_try(&self) {
        self.broken.fetch_add(1, Relaxed);
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            by_class: std::array::from_fn(|i| self.by_class[i].load(Relaxed)),
            latency_buckets: std::array::from_fn(|i| self.latency_buckets[i].load(Relaxed)),
            latency_sum_us: self.latency_sum_us.load(Relaxed),
            client_errors: self.client_errors.load(Relaxed),
            broken: self.broken.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_right_bucket() {
        let s = BackendStats::default();
        s.record(1, Some(Duration::from_micros(700)));
        s.record(1, Some(Duration::from_secs(60)));
        s.record(5, None);
        let snap = s.snapshot();
        assert_eq!(snap.latency_buckets[1], 1);
        assert_eq!(snap.latency_buckets[14], 1);
        assert_eq!(snap.requests(), 3);
        assert_eq!(snap.errors(), 1);
    }

    #[test]
    fn a_broken_body_is_a_failed_try_the_client_saw_not_another_try() {
        let s = BackendStats::default();
        s.record(1, Some(Duration::from_millis(3)));
        s.record_broken();
        let snap = s.snapshot();
        assert_eq!(snap.requests(), 1);
        assert_eq!(snap.by_class[1], 1);
        assert_eq!((snap.errors(), snap.broken, snap.client_errors), (1, 1, 1));
    }
}

/// Failed TLS handshakes per listener name, across reloads. Written only when a
/// handshake fails (a lock and a lookup then), never on a connection that succeeds; read
/// by `/metrics`. Keyed by name rather than held by the listener, so a renamed listener
/// counts under its new name.
#[derive(Debug, Default)]
pub(crate) struct TlsFailures(Mutex<HashMap<String, u64>>);

impl TlsFailures {
    /// A handshake on `listener` failed.
    pub(crate) fn count(&self, listener: &str) {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match m.get_mut(listener) {
            Some(n) => *n += 1,
            None => {
                m.insert(listener.to_string(), 1);
            }
        }
    }

    /// The failures counted on `listener` so far.
    pub(crate) fn get(&self, listener: &str) -> u64 {
        let m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        m.get(listener).copied().unwrap_or(0)
    }
}

/// When the certificates the TLS listeners serve expire: (listener, server name,
/// notAfter in seconds since the Unix epoch). Replaced whole each time the listeners
/// take a configuration (start, reload, rollback), never on a connection; read by
/// `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct CertificateDates(Mutex<Vec<(String, String, i64)>>);

impl CertificateDates {
    /// The certificates served from now on, sorted.
    pub(crate) fn set(&self, mut dates: Vec<(String, String, i64)>) {
        dates.sort();
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = dates;
    }

    /// The certificates served now.
    pub(crate) fn get(&self) -> Vec<(String, String, i64)> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
