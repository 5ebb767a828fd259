//! `tango diff OLD NEW`: review a configuration change before it ships: what it changes,
//! where the traffic moves per backend (both versions simulated with the same keys and
//! seed), the lint findings the change introduces, and a verdict.
//!
//! Exit codes: 0 passes; 1 a backend's predicted share moves more than --max-shift
//! points in a pool not allowed to shift (or, predicted from --access-log, the new routes
//! give a backend that much more of all requests than the busiest takes today: see
//! `routes.rs`), or a configuration has mistakes; 2 unusable
//! input (unreadable, not TOML). The same as `check` and `simulate`: docs/configuration.md.

use super::routes::RouteReview;
use super::{load, out, Format, KeyArgs, EXIT_FAILS, EXIT_UNREADABLE};
use crate::cli::table::{self, Align};
use std::path::PathBuf;
use std::process::ExitCode;
use tango_core::diff::{
    diff, new_findings, DiffOptions, DiffReport, DiffVerdict, PoolShift, PoolStatus,
    DEFAULT_MAX_SHIFT_POINTS,
};
use tango_core::lint::{self, report};
use tango_core::simulate::SimOptions;

#[derive(clap::Args)]
pub(crate) struct DiffArgs {
    /// The configuration in force.
    old: PathBuf,
    /// The proposed configuration.
    new: PathBuf,
    /// Largest acceptable move of a backend's predicted share, in points.
    #[arg(long, value_name = "POINTS", default_value_t = DEFAULT_MAX_SHIFT_POINTS, value_parser = super::parse_points)]
    max_shift: f64,
    /// A pool whose traffic is meant to move (repeatable): reported, never failing.
    #[arg(long, value_name = "POOL")]
    allow_shift: Vec<String>,
    /// Requests simulated per pool and version (default: one per key line, else 100000).
    #[arg(long, value_name = "N", value_parser = super::parse_requests)]
    requests: Option<u64>,
    #[command(flatten)]
    keys: KeyArgs,
    /// Seed of the simulation's random numbers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
}

pub(crate) fn run(args: DiffArgs) -> ExitCode {
    match try_run(args) {
        Ok(code) | Err(code) => code,
    }
}

fn try_run(args: DiffArgs) -> Result<ExitCode, ExitCode> {
    let old = load(&args.old)?;
    let new = load(&args.new)?;
    let (keys, lines) = args.keys.load()?;
    let opts = DiffOptions {
        sim: SimOptions {
            requests: args.requests.or(lines).unwrap_or(100_000),
            keys,
            seed: args.seed,
            ..SimOptions::default()
        },
        max_shift_points: args.max_shift,
        allow_shift: args.allow_shift.clone(),
    };
    let r = diff(&old.config, &new.config, &opts).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_UNREADABLE)
    })?;
    let found = new_findings(&lint::check(&old), &lint::check(&new));
    let routes = RouteReview::new(
        &old.config,
        &new.config,
        &opts.sim.keys,
        args.max_shift,
        &args.allow_shift,
    );
    match args.format {
        Format::Human => {
            let mut text = human(&r, &args) + &routes.human();
            if !found.is_empty() {
                text += &format!("new lint findings in {}:\n", new.source.name);
                text += &report::human(&new.source, &found, &[]);
            }
            out(&(text + &routes.verdict(verdict_line(&r)) + "\n"));
        }
        Format::Json => {
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            v["new_findings"] = report::json(&new.source, &found, &[]);
            v["routes"] = routes.json();
            if routes.fails() {
                v["verdict"] = "fail".into();
            }
            out(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"));
        }
    }
    Ok(ExitCode::from(match (r.verdict, routes.fails()) {
        (DiffVerdict::Fail, _) | (_, true) => EXIT_FAILS,
        (DiffVerdict::Pass, false) => 0,
    }))
}

fn human(r: &DiffReport, args: &DiffArgs) -> String {
    let mut out = format!("{} -> {}\n", args.old.display(), args.new.display());
    if !r.split_changes.is_empty() {
        out.push_str("split changes (requests leave or join a pool whole):\n");
        for c in &r.split_changes {
            out.push_str(&format!("  - {c}\n"));
        }
    }
    if r.changes.is_empty() && r.other_changes.is_empty() {
        if r.split_changes.is_empty() {
            out.push_str("no changes that move traffic\n");
        }
    } else {
        out.push_str("changes, most likely to move traffic first:\n");
        for c in &r.changes {
            out.push_str(&format!("  - {}\n", c.describe()));
        }
        for c in &r.other_changes {
            out.push_str(&format!("  - {c}\n"));
        }
    }
    for p in &r.pools {
        let note = match (p.status, p.allowed) {
            (PoolStatus::Added, _) => " (new pool)",
            (PoolStatus::Removed, _) => " (removed pool)",
            (_, true) => " (shift allowed)",
            _ => "",
        };
        out.push_str(&format!(
            "\npool {}{note}: predicted share per backend\n",
            p.pool
        ));
        out.push_str(&shares(p, r.max_shift_points));
    }
    out.push('\n');
    out
}

/// A pool's backends, one row each: a backend keeps its row when its address changes
/// (same name) or its name does (same address).
fn shares(p: &PoolShift, max_shift_points: f64) -> String {
    let mut t = table::new(&[
        ("backend", Align::Left),
        ("address", Align::Left),
        ("old", Align::Right),
        ("new", Align::Right),
        ("change", Align::Right),
        ("note", Align::Left),
    ]);
    for b in &p.backends {
        let side = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}%"));
        let arrow = match b.delta_points {
            d if d > 0.05 => "↑",
            d if d < -0.05 => "↓",
            _ => "=",
        };
        let mut notes = Vec::new();
        match (b.old_pct, b.new_pct) {
            (None, _) if p.status == PoolStatus::Kept => notes.push("added".to_string()),
            (_, None) if p.status == PoolStatus::Kept => notes.push("removed".to_string()),
            _ => {}
        }
        if let Some(old) = &b.renamed_from {
            notes.push(format!("renamed from {old}"));
        }
        if let Some(old) = &b.moved_from {
            notes.push(format!("address was {old}"));
        }
        if p.status == PoolStatus::Kept && b.delta_points.abs() > max_shift_points {
            notes.push("over the limit".to_string());
        }
        t.add_row(vec![
            b.name.clone(),
            b.address.clone(),
            side(b.old_pct),
            side(b.new_pct),
            format!("{arrow} {:+.1} points", b.delta_points),
            notes.join("; "),
        ]);
    }
    table::render(&t, "  ")
}

fn verdict_line(r: &DiffReport) -> String {
    let failing: Vec<String> = r
        .pools
        .iter()
        .filter(|p| p.fails)
        .map(|p| {
            let worst = p
                .backends
                .iter()
                .max_by(|a, b| a.delta_points.abs().total_cmp(&b.delta_points.abs()));
            format!(
                "{} in pool {} moves {:+.1} points",
                worst.map_or("?", |b| b.name.as_str()),
                p.pool,
                worst.map_or(0.0, |b| b.delta_points)
            )
        })
        .collect();
    match r.verdict {
        DiffVerdict::Pass => format!(
            "verdict: pass (no backend's share moves more than {} points)",
            r.max_shift_points
        ),
        DiffVerdict::Fail => format!(
            "verdict: FAIL: {} (limit {} points); if intended, pass --allow-shift POOL or a higher --max-shift",
            failing.join("; "),
            r.max_shift_points
        ),
    }
}
