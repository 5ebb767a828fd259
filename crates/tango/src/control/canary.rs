//! The canary after an applied reload: armed by the reload (the pools it changed, the
//! configuration before it) and consulted for every alert the watch fires. When
//! tango-core says the alert is the reload's doing, the canary is disarmed and handed
//! back, and `Control::on_alert` puts the previous configuration back. A window that
//! closes quietly, with the requests to judge the pools it watches, is journaled as
//! passed; short of them it stays open (journaled as extended) up to its longest, and
//! ends unjudged. Also the pools whose split in force was forced past the guard, which
//! no later reload may have the watch expect.

use crate::control::watch::state::Expectations;
use crate::journal::Sink;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tango_core::config::Config;
use tango_core::detector::Evidence;
use tango_core::guard::canary::{requests_to_judge, Canary, Standing};
use tango_core::guard::Judgement;
use tango_core::journal::{CanaryTraffic, EventKind, SuspectedCause};

/// The configuration a rollback restores.
#[derive(Debug, Clone)]
pub(crate) struct Previous {
    pub(crate) config: Arc<Config>,
    pub(crate) text: Arc<str>,
    pub(crate) generation: u64,
}

/// A canary waiting for its window to close.
pub(crate) struct Armed {
    pub(crate) canary: Canary,
    pub(crate) window_ms: u64,
    pub(crate) previous: Previous,
    /// What the shift detector should expect again after a rollback: the previous split
    /// of the pools whose new split it was told to expect.
    pub(crate) restore: Expectations,
    /// The pools whose split was forced before the reload.
    pub(crate) forced: HashSet<String>,
    /// Each of the canary's pools' requests (tries) since the reload, and the requests
    /// the detector needs to judge it as of the last tick.
    pub(crate) traffic: Vec<CanaryTraffic>,
    /// The watch's tick that straddles the reload is not counted: part of it was before.
    pub(crate) straddled: bool,
    /// Whether its extension was journaled.
    pub(crate) extended: bool,
}

impl Armed {
    pub(crate) fn new(
        canary: Canary,
        window_ms: u64,
        previous: Previous,
        restore: Expectations,
        forced: HashSet<String>,
    ) -> Self {
        let traffic = canary
            .pools
            .iter()
            .map(|p| CanaryTraffic {
                pool: p.pool.clone(),
                requests: 0,
                needed: 0,
            })
            .collect();
        Armed {
            canary,
            window_ms,
            previous,
            restore,
            forced,
            traffic,
            straddled: false,
            extended: false,
        }
    }

    /// Count one watch tick's requests of each pool; `floor` is the least expected
    /// count the pool's shift detector needs in a window now.
    fn count(&mut self, seen: &[Seen]) {
        let whole = std::mem::replace(&mut self.straddled, true);
        for ((t, p), share) in self
            .traffic
            .iter_mut()
            .zip(&self.canary.pools)
            .zip(&self.canary.shares)
        {
            if let Some(s) = seen.iter().find(|s| s.pool == p.pool) {
                t.requests += if whole { s.requests } else { 0 };
                t.needed = requests_to_judge(*share, s.floor);
            }
        }
    }
}

/// One pool's watch tick, as the canary counts it.
pub(crate) struct Seen {
    pub(crate) pool: String,
    /// Requests (tries) in the tick.
    pub(crate) requests: u64,
    /// The least expected count in a window the share tests judge on now (the
    /// detector's `min_expected` times the pool's over-dispersion).
    pub(crate) floor: f64,
}

/// The armed canary, if any: only the last applied reload's is watched.
#[derive(Default)]
pub(crate) struct Slot(Mutex<Option<Armed>>);

