//! The shift gate against sampling noise: a hash pool's prediction read from a handful
//! of sampled requests refuses only what the handful shows beyond its noise, and a split
//! it cannot pin is taken from the key space.

use super::*;

/// Pool `web` hashing on header `key`, with `extra` pool settings.
fn ring(key: &str, weights: [u32; 4], extra: &str, tail: &str) -> Loaded {
    let pool = format!("policy = \"ring_hash\"\nhash_key = {{ source = \"header\", name = \"{key}\" }}\non_missing_key = \"random\"\n{extra}");
    file(&pool, weights, tail)
}

/// `n` requests of distinct users `user-{from}`..., all of tenant `acme`.
fn users(from: usize, n: usize) -> Arc<[SampledRequest]> {
    sample(from + n)[from..].iter().cloned().collect()
}

fn with_sample(s: Arc<[SampledRequest]>) -> HashMap<String, PoolObservation> {
    let mut obs = observed(1.0);
    obs.get_mut("web").unwrap().sample = Some(s);
    obs
}

/// The small samples of the tests: 10 each of 12 and of 20 requests.
fn small_samples() -> impl Iterator<Item = Arc<[SampledRequest]>> {
    [12, 20]
        .into_iter()
        .flat_map(|n| (0..10).map(move |k| users(k * 1000, n)))
}

#[test]
fn a_small_sample_refuses_no_reload_whose_keys_stay_within_the_limit() {
    let live = ring("x-user", [4, 4, 4, 4], "", "");
    // b2 gains a fifth of its key space: about +4 points, within the limit of 10.
    let heavier = ring("x-user", [4, 5, 4, 4], "", "");
    let timeout = ring("x-user", [4, 4, 4, 4], "try_timeout = \"3s\"", "");
    for s in small_samples() {
        let n = s.len();
        let obs = with_sample(s);
        for new in [&heavier, &timeout] {
            let j = run(&live, new, &Overrides::default(), &obs);
            assert!(!j.refused(), "{n} sampled requests: {:?}", j.reasons());
            let p = &j.pools[0];
            assert_eq!(
                p.basis.describe(),
                format!(
                    "key-space ownership (only {n} live requests sampled, too few to predict from)"
                )
            );
            // The watch expects the key space's split, not the sample's accidents.
            for (name, share) in &j.expectations()[0].1 {
                let own = match (name.as_str(), std::ptr::eq(new, &heavier)) {
                    ("b2", true) => 5.0 / 17.0,
                    (_, true) => 4.0 / 17.0,
                    _ => 0.25,
                };
                assert!((share - own).abs() < 0.05, "{n}: {name} {share} vs {own}");
            }
            assert!(j
                .predicted()
                .iter()
                .all(|s| s.basis.as_deref() == Some(p.basis.describe().as_str())));
        }
    }
}

#[test]
fn a_small_sample_still_refuses_a_hash_key_change_that_collapses_its_keys() {
    let live = ring("x-user", [1, 1, 1, 1], "", "");
    let new = ring("x-tenant", [1, 1, 1, 1], "", "");
    for s in small_samples() {
        let n = s.len();
        let j = run(&live, &new, &Overrides::default(), &with_sample(s));
        assert_eq!(j.pools[0].basis, KeyBasis::LiveSample { requests: n });
        assert_eq!(j.refusals.len(), 1, "{n}: {:?}", j.reasons());
        let Refusal::Shift {
            to_pct,
            noise_points,
            ..
        } = &j.refusals[0]
        else {
            panic!("{:?}", j.reasons())
        };
        assert_eq!(*to_pct, 100.0);
        assert!(*noise_points > 5.0, "{n}: a small sample is noisy");
        assert!(
            j.reasons()[0].contains(&format!("predicted from {n} sampled requests, noise ±")),
            "{:?}",
            j.reasons()
        );
    }
}

#[test]
fn a_large_sample_predicts_from_its_requests_with_little_noise() {
    let live = ring("x-user", [1, 1, 1, 1], "", "");
    let timeout = ring("x-user", [1, 1, 1, 1], "try_timeout = \"3s\"", "");
    let n = MIN_SAMPLE_TO_PREDICT;
    let j = run(
        &live,
        &timeout,
        &Overrides::default(),
        &with_sample(users(0, n)),
    );
    assert!(!j.refused(), "{:?}", j.reasons());
    assert_eq!(j.pools[0].basis, KeyBasis::LiveSample { requests: n });
    assert!(j.pools[0].moves.kept.iter().all(|k| k.noise_points < 10.0));
    // A weight typo is refused from the sample as from the key space.
    let typo = ring("x-user", [1, 10, 1, 1], "", ALLOW_TNG001);
    let j = run(
        &live,
        &typo,
        &Overrides::default(),
        &with_sample(users(0, n)),
    );
    assert_eq!(j.refusals.len(), 1, "{:?}", j.reasons());
}

#[test]
fn the_noise_settings_in_force_decide_what_a_sample_shows() {
    // b2 gains about 12 points of key space, just over the limit of 10.
    let new = ring("x-user", [4, 7, 4, 4], "", "");
    let verdict = |guard: &str, n: usize| {
        let live = ring("x-user", [4, 4, 4, 4], "", guard);
        run(
            &live,
            &new,
            &Overrides::default(),
            &with_sample(users(0, n)),
        )
    };
    // 2,000 sampled requests: the move is within 2 standard errors of the limit, so
    // by default the sample does not show it beyond its noise.
    let j = verdict("", 2000);
    let p = &j.pools[0];
    assert_eq!(p.basis, KeyBasis::LiveSample { requests: 2000 });
    let w = p.moves.worst().unwrap();
    assert!(
        w.move_points() > 10.0 && !j.refused(),
        "{w:?} {:?}",
        j.reasons()
    );
    // Taking every sampled move at face value refuses it.
    let j = verdict("\n[guard]\nnoise_sigmas = 0.0\n", 2000);
    assert_eq!(j.refusals.len(), 1, "{:?}", j.pools[0].moves.worst());
    // 20 sampled requests are too few by default: the key space's split is judged.
    let j = verdict("", 20);
    assert!(matches!(
        j.pools[0].basis,
        KeyBasis::KeySpace { sampled: 20 }
    ));
    // With min_sample = 20 they are the prediction.
    let j = verdict("\n[guard]\nmin_sample = 20\n", 20);
    assert_eq!(j.pools[0].basis, KeyBasis::LiveSample { requests: 20 });
}
