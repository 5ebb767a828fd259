//! Rules about a pool's membership and weights: weight outliers (TNG001), duplicate
//! backends (TNG002), single-backend pools (TNG003), zero total weight (TNG004).

use super::rules::*;
use super::{median, num, sp, Cx};
use std::collections::HashMap;

/// A backend at least this many times its peers' median weight is flagged.
const OUTLIER_FACTOR: f64 = 5.0;

pub(super) fn check(cx: &mut Cx<'_>) {
    for (pool, pf) in cx.pools() {
        let k = format!("pool[{}]", pool.name);
        let name_span = Some(sp(&pf.name));
        let total = pool.total_weight();
        if total == 0 {
            cx.report(
                &ZERO_TOTAL_WEIGHT,
                Some(&pool.name),
                k.clone(),
                name_span,
                format!(
                    "every backend of pool `{}` has weight 0: it cannot serve any request",
                    pool.name
                ),
                None,
            );
        }
        if pool.backends.len() == 1 {
            cx.report(
                &SINGLE_BACKEND,
                Some(&pool.name),
                k.clone(),
                name_span,
                format!(
                    "pool `{}` has a single backend: nothing to fail over to",
                    pool.name
                ),
                None,
            );
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, (b, bf)) in pool.backends.iter().zip(&pf.backend).enumerate() {
            let addr = b.address.to_ascii_lowercase();
            if let Some(first) = seen.insert(addr, i) {
                let first = &pool.backends[first];
                cx.report(
                    &DUPLICATE_BACKEND,
                    Some(&pool.name),
                    format!("{k}.backend[{i}].address"),
                    Some(sp(&bf.get_ref().address)),
                    format!(
                        "`{}` is already in pool `{}` as `{}`: it gets its share twice",
                        b.address, pool.name, first.name
                    ),
                    None,
                );
            }
        }
        if total > 0 {
            outliers(cx, pool, &k);
        }
    }
}

/// TNG001: a weight far above the peers' median, or over half of the pool's weight.
fn outliers(cx: &mut Cx<'_>, pool: &crate::config::Pool, k: &str) {
    let total = pool.total_weight() as f64;
    // Drained backends (weight 0) do not make a pool of two a pool of three.
    let active = pool.backends.iter().filter(|b| b.weight > 0).count();
    for (i, b) in pool.backends.iter().enumerate() {
        let w = f64::from(b.weight);
        let share = w / total * 100.0;
        // Drained peers (weight 0) are not the baseline a weight is compared with.
        let mut peers: Vec<f64> = pool
            .backends
            .iter()
            .enumerate()
            .filter(|&(j, p)| j != i && p.weight > 0)
            .map(|(_, p)| f64::from(p.weight))
            .collect();
        if peers.is_empty() || w == 0.0 {
            continue;
        }
        let m = median(&mut peers);
        let key = format!("{k}.backend[{i}].weight");
        let span = b.weight_span.or(Some(b.span));
        let rounded = share.round();
        if w >= OUTLIER_FACTOR * m {
            cx.report(
                &WEIGHT_OUTLIER,
                Some(&pool.name),
                key,
                span,
                format!(
                    "{} has weight {}, {}x the median of its peers ({}): it will get {rounded}% of the pool's traffic",
                    b.name,
                    b.weight,
                    num(w / m),
                    num(m)
                ),
                Some(format!(
                    "if this is a typo, set it near {}; if {} really is {}x bigger, allow TNG001 for pool `{}` with that reason",
                    num(m),
                    b.name,
                    num(w / m),
                    pool.name
                )),
            );
        } else if active >= 3 && share > 50.0 {
            cx.report(
                &WEIGHT_OUTLIER,
                Some(&pool.name),
                key,
                span,
                format!(
                    "{} has weight {} of the pool's {}: it will get {rounded}% of the traffic, more than all {} others together",
                    b.name,
                    b.weight,
                    pool.total_weight(),
                    active - 1
                ),
                None,
            );
        }
    }
}