impl Slot {
    /// Arm a canary; it replaces any earlier one (a newer reload is what is watched now).
    pub(crate) fn arm(&self, armed: Armed) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(armed);
    }

    /// Disarm it without a verdict: a newer reload that arms none (it changed no pool, or
    /// rollback is off) still replaces it, and the configuration it would restore is no
    /// longer the one before the configuration in force.
    pub(crate) fn clear(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// When the armed canary blames the alert on its reload, disarm it and hand it back
    /// for the rollback.
    pub(crate) fn blames(
        &self,
        evidence: &Evidence,
        cause: &SuspectedCause,
        now_ms: u64,
    ) -> Option<Armed> {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !c.as_ref()?.canary.caused(evidence, cause, now_ms) {
            return None;
        }
        c.take()
    }

    /// Count a watch tick's requests; once the window has passed, journal the canary as
    /// passed if its pools had the requests to judge, as extended (once) if not, and as
    /// ended unjudged once its longest window has passed.
    pub(crate) fn tick(&self, journal: &Sink, now_ms: u64, seen: &[Seen]) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(a) = c.as_mut() else { return };
        a.count(seen);
        match a.canary.standing(now_ms, &a.traffic) {
            Standing::Open => {}
            Standing::Extended(short) => {
                if !std::mem::replace(&mut a.extended, true) {
                    extended(journal, a, short);
                }
            }
            Standing::Passed => {
                if let Some(a) = c.take() {
                    passed(journal, &a, now_ms);
                }
            }
            Standing::NotJudged(short) => {
                if let Some(a) = c.take() {
                    not_judged(journal, &a, short, now_ms);
                }
            }
        }
    }
}

fn pool_names(a: &Armed) -> Vec<String> {
    a.canary.pools.iter().map(|p| p.pool.clone()).collect()
}

fn listed(short: &[CanaryTraffic]) -> String {
    short
        .iter()
        .map(CanaryTraffic::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

fn extended(journal: &Sink, a: &Armed, short: Vec<CanaryTraffic>) {
    tracing::info!(
        generation = a.canary.generation,
        "canary extended: too few requests to judge yet ({}); watching until {}",
        listed(&short),
        tango_core::journal::clock(a.canary.longest_until_ms)
    );
    journal.record(EventKind::CanaryExtended {
        traffic: short,
        window_ms: a.window_ms,
        until_ms: a.canary.longest_until_ms,
    });
}

fn passed(journal: &Sink, a: &Armed, now_ms: u64) {
    let pools = pool_names(a);
    tracing::info!(
        generation = a.canary.generation,
        pools = %pools.join(","),
        "canary passed: no alert caused by the reload"
    );
    journal.record(EventKind::CanaryPassed {
        pools,
        window_ms: match a.extended {
            true => watched_ms(a, now_ms),
            false => a.window_ms,
        },
    });
}

fn not_judged(journal: &Sink, a: &Armed, short: Vec<CanaryTraffic>, now_ms: u64) {
    let watched = watched_ms(a, now_ms);
    let reason = format!(
        "not enough traffic to judge: {} in {} s",
        listed(&short),
        watched / 1000
    );
    tracing::warn!(
        generation = a.canary.generation,
        "canary ended without judging the reload: {reason}; an alert it causes from now on is not rolled back"
    );
    journal.record(EventKind::CanaryEnded {
        pools: pool_names(a),
        window_ms: watched,
        traffic: short,
        reason,
    });
}

/// How long the canary watched: its window, or longer when it was extended.
fn watched_ms(a: &Armed, now_ms: u64) -> u64 {
    let armed_ms = a.canary.until_ms.saturating_sub(a.window_ms);
    now_ms.saturating_sub(armed_ms).max(a.window_ms)
}

/// The pools whose split in force was forced past the guard's shift gate: the watch
/// was not told to expect it. A later reload of such a pool is judged against that
/// forced split, so one that leaves it as it is (a timeout changed a second after the
/// forced typo) passes the gate; expecting its prediction would make the watch take
/// the typo for the intended split, and it would never alert. The pool stays
/// unexpected until a reload's shift is allowed (the operator saying the split is
/// intended) or a rollback puts the split before it back.
#[derive(Default)]
pub(crate) struct Forced(Mutex<HashSet<String>>);

impl Forced {
    /// The splits the watch may expect after the reload judged `j`; records the pools
    /// it forces.
    pub(crate) fn expectations(&self, j: &Judgement) -> Expectations {
        let mut forced = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for p in &j.pools {
            match (p.forced, p.allowed.is_some()) {
                (true, _) => forced.insert(p.pool.clone()),
                (false, true) => forced.remove(&p.pool),
                (false, false) => false,
            };
        }
        j.expectations()
            .into_iter()
            .filter(|(pool, _)| !forced.contains(pool))
            .collect()
    }

    /// The pools forced now, for a rollback to put back.
    pub(crate) fn snapshot(&self) -> HashSet<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A rollback put back the configuration before a reload, and with it the pools
    /// that were forced then.
    pub(crate) fn restore(&self, pools: HashSet<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = pools;
    }
}
