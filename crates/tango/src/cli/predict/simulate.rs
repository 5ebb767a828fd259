//! `tango simulate`: the traffic split a configuration will produce, per pool, from the
//! real policy code run over simulated requests.
//!
//! Exit codes (as `check` and `diff`: docs/configuration.md): 0 every split within the
//! threshold, or not judged (synthetic keys and a low-cardinality hash key: the report
//! says so); 1 a split deviates, or the configuration has mistakes; 2 unusable input
//! (unreadable or not TOML, unreadable keys, unknown pool or backend).

use super::{bar, load, out, Format, KeyArgs, EXIT_FAILS, EXIT_UNREADABLE};
use crate::cli::table::{self, Align};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tango_core::simulate::{
    simulate, Scenario, SimOptions, SimReport, Verdict, DEFAULT_CONCURRENCY,
    DEFAULT_THRESHOLD_POINTS,
};

#[derive(clap::Args)]
pub(crate) struct SimulateArgs {
    /// The configuration file.
    file: PathBuf,
    /// Simulate this pool only (default: every pool).
    #[arg(long, value_name = "NAME")]
    pool: Option<String>,
    /// Requests per pool (default: one per line of --keys or --access-log, else 100000).
    #[arg(long, value_name = "N", value_parser = super::parse_requests)]
    requests: Option<u64>,
    #[command(flatten)]
    keys: KeyArgs,
    /// Take a backend out, as if it failed its health checks (repeatable).
    #[arg(long, value_name = "NAME")]
    down: Vec<String>,
    /// Add N backends (new-1, new-2, ...) with the pool's median weight.
    #[arg(long, value_name = "N", default_value_t = 0)]
    add: usize,
    /// A backend's service latency, e.g. `web-2=50ms` (repeatable; others 10ms). Moves
    /// least_request and peak_ewma pools.
    #[arg(long, value_name = "NAME=DURATION", value_parser = parse_latency)]
    latency: Vec<(String, Duration)>,
    /// Concurrent clients in the model (requests in flight across a pool).
    #[arg(long, value_name = "C", default_value_t = DEFAULT_CONCURRENCY)]
    concurrency: u32,
    /// Seed of the simulation's random numbers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Largest gap between a backend's simulated and intended share, in points.
    #[arg(long, value_name = "POINTS", default_value_t = DEFAULT_THRESHOLD_POINTS, value_parser = super::parse_points)]
    threshold: f64,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

fn parse_latency(s: &str) -> Result<(String, Duration), String> {
    let (name, d) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=DURATION (e.g. web-2=50ms), got `{s}`"))?;
    let d = humantime::parse_duration(d.trim()).map_err(|e| format!("`{d}`: {e}"))?;
    Ok((name.trim().to_string(), d))
}

pub(crate) fn run(args: SimulateArgs) -> ExitCode {
    match try_run(args) {
        Ok(code) | Err(code) => code,
    }
}

fn try_run(args: SimulateArgs) -> Result<ExitCode, ExitCode> {
    let loaded = load(&args.file)?;
    let config = &loaded.config;
    let pools: Vec<_> = match &args.pool {
        Some(name) => vec![config.pool(name).ok_or_else(|| {
            let known: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
            usage(format!(
                "no pool named `{name}` (pools: {})",
                known.join(", ")
            ))
        })?],
        None => config.pools.iter().collect(),
    };
    // Without --pool, a scenario's backend applies to the pools that have it.
    let names = args.down.iter().chain(args.latency.iter().map(|(n, _)| n));
    for name in names {
        if !pools
            .iter()
            .any(|p| p.backends.iter().any(|b| &b.name == name))
        {
            return Err(usage(format!("no backend named `{name}`")));
        }
    }
    let (keys, lines) = args.keys.load()?;
    let requests = args.requests.or(lines).unwrap_or(100_000);
    let mut progress = Progress::new(requests * pools.len() as u64);
    let mut reports = Vec::new();
    for (k, pool) in pools.iter().enumerate() {
        let has = |n: &String| pool.backends.iter().any(|b| &b.name == n);
        let opts = SimOptions {
            requests,
            keys: keys.clone(),
            scenario: Scenario {
                down: args.down.iter().filter(|n| has(n)).cloned().collect(),
                add: args.add,
                latency: args
                    .latency
                    .iter()
                    .filter(|(n, _)| has(n))
                    .cloned()
                    .collect(),
            },
            seed: args.seed,
            concurrency: args.concurrency,
            threshold_points: args.threshold,
            ..SimOptions::default()
        };
        let base = requests * k as u64;
        let report = simulate(pool, &opts, &mut |done, _| progress.show(base + done))
            .map_err(|e| usage(e.to_string()))?;
        reports.push(report);
    }
    progress.clear();
    // A redirect route's requests are answered by tango and reach no pool.
    let redirected = tango_core::diff::redirected_routes(config);
    match args.format {
        Format::Human => {
            for r in &redirected {
                out(&format!("{r}: answered by tango, served by no pool\n"));
            }
            if !redirected.is_empty() {
                out("\n");
            }
            reports.iter().for_each(|r| out(&human(r)));
        }
        Format::Json => out(&(serde_json::to_string_pretty(
            &serde_json::json!({ "pools": reports, "redirected": redirected }),
        )
        .unwrap_or_default()
            + "\n")),
    }
    let deviates = reports.iter().any(|r| r.verdict == Verdict::Deviates);
    Ok(ExitCode::from(if deviates { EXIT_FAILS } else { 0 }))
}

fn usage(msg: String) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_UNREADABLE)
}

