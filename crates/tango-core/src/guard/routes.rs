//! Route changes, predicted on the live traffic. Every pool's own split can stay as it
//! is while a reload moves a route: `/api`, most of the traffic, from a pool of four
//! backends to a pool of one, or a route's match changed so that a one-backend
//! catch-all takes what another pool served. So when the routes differ, the requests
//! every pool sampled are routed through both versions' routes (each weighted by its
//! pool's observed rate over its sample's size), each pool's split is predicted on the
//! requests it would get, and each backend's share of all the requests the pools serve
//! is compared before and after.
//!
//! What concentrates traffic is a backend taking more than the busiest backend takes
//! today: a route moved to a wider pool raises the share of each of its backends, but
//! none above today's busiest, and passes. A backend whose share after the reload
//! exceeds both its own share and the busiest backend's today by more than
//! `max_shift`, beyond the sample's noise, refuses the reload, naming the route, the
//! pools and the backend. It is allowed as a shift of the pool that gains the traffic
//! (`--allow-shift POOL`), the pool route moves are journaled as changes of.

use super::predict::{predict, PoolObservation};
use super::{Input, Judgement, ShiftAllowance};
use crate::config::{Config, Guard, Pool, Target};
use crate::diff::route_label;
use crate::policy::RequestView;
use crate::rewrite::host_of;
use crate::simulate::{SampledRequest, SimError};
use serde::Serialize;
use std::collections::HashMap;

mod log;
mod refusal;
#[cfg(test)]
mod tests;

pub use log::observed_from_log;
pub use refusal::RouteShift;

/// Requests that would change pool, grouped by the route that took them and the one
/// that would take them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteMove {
    /// The route that takes them in the new version (`host H path P`), or `none`.
    pub route: String,
    /// The route that takes them in the configuration in force, or `none`.
    pub was_route: String,
    /// The pool that serves them now; `None`: no pool (a redirect, no route).
    pub from_pool: Option<String>,
    /// The pool that would serve them; `None`: no pool.
    pub to_pool: Option<String>,
    /// Their share of all the requests the pools serve, in percent.
    pub share_pct: f64,
    /// Their rate, in requests per second.
    pub rate_rps: f64,
}

impl RouteMove {
    /// `route host * path /api would send its requests (86% of all requests) to pool
    /// solo instead of pool web`, or, when another route would take them, `requests
    /// route ... sends to pool web (86% ...) would take route ... to pool solo`.
    pub fn describe(&self) -> String {
        let pool =
            |p: &Option<String>| p.as_ref().map_or("no pool".into(), |p| format!("pool {p}"));
        let (to, from) = (pool(&self.to_pool), pool(&self.from_pool));
        let share = format!("{:.0}% of all requests", self.share_pct);
        match self.route == self.was_route {
            true => format!(
                "route {} would send its requests ({share}) to {to} instead of {from}",
                self.route
            ),
            false => format!(
                "requests route {} sends to {from} ({share}) would take route {} to {to}",
                self.was_route, self.route
            ),
        }
    }
}

/// One backend's predicted share of all the requests the pools serve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendTraffic {
    /// Its name (in the new version when it is in both).
    pub backend: String,
    /// The pool it is in (the new version's first, when several share its address).
    pub pool: String,
    /// Its address: backends of several pools at one address are one server.
    pub address: String,
    /// Its share before, in percent.
    pub from_pct: f64,
    /// And after.
    pub to_pct: f64,
    /// How far its share after may be sampling noise, in points.
    pub noise_points: f64,
}

/// What a route prediction rests on.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteBasis {
    /// Requests sampled from live traffic, weighted by their pools' rates.
    LiveSample {
        /// How many.
        requests: usize,
    },
    /// The routes change but the live traffic cannot say where it would go.
    Unpredictable {
        /// Why.
        why: String,
    },
}

impl RouteBasis {
    /// The basis in words.
    pub fn describe(&self) -> String {
        match self {
            RouteBasis::LiveSample { requests } => {
                format!("{requests} requests sampled from live traffic")
            }
            RouteBasis::Unpredictable { why } => format!("not predicted: {why}"),
        }
    }
}

