//! The configuration checklist: lint rules for distribution hazards.
//!
//! `check` runs every rule over a validated configuration and returns the findings as
//! `Diagnostic`s with a stable rule ID, a severity, the location of the offending key,
//! why it matters and how to fix it. Findings the configuration allows with
//! `[[allow]] rule = "TNG00x", reason = "..."` are set apart, with the reason, so reports
//! can list them without counting them as problems. `report` renders both for people
//! (rustc-style), for tools (JSON) and for code-scanning UIs (SARIF 2.1.0).
//!
//! The rules live in one file per group; `rules` is the catalogue of IDs.

pub(crate) mod hashing;
mod health;
pub mod report;
mod ring;
mod routes;
pub mod rules;
mod split;
mod timeouts;
mod tls;
pub use tls::{date as certificate_date, server_names as certificate_names};
mod weights;

pub use rules::{Rule, RULES};

use crate::config::{file, Loaded, Pool};
use crate::diag::{Diagnostic, Span};

/// A finding the configuration allows on purpose, with the reason it gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Allowed {
    /// The finding.
    pub diagnostic: Diagnostic,
    /// The `[[allow]]` entry's reason.
    pub reason: String,
}

/// Everything lint found: the problems, and the findings allowed by `[[allow]]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Lint {
    /// Findings not allowed, in file order.
    pub problems: Vec<Diagnostic>,
    /// Findings allowed, with their reasons.
    pub allowed: Vec<Allowed>,
}

/// Run every rule; return the findings that are not allowed, in file order.
pub fn check(loaded: &Loaded) -> Vec<Diagnostic> {
    lint(loaded).problems
}

/// Run every rule; return the problems and, apart, the allowed findings with their reasons.
pub fn lint(loaded: &Loaded) -> Lint {
    let mut cx = Cx {
        loaded,
        found: Vec::new(),
    };
    weights::check(&mut cx);
    health::check(&mut cx);
    hashing::check(&mut cx);
    timeouts::check(&mut cx);
    routes::check(&mut cx);
    split::check(&mut cx);
    tls::check(&mut cx);
    apply_allows(cx)
}

/// A finding before `[[allow]]` is applied: the pool it concerns decides whether a
/// pool-scoped allow covers it.
struct Finding {
    diag: Diagnostic,
    pool: Option<String>,
}

/// What a rule sees: the validated model, the file types for precise spans, and where
/// findings go.
pub(crate) struct Cx<'a> {
    loaded: &'a Loaded,
    found: Vec<Finding>,
}

impl<'a> Cx<'a> {
    fn pools(&self) -> impl Iterator<Item = (&'a Pool, &'a file::PoolFile)> + 'a {
        // Validation keeps pools and backends in file order, one model item per entry.
        let files = &self.loaded.file.pool;
        self.loaded
            .config
            .pools
            .iter()
            .zip(files.iter().map(|p| p.get_ref()))
    }

    /// Record a finding of `rule` about `pool` at `key`, with the rule's `why`.
    fn report(
        &mut self,
        rule: &'static Rule,
        pool: Option<&str>,
        key: String,
        span: Option<Span>,
        message: String,
        hint: Option<String>,
    ) -> &mut Diagnostic {
        let mut diag = finding(rule, key, span, message);
        if let Some(h) = hint {
            diag.hint = Some(h);
        }
        self.found.push(Finding {
            diag,
            pool: pool.map(str::to_string),
        });
        &mut self.found.last_mut().expect("just pushed").diag
    }
}

/// Span of a spanned file value.
fn sp<T>(s: &file::S<T>) -> Span {
    s.span().into()
}

/// Split findings into problems and allowed ones; then check the allows themselves.
fn apply_allows(cx: Cx<'_>) -> Lint {
    let allows = &cx.loaded.config.allows;
    let allow_files = &cx.loaded.file.allow;
    let mut used = vec![false; allows.len()];
    let mut out = Lint::default();
    for f in cx.found {
        let hit = allows.iter().position(|a| {
            Some(a.rule.as_str()) == f.diag.code
                && a.pool
                    .as_deref()
                    .is_none_or(|p| Some(p) == f.pool.as_deref())
        });
        match hit {
            Some(i) => {
                used[i] = true;
                out.allowed.push(Allowed {
                    diagnostic: f.diag,
                    reason: allows[i].reason.clone(),
                });
            }
            None => out.problems.push(f.diag),
        }
    }
    for (i, a) in allows.iter().enumerate() {
        let span = allow_files.get(i).map(|f| sp(&f.get_ref().rule));
        let key = format!("allow[{i}].rule");
        let rule = match rules::rule(&a.rule) {
            Some(r) if r.id != rules::INVALID_ID => r,
            _ => {
                let mut d = finding(
                    &rules::UNKNOWN_ALLOW,
                    key,
                    span,
                    format!("`{}` is not a lint rule, so this allows nothing", a.rule),
                );
                if let Some(meant) = meant_rule(&a.rule) {
                    d.hint = Some(format!(
                        "did you mean `{}` ({})? [[allow]] takes the rule's ID as docs/checklist.md writes it",
                        meant.id, meant.name
                    ));
                }
                out.problems.push(d);
                continue;
            }
        };
        if !used[i] {
            let scope = a
                .pool
                .as_deref()
                .map(|p| format!(" in pool `{p}`"))
                .unwrap_or_default();
            out.problems.push(finding(
                &rules::UNUSED_ALLOW,
                key,
                span,
                format!(
                    "{} ({}) is allowed{scope} but not found there",
                    rule.id, rule.name
                ),
            ));
        }
    }
    out.problems.sort_by_key(order);
    out.allowed.sort_by_key(|a| order(&a.diagnostic));
    out
}

/// The rule an unknown `[[allow]] rule` most likely means: its ID in another case
/// (`tng001`), its name (`weight-outlier`), or a name a typo away. Not an ID a typo
/// away: `TNG03` is as near TNG003 as TNG013 and TNG023, and a wrong guess would
/// silence another hazard.
fn meant_rule(written: &str) -> Option<&'static Rule> {
    let w = written.trim();
    let exact = rules::RULES
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(w) || r.name.eq_ignore_ascii_case(w));
    exact.or_else(|| {
        let close = crate::diag::did_you_mean(w, rules::RULES.iter().map(|r| r.name))?;
        rules::RULES.iter().find(|r| r.name == close)
    })
}

fn finding(rule: &'static Rule, key: String, span: Option<Span>, message: String) -> Diagnostic {
    Diagnostic {
        severity: rule.severity,
        code: Some(rule.id),
        message,
        key,
        span,
        why: Some(rule.why.to_string()),
        hint: Some(rule.hint.to_string()),
    }
}

/// File order; findings without a location last.
fn order(d: &Diagnostic) -> (usize, usize, &'static str) {
    match d.span {
        Some(s) => (0, s.start, d.code.unwrap_or("")),
        None => (1, 0, d.code.unwrap_or("")),
    }
}

/// Median of a non-empty list.
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `3`, `2.5`: a number as people write it.
fn num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// `12s`, `1.5s`, `250ms`.
fn dur(d: std::time::Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests;
