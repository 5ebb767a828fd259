//! The canary after an applied reload, as the watch runs it: armed by the reload (the
//! pools it changed, the configuration before it), consulted for every alert the watch
//! fires, and when tango-core says the alert is the reload's doing, the previous
//! configuration comes back through `Control::rollback`. A window that closes quietly is
//! journaled as passed.

use crate::control::server::Control;
use crate::control::watch::WatchState;
use crate::journal::Sink;
use std::sync::{Arc, Weak};
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

/// Each backend's expected share of a pool, by name.
pub(crate) type Split = Vec<(String, f64)>;
/// Per pool, a split the watch's shift detector should expect.
pub(crate) type Expectations = Vec<(String, Split)>;

/// A canary waiting for its window to close.
pub(crate) struct Armed {
    pub(crate) canary: Canary,
    pub(crate) window_ms: u64,
    pub(crate) previous: Previous,
    /// What the shift detector should expect again after a rollback: the previous split
    /// of the pools whose new split it was told to expect.
    pub(crate) restore: Expectations,
    pub(crate) control: Weak<Control>,
}

/// Arm a canary; it replaces any earlier one (a newer reload is what is watched now).
pub(crate) fn arm(state: &WatchState, armed: Armed) {
    *state.canary.lock().unwrap_or_else(|p| p.into_inner()) = Some(armed);
}

/// Called for every alert fired. When the armed canary blames it on its reload, roll
/// back and return the clause the alert should end with.
pub(crate) async fn on_alert(
    state: &WatchState,
    evidence: &Evidence,
    cause: &SuspectedCause,
    now_ms: u64,
) -> Option<String> {
    let armed = {
        let mut c = state.canary.lock().unwrap_or_else(|p| p.into_inner());
        if !c.as_ref()?.canary.caused(evidence, cause, now_ms) {
            return None;
        }
        c.take()?
    };
    let control = armed.control.upgrade()?;
    let to = armed.previous.generation;
    Some(
        match control.rollback(&armed, vec![evidence.clone()]).await {
            Ok(now) => format!("rolled back to generation {to} (now generation {now})"),
            Err(e) => format!("rolling back to generation {to} failed: {e}"),
        },
    )
}

/// Journal the canary as passed once its window has closed.
pub(crate) fn expire(state: &WatchState, journal: &Sink, now_ms: u64) {
    let armed = {
        let mut c = state.canary.lock().unwrap_or_else(|p| p.into_inner());
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
