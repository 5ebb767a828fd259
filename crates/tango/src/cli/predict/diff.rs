//! `tango diff OLD NEW`: review a configuration change before it ships: what it changes,
//! where the traffic moves per backend (both versions simulated with the same keys and
//! seed), the lint findings the change introduces, and a verdict: the reload guard's
//! two gates as a reload from OLD to NEW meets them. The findings gate with the guard's
//! own findings and rule (`tango_core::guard::judge_findings`, `JudgedFinding::refuses`);
//! the shift gate judged by the guard's function (`tango_core::diff::judge_moves`), with
//! OLD's `[guard]` settings and NEW's `[guard] allow_shift`. What the guard knows and a
//! file does not (the live traffic it samples and observes) is said, per pool, rather
//! than guessed.
//!
//! Exit codes: 0 passes; 1 the reload would be refused (a new checklist error, a new
//! warning NEW does not `[[allow]]`, or a backend's predicted share moving more than
//! --max-shift points in a pool not allowed to shift, or, predicted from --access-log,
//! the new routes giving a backend that much more of all requests than the busiest takes
//! today: see `routes.rs`), or a configuration has mistakes;
//! 2 unusable input (unreadable, not TOML). The same as `check` and `simulate`:
//! docs/configuration.md.

use super::routes::RouteReview;
use super::{load, out, Format, KeyArgs, EXIT_FAILS, EXIT_UNREADABLE};
use crate::cli::table::{self, Align};
use std::path::PathBuf;
use std::process::ExitCode;
use tango_core::config::{Loaded, PolicyKind};
use tango_core::diag::Diagnostic;
use tango_core::diff::{
    diff, new_findings, DiffOptions, DiffReport, DiffVerdict, PoolShift, PoolStatus,
};
use tango_core::guard::canary::changed_pools;
use tango_core::guard::{file_allows_shift, judge_findings, JudgedFinding, KeyBasis, Refusal};
use tango_core::lint::{self, report};
use tango_core::simulate::{KeySource, SimOptions};

