//! The retry policy, case by case; the properties that must hold for any sequence of
//! outcomes are in `properties`.

use super::*;

mod properties;

#[test]
fn a_refused_connection_is_retried_elsewhere_for_free() {
    let mut r = Retry::new(2, false);
    let s = r.send(0);
    assert!(!s.spend_budget);
    assert_eq!(
        r.record(Outcome::NotSent(Failure::Connect)),
        Step::Pick,
        "nothing was sent: even a POST with a body may go elsewhere"
    );
    assert!(r.tried().contains(0));
    let s = r.send(1);
    assert!(
        !s.spend_budget,
        "a retry of a request no backend received is free"
    );
    assert_eq!(
        r.record(Outcome::NotSent(Failure::Connect)),
        Step::GiveUp(Failure::Connect)
    );
    assert_eq!(r.attempts(), 2);
}

#[test]
fn a_backend_at_its_cap_is_skipped_without_spending_an_attempt() {
    // Three backends, one attempt: the first two are full, the third has room.
    let mut r = Retry::new(1, false);
    for full in [0, 1] {
        r.send(full);
        assert_eq!(r.record(Outcome::NotSent(Failure::AtCapacity)), Step::Pick);
        assert!(r.tried().contains(full), "a full backend stays excluded");
    }
    assert_eq!(r.attempts(), 0, "nothing was tried");
    let s = r.send(2);
    assert!(!s.spend_budget);
    // Nothing else left: the request was refused because the backends were full.
    assert_eq!(r.none_eligible(), Failure::AtCapacity);
    // A counted failure is what the client is told, rather than a skip before it.
    assert_eq!(
        r.record(Outcome::NotSent(Failure::Connect)),
        Step::GiveUp(Failure::Connect)
    );
}

#[test]
fn a_reset_after_sending_is_retried_only_when_the_request_may_be_sent_twice() {
    let mut post = Retry::new(3, false);
    post.send(0);
    assert_eq!(
        post.record(Outcome::SentFailed(Failure::Reset)),
        Step::GiveUp(Failure::Reset)
    );

    let mut get = Retry::new(3, true);
    assert!(get.send(0).may_resend);
    assert_eq!(get.record(Outcome::SentFailed(Failure::Reset)), Step::Pick);
    let s = get.send(1);
    assert!(
        s.spend_budget,
        "the re-send of a received request spends the budget"
    );
    assert!(s.may_resend);
    // A stale connection on the way does not charge the same retry twice.
    assert_eq!(get.record(Outcome::Stale), Step::Pick);
    let s = get.send(1);
    assert!(!s.spend_budget);
    assert!(s.may_resend, "still the second attempt of three");
    assert_eq!(get.record(Outcome::NotSent(Failure::Connect)), Step::Pick);
    let s = get.send(2);
    assert!(!s.spend_budget, "a try after a refused connection is free");
    assert!(!s.may_resend, "the third attempt is the last");
}

/// A response head tango cannot forward is retried exactly as a reset after sending:
/// the same steps, attempts and budget for every kind of request; only the failure
/// the client is told of differs.
#[test]
fn a_bad_response_head_is_retried_as_a_reset_is() {
    // Each try fails with `f`: what the machine says after each.
    let run = |max: u32, resendable: bool, f: Failure| {
        let mut r = Retry::new(max, resendable);
        let mut steps = Vec::new();
        for i in 0..4 {
            let send = r.send(i);
            let step = r.record(Outcome::SentFailed(f));
            steps.push((send, step, r.attempts(), r.none_eligible()));
            if step != Step::Pick {
                break;
            }
        }
        steps
    };
    let as_reset = |f| match f {
        Failure::BadResponse => Failure::Reset,
        f => f,
    };
    for (max, resendable) in [(1, true), (2, true), (3, true), (2, false), (3, false)] {
        let bad: Vec<_> = run(max, resendable, Failure::BadResponse)
            .into_iter()
            .map(|(send, step, attempts, last)| {
                assert_eq!(last, Failure::BadResponse, "the client is told of it");
                let step = match step {
                    Step::GiveUp(f) => Step::GiveUp(as_reset(f)),
                    Step::Pick => Step::Pick,
                };
                (send, step, attempts, as_reset(last))
            })
            .collect();
        let reset = run(max, resendable, Failure::Reset);
        assert_eq!(bad, reset, "max_attempts {max}, resendable {resendable}");
    }
}

