//! The tick that straddles a reload holds requests split both ways: its expected split
//! is the mix of the two, weighted by the part of the tick each generation was in force,
//! so the change itself is not read as skew against either. Likewise the ticks a backend
//! came back in (from ejection, or healthy again) and left in (ejected, or judged down):
//! it was in rotation for part of each. And a shift the reload brought is dated no
//! earlier than the reload, though the tick it showed in began before it.

use tango_core::detector::{AlertEvent, Cause, PoolTick};

#[derive(Default)]
pub(super) struct Straddle {
    /// The last tick's generation, time and expected splits.
    last: Option<LastTick>,
}

struct LastTick {
    generation: u64,
    at_ms: u64,
    effective: Vec<(String, f64)>,
    configured: Vec<(String, f64)>,
}

impl Straddle {
    /// A tick that straddles a reload holds requests split both ways: expect the mix of
    /// the two splits, weighted by the part of the tick each generation was in force,
    /// so the change itself is not read as skew against either.
    pub(super) fn apply(&mut self, input: &mut PoolTick, generation: u64, applied_ms: u64) {
        let now = (split(input, false), split(input, true));
        if let Some(last) = self.last.as_ref().filter(|l| l.generation != generation) {
            let span = input.now_ms.saturating_sub(last.at_ms).max(1) as f64;
            let old = (applied_ms.saturating_sub(last.at_ms) as f64 / span).clamp(0.0, 1.0);
            input.expected = Some(mix(&last.effective, &now.0, old));
            input.expected_configured = Some(mix(&last.configured, &now.1, old));
        }
        self.last = Some(LastTick {
            generation,
            at_ms: input.now_ms,
            effective: now.0,
            configured: now.1,
        });
    }
}

/// The part of the tick, `span_ms` long and sampled at `now_ms`, that a backend back in
/// rotation since `ready_since_ms` (both time since start) was in it: 1 for one back since
/// before the tick. Its effective weight for the tick is scaled by this, so the requests
/// it could not have had before it came back are not read as an under-share (at 500
/// requests/s, a backend back a third of the way into a tick would otherwise fire one).
fn rejoined_part(now_ms: u64, ready_since_ms: u64, span_ms: u64) -> f64 {
    if span_ms == 0 {
        return 1.0;
    }
    (now_ms.saturating_sub(ready_since_ms) as f64 / span_ms as f64).min(1.0)
}

/// When a backend last came back into rotation and last left it (both time since
/// start; `None`: in service since start, never left), and whether it is in rotation
/// now.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stints {
    pub(super) available: bool,
    pub(super) back_ms: Option<u64>,
    pub(super) left_ms: Option<u64>,
}

/// The part of the tick, `span_ms` long and sampled at `now_ms`, that a backend was in
/// rotation: from its return (or the tick's start) to now while it is in; from the
/// tick's start (or its return) to when it left while it is out, so the requests it had
/// before it went are its share of that part of the tick, not skew (a backend with most
/// of a pool's weight ejected late in a tick left the others reading as under-shares of
/// 0.3x); and both stints of one that left and came back within the tick.
pub(super) fn rotation_part(now_ms: u64, span_ms: u64, s: Stints) -> f64 {
    let start = now_ms.saturating_sub(span_ms);
    let left_in_tick = s.left_ms.filter(|l| *l > start && *l <= now_ms);
    if s.available {
        let back = s
            .back_ms
            .map_or(1.0, |since| rejoined_part(now_ms, since, span_ms));
        // Out and back within the tick: it was in before it left, too.
        let before = match (left_in_tick, s.back_ms) {
            (Some(l), Some(b)) if l <= b && span_ms > 0 => (l - start) as f64 / span_ms as f64,
            _ => 0.0,
        };
        return (back + before).min(1.0);
    }
    let Some(left) = left_in_tick else {
        return 0.0;
    };
    if span_ms == 0 {
        return 0.0;
    }
    // Back within the tick before it left again: in from its return only.
    let from = s
        .back_ms
        .filter(|b| *b > start && *b <= left)
        .unwrap_or(start);
    ((left - from) as f64 / span_ms as f64).min(1.0)
}

/// Each backend's expected share this tick, by name: the caller's override (hash pools'
/// key space) or the weights.
fn split(input: &PoolTick, configured: bool) -> Vec<(String, f64)> {
    let over = match configured {
        true => input.expected_configured.as_ref(),
        false => input.expected.as_ref(),
    };
    let raw: Vec<f64> = match over {
        Some(v) if v.len() == input.backends.len() => v.clone(),
        _ => input
            .backends
            .iter()
            .map(|b| match configured {
                true => b.configured_weight,
                false => b.effective_weight,
            })
            .collect(),
    };
    let sum: f64 = raw.iter().sum();
    input
        .backends
        .iter()
        .zip(raw)
        .map(|(b, w)| (b.name.clone(), if sum > 0.0 { w / sum } else { 0.0 }))
        .collect()
}

/// `old` x the old split + (1 - `old`) x the new one, in the new split's order.
fn mix(before: &[(String, f64)], after: &[(String, f64)], old: f64) -> Vec<f64> {
    after
        .iter()
        .map(|(name, s)| {
            let b = before
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |(_, v)| *v);
            old * b + (1.0 - old) * s
        })
        .collect()
}