/// Where a reload's routes would send the live traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutePrediction {
    /// What it rests on.
    pub basis: RouteBasis,
    /// The requests per second the pools were observed to serve.
    pub rate_rps: f64,
    /// The requests that would change pool, largest first.
    pub moves: Vec<RouteMove>,
    /// Each backend's share of all requests, before and after, busiest after first.
    pub backends: Vec<BackendTraffic>,
    /// The busiest backend's share today, in percent.
    pub busiest_pct: f64,
    /// A backend would rise over the limit (beyond its noise).
    pub over: bool,
    /// Why it may, when it may.
    pub allowed: Option<ShiftAllowance>,
    /// Over the limit, not allowed, let through by `force`.
    pub forced: bool,
}

impl RoutePrediction {
    fn unpredictable(why: impl Into<String>, rate_rps: f64) -> Self {
        RoutePrediction {
            basis: RouteBasis::Unpredictable { why: why.into() },
            rate_rps,
            moves: Vec::new(),
            backends: Vec::new(),
            busiest_pct: 0.0,
            over: false,
            allowed: None,
            forced: false,
        }
    }

    /// How far `b` rises over the larger of its own share and the busiest backend's
    /// today, in points.
    pub fn rise_points(&self, b: &BackendTraffic) -> f64 {
        b.to_pct - b.from_pct.max(self.busiest_pct)
    }

    /// The rise minus its noise: what the gate compares with `max_shift`.
    fn excess_points(&self, b: &BackendTraffic) -> f64 {
        self.rise_points(b) - b.noise_points
    }

    /// The backend whose rise most exceeds its noise.
    pub fn worst(&self) -> Option<&BackendTraffic> {
        (self.backends.iter())
            .max_by(|a, b| self.excess_points(a).total_cmp(&self.excess_points(b)))
    }

    /// The move that brings `b` the most traffic: the largest into a pool it is in.
    pub fn move_to(&self, new: &Config, b: &BackendTraffic) -> Option<&RouteMove> {
        let holds = |m: &&RouteMove| {
            let pool = m.to_pool.as_deref().and_then(|p| new.pool(p));
            pool.is_some_and(|p| p.backends.iter().any(|x| x.address == b.address))
        };
        self.moves.iter().find(holds).or(self.moves.first())
    }

    /// A line for a reload whose routes change but could not be predicted.
    pub fn note(&self) -> Option<String> {
        match &self.basis {
            RouteBasis::Unpredictable { why } => Some(format!(
                "the routes change, and where they would send the traffic could not be predicted: {why}"
            )),
            RouteBasis::LiveSample { .. } => None,
        }
    }
}

/// Whether the two versions' routes could send a request elsewhere: their matches,
/// order, pools (by name) or redirects differ.
fn routes_differ(old: &Config, new: &Config) -> bool {
    let table = |c: &Config| -> Vec<(Option<String>, Option<String>, Result<String, _>)> {
        (c.routes.iter())
            .map(|r| {
                let to = match &r.target {
                    Target::Pool(i) => {
                        Ok(c.pools.get(*i).map_or(String::new(), |p| p.name.clone()))
                    }
                    Target::Redirect(red) => Err(red.clone()),
                };
                (r.host.clone(), r.path_prefix.clone(), to)
            })
            .collect()
    };
    table(old) != table(new)
}

/// Predict where the new routes send the live traffic, and refuse a backend's rise over
/// the limit nobody allowed.
pub(super) fn route_gate(input: &Input<'_>, j: &mut Judgement) {
    let (live, new) = (&input.live.config, &input.new.config);
    let Some(mut p) = predict_route_change(live, new, input.observed, input.settings) else {
        return;
    };
    if p.over {
        refusal::judge(input, j, &mut p);
    }
    j.routes = Some(p);
}

/// Where `new`'s routes would send the traffic `observed` (per pool of `live`: its rate
/// and sampled requests), and whether a backend would rise over `settings`'s
/// `max_shift` beyond `noise_sigmas` standard errors;
/// `None` when the routes are the same. The guard's prediction, and `tango diff`'s
/// from an access log.
pub fn predict_route_change(
    live: &Config,
    new: &Config,
    observed: &HashMap<String, PoolObservation>,
    settings: &Guard,
) -> Option<RoutePrediction> {
    if !routes_differ(live, new) {
        return None;
    }
    let v = Versions {
        live,
        new,
        observed,
        settings,
    };
    Some(
        v.predict()
            .unwrap_or_else(|e| RoutePrediction::unpredictable(e.to_string(), 0.0)),
    )
}

