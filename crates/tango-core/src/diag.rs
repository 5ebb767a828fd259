//! Diagnostics: a problem found in a configuration file, where it is, and how to fix it.
//!
//! Validation errors and lint findings share this type so that `tango check` renders
//! both the same way (rustc-style: location, source line, caret, hint) and exports both
//! to JSON and SARIF.

use serde::Serialize;
use std::fmt::Write as _;

/// Byte range in the configuration source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The bytes `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

impl From<std::ops::Range<usize>> for Span {
    fn from(r: std::ops::Range<usize>) -> Self {
        Self::new(r.start, r.end)
    }
}

/// How much a problem matters: an error fails `tango check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; never fails a check.
    Info,
    /// A hazard; fails `tango check --deny-warnings`.
    Warning,
    /// The configuration is invalid or will misbehave.
    Error,
}

impl Severity {
    /// The severity's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One problem with a configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// How much it matters.
    pub severity: Severity,
    /// Stable rule ID for lint findings (`TNG001`...); `None` for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// What is wrong.
    pub message: String,
    /// Dotted key path, e.g. `pool[web].backend[2].weight`.
    pub key: String,
    /// Where it is in the file; `None` for a problem of the whole file.
    #[serde(skip)]
    pub span: Option<Span>,
    /// Why it matters (lint findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// How to fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A validation error at `key`.
    pub fn error(key: impl Into<String>, span: Option<Span>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            code: None,
            message: message.into(),
            key: key.into(),
            span,
            why: None,
            hint: None,
        }
    }

    /// The same problem with a hint on how to fix it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The candidate closest to `word` by edit distance, when it is close enough to be the
/// word meant (a transposition or a letter or two per three): for did-you-mean hints.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A configuration's text with its name, for turning spans into line:col and snippets.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name messages give it (usually the path).
    pub name: String,
    /// The text.
    pub text: String,
    line_starts: Vec<usize>,
}

/// 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LineCol {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1, in characters.
    pub col: usize,
}

impl Source {
    /// A source for `text`, named `name`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The line and column of byte `offset` (clamped to the text).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.text[start..offset].chars().count() + 1;
        LineCol {
            line: line + 1,
            col,
        }
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map(|e| e - 1)
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches('\r')
    }

    /// Render a diagnostic as rustc does: header, `--> file:line:col`, the line, a caret.
    pub fn render(&self, d: &Diagnostic) -> String {
        let mut out = String::new();
        match d.code {
            Some(code) => {
                let _ = writeln!(out, "{}[{}]: {}", d.severity.as_str(), code, d.message);
            }
            None => {
                let _ = writeln!(out, "{}: {}", d.severity.as_str(), d.message);
            }
        }
        match d.span {
            Some(span) => {
                let lc = self.line_col(span.start);
                let text = self.line_text(lc.line);
                let gutter = lc.line.to_string().len();
                let pad = " ".repeat(gutter);
                let _ = writeln!(out, "{pad}--> {}:{}:{}", self.name, lc.line, lc.col);
                let _ = writeln!(out, "{pad} |");
                let _ = writeln!(out, "{} | {}", lc.line, text);
                let line_chars = text.chars().count();
                let span_chars = self.text[span.start..span.end.min(self.text.len())]
                    .split('\n')
                    .next()
                    .map(|s| s.chars().count())
                    .unwrap_or(1);
                let width = span_chars.clamp(1, line_chars.saturating_sub(lc.col - 1).max(1));
                let _ = writeln!(
                    out,
                    "{pad} | {}{} {}",
                    " ".repeat(lc.col - 1),
                    "^".repeat(width),
                    d.key
                );
            }
            None => {
                let _ = writeln!(out, " --> {} ({})", self.name, d.key);
            }
        }
        if let Some(why) = &d.why {
            let _ = writeln!(out, "  = why: {why}");
        }
        if let Some(hint) = &d.hint {
            let _ = writeln!(out, "  = help: {hint}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let s = Source::new("t.toml", "a = 1\nbb = 2\n");
        assert_eq!(s.line_col(0), LineCol { line: 1, col: 1 });
        assert_eq!(s.line_col(6), LineCol { line: 2, col: 1 });
        assert_eq!(s.line_col(11), LineCol { line: 2, col: 6 });
    }

    #[test]
    fn did_you_mean_finds_close_words_only() {
        let keys = ["max_in_flight", "max_connections", "weight"];
        assert_eq!(did_you_mean("max_inflight", keys), Some("max_in_flight"));
        assert_eq!(did_you_mean("wieght", keys), Some("weight"));
        assert_eq!(did_you_mean("colour", keys), None);
        assert_eq!(
            did_you_mean("round_robbin", ["round_robin", "random"]),
            Some("round_robin")
        );
    }

    #[test]
    fn render_points_at_the_value() {
        let s = Source::new("t.toml", "[x]\nweight = 0\n");
        let d = Diagnostic::error(
            "x.weight",
            Some(Span::new(13, 14)),
            "weight must be at least 1",
        )
        .with_hint("use 1");
        let r = s.render(&d);
        assert!(r.contains("--> t.toml:2:10"), "{r}");
        assert!(r.contains("2 | weight = 0"), "{r}");
        assert!(r.contains("  |          ^ x.weight"), "{r}");
        assert!(r.contains("= help: use 1"), "{r}");
    }
}
