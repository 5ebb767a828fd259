//! `tango run`: start the workers (`crate::worker`), load the file, open the journal,
//! bind the listeners (on every worker) and the admin API, start the control tasks
//! (upkeep, health checks, the watch) on this runtime, then reload on SIGHUP (through
//! `Control`, see `reload.rs`), reopen the access log on SIGUSR1 and drain on
//! SIGTERM/SIGINT. `start` is shared with the demo.

use crate::control::reload::{content_hash, Control, ReloadSource};
use crate::control::watch::state::WatchState;
use crate::proxy::access::{AccessFormat, AccessLog};
use crate::proxy::conn::Shutdown;
use crate::proxy::listener::Listeners;
use crate::runtime::Runtime;
use crate::worker::Workers;
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tango_core::guard::Overrides;
use tango_core::journal::{ConfigSource, EventKind};

#[derive(clap::Args, Clone)]
pub(crate) struct RunArgs {
    /// The configuration file.
    #[arg(long, short)]
    pub(crate) config: PathBuf,
    /// Worker threads serving connections (default: one per core). Each runs its own
    /// single-threaded event loop with its own socket per listener (SO_REUSEPORT: the
    /// kernel spreads new connections over them, like nginx's `reuseport`; a worker
    /// holding more connections than another hands a new one to the emptiest), and a
    /// connection then stays on that one worker: no work stealing, whose
    /// cross-thread bookkeeping costs about a fifth of the CPU per request. The admin
    /// API, health checks and the watch run on the main thread.
    #[arg(long)]
    pub(crate) workers: Option<std::num::NonZeroUsize>,
    /// Log one line per request to FILE (reopened on SIGUSR1, for logrotate), or to
    /// stderr when FILE is `-` or left out.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "-")]
    pub(crate) access_log: Option<PathBuf>,
    /// The access log's format: nginx's combined format followed by tango's fields, or
    /// JSON lines.
    #[arg(long, value_enum, default_value = "combined")]
    pub(crate) access_log_format: AccessFormat,
    /// How long in-flight requests may take to finish on shutdown. Open tunnels
    /// (WebSockets, CONNECT) are closed at once; a second SIGTERM or SIGINT ends the
    /// wait.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub(crate) grace: Duration,
    /// Refuse to start when the checklist has warnings (or errors) on the file.
    #[arg(long)]
    pub(crate) deny_warnings: bool,
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
    crate::proxy::preflight::load(path).map_err(|e| anyhow::Error::new(Rendered(e.render())))
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
    let n = args
        .workers
        .map_or_else(crate::worker::default_count, std::num::NonZeroUsize::get);
    let mut workers = Workers::start_with(n, crate::proxy::on_worker_start).with_context(|| {
        format!("starting {n} workers (--workers; each is a thread with its own event loop and descriptors, and about one per core is usual)")
    })?;
    let (control, shutdown, admin_addr) =
        start(loaded, args.config.clone(), access.clone(), &workers).await?;
    // One line per address on stdout, for scripts and tests that start tango on port 0.
    // Signals are handled before tango says it is ready.
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // Kept for the whole run (not made anew each turn of the loop, as `ctrl_c()` would
    // be), so a SIGINT that comes while a reload runs is not lost.
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // SIGUSR1 reopens the access log; its default action would end the process.
    let usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())?;
    tokio::spawn(reopen_on_usr1(usr1, access.clone()));
    if let Some(log) = &access {
        tokio::spawn(log.clone().upkeep());
    }
    let tls: Vec<String> = (control.rt.current().config.listeners.iter())
        .filter(|l| l.tls.is_some())
        .map(|l| l.name.clone())
        .collect();
    for (name, addr) in control.listener_addresses().await {
        let scheme = if tls.contains(&name) { "https" } else { "http" };
        println!("listening {name} {scheme}://{addr}");
    }
    println!("admin http://{admin_addr}");
    tracing::info!(admin = %admin_addr, workers = crate::worker::count(), "tango is running");
    crate::control::sd::ready();
    loop {
        tokio::select! {
            // SIGHUP has no override: what the file says is all there is.
            _ = hup.recv() => { let _ = control.reload(ReloadSource::Sighup, Overrides::default()).await; }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    // A second SIGTERM or SIGINT ends the drain at once: the way to stop now, without
    // a SIGKILL that would also lose the access log's last lines. SIGHUP is answered in
    // the log: its handler stays installed, so it neither ends tango nor reloads.
    let again = async {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => tracing::warn!("SIGHUP ignored: tango is shutting down, so the configuration is not reloaded"),
            }
        }
    };
    drain(&shutdown, args.grace, again).await;
    // After the workers, nothing writes to the access log any more.
    workers.stop();
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

