//! A route change predicted from an access log (`tango diff --access-log`) instead of
//! live samples: each logged request goes to the pool the configuration in force routes
//! it to, and every logged request is in the sample. A common or combined log line has
//! no host, so a request is taken to match only routes without one.

use super::PoolObservation;
use crate::config::Config;
use crate::simulate::{LogRecord, SampledRequest};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

/// Per pool of `live`: its logged requests as the sample and their count as the rate
/// (requests in the log, not per second: only the proportions matter).
pub fn observed_from_log(live: &Config, records: &[LogRecord]) -> HashMap<String, PoolObservation> {
    let mut by: HashMap<String, Vec<SampledRequest>> = HashMap::new();
    for r in records {
        let Some(target) = &r.target else {
            continue;
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target.as_str(), None),
        };
        let route = live.route_index(None, path, false);
        let pool = (route.and_then(|i| live.routes[i].pool())).and_then(|i| live.pools.get(i));
        let Some(pool) = pool else {
            continue;
        };
        let client = r
            .client
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let req = SampledRequest::new(client, path, query, std::iter::empty());
        by.entry(pool.name.clone()).or_default().push(req);
    }
    by.into_iter()
        .map(|(pool, reqs)| {
            let obs = PoolObservation {
                rate_rps: reqs.len() as f64,
                latency: None,
                sample: Some(reqs.into()),
            };
            (pool, obs)
        })
        .collect()
}
