//! Unit tests of the lint rules: for each rule a configuration that triggers it (at the
//! right line:col) and one that does not.

use super::*;
use crate::config::parse;
use crate::diag::Severity;
use std::path::Path;

mod allows;
mod hashing;
mod health;
mod reports;
mod routes;
mod split;
mod timeouts;
mod tls;
mod weights;

/// Lint a configuration text that must pass validation.
fn lint_text(text: &str) -> (Loaded, Lint) {
    let loaded = match parse("t.toml", text, Path::new(".")) {
        Ok(l) => l,
        Err(e) => panic!("{}", e.render()),
    };
    let l = lint(&loaded);
    (loaded, l)
}

/// Line:col of every problem with rule `code`.
fn at(text: &str, code: &str) -> Vec<(usize, usize)> {
    let (loaded, l) = lint_text(text);
    l.problems
        .iter()
        .filter(|d| d.code == Some(code))
        .map(|d| {
            let lc = loaded
                .source
                .line_col(d.span.expect("lint findings have spans").start);
            (lc.line, lc.col)
        })
        .collect()
}

/// The problem with rule `code`; panics unless there is exactly one.
fn one(text: &str, code: &str) -> Diagnostic {
    let (_, l) = lint_text(text);
    let mut found: Vec<Diagnostic> = l
        .problems
        .into_iter()
        .filter(|d| d.code == Some(code))
        .collect();
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

/// A listener on line 2, `[[pool]]` on line 3, `name = "web"` on line 4, then `body`
/// from line 5.
fn pool(body: &str) -> String {
    format!("[[listener]]\nlisten = \"127.0.0.1:8080\"\n[[pool]]\nname = \"web\"\n{body}")
}

/// Two capped backends of weight 1, from the line after the body's own lines.
const TWO: &str = "[[pool.backend]]\naddress = \"10.0.0.1:80\"\nmax_in_flight = 100\n[[pool.backend]]\naddress = \"10.0.0.2:80\"\nmax_in_flight = 100\n";

/// Pool settings that trigger nothing.
const QUIET: &str = "slow_start = \"30s\"\nhealth = { path = \"/healthz\" }\n";

#[test]
fn a_careful_configuration_has_no_findings() {
    let (_, l) = lint_text(&pool(&format!("{QUIET}{TWO}")));
    assert!(l.problems.is_empty(), "{:#?}", l.problems);
    assert!(l.allowed.is_empty());
}
