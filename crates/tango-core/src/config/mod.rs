//! Configuration: the TOML file types (`file`), the validated model (`model`) and the
//! step between them (`validate`), which reports every problem at once and takes every
//! default from `defaults`; and the redaction of the file's text before it is served
//! (`redact`).
//!
//! `parse` is pure. `load` is the edge that reads: the file, and the one environment
//! variable a configuration takes (`TANGO_ADMIN_TOKEN`).

pub mod defaults;
pub mod file;
mod model;
mod redact;
mod schema;
mod validate;

pub use model::*;
pub use redact::{redact_admin_token, REDACTED};
#[cfg(test)]
pub(crate) use validate::parse_template;

/// The environment variable that supplies the admin token (it wins over the file).
pub const ADMIN_TOKEN_ENV: &str = "TANGO_ADMIN_TOKEN";

/// What the process environment contributes to a configuration.
#[derive(Clone, Default)]
pub struct Env {
    /// `TANGO_ADMIN_TOKEN`, surrounding whitespace trimmed; unset or empty is `None`.
    pub admin_token: Option<String>,
}

impl Env {
    /// Read from the process environment.
    pub fn from_process() -> Env {
        let admin_token = std::env::var(ADMIN_TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        Env { admin_token }
    }
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

use crate::diag::{Diagnostic, Source, Span};
use std::path::Path;

/// A configuration parsed and validated, with the file types kept for lint (spans).
#[derive(Debug)]
pub struct Loaded {
    /// The text, for messages with line:col.
    pub source: Source,
    /// The file as written.
    pub file: file::ConfigFile,
    /// The validated configuration.
    pub config: Config,
    /// What the binary read from the certificates the file names (tango-core reads no
    /// files): empty until it fills it in, for the checklist's rules on their dates.
    pub certificates: Vec<CertificateFacts>,
}

/// A certificate's file, names and dates, as the binary read them, for the checklist.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificateFacts {
    /// The key path of its `cert` (`listener[web].tls.certs[0].cert`).
    pub key: String,
    /// Where `cert` is in the file.
    pub span: Span,
    /// The certificate file, as read (relative paths resolved).
    pub file: String,
    /// The server names it answers (empty: only as the listener's default).
    pub names: Vec<String>,
    /// The end-entity certificate's notBefore, in seconds since the Unix epoch.
    pub not_before: i64,
    /// The end-entity certificate's notAfter, in seconds since the Unix epoch.
    pub not_after: i64,
    /// When it was read, in seconds since the Unix epoch: the checklist's "now".
    pub read_at: i64,
}

/// Why a configuration could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read at all.
    Unreadable {
        /// The path as given.
        path: String,
        /// Why it could not be read.
        error: std::io::Error,
    },
    /// The TOML does not parse, or does not fit the schema so far that it cannot be read
    /// (a required key missing or of the wrong type): every shape problem found.
    Parse {
        /// The text.
        source: Source,
        /// Every shape problem found.
        diagnostics: Vec<Diagnostic>,
    },
    /// The file parses but has problems (every one of them).
    Invalid {
        /// The text.
        source: Source,
        /// Every problem found.
        diagnostics: Vec<Diagnostic>,
    },
}

