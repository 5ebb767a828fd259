//! `tango demo`: real demo backends on loopback, tango in front with an embedded
//! configuration, and a bounded traffic generator, printing the split each second.
//! `tango demo-backend` runs one such backend alone, for benchmarks and tests.

mod backend;
mod traffic;

pub(crate) use backend::{run_backend, BackendArgs};

use crate::server;
use std::time::Duration;

pub(crate) const DEMO_CONFIG: &str = include_str!("demo.toml");

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Stop after this long (default: run until Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Requests per second the built-in generator sends.
    #[arg(long, default_value_t = 200)]
    rps: u32,
    /// Latency of every demo backend.
    #[arg(long, default_value = "2ms", value_parser = humantime::parse_duration)]
    latency: Duration,
    /// Replay the incident tango exists for: after 5 s a reload changes demo-2's weight
    /// from 1 to 10 (a typo), and 10 s later it is reverted (try `--duration 30s`). Watch the alert name the
    /// backend and the change.
    #[arg(long)]
    incident: bool,
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    // The configuration lives in a file so reloads (and the incident) work as in
    // production.
    let dir = std::env::temp_dir().join(format!("tango-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("demo.toml");
    std::fs::write(&path, DEMO_CONFIG)?;
    let loaded = tango_core::config::load(&path).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let config = &loaded.config;
    for b in &config.pools[0].backends {
        let addr: std::net::SocketAddr = b.address.parse()?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            anyhow::anyhow!(
                "demo backend {} cannot bind {addr}: {e} (is another demo running?)",
                b.name
            )
        })?;
        tokio::spawn(backend::serve(listener, b.name.clone(), args.latency));
    }
    let listen = config.listeners[0].listen;
    let (control, shutdown, admin) = server::start(loaded, path.clone(), None).await?;
    println!("tango demo");
    println!("  proxy    http://{listen}/");
    println!("  metrics  http://{admin}/metrics");
    println!("  status   http://{admin}/api/v1/status");
    println!("  weights  demo-1=1 demo-2=1 demo-3=2 demo-4=4 (expect 12.5% / 12.5% / 25% / 50%)");
    println!(
        "  sending {} requests/s{}; Ctrl-C stops",
        args.rps,
        args.duration
            .map(|d| format!(" for {}", humantime::format_duration(d)))
            .unwrap_or_default()
    );
    let target = format!("http://{listen}/");
    let gen = tokio::spawn(traffic::generate(
        target,
        args.rps,
        args.duration.unwrap_or(Duration::from_secs(86_400 * 365)),
    ));
    let report = tokio::spawn(traffic::report(control.clone()));
    let incident = args
        .incident
        .then(|| tokio::spawn(incident(control.clone(), path.clone())));
    tokio::select! {
        _ = gen => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    report.abort();
    if let Some(i) = incident {
        i.abort();
    }
    traffic::summary(&control.rt);
    server::drain(&shutdown, Duration::from_secs(5)).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The incident, replayed: a weight typo shipped by reload, then the fix.
async fn incident(control: std::sync::Arc<server::Control>, path: std::path::PathBuf) {
    let typo = DEMO_CONFIG.replacen(
        "name = \"demo-2\"\naddress = \"127.0.0.1:28202\"\nweight = 1",
        "name = \"demo-2\"\naddress = \"127.0.0.1:28202\"\nweight = 10",
        1,
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    if std::fs::write(&path, &typo).is_ok() {
        println!("  >> reload: demo-2's weight goes from 1 to 10 (a typo for 1)");
        let _ = control.reload(server::ReloadSource::Api).await;
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    if std::fs::write(&path, DEMO_CONFIG).is_ok() {
        println!("  >> reload: the weight is fixed back to 1");
        let _ = control.reload(server::ReloadSource::Api).await;
    }
}
