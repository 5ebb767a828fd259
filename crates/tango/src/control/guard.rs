//! The reload guard in a running instance: what the instance observed (each pool's rate
//! and latency from the watch, every pool's sampled requests) handed to tango-core's
//! judgement, the checklist's findings logged one line each, and a reload's answer as
//! the API and `tango reload` show it.

use crate::control::watch::state::WatchState;
use crate::runtime::Runtime;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use tango_core::config::Loaded;
use tango_core::guard::canary::Canary;
use tango_core::guard::{Judgement, PoolObservation, Refusal, ShiftAllowance};
use tango_core::journal::FindingRecord;

/// What the instance observed of every pool, for the prediction.
pub(crate) fn observed(rt: &Runtime, watch: &WatchState) -> HashMap<String, PoolObservation> {
    let seen = watch
        .observed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let snap = rt.current();
    snap.pools
        .iter()
        .map(|p| {
            let o = seen.get(&p.cfg.name).copied().unwrap_or_default();
            let obs = PoolObservation {
                rate_rps: o.rate_rps,
                latency: (o.latency_ms > 0.0).then(|| Duration::from_secs_f64(o.latency_ms / 1e3)),
                // Every pool's: a reload may make a pool hash that did not.
                sample: Some(p.shared.requests.copy()),
            };
            (p.cfg.name.clone(), obs)
        })
        .collect()
}

/// Every checklist finding of a file, as journaled at startup (none is new then).
pub(crate) fn startup_findings(loaded: &Loaded) -> Vec<FindingRecord> {
    let l = tango_core::lint::lint(loaded);
    let mut out: Vec<FindingRecord> = l
        .problems
        .iter()
        .map(|d| FindingRecord::new(&loaded.source, d, false, None))
        .collect();
    out.extend(
        l.allowed
            .iter()
            .map(|a| FindingRecord::new(&loaded.source, &a.diagnostic, false, Some(&a.reason))),
    );
    out
}

