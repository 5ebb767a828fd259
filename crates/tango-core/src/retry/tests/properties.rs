//! Property tests: a simulated proxy drives the machine through any sequence of picks,
//! outcomes and budget answers, and the policy in the module documentation holds for
//! every run.

use super::*;
use proptest::prelude::*;

/// One try as the simulated proxy saw it.
#[derive(Debug)]
struct Try {
    backend: usize,
    send: Send,
    /// `None`: the budget refused the re-send, so nothing was sent.
    outcome: Option<Outcome>,
    tried_before: Tried,
    tried_after: Tried,
    step: Option<Step>,
}

#[derive(Debug, PartialEq)]
enum End {
    Answered,
    GaveUp(Failure),
}

#[derive(Debug)]
struct Run {
    max_attempts: u32,
    tries: Vec<Try>,
    end: End,
}

/// What the world does: which untried backend the picker takes, how each try ends
/// (`None`: a response), whether the budget has a token.
#[derive(Debug, Clone)]
struct World {
    backends: usize,
    picks: Vec<usize>,
    outcomes: Vec<Option<Outcome>>,
    budget: Vec<bool>,
}

fn outcome() -> impl Strategy<Value = Option<Outcome>> {
    let failure = prop_oneof![
        Just(Failure::Connect),
        Just(Failure::AtCapacity),
        Just(Failure::Reset),
        Just(Failure::BadResponse),
    ];
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Outcome::TimedOut)),
        3 => Just(Some(Outcome::Stale)),
        2 => Just(Some(Outcome::OverLoaded)),
        3 => failure.clone().prop_map(|f| Some(Outcome::NotSent(f))),
        3 => failure.prop_map(|f| Some(Outcome::SentFailed(f))),
    ]
}

fn world() -> impl Strategy<Value = World> {
    (
        1usize..=6,
        proptest::collection::vec(0usize..6, 0..24),
        proptest::collection::vec(outcome(), 0..24),
        proptest::collection::vec(proptest::bool::weighted(0.7), 0..24),
    )
        .prop_map(|(backends, picks, outcomes, budget)| World {
            backends,
            picks,
            outcomes,
            budget,
        })
}

fn drive(max_attempts: u32, resendable: bool, w: &World) -> Run {
    let mut r = Retry::new(max_attempts, resendable);
    let (mut picks, mut outcomes, mut budget) =
        (w.picks.iter(), w.outcomes.iter(), w.budget.iter());
    let mut tries = Vec::new();
    let end = 'run: {
        // Bounded so that a machine that never gives up fails the test instead of hanging.
        for _ in 0..100 {
            let untried: Vec<usize> = (0..w.backends)
                .filter(|&i| !r.tried().contains(i))
                .collect();
            if untried.is_empty() {
                break 'run End::GaveUp(r.none_eligible());
            }
            let backend = untried[picks.next().copied().unwrap_or(0) % untried.len()];
            let tried_before = r.tried().clone();
            let send = r.send(backend);
            let mut t = Try {
                backend,
                send,
                outcome: None,
                tried_before,
                tried_after: r.tried().clone(),
                step: None,
            };
            if send.spend_budget && !budget.next().copied().unwrap_or(true) {
                tries.push(t);
                break 'run End::GaveUp(r.budget_refused());
            }
            let Some(&Some(o)) = outcomes.next().or(Some(&None)) else {
                tries.push(t);
                break 'run End::Answered;
            };
            let step = r.record(o);
            (t.outcome, t.step, t.tried_after) = (Some(o), Some(step), r.tried().clone());
            tries.push(t);
            if let Step::GiveUp(f) = step {
                break 'run End::GaveUp(f);
            }
        }
        panic!("the machine kept asking for picks: {tries:?}");
    };
    Run {
        max_attempts: max_attempts.max(1),
        tries,
        end,
    }
}

impl Run {
    /// Which tries the policy counts as attempts: every failure except a stale
    /// connection within the bound, a backend at its cap and an over-loaded one.
    fn counted(&self) -> Vec<bool> {
        let mut stale = 0;
        self.tries
            .iter()
            .map(|t| match t.outcome {
                Some(Outcome::Stale) => {
                    stale += 1;
                    stale > MAX_STALE_RETRIES
                }
                Some(Outcome::NotSent(Failure::AtCapacity) | Outcome::OverLoaded) | None => false,
                Some(_) => true,
            })
            .collect()
    }

    /// Which tries found their backend over-loaded within the bound (released, not
    /// skipped).
    fn released(&self) -> Vec<bool> {
        let mut over = 0;
        self.tries
            .iter()
            .map(|t| {
                let o = t.outcome == Some(Outcome::OverLoaded);
                over += u32::from(o);
                o && over <= MAX_OVER_LOADED
            })
            .collect()
    }

    /// Whether try `k` found its backend full: at its cap, or over-loaded past the bound.
    fn was_full(&self, k: usize) -> bool {
        let t = &self.tries[k];
        t.outcome == Some(Outcome::NotSent(Failure::AtCapacity))
            || (t.outcome == Some(Outcome::OverLoaded) && !self.released()[k])
    }

    /// Tries that found their backend full.
    fn full(&self) -> usize {
        (0..self.tries.len()).filter(|&k| self.was_full(k)).count()
    }

