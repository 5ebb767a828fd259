use super::*;
use crate::detector::sim::SplitMix64;
use proptest::prelude::*;
use std::collections::HashMap;

#[test]
fn hll_error_stays_within_three_standard_errors() {
    // p = 10: standard error 3.25%. Over 20 seeds per size, every estimate is within
    // 3 standard errors, and the mean absolute error within 1.5.
    for n in [10u64, 100, 1_000, 10_000, 100_000] {
        let mut errs = Vec::new();
        for seed in 0..20u64 {
            let mut rng = SplitMix64::new(seed * 7919 + n);
            let mut h = Hll::new(10);
            for _ in 0..n {
                h.insert(rng.next_u64());
            }
            let e = (h.estimate() - n as f64) / n as f64;
            assert!(
                e.abs() <= 3.0 * h.standard_error(),
                "n {n} seed {seed}: {e}"
            );
            errs.push(e.abs());
        }
        let mean = errs.iter().sum::<f64>() / errs.len() as f64;
        assert!(mean <= 1.5 * 1.04 / 32.0, "n {n}: mean error {mean}");
    }
}

#[test]
fn hll_counts_distinct_not_repeated_and_merges_as_a_union() {
    let mut a = Hll::new(10);
    let mut b = Hll::new(10);
    for k in 0..500u64 {
        for _ in 0..10 {
            a.insert(k);
        }
        b.insert(k + 250);
    }
    assert!((a.estimate() - 500.0).abs() < 25.0, "{}", a.estimate());
    a.merge(&b);
    assert!((a.estimate() - 750.0).abs() < 40.0, "{}", a.estimate());
    a.clear();
    assert_eq!(a.estimate(), 0.0);
    // Small counts are exact or nearly (linear counting).
    let mut c = Hll::new(10);
    (0..5u64).for_each(|k| c.insert(k));
    assert_eq!(c.estimate().round(), 5.0);
}

#[test]
fn topk_holds_every_key_above_its_guarantee_and_grows_nothing() {
    let mut t = TopK::new(16);
    let caps = t.capacities();
    let mut rng = SplitMix64::new(3);
    let mut exact: HashMap<u64, u64> = HashMap::new();
    for i in 0..100_000u64 {
        // One key carries a third; the rest is a long tail of 5,000 values.
        let k = if i % 3 == 0 {
            42
        } else {
            rng.next_u64() % 5_000
        };
        t.observe(k);
        *exact.entry(k).or_default() += 1;
    }
    t.check();
    assert_eq!(t.capacities(), caps, "no allocation after construction");
    let top = t.top();
    assert_eq!(top[0].key, 42);
    let true_count = exact[&42];
    assert!(top[0].count - top[0].error <= true_count && true_count <= top[0].count);
}

proptest! {
    #[test]
    fn topk_counts_bound_the_truth(keys in proptest::collection::vec(0u64..40, 0..600), cap in 1usize..12) {
        let mut t = TopK::new(cap);
        let mut exact: HashMap<u64, u64> = HashMap::new();
        for k in &keys {
            t.observe(*k);
            *exact.entry(*k).or_default() += 1;
        }
        t.check();
        let n = keys.len() as u64;
        let top = t.top();
        for kc in &top {
            let truth = exact[&kc.key];
            prop_assert!(kc.count - kc.error <= truth && truth <= kc.count, "{kc:?} truth {truth}");
        }
        // Any key seen more than n / cap times is held.
        for (k, c) in &exact {
            if *c > n / cap as u64 {
                prop_assert!(top.iter().any(|kc| kc.key == *k), "{k} seen {c} of {n}");
            }
        }
        prop_assert!(top.windows(2).all(|w| w[0].count >= w[1].count));
    }

    #[test]
    fn topk_clear_starts_afresh(keys in proptest::collection::vec(0u64..1000, 0..300)) {
        let mut t = TopK::new(8);
        keys.iter().for_each(|k| t.observe(*k));
        t.clear();
        t.check();
        prop_assert!(t.top().is_empty());
        keys.iter().for_each(|k| t.observe(*k));
        t.check();
    }
}

fn sketch() -> KeySketch {
    KeySketch::new(KeySketchConfig::default(), 1_000_000)
}

