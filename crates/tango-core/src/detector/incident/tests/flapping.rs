//! A backend flapping in and out of rotation every few seconds.

use super::*;

/// Ticks before the flapping starts, and how long it lasts.
const START: u64 = 600;
const FLAPS_FOR: u64 = 600;

/// b2 out for `out` ticks and back for `back` ticks, over and over for ten minutes, then
/// in rotation for five, at `rps`, through both detectors and the tracker, each
/// ejection and return journaled. Returns what the tracker told.
fn flapping(out: u64, back: u64, rps: u64) -> Vec<IncidentEvent> {
    let weights = [1.0f64; 4];
    let mut counts = [0u64; 4];
    let mut rng = SplitMix64::new(9);
    let mut share = PoolDetector::new("web", DetectorConfig::default());
    let mut shift = ShiftDetector::new("web", DetectorConfig::default(), ShiftConfig::default());
    let mut t = tracker();
    let (mut journal, mut told) = (Vec::new(), Vec::new());
    let mut now = T;
    let mut was_out = false;
    for tick in 0..START + FLAPS_FOR + 300 {
        let flaps = (START..START + FLAPS_FOR).contains(&tick);
        let is_out = flaps && (tick - START) % (out + back) < out;
        if is_out != was_out {
            let (pool, backend) = ("web".to_string(), "b2".to_string());
            let kind = match is_out {
                true => EventKind::Ejected {
                    pool,
                    backend,
                    reason: "5 consecutive failures".into(),
                },
                false => EventKind::Returned { pool, backend },
            };
            journal.push(Event {
                ts_ms: now,
                generation: 1,
                kind,
            });
            was_out = is_out;
        }
        now += 1000;
        let eff = [1.0, if is_out { 0.0 } else { 1.0 }, 1.0, 1.0];
        let sum: f64 = eff.iter().sum();
        let p: Vec<f64> = eff.iter().map(|w| w / sum).collect();
        multinomial(&mut rng, rps, &p, &mut counts);
        let mut input = pool_tick(now, &weights, &counts);
        for (b, w) in input.backends.iter_mut().zip(eff) {
            b.effective_weight = w;
        }
        let mut events = share.tick(&input).events;
        events.extend(shift.tick(&input).events);
        let down = match is_out {
            true => vec!["b2".to_string()],
            false => Vec::new(),
        };
        told.extend(t.tick(now, &events, &journal, &down));
    }
    told
}

/// b2 ejected and back every few seconds for ten minutes (out 2-10 s, back 3-20 s, at
/// 100 and 500 requests/s): one incident, headed by b2, opened once, re-told at most a
/// few times, resolved within a minute or so of the last flap, nothing after. Each
/// flap used to be an incident of its own, opened and resolved (60 in ten minutes at
/// 500 requests/s for 5 s out and 5 s in), or, when the incident stayed open, re-told
/// at every flap (156 updates for 2 s out and 3 s in at 100 requests/s).
#[test]
fn a_backend_flapping_every_few_seconds_is_one_incident() {
    for (out, back) in [(2, 3), (5, 5), (3, 10), (10, 20)] {
        for rps in [100, 500] {
            let told = flapping(out, back, rps);
            let case = format!("out {out} s, back {back} s, {rps}/s: {:#?}", kinds(&told));
            let ids: Vec<&str> = told
                .iter()
                .map(|e| match e {
                    IncidentEvent::Opened(i)
                    | IncidentEvent::Updated(i)
                    | IncidentEvent::Resolved(i) => i.id.as_str(),
                })
                .collect();
            assert!(ids.iter().all(|i| *i == ids[0]), "{case}");
            let count = |f: fn(&IncidentEvent) -> bool| told.iter().filter(|e| f(e)).count();
            assert_eq!(
                count(|e| matches!(e, IncidentEvent::Opened(_))),
                1,
                "{case}"
            );
            assert!(
                count(|e| matches!(e, IncidentEvent::Updated(_))) <= 4,
                "{case}"
            );
            let Some(IncidentEvent::Resolved(last)) = told.last() else {
                panic!("{case}");
            };
            assert_eq!(last.headline, "b2", "{case}");
            let calm = T + (START + FLAPS_FOR) * 1000;
            let after = last.resolved_ms.unwrap().saturating_sub(calm);
            assert!(
                after <= 90_000,
                "resolved {after} ms after the last flap: {case}"
            );
        }
    }
}
