//! `tango check`'s output: the same diagnostics (validation errors and lint findings)
//! for a terminal, as JSON, and as SARIF 2.1.0 for code-scanning UIs; and the exit code.
//!
//! Exit codes, the same for `tango check`, `diff` and `simulate`: 0 when nothing is
//! wrong (info findings and allowed findings do not count); 1 when the configuration has
//! errors (unknown keys, wrong types, invalid values, lint errors; warnings too with
//! `--deny-warnings`) or the verdict fails; 2 when a file cannot be read or is not TOML.

use super::rules::{self, Rule, INVALID, INVALID_ID, RULES};
use super::Allowed;
use crate::diag::{Diagnostic, Severity, Source};
use serde_json::{json, Value};

/// Nothing to fix.
pub const EXIT_CLEAN: i32 = 0;
/// Errors, or warnings under `--deny-warnings`.
pub const EXIT_PROBLEMS: i32 = 1;
/// A file could not be read, or is not TOML at all.
pub const EXIT_UNREADABLE: i32 = 2;

/// The exit code for a configuration that did not load: 2 when it could not be read or
/// is not TOML, 1 when it is TOML with mistakes in it (of shape or of value alike).
pub fn load_exit_code(e: &crate::config::LoadError) -> i32 {
    match e.source() {
        Some(source) if source.text.parse::<toml::Table>().is_ok() => EXIT_PROBLEMS,
        _ => EXIT_UNREADABLE,
    }
}

/// `tango check`'s exit code for a file that parsed, given its diagnostics.
pub fn exit_code(diags: &[Diagnostic], deny_warnings: bool) -> i32 {
    let c = Counts::of(diags);
    if c.errors > 0 || (deny_warnings && c.warnings > 0) {
        EXIT_PROBLEMS
    } else {
        EXIT_CLEAN
    }
}

/// How many diagnostics of each severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Errors.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
    /// Infos.
    pub infos: usize,
}

impl Counts {
    /// The counts in `diags`.
    pub fn of(diags: &[Diagnostic]) -> Self {
        let mut c = Counts::default();
        for d in diags {
            match d.severity {
                Severity::Error => c.errors += 1,
                Severity::Warning => c.warnings += 1,
                Severity::Info => c.infos += 1,
            }
        }
        c
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// For a terminal: each diagnostic rustc-style, the allowed findings with their
/// reasons, and a one-line summary.
pub fn human(source: &Source, diags: &[Diagnostic], allowed: &[Allowed]) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&source.render(d));
        out.push('\n');
    }
    for a in allowed {
        let d = &a.diagnostic;
        out.push_str(&format!(
            "allowed[{}]: {}\n",
            d.code.unwrap_or(INVALID_ID),
            d.message
        ));
        match d.span {
            Some(s) => {
                let lc = source.line_col(s.start);
                out.push_str(&format!("  --> {}:{}:{}\n", source.name, lc.line, lc.col));
            }
            None => out.push_str(&format!("  --> {} ({})\n", source.name, d.key)),
        }
        out.push_str(&format!("  = reason: {}\n\n", a.reason));
    }
    let c = Counts::of(diags);
    let mut summary = if diags.is_empty() {
        "no problems found".to_string()
    } else {
        format!(
            "{}, {}, {}",
            plural(c.errors, "error", "errors"),
            plural(c.warnings, "warning", "warnings"),
            plural(c.infos, "info", "infos")
        )
    };
    if !allowed.is_empty() {
        summary.push_str(&format!("; {} allowed", allowed.len()));
    }
    out.push_str(&format!("{}: {summary}\n", source.name));
    out
}

fn entry(source: &Source, d: &Diagnostic) -> Value {
    let mut v = json!({
        "code": d.code.unwrap_or(INVALID_ID),
        "rule": rules::rule(d.code.unwrap_or(INVALID_ID)).map(|r| r.name),
        "severity": d.severity.as_str(),
        "message": d.message,
        "key": d.key,
        "why": d.why,
        "hint": d.hint,
    });
    if let Some(s) = d.span {
        let (a, b) = (source.line_col(s.start), source.line_col(s.end));
        v["line"] = a.line.into();
        v["col"] = a.col.into();
        v["end_line"] = b.line.into();
        v["end_col"] = b.col.into();
    }
    v
}

/// For tools: `{file, findings: [...], allowed: [...], summary}`; every entry has a
/// `code` (`TNG000` for validation errors), severity, message, key, line/col (1-based,
/// when known), why and hint.
pub fn json(source: &Source, diags: &[Diagnostic], allowed: &[Allowed]) -> Value {
    let c = Counts::of(diags);
    json!({
        "file": source.name,
        "findings": diags.iter().map(|d| entry(source, d)).collect::<Vec<_>>(),
        "allowed": allowed.iter().map(|a| {
            let mut v = entry(source, &a.diagnostic);
            v["reason"] = a.reason.clone().into();
            v
        }).collect::<Vec<_>>(),
        "summary": {
            "errors": c.errors,
            "warnings": c.warnings,
            "infos": c.infos,
            "allowed": allowed.len(),
        },
    })
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn sarif_rule(r: &Rule) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "shortDescription": { "text": r.summary },
        "fullDescription": { "text": format!("{} {}", r.summary, r.why) },
        "help": { "text": r.hint, "markdown": format!("{}\n\nSee docs/checklist.md, {}.", r.hint, r.id) },
        "defaultConfiguration": { "level": level(r.severity) },
    })
}

/// A file name as a relative URI reference: `/`-separated, unsafe bytes escaped.
fn uri(name: &str) -> String {
    let mut out = String::new();
    for b in name.replace('\\', "/").bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn result(source: &Source, d: &Diagnostic, all: &[&Rule]) -> Value {
    let id = d.code.unwrap_or(INVALID_ID);
    let mut location =
        json!({ "physicalLocation": { "artifactLocation": { "uri": uri(&source.name) } } });
    if let Some(s) = d.span {
        let (a, b) = (source.line_col(s.start), source.line_col(s.end));
        location["physicalLocation"]["region"] = json!({
            "startLine": a.line, "startColumn": a.col, "endLine": b.line, "endColumn": b.col,
        });
    }
    let mut text = d.message.clone();
    if let Some(h) = &d.hint {
        text.push_str(&format!(" ({h})"));
    }
    json!({
        "ruleId": id,
        "ruleIndex": all.iter().position(|r| r.id == id).unwrap_or(0),
        "level": level(d.severity),
        "message": { "text": text },
        "locations": [location],
        "properties": { "key": d.key },
    })
}

/// For code-scanning UIs: a SARIF 2.1.0 log with one run of the tool "tango". Allowed
/// findings are results with an in-source suppression carrying the reason.
pub fn sarif(source: &Source, diags: &[Diagnostic], allowed: &[Allowed]) -> String {
    let all: Vec<&Rule> = std::iter::once(&INVALID).chain(RULES.iter()).collect();
    let mut results: Vec<Value> = diags.iter().map(|d| result(source, d, &all)).collect();
    for a in allowed {
        let mut r = result(source, &a.diagnostic, &all);
        r["suppressions"] = json!([{ "kind": "inSource", "justification": a.reason }]);
        results.push(r);
    }
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "tango",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": all.iter().map(|r| sarif_rule(r)).collect::<Vec<_>>(),
            }},
            "columnKind": "unicodeCodePoints",
            "artifacts": [{ "location": { "uri": uri(&source.name) } }],
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&log).expect("JSON values always serialize")
}
