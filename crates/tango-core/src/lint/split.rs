//! The split a hashing pool really gives (TNG020): the exact key-space ownership of the
//! built ring or table, from the policy code that will serve traffic, against the weights.

use super::rules::*;
use super::Cx;
use crate::policy::Selector;

/// Largest acceptable relative deviation of a backend's key-space share from its weight's.
const MAX_DEVIATION: f64 = 0.10;

pub(super) fn check(cx: &mut Cx<'_>) {
    for (pool, _) in cx.pools() {
        let total = pool.total_weight();
        if !pool.policy.is_hash() || pool.backends.len() < 2 || total == 0 {
            continue;
        }
        let own = Selector::from_pool(pool).ownership();
        let worst = pool
            .backends
            .iter()
            .zip(&own)
            .enumerate()
            .filter(|(_, (b, _))| b.weight > 0)
            .map(|(i, (b, &o))| {
                let want = f64::from(b.weight) / total as f64;
                (i, o, want, o / want - 1.0)
            })
            .max_by(|a, b| a.3.abs().total_cmp(&b.3.abs()));
        let Some((i, owned, want, dev)) = worst else {
            continue;
        };
        if dev.abs() <= MAX_DEVIATION {
            continue;
        }
        let b = &pool.backends[i];
        let span = b.weight_span.or(pool.policy_span).or(Some(b.span));
        cx.report(
            &SPLIT_DEVIATES,
            Some(&pool.name),
            format!("pool[{}].backend[{i}]", pool.name),
            span,
            format!(
                "{} owns {:.1}% of pool `{}`'s key space but its weight gives it {:.1}% ({:+.0}%)",
                b.name,
                owned * 100.0,
                pool.name,
                want * 100.0,
                dev * 100.0
            ),
            None,
        );
    }
}
