//! What the reload guard writes into config events: the checklist's findings and the
//! predicted shares, in a form that reads back from the journal without the file.

use crate::diag::{Diagnostic, Source};
use serde::{Deserialize, Serialize};

/// A checklist finding as journaled: rule, severity, `file:line:col`, key, message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// The rule's id (`TNG001`...).
    pub rule: String,
    /// `error`, `warning` or `info`.
    pub severity: String,
    /// `tango.toml:31:10`, or the file name alone for findings without a span.
    pub location: String,
    /// The key path.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// Absent from the configuration in force before the reload.
    #[serde(default)]
    pub new: bool,
    /// The `[[allow]]` reason, when the file allows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed: Option<String>,
}

impl FindingRecord {
    /// `d` as journaled, located in `source`.
    pub fn new(source: &Source, d: &Diagnostic, new: bool, allowed: Option<&str>) -> Self {
        FindingRecord {
            rule: d.code.unwrap_or("TNG000").to_string(),
            severity: d.severity.as_str().to_string(),
            location: location(source, d),
            key: d.key.clone(),
            message: d.message.clone(),
            new,
            allowed: allowed.map(str::to_string),
        }
    }

    /// One line: "warning TNG001 at tango.toml:31:10: b2 has weight 10, ...".
    pub fn line(&self) -> String {
        format!(
            "{} {} at {}: {}{}",
            self.severity,
            self.rule,
            self.location,
            self.message,
            self.allowed
                .as_deref()
                .map(|r| format!(" (allowed: {r})"))
                .unwrap_or_default()
        )
    }
}

/// `file:line:col` of a diagnostic's span, or the file name.
pub(crate) fn location(source: &Source, d: &Diagnostic) -> String {
    match d.span {
        Some(s) => {
            let lc = source.line_col(s.start);
            format!("{}:{}:{}", source.name, lc.line, lc.col)
        }
        None => source.name.clone(),
    }
}

/// One backend's predicted share of its pool before and after a reload, in percent
/// (`None`: not in that version of the pool).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictedShare {
    /// The pool.
    pub pool: String,
    /// The backend.
    pub backend: String,
    /// Its share before, in percent.
    pub from_pct: Option<f64>,
    /// And after.
    pub to_pct: Option<f64>,
    /// Where the prediction's keys came from (`weights and policy`, `N requests sampled
    /// from live traffic`, `key-space ownership (...)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
}