/// A shift the configuration caused began no earlier than the reload that brought it.
/// The detectors date an onset at the start of the tick it showed in, or at the last
/// zero of a CUSUM that may have hovered above zero on noise for several ticks before
/// (at a low rate, many): a reload after that date but before the alert fired would
/// otherwise read as coming after its own effect ("since 12:30:25; likely cause: reload
/// at 12:30:26"), or fall outside the few seconds past the onset that attribution looks
/// at, leaving the cause unknown.
pub(super) fn onset_not_before_reload(events: &mut [AlertEvent], applied_ms: u64) {
    for ev in events {
        if let AlertEvent::Fired(e) = ev {
            let straddled = e.onset_ms < applied_ms && applied_ms <= e.at_ms;
            if e.cause == Cause::Config && straddled {
                e.onset_ms = applied_ms;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tango_core::detector::BackendSample;

    fn tick(now_ms: u64, weights: &[(&str, f64)]) -> PoolTick {
        PoolTick {
            now_ms,
            backends: weights
                .iter()
                .map(|(n, w)| BackendSample {
                    name: n.to_string(),
                    configured_weight: *w,
                    effective_weight: *w,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn fired(onset_ms: u64, at_ms: u64, cause: Cause) -> AlertEvent {
        AlertEvent::Fired(tango_core::detector::Evidence {
            pool: "p".into(),
            backend: "b1".into(),
            kind: tango_core::detector::AlertKind::OverShare,
            basis: tango_core::detector::Basis::Baseline,
            observed: 0.5,
            expected: 0.25,
            ratio: 2.0,
            z: 5.0,
            window_ms: 1000,
            requests: 100,
            pool_requests: 200,
            phi: 1.0,
            onset_ms,
            at_ms,
            cause,
            detail: None,
            client_errors: None,
        })
    }

    fn onset(ev: &AlertEvent) -> u64 {
        match ev {
            AlertEvent::Fired(e) => e.onset_ms,
            _ => unreachable!(),
        }
    }

    #[test]
    fn a_config_shift_dated_before_the_reload_that_preceded_its_alert_is_dated_at_it() {
        // Onset 12 ticks before the reload (a CUSUM hovering on noise), fired after it.
        let mut evs = [
            fired(100_000, 125_000, Cause::Config),
            fired(100_000, 125_000, Cause::Health),
            fired(100_000, 111_000, Cause::Config),
            fired(113_000, 125_000, Cause::Config),
        ];
        onset_not_before_reload(&mut evs, 112_000);
        let got: Vec<u64> = evs.iter().map(onset).collect();
        // Clamped; another cause kept; fired before the reload kept; began after it kept.
        assert_eq!(got, [112_000, 100_000, 100_000, 113_000]);
    }

    #[test]
    fn the_tick_straddling_a_reload_expects_the_mix_of_both_splits() {
        let mut w = Straddle::default();
        let even = [("b1", 1.0), ("b2", 1.0), ("b3", 1.0), ("b4", 1.0)];
        let mut t = tick(10_000, &even);
        w.apply(&mut t, 1, 0);
        assert_eq!(t.expected, None, "no reload: the weights decide");
        // Generation 2 (b2 at 10) was applied a quarter into the next tick.
        let typo = [("b1", 1.0), ("b2", 10.0), ("b3", 1.0), ("b4", 1.0)];
        let mut t = tick(11_000, &typo);
        w.apply(&mut t, 2, 10_250);
        let mixed = t.expected.unwrap();
        let want = 0.25 * 0.25 + 0.75 * (10.0 / 13.0);
        assert!((mixed[1] - want).abs() < 1e-9, "{mixed:?}");
        assert!((mixed.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        let mut t = tick(12_000, &typo);
        w.apply(&mut t, 2, 10_250);
        assert_eq!(t.expected, None, "the tick after is all generation 2");
    }

    fn stints(available: bool, back_ms: Option<u64>, left_ms: Option<u64>) -> Stints {
        Stints {
            available,
            back_ms,
            left_ms,
        }
    }

    #[test]
    fn a_backend_that_left_during_the_tick_was_in_rotation_until_it_went() {
        let part = |s| rotation_part(10_000, 1000, s);
        assert_eq!(part(stints(false, None, Some(9_900))), 0.9);
        assert_eq!(part(stints(false, None, Some(9_000))), 0.0, "out all tick");
        assert_eq!(part(stints(false, None, None)), 0.0);
        assert_eq!(part(stints(false, Some(2_000), Some(9_250))), 0.25);
        assert_eq!(
            part(stints(false, Some(9_500), Some(9_750))),
            0.25,
            "back at 9.5 s, gone again at 9.75 s"
        );
        assert_eq!(
            part(stints(false, Some(9_800), Some(9_500))),
            0.5,
            "judged healthy while still ejected: out since it left"
        );
        assert_eq!(part(stints(true, None, None)), 1.0);
        assert_eq!(part(stints(true, Some(9_250), Some(4_000))), 0.75);
        assert_eq!(
            part(stints(true, Some(9_750), Some(9_500))),
            0.75,
            "in until 9.5 s, back at 9.75 s"
        );
        assert_eq!(
            rotation_part(10_000, 0, stints(false, None, Some(9_999))),
            0.0
        );
    }

    #[test]
    fn a_backend_back_during_the_tick_is_in_rotation_for_the_rest_of_it() {
        assert_eq!(rejoined_part(10_000, 9_250, 1000), 0.75);
        assert_eq!(rejoined_part(10_000, 10_000, 1000), 0.0);
        assert_eq!(rejoined_part(10_000, 2_000, 1000), 1.0, "back long before");
        assert_eq!(
            rejoined_part(10_000, 9_000, 2000),
            0.5,
            "a late tick is longer"
        );
        assert_eq!(rejoined_part(10_000, 9_000, 0), 1.0);
    }
}
