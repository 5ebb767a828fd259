//! Which backends of a pool a policy may pick, and panic mode.
//!
//! A backend is eligible when it is healthy (active checks) and not ejected (passive
//! outlier detection). When too few are eligible, the pool enters panic mode and balances
//! over every backend, as Envoy does: if most of a pool looks down, the likelier
//! explanation is a broken probe, a network partition between tango and the backends, or
//! an overload that ejection would only worsen by concentrating traffic on the
//! survivors; spreading load over all of them keeps some requests succeeding instead of
//! crushing the few that remain.

/// Result of [`eligibility`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eligibility {
    /// Per backend, whether the policy may pick it. In panic mode every entry is `true`,
    /// so the pick path needs only this vector.
    pub eligible: Vec<bool>,
    /// The eligible fraction fell below the pool's `panic_threshold`.
    pub panic: bool,
}

impl Eligibility {
    /// Number of backends the policy may pick.
    pub fn count(&self) -> usize {
        self.eligible.iter().filter(|&&e| e).count()
    }
}

/// Decides which backends may receive traffic.
///
/// `healthy[i]`, `ejected[i]` and `weights[i]` describe backend `i`; a missing `ejected`
/// entry counts as not ejected, a missing weight as a positive one. The pool size is
/// `healthy.len()`.
///
/// The fraction is by **count** of backends, not by weight, as in Envoy: the question is
/// whether the failure looks like the backends' fault or the prober's, which the number
/// of backends answers better than their weights; it also keeps the panic decision
/// independent of slow start and weight edits, which would otherwise move a pool in and
/// out of panic as weights ramp. Backends of weight 0 are left out of the count either
/// way: they serve nothing, so they say nothing about whether the backends that serve
/// are down (counted as eligible, three standby backends held off panic while the one
/// serving backend was down).
///
/// The fraction is `eligible / total` over the backends that serve.
///
/// Panic when `eligible / total < panic_threshold` (strictly below): at a threshold of
/// 0.5, two healthy backends out of four are not a panic. A threshold of 0 disables
/// panic mode, even when nothing is eligible: the caller then answers 503, which is what
/// such a setting asks for. An empty pool is never in panic.
pub fn eligibility(
    healthy: &[bool],
    ejected: &[bool],
    weights: &[u32],
    panic_threshold: f64,
) -> Eligibility {
    let eligible: Vec<bool> = healthy
        .iter()
        .enumerate()
        .map(|(i, &h)| h && !ejected.get(i).copied().unwrap_or(false))
        .collect();
    let serves = |i: &usize| weights.get(*i).is_none_or(|&w| w > 0);
    let total = (0..eligible.len()).filter(serves).count();
    if total == 0 {
        return Eligibility {
            eligible,
            panic: false,
        };
    }
    let count = (0..eligible.len())
        .filter(serves)
        .filter(|&i| eligible[i])
        .count();
    // Dividing (rather than comparing count with threshold x total) keeps exact
    // boundaries exact: 3/10 rounds to the same double as the literal 0.3.
    let fraction = count as f64 / total as f64;
    if fraction < panic_threshold {
        Eligibility {
            eligible: vec![true; eligible.len()],
            panic: true,
        }
    } else {
        Eligibility {
            eligible,
            panic: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: bool = true;
    const F: bool = false;

    #[test]
    fn healthy_and_not_ejected_is_eligible() {
        let e = eligibility(&[T, T, F, T], &[F, T, F, F], &[], 0.0);
        assert_eq!(e.eligible, [T, F, F, T]);
        assert!(!e.panic);
        assert_eq!(e.count(), 2);
    }

    #[test]
    fn missing_ejected_entries_count_as_not_ejected() {
        let e = eligibility(&[T, T, T], &[T], &[], 0.0);
        assert_eq!(e.eligible, [F, T, T]);
    }

    #[test]
    fn exactly_at_threshold_is_not_panic() {
        // 2 of 4 eligible = 0.5.
        let e = eligibility(&[T, T, F, F], &[], &[], 0.5);
        assert!(!e.panic);
        assert_eq!(e.eligible, [T, T, F, F]);
        // 3 of 10 = 0.3: the decimal boundary must hold exactly too.
        let mut healthy = [F; 10];
        healthy[..3].fill(T);
        assert!(!eligibility(&healthy, &[], &[], 0.3).panic);
        assert!(eligibility(&healthy, &[], &[], 0.300_000_1).panic);
    }

    #[test]
    fn below_threshold_panics_and_everything_is_eligible() {
        let e = eligibility(&[T, F, F, F], &[], &[], 0.5);
        assert!(e.panic);
        assert_eq!(e.eligible, [T; 4]);
        // Ejection counts the same as ill health.
        let e = eligibility(&[T, T, T, T], &[T, T, T, F], &[], 0.5);
        assert!(e.panic);
        assert_eq!(e.count(), 4);
    }

    #[test]
    fn threshold_zero_never_panics_even_with_nothing_eligible() {
        let e = eligibility(&[F, F], &[], &[], 0.0);
        assert!(!e.panic);
        assert_eq!(e.eligible, [F, F]);
    }

    #[test]
    fn threshold_one_panics_on_any_loss() {
        assert!(!eligibility(&[T, T, T], &[], &[], 1.0).panic);
        assert!(eligibility(&[T, T, F], &[], &[], 1.0).panic);
    }

    #[test]
    fn nothing_eligible_panics_with_positive_threshold() {
        let e = eligibility(&[F, F, F], &[F, T, F], &[], 0.01);
        assert!(e.panic);
        assert_eq!(e.eligible, [T, T, T]);
    }

    #[test]
    fn weight_zero_backends_are_not_counted() {
        // The one serving backend is down: three standbys of weight 0 do not hold off
        // panic (3 of 4 "eligible" would), nor make it (they stay eligible, pickable by
        // no policy).
        let e = eligibility(&[F, T, T, T], &[], &[1, 0, 0, 0], 0.5);
        assert!(e.panic);
        assert_eq!(e.eligible, [T; 4]);
        // Two of three serving backends up: not below 0.5, whatever the standbys do.
        let e = eligibility(&[T, T, F, F, F], &[], &[1, 1, 1, 0, 0], 0.5);
        assert!(!e.panic);
        // Nothing serves: never panic.
        assert!(!eligibility(&[F, F], &[], &[0, 0], 0.5).panic);
    }

    #[test]
    fn empty_pool_is_not_panic() {
        let e = eligibility(&[], &[], &[], 0.5);
        assert!(!e.panic);
        assert!(e.eligible.is_empty());
    }
}
