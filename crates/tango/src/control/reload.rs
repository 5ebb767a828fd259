//! The reload path: `Control` owns the configuration in force and applies a new file
//! (SIGHUP, `tango reload`, `POST /api/v1/reload`) whole or not at all, one at a time:
//! read and validate it, have the reload guard judge it, bind any new listener, build
//! and swap in the new snapshot, journal what changed, and arm the canary. When the
//! watch reports an alert the canary blames on the reload, `Control` rolls it back
//! (`reload/rollback.rs`).

mod rollback;

use crate::control::canary::{self, Armed, Previous};
use crate::control::guard::{Outcome, Verdict};
use crate::control::watch::state::WatchState;
use crate::journal::Sink;
use crate::proxy::listener::{BindError, Listeners};
use crate::runtime::{Runtime, Snapshot};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tango_core::config;
use tango_core::guard::canary::{judged_share, Canary, LONGEST_WINDOWS};
use tango_core::guard::{Judgement, Overrides};
use tango_core::journal::{summarize_changes, ConfigSource, EventKind};
use tokio::sync::Mutex;

/// Where a reload request came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReloadSource {
    Sighup,
    Api,
}

impl ReloadSource {
    fn journal(self) -> ConfigSource {
        match self {
            ReloadSource::Sighup => ConfigSource::Sighup,
            ReloadSource::Api => ConfigSource::Api,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReloadSource::Sighup => "sighup",
            ReloadSource::Api => "api",
        }
    }
}

/// Reload outcome counters, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ReloadStats {
    pub(crate) ok: AtomicU64,
    pub(crate) rejected: AtomicU64,
    /// Refused by the reload guard.
    pub(crate) refused: AtomicU64,
    /// Rolled back by their canary.
    pub(crate) rollbacks: AtomicU64,
    /// Rollbacks that failed, counting each attempt.
    pub(crate) rollback_failures: AtomicU64,
}

/// Owns the configuration lifecycle: applying a new file, refusing it, or rolling it
/// back.
pub(crate) struct Control {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) path: PathBuf,
    listeners: Mutex<Listeners>,
    pub(crate) reloads: Arc<ReloadStats>,
    pub(crate) journal: Sink,
    pub(crate) watch: Arc<WatchState>,
    /// The last applied reload's canary, until its window closes or it blames an alert
    /// on the reload.
    canary: canary::Slot,
    /// A rollback that failed for a cause that may pass, tried again every tick.
    retry: std::sync::Mutex<Option<rollback::Retry>>,
    /// The pools whose split in force was forced past the guard.
    forced: canary::Forced,
}

impl Control {
    pub(crate) fn new(
        rt: Arc<Runtime>,
        path: PathBuf,
        listeners: Listeners,
        journal: Sink,
        watch: Arc<WatchState>,
    ) -> Arc<Self> {
        Arc::new(Control {
            rt,
            path,
            listeners: Mutex::new(listeners),
            reloads: Arc::new(ReloadStats::default()),
            journal,
            watch,
            canary: canary::Slot::default(),
            retry: std::sync::Mutex::new(None),
            forced: canary::Forced::default(),
        })
    }

    /// Re-read the file; apply it whole or change nothing. The checklist runs on it, and
    /// the reload guard judges it (see `guard.rs`). Either way the journal records it.
    /// During the drain nothing is applied (`Verdict::ShuttingDown`).
    pub(crate) async fn reload(self: &Arc<Self>, source: ReloadSource, o: Overrides) -> Outcome {
        let mut listeners = self.listeners.lock().await;
        let out = match listeners.draining() {
            true => Outcome::shutting_down(self.rt.snapshot.load().generation),
            false => self.try_reload(&mut listeners, source, &o).await,
        };
        let (findings, predicted) = match &out.judgement {
            Some(j) => (j.finding_records(), j.predicted()),
            None => (Vec::new(), Vec::new()),
        };
        match out.verdict {
            Verdict::Applied => {
                self.reloads.ok.fetch_add(1, Relaxed);
                tracing::info!(
                    generation = out.generation,
                    source = source.as_str(),
                    "configuration applied"
                );
                return out;
            }
            // Not a rejected file: neither counted nor journaled as one.
            Verdict::ShuttingDown => {
                tracing::warn!(
                    source = source.as_str(),
                    generation = out.generation,
                    "{}",
                    crate::control::guard::SHUTTING_DOWN
                );
                return out;
            }
            Verdict::Rejected => {
                self.reloads.rejected.fetch_add(1, Relaxed);
                tracing::error!(
                    source = source.as_str(),
                    problems = out.errors.len(),
                    errors = %one_line_errors(&out.errors),
                    "configuration rejected; the previous one keeps serving"
                );
            }
            Verdict::Refused => {
                self.reloads.refused.fetch_add(1, Relaxed);
                let steps = out
                    .judgement
                    .as_ref()
                    .map(|j| j.next_steps())
                    .unwrap_or_default();
                tracing::error!(
                    source = source.as_str(),
                    generation = out.generation,
                    errors = %one_line_errors(&out.errors),
                    to_proceed = %steps.join("; "),
                    "reload refused by the guard; generation {} keeps serving",
                    out.generation
                );
            }
        }
        self.journal.record(EventKind::ConfigRejected {
            source: source.journal(),
            errors: out.errors.clone(),
            findings,
            predicted,
        });
        out
    }