#[derive(clap::Args)]
pub(crate) struct DiffArgs {
    /// The configuration in force.
    old: PathBuf,
    /// The proposed configuration.
    new: PathBuf,
    /// Largest acceptable move of a backend's predicted share, in points (default: OLD's
    /// `[guard] max_shift`, the limit a reload from OLD is judged by).
    #[arg(long, value_name = "POINTS", value_parser = super::parse_points)]
    max_shift: Option<f64>,
    /// A pool whose traffic is meant to move (repeatable): reported, never failing. A
    /// pool NEW adds to `[guard] allow_shift` is allowed too, as a reload allows it.
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
    let mut allow_shift = args.allow_shift.clone();
    for p in &new.config.pools {
        if file_allows_shift(&old.config.guard, &new.config.guard, &p.name) {
            allow_shift.push(p.name.clone());
        }
    }
    let opts = DiffOptions {
        sim: SimOptions {
            requests: args.requests.or(lines).unwrap_or(100_000),
            keys,
            seed: args.seed,
            ..SimOptions::default()
        },
        max_shift_points: args.max_shift.unwrap_or(old.config.guard.max_shift_points),
        allow_shift,
    };
    let r = diff(&old.config, &new.config, &opts).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_UNREADABLE)
    })?;
    let review = Review::of(&r, &old, &new);
    // The route gate as a reload from OLD runs it, at the limit this review applies.
    let settings = tango_core::config::Guard {
        max_shift_points: opts.max_shift_points,
        ..old.config.guard.clone()
    };
    let routes = RouteReview::new(
        &old.config,
        &new.config,
        &opts.sim.keys,
        &settings,
        &opts.allow_shift,
    );
    let notes = guard_notes(&old, &new, &opts.sim.keys);
    match args.format {
        Format::Human => {
            let mut text = human(&r, &args) + &routes.human();
            if !review.found.is_empty() {
                text += &format!("new lint findings in {}:\n", new.source.name);
                text += &report::human(&new.source, &review.found, &[]);
            }
            if !notes.is_empty() {
                text += "what a reload's guard weighs beyond this review:\n";
                for n in &notes {
                    text += &format!("  - {n}\n");
                }
            }
            out(&(text + &routes.verdict(review.verdict_line(&r, &new)) + "\n"));
        }
        Format::Json => {
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            v["verdict"] = serde_json::to_value(review.verdict).unwrap_or_default();
            v["refusals"] = review.refusals.iter().map(Refusal::sentence).collect();
            v["new_findings"] = report::json(&new.source, &review.found, &[]);
            v["guard_notes"] = notes.into();
            v["routes"] = routes.json();
            if routes.fails() {
                v["verdict"] = "fail".into();
            }
            out(&(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"));
        }
    }
    Ok(ExitCode::from(match (review.verdict, routes.fails()) {
        (DiffVerdict::Fail, _) | (_, true) => EXIT_FAILS,
        (DiffVerdict::Pass, false) => 0,
    }))
}

/// The verdict a reload from OLD to NEW gets from the guard's two gates: the findings
/// gate, with the guard's own findings (`judge_findings`, compared by rule and key
/// with OLD's) and its own rule for which of them refuse (`JudgedFinding::refuses`),
/// and the shift gate as `diff` judged it. The findings are judged whether or not
/// OLD's guard is enabled, as the shifts are: a review judges what a guard would.
struct Review {
    /// The new findings NEW does not allow, as the lint report lists them.
    found: Vec<Diagnostic>,
    /// The new findings NEW allows (OLD had no finding of the rule at the key): what
    /// the file's `[[allow]]` lets through, with its reason.
    allowed: Vec<JudgedFinding>,
    /// What refuses the reload, findings first, in the guard's words.
    refusals: Vec<Refusal>,
    /// Fail when anything refuses it.
    verdict: DiffVerdict,
}

impl Review {
    fn of(r: &DiffReport, old: &Loaded, new: &Loaded) -> Review {
        let findings = judge_findings(old, new);
        let found = (findings.iter().filter(|f| f.new))
            .map(|f| f.diagnostic.clone())
            .collect();
        // An allowed finding is never "new" to the guard (it never refuses); the ones
        // OLD did not have at all are what the change brings in under an allowance.
        let old_lint = lint::lint(old);
        let old_all: Vec<Diagnostic> = (old_lint.problems.into_iter())
            .chain(old_lint.allowed.into_iter().map(|a| a.diagnostic))
            .collect();
        let new_allowed: Vec<Diagnostic> = (findings.iter())
            .filter(|f| f.allowed.is_some())
            .map(|f| f.diagnostic.clone())
            .collect();
        let brought = new_findings(&old_all, &new_allowed);
        let allowed = (findings.iter())
            .filter(|f| f.allowed.is_some() && brought.contains(&f.diagnostic))
            .cloned()
            .collect();
        let mut refusals: Vec<Refusal> = (findings.into_iter())
            .filter(JudgedFinding::refuses)
            .map(Refusal::Finding)
            .collect();
        refusals.extend(shift_refusals(r, old));
        let verdict = match refusals.is_empty() && r.verdict == DiffVerdict::Pass {
            true => DiffVerdict::Pass,
            false => DiffVerdict::Fail,
        };
        Review {
            found,
            allowed,
            refusals,
            verdict,
        }
    }

    fn verdict_line(&self, r: &DiffReport, new: &Loaded) -> String {
        let limit = r.max_shift_points;
        if self.verdict == DiffVerdict::Pass {
            let allowed: Vec<String> = (self.allowed.iter())
                .map(|f| {
                    format!(
                        "{} {} at {} allowed by the file ({})",
                        f.diagnostic.severity.as_str(),
                        f.diagnostic.code.unwrap_or("TNG000"),
                        f.location,
                        f.allowed.as_deref().unwrap_or_default()
                    )
                })
                .collect();
            let allowed = match allowed.is_empty() {
                true => String::new(),
                false => format!("; {}", allowed.join("; ")),
            };
            return format!(
                "verdict: pass (no new checklist error or warning {} does not allow, and no backend's share moves more than {limit} points{allowed})",
                new.source.name
            );
        }
        let mut steps = Vec::new();
        if (self.refusals.iter()).any(|x| matches!(x, Refusal::Finding(_))) {
            steps.push(format!(
                "fix a new finding, or allow it in {} ([[allow]] with a reason; a reload can be forced past a warning, never an error)",
                new.source.name
            ));
        }
        if r.verdict == DiffVerdict::Fail {
            steps.push(
                "if the shift is intended, pass --allow-shift POOL or a higher --max-shift".into(),
            );
        }
        let reasons: Vec<String> = self.refusals.iter().map(Refusal::sentence).collect();
        format!(
            "verdict: FAIL: {}; {}",
            reasons.join("; "),
            steps.join("; ")
        )
    }
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
        out.push_str(&shares(p));
        out.push_str(&judged(p));
    }
    out.push('\n');
    out
}

