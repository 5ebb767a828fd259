//! Every default of the configuration file, in one place: the value a key takes when
//! the file leaves it out. Grouped by the table the key belongs to, as in
//! docs/configuration.md, which a test holds to these values.
//!
//! Keys whose default is "off" or "none" (`slow_start`, `max_load_factor`, a backend's
//! caps, `tls`, `proxy_protocol`, `send_proxy_protocol`) have no constant: the model
//! holds them as `Option`.

use super::model::Guard;

/// `[admin]`.
pub mod admin {
    /// `listen`: the admin API on loopback.
    pub const LISTEN: &str = "127.0.0.1:9901";
    /// `journal_max_bytes`: the journal file's size before it rotates.
    pub const JOURNAL_MAX_BYTES: u64 = 16 << 20;
    /// The smallest `journal_max_bytes`: below it the file would rotate at nearly every
    /// event, and keep almost no history on disk.
    pub const JOURNAL_MIN_BYTES: u64 = 4096;
}

/// `[[listener]]`. `first_byte_timeout` defaults to the listener's `header_timeout`.
pub mod listener {
    use std::time::Duration;

    /// `header_timeout`: time for a request head, from its first byte.
    pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    /// `idle_timeout`: a keep-alive client connection with nothing in progress.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
    /// `request_timeout`: a whole request, all tries included.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
    /// `send_timeout`: a write to the client that makes no progress (as nginx's).
    pub const SEND_TIMEOUT: Duration = Duration::from_secs(60);
    /// `max_connections`: open client connections.
    pub const MAX_CONNECTIONS: usize = 10_000;
    /// `max_header_bytes`: the largest request head.
    pub const MAX_HEADER_BYTES: usize = 64 << 10;
}

/// `[[pool]]`.
pub mod pool {
    use crate::config::PolicyKind;
    use std::time::Duration;

    /// `policy`.
    pub const POLICY: PolicyKind = PolicyKind::RoundRobin;
    /// `ring_points`: ring points per unit of weight; the smallest power of two keeping
    /// ten equal backends' largest key share within 1.10x the mean over every address
    /// set tested (1.065x worst).
    pub const RING_POINTS: u32 = 1024;
    /// `ewma_decay`: peak EWMA's time constant.
    pub const EWMA_DECAY: Duration = Duration::from_secs(10);
    /// `connect_timeout`: per connection attempt.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
    /// `try_timeout`: per try, until the response head.
    pub const TRY_TIMEOUT: Duration = Duration::from_secs(15);
    /// `timeout`: all tries of one request.
    pub const TIMEOUT: Duration = Duration::from_secs(30);
    /// `idle_timeout`: pooled upstream connections; below common backend keep-alives.
    pub const IDLE_TIMEOUT: Duration = Duration::from_secs(50);
    /// `max_attempts`: tries per request.
    pub const MAX_ATTEMPTS: u32 = 2;
    /// `retry_budget`: re-sends of received requests, as a fraction of requests.
    pub const RETRY_BUDGET: f64 = 0.2;
    /// `panic_threshold`: the eligible fraction below which every backend is used.
    pub const PANIC_THRESHOLD: f64 = 0.5;
    /// `protocol`: what every backend speaks unless the file says otherwise.
    pub const PROTOCOL: crate::config::UpstreamProtocol = crate::config::UpstreamProtocol::Http1;
}

/// `[pool.tls]`, once the table is present.
pub mod pool_tls {
    /// `verify`: the backend's certificate is verified.
    pub const VERIFY: bool = true;
}

/// `[route.redirect]`.
pub mod redirect {
    /// `status`: a temporary redirect, which browsers do not cache, so a mistake is
    /// undone by fixing the file (HAProxy's default too).
    pub const STATUS: u16 = 302;
}

/// `[pool.health]`, once the section is present.
pub mod health {
    use crate::config::HealthKind;
    use std::time::Duration;

    /// `kind`.
    pub const KIND: HealthKind = HealthKind::Http;
    /// `path`.
    pub const PATH: &str = "/";
    /// `service`: a gRPC check asks about the server as a whole.
    pub const SERVICE: &str = "";
    /// `method`.
    pub const METHOD: &str = "GET";
    /// `expect`: the statuses that count as healthy, inclusive.
    pub const EXPECT: (u16, u16) = (200, 399);
    /// `interval`: probe period.
    pub const INTERVAL: Duration = Duration::from_secs(5);
    /// `timeout`: probe limit.
    pub const TIMEOUT: Duration = Duration::from_secs(2);
    /// `jitter`: fraction of the interval added or removed at random.
    pub const JITTER: f64 = 0.1;
    /// `rise`: passes in a row to come back.
    pub const RISE: u32 = 2;
    /// `fall`: failures in a row to go down.
    pub const FALL: u32 = 3;
}

/// `[pool.outlier]`, once the section is present.
pub mod outlier {
    use std::time::Duration;

    /// `consecutive_failures`: failures in a row that eject a backend.
    pub const CONSECUTIVE_FAILURES: u32 = 5;
    /// `base_ejection`: the first ejection's length.
    pub const BASE_EJECTION: Duration = Duration::from_secs(30);
    /// `max_ejection`: the cap on an ejection's length.
    pub const MAX_EJECTION: Duration = Duration::from_secs(300);
    /// `max_ejected_percent`: the most of a pool ejected at once.
    pub const MAX_EJECTED_PERCENT: f64 = 50.0;
}

/// `[[pool.backend]]`.
pub mod backend {
    /// `weight`.
    pub const WEIGHT: u32 = 1;
}

/// `[guard]`.
pub mod guard {
    use std::time::Duration;

    /// `enabled`: reloads are judged.
    pub const ENABLED: bool = true;
    /// `max_shift`: points a backend's predicted share may move in a reload.
    pub const MAX_SHIFT_POINTS: f64 = 10.0;
    /// `canary`: how long a reload's pools are watched for an alert it caused.
    pub const CANARY: Duration = Duration::from_secs(30);
    /// `rollback`: such an alert restores the previous configuration.
    pub const ROLLBACK: bool = true;
    /// `noise_sigmas`: standard errors a move predicted from sampled requests must clear
    /// beyond `max_shift`. At 2, a backend whose true move is exactly the limit is
    /// refused at most about once in 40 reloads, one that does not move practically
    /// never.
    pub const NOISE_SIGMAS: f64 = 2.0;
    /// `min_sample`: sampled requests a hash pool's prediction is read from. Fewer pin no
    /// backend's share to within 5 points (two standard errors of a 50% share): below
    /// it the split shown, judged and expected by the watch is the key space's, unless
    /// the sample shows a shift over the limit beyond its noise.
    pub const MIN_SAMPLE: usize = 400;
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            enabled: guard::ENABLED,
            max_shift_points: guard::MAX_SHIFT_POINTS,
            canary: guard::CANARY,
            rollback: guard::ROLLBACK,
            noise_sigmas: guard::NOISE_SIGMAS,
            min_sample: guard::MIN_SAMPLE,
            allow_shift: Vec::new(),
        }
    }
}

/// The admin listener's default address, parsed.
pub(crate) fn admin_listen() -> std::net::SocketAddr {
    admin::LISTEN.parse().expect("a constant address")
}