/// One pool's table for a terminal.
fn human(r: &SimReport) -> String {
    let mut out = format!(
        "pool {} ({}{}), {} requests, seed {}\n",
        r.pool,
        r.policy,
        r.hash_key
            .as_ref()
            .map_or(String::new(), |k| format!(" on {k}")),
        r.requests,
        r.seed
    );
    out.push_str(&table::render(&split_table(r), "  "));
    out.push_str(&notes(r));
    out
}

/// Per backend: weight, intended share, key-space ownership (hash pools), simulated
/// share and a bar.
fn split_table(r: &SimReport) -> comfy_table::Table {
    let hash = r.backends.iter().any(|b| b.ownership_pct.is_some());
    let mut header = vec![
        ("backend", Align::Left),
        ("weight", Align::Right),
        ("intended", Align::Right),
    ];
    if hash {
        header.push(("owns", Align::Right));
    }
    header.extend([("simulated", Align::Right), ("", Align::Left)]);
    let mut t = table::new(&header);
    let top = r
        .backends
        .iter()
        .map(|b| b.simulated_pct)
        .fold(0.0, f64::max);
    for b in &r.backends {
        let note = match (b.down, b.added) {
            (true, _) => " (down)",
            (_, true) => " (added)",
            _ => "",
        };
        let fill = if top > 0.0 {
            b.simulated_pct / top
        } else {
            0.0
        };
        let mut row = vec![
            b.name.clone(),
            b.weight.to_string(),
            format!("{:.1}%", b.intended_pct),
        ];
        if hash {
            row.push(
                b.ownership_pct
                    .map_or("-".to_string(), |o| format!("{o:.1}%")),
            );
        }
        row.push(format!("{:.1}%", b.simulated_pct));
        row.push(format!("{}{note}", bar(fill, 40)).trim_start().to_string());
        t.add_row(row);
    }
    t
}

/// The lines under the table: requests not served, panic mode, the caveat and the
/// verdict.
fn notes(r: &SimReport) -> String {
    let mut out = String::new();
    if r.rejected > 0 {
        out.push_str(&format!(
            "  {} requests rejected without a key (400)\n",
            r.rejected
        ));
    }
    if r.unserved > 0 {
        out.push_str(&format!(
            "  {} requests found no eligible backend (503)\n",
            r.unserved
        ));
    }
    if r.panic {
        out.push_str("  panic mode: too few backends eligible, balancing over all of them\n");
    }
    if let Some(caveat) = &r.caveat {
        out.push_str(&format!("  caveat: {caveat}\n"));
    }
    let verdict = match r.verdict {
        Verdict::Ok => "ok".to_string(),
        Verdict::CannotJudge => "CANNOT JUDGE with synthetic keys (see the caveat)".to_string(),
        Verdict::Deviates => format!(
            "DEVIATES: {} is {:.1} points from its intended share (threshold {})",
            r.worst.as_deref().unwrap_or("?"),
            r.max_deviation_points,
            r.threshold_points
        ),
    };
    out.push_str(&format!(
        "  max/mean {:.2}, largest deviation {:.1} points: {verdict}\n\n",
        r.max_over_mean, r.max_deviation_points
    ));
    out
}

/// A progress bar on stderr (indicatif), drawn only when stderr is a terminal and the
/// run is long.
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(total: u64) -> Self {
        if !std::io::stderr().is_terminal() || total < 1_000_000 {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "  simulating [{bar:30}] {percent:>3}% {eta} left",
        ) {
            bar.set_style(style.progress_chars("█▉▊▋▌▍▎▏ "));
        }
        Progress(Some(bar))
    }

    fn show(&mut self, done: u64) {
        if let Some(b) = &self.0 {
            b.set_position(done);
        }
    }

    fn clear(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
