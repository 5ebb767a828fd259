//! Rolling a reload back: when the canary blames an alert on its reload, the
//! configuration before it comes back as a new generation.
//!
//! A rollback fails when tango is draining or when another reload has been applied
//! since: neither passes, so neither is tried again. It also fails when a listener the
//! previous configuration has, and the rolled-back one dropped or moved, cannot be
//! bound again (another process took its address meanwhile) or its certificate cannot
//! be read (the file is being replaced). That may pass, so it is tried again every watch
//! tick for as long as the canary could have lasted (`LONGEST_WINDOWS` windows). The
//! first failure and the last (given up) are journaled as `config_rollback_failed`.

use super::Control;
use crate::control::canary::{Armed, Seen};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tango_core::detector::Evidence;
use tango_core::guard::canary::LONGEST_WINDOWS;
use tango_core::journal::{summarize_changes, EventKind, SuspectedCause};

/// Why a rollback failed, and whether trying again may succeed.
pub(crate) struct Failure {
    reason: String,
    transient: bool,
}

impl Failure {
    fn lasting(reason: String) -> Self {
        Failure {
            reason,
            transient: false,
        }
    }
}

/// A rollback to try again.
pub(crate) struct Retry {
    armed: Armed,
    evidence: Vec<Evidence>,
    /// The cause the alert that called for it was given.
    cause: SuspectedCause,
    attempts: u32,
    /// Unix milliseconds after which it is given up.
    until_ms: u64,
}

/// A retried rollback that went through: the alert that called for it, its cause, and
/// the clause its incident ends with.
pub(crate) struct Retried {
    pub(crate) evidence: Evidence,
    pub(crate) cause: SuspectedCause,
    pub(crate) clause: String,
}

impl Control {
    /// Put the configuration before `armed`'s reload back, as a new generation, because
    /// of `evidence`. Refused when another reload has happened since.
    async fn rollback(&self, armed: &Armed, evidence: Vec<Evidence>) -> Result<u64, Failure> {
        let mut listeners = self.listeners.lock().await;
        if listeners.draining() {
            return Err(Failure::lasting(
                crate::control::guard::SHUTTING_DOWN.to_string(),
            ));
        }
        let cur = self.rt.snapshot.load_full();
        if cur.generation != armed.canary.generation {
            return Err(Failure::lasting(format!(
                "generation {} is in force now",
                cur.generation
            )));
        }
        let prev = &armed.previous;
        let bound = listeners.prepare(&prev.config).await.map_err(|e| Failure {
            reason: format!("{e:#}"),
            transient: true,
        })?;
        let generation = cur.generation + 1;
        let changes = summarize_changes(&cur.config, &prev.config);
        let snap = self
            .rt
            .build((*prev.config).clone(), &prev.text, generation);
        let changed: Vec<String> = armed.canary.pools.iter().map(|p| p.pool.clone()).collect();
        self.watch
            .expect(generation, armed.restore.clone(), &changed);
        self.forced.restore(armed.forced.clone());
        self.rt.snapshot.store(Arc::new(snap));
        listeners.commit(bound);
        self.journal.set_generation(generation);
        self.reloads.rollbacks.fetch_add(1, Relaxed);
        tracing::warn!(
            from = cur.generation,
            to = prev.generation,
            generation,
            "configuration rolled back: generation {} caused an alert in its canary; generation {}'s configuration is in force again as generation {generation}",
            cur.generation,
            prev.generation
        );
        self.journal.record(EventKind::ConfigRolledBack {
            from_generation: cur.generation,
            to_generation: prev.generation,
            content_hash: super::content_hash(&prev.text),
            changes,
            evidence,
        });
        self.recheck_panic();
        Ok(generation)
    }

    /// Called for every alert the watch fires. When the armed canary blames it on its
    /// reload, roll back and return the clause the alert should end with.
    pub(crate) async fn on_alert(
        &self,
        evidence: &Evidence,
        cause: &SuspectedCause,
        now_ms: u64,
    ) -> Option<String> {
        let armed = self.canary.blames(evidence, cause, now_ms)?;
        let to = armed.previous.generation;
        let evidence = vec![evidence.clone()];
        let f = match self.rollback(&armed, evidence.clone()).await {
            Ok(now) => {
                return Some(format!(
                    "rolled back to generation {to} (now generation {now})"
                ))
            }
            Err(f) => f,
        };
        self.rollback_failed(&armed, &evidence, &f.reason, 1, f.transient);
        let clause = format!("rolling back to generation {to} failed: {}", f.reason);
        if !f.transient {
            return Some(clause);
        }
        let until_ms = now_ms + armed.window_ms * LONGEST_WINDOWS;
        *self.retry.lock().unwrap_or_else(|p| p.into_inner()) = Some(Retry {
            armed,
            evidence,
            cause: cause.clone(),
            attempts: 1,
            until_ms,
        });
        Some(clause + "; retrying")
    }

    /// Once a watch tick, after its alerts: the canary counts the tick's requests and
    /// may close, and a rollback that failed for a cause that may pass is tried again.
    /// Returns a retried rollback that went through, for the alert's incident to say so.
    pub(crate) async fn canary_tick(&self, now_ms: u64, seen: &[Seen]) -> Option<Retried> {
        self.canary.tick(&self.journal, now_ms, seen);
        let retry = self.retry.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut r = retry?;
        r.attempts += 1;
        match self.rollback(&r.armed, r.evidence.clone()).await {
            Ok(now) => {
                let to = r.armed.previous.generation;
                return Some(Retried {
                    evidence: r.evidence.into_iter().next()?,
                    cause: r.cause,
                    clause: format!("rolled back to generation {to} (now generation {now})"),
                });
            }
            Err(f) if f.transient && now_ms <= r.until_ms => {
                tracing::debug!(attempt = r.attempts, "rollback failed again: {}", f.reason);
                self.reloads.rollback_failures.fetch_add(1, Relaxed);
                *self.retry.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            }
            Err(f) => self.rollback_failed(&r.armed, &r.evidence, &f.reason, r.attempts, false),
        }
        None
    }

    /// A failed rollback the operator must hear of: logged, counted and journaled.
    fn rollback_failed(
        &self,
        armed: &Armed,
        evidence: &[Evidence],
        reason: &str,
        attempts: u32,
        retrying: bool,
    ) {
        let (from, to) = (armed.canary.generation, armed.previous.generation);
        self.reloads.rollback_failures.fetch_add(1, Relaxed);
        let then = match retrying {
            true => "trying again every second",
            false => "given up; the configuration in force stays",
        };
        tracing::error!(
            from,
            to,
            attempts,
            "rolling generation {from} back to generation {to} failed: {reason}; {then}"
        );
        self.journal.record(EventKind::ConfigRollbackFailed {
            from_generation: from,
            to_generation: to,
            reason: reason.to_string(),
            attempts,
            retrying,
            evidence: evidence.to_vec(),
        });
    }
}
