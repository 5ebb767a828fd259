//! The proxy's side of picking: the request seen through tango-core's `RequestView`,
//! the `PickEnv` that reads each backend's state (health, ejection, caps, in-flight,
//! slow start, peak EWMA) through `BackendState`, the hash pools' key counts, every
//! pool's request sample, and where a key would go now (`pick_for_key`, for the watch).

use crate::runtime::{PoolRuntime, Runtime};
use http::Request;
use std::net::IpAddr;
use std::time::Duration;
use tango_core::config::{Cidr, PolicyKind};
use tango_core::policy::{client_address, key_hash, Pick, PickEnv, Placement, RequestView};
use tango_core::retry::Tried;
use tango_core::simulate::SampledRequest;

struct View<'a, B> {
    req: &'a Request<B>,
    peer: IpAddr,
}

impl<B> RequestView for View<'_, B> {
    fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        self.req
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes())
    }

    fn path(&self) -> &str {
        self.req.uri().path()
    }

    fn query(&self) -> Option<&str> {
        self.req.uri().query()
    }

    fn peer(&self) -> IpAddr {
        self.peer
    }
}

/// Keep 1 request in [`SAMPLE_EVERY`] of a hash pool, 1 in [`SAMPLE_EVERY_UNHASHED`] of
/// any other (client, path, query, headers) for the reload guard: a reload that makes a
/// pool hash, or hash on another key, is predicted on these (hashing on a header every
/// live request shares sends them all to one backend). Hash pools also count the
/// request's key for the watch.
///
/// [`SAMPLE_EVERY`]: crate::runtime::SAMPLE_EVERY
/// [`SAMPLE_EVERY_UNHASHED`]: crate::runtime::SAMPLE_EVERY_UNHASHED
pub(crate) fn observe<B>(
    pool: &PoolRuntime,
    req: &Request<B>,
    peer: IpAddr,
    trusted: &[Cidr],
    key: Option<u64>,
) {
    observe_view(pool, &View { req, peer }, trusted, key, |client| {
        // HTTP/2 carries the host as `:authority`, in the URI: kept as a host header, so
        // the guard routes the sampled request by its host as the proxy did.
        let authority = match req.headers().contains_key(http::header::HOST) {
            true => None,
            false => req
                .uri()
                .authority()
                .map(|a| ("host", a.as_str().as_bytes())),
        };
        // First, so that the 1 KiB the sample keeps of the headers always has it.
        let headers = authority.into_iter().chain(
            req.headers()
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes())),
        );
        SampledRequest::new(client, req.uri().path(), req.uri().query(), headers)
    });
}

/// [`observe`] for any request view; `sample` makes the sampled request for the client
/// address key extraction believes (called for 1 request in [`SAMPLE_EVERY`], or in
/// `SAMPLE_EVERY_UNHASHED` when the pool does not hash).
///
/// [`SAMPLE_EVERY`]: crate::runtime::SAMPLE_EVERY
pub(crate) fn observe_view(
    pool: &PoolRuntime,
    view: &impl RequestView,
    trusted: &[Cidr],
    key: Option<u64>,
    sample: impl FnOnce(IpAddr) -> SampledRequest,
) {
    // One draw decides both samples: its low bits the key sketches', its high bits the
    // request sample's, so the two stay independent.
    let draw = crate::rng::next_u64();
    let hashes = pool.cfg.hashing.is_some();
    if hashes {
        pool.shared.keys.observe(key, draw);
    }
    let (every, cap) = match hashes {
        true => (crate::runtime::SAMPLE_EVERY, crate::runtime::SAMPLE_CAP),
        false => (
            crate::runtime::SAMPLE_EVERY_UNHASHED,
            crate::runtime::SAMPLE_CAP_UNHASHED,
        ),
    };
    // Both are powers of two: a mask, not a division.
    if (draw >> 32) & (every - 1) != 0 {
        return;
    }
    let client = client_address(view, trusted);
    pool.shared.requests.offer(sample(client), cap);
}

