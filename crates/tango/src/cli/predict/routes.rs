//! `tango diff`'s review of a route change: where the new routes would send the
//! traffic, predicted as the reload guard predicts it, with the requests of an access
//! log (`--access-log`) standing in for the live sample. Without one the change is
//! said not to be predicted, never guessed.

use serde_json::{json, Value};
use tango_core::config::{Config, Guard};
use tango_core::guard::routes::{
    observed_from_log, predict_route_change, RouteBasis, RoutePrediction,
};
use tango_core::simulate::KeySource;

/// What the prediction rests on: the access log's requests.
fn basis(p: &RoutePrediction) -> String {
    match &p.basis {
        RouteBasis::LiveSample { requests } => format!("{requests} requests of the access log"),
        b => b.describe(),
    }
}

/// The route change of one diff, when the routes differ.
pub(crate) struct RouteReview {
    prediction: Option<RoutePrediction>,
    /// The routes differ but no access log was given.
    unpredicted: bool,
    /// The pool that gains the traffic, when a backend rises over the limit.
    gaining: Option<String>,
    allowed: bool,
}

impl RouteReview {
    pub(crate) fn new(
        old: &Config,
        new: &Config,
        keys: &KeySource,
        settings: &Guard,
        allow_shift: &[String],
    ) -> Self {
        let observed = match keys {
            KeySource::AccessLog(records) => Some(observed_from_log(old, records)),
            _ => None,
        };
        let empty = Default::default();
        let p = predict_route_change(old, new, observed.as_ref().unwrap_or(&empty), settings);
        let unpredicted = p.is_some() && observed.is_none();
        let prediction = p.filter(|_| observed.is_some());
        let gaining = (prediction.as_ref().filter(|p| p.over)).and_then(|p| {
            let w = p.worst()?;
            let m = p.move_to(new, w)?;
            Some(m.to_pool.clone().unwrap_or_else(|| w.pool.clone()))
        });
        let allowed = gaining.as_ref().is_some_and(|g| allow_shift.contains(g));
        RouteReview {
            prediction,
            unpredicted,
            gaining,
            allowed,
        }
    }

    /// A backend rises over the limit and its pool is not allowed to shift.
    pub(crate) fn fails(&self) -> bool {
        self.gaining.is_some() && !self.allowed
    }

    pub(crate) fn human(&self) -> String {
        if self.unpredicted {
            return "routes: changed, not predicted: give the traffic with --access-log FILE to predict where the new routes send it (the reload guard predicts it from live traffic)\n\n".into();
        }
        let Some(p) = &self.prediction else {
            return String::new();
        };
        let mut out = format!("routes: predicted from {}\n", basis(p));
        if p.moves.is_empty() {
            return out + "  no logged request changes pool\n\n";
        }
        for m in &p.moves {
            out.push_str(&format!("  - {}\n", m.describe()));
        }
        out.push_str(&format!(
            "  share of all requests per backend (the busiest takes {:.1}% today):\n",
            p.busiest_pct
        ));
        for b in &p.backends {
            let note = match p.rise_points(b) > 0.0 {
                true => format!(" ({:+.1} points over the busiest today)", p.rise_points(b)),
                false => String::new(),
            };
            out.push_str(&format!(
                "    {} (pool {}): {:.1}% -> {:.1}%{note}\n",
                b.backend, b.pool, b.from_pct, b.to_pct
            ));
        }
        out + "\n"
    }

    /// The verdict line, with the route change's failure when it fails.
    pub(crate) fn verdict(&self, pools: String) -> String {
        let (Some(p), Some(pool), false) = (&self.prediction, &self.gaining, self.allowed) else {
            return pools;
        };
        let Some(w) = p.worst() else {
            return pools;
        };
        let said = format!(
            "the new routes give {} (pool {}) {:.1}% of all requests where the busiest backend takes {:.1}% today; if intended, pass --allow-shift {pool}",
            w.backend, w.pool, w.to_pct, p.busiest_pct
        );
        match pools.strip_prefix("verdict: pass") {
            Some(_) => format!("verdict: FAIL: {said}"),
            None => format!("{pools}; and {said}"),
        }
    }

    pub(crate) fn json(&self) -> Value {
        if self.unpredicted {
            return json!({ "keys": "not predicted: no access log given" });
        }
        match &self.prediction {
            None => Value::Null,
            Some(p) => json!({
                "keys": basis(p),
                "moves": p.moves,
                "busiest_pct": p.busiest_pct,
                "backends": p.backends,
                "over_limit": p.over,
                "allowed": self.allowed,
                "fails": self.fails(),
            }),
        }
    }
}
