//! `tango demo`: real demo backends on loopback, tango in front with an embedded
//! configuration, and a bounded traffic generator, printing the split each second and,
//! at the end, per phase of the incident. `tango demo-backend` runs one such backend
//! alone, for benchmarks and tests.

mod backend;
mod traffic;

pub(crate) use backend::{run_backend, BackendArgs};

use crate::control::guard::Verdict;
use crate::control::{reload, server};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tango_core::journal::EventKind;

pub(crate) const DEMO_CONFIG: &str = include_str!("demo.toml");

/// The port `demo.toml` puts the proxy on; the backends and the admin API follow it.
const DEFAULT_PORT_BASE: u16 = 28200;
/// Ports after the base: four backends, then the admin API.
const ADMIN_OFFSET: u16 = 5;

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
    /// The proxy's port; the four demo backends take the next four ports and the admin
    /// API the one after. 0 picks free ports.
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_PORT_BASE)]
    port_base: u16,
    /// Replay the incident tango exists for, against the reload guard: after 5 s a reload
    /// changes demo-2's weight from 1 to 10 (a typo) and is refused; the same reload
    /// forced past the guard applies, the split moves, and the canary rolls it back by
    /// itself (try `--duration 40s`). Each step is printed with its timing.
    #[arg(long)]
    incident: bool,
    /// With --incident: when the typo is reloaded.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    incident_after: Duration,
    /// With --incident: how long to wait for the canary's rollback before the file is
    /// fixed by hand.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    incident_patience: Duration,
}

/// `demo.toml` with its ports moved: `base` for the proxy and so on, or with the
/// backends' bound addresses and port 0 for the proxy and admin when `base` is 0.
fn config_text(base: u16, backends: &[SocketAddr]) -> String {
    let mut text = DEMO_CONFIG.to_string();
    let port = |p: u16| if base == 0 { 0 } else { base + p };
    let moves = [
        (0, port(0).to_string()),
        (ADMIN_OFFSET, port(ADMIN_OFFSET).to_string()),
    ];
    for (offset, to) in moves {
        let from = format!("127.0.0.1:{}\"", DEFAULT_PORT_BASE + offset);
        text = text.replace(&from, &format!("127.0.0.1:{to}\""));
    }
    for (i, addr) in backends.iter().enumerate() {
        let from = format!("127.0.0.1:{}\"", DEFAULT_PORT_BASE + 1 + i as u16);
        text = text.replace(&from, &format!("{addr}\""));
    }
    text
}

/// Bind the four demo backends: on `base + 1` to `base + 4`, or on free ports.
async fn bind_backends(base: u16, latency: Duration) -> anyhow::Result<Vec<SocketAddr>> {
    let mut addrs = Vec::new();
    for i in 1..=4u16 {
        let port = if base == 0 { 0 } else { base.saturating_add(i) };
        let name = format!("demo-{i}");
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "demo backend {name} cannot bind 127.0.0.1:{port}: {e} (is another demo running? try --port-base)"
                )
            })?;
        addrs.push(listener.local_addr()?);
        tokio::spawn(backend::serve(listener, name, latency));
    }
    Ok(addrs)
}

pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.port_base <= u16::MAX - ADMIN_OFFSET,
        "--port-base {} leaves no room for the five ports after it",
        args.port_base
    );
    let backends = bind_backends(args.port_base, args.latency).await?;
    let text = config_text(args.port_base, &backends);
    // The configuration lives in a file so reloads (and the incident) work as in
    // production.
    let dir = std::env::temp_dir().join(format!("tango-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("demo.toml");
    std::fs::write(&path, &text)?;
    let loaded = tango_core::config::load(&path).map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let workers = crate::worker::Workers::start_with(
        crate::worker::default_count(),
        crate::proxy::on_worker_start,
    )?;
    let (control, shutdown, admin) = server::start(loaded, path.clone(), None, &workers).await?;
    let listen = control
        .listener_addresses()
        .await
        .first()
        .map(|(_, a)| *a)
        .ok_or_else(|| anyhow::anyhow!("the demo listener did not start"))?;
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
    println!();
    let marks = traffic::Marks::new(&control.rt);
    let gen = tokio::spawn(traffic::generate(
        format!("http://{listen}/"),
        args.rps,
        args.duration.unwrap_or(Duration::from_secs(86_400 * 365)),
    ));
    let report = tokio::spawn(traffic::report(control.clone()));
    let incident = args.incident.then(|| {
        tokio::spawn(incident(
            control.clone(),
            path.clone(),
            text.clone(),
            marks.clone(),
            (args.incident_after, args.incident_patience),
        ))
    });
    tokio::select! {
        _ = gen => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    // Stopped and waited for: a task on another worker thread may be printing its last
    // row, which must come before the summary, not after it.
    report.abort();
    let _ = report.await;
    if let Some(i) = incident {
        i.abort();
        let _ = i.await;
    }
    print!("{}", traffic::summary(&control.rt, &marks));
    let again = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    server::drain(&shutdown, Duration::from_secs(5), again).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The incident, replayed: a weight typo shipped by reload, then the fix.
async fn incident(
    control: std::sync::Arc<reload::Control>,
    path: std::path::PathBuf,
    text: String,
    marks: traffic::Marks,
    (after, patience): (Duration, Duration),
) {
    let demo_2 = |w: u32| {
        let addr = text
            .split("name = \"demo-2\"\naddress = \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        format!("name = \"demo-2\"\naddress = \"{addr}\"\nweight = {w}")
    };
    let typo = text.replacen(&demo_2(1), &demo_2(10), 1);
    tokio::time::sleep(after).await;
    if std::fs::write(&path, &typo).is_err() {
        return;
    }
    let t0 = Instant::now();
    println!("  >> [+0.0s] reload: demo-2's weight goes from 1 to 10 (a typo for 1)");
    let out = control
        .reload(reload::ReloadSource::Api, Default::default())
        .await;
    println!(
        "  >> [+{:.1}s] {}:",
        t0.elapsed().as_secs_f64(),
        match out.verdict {
            Verdict::Refused => "refused by the guard; the split stays as it was",
            Verdict::Applied => "applied (the guard let it through)",
            Verdict::Rejected => "rejected",
            Verdict::ShuttingDown => "not applied: tango is shutting down",
        }
    );
    for e in &out.errors {
        println!("  >>        {e}");
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    println!(
        "  >> [+{:.1}s] reload --force: the same typo, forced past the guard",
        t0.elapsed().as_secs_f64()
    );
    marks.mark(&control.rt, "during");
    let force = tango_core::guard::Overrides {
        force: true,
        allow_shift: Vec::new(),
    };
    let forced = control.reload(reload::ReloadSource::Api, force).await;
    let applied_at = Instant::now();
    println!(
        "  >> [+{:.1}s] applied as generation {}; the canary is watching",
        t0.elapsed().as_secs_f64(),
        forced.generation
    );
    let rolled = wait_for_rollback(&control, forced.generation, patience).await;
    marks.mark(&control.rt, "after");
    match rolled {
        Some(to) => println!(
            "  >> [+{:.1}s] rolled back by the canary {:.1}s after the forced reload: generation {} restores generation {to}'s configuration",
            t0.elapsed().as_secs_f64(),
            applied_at.elapsed().as_secs_f64(),
            control.rt.current().generation,
        ),
        None => println!(
            "  >> [+{:.1}s] no rollback within {}; reloading the fixed file",
            t0.elapsed().as_secs_f64(),
            humantime::format_duration(patience)
        ),
    }
    // The file still holds the typo: fix it, so the next reload does not bring it back.
    if std::fs::write(&path, &text).is_ok() && rolled.is_none() {
        let _ = control
            .reload(reload::ReloadSource::Api, Default::default())
            .await;
    }
}

/// Wait (polling the journal; this is the demo, not the data plane) until the canary
/// rolls `generation` back; the generation it restored, or `None` after `patience`.
async fn wait_for_rollback(
    control: &reload::Control,
    generation: u64,
    patience: Duration,
) -> Option<u64> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        let found = control
            .journal
            .recent()
            .into_iter()
            .find_map(|e| match e.kind {
                EventKind::ConfigRolledBack {
                    from_generation,
                    to_generation,
                    ..
                } if from_generation == generation => Some(to_generation),
                _ => None,
            });
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::config_text;

    #[test]
    fn the_port_base_moves_every_port() {
        let backends: Vec<std::net::SocketAddr> = (1..=4)
            .map(|i| format!("127.0.0.1:{}", 41000 + i).parse().unwrap())
            .collect();
        let text = config_text(41000, &backends);
        let addrs: Vec<&str> = text
            .lines()
            .filter_map(|l| {
                l.split_once("\"127.0.0.1:")
                    .map(|(_, r)| r.trim_end_matches('"'))
            })
            .collect();
        assert_eq!(
            addrs,
            ["41005", "41000", "41001", "41002", "41003", "41004"]
        );
        let text = config_text(0, &backends);
        assert!(text.contains("listen = \"127.0.0.1:0\"\n\n[[listener]]"));
        assert!(text.contains("name = \"demo-2\"\naddress = \"127.0.0.1:41002\"\nweight = 1"));
    }
}
