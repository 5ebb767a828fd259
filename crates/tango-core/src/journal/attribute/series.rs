//! A weight change named as the series it ends: the run of weight changes to one
//! backend, each within [`SERIES_GAP_MS`] of the next, each starting where the last
//! ended, all in one direction ("b2's weight went from 10 to 19 over 9 reloads").

use super::{Event, EventKind, SERIES_GAP_MS};
use crate::alert::{Change, ChangeKind, Series};

/// The run of weight changes to `c`'s backend that ends with `c` (journaled in `e`), if
/// it has more than one step.
pub(super) fn series(e: &Event, c: &Change, all: &[Event]) -> Option<Series> {
    let (ChangeKind::Weight { from, to }, Some(backend)) = (&c.kind, &c.backend) else {
        return None;
    };
    // Every earlier weight change to this backend, newest first.
    let mut steps: Vec<(u64, u64, u32, u32)> = all
        .iter()
        .filter(|x| x.ts_ms < e.ts_ms)
        .filter_map(|x| match &x.kind {
            EventKind::ConfigApplied { changes, .. } => Some((x, changes)),
            _ => None,
        })
        .flat_map(|(x, changes)| {
            changes.iter().filter_map(move |ch| match &ch.kind {
                ChangeKind::Weight { from, to }
                    if ch.pool == c.pool && ch.backend.as_deref() == Some(backend) =>
                {
                    Some((x.ts_ms, x.generation, *from, *to))
                }
                _ => None,
            })
        })
        .collect();
    steps.sort_by_key(|s| std::cmp::Reverse(s.0));
    let (mut first_ts, mut first_gen, mut first_from, mut reloads) =
        (e.ts_ms, e.generation, *from, 1);
    let up = to > from;
    for (ts, generation, f, t) in steps {
        // Contiguous, close together and in the same direction: a drift, not a change
        // and its fix.
        if t != first_from || first_ts - ts > SERIES_GAP_MS || (t > f) != up || t == f {
            break;
        }
        (first_ts, first_gen, first_from) = (ts, generation, f);
        reloads += 1;
    }
    (reloads > 1).then(|| Series {
        backend: backend.clone(),
        from: first_from,
        to: *to,
        reloads,
        since_ms: first_ts,
        first_generation: first_gen,
        last_generation: e.generation,
    })
}
