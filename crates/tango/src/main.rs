//! The `tango` binary: the load balancer and its tools. This file holds the command line's
//! definition and hands each command to its module:
//!
//! - `proxy/`: the data plane (listeners, connections, the per-request service);
//! - `control/`: what runs beside it (`tango run`'s lifecycle, reloads, the admin API,
//!   metrics, the watch, health checks, upkeep);
//! - `cli/`: the other commands (check, simulate, diff, status, reload, timeline,
//!   post-mortem, demo, completions, man);
//! - at the root, what they share and which uses none of them: `runtime` (the snapshot
//!   and per-backend state), `upstream` (connection pools), `stats`, `journal`, `rng`,
//!   `worker` (the data plane's threads, and which one the caller is).
//!
//! `proxy/` never uses `control/` or `cli/`, and `control/` never uses `cli/`
//! (`tests/layout/` checks it).

mod cli;
mod control;
mod journal;
mod proxy;
mod rng;
mod runtime;
mod stats;
mod upstream;
mod worker;

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
    /// Review a configuration change: what it changes, where traffic moves, and whether
    /// a reload from OLD to NEW would be refused.
    #[command(
        after_help = "Exit codes: 0 a reload from OLD to NEW would pass the guard; 1 it would be refused (a new checklist error, a new warning NEW does not [[allow]], or a backend's predicted share moving more than --max-shift points in a pool not allowed to shift), or a file has mistakes; 2 a file cannot be read or is not TOML."
    )]
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
            current_thread().block_on(async move { exit(control::server::run(args).await) })
        }
        Cmd::Demo(args) => {
            control::logging::init(cli.log_format);
            multi_thread().block_on(async move { exit(cli::demo::run(args).await) })
        }
        Cmd::DemoBackend(args) => {
            control::logging::init(cli.log_format);
            current_thread().block_on(async move { exit(cli::demo::run_backend(args).await) })
        }
        Cmd::Status(args) => {
            current_thread().block_on(async move { exit(cli::ctl::status(args).await) })
        }
        Cmd::Reload(args) => {
            current_thread().block_on(async move { exit(cli::ctl::reload(args).await) })
        }
        Cmd::Timeline(args) => {
            current_thread().block_on(async move { exit(cli::ctl::timeline(args).await) })
        }
        Cmd::Postmortem(args) => {
            current_thread().block_on(async move { exit(cli::ctl::postmortem(args).await) })
        }
    }
}

/// A single-threaded runtime. For `tango run` it is the control plane's (admin API,
/// watch, health checks, upkeep, reloads, signals): a watch tick a second, a probe
/// every few seconds and the odd admin request need no second thread, and they never
/// hold up a request, which the workers (`worker.rs`) serve on threads of their own.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
}

/// The demo's: its backends and its traffic generator run beside tango's control plane.
fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
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
