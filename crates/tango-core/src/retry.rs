//! Retries: after a try of a request fails, whether it is tried again, on which
//! backends, and whether that retry spends from the pool's retry budget.
//!
//! [`Retry`] is a state machine the proxy drives: it reports each failed try's
//! [`Outcome`] and is told the next [`Step`]. Picking a backend, the budget's tokens and
//! the clock stay with the caller; this module only decides.
//!
//! The policy, per request:
//!
//! - **At most `max_attempts` counted attempts**, each on a backend this request has
//!   not tried ([`Retry::tried`] is handed to the picker).
//! - **Not sent** (connect failed): counts an attempt, and the request is retried
//!   elsewhere whatever its method or body. Nothing reached a backend, so the retry adds
//!   no load and spends no budget.
//! - **At its cap** (`max_connections` or `max_in_flight`, found full when the try took
//!   its place): skipped as the picker skips a full backend it can see, so it costs no
//!   attempt; it stays excluded, and the request goes on to the others. Each backend is
//!   skipped at most once, so this is bounded by the pool's size. Otherwise a request
//!   could spend its attempts on full backends and be refused while another had room.
//! - **Sent, then failed** (reset before a response head, or a response head tango
//!   cannot forward: malformed, or a `101` the request did not ask for): retried only
//!   when the request may be sent twice (the caller says so: an idempotent method, no body, no protocol
//!   upgrade). Such a retry re-sends a request a backend already received, so the next
//!   try spends one token of the retry budget, once, however many tries that retry
//!   then takes; when the budget has none, the request ends with the failure.
//! - **Timed out**: never retried. The backend may still be working on the request.
//! - **Over-loaded** (bounded load: the backend's last place under the cap the pick held
//!   it to went to another request between the pick and the count): nothing was sent and
//!   the backend is not at fault, so it costs no attempt, no budget and no failure; it is
//!   released, and the next pick reads the counts as they are then, walking past it as
//!   it walks past any over-loaded backend. Up to [`MAX_OVER_LOADED`] times per request;
//!   past that, each such backend is skipped as a full one is, so the request still ends
//!   within the pool's size.
//! - **Stale pooled connection** (the backend had closed it before the request was
//!   written): not the backend's fault, so it costs no attempt and no budget, up to
//!   [`MAX_STALE_RETRIES`] times per request; the stale backend may be picked again, but
//!   every backend that failed this request stays excluded. Past that bound a stale
//!   connection counts as a failed connect.
//! - **Giving up** answers with the last counted try's failure; when no backend could be
//!   tried at all, with [`Failure::AtCapacity`] if some were full, otherwise
//!   [`Failure::NoneEligible`].

/// Stale pooled connections retried per request without counting an attempt.
pub const MAX_STALE_RETRIES: u32 = 3;

/// Over-loaded backends released per request for the next pick to weigh again. Each one
/// is a place another worker took within the moment between a pick and its count, so
/// the bound is never reached but under contention no pool sees.
pub const MAX_OVER_LOADED: u32 = 8;

/// Why a request could not be answered by a backend, as the client is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No backend could be picked (none eligible, every one tried).
    NoneEligible,
    /// The picked backend had no connection to spare (`max_connections`).
    AtCapacity,
    /// Connecting to the backend failed.
    Connect,
    /// The backend closed or reset the connection before answering.
    Reset,
    /// The backend answered with a head tango cannot forward (malformed, or a `101`
    /// the request did not ask for). Retried as a reset is: the backend had the
    /// request, so only a request that may be sent twice goes elsewhere.
    BadResponse,
    /// No answer in time, or no time left for another try.
    Timeout,
}

/// How a try that brought back no response ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The request never reached the backend (connect failed; at capacity, which costs
    /// no attempt).
    NotSent(Failure),
    /// A pooled connection turned out closed before the request was written.
    Stale,
    /// The request was sent, then the connection failed.
    SentFailed(Failure),
    /// The try timed out after the request was sent.
    TimedOut,
    /// Nothing was sent: the backend held as many requests as the bounded-load cap the
    /// pick held it to when the request was to be counted in (another request took its
    /// last place after the pick read the counts).
    OverLoaded,
}

/// What the caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Pick a backend outside [`Retry::tried`] and call [`Retry::send`] with it.
    Pick,
    /// Stop trying: answer with this failure.
    GiveUp(Failure),
}

/// What the caller must know before it sends a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Send {
    /// This try re-sends a request a backend already received: withdraw one token from
    /// the pool's retry budget first, and call [`Retry::budget_refused`] instead of
    /// sending when there is none.
    pub spend_budget: bool,
    /// A failure after this send may lead to sending the request again, so the caller
    /// must keep what it needs to rebuild it; when `false`, the request may be moved
    /// into this try.
    pub may_resend: bool,
}