/// What a route prediction reads.
struct Versions<'a> {
    live: &'a Config,
    new: &'a Config,
    observed: &'a HashMap<String, PoolObservation>,
    settings: &'a Guard,
}

/// The sampled traffic routed through both versions.
struct Flow<'a> {
    req: Option<&'a SampledRequest>,
    weight: f64,
    before: Side<'a>,
    after: Side<'a>,
}

/// Where a request goes in one version: the route that takes it and its pool.
#[derive(Clone, Copy, PartialEq)]
struct Side<'a> {
    route: Option<usize>,
    pool: Option<&'a str>,
}

fn side<'a>(c: &'a Config, host: Option<&str>, path: &str, tls: bool) -> Side<'a> {
    let route = c.route_index(host, path, tls);
    let pool = (route.and_then(|i| c.routes[i].pool())).and_then(|i| c.pools.get(i));
    Side {
        route,
        pool: pool.map(|p| p.name.as_str()),
    }
}

/// Every pool's sampled requests, each weighted by its pool's rate over its sample's
/// size, routed through both versions. A sample does not record whether its request
/// came over TLS, which a redirect to https decides: it is taken as whichever routes it
/// to the pool that sampled it today. A pool with a rate and no sample yet keeps its
/// traffic where it is.
fn flows<'a>(v: &Versions<'a>) -> Vec<Flow<'a>> {
    let (live, new) = (v.live, v.new);
    let mut out = Vec::new();
    for pool in &live.pools {
        let Some(obs) = v.observed.get(&pool.name) else {
            continue;
        };
        if obs.rate_rps <= 0.0 {
            continue;
        }
        let sample = obs.sample.as_deref().unwrap_or(&[]);
        if sample.is_empty() {
            let keep = |c: &'a Config| Side {
                route: None,
                pool: c.pool(&pool.name).map(|p| p.name.as_str()),
            };
            out.push(Flow {
                req: None,
                weight: obs.rate_rps,
                before: keep(live),
                after: keep(new),
            });
            continue;
        }
        let weight = obs.rate_rps / sample.len() as f64;
        for r in sample {
            let host =
                (r.header_values("host").next()).and_then(|h| std::str::from_utf8(host_of(h)).ok());
            let path = r.path();
            let tls = [false, true]
                .into_iter()
                .find(|&t| side(live, host, path, t).pool == Some(pool.name.as_str()))
                .unwrap_or(false);
            out.push(Flow {
                req: Some(r),
                weight,
                before: side(live, host, path, tls),
                after: side(new, host, path, tls),
            });
        }
    }
    out
}

impl Versions<'_> {
    fn predict(&self) -> Result<RoutePrediction, SimError> {
        let flows = flows(self);
        let total: f64 = flows.iter().map(|f| f.weight).sum();
        let sampled: Vec<f64> = (flows.iter())
            .filter(|f| f.req.is_some())
            .map(|f| f.weight)
            .collect();
        if sampled.is_empty() || total <= 0.0 {
            let why = match total > 0.0 {
                true => "no live requests sampled yet",
                false => "no live traffic observed in the last 10 s",
            };
            return Ok(RoutePrediction::unpredictable(why, total));
        }
        let moves = moves(self, &flows, total);
        // Kish's effective sample size: requests of a busy pool's sample weigh more.
        let (sum, sq) = (sampled.iter()).fold((0.0, 0.0), |(s, q), w| (s + w, q + w * w));
        let n_eff = sum * sum / sq;
        let mut p = RoutePrediction::unpredictable("", total);
        p.basis = RouteBasis::LiveSample {
            requests: sampled.len(),
        };
        if moves.is_empty() {
            return Ok(p);
        }
        p.moves = moves;
        p.backends = backend_traffic(self, &flows, total)?;
        p.busiest_pct = p.backends.iter().map(|b| b.from_pct).fold(0.0, f64::max);
        for b in &mut p.backends {
            let base = b.from_pct.max(p.busiest_pct);
            b.noise_points =
                self.settings.noise_sigmas * (var(b.to_pct, n_eff) + var(base, n_eff)).sqrt();
        }
        p.backends.sort_by(|a, b| b.to_pct.total_cmp(&a.to_pct));
        let max = self.settings.max_shift_points;
        p.over = p.backends.iter().any(|b| p.excess_points(b) > max);
        Ok(p)
    }
}

