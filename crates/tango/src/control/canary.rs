//! The canary after an applied reload: armed by the reload (the pools it changed, the
//! configuration before it) and consulted for every alert the watch fires. When
//! tango-core says the alert is the reload's doing, the canary is disarmed and handed
//! back, and `Control::on_alert` puts the previous configuration back. A window that
//! closes quietly is journaled as passed. Also the pools whose split in force was
//! forced past the guard, which no later reload may have the watch expect.

use crate::control::watch::state::Expectations;
use crate::journal::Sink;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tango_core::config::Config;
use tango_core::detector::Evidence;
use tango_core::guard::canary::Canary;
use tango_core::guard::Judgement;
use tango_core::journal::{EventKind, SuspectedCause};

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

    /// Journal the canary as passed once its window has closed.
    pub(crate) fn expire(&self, journal: &Sink, now_ms: u64) {
        let armed = {
            let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match c.as_ref() {
                Some(a) if now_ms > a.canary.until_ms => c.take(),
                _ => None,
            }
        };
        let Some(a) = armed else { return };
        let pools: Vec<String> = a.canary.pools.iter().map(|p| p.pool.clone()).collect();
        tracing::info!(
            generation = a.canary.generation,
            pools = %pools.join(","),
            "canary passed: no alert caused by the reload"
        );
        journal.record(EventKind::CanaryPassed {
            pools,
            window_ms: a.window_ms,
        });
    }
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
