//! What the data plane samples for the control side, per pool and surviving reloads:
//! a bounded ring of requests (the reload guard replays them against a new
//! configuration, also when it makes a pool hash that did not) and the hash keys seen
//! (the hot-key sketches the watch reads).

use std::sync::{Arc, Mutex};
use tango_core::simulate::SampledRequest;
use tango_core::sketch::{KeySketch, KeySketchConfig, KeySummary};

/// A bounded ring of sampled requests. Requests are offered 1 in [`SAMPLE_EVERY`], and
/// an offer that finds the ring busy (the guard copying it out) is dropped, so the data
/// plane never waits here.
#[derive(Debug, Default)]
pub(crate) struct RequestSample {
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    items: Vec<SampledRequest>,
    /// Where the next request goes once the ring is full.
    next: usize,
}

/// One request in this many is offered to a hash pool's sample.
pub(crate) const SAMPLE_EVERY: u64 = 16;
/// And to the sample of a pool that does not hash, which the guard reads only when a
/// reload makes it hash: a key every request shares shows in a few dozen requests, and
/// the pool pays a quarter of the cost (a power of two, as `SAMPLE_EVERY`: a mask).
pub(crate) const SAMPLE_EVERY_UNHASHED: u64 = 64;
/// The most sampled requests kept per hash pool.
pub(crate) const SAMPLE_CAP: usize = 10_000;
/// The most kept per pool that does not hash: its requests are replayed only when a
/// reload makes it hash, and this many pin each backend's share to within about
/// ±2 points (the hash pools' cap, to within ±1), in a fifth of the memory.
pub(crate) const SAMPLE_CAP_UNHASHED: usize = 2_000;

impl RequestSample {
    /// Keep `r`, replacing the oldest once `cap` requests are kept (a ring that is
    /// already longer, kept while the pool hashed, stays as long).
    pub(crate) fn offer(&self, r: SampledRequest, cap: usize) {
        let Ok(mut ring) = self.ring.try_lock() else {
            return;
        };
        let len = ring.items.len();
        if len < cap {
            // A full ring allowed to grow (the pool now hashes): oldest first again,
            // so that the new requests go after the newest.
            let next = ring.next;
            ring.items.rotate_left(next);
            ring.next = 0;
            ring.items.push(r);
        } else {
            let at = ring.next % len;
            ring.items[at] = r;
            ring.next = (at + 1) % len;
        }
    }

    /// The sampled requests, oldest first.
    pub(crate) fn copy(&self) -> Arc<[SampledRequest]> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let (newer, older) = ring.items.split_at(ring.next.min(ring.items.len()));
        older.iter().chain(newer).cloned().collect()
    }
}

/// Hash pools: the keys of one request in [`KEY_SAMPLE_EVERY`] (or its lack of one) go
/// into two sliding-window sketches (`tango_core::sketch`: a HyperLogLog for the distinct
/// count, Space-Saving for the heaviest values): one over a minute, and one over the
/// last second or two. The detector's shortest windows are one tick, and a key that
/// suddenly carries everything (a client bug, a default filled in) is diluted in a
/// minute's sample until long after the alert; it is plain in the last seconds'. The
/// request path only tries the lock: a sample that finds the watch reading the sketches
/// is dropped, never waited for.
#[derive(Debug)]
pub(crate) struct KeyTracker {
    sketches: Mutex<[KeySketch; 2]>,
}

/// One request in this many offers its key to the sketches.
pub(crate) const KEY_SAMPLE_EVERY: u64 = 8;

impl Default for KeyTracker {
    fn default() -> Self {
        // A minute in 6 epochs, 32 heavy hitters, 2^10 registers (the sketch's
        // defaults); and the last 1-2 s, one epoch a tick.
        let recent = KeySketchConfig {
            window_ms: 2000,
            epochs: 2,
            top_k: 32,
            precision: 8,
        };
        Self {
            sketches: Mutex::new([
                KeySketch::new(KeySketchConfig::default(), 0),
                KeySketch::new(recent, 0),
            ]),
        }
    }
}

impl KeyTracker {
    /// Called for every request of a hash pool, with its key's hash or `None` and a
    /// random draw (shared with the request sample, so a request costs one draw).
    pub(crate) fn observe(&self, key: Option<u64>, draw: u64) {
        if draw % KEY_SAMPLE_EVERY != 0 {
            return;
        }
        if let Ok(mut s) = self.sketches.try_lock() {
            s[0].observe(key);
            s[1].observe(key);
        }
    }

    /// The two sketches' summaries, the minute's and the last seconds', at `now_ms`
    /// (the time since start, the sketches' clock).
    pub(crate) fn summaries(&self, now_ms: u64) -> [KeySummary; 2] {
        let mut s = self.sketches.lock().unwrap_or_else(|e| e.into_inner());
        s.iter_mut().for_each(|k| k.rotate(now_ms));
        [s[0].summary(now_ms), s[1].summary(now_ms)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(i: usize) -> SampledRequest {
        let path = format!("/{i}");
        SampledRequest::new(
            "127.0.0.1".parse().unwrap(),
            &path,
            None,
            std::iter::empty(),
        )
    }

    #[test]
    fn the_request_sample_keeps_the_latest_oldest_first() {
        use tango_core::policy::RequestView;
        let s = RequestSample::default();
        for i in 0..SAMPLE_CAP + 3 {
            s.offer(req(i), SAMPLE_CAP);
        }
        let got = s.copy();
        assert_eq!(got.len(), SAMPLE_CAP);
        assert_eq!(got[0].path(), "/3");
        assert_eq!(got[SAMPLE_CAP - 1].path(), format!("/{}", SAMPLE_CAP + 2));
    }

    /// A pool that did not hash kept a small ring; once it hashes the ring grows, the
    /// newest requests still last.
    #[test]
    fn a_ring_that_grows_keeps_its_requests_oldest_first() {
        use tango_core::policy::RequestView;
        let s = RequestSample::default();
        for i in 0..7 {
            s.offer(req(i), 5);
        }
        for i in 7..9 {
            s.offer(req(i), 10);
        }
        let got: Vec<String> = s.copy().iter().map(|r| r.path().to_string()).collect();
        assert_eq!(got, ["/2", "/3", "/4", "/5", "/6", "/7", "/8"]);
    }
}