    /// Each try with the attempts counted before it and whether it counted.
    fn with_attempts(&self) -> impl Iterator<Item = (&Try, u32, bool)> {
        let counted = self.counted();
        let before: Vec<u32> = counted
            .iter()
            .scan(0, |n, &c| {
                let b = *n;
                *n += u32::from(c);
                Some(b)
            })
            .collect();
        self.tries
            .iter()
            .zip(before)
            .zip(counted)
            .map(|((t, b), c)| (t, b, c))
    }

    /// The failure of the last counted try, as the client would be told it; without
    /// one, `AtCapacity` if a backend was found full.
    fn last_failure(&self) -> Option<Failure> {
        self.with_attempts()
            .filter(|(_, _, counted)| *counted)
            .filter_map(|(t, _, _)| match t.outcome? {
                Outcome::NotSent(f) | Outcome::SentFailed(f) => Some(f),
                Outcome::TimedOut => Some(Failure::Timeout),
                Outcome::Stale => Some(Failure::Connect),
                Outcome::OverLoaded => None,
            })
            .last()
            .or((self.full() > 0).then_some(Failure::AtCapacity))
    }
}

/// The same backends among the few a run has.
fn same(a: &Tried, b: &Tried) -> bool {
    (0..8).all(|i| a.contains(i) == b.contains(i))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn never_more_than_max_attempts_counted(max in 0u32..6, resendable: bool, w in world()) {
        let run = drive(max, resendable, &w);
        let attempts = run.counted().iter().filter(|&&c| c).count() as u32;
        prop_assert!(attempts <= run.max_attempts, "{attempts} attempts, at most {}", run.max_attempts);
    }

    #[test]
    fn stale_retries_are_bounded(max in 0u32..6, resendable: bool, w in world()) {
        let run = drive(max, resendable, &w);
        let free = MAX_STALE_RETRIES + MAX_OVER_LOADED + run.full() as u32;
        prop_assert!(run.tries.len() as u32 <= run.max_attempts + free);
        prop_assert!(run.full() <= w.backends, "a full backend was tried twice");
    }

    #[test]
    fn a_backend_that_failed_or_was_full_is_never_tried_again(max in 0u32..6, resendable: bool, w in world()) {
        let run = drive(max, resendable, &w);
        let mut failed = Tried::default();
        for (k, (t, _, counted)) in run.with_attempts().enumerate() {
            prop_assert!(!failed.contains(t.backend), "backend {} failed, then was tried", t.backend);
            // Excluded from every pick, so the picker goes to any untried one first.
            prop_assert!((0..8).all(|b| !failed.contains(b) || t.tried_before.contains(b)));
            if run.was_full(k) || (counted && t.outcome != Some(Outcome::TimedOut)) {
                failed.insert(t.backend);
            }
        }
    }

    #[test]
    fn a_stale_or_over_loaded_retry_releases_that_backend_alone(max in 0u32..6, resendable: bool, w in world()) {
        let run = drive(max, resendable, &w);
        let released = run.released();
        for (k, (t, _, counted)) in run.with_attempts().enumerate() {
            if (t.outcome == Some(Outcome::Stale) && !counted) || released[k] {
                prop_assert!(same(&t.tried_after, &t.tried_before));
            } else {
                prop_assert!(t.tried_after.contains(t.backend));
            }
        }
    }

    #[test]
    fn a_request_that_may_not_be_sent_twice_never_is(max in 0u32..6, w in world()) {
        let run = drive(max, false, &w);
        let sent = run.tries.iter().filter(|t| matches!(t.outcome, Some(Outcome::SentFailed(_)))).count();
        prop_assert!(sent <= 1);
        if sent == 1 {
            prop_assert!(matches!(run.tries.last().and_then(|t| t.outcome), Some(Outcome::SentFailed(_))));
        }
        prop_assert!(run.tries.iter().all(|t| !t.send.may_resend));
    }

    #[test]
    fn a_resend_spends_the_budget_once_and_nothing_else_does(max in 0u32..6, resendable: bool, w in world()) {
        let run = drive(max, resendable, &w);
        for (k, t) in run.tries.iter().enumerate() {
            let after_sent_failure = k > 0
                && matches!(run.tries[k - 1].outcome, Some(Outcome::SentFailed(_)));
            prop_assert_eq!(t.send.spend_budget, after_sent_failure);
        }
    }

    #[test]
    fn the_next_step_follows_from_the_outcome(max in 0u32..6, resendable: bool, w in world()) {
        let run = drive(max, resendable, &w);
        for (t, before, counted) in run.with_attempts() {
            let last_attempt = before + 1 >= run.max_attempts;
            prop_assert_eq!(t.send.may_resend, resendable && !last_attempt);
            let (Some(o), Some(step)) = (t.outcome, t.step) else { continue };
            let expected = match o {
                Outcome::TimedOut => Step::GiveUp(Failure::Timeout),
                Outcome::NotSent(Failure::AtCapacity) | Outcome::OverLoaded => Step::Pick,
                Outcome::Stale if !counted => Step::Pick,
                Outcome::SentFailed(f) if !resendable => Step::GiveUp(f),
                _ if !last_attempt => Step::Pick,
                Outcome::NotSent(f) | Outcome::SentFailed(f) => Step::GiveUp(f),
                Outcome::Stale => Step::GiveUp(Failure::Connect),
            };
            prop_assert_eq!(step, expected);
        }
    }

    #[test]
    fn giving_up_names_the_last_failure(max in 0u32..6, resendable: bool, w in world()) {
        let run = drive(max, resendable, &w);
        if let End::GaveUp(f) = run.end {
            prop_assert_eq!(f, run.last_failure().unwrap_or(Failure::NoneEligible));
        }
    }
}