    async fn try_reload(
        self: &Arc<Self>,
        listeners: &mut Listeners,
        source: ReloadSource,
        o: &Overrides,
    ) -> Outcome {
        let old = self.rt.snapshot.load_full();
        let (loaded, j) = match self.judge(&old, o).await {
            Ok(x) => x,
            Err(errors) => return Outcome::rejected(old.generation, errors),
        };
        crate::control::guard::log_findings(&j.finding_records());
        if j.refused() {
            return Outcome::refused(old.generation, j);
        }
        let hash = content_hash(&loaded.source.text);
        let new = loaded.config;
        if new.admin != old.config.admin {
            tracing::warn!("changes to [admin] take effect on restart");
        }
        let bound = match listeners.prepare(&new).await {
            Ok(b) => b,
            Err(e) => {
                let error = bind_error(&loaded.source, &loaded.file, &new, &e);
                return Outcome::rejected(old.generation, vec![error]);
            }
        };
        // The drain may have begun while the file was judged and the listeners bound:
        // the new sockets are closed unused rather than started only to stop.
        if listeners.draining() {
            return Outcome::shutting_down(old.generation);
        }
        let generation = old.generation + 1;
        let changes = summarize_changes(&old.config, &new);
        let shares = j
            .scope
            .iter()
            .map(|p| judged_share(&old.config, &new, p))
            .collect();
        let snap = self.rt.build(new, &loaded.source.text, generation);
        let canary = self.arm_canary(&old, shares, &j, generation);
        self.rt.snapshot.store(Arc::new(snap));
        listeners.commit(bound);
        self.journal.set_generation(generation);
        for c in &changes {
            tracing::info!(generation, "change: {}", c.describe());
        }
        for line in j.overrides() {
            tracing::warn!(generation, "override: {line}");
        }
        self.journal.record(EventKind::ConfigApplied {
            content_hash: hash,
            source: source.journal(),
            changes,
            findings: j.finding_records(),
            predicted: j.predicted(),
            overrides: j.overrides(),
        });
        self.recheck_panic();
        Outcome {
            verdict: Verdict::Applied,
            generation,
            errors: Vec::new(),
            judgement: Some(j),
            canary,
        }
    }

    /// Read the file and judge it against the configuration in force, off the async
    /// threads (the prediction simulates). Errors: the file's problems.
    async fn judge(
        &self,
        old: &Snapshot,
        o: &Overrides,
    ) -> Result<(tango_core::config::Loaded, Judgement), Vec<String>> {
        let path = self.path.clone();
        let live_text = old.text.clone();
        let settings = old.config.guard.clone();
        let observed = crate::control::guard::observed(&self.rt, &self.watch);
        let o = o.clone();
        tokio::task::spawn_blocking(move || {
            let new = crate::proxy::preflight::load(&path).map_err(|e| match e.source() {
                Some(src) => e.diagnostics().iter().map(|d| src.render(d)).collect(),
                None => vec![e.render()],
            })?;
            let base = path.parent().filter(|p| !p.as_os_str().is_empty());
            let mut live = config::parse(
                &path.display().to_string(),
                &live_text,
                base.unwrap_or(std::path::Path::new(".")),
            )
            .map_err(|e| vec![format!("the configuration in force no longer reads: {e}")])?;
            // Its certificates as they are now, so a finding about one (TNG023) that both
            // versions have is not new.
            crate::proxy::preflight::read_dates(&mut live);
            let j = tango_core::guard::judge(tango_core::guard::Input {
                live: &live,
                new: &new,
                settings: &settings,
                overrides: &o,
                observed: &observed,
            });
            Ok((new, j))
        })
        .await
        .map_err(|e| vec![format!("reload task failed: {e}")])?
    }

