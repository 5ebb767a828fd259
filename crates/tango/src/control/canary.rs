//! The canary after an applied reload: armed by the reload (the pools it changed, the
//! configuration before it) and consulted for every alert the watch fires. When
//! tango-core says the alert is the reload's doing, the canary is disarmed and handed
//! back, and `Control::on_alert` puts the previous configuration back. A window that
//! closes quietly is journaled as passed.

use crate::control::watch::state::Expectations;
use crate::journal::Sink;
use std::sync::{Arc, Mutex};
use tango_core::config::Config;
use tango_core::detector::Evidence;
use tango_core::guard::canary::Canary;
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