/// Stop accepting and wait for the open connections to finish their requests, for at
/// most `grace`, or until `again` (a second signal) resolves; what is left is cut when
/// the workers stop.
pub(crate) async fn drain(
    shutdown: &Shutdown,
    grace: Duration,
    again: impl std::future::Future<Output = ()>,
) {
    tracing::info!(grace = ?grace, "shutting down: no new connections, draining in-flight requests");
    crate::control::sd::stopping();
    shutdown.trigger();
    let left = tokio::select! {
        left = shutdown.drained(grace) => left,
        () = again => {
            let left = shutdown.open();
            if left > 0 {
                tracing::warn!(connections = left, "signalled again during the drain; closing the rest");
            }
            return;
        }
    };
    if left > 0 {
        tracing::warn!(connections = left, "grace period over; closing the rest");
    } else {
        tracing::info!("drained");
    }
}

/// A start-time failure of what an `[admin]` key names (a token file that cannot be
/// read, a state directory that cannot be made), told at that key's line:col with a
/// fix, as a mistake in the file is.
fn at_admin_key(
    (source, file): (
        &tango_core::diag::Source,
        &tango_core::config::file::ConfigFile,
    ),
    key: &str,
    e: anyhow::Error,
    hint: &str,
) -> anyhow::Error {
    let admin = file.admin.as_ref().map(|a| a.get_ref());
    let value = admin.and_then(|a| match key {
        "token_file" => a.token_file.as_ref(),
        _ => a.state_dir.as_ref(),
    });
    let Some(value) = value else {
        return e;
    };
    let r = value.span();
    let d = tango_core::diag::Diagnostic::error(
        format!("admin.{key}"),
        Some(tango_core::diag::Span::new(r.start, r.end)),
        format!("{e:#}"),
    )
    .with_hint(hint);
    anyhow::Error::new(Rendered(source.render(&d)))
}

/// Bind listeners (their accept loops on `workers`) and the admin API and start the
/// background tasks on the calling runtime. Used by `run` and `demo`.
pub(crate) async fn start(
    loaded: tango_core::config::Loaded,
    path: PathBuf,
    access_log: Option<Arc<AccessLog>>,
    workers: &Workers,
) -> anyhow::Result<(Arc<Control>, Shutdown, std::net::SocketAddr)> {
    let hash = content_hash(&loaded.source.text);
    let findings = crate::control::guard::startup_findings(&loaded);
    let config = loaded.config;
    let admin_addr = config.admin.listen;
    let admin_token = crate::control::admin::resolve_token(&config.admin).map_err(|e| {
        at_admin_key((&loaded.source, &loaded.file), "token_file", e, "make the file readable by tango (it holds the token, 16+ visible characters), or give the token another way ([admin] token, TANGO_ADMIN_TOKEN)")
    })?;
    let journal = crate::journal::Sink::open(
        config.admin.state_dir.as_deref(),
        config.admin.journal_max_bytes,
    )
    .map_err(|e| {
        at_admin_key(
            (&loaded.source, &loaded.file),
            "state_dir",
            e,
            "create the directory, or make it (and its journal) writable by tango, or name another",
        )
    })?;
    crate::control::guard::log_findings(&findings);
    // Generations continue from the journal, so one names one configuration for good.
    let generation = journal.last_generation() + 1;
    let rt = Runtime::new(config.clone(), &loaded.source.text);
    let _ = rt.journal.set(journal.clone());
    if generation > 1 {
        rt.snapshot
            .store(Arc::new(rt.build(config, &loaded.source.text, generation)));
    }
    let shutdown = Shutdown::new();
    let mut listeners = Listeners::new(rt.clone(), shutdown.clone(), access_log, workers.handles());
    let cfg = rt.current().config.clone();
    let bound = listeners.prepare(&cfg).await.map_err(|e| {
        let error = crate::control::reload::bind_error(&loaded.source, &loaded.file, &cfg, &e);
        anyhow::Error::new(Rendered(error))
    })?;
    let admin = tokio::net::TcpListener::bind(admin_addr)
        .await
        .with_context(|| format!("binding the admin listener on {admin_addr}"))?;
    let admin_addr = admin.local_addr()?;
    // Journaled once every address is bound: a start that cannot bind one serves
    // nothing, and must leave no generation in the journal that never served.
    journal.set_generation(generation);
    journal.record(EventKind::ConfigApplied {
        content_hash: hash,
        source: ConfigSource::Startup,
        changes: Vec::new(),
        findings,
        predicted: Vec::new(),
        overrides: Vec::new(),
    });
    listeners.commit(bound);
    let watch = Arc::new(WatchState::default());
    let control = Control::new(rt.clone(), path, listeners, journal.clone(), watch.clone());
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
        Arc::downgrade(&control),
        Duration::from_secs(1),
    ));
    Ok((control, shutdown, admin_addr))
}