    /// Tell the watch the split to expect, and arm the canary over the changed pools
    /// (with the settings in force before the reload).
    fn arm_canary(
        self: &Arc<Self>,
        old: &Snapshot,
        shares: Vec<f64>,
        j: &Judgement,
        generation: u64,
    ) -> Option<Canary> {
        let forced_before = self.forced.snapshot();
        let expected = self.forced.expectations(j);
        let restore: Vec<_> = j
            .pools
            .iter()
            .filter(|p| expected.iter().any(|(e, _)| *e == p.pool))
            .map(|p| {
                let shares = p
                    .backends
                    .iter()
                    .filter_map(|b| Some((b.name.clone(), b.old_pct? / 100.0)))
                    .collect();
                (p.pool.clone(), shares)
            })
            .collect();
        let changed: Vec<String> = j.scope.iter().map(|p| p.pool.clone()).collect();
        self.watch.expect(generation, expected, &changed);
        let g = &old.config.guard;
        if !g.rollback || j.scope.is_empty() {
            self.canary.clear();
            return None;
        }
        let window_ms = g.canary.as_millis() as u64;
        let now_ms = crate::journal::unix_ms();
        let canary = Canary {
            generation,
            until_ms: now_ms + window_ms,
            longest_until_ms: now_ms + window_ms * LONGEST_WINDOWS,
            pools: j.scope.clone(),
            shares,
        };
        let previous = Previous {
            config: old.config.clone(),
            text: old.text.clone(),
            generation: old.generation,
        };
        self.canary.arm(Armed::new(
            canary.clone(),
            window_ms,
            previous,
            restore,
            forced_before,
        ));
        Some(canary)
    }

    /// The snapshot just applied may have changed what is eligible (backends removed,
    /// another `panic_threshold`): panic mode follows at once, not at the upkeep's next
    /// tick, so a pool left with too few eligible backends does not answer 503 meanwhile.
    fn recheck_panic(&self) {
        for pool in &self.rt.current().pools {
            pool.recheck_panic(Some(&self.journal));
        }
    }

    /// (listener name, bound address) of every running listener.
    pub(crate) async fn listener_addresses(&self) -> Vec<(String, std::net::SocketAddr)> {
        let cfg = self.rt.current().config.clone();
        self.listeners.lock().await.addresses(&cfg)
    }
}

/// A listener that cannot be bound, told as a mistake in the file: at its `listen`
/// line:col, with what to do. Any other failure (a certificate read again) as it is.
pub(crate) fn bind_error(
    source: &tango_core::diag::Source,
    file: &config::file::ConfigFile,
    cfg: &config::Config,
    e: &anyhow::Error,
) -> String {
    let text = format!("{e:#}");
    let Some(i) = e.downcast_ref::<BindError>().map(|b| b.index) else {
        return text;
    };
    let span = file.listener.get(i).map(|l| {
        let r = l.get_ref().listen.span();
        tango_core::diag::Span::new(r.start, r.end)
    });
    let name = cfg.listeners.get(i).map_or("?", |l| l.name.as_str());
    let d = tango_core::diag::Diagnostic::error(format!("listener[{name}].listen"), span, text)
        .with_hint(
            "another process holds this address (`ss -ltnp` names it), or it is not an \
             address of this host: free it, or listen on another",
        );
    source.render(&d)
}

/// A reload's problems as one log field: each problem's location, message and hint on one
/// line, so one event is one line.
fn one_line_errors(errors: &[String]) -> String {
    errors
        .iter()
        .map(|e| crate::control::logging::one_line(e))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A short fingerprint of a configuration's text, to tell versions apart in the journal.
pub(crate) fn content_hash(text: &str) -> String {
    format!("{:016x}", tango_core::policy::hash_bytes(text.as_bytes()))
}
