//! The connection cap's choice of whom to close: idle connections only, the least
//! lately active first, never one still owed bytes.

use super::*;

fn was_evicted(s: &Slot) -> bool {
    s.is_evicted()
}

#[test]
fn at_the_cap_the_oldest_idle_connection_makes_room() {
    let c = Conns::default();
    let a = c.admit(2).unwrap();
    let b = c.admit(2).unwrap();
    let n = c.admit(2).expect("an idle connection makes room");
    assert!(was_evicted(&a) && !was_evicted(&b) && !was_evicted(&n));
    // The evicted connection's own close does not uncount it a second time.
    c.close(&a);
    assert_eq!(c.open.load(Relaxed), 2);
}

#[test]
fn busy_connections_are_never_chosen() {
    let c = Conns::default();
    let a = c.admit(2).unwrap();
    let b = c.admit(2).unwrap();
    let _ga = a.start();
    let gb = b.start();
    assert!(c.admit(2).is_none(), "both are busy");
    // b finishes its request and is queued again by its watch loop.
    drop(gb);
    assert!(b.queued() != b.done());
    c.requeue(&b, b.done());
    assert!(c.admit(2).is_some());
    assert!(was_evicted(&b) && !was_evicted(&a));
}

#[test]
fn a_connection_with_bytes_still_to_deliver_is_not_chosen() {
    let c = Conns::default();
    let a = c.admit(1).unwrap();
    // Its last response went to hyper whole, but the client has not taken it all.
    a.set_blocked(true);
    assert!(c.admit(1).is_none());
    a.set_blocked(false);
    c.requeue(&a, a.done() + 1);
    assert!(c.admit(1).is_some());
    assert!(was_evicted(&a));
}

#[test]
fn idle_between_ticks_counts_as_idle() {
    let c = Conns::default();
    let a = c.admit(1).unwrap();
    // A request came and went; no tick has queued a again yet.
    drop(a.start());
    assert!(c.admit(1).is_some());
    assert!(was_evicted(&a));
}

#[test]
fn the_connection_active_least_lately_goes_first() {
    let c = Conns::default();
    let a = c.admit(2).unwrap();
    let b = c.admit(2).unwrap();
    // a served a request since b was queued; a tick queued it again.
    drop(a.start());
    c.requeue(&a, a.done());
    assert!(c.admit(2).is_some());
    assert!(!was_evicted(&a) && was_evicted(&b));
}

#[test]
fn closed_connections_free_their_place() {
    let c = Conns::default();
    let a = c.admit(1).unwrap();
    let _g = a.start();
    assert!(c.admit(1).is_none());
    c.close(&a);
    assert!(c.admit(1).is_some());
}

#[test]
fn stale_entries_do_not_pile_up() {
    let c = Conns::default();
    let slots: Vec<_> = (0..10).map(|_| c.admit(100).unwrap()).collect();
    for _ in 0..1000 {
        for s in &slots {
            drop(s.start());
            c.requeue(s, s.done());
        }
    }
    assert!(c.queued() <= 2 * 10 + 64 + 1, "{}", c.queued());
}

#[tokio::test]
async fn the_chosen_connection_is_told_even_if_it_was_not_listening_yet() {
    let c = Conns::default();
    let a = c.admit(1).unwrap();
    assert!(c.admit(1).is_some());
    tokio::time::timeout(std::time::Duration::from_secs(5), a.evicted())
        .await
        .expect("the stored notification is delivered");
}

#[test]
fn a_stopped_listener_tells_every_connection_to_close() {
    let c = Conns::default();
    let idle = c.admit(3).unwrap();
    let busy = c.admit(3).unwrap();
    let unqueued = c.admit(3).unwrap();
    let _g = busy.start();
    // Its entry was dropped while it was busy: it is not in the queue.
    let g = unqueued.start();
    unqueued.queued.store(UNQUEUED, Relaxed);
    c.stop();
    assert!(was_evicted(&idle), "idle: closed at once");
    assert!(was_evicted(&busy), "busy: told to close after its response");
    assert!(!was_evicted(&unqueued));
    // Idle again, it is queued again: and told then.
    drop(g);
    c.idle_again(&unqueued);
    assert!(was_evicted(&unqueued));
    assert!(idle.listener_stopped() && busy.listener_stopped() && unqueued.listener_stopped());
    assert_eq!(c.open.load(Relaxed), 0);
    assert_eq!(c.queued(), 0);
}