#[test]
fn a_timed_out_try_is_never_retried() {
    let mut r = Retry::new(5, true);
    r.send(0);
    assert_eq!(r.record(Outcome::TimedOut), Step::GiveUp(Failure::Timeout));
}

#[test]
fn a_stale_connection_releases_its_backend_but_not_those_that_failed() {
    let mut r = Retry::new(3, false);
    r.send(0);
    assert_eq!(r.record(Outcome::NotSent(Failure::Connect)), Step::Pick);
    r.send(1);
    assert_eq!(r.record(Outcome::Stale), Step::Pick);
    assert!(
        r.tried().contains(0),
        "backend 0 failed this request: still excluded"
    );
    assert!(
        !r.tried().contains(1),
        "backend 1 only had a stale connection"
    );
    assert_eq!(r.attempts(), 1, "a stale connection costs no attempt");
}

#[test]
fn stale_connections_are_free_only_up_to_the_bound() {
    let mut r = Retry::new(2, true);
    for _ in 0..MAX_STALE_RETRIES {
        r.send(0);
        assert_eq!(r.record(Outcome::Stale), Step::Pick);
    }
    assert_eq!(r.attempts(), 0);
    r.send(0);
    assert_eq!(
        r.record(Outcome::Stale),
        Step::Pick,
        "past the bound a stale connection is a failed connect"
    );
    assert_eq!(r.attempts(), 1);
    assert!(r.tried().contains(0));
    r.send(1);
    assert_eq!(r.record(Outcome::Stale), Step::GiveUp(Failure::Connect));
}

#[test]
fn an_over_loaded_backend_is_weighed_again_at_no_cost_up_to_the_bound() {
    // One attempt, a POST: a lost place must neither spend it nor end the request.
    let mut r = Retry::new(1, false);
    for _ in 0..MAX_OVER_LOADED {
        let s = r.send(0);
        assert!(!s.spend_budget);
        assert_eq!(r.record(Outcome::OverLoaded), Step::Pick);
        assert!(
            !r.tried().contains(0),
            "released for the next pick to weigh"
        );
    }
    assert_eq!(r.attempts(), 0, "nothing was tried");
    assert_eq!(
        r.none_eligible(),
        Failure::NoneEligible,
        "and nothing failed"
    );
    // Past the bound it is skipped as a full backend is: the request still ends.
    r.send(0);
    assert_eq!(r.record(Outcome::OverLoaded), Step::Pick);
    assert!(r.tried().contains(0));
    assert_eq!(r.none_eligible(), Failure::AtCapacity);
    assert_eq!(r.attempts(), 0);
    r.send(1);
    assert_eq!(
        r.record(Outcome::NotSent(Failure::Connect)),
        Step::GiveUp(Failure::Connect)
    );
}

#[test]
fn an_over_loaded_retry_spends_the_budget_once() {
    let mut r = Retry::new(3, true);
    r.send(0);
    assert_eq!(r.record(Outcome::SentFailed(Failure::Reset)), Step::Pick);
    assert!(r.send(1).spend_budget, "the re-send spends");
    assert_eq!(r.record(Outcome::OverLoaded), Step::Pick);
    assert!(
        !r.send(2).spend_budget,
        "the same re-send, elsewhere: already paid"
    );
    assert_eq!(r.attempts(), 1);
}

#[test]
fn giving_up_names_the_last_failure() {
    let r = Retry::new(2, true);
    assert_eq!(r.none_eligible(), Failure::NoneEligible);
    assert_eq!(r.out_of_time(), Failure::Timeout);

    let mut r = Retry::new(3, true);
    r.send(0);
    r.record(Outcome::SentFailed(Failure::Reset));
    assert_eq!(r.none_eligible(), Failure::Reset);
    assert!(r.send(1).spend_budget);
    assert_eq!(r.budget_refused(), Failure::Reset);
}

#[test]
fn at_least_one_attempt_is_allowed() {
    let mut r = Retry::new(0, true);
    assert!(!r.send(0).may_resend);
    assert_eq!(
        r.record(Outcome::NotSent(Failure::Connect)),
        Step::GiveUp(Failure::Connect)
    );
}

#[test]
fn tried_holds_any_index() {
    let mut t = Tried::default();
    for i in [0, 5, 127, 128, 1000] {
        assert!(!t.contains(i));
        t.insert(i);
        t.insert(i);
        assert!(t.contains(i));
    }
    t.remove(128);
    t.remove(5);
    assert!(!t.contains(128) && !t.contains(5));
    assert!(t.contains(1000) && t.contains(127) && t.contains(0));
}
