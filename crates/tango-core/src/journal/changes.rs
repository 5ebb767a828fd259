//! What a new configuration changes, per pool and backend, ranked for attribution.
//!
//! Rank 1 (weights, policy, hash key and hashing settings) moves traffic directly; rank 2
//! (health, ejection, slow start, panic threshold) moves it through eligibility; rank 3 is
//! membership; rank 4 timeouts and retries, which move latency more than share.

use crate::config::{Config, HealthCheck, Outlier, Pool};
use serde::{Deserialize, Serialize};
use std::time::Duration;

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
    /// The pool is new.
    PoolAdded,
    /// The pool is gone.
    PoolRemoved,
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
    fn new(pool: &str, backend: Option<&str>, kind: ChangeKind) -> Self {
        let rank = match &kind {
            ChangeKind::Weight { .. }
            | ChangeKind::Policy { .. }
            | ChangeKind::HashKey { .. }
            | ChangeKind::Hashing { .. } => 1,
            ChangeKind::Health { .. } => 2,
            ChangeKind::BackendAdded { .. }
            | ChangeKind::BackendRemoved { .. }
            | ChangeKind::PoolAdded
            | ChangeKind::PoolRemoved => 3,
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
            ChangeKind::PoolAdded => format!("added pool {p}"),
            ChangeKind::PoolRemoved => format!("removed pool {p}"),
        }
    }
}

/// Every change from `old` to `new` that can move traffic or latency, most suspect first.
/// Backends are matched by address, as the running instance matches them.
pub fn summarize_changes(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    for np in &new.pools {
        match old.pool(&np.name) {
            Some(op) => pool_changes(op, np, &mut out),
            None => out.push(Change::new(&np.name, None, ChangeKind::PoolAdded)),
        }
    }
    for op in &old.pools {
        if new.pool(&op.name).is_none() {
            out.push(Change::new(&op.name, None, ChangeKind::PoolRemoved));
        }
    }
    out.sort_by_key(|c| c.rank);
    out
}

fn pool_changes(o: &Pool, n: &Pool, out: &mut Vec<Change>) {
    let name = n.name.as_str();
    let mut push = |backend: Option<&str>, kind| out.push(Change::new(name, backend, kind));
    if o.policy != n.policy {
        push(
            None,
            ChangeKind::Policy {
                from: o.policy.name().into(),
                to: n.policy.name().into(),
            },
        );
    }
    let key = |p: &Pool| {
        p.hashing
            .as_ref()
            .map_or("none".into(), |h| h.key.describe())
    };
    if key(o) != key(n) {
        push(
            None,
            ChangeKind::HashKey {
                from: key(o),
                to: key(n),
            },
        );
    }
    let hashing: [Setting; 3] = [
        ("on_missing_key", |p| {
            let m = p.hashing.as_ref().and_then(|h| h.on_missing);
            m.map_or("unset".into(), |m| format!("{m:?}").to_lowercase())
        }),
        ("max_load_factor", |p| {
            let f = p.hashing.as_ref().and_then(|h| h.max_load_factor);
            f.map_or("unset".into(), |f| f.to_string())
        }),
        ("ring_points", |p| p.ring_points.to_string()),
    ];
    let health: [Setting; 4] = [
        ("health check", |p| {
            p.health.as_ref().map_or("off".into(), describe_health)
        }),
        ("outlier ejection", |p| {
            p.outlier.as_ref().map_or("off".into(), describe_outlier)
        }),
        ("slow_start", |p| p.slow_start.map_or("off".into(), dur)),
        ("panic_threshold", |p| p.panic_threshold.to_string()),
    ];
    let timeouts: [Setting; 6] = [
        ("connect_timeout", |p| dur(p.connect_timeout)),
        ("try_timeout", |p| dur(p.try_timeout)),
        ("timeout", |p| dur(p.timeout)),
        ("idle_timeout", |p| dur(p.idle_timeout)),
        ("max_attempts", |p| p.max_attempts.to_string()),
        ("retry_budget", |p| p.retry_budget.to_string()),
    ];
    for (setting, f) in hashing {
        if f(o) != f(n) {
            push(
                None,
                ChangeKind::Hashing {
                    setting: setting.into(),
                    from: f(o),
                    to: f(n),
                },
            );
        }
    }
    for (setting, f) in health {
        if f(o) != f(n) {
            push(
                None,
                ChangeKind::Health {
                    setting: setting.into(),
                    from: f(o),
                    to: f(n),
                },
            );
        }
    }
    for (setting, f) in timeouts {
        if f(o) != f(n) {
            push(
                None,
                ChangeKind::Timeouts {
                    setting: setting.into(),
                    from: f(o),
                    to: f(n),
                },
            );
        }
    }
    for nb in &n.backends {
        match o.backends.iter().find(|b| b.address == nb.address) {
            Some(ob) if ob.weight != nb.weight => push(
                Some(&nb.name),
                ChangeKind::Weight {
                    from: ob.weight,
                    to: nb.weight,
                },
            ),
            Some(_) => {}
            None => push(
                Some(&nb.name),
                ChangeKind::BackendAdded {
                    address: nb.address.clone(),
                },
            ),
        }
    }
    for ob in &o.backends {
        if !n.backends.iter().any(|b| b.address == ob.address) {
            push(
                Some(&ob.name),
                ChangeKind::BackendRemoved {
                    address: ob.address.clone(),
                },
            );
        }
    }
}

/// A setting's name and how to read it from a pool, for comparison and display.
type Setting = (&'static str, fn(&Pool) -> String);

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn describe_health(h: &HealthCheck) -> String {
    let kind = format!("{:?}", h.kind).to_lowercase();
    format!(
        "{kind} {} every {}, timeout {}, rise {}, fall {}",
        h.path,
        dur(h.interval),
        dur(h.timeout),
        h.rise,
        h.fall
    )
}

fn describe_outlier(o: &Outlier) -> String {
    format!(
        "{} consecutive failures, ejection {}..{}, max ejected {}",
        o.consecutive_failures,
        dur(o.base_ejection),
        dur(o.max_ejection),
        o.max_ejected_percent
    )
}
