//! Which backends are in rotation, and how the shift detector's baseline is read and
//! learned over them.
//!
//! The baseline is each backend's share with every backend in rotation at full weight.
//! A backend ejected, unhealthy or draining (effective weight 0), or ramping up in slow
//! start, is not a shift: a tick's expectation is the baseline over the backends in
//! rotation, each scaled by its part in it, and only backends in rotation at full weight
//! teach the baseline, each its share of their requests within the part of the baseline
//! they hold together. A backend out of rotation keeps the share it had, however long it
//! is out, so its return to that share is no shift either. Had the baseline learned
//! "0%" from an ejection, the backend's return would read as an over-share of hundreds
//! of times.

use crate::detector::{key_space_split, PoolTick};

/// A backend in rotation at no less than this part of its weight is at full weight.
const FULL: f64 = 1.0 - 1e-9;

/// Each backend's part in this tick's rotation: its effective over its configured weight
/// (0 out of rotation, under 1 in slow start, 1 at full weight). A configured weight of 0
/// counts as full: a backend the configuration gives nothing is the configuration's
/// doing, which the baseline is there to see, not eligibility's.
pub(super) fn parts(input: &PoolTick) -> Vec<f64> {
    input
        .backends
        .iter()
        .map(|b| {
            if b.configured_weight > 0.0 {
                (b.effective_weight / b.configured_weight).clamp(0.0, 1.0)
            } else {
                1.0
            }
        })
        .collect()
}

/// The split to expect this tick: the baseline over the backends in rotation. When the
/// baseline gives them nothing at all, `fallback` (the eligible set's intent). In a hash
/// pool (`hashed`) the baseline stands for key space: a ramping backend takes its part
/// of its own keys and the others what it turns away ([`key_space_split`]).
pub(super) fn expected(
    baseline: &[f64],
    parts: &[f64],
    fallback: &[f64],
    hashed: bool,
) -> Vec<f64> {
    if hashed {
        let v = key_space_split(baseline, parts);
        return match v.iter().sum::<f64>() > 0.0 {
            true => v,
            false => fallback.to_vec(),
        };
    }
    let mut v: Vec<f64> = baseline.iter().zip(parts).map(|(b, r)| b * r).collect();
    let sum: f64 = v.iter().sum();
    if sum <= 0.0 {
        return fallback.to_vec();
    }
    v.iter_mut().for_each(|x| *x /= sum);
    v
}

/// One tick's requests read in the baseline's frame.
#[derive(Debug, PartialEq)]
pub(super) struct Frame {
    /// The requests of the backends in rotation at full weight.
    pub(super) requests: u64,
    /// Per backend in rotation at full weight, its share of `requests` times the
    /// baseline's share of those backends together; `None` for the others.
    pub(super) shares: Vec<Option<f64>>,
}

impl Frame {
    /// Reads a tick's per-backend requests (`deltas`) against `baseline` and `parts`.
    pub(super) fn read(deltas: &[u64], baseline: &[f64], parts: &[f64]) -> Self {
        let full: Vec<bool> = parts.iter().map(|r| *r >= FULL).collect();
        let requests: u64 = deltas.iter().zip(&full).filter(|x| *x.1).map(|x| x.0).sum();
        if requests == 0 {
            return Frame {
                requests,
                shares: vec![None; deltas.len()],
            };
        }
        let held: f64 = baseline
            .iter()
            .zip(&full)
            .filter(|x| *x.1)
            .map(|x| x.0)
            .sum();
        // A baseline that gives these backends nothing (a split expected without them)
        // learns them as if they were the pool; the caller renormalizes.
        let held = if held > 0.0 { held } else { 1.0 };
        let shares = deltas
            .iter()
            .zip(&full)
            .map(|(d, f)| f.then(|| held * *d as f64 / requests as f64))
            .collect();
        Frame { requests, shares }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::BackendSample;

    #[test]
    fn an_ejected_backend_is_expected_nothing_and_the_rest_their_baseline_among_them() {
        let e = expected(
            &[0.4, 0.2, 0.2, 0.2],
            &[1.0, 0.0, 1.0, 1.0],
            &[0.0; 4],
            false,
        );
        let want = [0.5, 0.0, 0.25, 0.25];
        assert!(
            e.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{e:?}"
        );
    }

    #[test]
    fn a_baseline_with_nothing_in_rotation_falls_back() {
        let e = expected(&[0.0, 1.0], &[1.0, 0.0], &[1.0, 0.0], false);
        assert_eq!(e, vec![1.0, 0.0]);
        let e = expected(&[0.0, 1.0], &[1.0, 0.0], &[1.0, 0.0], true);
        assert_eq!(e, vec![1.0, 0.0]);
    }

    #[test]
    fn a_ramping_backend_of_a_hash_pool_is_expected_its_part_of_its_own_share() {
        // A backend a reload added, a tenth into its ramp, with a fifth of the keys: it
        // takes 2% and turns the rest of its keys away; renormalised it would be 2.4%.
        let e = expected(&[0.56, 0.24, 0.2], &[1.0, 1.0, 0.1], &[0.0; 3], true);
        assert!((e[2] - 0.02).abs() < 1e-12, "{e:?}");
        assert!((e[0] + e[1] - 0.98).abs() < 1e-12, "{e:?}");
        let w = expected(&[0.56, 0.24, 0.2], &[1.0, 1.0, 0.1], &[0.0; 3], false);
        assert!((w[2] - 0.02 / 0.82).abs() < 1e-12, "{w:?}");
    }

    #[test]
    fn only_backends_at_full_weight_are_read_and_within_the_part_they_hold() {
        // backend 2 ejected, backend 3 half way through slow start.
        let f = Frame::read(
            &[60, 5, 20, 20],
            &[0.4, 0.2, 0.2, 0.2],
            &[1.0, 0.0, 0.5, 1.0],
        );
        assert_eq!(f.requests, 80);
        assert_eq!(f.shares[1], None);
        assert_eq!(f.shares[2], None);
        let (a, d) = (f.shares[0].unwrap(), f.shares[3].unwrap());
        assert!((a - 0.6 * 0.75).abs() < 1e-12 && (d - 0.6 * 0.25).abs() < 1e-12);
    }

    #[test]
    fn a_configured_weight_of_zero_is_full_rotation() {
        let t = PoolTick {
            backends: vec![
                BackendSample {
                    configured_weight: 0.0,
                    ..Default::default()
                },
                BackendSample {
                    configured_weight: 4.0,
                    effective_weight: 1.0,
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        assert_eq!(parts(&t), vec![1.0, 0.25]);
    }
}
