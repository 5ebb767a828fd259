//! Outlier onsets: dated from the first tick that shows the outlier, not from when the
//! test had gathered enough ticks to tell, and never earlier than a tick that shows it.

use super::*;

/// Steps until an alert fires (at most `limit` ticks); returns it.
fn until_fired(f: &mut Feed, limit: usize, counts: &[u64], errors: &[u64]) -> Evidence {
    for _ in 0..limit {
        let r = f.step_with(counts, errors);
        if let Some(ev) = fired(&r.events).first() {
            return (*ev).clone();
        }
    }
    panic!("nothing fired in {limit} ticks");
}

#[test]
fn a_backend_slow_from_its_first_request_is_dated_from_when_its_traffic_began() {
    let mut f = Feed::new(&[1.0; 3]);
    f.latency = vec![1.0, 1.0, 300.0];
    assert!(f.run(10, &[0; 3]).is_empty());
    // The first tick with traffic starts when the idle tick before it was read.
    let began = f.now;
    let ev = until_fired(&mut f, 30, &[20; 3], &[0; 3]);
    assert_eq!(
        (ev.kind, ev.backend.as_str()),
        (AlertKind::Latency, "backend-2")
    );
    // At 20 requests a tick the test needs several ticks to tell; the onset does not
    // wait for it.
    assert!(ev.at_ms >= began + 4000, "{ev:?}");
    assert_eq!(ev.onset_ms, began, "{ev:?}");
}

#[test]
fn a_backend_turning_slow_mid_traffic_is_dated_from_its_first_slow_tick_only() {
    let mut f = Feed::new(&[1.0; 3]);
    f.latency = vec![20.0, 22.0, 21.0];
    assert!(f.run(60, &[100; 3]).is_empty());
    // A stall of backend-2 alone, then a normal tick: not part of what follows.
    f.latency[2] = 300.0;
    f.run(1, &[100; 3]);
    f.latency[2] = 21.0;
    f.run(1, &[100; 3]);
    let began = f.now;
    f.latency[2] = 300.0;
    let ev = until_fired(&mut f, 10, &[100; 3], &[0; 3]);
    assert_eq!(
        (ev.kind, ev.backend.as_str()),
        (AlertKind::Latency, "backend-2")
    );
    assert!(ev.at_ms >= began + 3000, "{ev:?}");
    assert_eq!(ev.onset_ms, began, "{ev:?}");
}

#[test]
fn a_backend_failing_from_its_first_request_is_dated_from_when_its_traffic_began() {
    let mut f = Feed::new(&[1.0; 3]);
    assert!(f.run(10, &[0; 3]).is_empty());
    let began = f.now;
    let ev = until_fired(&mut f, 30, &[20; 3], &[0, 0, 20]);
    assert_eq!(
        (ev.kind, ev.backend.as_str()),
        (AlertKind::Errors, "backend-2")
    );
    assert!(ev.at_ms >= began + 3000, "{ev:?}");
    assert_eq!(ev.onset_ms, began, "{ev:?}");
}

#[test]
fn an_outlier_back_after_its_resolution_is_dated_after_it() {
    let mut f = Feed::new(&[1.0; 3]);
    f.latency = vec![20.0, 22.0, 21.0];
    f.run(30, &[100; 3]);
    f.latency[2] = 300.0;
    until_fired(&mut f, 10, &[100; 3], &[0; 3]);
    f.latency[2] = 21.0;
    let resolved = (0..30)
        .find_map(|_| {
            let r = f.step(&[100; 3]);
            r.events
                .iter()
                .any(|e| matches!(e, AlertEvent::Resolved { .. }))
                .then_some(f.now)
        })
        .expect("resolved");
    // Slow again at once: the ticks before the resolution were the last episode's.
    f.latency[2] = 300.0;
    let ev = until_fired(&mut f, 200, &[100; 3], &[0; 3]);
    assert!(ev.onset_ms >= resolved, "{ev:?} resolved at {resolved}");
}
