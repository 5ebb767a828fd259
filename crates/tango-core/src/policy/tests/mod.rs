//! Selector tests: unit behaviour here, long-run properties in `props`.

mod props;

use super::testenv::TestEnv;
use super::*;

pub(super) fn addresses(n: usize, salt: u32) -> Vec<String> {
    (0..n).map(|i| format!("10.{salt}.0.{i}:8080")).collect()
}

pub(super) fn selector(kind: PolicyKind, addrs: &[String], weights: &[u32]) -> Selector {
    selector_with(kind, addrs, weights, None, None)
}

pub(super) fn selector_with(
    kind: PolicyKind,
    addrs: &[String],
    weights: &[u32],
    on_missing: Option<OnMissingKey>,
    max_load_factor: Option<f64>,
) -> Selector {
    let specs: Vec<BackendSpec<'_>> = addrs
        .iter()
        .zip(weights)
        .map(|(a, &w)| BackendSpec {
            address: a,
            weight: w,
        })
        .collect();
    Selector::new(
        &specs,
        Params {
            kind,
            ring_points: crate::config::defaults::pool::RING_POINTS,
            on_missing,
            max_load_factor,
        },
    )
}

pub(super) const ALL: [PolicyKind; 6] = [
    PolicyKind::RoundRobin,
    PolicyKind::Random,
    PolicyKind::LeastRequest,
    PolicyKind::PeakEwma,
    PolicyKind::RingHash,
    PolicyKind::Maglev,
];

#[test]
fn nothing_eligible_is_its_own_answer() {
    let a = addresses(3, 0);
    for kind in ALL {
        let s = selector(kind, &a, &[1, 2, 3]);
        let mut env = TestEnv::new(3, 1);
        env.eligible = vec![false; 3];
        assert_eq!(s.pick(Some(42), &env), Pick::NoneEligible, "{kind:?}");
        let z = selector(kind, &a, &[0, 0, 0]);
        assert_eq!(z.pick(Some(42), &TestEnv::new(3, 1)), Pick::NoneEligible);
    }
}

#[test]
fn ineligible_backends_are_skipped_by_every_policy() {
    let a = addresses(4, 0);
    for kind in ALL {
        let s = selector(kind, &a, &[1, 1, 1, 1]);
        let mut env = TestEnv::new(4, 2);
        env.eligible[1] = false;
        env.eligible[3] = false;
        for k in 0..2_000u64 {
            match s.pick(Some(hash_bytes(&k.to_le_bytes())), &env) {
                Pick::Backend(b) => assert!(b == 0 || b == 2, "{kind:?} picked {b}"),
                other => panic!("{kind:?}: {other:?}"),
            }
        }
    }
}

#[test]
fn hash_policies_move_only_the_ineligible_backends_keys() {
    let a = addresses(5, 0);
    for kind in [PolicyKind::RingHash, PolicyKind::Maglev] {
        let s = selector(kind, &a, &[1; 5]);
        let all = TestEnv::new(5, 3);
        let mut one_down = TestEnv::new(5, 3);
        one_down.eligible[2] = false;
        for k in 0..5_000u64 {
            let key = Some(hash_bytes(&k.to_le_bytes()));
            let before = s.pick(key, &all);
            let after = s.pick(key, &one_down);
            if before != Pick::Backend(2) {
                assert_eq!(before, after, "{kind:?}");
            }
        }
    }
}

#[test]
fn missing_key_follows_on_missing_key() {
    let a = addresses(3, 0);
    let env = TestEnv::new(3, 4);
    for kind in [PolicyKind::RingHash, PolicyKind::Maglev] {
        let reject = selector_with(kind, &a, &[1; 3], Some(OnMissingKey::Reject), None);
        assert_eq!(reject.pick(None, &env), Pick::MissingKey);
        // Unset behaves as random: every backend is reached.
        let unset = selector(kind, &a, &[1; 3]);
        let mut seen = [false; 3];
        for _ in 0..100 {
            if let Pick::Backend(b) = unset.pick(None, &env) {
                seen[b] = true;
            }
        }
        assert_eq!(seen, [true; 3]);
        let rr = selector_with(kind, &a, &[1; 3], Some(OnMissingKey::RoundRobin), None);
        let picks: Vec<Pick> = (0..3).map(|_| rr.pick(None, &env)).collect();
        assert_eq!(picks, [0, 1, 2].map(Pick::Backend));
    }
}

#[test]
fn round_robin_interleaves_smoothly() {
    let s = selector(PolicyKind::RoundRobin, &addresses(3, 0), &[5, 1, 1]);
    let env = TestEnv::new(3, 5);
    let picks: Vec<Pick> = (0..7).map(|_| s.pick(None, &env)).collect();
    assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0].map(Pick::Backend));
}