/// A pool's backends, one row each: a backend keeps its row when its address changes
/// (same name) or its name does (same address).
fn shares(p: &PoolShift) -> String {
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
        let over = (p.moves.kept.iter().chain(&p.moves.joined)).any(|k| k.name == b.name && k.over);
        if over {
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

/// When backends were added or removed, what the verdict measures: the split among the
/// backends both versions have (a backend added or removed takes or leaves its own
/// share), and each backend added beside the median share of those it joins.
fn judged(p: &PoolShift) -> String {
    if p.status != PoolStatus::Kept || !p.moves.membership_changed {
        return String::new();
    }
    let largest = (p.moves.kept.iter())
        .map(|k| k.move_points())
        .max_by(|a, b| a.abs().total_cmp(&b.abs()))
        .unwrap_or(0.0);
    let mut out = format!(
        "  judged among the backends both versions have: largest move {largest:+.1} points\n"
    );
    for j in &p.moves.joined {
        out.push_str(&format!(
            "  {} joins taking {:.1}% of the pool, where the backends it joins take {:.1}% each ({:+.1} points)\n",
            j.name,
            j.to_pct,
            j.from_pct,
            j.move_points()
        ));
    }
    out
}

/// What the reload guard judges from the running instance, which two files cannot show:
/// said for each pool a reload would judge, so an operator knows where the reload's
/// verdict may differ from this one.
fn guard_notes(old: &Loaded, new: &Loaded, keys: &KeySource) -> Vec<String> {
    let g = &old.config.guard;
    let mut out = Vec::new();
    if !g.enabled {
        out.push(format!(
            "{} has [guard] enabled = false: a reload from it is not judged, and only this review stands between the change and the traffic",
            old.source.name
        ));
    }
    for scope in changed_pools(&old.config, &new.config) {
        let versions = [old.config.pool(&scope.pool), new.config.pool(&scope.pool)];
        let policies: Vec<PolicyKind> = versions.iter().flatten().map(|p| p.policy).collect();
        if policies.iter().any(|k| k.is_hash()) {
            let here = match keys {
                KeySource::Random => "random keys (each backend's key space)".to_string(),
                _ => "the keys given here".to_string(),
            };
            out.push(format!(
                "pool {} hashes: a reload predicts it from the requests tango sampled from live traffic (the key space's split until it has {} of them, unless they show a move over the limit beyond {} standard errors of their noise), which this review does not have: it used {here}, and the reload's verdict may differ",
                scope.pool, g.min_sample, g.noise_sigmas
            ));
        }
        if policies
            .iter()
            .any(|k| matches!(k, PolicyKind::LeastRequest | PolicyKind::PeakEwma))
        {
            out.push(format!(
                "pool {}'s policy follows load: a reload models the pool at its observed request rate and latency, which this review does not have",
                scope.pool
            ));
        }
    }
    out
}

/// The shift gate's refusals, in the reload guard's own sentence, so the reason reads
/// as the reload's will.
fn shift_refusals(r: &DiffReport, old: &Loaded) -> Vec<Refusal> {
    (r.pools.iter())
        .filter(|p| p.fails)
        .filter_map(|p| {
            // Two files carry no live traffic: no observed rate, no sample (so no noise).
            Refusal::shift(
                &p.pool,
                &p.moves,
                KeyBasis::Weights,
                0.0,
                r.max_shift_points,
                old.config.guard.allow_shift.contains(&p.pool),
            )
        })
        .collect()
}