/// One log line per finding: rule, severity, location, and whether the reload adds it.
pub(crate) fn log_findings(findings: &[FindingRecord]) {
    for f in findings {
        let line = f.line();
        match (f.severity.as_str(), &f.allowed) {
            (_, Some(_)) | ("info", _) => {
                tracing::info!(rule = %f.rule, location = %f.location, new = f.new, "checklist: {line}")
            }
            ("error", None) => {
                tracing::error!(rule = %f.rule, location = %f.location, new = f.new, "checklist: {line}")
            }
            _ => {
                tracing::warn!(rule = %f.rule, location = %f.location, new = f.new, "checklist: {line}")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Applied,
    /// The file is unreadable or invalid, or its listeners cannot bind.
    Rejected,
    /// The guard refused it.
    Refused,
    /// Asked for during the drain: nothing was read, bound or applied. A listener
    /// bound then would close at once, and the configuration in force ends with the
    /// process anyway.
    ShuttingDown,
}

/// Why a reload asked for during the drain is refused, as the API and the log say it.
pub(crate) const SHUTTING_DOWN: &str =
    "tango is shutting down: the reload is not applied (the configuration in force serves until tango exits)";

/// A reload's result: the generation in force afterwards and why.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub(crate) verdict: Verdict,
    pub(crate) generation: u64,
    /// Validation errors, or the guard's reasons.
    pub(crate) errors: Vec<String>,
    pub(crate) judgement: Option<Judgement>,
    /// The canary watching an applied reload.
    pub(crate) canary: Option<Canary>,
}

impl Outcome {
    pub(crate) fn rejected(generation: u64, errors: Vec<String>) -> Self {
        Outcome {
            verdict: Verdict::Rejected,
            generation,
            errors,
            judgement: None,
            canary: None,
        }
    }

    pub(crate) fn refused(generation: u64, j: Judgement) -> Self {
        Outcome {
            verdict: Verdict::Refused,
            generation,
            errors: j.reasons(),
            judgement: Some(j),
            canary: None,
        }
    }

    /// Refused because the drain has begun.
    pub(crate) fn shutting_down(generation: u64) -> Self {
        Outcome {
            verdict: Verdict::ShuttingDown,
            generation,
            errors: Vec::new(),
            judgement: None,
            canary: None,
        }
    }

    pub(crate) fn http_status(&self) -> u16 {
        match self.verdict {
            Verdict::Applied => 200,
            Verdict::Rejected => 422,
            Verdict::Refused => 409,
            Verdict::ShuttingDown => 503,
        }
    }

    /// The API's answer.
    pub(crate) fn to_json(&self) -> Value {
        let mut v = json!({
            "result": match self.verdict {
                Verdict::Applied => "applied",
                Verdict::Rejected => "rejected",
                Verdict::Refused => "refused",
                Verdict::ShuttingDown => "shutting_down",
            },
            "generation": self.generation,
        });
        if self.verdict == Verdict::ShuttingDown {
            v["error"] = json!(SHUTTING_DOWN);
        }
        if !self.errors.is_empty() {
            v["errors"] = json!(self.errors);
        }
        if let Some(j) = &self.judgement {
            v["findings"] = json!(j.finding_records());
            v["predicted"] = j.pools.iter().map(prediction_json).collect();
            if let Some(r) = &j.routes {
                v["routes"] = routes_json(r);
            }
            let notes = j.notes();
            if !notes.is_empty() {
                v["notes"] = json!(notes);
            }
            if j.refused() {
                v["refusals"] = j.refusals.iter().map(refusal_json).collect();
                v["next_steps"] = json!(j.next_steps());
            } else {
                v["overrides"] = json!(j.overrides());
            }
        }
        if let Some(c) = &self.canary {
            v["canary"] = json!(c);
        }
        v
    }
}

fn prediction_json(p: &tango_core::guard::PoolPrediction) -> Value {
    json!({
        "pool": p.pool,
        "keys": p.basis.describe(),
        "rate_rps": p.rate_rps,
        "largest_shift_points": p.moves.largest_shift_points,
        "over_limit": p.moves.over,
        "allowed": p.allowed.map(|a| match a {
            ShiftAllowance::Request => "request",
            ShiftAllowance::File => "file",
        }),
        "forced": p.forced,
        "backends": p.backends,
        "membership_changed": p.moves.membership_changed,
        "kept": p.moves.kept,
        "joined": p.moves.joined,
    })
}

fn routes_json(r: &tango_core::guard::RoutePrediction) -> Value {
    json!({
        "keys": r.basis.describe(),
        "rate_rps": r.rate_rps,
        "moves": r.moves,
        "busiest_pct": r.busiest_pct,
        "backends": r.backends,
        "over_limit": r.over,
        "allowed": r.allowed.map(|a| match a {
            ShiftAllowance::Request => "request",
            ShiftAllowance::File => "file",
        }),
        "forced": r.forced,
    })
}

fn refusal_json(r: &Refusal) -> Value {
    let mut v = match r {
        Refusal::Finding(f) => json!({
            "gate": "findings",
            "rule": f.diagnostic.code,
            "severity": f.diagnostic.severity.as_str(),
            "location": f.location,
            "key": f.diagnostic.key,
            "message": f.diagnostic.message,
        }),
        Refusal::Shift {
            pool,
            backend,
            from_pct,
            to_pct,
            basis,
            noise_points,
            joins,
            ..
        } => json!({
            "gate": "shift",
            "pool": pool,
            "backend": backend,
            "from_pct": from_pct,
            "to_pct": to_pct,
            "joins": joins,
            "keys": basis.describe(),
            "noise_points": noise_points,
        }),
        Refusal::Route(r) => json!({
            "gate": "route",
            "route": r.moved.route,
            "was_route": r.moved.was_route,
            "from_pool": r.moved.from_pool,
            "to_pool": r.moved.to_pool,
            "moved_pct": r.moved.share_pct,
            "pool": r.pool,
            "backend": r.backend,
            "backend_pool": r.backend_pool,
            "from_pct": r.from_pct,
            "to_pct": r.to_pct,
            "busiest_pct": r.busiest_pct,
            "requests": r.requests,
            "noise_points": r.noise_points,
        }),
        Refusal::Unpredictable { pool, error } => json!({
            "gate": "shift",
            "pool": pool,
            "error": error,
        }),
        Refusal::UnknownPool { pool, known } => json!({
            "gate": "overrides",
            "pool": pool,
            "pools": known,
        }),
    };
    v["sentence"] = json!(r.sentence());
    v
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReloadBody {
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    allow_shift: Vec<String>,
}

/// The overrides of one reload from the API's query (`force`, `allow_shift` as a
/// comma-separated list, repeatable) and optional JSON body.
pub(crate) fn reload_overrides(
    query: &[(String, String)],
    body: &[u8],
) -> Result<tango_core::guard::Overrides, String> {
    let mut b: ReloadBody = match body.iter().all(u8::is_ascii_whitespace) {
        true => ReloadBody::default(),
        false => serde_json::from_slice(body)
            .map_err(|e| format!("the body is not a reload request: {e}"))?,
    };
    for (k, v) in query {
        match k.as_str() {
            "force" => {
                let force = match v.as_str() {
                    "" | "1" | "true" | "yes" => true,
                    "0" | "false" | "no" => false,
                    _ => return Err(format!("force takes true or false, not `{v}`")),
                };
                // Asked both ways, the request does not say whether to get past the
                // guard: refusing beats choosing one of its answers.
                if b.force.is_some_and(|f| f != force) {
                    return Err("force is given as both true and false: give it once".into());
                }
                b.force = Some(force);
            }
            "allow_shift" => b.allow_shift.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from),
            ),
            other => {
                return Err(format!(
                    "unknown parameter `{other}`: use force or allow_shift"
                ))
            }
        }
    }
    Ok(tango_core::guard::Overrides {
        force: b.force.unwrap_or(false),
        allow_shift: b.allow_shift,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reload_overrides_come_from_the_query_or_a_json_body() {
        let o = reload_overrides(
            &q(&[
                ("force", "true"),
                ("allow_shift", "web,api"),
                ("allow_shift", "db"),
            ]),
            b"",
        )
        .unwrap();
        assert!(o.force);
        assert_eq!(o.allow_shift, vec!["web", "api", "db"]);
        let o = reload_overrides(&[], br#"{"allow_shift": ["web"]}"#).unwrap();
        assert!(!o.force);
        assert_eq!(o.allow_shift, vec!["web"]);
        assert!(reload_overrides(&q(&[("forse", "1")]), b"").is_err());
        assert!(reload_overrides(&q(&[("force", "maybe")]), b"").is_err());
        assert!(!reload_overrides(&q(&[("force", "no")]), b"").unwrap().force);
        assert!(reload_overrides(&[], b"{\"force\": \"yes\"}").is_err());
    }

    #[test]
    fn force_asked_both_ways_is_refused_not_guessed() {
        let both = q(&[("force", "true"), ("force", "false")]);
        assert!(reload_overrides(&both, b"").is_err());
        assert!(reload_overrides(&q(&[("force", "no")]), br#"{"force": true}"#).is_err());
        let twice = q(&[("force", "1"), ("force", "yes")]);
        assert!(
            reload_overrides(&twice, br#"{"force": true}"#)
                .unwrap()
                .force
        );
    }
}