impl LoadError {
    /// The problems found; none when the file could not be read.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Unreadable { .. } => &[],
            LoadError::Parse { diagnostics, .. } | LoadError::Invalid { diagnostics, .. } => {
                diagnostics
            }
        }
    }

    /// The text, when the file could be read.
    pub fn source(&self) -> Option<&Source> {
        match self {
            LoadError::Unreadable { .. } => None,
            LoadError::Parse { source, .. } | LoadError::Invalid { source, .. } => Some(source),
        }
    }

    /// Every problem rendered for a terminal, followed by a one-line summary.
    pub fn render(&self) -> String {
        match self {
            LoadError::Unreadable { path, error } => {
                format!("error: cannot read {path}: {error}\n")
            }
            LoadError::Parse {
                source,
                diagnostics,
            }
            | LoadError::Invalid {
                source,
                diagnostics,
            } => {
                let mut out: String = diagnostics
                    .iter()
                    .map(|d| source.render(d) + "\n")
                    .collect();
                out.push_str(&format!(
                    "{}: {} problem(s) found\n",
                    source.name,
                    diagnostics.len()
                ));
                out
            }
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for LoadError {}

/// Parse and validate configuration text. `name` is used in messages; relative paths in
/// the file are resolved against `base`. The environment plays no part (see `parse_with`).
pub fn parse(name: &str, text: &str, base: &Path) -> Result<Loaded, LoadError> {
    parse_with(name, text, base, &Env::default())
}

/// `parse`, with what the environment contributes.
pub fn parse_with(name: &str, text: &str, base: &Path, env: &Env) -> Result<Loaded, LoadError> {
    let source = Source::new(name, text);
    // Unknown keys and wrong types are collected first and blanked from the text serde
    // reads, so that validation still runs and one run reports every mistake.
    let (mut shape, sanitised) = match schema::check(text) {
        Some(s) => (s.diagnostics, s.sanitised),
        None => (Vec::new(), text.to_string()),
    };
    let file: file::ConfigFile = match toml::from_str(&sanitised) {
        Ok(f) => f,
        Err(e) => {
            let span = e.span().map(Span::from);
            // serde's error may be one the shape pass already reported (a required key
            // of the wrong type is not blanked): report it once.
            let known = shape
                .iter()
                .any(|d| matches!((d.span, span), (Some(a), Some(b)) if overlap(a, b)));
            if !known {
                let (msg, hint) = explain(e.message().trim());
                let d = Diagnostic::error("", span, msg).with_hint(hint);
                shape.push(d);
            }
            return Err(LoadError::Parse {
                source,
                diagnostics: shape,
            });
        }
    };
    match validate::validate(&file, base, env) {
        Ok(_) if !shape.is_empty() => Err(LoadError::Invalid {
            source,
            diagnostics: shape,
        }),
        Ok(config) => Ok(Loaded {
            source,
            file,
            config,
            certificates: Vec::new(),
        }),
        Err(diagnostics) if shape.is_empty() => Err(LoadError::Invalid {
            source,
            diagnostics,
        }),
        Err(diagnostics) => {
            // Shape and validation problems interleaved in the order of the file.
            shape.extend(diagnostics);
            shape.sort_by_key(|d| d.span.map_or(usize::MAX, |s| s.start));
            Err(LoadError::Invalid {
                source,
                diagnostics: shape,
            })
        }
    }
}

/// Read, parse and validate a configuration file, with the process environment.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    load_with(path, &Env::from_process())
}

/// `load` with a given environment.
pub fn load_with(path: &Path, env: &Env) -> Result<Loaded, LoadError> {
    let unreadable = |error| LoadError::Unreadable {
        path: path.display().to_string(),
        error,
    };
    let bytes = std::fs::read(path).map_err(unreadable)?;
    let text =
        String::from_utf8(bytes).map_err(|e| unreadable(not_utf8(e.as_bytes(), e.utf8_error())))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse_with(&path.display().to_string(), &text, base, env)
}

/// Where a file stops being UTF-8, so the byte can be found and the file fixed.
fn not_utf8(bytes: &[u8], e: std::str::Utf8Error) -> std::io::Error {
    let at = e.valid_up_to();
    let before = &bytes[..at];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    // Both ends are on character boundaries: the text before `at` is valid UTF-8.
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "not UTF-8 at line {line}, column {col} (byte 0x{:02x}): save the file as UTF-8",
            bytes[at]
        ),
    )
}

/// Two spans share a byte (an empty span counts as its first byte).
fn overlap(a: Span, b: Span) -> bool {
    a.start < b.end.max(b.start + 1) && b.start < a.end.max(a.start + 1)
}

/// serde's message, made plain where it speaks of Rust types, and a hint.
fn explain(msg: &str) -> (String, &'static str) {
    // An integer past 64 bits reaches serde as an i128 (TOML's integers are 64-bit).
    if let Some(n) = msg
        .strip_prefix("invalid type: integer `")
        .and_then(|rest| rest.split_once("` as i128"))
        .map(|(n, _)| n)
    {
        return (
            format!("{n} does not fit in 64 bits, the size of TOML's whole numbers"),
            "use a number in the key's range (docs/configuration.md gives each)",
        );
    }
    (msg.to_string(), parse_hint(msg))
}

fn parse_hint(msg: &str) -> &'static str {
    if msg.contains("unknown field") {
        "check the spelling; docs/configuration.md lists every key"
    } else if msg.contains("missing field") {
        "add the required key"
    } else if msg.contains("invalid type") {
        "check the value's type: strings are quoted, numbers are not"
    } else {
        "fix the TOML syntax at this point"
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_protocols;
#[cfg(test)]
mod tests_routes;
