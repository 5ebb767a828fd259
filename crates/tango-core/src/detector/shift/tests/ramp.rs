//! A hash pool gaining backends that ramp up in slow start: each takes its part of its
//! own keys, as the ring's walk gives them, and that is no shift.

use super::*;

/// `a` alone, then `b` and `c` added at a third of the keys each, ramping from a tenth
/// over 30 ticks, traffic drawn as the ring's walk splits it (each ramping backend takes
/// its part of its keys; what it turns away walks on to `a`). Returns what fired.
fn two_added_to_a_hash_pool_of_one(hashed: bool) -> Vec<Evidence> {
    let mut d = ShiftDetector::new("p", DetectorConfig::default(), ShiftConfig::default());
    let mut rng = SplitMix64::new(11);
    let (mut now, mut counts) = (1_000_000u64, [0u64; 3]);
    let mut fired = Vec::new();
    for t in 0..90u32 {
        let n = if t < 30 { 1 } else { 3 };
        if t == 30 {
            d.expect(["a", "b", "c"].map(|s| (s.to_string(), 1.0 / 3.0)).to_vec());
        }
        let ramp = (0.1 + 0.9 * f64::from(t.saturating_sub(30)) / 30.0).min(1.0);
        let own = 1.0 / 3.0 * ramp;
        let p = [1.0 - 2.0 * own, own, own];
        let mut out = vec![0; n];
        multinomial(&mut rng, 1000, &p[..n], &mut out);
        counts.iter_mut().zip(&out).for_each(|(c, o)| *c += o);
        now += 1000;
        let backends = ["a", "b", "c"][..n]
            .iter()
            .enumerate()
            .map(|(i, name)| BackendSample {
                name: name.to_string(),
                configured_weight: 1.0,
                effective_weight: if i == 0 { 1.0 } else { ramp },
                requests: counts[i],
                ..Default::default()
            })
            .collect();
        // A hash pool's tick carries the key space each backend owns: a third each.
        let owned = hashed.then(|| vec![1.0 / n as f64; n]);
        let tick = PoolTick {
            now_ms: now,
            backends,
            expected_configured: owned,
            ..Default::default()
        };
        for ev in d.tick(&tick).events {
            if let AlertEvent::Fired(e) = ev {
                fired.push(e);
            }
        }
    }
    fired
}

#[test]
fn backends_a_hash_pool_gains_ramp_up_without_a_shift() {
    let fired = two_added_to_a_hash_pool_of_one(true);
    assert!(fired.is_empty(), "{fired:?}");
}

#[test]
fn read_as_weights_the_same_ramp_is_an_under_share() {
    // What a hash pool's ramp looked like before it was read as key space: each new
    // backend expected 8% at a tenth of its ramp, where it takes 3%.
    let fired = two_added_to_a_hash_pool_of_one(false);
    assert!(
        fired.iter().any(|e| e.kind == AlertKind::UnderShare),
        "{fired:?}"
    );
}