#[test]
fn the_window_slides_by_epochs() {
    let mut s = sketch();
    for k in 0..1000u64 {
        s.observe(Some(k));
    }
    s.rotate(1_005_000);
    let sum = s.summary(1_005_000);
    assert_eq!((sum.keyed, sum.window_ms), (1000, 5_000));
    assert!(
        (sum.distinct as f64 - 1000.0).abs() < 100.0,
        "{}",
        sum.distinct
    );
    // 30 s later the first epoch is still in the window, 60 s later it is gone.
    s.rotate(1_030_000);
    s.observe(Some(7));
    assert_eq!(s.summary(1_030_000).keyed, 1001);
    assert_eq!(s.summary(1_030_000).window_ms, 30_000);
    s.rotate(1_061_000);
    let sum = s.summary(1_061_000);
    assert_eq!((sum.keyed, sum.distinct), (1, 1), "{sum:?}");
    // A long silence clears everything.
    s.rotate(2_000_000);
    assert_eq!(s.summary(2_000_000).keyed, 0);
    assert_eq!(s.summary(2_000_000).window_ms, 0);
    // Time going backwards changes nothing.
    s.observe(None);
    s.rotate(1_000);
    assert_eq!(s.summary(2_000_000).missing, 1);
}

#[test]
fn a_hot_key_is_named_with_its_share_and_backend() {
    let mut s = sketch();
    let mut rng = SplitMix64::new(9);
    for i in 0..2000u64 {
        match i % 10 {
            0 => s.observe(None),
            1..=8 => s.observe(Some(0xBEEF)),
            _ => s.observe(Some(rng.next_u64())),
        }
        if i % 200 == 0 {
            s.rotate(1_000_000 + i * 10);
        }
    }
    let sum = s.summary(1_020_000);
    assert_eq!(sum.top[0].key, 0xBEEF);
    assert_eq!(sum.top[0].count, 1600);
    assert!((sum.share(&sum.top[0]) - 0.8).abs() < 1e-9);
    assert!(
        !sum.saturated(),
        "200 random keys in 200 samples do not repeat"
    );
    let stats = sum.key_stats(4, |k| (k == 0xBEEF).then(|| "b2".to_string()));
    assert_eq!(stats.top_key_backend.as_deref(), Some("b2"));
    assert!((stats.top_key_share - 0.8).abs() < 1e-9);
    assert!((stats.missing_key_fraction - 0.1).abs() < 1e-9);
    assert_eq!(stats.sampled_keys, 1800);
    assert_eq!(stats.top_keys.len(), 4);
    assert_eq!(stats.top_keys[0].samples, 1600);
}

#[test]
fn few_key_values_saturate_the_sample_and_many_do_not() {
    let mut few = sketch();
    let mut many = sketch();
    let mut rng = SplitMix64::new(4);
    for i in 0..800u64 {
        few.observe(Some(i % 5));
        many.observe(Some(rng.next_u64()));
    }
    let (f, m) = (few.summary(1_000_000), many.summary(1_000_000));
    assert_eq!(f.distinct, 5);
    assert!(f.saturated());
    assert!(!m.saturated(), "{}", m.distinct);
}

#[test]
fn a_sample_the_heavy_hitters_hold_whole_is_saturated_only_once_it_repeats() {
    // Five requests, five keys: every one is a heavy hitter, none repeats.
    let mut s = sketch();
    (0..5u64).for_each(|k| s.observe(Some(k)));
    assert!(!s.summary(1_000_000).saturated());
    for _ in 0..3 {
        (0..5u64).for_each(|k| s.observe(Some(k)));
    }
    assert!(s.summary(1_000_000).saturated(), "each seen four times");
}

#[test]
fn the_summary_merges_epochs_with_honest_error_bounds() {
    let cfg = KeySketchConfig {
        top_k: 4,
        ..KeySketchConfig::default()
    };
    let mut s = KeySketch::new(cfg, 0);
    // Epoch 1: key 1 heavy; epoch 2: key 2 heavy, key 1 absent behind a full table.
    for _ in 0..50 {
        s.observe(Some(1));
    }
    s.rotate(10_000);
    for k in [2, 2, 2, 2, 2, 3, 4, 5, 6] {
        s.observe(Some(k));
    }
    let sum = s.summary(10_000);
    assert_eq!(
        sum.top[0],
        KeyCount {
            key: 1,
            count: 50,
            error: 1
        }
    );
    assert_eq!(sum.top[1].key, 2);
}
