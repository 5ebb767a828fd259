//! Logging with tracing: human-readable by default, JSON lines with `--log-format json`.
//! `RUST_LOG` filters as usual (default `info`). Colour only when stderr is a terminal
//! and `NO_COLOR` is unset, so journald and redirected files get plain text.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Format {
    Human,
    Json,
}

pub(crate) fn init(format: Format) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        Format::Human => b.try_init(),
        Format::Json => b.json().flatten_event(true).try_init(),
    };
}

/// Colour on a terminal, unless `NO_COLOR` is set to anything but the empty string
/// (<https://no-color.org>).
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// A problem rendered for a terminal (message, `--> file:line:col`, the source line, a
/// caret, a hint) as one line for the log: `file:line:col: message (hint)`.
pub(crate) fn one_line(rendered: &str) -> String {
    let mut lines = rendered.lines().map(str::trim);
    let message = lines.next().unwrap_or("");
    let mut at = None;
    let mut notes = Vec::new();
    for l in lines {
        if let Some(loc) = l.strip_prefix("--> ") {
            at = Some(loc);
        } else if let Some(note) = l.strip_prefix("= ") {
            notes.push(note);
        }
    }
    let mut out = match at {
        Some(loc) => format!("{loc}: {message}"),
        None => message.to_string(),
    };
    if !notes.is_empty() {
        out.push_str(&format!(" ({})", notes.join("; ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{colour, one_line};
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some(OsStr::new(""))));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(false, None));
    }

    #[test]
    fn a_rendered_problem_becomes_one_line() {
        let r = "error[TNG201]: weight must be at least 1\n  --> tango.toml:12:10\n   |\n12 | weight = 0\n   |          ^ pool.backend.weight\n  = why: a zero weight sends nothing\n  = fix: use 1\n";
        assert_eq!(
            one_line(r),
            "tango.toml:12:10: error[TNG201]: weight must be at least 1 (why: a zero weight sends nothing; fix: use 1)"
        );
        assert_eq!(
            one_line("binding listener `a`: in use"),
            "binding listener `a`: in use"
        );
    }
}
