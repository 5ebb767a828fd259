//! How evenly a ketama-style ring splits key space, before any particular hash is chosen.
//!
//! A backend with `k` of the ring's `K` points owns the arcs ending at its points; with
//! points placed uniformly at random its share is Beta(k, K - k): mean k/K, relative
//! standard deviation sqrt((K - k) / (k (K + 1))). The expected worst backend's
//! share / expected share is E[max_i R_i] with R_i ~ N(1, sigma_i^2), integrated
//! numerically. (For 10 equal backends at 160 points each this gives 1.115; a
//! simulation of real rings gives the same within a percent.)

/// Expected max over backends of (owned share / weight share), for a ring with
/// `points_per_weight` points per unit of weight. Backends of weight 0 own nothing and
/// are ignored.
pub(super) fn expected_max_ratio(weights: &[u32], points_per_weight: u64) -> f64 {
    let ks: Vec<f64> = weights
        .iter()
        .filter(|&&w| w > 0)
        .map(|&w| f64::from(w) * points_per_weight as f64)
        .collect();
    if ks.len() < 2 {
        return 1.0;
    }
    let total: f64 = ks.iter().sum();
    let sigmas: Vec<f64> = ks
        .iter()
        .map(|&k| ((total - k) / (k * (total + 1.0))).sqrt())
        .collect();
    let smax = sigmas.iter().cloned().fold(0.0, f64::max);
    // E[M] = integral over x >= 0 of P(M > x); M is positive with overwhelming odds.
    let hi = 1.0 + 12.0 * smax;
    let steps = 4000;
    let h = hi / steps as f64;
    let survival = |x: f64| 1.0 - sigmas.iter().map(|&s| phi((x - 1.0) / s)).product::<f64>();
    let mut sum = 0.5 * (survival(0.0) + survival(hi));
    for i in 1..steps {
        sum += survival(i as f64 * h);
    }
    sum * h
}

/// Smallest ring_points (within validation's 1..=10000) whose expected max ratio is at
/// most `limit`, or `None` when even the largest is not enough. `per_unit` maps the
/// configured ring_points to the points per unit of weight the ring really places.
pub(super) fn points_needed(
    weights: &[u32],
    limit: f64,
    per_unit: impl Fn(u32) -> u64,
) -> Option<u32> {
    let ratio = |rp: u32| expected_max_ratio(weights, per_unit(rp));
    if ratio(10_000) > limit {
        return None;
    }
    let (mut lo, mut hi) = (1u32, 10_000u32);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if ratio(mid) <= limit {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}

/// Standard normal CDF, via Abramowitz and Stegun 7.1.26 (error below 1.5e-7).
fn phi(z: f64) -> f64 {
    0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
}

fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let y = 1.0 - poly * (-x * x).exp();
    if x >= 0.0 {
        y
    } else {
        -y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_is_accurate() {
        assert!((phi(0.0) - 0.5).abs() < 1e-7);
        assert!((phi(1.96) - 0.975).abs() < 1e-4);
        assert!((phi(-1.0) - 0.158_655).abs() < 1e-5);
    }

    #[test]
    fn expected_max_matches_order_statistics() {
        // E[max of 10 standard normals] = 1.5388; sigma here is about 0.0750.
        let r = expected_max_ratio(&[1; 10], 160);
        assert!((r - 1.115).abs() < 0.002, "{r}");
        // More points, less spread; one backend, no spread.
        assert!(expected_max_ratio(&[1; 10], 1000) < 1.05);
        assert_eq!(expected_max_ratio(&[3], 10), 1.0);
    }

    #[test]
    fn points_needed_meets_the_limit() {
        let p = points_needed(&[1; 10], 1.10, u64::from).unwrap();
        assert!(expected_max_ratio(&[1; 10], u64::from(p)) <= 1.10);
        assert!(expected_max_ratio(&[1; 10], u64::from(p) - 1) > 1.10);
        assert!((150..260).contains(&p), "{p}");
    }
}