/// The backends a request has tried and not been released from, so that a retry goes
/// elsewhere. Indexes are positions in the pool's backend list; the first 128 are a bit
/// set, so the usual pool never allocates.
#[derive(Debug, Default, Clone)]
pub struct Tried {
    low: u128,
    high: Vec<usize>,
}

impl Tried {
    /// Whether backend `i` is excluded from this request's picks.
    pub fn contains(&self, i: usize) -> bool {
        if i < 128 {
            self.low & (1 << i) != 0
        } else {
            self.high.contains(&i)
        }
    }

    /// Whether no backend is excluded (the request's first pick, or a retry after a
    /// stale connection only).
    pub fn is_empty(&self) -> bool {
        self.low == 0 && self.high.is_empty()
    }

    pub(crate) fn insert(&mut self, i: usize) {
        if i < 128 {
            self.low |= 1 << i;
        } else if !self.high.contains(&i) {
            self.high.push(i);
        }
    }

    pub(crate) fn remove(&mut self, i: usize) {
        if i < 128 {
            self.low &= !(1 << i);
        } else {
            self.high.retain(|&j| j != i);
        }
    }
}

/// One request's retry state. See the module documentation for the policy.
#[derive(Debug, Clone)]
pub struct Retry {
    max_attempts: u32,
    resendable: bool,
    attempts: u32,
    stale: u32,
    over_loaded: u32,
    tried: Tried,
    /// The backend of the try in progress.
    current: Option<usize>,
    /// A sent try failed and the next send re-sends the request: it spends the budget.
    spend_owed: bool,
    last: Option<Failure>,
}

impl Retry {
    /// A request allowed `max_attempts` counted attempts (at least one). `resendable`:
    /// the request may be sent twice (idempotent method, no body, no upgrade).
    pub fn new(max_attempts: u32, resendable: bool) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            resendable,
            attempts: 0,
            stale: 0,
            over_loaded: 0,
            tried: Tried::default(),
            current: None,
            spend_owed: false,
            last: None,
        }
    }

    /// The backends the next pick must skip.
    pub fn tried(&self) -> &Tried {
        &self.tried
    }

    /// Attempts counted so far (stale connections within their bound are not).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The caller picked `backend` and is about to try it.
    pub fn send(&mut self, backend: usize) -> Send {
        debug_assert!(
            !self.tried.contains(backend),
            "picked a backend already tried"
        );
        self.tried.insert(backend);
        self.current = Some(backend);
        Send {
            spend_budget: std::mem::take(&mut self.spend_owed),
            may_resend: self.resendable && self.attempts + 1 < self.max_attempts,
        }
    }

    /// How the try started by the last [`send`](Self::send) failed; the next step.
    pub fn record(&mut self, outcome: Outcome) -> Step {
        let backend = self.current.take();
        match outcome {
            Outcome::TimedOut => Step::GiveUp(Failure::Timeout),
            Outcome::Stale if self.stale < MAX_STALE_RETRIES => {
                self.stale += 1;
                // Only the stale backend is released: those that failed stay excluded.
                if let Some(b) = backend {
                    self.tried.remove(b);
                }
                Step::Pick
            }
            Outcome::Stale => self.count(Failure::Connect),
            Outcome::OverLoaded if self.over_loaded < MAX_OVER_LOADED => {
                self.over_loaded += 1;
                // Released: the next pick sees its count and walks past it, or takes it
                // again if a place came free meanwhile, as the policy would.
                if let Some(b) = backend {
                    self.tried.remove(b);
                }
                Step::Pick
            }
            Outcome::NotSent(Failure::AtCapacity) | Outcome::OverLoaded => {
                // The backend stays in `tried`: the next pick goes to another.
                self.last.get_or_insert(Failure::AtCapacity);
                Step::Pick
            }
            Outcome::NotSent(f) => self.count(f),
            Outcome::SentFailed(f) if !self.resendable => {
                self.last = Some(f);
                self.attempts += 1;
                Step::GiveUp(f)
            }
            Outcome::SentFailed(f) => {
                self.spend_owed = true;
                self.count(f)
            }
        }
    }

    /// No backend could be picked: the failure to answer with.
    pub fn none_eligible(&self) -> Failure {
        self.last.unwrap_or(Failure::NoneEligible)
    }

    /// The budget had no token for the re-send [`send`](Self::send) asked to spend it
    /// on: the failure to answer with.
    pub fn budget_refused(&self) -> Failure {
        self.last.unwrap_or(Failure::NoneEligible)
    }

    /// The request's deadline passed before another try: the failure to answer with.
    pub fn out_of_time(&self) -> Failure {
        Failure::Timeout
    }

    fn count(&mut self, f: Failure) -> Step {
        self.last = Some(f);
        self.attempts += 1;
        if self.attempts >= self.max_attempts {
            Step::GiveUp(f)
        } else {
            Step::Pick
        }
    }
}

#[cfg(test)]
mod tests;
