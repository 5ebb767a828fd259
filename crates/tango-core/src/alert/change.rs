//! What a configuration change changed, one [`Change`] per pool setting or backend,
//! ranked for attribution; `journal::summarize_changes` finds them.
//!
//! Rank 1 (weights, policy, hash key and hashing settings) moves traffic directly; rank 2
//! (health, ejection, slow start, panic threshold) moves it through eligibility; rank 3 is
//! membership and routes (what a pool receives as a whole); rank 4 timeouts and retries, which move latency more than share.

use serde::{Deserialize, Serialize};

/// One thing a configuration change changed in a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// The pool.
    pub pool: String,
    /// The backend, when the change is to one backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// How directly it moves traffic, 1 (weights, policy, hashing) to 4 (timeouts).
    pub rank: u8,
    /// What changed.
    #[serde(flatten)]
    pub kind: ChangeKind,
}

/// What changed, with the values before and after (as text, for settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ChangeKind {
    /// A backend's weight.
    Weight {
        /// Before.
        from: u32,
        /// After.
        to: u32,
    },
    /// The pool's policy.
    Policy {
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// The pool's hash key.
    HashKey {
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// on_missing_key, max_load_factor, ring_points.
    Hashing {
        /// The setting's key.
        setting: String,
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// health, outlier, slow_start, panic_threshold.
    Health {
        /// The setting's key.
        setting: String,
        /// Before.
        from: String,
        /// After.
        to: String,
    },
    /// A backend joined the pool.
    BackendAdded {
        /// Its address.
        address: String,
    },
    /// A backend left the pool.
    BackendRemoved {
        /// Its address.
        address: String,
    },
    /// A backend kept its address under a new name: the same backend (its counters,
    /// health and ejection go with it), named `to` (its `backend`) from now on.
    BackendRenamed {
        /// Its name before.
        from: String,
        /// Its name after.
        to: String,
        /// Its address.
        address: String,
    },
    /// The pool is new.
    PoolAdded,
    /// The pool is gone.
    PoolRemoved,
    /// A route (by host and path prefix) sends its requests to another pool, or starts
    /// or stops sending them to one (added, removed, or turned into a redirect or back).
    /// The change's `pool` is the one that gains the requests (`to`), else the one that
    /// loses them.
    Route {
        /// `host H path P`.
        route: String,
        /// The pool before; `None`: no route, or a redirect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        /// The pool after; `None`: no route, or a redirect.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Timeouts, attempts and retry budget.
    Timeouts {
        /// The setting's key.
        setting: String,
        /// Before.
        from: String,
        /// After.
        to: String,
    },
}

impl Change {
    /// A change of `kind`, ranked by how directly it moves traffic.
    pub(crate) fn new(pool: &str, backend: Option<&str>, kind: ChangeKind) -> Self {
        let rank = match &kind {
            ChangeKind::Weight { .. }
            | ChangeKind::Policy { .. }
            | ChangeKind::HashKey { .. }
            | ChangeKind::Hashing { .. } => 1,
            ChangeKind::Health { .. } => 2,
            ChangeKind::BackendAdded { .. }
            | ChangeKind::BackendRemoved { .. }
            | ChangeKind::BackendRenamed { .. }
            | ChangeKind::PoolAdded
            | ChangeKind::PoolRemoved
            | ChangeKind::Route { .. } => 3,
            ChangeKind::Timeouts { .. } => 4,
        };
        Self {
            pool: pool.to_string(),
            backend: backend.map(str::to_string),
            rank,
            kind,
        }
    }

    /// A clause for a sentence: "changed backend-2's weight from 1 to 10".
    pub fn describe(&self) -> String {
        let p = &self.pool;
        let b = self.backend.as_deref().unwrap_or("?");
        match &self.kind {
            ChangeKind::Weight { from, to } => format!("changed {b}'s weight from {from} to {to}"),
            ChangeKind::Policy { from, to } => {
                format!("changed pool {p}'s policy from {from} to {to}")
            }
            ChangeKind::HashKey { from, to } => {
                format!("changed pool {p}'s hash key from {from} to {to}")
            }
            ChangeKind::Hashing { setting, from, to }
            | ChangeKind::Health { setting, from, to }
            | ChangeKind::Timeouts { setting, from, to } => {
                format!("changed pool {p}'s {setting} from {from} to {to}")
            }
            ChangeKind::BackendAdded { address } => {
                format!("added backend {b} ({address}) to pool {p}")
            }
            ChangeKind::BackendRemoved { address } => {
                format!("removed backend {b} ({address}) from pool {p}")
            }
            ChangeKind::BackendRenamed { from, to, address } => {
                format!("renamed backend {from} ({address}) in pool {p} to {to}")
            }
            ChangeKind::PoolAdded => format!("added pool {p}"),
            ChangeKind::PoolRemoved => format!("removed pool {p}"),
            ChangeKind::Route { route, from, to } => match (from, to) {
                (Some(f), Some(t)) => format!("route {route}: moved from pool {f} to pool {t}"),
                (None, Some(t)) => format!("route {route}: now sends to pool {t}"),
                (Some(f), None) => format!("route {route}: no longer sends to pool {f}"),
                (None, None) => format!("route {route}: sends to no pool"),
            },
        }
    }
}
