//! Offline tools over configuration files: `tango simulate` (the predicted split) and
//! `tango diff` (what a change moves). What they share lives here: loading a
//! configuration with `tango check`'s messages, reading a key source, the output format.

pub(crate) mod diff;
mod routes;
pub(crate) mod simulate;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use tango_core::config::{self, Loaded};
use tango_core::lint::report;
use tango_core::simulate::{parse_access_log, parse_key_list, KeySource};

/// Exit code for input that cannot be used: unreadable, not TOML, bad key files.
/// (An invalid configuration exits as `tango check` does: see `load`.)
pub(crate) const EXIT_UNREADABLE: u8 = 2;
/// Exit code for a verdict that fails.
pub(crate) const EXIT_FAILS: u8 = 1;

/// `--requests`: at least one (no requests predict no split), and few enough that the
/// requests of every pool add up without overflow.
pub(crate) fn parse_requests(s: &str) -> Result<u64, String> {
    const MAX: u64 = 1_000_000_000;
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=MAX).contains(&n) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to {MAX}")),
    }
}

/// A limit in points of share (`--threshold`, `--max-shift`): NaN would pass every
/// verdict and a negative limit fail every one.
pub(crate) fn parse_points(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err("expected a number of points from 0 to 100".to_string()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

/// Where simulated requests' hash keys come from (default: a new random key for every
/// request, which shows a hash pool's key-space ownership).
#[derive(clap::Args, Clone)]
pub(crate) struct KeyArgs {
    /// Key values, one per line, as requests carry them: the header, cookie or query
    /// value, the path, or the client address (an empty line: a request without the key).
    #[arg(long, value_name = "FILE", group = "key_source")]
    keys: Option<PathBuf>,
    /// An access log in common or combined format (client address, path, query keys).
    #[arg(long, value_name = "FILE", group = "key_source")]
    access_log: Option<PathBuf>,
    /// Keys drawn uniformly from K distinct keys.
    #[arg(long, value_name = "K", group = "key_source")]
    uniform: Option<u64>,
    /// Keys drawn with Zipf's law of exponent S (needs --distinct): a few hot keys.
    #[arg(long, value_name = "S", group = "key_source", requires = "distinct")]
    zipf: Option<f64>,
    /// Number of distinct keys for --zipf.
    #[arg(long, value_name = "K", requires = "zipf")]
    distinct: Option<u64>,
}

impl KeyArgs {
    /// Read the key source. A file's line count is returned too: by default a key file
    /// is simulated once through, one request per line.
    pub(crate) fn load(&self) -> Result<(KeySource, Option<u64>), ExitCode> {
        if let Some(path) = &self.keys {
            let list = parse_key_list(&read(path)?);
            let n = nonempty(path, list.len(), "key lines")?;
            return Ok((KeySource::List(list), Some(n)));
        }
        if let Some(path) = &self.access_log {
            let records = parse_access_log(&read(path)?).map_err(|e| {
                eprintln!("error: {}: {e}", path.display());
                ExitCode::from(EXIT_UNREADABLE)
            })?;
            let n = nonempty(path, records.len(), "requests")?;
            return Ok((KeySource::AccessLog(records), Some(n)));
        }
        if let Some(distinct) = self.uniform {
            return Ok((KeySource::Uniform { distinct }, None));
        }
        if let (Some(s), Some(distinct)) = (self.zipf, self.distinct) {
            return Ok((KeySource::Zipf { s, distinct }, None));
        }
        Ok((KeySource::Random, None))
    }
}

/// The number of requests a key file gives, which must be some: zero requests predict
/// nothing, yet every share at 0% read as a deviation (`simulate`) or as no move at all
/// (`diff` passed a weight typo).
fn nonempty(path: &Path, n: usize, what: &str) -> Result<u64, ExitCode> {
    if n == 0 {
        eprintln!(
            "error: {} holds no {what}: give a file with at least one, or leave it out \
             to simulate random keys",
            path.display()
        );
        return Err(ExitCode::from(EXIT_UNREADABLE));
    }
    Ok(n as u64)
}

fn read(path: &Path) -> Result<String, ExitCode> {
    std::fs::read_to_string(path).map_err(|e| {
        eprintln!("error: cannot read {}: {e}", path.display());
        ExitCode::from(EXIT_UNREADABLE)
    })
}

/// Load and validate a configuration; on failure print every problem, with the summary
/// line, as `tango check` does and return the exit code `tango check` would.
pub(crate) fn load(path: &Path) -> Result<Loaded, ExitCode> {
    config::load(path).map_err(|e| {
        match e.source() {
            Some(source) => eprint!("{}", report::human(source, e.diagnostics(), &[])),
            None => eprint!("{}", e.render()),
        }
        ExitCode::from(report::load_exit_code(&e) as u8)
    })
}

/// Write to stdout, ignoring a closed pipe (`tango simulate ... | head` must not panic).
pub(crate) fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A horizontal bar of `fraction` (0-1) of `width` cells, in eighths of a cell.
pub(crate) fn bar(fraction: f64, width: usize) -> String {
    const EIGHTHS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = (fraction.clamp(0.0, 1.0) * (width * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if eighths % 8 > 0 {
        s.push(EIGHTHS[eighths % 8]);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::bar;

    #[test]
    fn bars_are_drawn_in_eighths() {
        assert_eq!(bar(0.0, 10), "");
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.5, 3), "█▌");
        assert_eq!(bar(2.0, 2), "██");
    }
}