/// The hash of the pool's key for this request; `None` when the pool does not hash or
/// the request lacks the key (the selector then applies `on_missing_key`). `trusted` is
/// the listener's trusted proxies, taken once per connection.
pub(crate) fn extract<B>(
    pool: &PoolRuntime,
    req: &Request<B>,
    peer: IpAddr,
    trusted: &[Cidr],
) -> Option<u64> {
    extract_view(pool, &View { req, peer }, trusted)
}

/// [`extract`] for any request view.
pub(crate) fn extract_view(
    pool: &PoolRuntime,
    view: &impl RequestView,
    trusted: &[Cidr],
) -> Option<u64> {
    let h = pool.cfg.hashing.as_ref()?;
    key_hash(&h.key, view, trusted)
}

struct Env<'a> {
    pool: &'a PoolRuntime,
    tried: &'a Tried,
    now_ms: u64,
    now_ns: u64,
    panic: bool,
}

impl PickEnv for Env<'_> {
    fn eligible(&self, i: usize) -> bool {
        admissible(self.pool, self.tried, self.panic, i) && !at_cap(self.pool, i)
    }

    fn weight_factor(&self, i: usize) -> f64 {
        // In panic mode every backend takes its full share, unhealthy ones included: a
        // backend ramping up after it came back must not take less than those still down.
        if self.panic {
            return 1.0;
        }
        self.pool.slow_start(i, self.now_ms)
    }

    fn in_flight(&self, i: usize) -> u64 {
        self.pool.backends[i].in_flight()
    }

    fn latency(&self, i: usize) -> f64 {
        self.pool.backends[i]
            .ewma
            .get(self.now_ns, self.pool.cfg.ewma_decay)
    }

    fn random(&self) -> u64 {
        crate::rng::next_u64()
    }

    fn retrying(&self) -> bool {
        !self.tried.is_empty()
    }
}

/// Whether some backend this request has not tried would be eligible but for its
/// `max_in_flight` (asked only when nothing was eligible, to say why).
pub(crate) fn full(pool: &PoolRuntime, tried: &Tried) -> bool {
    let panic = pool.shared.panic();
    (0..pool.backends.len()).any(|i| {
        pool.cfg.backends[i].weight > 0 && admissible(pool, tried, panic, i) && at_cap(pool, i)
    })
}

/// Whether backend `i` may take this request, its `max_in_flight` aside: not tried yet,
/// and in rotation (or the pool is in panic mode).
fn admissible(pool: &PoolRuntime, tried: &Tried, panic: bool, i: usize) -> bool {
    !tried.contains(i) && (panic || pool.backends[i].available())
}

/// Whether backend `i` holds as many requests as its `max_in_flight` allows.
fn at_cap(pool: &PoolRuntime, i: usize) -> bool {
    pool.cfg.backends[i]
        .max_in_flight
        .is_some_and(|cap| pool.backends[i].in_flight() >= u64::from(cap))
}

/// The backend for a request (and the bounded-load cap the pick holds it to).
pub(crate) fn pick(rt: &Runtime, pool: &PoolRuntime, key: Option<u64>, tried: &Tried) -> Placement {
    // Only slow start and peak EWMA read the clock.
    let now = if pool.cfg.slow_start.is_some() || pool.cfg.policy == PolicyKind::PeakEwma {
        rt.elapsed()
    } else {
        Duration::ZERO
    };
    let env = Env {
        pool,
        tried,
        now_ms: now.as_millis() as u64,
        now_ns: now.as_nanos() as u64,
        panic: pool.shared.panic(),
    };
    pool.selector.place(key, &env)
}

/// Where a key would go now (for naming the backend a hot key lands on).
pub(crate) fn pick_for_key(pool: &PoolRuntime, key: u64, now: Duration) -> Pick {
    let tried = Tried::default();
    let env = Env {
        pool,
        tried: &tried,
        now_ms: now.as_millis() as u64,
        now_ns: now.as_nanos() as u64,
        panic: pool.shared.panic(),
    };
    pool.selector.pick(Some(key), &env)
}
