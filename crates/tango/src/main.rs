//! The `tango` binary: the load balancer and its tools. This file holds the command line's
//! definition and hands each command to its module:
//!
//! - `proxy/`: the data plane (listeners, connections, the per-request service);
//! - `control/`: what runs beside it (`tango run`'s lifecycle, reloads, the admin API,
//!   metrics, the watch, health checks, upkeep);
//! - `cli/`: the other commands (check, simulate, diff, status, reload, timeline,
//!   post-mortem, demo, completions, man);
//! - at the root, what they share and which uses none of them: `runtime` (the snapshot
//!   and per-backend state), `upstream` (connection pools), `stats`, `journal`, `rng`.
//!
//! `proxy/` never uses `control/` or `cli/`, and `control/` never uses `cli/`
//! (`tests/layout.rs` checks it).

mod cli;
mod control;
mod journal;
mod proxy;
mod rng;
mod runtime;
mod stats;
mod upstream;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tango",
    version,
    about = "An HTTP load balancer that watches its own traffic split."
)]
struct Cli {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value = "human")]
    log_format: control::logging::Format,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the load balancer.
    Run(control::server::RunArgs),
    /// Validate a configuration and run the configuration checklist.
    Check(cli::check::CheckArgs),
    /// Show a running instance's pools and backends.
    Status(cli::ctl::CtlArgs),
    /// Ask a running instance to re-read its configuration (checked and judged by its
    /// reload guard; exits non-zero when refused).
    Reload(cli::ctl::ReloadArgs),
    /// The journal as a time-ordered list: changes, health, ejections, alerts.
    Timeline(cli::ctl::SourceArgs),
    /// A Markdown post-incident review draft for a period, from the journal.
    Postmortem(cli::ctl::PostmortemArgs),
    /// A self-contained demo: demo backends, tango in front, and traffic.
    Demo(cli::demo::DemoArgs),
    /// Run one demo backend that answers with its name.
    DemoBackend(cli::demo::BackendArgs),
    /// Predict a configuration's traffic split with the real policy code.
    Simulate(cli::predict::simulate::SimulateArgs),
    /// Review a configuration change: what it changes and where traffic moves.
    Diff(cli::predict::diff::DiffArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(cli::manual::CompletionsArgs),
    /// Print the man page, or write one per command into a directory.
    Man(cli::manual::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Check(args) => cli::check::run(args),
        Cmd::Simulate(args) => cli::predict::simulate::run(args),
        Cmd::Diff(args) => cli::predict::diff::run(args),
        Cmd::Completions(args) => cli::manual::completions(args, Cli::command()),
        Cmd::Man(args) => cli::manual::man(args, Cli::command()),
        Cmd::Run(args) => {
            control::logging::init(cli.log_format);
            runtime_for(args.workers)
                .block_on(async move { exit(control::server::run(args).await) })
        }
        Cmd::Demo(args) => {
            control::logging::init(cli.log_format);
            runtime_for(None).block_on(async move { exit(cli::demo::run(args).await) })
        }
        Cmd::DemoBackend(args) => {
            control::logging::init(cli.log_format);
            runtime_for(Some(1)).block_on(async move { exit(cli::demo::run_backend(args).await) })
        }
        Cmd::Status(args) => {
            runtime_for(Some(1)).block_on(async move { exit(cli::ctl::status(args).await) })
        }
        Cmd::Reload(args) => {
            runtime_for(Some(1)).block_on(async move { exit(cli::ctl::reload(args).await) })
        }
        Cmd::Timeline(args) => {
            runtime_for(Some(1)).block_on(async move { exit(cli::ctl::timeline(args).await) })
        }
        Cmd::Postmortem(args) => {
            runtime_for(Some(1)).block_on(async move { exit(cli::ctl::postmortem(args).await) })
        }
    }
}

/// One worker runs on tokio's current-thread scheduler: with a single thread there is
/// nothing to steal, and the multi-threaded scheduler's cross-thread bookkeeping costs
/// about a fifth of the CPU per proxied request. More workers share a multi-threaded
/// scheduler.
fn runtime_for(workers: Option<usize>) -> tokio::runtime::Runtime {
    let mut b = match workers {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n.max(1));
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    b.enable_all().build().expect("the tokio runtime starts")
}

fn exit(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<control::server::Rendered>() {
                Some(r) => eprintln!("{r}"),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}
