//! `tango run`: start listeners and the admin API, reload on SIGHUP or on request, and
//! drain on SIGTERM/SIGINT.

use crate::proxy::access::{AccessFormat, AccessLog};
use crate::proxy::{Listeners, Shutdown};
use crate::runtime::Runtime;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tango_core::config;
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

/// Reload outcome counters and the current generation, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct ReloadStats {
    pub(crate) ok: AtomicU64,
    pub(crate) rejected: AtomicU64,
}

/// Owns the configuration lifecycle: applying a new file, or refusing it.
pub(crate) struct Control {
    pub(crate) rt: Arc<Runtime>,
    pub(crate) path: PathBuf,
    listeners: Mutex<Listeners>,
    pub(crate) reloads: Arc<ReloadStats>,
    pub(crate) journal: crate::journal::Sink,
    pub(crate) watch: Arc<crate::watch::WatchState>,
}

impl Control {
    /// Re-read the file; apply it whole or change nothing. Returns the new generation,
    /// or every problem found. Either way the journal records it.
    pub(crate) async fn reload(&self, source: ReloadSource) -> Result<u64, Vec<String>> {
        let mut listeners = self.listeners.lock().await;
        let r = self.try_reload(&mut listeners, source).await;
        match &r {
            Ok(g) => {
                self.reloads.ok.fetch_add(1, Relaxed);
                tracing::info!(
                    generation = g,
                    source = source.as_str(),
                    "configuration applied"
                );
            }
            Err(errs) => {
                self.reloads.rejected.fetch_add(1, Relaxed);
                self.journal.record(EventKind::ConfigRejected {
                    source: source.journal(),
                    errors: errs.clone(),
                });
                // One line per event: each problem's location, message and hint.
                let errors: Vec<String> =
                    errs.iter().map(|e| crate::logging::one_line(e)).collect();
                tracing::error!(
                    source = source.as_str(),
                    problems = errs.len(),
                    errors = %errors.join("; "),
                    "configuration rejected; the previous one keeps serving"
                );
            }
        }
        r
    }

    async fn try_reload(
        &self,
        listeners: &mut Listeners,
        source: ReloadSource,
    ) -> Result<u64, Vec<String>> {
        let path = self.path.clone();
        let loaded = tokio::task::spawn_blocking(move || config::load(&path))
            .await
            .map_err(|e| vec![format!("reload task failed: {e}")])?
            .map_err(|e| match e.source() {
                Some(src) => e.diagnostics().iter().map(|d| src.render(d)).collect(),
                None => vec![e.render()],
            })?;
        let hash = content_hash(&loaded.source.text);
        let new = loaded.config;
        let old = self.rt.current();
        if new.admin != old.config.admin {
            tracing::warn!("changes to [admin] take effect on restart");
        }
        let bound = listeners
            .prepare(&new)
            .await
            .map_err(|e| vec![format!("{e:#}")])?;
        let generation = old.generation + 1;
        let changes = summarize_changes(&old.config, &new);
        let snap = self.rt.build(new, &loaded.source.text, generation);
        let cfg = snap.config.clone();
        self.rt.snapshot.store(Arc::new(snap));
        listeners.commit(&cfg, bound);
        self.journal.set_generation(generation);
        for c in &changes {
            tracing::info!(generation, "change: {}", c.describe());
        }
        self.journal.record(EventKind::ConfigApplied {
            content_hash: hash,
            source: source.journal(),
            changes,
        });
        Ok(generation)
    }
}

/// A short fingerprint of a configuration's text, to tell versions apart in the journal.
pub(crate) fn content_hash(text: &str) -> String {
    format!("{:016x}", tango_core::policy::hash_bytes(text.as_bytes()))
}

pub(crate) fn load_or_explain(
    path: &std::path::Path,
) -> anyhow::Result<tango_core::config::Loaded> {
    config::load(path).map_err(|e| anyhow::Error::new(crate::Rendered(e.render())))
}

/// Start everything; returns once shut down.
pub(crate) async fn run(args: RunArgs) -> anyhow::Result<()> {
    let loaded = load_or_explain(&args.config)?;
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
    crate::sd::ready();
    loop {
        tokio::select! {
            _ = hup.recv() => { let _ = control.reload(ReloadSource::Sighup).await; }
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
    crate::sd::stopping();
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
    let config = loaded.config;
    let admin_addr = config.admin.listen;
    let admin_token = crate::admin::resolve_token(&config.admin)?;
    let journal = crate::journal::Sink::open(
        config.admin.state_dir.as_deref(),
        config.admin.journal_max_bytes,
    )?;
    // Generations continue from the journal, so one names one configuration for good.
    let generation = journal.last_generation() + 1;
    let rt = Runtime::new(config.clone(), &loaded.source.text);
    if generation > 1 {
        rt.snapshot
            .store(Arc::new(rt.build(config, &loaded.source.text, generation)));
    }
    journal.set_generation(generation);
    journal.record(EventKind::ConfigApplied {
        content_hash: hash,
        source: ConfigSource::Startup,
        changes: Vec::new(),
    });
    let shutdown = Shutdown::new();
    let mut listeners = Listeners::new(rt.clone(), shutdown.clone(), access_log);
    let cfg = rt.current().config.clone();
    let bound = listeners.prepare(&cfg).await?;
    listeners.commit(&cfg, bound);
    let watch = Arc::new(crate::watch::WatchState::default());
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
    let auth = crate::admin::Auth::new(admin_token, &cfg.admin, generation);
    tokio::spawn(crate::admin::serve(
        admin,
        control.clone(),
        shutdown.clone(),
        auth,
    ));
    tokio::spawn(crate::accounting::sweep_idle(rt.clone(), journal.clone()));
    tokio::spawn(crate::health::supervise(rt.clone(), journal.clone()));
    tokio::spawn(crate::watch::run(
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