#[test]
fn retries_do_not_shift_the_round_robin_onto_a_failing_backend() {
    // Backend 0 fails every request it gets; each failure is retried elsewhere. Its share
    // of first tries must stay its weight's, whatever the retries take.
    for w in [vec![1, 1], vec![1, 1, 1], vec![2, 1, 1]] {
        for on_missing in [None, Some(OnMissingKey::RoundRobin)] {
            let (kind, key) = match on_missing {
                None => (PolicyKind::RoundRobin, None),
                Some(_) => (PolicyKind::RingHash, None),
            };
            let s = selector_with(kind, &addresses(w.len(), 0), &w, on_missing, None);
            let mut env = TestEnv::new(w.len(), 9);
            let requests = 4_000;
            let mut first_to_0 = 0;
            for _ in 0..requests {
                env.eligible[0] = true;
                env.retrying = false;
                if s.pick(key, &env) == Pick::Backend(0) {
                    first_to_0 += 1;
                    env.eligible[0] = false;
                    env.retrying = true;
                    assert_ne!(s.pick(key, &env), Pick::Backend(0));
                }
            }
            let share = f64::from(first_to_0) / f64::from(requests);
            let want = f64::from(w[0]) / f64::from(w.iter().sum::<u32>());
            assert!(
                (share - want).abs() < 0.02,
                "{kind:?} weights {w:?}: the failing backend had {share:.3} of first tries, want {want:.3}"
            );
        }
    }
}

#[test]
fn least_request_prefers_less_loaded_per_weight() {
    let s = selector(PolicyKind::LeastRequest, &addresses(2, 0), &[1, 1]);
    let mut env = TestEnv::new(2, 6);
    env.in_flight = vec![10, 0];
    let n0 = (0..1000)
        .filter(|_| s.pick(None, &env) == Pick::Backend(0))
        .count();
    // The two candidates differ, so the loaded backend is compared with the idle one
    // and loses (it wins only if eight redraws in a row come up as itself: 1 in 256).
    assert!(n0 < 20, "{n0}");
}

#[test]
fn peak_ewma_avoids_the_slow_backend() {
    let s = selector(PolicyKind::PeakEwma, &addresses(2, 0), &[1, 1]);
    let mut env = TestEnv::new(2, 7);
    env.latency = vec![0.5, 0.01];
    env.in_flight = vec![0, 5];
    // 0.5 x 1 > 0.01 x 6: the fast backend wins despite its queue.
    let n1 = (0..1000)
        .filter(|_| s.pick(None, &env) == Pick::Backend(1))
        .count();
    assert!(n1 > 980, "{n1}");
}

#[test]
fn slow_start_factor_scales_share() {
    for kind in ALL {
        let s = selector(kind, &addresses(2, 0), &[1, 1]);
        let mut env = TestEnv::new(2, 8);
        env.factor[1] = 0.25;
        let mut n1 = 0;
        for k in 0..20_000u64 {
            if s.pick(Some(hash_bytes(&k.to_le_bytes())), &env) == Pick::Backend(1) {
                n1 += 1;
            }
        }
        // Effective weights 1 : 0.25 give 20%. Hash policies keep a ramping backend on a
        // stable subset of its keys: factor x its key-space share, 0.25 x 50%.
        let want = if kind.is_hash() { 0.125 } else { 0.2 };
        let share = f64::from(n1) / 20_000.0;
        assert!((share - want).abs() < 0.02, "{kind:?}: {share}");
    }
}