/// The requests that would change pool, by (route before, pool before, route after,
/// pool after), largest first.
fn moves(v: &Versions<'_>, flows: &[Flow<'_>], total: f64) -> Vec<RouteMove> {
    let mut by: Vec<(Side<'_>, Side<'_>, f64)> = Vec::new();
    for f in flows.iter().filter(|f| f.before.pool != f.after.pool) {
        match by
            .iter_mut()
            .find(|(b, a, _)| *b == f.before && *a == f.after)
        {
            Some(m) => m.2 += f.weight,
            None => by.push((f.before, f.after, f.weight)),
        }
    }
    by.sort_by(|x, y| y.2.total_cmp(&x.2));
    let label =
        |c: &Config, r: Option<usize>| r.map_or("none".into(), |i| route_label(&c.routes[i]));
    (by.into_iter())
        .map(|(b, a, w)| RouteMove {
            route: label(v.new, a.route),
            was_route: label(v.live, b.route),
            from_pool: b.pool.map(str::to_string),
            to_pool: a.pool.map(str::to_string),
            share_pct: w / total * 100.0,
            rate_rps: w,
        })
        .collect()
}

/// Each backend's share of all requests before and after: each pool's traffic in that
/// version spread by its split, predicted on the requests it would get.
fn backend_traffic(
    v: &Versions<'_>,
    flows: &[Flow<'_>],
    total: f64,
) -> Result<Vec<BackendTraffic>, SimError> {
    let mut rows: Vec<BackendTraffic> = Vec::new();
    for after in [false, true] {
        let c = if after { v.new } else { v.live };
        for pool in &c.pools {
            let mine = flows.iter().filter(|f| {
                let s = if after { f.after } else { f.before };
                s.pool == Some(pool.name.as_str())
            });
            let (rate, reqs) = mine.fold((0.0, Vec::new()), |(r, mut v), f| {
                v.extend(f.req.cloned());
                (r + f.weight, v)
            });
            if rate <= 0.0 {
                continue;
            }
            let latency = v.observed.get(&pool.name).and_then(|o| o.latency);
            for (name, address, pct) in split(pool, after, rate, reqs, latency, v.settings)? {
                let add = rate * pct / total;
                let at = match rows.iter().position(|r| r.address == address) {
                    Some(i) => i,
                    None => {
                        rows.push(BackendTraffic {
                            backend: name.clone(),
                            pool: pool.name.clone(),
                            address: address.clone(),
                            from_pct: 0.0,
                            to_pct: 0.0,
                            noise_points: 0.0,
                        });
                        rows.len() - 1
                    }
                };
                let r = &mut rows[at];
                if after {
                    if r.to_pct == 0.0 {
                        (r.backend, r.pool) = (name, pool.name.clone());
                    }
                    r.to_pct += add;
                } else {
                    r.from_pct += add;
                }
            }
        }
    }
    Ok(rows)
}

/// One version of a pool's split over the requests it would get, as the pools' gate
/// predicts it: (name, address, share in percent).
fn split(
    pool: &Pool,
    after: bool,
    rate_rps: f64,
    reqs: Vec<SampledRequest>,
    latency: Option<std::time::Duration>,
    settings: &Guard,
) -> Result<Vec<(String, String, f64)>, SimError> {
    let obs = PoolObservation {
        rate_rps,
        latency,
        sample: (!reqs.is_empty()).then(|| reqs.into()),
    };
    let p = match after {
        false => predict(Some(pool), None, &obs, settings)?,
        true => predict(None, Some(pool), &obs, settings)?,
    };
    Ok((p.backends.into_iter())
        .map(|b| {
            let pct = b.new_pct.or(b.old_pct).unwrap_or(0.0);
            (b.name, b.address, pct)
        })
        .collect())
}

/// The binomial variance, in squared points, of a share of `pct` percent measured on
/// `n` requests: the pool gate's variance ([`crate::diff::judge::var`], a fraction
/// squared) scaled to points.
fn var(pct: f64, n: f64) -> f64 {
    crate::diff::judge::var(pct, n) * 10_000.0
}
