//! `tango run`: start listeners and the admin API, reload on SIGHUP or on request (each
//! reload checked and judged by the guard, and rolled back by its canary when it causes
//! an alert), and drain on SIGTERM/SIGINT.

use crate::control::guard::{Outcome, Verdict};
use crate::proxy::access::{AccessFormat, AccessLog};
use crate::proxy::{Listeners, Shutdown};
use crate::runtime::{Runtime, Snapshot};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tango_core::config;
use tango_core::guard::canary::Canary;
use tango_core::guard::{Judgement, Overrides};
use tango_core::journal::{summarize_changes, ConfigSource, EventKind};
use tokio::sync::Mutex;

#[derive(clap::Args, Clone)]
pub(crate) struct RunArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub(crate) config: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Log one line per request to FILE (reopened on SIGUSR1, for logrotate), or to
    /// stderr when FILE is `-` or left out.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub(crate) access_log: Option<PathBuf>,
    /// The access log's format: nginx's combined format followed by tango's fields, or
    /// JSON lines.
    #[arg(long, value_enum, default_value = "combined")]
    pub(crate) access_log_format: AccessFormat,
    /// How long in-flight requests may take to finish on shutdown.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) grace: Duration,
    /// Refuse to start when the checklist has warnings (or errors) on the file.
    #[arg(long)]
    pub(crate) deny_warnings: bool,
}

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
}

/// Owns the configuration lifecycle: applying a new file, refusing it, or rolling it
/// back.
pub(crate) struct Control {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) path: PathBuf,
    listeners: Mutex<Listeners>,
    pub(crate) reloads: Arc<ReloadStats>,
    pub(crate) journal: crate::journal::Sink,
    pub(crate) watch: Arc<crate::control::watch::WatchState>,
}

impl Control {
    /// Re-read the file; apply it whole or change nothing. The checklist runs on it, and
    /// the reload guard judges it (see `guard.rs`). Either way the journal records it.
    pub(crate) async fn reload(self: &Arc<Self>, source: ReloadSource, o: Overrides) -> Outcome {
        let mut listeners = self.listeners.lock().await;
        let out = self.try_reload(&mut listeners, source, &o).await;
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
            Err(e) => return Outcome::rejected(old.generation, vec![format!("{e:#}")]),
        };
        let generation = old.generation + 1;
        let changes = summarize_changes(&old.config, &new);
        let snap = self.rt.build(new, &loaded.source.text, generation);
        let canary = self.arm_canary(&old, &j, generation);
        let cfg = snap.config.clone();
        self.rt.snapshot.store(Arc::new(snap));
        listeners.commit(&cfg, bound);
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
            let new = config::load(&path).map_err(|e| match e.source() {
                Some(src) => e.diagnostics().iter().map(|d| src.render(d)).collect(),
                None => vec![e.render()],
            })?;
            let base = path.parent().filter(|p| !p.as_os_str().is_empty());
            let live = config::parse(
                &path.display().to_string(),
                &live_text,
                base.unwrap_or(std::path::Path::new(".")),
            )
            .map_err(|e| vec![format!("the configuration in force no longer reads: {e}")])?;
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
        j: &Judgement,
        generation: u64,
    ) -> Option<Canary> {
        let expected = j.expectations();
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
            return None;
        }
        let window_ms = g.canary.as_millis() as u64;
        let canary = Canary {
            generation,
            until_ms: crate::journal::unix_ms() + window_ms,
            pools: j.scope.clone(),
        };
        crate::control::canary::arm(
            &self.watch,
            crate::control::canary::Armed {
                canary: canary.clone(),
                window_ms,
                previous: crate::control::canary::Previous {
                    config: old.config.clone(),
                    text: old.text.clone(),
                    generation: old.generation,
                },
                restore,
                control: Arc::downgrade(self),
            },
        );
        Some(canary)
    }

    /// Put the configuration before `armed`'s reload back, as a new generation, because
    /// of `evidence`. Refused when another reload has happened since.
    pub(crate) async fn rollback(
        &self,
        armed: &crate::control::canary::Armed,
        evidence: Vec<tango_core::detector::Evidence>,
    ) -> Result<u64, String> {
        let mut listeners = self.listeners.lock().await;
        let cur = self.rt.snapshot.load_full();
        if cur.generation != armed.canary.generation {
            return Err(format!("generation {} is in force now", cur.generation));
        }
        let prev = &armed.previous;
        let bound = listeners
            .prepare(&prev.config)
            .await
            .map_err(|e| format!("{e:#}"))?;
        let generation = cur.generation + 1;
        let changes = summarize_changes(&cur.config, &prev.config);
        let snap = self
            .rt
            .build((*prev.config).clone(), &prev.text, generation);
        let changed: Vec<String> = armed.canary.pools.iter().map(|p| p.pool.clone()).collect();
        self.watch
            .expect(generation, armed.restore.clone(), &changed);
        let cfg = snap.config.clone();
        self.rt.snapshot.store(Arc::new(snap));
        listeners.commit(&cfg, bound);
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
            content_hash: content_hash(&prev.text),
            changes,
            evidence,
        });
        Ok(generation)
    }
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

