//! A backend's in-flight caps under threads racing for its last places.

use super::{BackendState, Full, InFlight, FROM_START};
use std::sync::Barrier;

/// Threads that each take as many places as they can at once: held until all are done.
fn race(
    b: &BackendState,
    max_in_flight: Option<u32>,
    load_cap: Option<u64>,
) -> Vec<Result<InFlight<&BackendState>, Full>> {
    let threads = 4;
    let start = Barrier::new(threads);
    std::thread::scope(|s| {
        let racers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    (0..50)
                        .map(|_| InFlight::reserve(b, max_in_flight, load_cap))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        racers
            .into_iter()
            .flat_map(|r| r.join().expect("racer"))
            .collect()
    })
}

#[test]
fn racing_reservations_take_exactly_the_places_under_the_tighter_cap() {
    // (max_in_flight, the pick's bounded-load cap, the places, which cap refuses).
    let cases = [
        (None, Some(5), 5, Full::LoadCap),
        (Some(5), None, 5, Full::MaxInFlight),
        (Some(7), Some(5), 5, Full::LoadCap),
        (Some(5), Some(7), 5, Full::MaxInFlight),
        (Some(3), Some(3), 3, Full::MaxInFlight),
    ];
    for (max_in_flight, load_cap, places, refused) in cases {
        for _ in 0..20 {
            let b = BackendState::new("b", "127.0.0.1:1", FROM_START);
            let got = race(&b, max_in_flight, load_cap);
            let taken = got.iter().filter(|r| r.is_ok()).count() as u64;
            assert_eq!(taken, places, "{max_in_flight:?}, {load_cap:?}");
            assert_eq!(b.in_flight(), places);
            assert!(got
                .iter()
                .all(|r| r.as_ref().err().is_none_or(|e| *e == refused)));
            drop(got);
            assert_eq!(b.in_flight(), 0, "every place given back");
        }
    }
}

#[test]
fn without_caps_every_request_is_counted_in() {
    let b = BackendState::new("b", "127.0.0.1:1", FROM_START);
    let got = race(&b, None, None);
    assert!(got.iter().all(Result::is_ok));
    assert_eq!(b.in_flight(), 200);
}

#[test]
fn a_place_given_back_is_taken_again_and_the_count_never_passes_the_cap() {
    let b = BackendState::new("b", "127.0.0.1:1", FROM_START);
    let start = Barrier::new(4);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                start.wait();
                for _ in 0..2_000 {
                    if let Ok(place) = InFlight::reserve(&b, None, Some(2)) {
                        assert!(b.in_flight() <= 2, "{} in flight, cap 2", b.in_flight());
                        drop(place);
                    }
                }
            });
        }
    });
    assert_eq!(b.in_flight(), 0);
}
