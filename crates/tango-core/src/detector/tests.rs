use super::sim::{self, Scenario};
use super::*;

mod onset;

/// Drives a detector with exact per-tick counts.
struct Feed {
    det: PoolDetector,
    names: Vec<String>,
    weights: Vec<f64>,
    effective: Vec<f64>,
    requests: Vec<u64>,
    errors: Vec<u64>,
    now: u64,
    keys: Option<KeyStats>,
    latency: Vec<f64>,
}

impl Feed {
    fn new(weights: &[f64]) -> Self {
        let k = weights.len();
        Self {
            det: PoolDetector::new("web", DetectorConfig::default()),
            names: (0..k).map(|i| format!("backend-{i}")).collect(),
            weights: weights.to_vec(),
            effective: weights.to_vec(),
            requests: vec![0; k],
            errors: vec![0; k],
            now: 1_700_000_000_000,
            keys: None,
            latency: vec![0.0; k],
        }
    }

    /// One tick with these per-backend request (and error) counts.
    fn step_with(&mut self, counts: &[u64], errors: &[u64]) -> TickReport {
        self.now += 1000;
        for i in 0..counts.len() {
            self.requests[i] += counts[i];
            self.errors[i] += errors[i];
        }
        let tick = PoolTick {
            now_ms: self.now,
            backends: (0..counts.len())
                .map(|i| BackendSample {
                    name: self.names[i].clone(),
                    configured_weight: self.weights[i],
                    effective_weight: self.effective[i],
                    requests: self.requests[i],
                    errors: self.errors[i],
                    client_errors: None,
                    latency_sum_ms: self.latency[i] * counts[i] as f64,
                    latency_count: if self.latency[i] > 0.0 { counts[i] } else { 0 },
                    latency_buckets: if self.latency[i] > 0.0 {
                        let mut h = vec![0; LATENCY_BOUNDS_MS.len() + 1];
                        h[LATENCY_BOUNDS_MS.partition_point(|b| *b < self.latency[i])] = counts[i];
                        h
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
            keys: self.keys.clone(),
            ..PoolTick::default()
        };
        self.det.tick(&tick)
    }

    fn step(&mut self, counts: &[u64]) -> TickReport {
        self.step_with(counts, &vec![0; counts.len()])
    }

    /// Runs `ticks` ticks and returns every event.
    fn run(&mut self, ticks: usize, counts: &[u64]) -> Vec<AlertEvent> {
        (0..ticks).flat_map(|_| self.step(counts).events).collect()
    }
}

fn fired(events: &[AlertEvent]) -> Vec<&Evidence> {
    events
        .iter()
        .filter_map(|e| match e {
            AlertEvent::Fired(ev) => Some(ev),
            _ => None,
        })
        .collect()
}

#[test]
fn exact_balance_is_silent_and_gauges_follow_weights() {
    let mut f = Feed::new(&[1.0, 1.0, 2.0]);
    assert!(f.run(200, &[100, 100, 200]).is_empty());
    let r = f.step(&[100, 100, 200]);
    assert!((r.gauges[2].observed_share - 0.5).abs() < 1e-9);
    assert!((r.gauges[2].expected_share - 0.5).abs() < 1e-9);
    assert!(r.skew_score < 1e-6);
    assert_eq!(r.phi, 1.0);
}

#[test]
fn a_doubled_backend_fires_over_share_at_once_with_onset_and_cause_config() {
    let mut f = Feed::new(&[1.0; 10]);
    f.run(60, &[100; 10]);
    let onset = f.now;
    let mut skew = [89u64; 10];
    skew[3] = 200;
    let r = f.step(&skew);
    let ev = fired(&r.events);
    assert_eq!(ev.len(), 1, "{:?}", r.events);
    let ev = ev[0];
    assert_eq!(ev.backend, "backend-3");
    assert_eq!(ev.kind, AlertKind::OverShare);
    assert_eq!(ev.cause, Cause::Config);
    assert_eq!(ev.onset_ms, onset);
    assert!(ev.ratio > 1.9 && ev.z > 4.0, "{ev:?}");
    assert_eq!(f.det.active().len(), 1);
}

#[test]
fn the_alert_resolves_after_the_fix_and_does_not_refire_from_stale_windows() {
    let mut f = Feed::new(&[1.0; 4]);
    f.run(30, &[250; 4]);
    let events = f.run(40, &[550, 150, 150, 150]);
    assert_eq!(fired(&events).len(), 1);
    let after = f.run(300, &[250; 4]);
    let resolved = after
        .iter()
        .filter(|e| matches!(e, AlertEvent::Resolved { .. }))
        .count();
    assert_eq!(resolved, 1, "{after:?}");
    assert!(fired(&after).is_empty(), "{after:?}");
    assert!(f.det.active().is_empty());
}

#[test]
fn under_share_is_the_mirror() {
    let mut f = Feed::new(&[1.0; 4]);
    f.run(30, &[250; 4]);
    let events = f.run(5, &[300, 300, 300, 100]);
    let ev = fired(&events);
    assert_eq!(ev.len(), 1, "{events:?}");
    assert_eq!(ev[0].kind, AlertKind::UnderShare);
    assert_eq!(ev[0].backend, "backend-3");
}

#[test]
fn traffic_moved_by_ejection_is_attributed_to_health() {
    let mut f = Feed::new(&[1.0; 4]);
    f.run(30, &[250; 4]);
    f.effective = vec![1.0, 1.0, 0.0, 0.0];
    let events = f.run(10, &[500, 500, 0, 0]);
    let ev = fired(&events);
    assert!(!ev.is_empty());
    assert!(ev
        .iter()
        .all(|e| e.cause == Cause::Health && e.basis == Basis::Configured));
    let over: Vec<_> = ev
        .iter()
        .filter(|e| e.kind == AlertKind::OverShare)
        .collect();
    assert_eq!(over.len(), 2, "{ev:?}");
}

#[test]
fn weights_that_change_move_the_expectation_not_the_alarm() {
    let mut f = Feed::new(&[1.0; 3]);
    f.run(30, &[100; 3]);
    f.weights = vec![10.0, 1.0, 1.0];
    f.effective = f.weights.clone();
    assert!(f.run(200, &[1000, 100, 100]).is_empty());
}

#[test]
fn a_hot_key_explains_a_hash_pool_skew_with_its_share_and_backend() {
    let mut f = Feed::new(&[1.0; 4]);
    f.run(30, &[250; 4]);
    f.keys = Some(KeyStats {
        top_key_share: 0.3,
        top_key_backend: Some("backend-0".into()),
        distinct_keys: 100_000,
        sampled_keys: 7_500,
        window_ms: 60_000,
        top_keys: vec![
            TopKey {
                share: 0.3,
                samples: 2_250,
                backend: Some("backend-0".into()),
            },
            TopKey {
                share: 0.01,
                samples: 75,
                backend: Some("backend-2".into()),
            },
        ],
        ..KeyStats::default()
    });
    let events = f.run(5, &[550, 150, 150, 150]);
    let ev = fired(&events);
    let over = ev.iter().find(|e| e.kind == AlertKind::OverShare).unwrap();
    assert_eq!(over.cause, Cause::KeyDistribution);
    assert_eq!(
        over.detail.as_deref(),
        Some("one key value carries 30% of requests and maps to backend-0")
    );
}

/// Issue scenario: a ring-hash pool at 80 requests/s whose backend-1 weight went from 1
/// to 4. A second of 1-in-8 samples (or a slow machine's few) holds a handful of keys,
/// all distinct and all among the heavy hitters: that says nothing about the pool's
/// keys, so the skew is the configuration's.
#[test]
fn a_small_key_sample_does_not_explain_a_weight_change() {
    let mut f = Feed::new(&[1.0; 4]);
    f.run(60, &[20; 4]);
    let seen_once = |i: usize| TopKey {
        share: 1.0 / 6.0,
        samples: 1,
        backend: Some(format!("backend-{}", i % 4)),
    };
    f.keys = Some(KeyStats {
        top_key_share: 1.0 / 6.0,
        top_key_backend: Some("backend-0".into()),
        distinct_keys: 6,
        sampled_keys: 6,
        top_keys: (0..6).map(seen_once).collect(),
        ..KeyStats::default()
    });
    let events = f.run(30, &[11, 47, 11, 11]);
    let ev = fired(&events);
    let over = ev
        .iter()
        .find(|e| e.kind == AlertKind::OverShare)
        .expect("fires");
    assert_eq!(over.backend, "backend-1");
    assert_eq!(over.cause, Cause::Config, "{over:?}");
    assert_eq!(over.detail, None);
}

#[test]
fn keyless_requests_spread_at_random_explain_nothing_but_piled_up_they_do() {
    let mut stats = KeyStats {
        missing_key_fraction: 0.6,
        distinct_keys: 100_000,
        sampled_keys: 1000,
        ..KeyStats::default()
    };
    let run = |stats: &KeyStats| {
        let mut f = Feed::new(&[1.0; 4]);
        f.run(30, &[250; 4]);
        f.keys = Some(stats.clone());
        let events = f.run(5, &[700, 100, 100, 100]);
        fired(&events)
            .into_iter()
            .find(|e| e.kind == AlertKind::OverShare)
            .cloned()
            .unwrap()
    };
    assert_eq!(run(&stats).cause, Cause::Config);
    stats.missing_key_backend = Some("backend-0".into());
    let e = run(&stats);
    assert_eq!(e.cause, Cause::KeyDistribution);
    assert_eq!(
        e.detail.as_deref(),
        Some("60% of requests lack the hash key and all go to backend-0")
    );
}

#[test]
fn a_key_with_few_values_explains_once_the_sample_repeats() {
    let mut f = Feed::new(&[1.0; 4]);
    f.run(30, &[250; 4]);
    f.keys = Some(KeyStats {
        distinct_keys: 3,
        sampled_keys: 900,
        window_ms: 60_000,
        ..KeyStats::default()
    });
    let events = f.run(5, &[550, 150, 150, 150]);
    let over = fired(&events)
        .into_iter()
        .find(|e| e.kind == AlertKind::OverShare)
        .unwrap();
    assert_eq!(
        over.detail.as_deref(),
        Some("the hash key took only ~3 distinct values over the last 60 s for 4 backends")
    );
}

#[test]
fn an_error_outlier_fires_and_low_error_rates_do_not() {
    let mut f = Feed::new(&[1.0; 3]);
    for _ in 0..100 {
        assert!(f.step_with(&[100; 3], &[1, 0, 0]).events.is_empty());
    }
    let mut events = Vec::new();
    for _ in 0..5 {
        events.extend(f.step_with(&[100; 3], &[0, 30, 1]).events);
    }
    let ev = fired(&events);
    assert_eq!(ev.len(), 1, "{events:?}");
    assert_eq!(ev[0].kind, AlertKind::Errors);
    assert_eq!(ev[0].backend, "backend-1");
}

#[test]
fn an_error_alert_says_how_many_failed_tries_reached_clients() {
    // backend-1 fails every try; retries absorb all but 2 a tick.
    let mut det = PoolDetector::new("web", DetectorConfig::default());
    let mut fired_with = None;
    for t in 0..8u64 {
        let backends = (0..3)
            .map(|i| BackendSample {
                name: format!("backend-{i}"),
                configured_weight: 1.0,
                effective_weight: 1.0,
                requests: 100 * t,
                errors: if i == 1 { 100 * t.saturating_sub(2) } else { 0 },
                client_errors: Some(if i == 1 { 2 * t.saturating_sub(2) } else { 0 }),
                ..Default::default()
            })
            .collect();
        let tick = PoolTick {
            now_ms: 1_700_000_000_000 + 1000 * t,
            backends,
            ..Default::default()
        };
        for e in det.tick(&tick).events {
            if let AlertEvent::Fired(e) = e {
                fired_with.get_or_insert(e);
            }
        }
    }
    let e = fired_with.expect("an error alert");
    assert_eq!(
        (e.kind, e.backend.as_str()),
        (AlertKind::Errors, "backend-1")
    );
    let window_ticks = e.window_ms / 1000;
    assert_eq!(e.client_errors, Some(2 * window_ticks), "{e:?}");
}

#[test]
fn a_sustained_latency_outlier_fires_with_its_evidence() {
    let mut f = Feed::new(&[1.0; 3]);
    f.latency = vec![20.0, 22.0, 21.0];
    assert!(f.run(60, &[100; 3]).is_empty());
    f.latency[2] = 300.0;
    let events = f.run(5, &[100; 3]);
    let ev = fired(&events);
    assert_eq!(ev.len(), 1, "{events:?}");
    assert_eq!(ev[0].kind, AlertKind::Latency);
    assert_eq!(ev[0].backend, "backend-2");
    // p99 bucket bounds: 500 ms against 25 ms.
    assert_eq!((ev[0].observed, ev[0].expected), (500.0, 25.0));
    assert_eq!(ev[0].ratio, 20.0);
    assert_eq!(
        ev[0].detail.as_deref(),
        Some("80% of its requests slower than 25 ms (the others: 0.1%)")
    );
}

#[test]
fn a_stall_of_two_ticks_is_not_a_latency_outlier() {
    let mut f = Feed::new(&[1.0; 3]);
    f.latency = vec![20.0, 22.0, 21.0];
    assert!(f.run(60, &[100; 3]).is_empty());
    f.latency[2] = 300.0;
    let mut events = f.run(2, &[100; 3]);
    f.latency[2] = 21.0;
    events.extend(f.run(200, &[100; 3]));
    assert!(fired(&events).is_empty(), "{events:?}");
}

#[test]
fn latency_outliers_resist_cpu_stalls_in_a_seeded_simulation() {
    let cfg = DetectorConfig::default();
    for (_, p, max) in sim::NOISE {
        let s = sim::LatencyScenario {
            stall_probability: p,
            max_stall_ms: max,
            ..sim::LatencyScenario::noisy(3, 30, 5)
        };
        assert_eq!(sim::latency_false_alarm_rate(s, &cfg, 2000), 0.0, "{s:?}");
        let s = sim::LatencyScenario {
            rps: 400,
            backends: 4,
            ..s
        };
        let t = sim::latency_detection_ticks(s, &cfg, 60, 4.0, 30).expect("detected");
        assert!(t <= 12, "{s:?}: {t}");
    }
}

/// The latency table: `cargo test --release -p tango-core -- --ignored latency_table --nocapture`
#[test]
#[ignore]
fn latency_table() {
    let cfg = DetectorConfig::default();
    let table = sim::latency_table(&cfg, 10_000);
    for row in table.lines().skip(2) {
        let rate: f64 = row
            .split('|')
            .nth(4)
            .unwrap()
            .trim()
            .trim_end_matches('%')
            .parse()
            .unwrap();
        assert!(rate <= 0.1, "{row}");
    }
    println!("{table}");
}

#[test]
fn a_counter_reset_is_not_read_as_a_surge() {
    let mut f = Feed::new(&[1.0; 3]);
    f.run(30, &[100; 3]);
    f.requests[1] = 0;
    assert!(f.run(30, &[100; 3]).is_empty());
}

#[test]
fn a_removed_backend_resolves_its_alerts() {
    let mut f = Feed::new(&[1.0; 4]);
    f.run(30, &[250; 4]);
    f.run(5, &[550, 150, 150, 150]);
    assert_eq!(f.det.active().len(), 1);
    f.names.remove(0);
    f.weights.remove(0);
    f.effective.remove(0);
    f.requests.remove(0);
    f.errors.remove(0);
    f.latency.remove(0);
    let r = f.step(&[150, 150, 150]);
    assert!(
        matches!(&r.events[..], [AlertEvent::Resolved { evidence, .. }] if evidence.backend == "backend-0")
    );
}

#[test]
fn evidence_round_trips_through_json() {
    let mut f = Feed::new(&[1.0; 4]);
    f.run(30, &[250; 4]);
    let events = f.run(5, &[550, 150, 150, 150]);
    let json = serde_json::to_string(&events[0]).unwrap();
    assert!(json.contains("\"kind\":\"over_share\""), "{json}");
    let back: AlertEvent = serde_json::from_str(&json).unwrap();
    assert_eq!(back, events[0]);
}

#[test]
fn seeded_simulation_reduced() {
    let cfg = DetectorConfig::default();
    // Balanced: no alert at 10 backends, across traffic levels.
    for rps in [10, 100] {
        let s = Scenario {
            backends: 10,
            rps,
            seed: 7,
        };
        assert_eq!(sim::false_alarm_rate(s, &cfg, 1500), 0.0, "rps {rps}");
    }
    // 2x at 100 expected per backend per tick: within 3 ticks.
    let s = Scenario {
        backends: 10,
        rps: 1000,
        seed: 11,
    };
    let t = sim::detection_ticks(s, &cfg, 40, 2.0, 10).expect("detected");
    assert!(t <= 3, "{t}");
    // 2x at 10 expected per backend per tick: within 60 s.
    let s = Scenario {
        backends: 10,
        rps: 100,
        seed: 13,
    };
    let t = sim::detection_ticks(s, &cfg, 40, 2.0, 60).expect("detected within 60 s");
    assert!(t <= 60);
}

/// The full table: `cargo test --release -p tango-core -- --ignored detector_table --nocapture`
#[test]
#[ignore]
fn detector_table() {
    let cfg = DetectorConfig::default();
    let (ticks, trials, limit) = (10_000, 20, 1800);
    let mut rows = Vec::new();
    for backends in [3, 10, 50] {
        for rps in [1, 10, 100, 1000] {
            let r = sim::row(backends, rps, &cfg, ticks, trials, limit);
            assert!(r.false_alarm_rate <= 0.001, "{r:?}");
            let per_backend = rps as f64 / backends as f64;
            if per_backend >= 100.0 {
                assert!(r.worst().is_some_and(|t| t <= 3), "{r:?}");
            } else if per_backend >= 10.0 {
                assert!(r.worst().is_some_and(|t| t <= 60), "{r:?}");
            }
            rows.push(r);
        }
    }
    println!("{}", sim::table(&rows, ticks, limit));
}

#[test]
fn a_backend_a_reload_adds_is_not_read_as_taking_nothing_on_its_first_tick() {
    let mut f = Feed::new(&[1.0, 1.0]);
    assert!(fired(&f.run(30, &[500, 500])).is_empty());
    // A reload adds backend-2. Its first reading is its baseline (no requests counted):
    // had it kept its third of the split that tick, it would read as taking nothing,
    // and the reload's canary would roll a good change back.
    f.names.push("backend-2".into());
    f.weights.push(1.0);
    f.effective.push(1.0);
    f.requests.push(0);
    f.errors.push(0);
    f.latency.push(0.0);
    let events = f.run(30, &[333, 333, 334]);
    assert!(fired(&events).is_empty(), "{events:?}");
    // From its second tick on it is watched like the others.
    let events = f.run(10, &[450, 450, 100]);
    assert!(
        fired(&events)
            .iter()
            .any(|e| e.backend == "backend-2" && e.kind == AlertKind::UnderShare),
        "{events:?}"
    );
}