/// An error already rendered for a person (configuration diagnostics): printed as is.
#[derive(Debug)]
pub(crate) struct Rendered(pub(crate) String);

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

impl std::error::Error for Rendered {}

pub(crate) fn load_or_explain(
    path: &std::path::Path,
) -> anyhow::Result<tango_core::config::Loaded> {
    config::load(path).map_err(|e| anyhow::Error::new(Rendered(e.render())))
}

/// Start everything; returns once shut down.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let loaded = load_or_explain(&args.config)?;
    if args.deny_warnings {
        deny_warnings(&loaded)?;
    }
    let access = match &args.access_log {
        Some(path) => Some(
            AccessLog::open(Some(path), args.access_log_format)
                .with_context(|| format!("opening the access log {}", path.display()))?,
        ),
        None => None,
    };
    let (control, shutdown, admin_addr) =
        start(loaded, args.config.clone(), access.clone()).await?;
    // One line per address on stdout, for scripts and tests that start tango on port 0.
    // Signals are handled before tango says it is ready.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // SIGUSR1 reopens the access log; its default action would end the process.
    let usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    tokio::spawn(reopen_on_usr1(usr1, access.clone()));
    if let Some(log) = &access {
        tokio::spawn(log.clone().upkeep());
    }
    for (name, addr) in control.listener_addresses().await {
        println!("listening {name} http://{addr}");
    }
    println!("admin http://{admin_addr}");
    tracing::info!(admin = %admin_addr, "tango is running");
    crate::control::sd::ready();
    loop {
        tokio::select! {
            // SIGHUP has no override: what the file says is all there is.
            _ = hup.recv() => { let _ = control.reload(ReloadSource::Sighup, Overrides::default()).await; }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    drain(&shutdown, args.grace).await;
    if let Some(log) = &access {
        log.flush();
    }
    Ok(())
}

/// `--deny-warnings`: the checklist's warnings and errors (not allowed by the file)
/// stop the start, printed as `tango check` prints them.
fn deny_warnings(loaded: &tango_core::config::Loaded) -> anyhow::Result<()> {
    let l = tango_core::lint::lint(loaded);
    let denied: Vec<_> = l
        .problems
        .iter()
        .filter(|d| d.severity >= tango_core::diag::Severity::Warning)
        .cloned()
        .collect();
    if denied.is_empty() {
        return Ok(());
    }
    let mut text = tango_core::lint::report::human(&loaded.source, &denied, &[]);
    text.push_str(&format!(
        "refusing to start with --deny-warnings: {} checklist finding(s); fix them or allow them with [[allow]] and a reason",
        denied.len()
    ));
    Err(anyhow::Error::new(Rendered(text)))
}

/// logrotate's `postrotate` sends SIGUSR1 after moving the file away.
async fn reopen_on_usr1(mut usr1: tokio::signal::unix::Signal, access: Option<Arc<AccessLog>>) {
    while usr1.recv().await.is_some() {
        match &access {
            Some(log) => log.reopen(),
            None => tracing::info!("SIGUSR1: there is no access log to reopen"),
        }
    }
}

pub(crate) async fn drain(shutdown: &Shutdown, grace: Duration) {
    tracing::info!(grace = ?grace, "shutting down: no new connections, draining in-flight requests");
    crate::control::sd::stopping();
    shutdown.trigger();
    let left = shutdown.drained(grace).await;
    if left > 0 {
        tracing::warn!(connections = left, "grace period over; closing the rest");
    } else {
        tracing::info!("drained");
    }
}

/// Bind listeners and the admin API and start background tasks. Used by `run` and `demo`.
pub(crate) async fn start(
    loaded: tango_core::config::Loaded,
    path: PathBuf,
    access_log: Option<Arc<AccessLog>>,
) -> anyhow::Result<(Arc<Control>, Shutdown, std::net::SocketAddr)> {
    let hash = content_hash(&loaded.source.text);
    let findings = crate::control::guard::startup_findings(&loaded);
    let config = loaded.config;
    let admin_addr = config.admin.listen;
    let admin_token = crate::control::admin::resolve_token(&config.admin)?;
    let journal = crate::journal::Sink::open(
        config.admin.state_dir.as_deref(),
        config.admin.journal_max_bytes,
    )?;
    crate::control::guard::log_findings(&findings);
    // Generations continue from the journal, so one names one configuration for good.
    let generation = journal.last_generation() + 1;
    let rt = Runtime::new(config.clone(), &loaded.source.text);
    let _ = rt.journal.set(journal.clone());
    if generation > 1 {
        rt.snapshot
            .store(Arc::new(rt.build(config, &loaded.source.text, generation)));
    }
    journal.set_generation(generation);
    journal.record(EventKind::ConfigApplied {
        content_hash: hash,
        source: ConfigSource::Startup,
        changes: Vec::new(),
        findings,
        predicted: Vec::new(),
        overrides: Vec::new(),
    });
    let shutdown = Shutdown::new();
    let mut listeners = Listeners::new(rt.clone(), shutdown.clone(), access_log);
    let cfg = rt.current().config.clone();
    let bound = listeners.prepare(&cfg).await?;
    listeners.commit(&cfg, bound);
    let watch = Arc::new(crate::control::watch::WatchState::default());
    let control = Arc::new(Control {
        rt: rt.clone(),
        path,
        listeners: Mutex::new(listeners),
        reloads: Arc::new(ReloadStats::default()),
        journal: journal.clone(),
        watch: watch.clone(),
    });
    let admin = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("binding the admin listener on {admin_addr}"))?;
    let admin_addr = admin.local_addr()?;
    let auth = crate::control::admin::Auth::new(admin_token, &cfg.admin, generation);
    tokio::spawn(crate::control::admin::serve(
        admin,
        control.clone(),
        shutdown.clone(),
        auth,
    ));
    tokio::spawn(crate::control::upkeep::run(rt.clone(), journal.clone()));
    tokio::spawn(crate::control::health::supervise(
        rt.clone(),
        journal.clone(),
    ));
    tokio::spawn(crate::control::watch::run(
        rt.clone(),
        journal,
        watch,
        Duration::from_secs(1),
    ));
    Ok((control, shutdown, admin_addr))
}

impl Control {
    pub(crate) async fn listener_addresses(&self) -> Vec<(String, std::net::SocketAddr)> {
        let cfg = self.rt.current().config.clone();
        self.listeners.lock().await.addresses(&cfg)
    }
}
