//! What an alert is attributed to. `journal::attribute` decides it.

use super::change::Change;
use super::Cause;
use serde::{Deserialize, Serialize};

/// What most likely caused an alert, from the journal: a change, a health event, the
/// key distribution, or the backend itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuspectedCause {
    /// The kind of cause.
    pub class: Cause,
    /// The config generation, when a config change is suspected.
    pub generation: Option<u64>,
    /// The change suspected, when it is a config change.
    pub change: Option<Change>,
    /// When the suspected event happened.
    pub at_ms: Option<u64>,
    /// The backend the suspected event concerns (a change to it, its ejection or health
    /// transition, or the backend itself), when it concerns one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// For people: "backend-2 is taking 3.1x its share since 14:29:40; likely cause: ...".
    pub sentence: String,
    /// The sentence without the alert's own description: "likely cause: ...".
    #[serde(default)]
    pub clause: String,
    /// When the change ends a run of weight changes to the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Series>,
}

/// A run of weight changes to one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Series {
    /// The backend whose weight moved.
    pub backend: String,
    /// Its weight before the first step.
    pub from: u32,
    /// Its weight after the last.
    pub to: u32,
    /// Reloads in the run.
    pub reloads: usize,
    /// When the first step was journaled.
    pub since_ms: u64,
    /// The first step's generation.
    pub first_generation: u64,
    /// The last step's generation.
    pub last_generation: u64,
}