#[test]
fn ownership_is_weight_share_or_key_space() {
    let a = addresses(3, 0);
    for kind in ALL {
        let own = selector(kind, &a, &[1, 1, 2]).ownership();
        assert!((own.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!((own[2] - 0.5).abs() < 0.02, "{kind:?}: {own:?}");
    }
}

#[test]
fn selector_is_shared_across_threads_without_losing_slots() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let s = selector(PolicyKind::RoundRobin, &addresses(3, 0), &[1, 2, 3]);
    shareable(&s);
    // Each ticket takes one slot of the period, so 4 x 6,000 picks over a period of 6
    // are split exactly 1 : 2 : 3 however the threads interleave.
    let counts: Vec<[u64; 3]> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let s = &s;
                scope.spawn(move || {
                    let env = TestEnv::new(3, t);
                    let mut c = [0u64; 3];
                    for _ in 0..6_000 {
                        if let Pick::Backend(b) = s.pick(None, &env) {
                            c[b] += 1;
                        }
                    }
                    c
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total = counts
        .iter()
        .fold([0u64; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]]);
    assert_eq!(total, [4_000, 8_000, 12_000]);
}

/// Picks per backend over `picks` requests, each with a fresh key.
fn tally(s: &Selector, env: &TestEnv, picks: usize) -> Vec<u64> {
    let mut counts = vec![0u64; s.len()];
    for _ in 0..picks {
        match s.pick(Some(env.next()), env) {
            Pick::Backend(b) => counts[b] += 1,
            other => panic!("{:?}: {other:?}", s.kind()),
        }
    }
    counts
}

#[test]
fn extreme_weights_a_single_backend_and_weight_zero() {
    for kind in ALL {
        // One backend: everything, whatever its weight.
        let one = selector(kind, &addresses(1, 0), &[7]);
        assert_eq!(tally(&one, &TestEnv::new(1, 1), 1_000), [1_000], "{kind:?}");
        // Weights 1 and 10,000: the light one gets its 1 in 10,001, not nothing and
        // not a floor's worth; weight 0 gets nothing.
        let s = selector(kind, &addresses(4, 0), &[1, 10_000, 0, 5_000]);
        let c = tally(&s, &TestEnv::new(4, 2), 300_000);
        // 300,000 / 15,001 = 20 expected: Poisson, within 4 standard deviations.
        assert!((3..=40).contains(&c[0]), "{kind:?}: {c:?}");
        assert_eq!(c[2], 0, "{kind:?}: weight 0 picked");
        let share = c[1] as f64 / 300_000.0;
        assert!((share - 2.0 / 3.0).abs() < 0.01, "{kind:?}: {c:?}");
    }
}

#[test]
fn a_thousand_backends_follow_their_weights() {
    // Weights 1 to 4 over 1,000 backends; the split against the expected shares (the
    // weights, or for hash policies the key space the ring or table gives each) is a
    // chi-square with 999 degrees of freedom: about 999 +- 45 when it holds.
    let n = 1_000;
    let a: Vec<String> = (0..n)
        .map(|i| format!("10.1.{}.{}:8080", i / 256, i % 256))
        .collect();
    let w: Vec<u32> = (0..n).map(|i| 1 + (i % 4) as u32).collect();
    let picks = 400_000;
    for kind in ALL {
        let s = selector(kind, &a, &w);
        let c = tally(&s, &TestEnv::new(n, 3), picks);
        let expected = s.ownership();
        let chi2: f64 = c
            .iter()
            .zip(&expected)
            .map(|(&got, &p)| {
                let e = p * picks as f64;
                (got as f64 - e).powi(2) / e
            })
            .sum();
        assert!(
            chi2 < 1_250.0,
            "{kind:?}: chi-square {chi2:.0} over 999 degrees of freedom"
        );
    }
}

/// Workers that pick at the same instant read the same counts, and each may find its
/// backend's last place under the bounded-load cap free. The proxy counts a request in
/// only while its backend is under the cap its pick computed (a compare-and-increment),
/// and a request that finds it full picks again with the counts as they are then: no
/// backend ever holds more than the cap a pick would give it, and every racer is placed.
#[test]
fn racing_picks_held_to_their_caps_never_pass_a_bounded_load_cap() {
    let a = addresses(4, 0);
    let hot = Some(hash_bytes(b"hot"));
    let mut lost = 0;
    for kind in [PolicyKind::RingHash, PolicyKind::Maglev] {
        let s = selector_with(kind, &a, &[1, 1, 1, 1], None, Some(1.25));
        let place = |env: &TestEnv| match s.place(hot, env) {
            Placement {
                pick: Pick::Backend(b),
                cap: Some(cap),
            } => (b, cap),
            p => panic!("{kind:?}: {p:?}"),
        };
        for racers in 1..=8u64 {
            let mut env = TestEnv::new(4, racers);
            for _ in 0..41 {
                let (b, _) = place(&env);
                env.in_flight[b] += 1;
            }
            // Every racer picks before any is counted in.
            let picked: Vec<(usize, u64)> = (0..racers).map(|_| place(&env)).collect();
            for (mut b, mut cap) in picked {
                // As many picks again as the proxy's retry machine allows.
                for _ in 0..=crate::retry::MAX_OVER_LOADED {
                    if env.in_flight[b] < cap {
                        break;
                    }
                    lost += 1;
                    (b, cap) = place(&env);
                }
                assert!(env.in_flight[b] < cap, "{kind:?}: no place for a racer");
                env.in_flight[b] += 1;
                let total: u64 = env.in_flight.iter().sum();
                let now = load_cap(1.25, total - 1, 1, 4);
                for (j, &held) in env.in_flight.iter().enumerate() {
                    assert!(
                        held <= now,
                        "{kind:?}, {racers} racers: backend {j} holds {held}, cap {now}"
                    );
                }
            }
        }
    }
    assert!(lost > 0, "no racer found its place taken: nothing raced");
}
