//! `tango check`: validation (with the binary's own checks: certificates, settings not
//! served yet; see `proxy::preflight`) and the configuration checklist (lint).
//!
//! Exit codes (shared with `diff` and `simulate`, see `lint::report`): 0 clean; 1 invalid
//! (shape or values), or lint errors (warnings too with `--deny-warnings`); 2 unreadable,
//! or not TOML at all.

use std::path::PathBuf;
use std::process::ExitCode;
use tango_core::config::LoadError;
use tango_core::diag::{Diagnostic, Source};
use tango_core::lint::{self, report, Allowed};

#[derive(clap::Args)]
pub(crate) struct CheckArgs {
    /// The configuration file.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    format: Format,
    /// Exit 1 on warnings too.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Sarif,
}

fn print(format: Format, source: &Source, diags: &[Diagnostic], allowed: &[Allowed]) {
    match format {
        Format::Human => print!("{}", report::human(source, diags, allowed)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report::json(source, diags, allowed)).unwrap_or_default()
        ),
        Format::Sarif => println!("{}", report::sarif(source, diags, allowed)),
    }
}

pub(crate) fn run(args: CheckArgs) -> ExitCode {
    // As `tango run` and a reload load it: validated, and its certificates read.
    match crate::proxy::preflight::load(&args.file) {
        Err(LoadError::Unreadable { path, error }) => {
            eprintln!("error: cannot read {path}: {error}");
            ExitCode::from(report::EXIT_UNREADABLE as u8)
        }
        Err(e) => {
            let Some(source) = e.source() else {
                return ExitCode::from(report::EXIT_UNREADABLE as u8);
            };
            print(args.format, source, e.diagnostics(), &[]);
            ExitCode::from(report::load_exit_code(&e) as u8)
        }
        Ok(loaded) => {
            let l = lint::lint(&loaded);
            print(args.format, &loaded.source, &l.problems, &l.allowed);
            ExitCode::from(report::exit_code(&l.problems, args.deny_warnings) as u8)
        }
    }
}
