//! Weighted draws: a Walker/Vose alias table over the configured weights (O(1) per draw),
//! and the draw over *effective* weights (configured x slow-start factor, eligible only)
//! built on it by rejection, with an exact linear fallback.
//!
//! Rejection keeps the distribution exact: a draw from the static table accepted with
//! probability `factor` (and only if eligible) is distributed as `w_i x factor_i` over the
//! eligible set, and the fallback used after too many rejections draws from that same
//! distribution directly, so mixing the two changes nothing.

use super::hash::unit;
use super::PickEnv;

/// Rejection rounds before the exact O(n) draw; with most backends eligible at full
/// weight the first round almost always succeeds.
const REJECTION_ROUNDS: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct AliasTable {
    /// Acceptance threshold of each column, out of 2^32.
    prob: Box<[u64]>,
    alias: Box<[u32]>,
    weights: Box<[u32]>,
    total: u64,
}

impl AliasTable {
    pub(crate) fn new(weights: &[u32]) -> Self {
        let n = weights.len();
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut prob = vec![1u64 << 32; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        if total > 0 {
            // Column i holds w_i x n against a column capacity of `total` (exact integers).
            let mut scaled: Vec<u64> = weights.iter().map(|&w| u64::from(w) * n as u64).collect();
            let (mut small, mut large): (Vec<usize>, Vec<usize>) =
                (0..n).partition(|&i| scaled[i] < total);
            while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
                prob[s] = (u128::from(scaled[s]) << 32).div_euclid(u128::from(total)) as u64;
                alias[s] = l as u32;
                scaled[l] -= total - scaled[s];
                if scaled[l] < total {
                    large.pop();
                    small.push(l);
                }
            }
            // Leftovers are full columns up to rounding.
        }
        AliasTable {
            prob: prob.into(),
            alias: alias.into(),
            weights: weights.into(),
            total,
        }
    }

    pub(crate) fn weight(&self, i: usize) -> u32 {
        self.weights[i]
    }

    pub(crate) fn weights(&self) -> &[u32] {
        &self.weights
    }

    pub(crate) fn len(&self) -> usize {
        self.weights.len()
    }

    /// One draw proportional to the configured weights. `None` when every weight is zero.
    pub(crate) fn draw(&self, r: u64) -> Option<usize> {
        if self.total == 0 {
            return None;
        }
        let col = (((r >> 32) * self.weights.len() as u64) >> 32) as usize;
        if (r & 0xFFFF_FFFF) < self.prob[col] {
            Some(col)
        } else {
            Some(self.alias[col] as usize)
        }
    }

    /// A draw proportional to `weight x factor` over eligible backends; `None` if none
    /// is eligible with a positive effective weight.
    pub(crate) fn draw_effective(&self, env: &impl PickEnv) -> Option<usize> {
        for _ in 0..REJECTION_ROUNDS {
            let i = self.draw(env.random())?;
            if env.eligible(i) && accept(env.weight_factor(i), env) {
                return Some(i);
            }
        }
        self.draw_exact(env)
    }

    /// The same distribution as `draw_effective`, by a linear scan.
    pub(crate) fn draw_exact(&self, env: &impl PickEnv) -> Option<usize> {
        let eff = |i: usize| -> f64 {
            if self.weights[i] == 0 || !env.eligible(i) {
                0.0
            } else {
                f64::from(self.weights[i]) * clamp_factor(env.weight_factor(i))
            }
        };
        let sum: f64 = (0..self.len()).map(eff).sum();
        if sum <= 0.0 {
            return None;
        }
        let mut target = unit(env.random()) * sum;
        let mut last = None;
        for i in 0..self.len() {
            let e = eff(i);
            if e > 0.0 {
                if target < e {
                    return Some(i);
                }
                target -= e;
                last = Some(i);
            }
        }
        // Floating-point leftovers land on the last positive entry.
        last
    }
}

/// Accept with probability `factor` (1 without consuming randomness at full weight).
pub(crate) fn accept(factor: f64, env: &impl PickEnv) -> bool {
    let f = clamp_factor(factor);
    f >= 1.0 || (f > 0.0 && unit(env.random()) < f)
}

pub(crate) fn clamp_factor(f: f64) -> f64 {
    if f.is_nan() {
        1.0
    } else {
        f.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testenv::TestEnv;

    #[test]
    fn alias_table_is_exact_over_all_columns() {
        // Summing each column's acceptance and alias mass must give back the weights.
        let weights = [3u32, 1, 0, 7, 5];
        let t = AliasTable::new(&weights);
        let n = weights.len() as f64;
        let mut mass = [0f64; 5];
        for c in 0..weights.len() {
            let p = t.prob[c] as f64 / (1u64 << 32) as f64;
            mass[c] += p / n;
            mass[t.alias[c] as usize] += (1.0 - p) / n;
        }
        for (i, w) in weights.iter().enumerate() {
            let want = f64::from(*w) / 16.0;
            assert!((mass[i] - want).abs() < 1e-6, "{i}: {} vs {want}", mass[i]);
        }
    }

    #[test]
    fn all_zero_weights_draw_nothing() {
        let t = AliasTable::new(&[0, 0]);
        let env = TestEnv::new(2, 1);
        assert_eq!(t.draw_effective(&env), None);
    }

    #[test]
    fn factor_and_eligibility_shape_the_effective_draw() {
        let t = AliasTable::new(&[1, 1, 1]);
        let mut env = TestEnv::new(3, 7);
        env.factor[0] = 0.25;
        env.eligible[2] = false;
        let mut n = [0u32; 3];
        for _ in 0..40_000 {
            n[t.draw_effective(&env).unwrap()] += 1;
        }
        assert_eq!(n[2], 0);
        let share0 = f64::from(n[0]) / 40_000.0;
        assert!((share0 - 0.2).abs() < 0.01, "{n:?}");
    }

    #[test]
    fn exact_fallback_matches() {
        let t = AliasTable::new(&[2, 0, 6]);
        let mut env = TestEnv::new(3, 11);
        env.factor[2] = 0.5;
        let mut n = [0u32; 3];
        for _ in 0..40_000 {
            n[t.draw_exact(&env).unwrap()] += 1;
        }
        assert_eq!(n[1], 0);
        let share0 = f64::from(n[0]) / 40_000.0;
        assert!((share0 - 0.4).abs() < 0.01, "{n:?}");
    }
}
