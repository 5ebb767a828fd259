//! Maglev consistent hashing (Eisenbud et al., NSDI 2016) with weights: a lookup table
//! of prime size M filled by each backend walking its own permutation of the slots; a key
//! belongs to `table[key mod M]`.
//!
//! Size: the smallest prime >= max(65537, 100 x backends). The paper shows ownership
//! differs from the intended share by at most about n/M, and disruption on a change
//! stays near the minimum, once M is ~100x the backend count. The floor of 65537 (Envoy's
//! default size) keeps small pools within about 0.01% of their weights for 256 KiB of
//! u32 entries, built in a few milliseconds on reload; larger pools grow it to 100 x n.
//!
//! Weights follow Envoy's scheme: in round `r` a backend takes its next slot only if
//! `r x w_i >= taken_i x w_max`, so a backend of weight w_max/3 fills a slot every third
//! round and ends with a third of the slots.

use super::hash::{hash_bytes, mix2};

/// The smallest Maglev table (a prime): at least 100 slots per backend are used.
pub const MIN_TABLE_SIZE: u64 = 65_537;

#[derive(Debug, Clone)]
pub(crate) struct Maglev {
    table: Box<[u32]>,
}

impl Maglev {
    pub(crate) fn new(addresses: &[&str], weights: &[u32]) -> Self {
        let n = addresses.len();
        let m = table_size(n);
        let max_w = weights.iter().copied().max().unwrap_or(0);
        if max_w == 0 {
            return Maglev {
                table: Box::new([]),
            };
        }
        let perms: Vec<(u64, u64)> = addresses
            .iter()
            .map(|a| {
                let h = hash_bytes(a.as_bytes());
                let offset = mix2(h, 0) % m;
                let skip = mix2(h, 1) % (m - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; n];
        let mut target = vec![0u64; n];
        let mut table = vec![u32::MAX; m as usize];
        let mut filled = 0u64;
        let mut round = 0u64;
        'fill: loop {
            for b in 0..n {
                let w = u64::from(weights[b]);
                if w == 0 || round * w < target[b] {
                    continue;
                }
                target[b] += u64::from(max_w);
                let (offset, skip) = perms[b];
                // Walk this backend's permutation to its next free slot.
                loop {
                    let slot = ((offset + next[b] * skip) % m) as usize;
                    next[b] += 1;
                    if table[slot] == u32::MAX {
                        table[slot] = b as u32;
                        filled += 1;
                        break;
                    }
                }
                if filled == m {
                    break 'fill;
                }
            }
            round += 1;
        }
        Maglev {
            table: table.into(),
        }
    }

    pub(crate) fn owners(&self) -> &[u32] {
        &self.table
    }

    pub(crate) fn position(&self, key: u64) -> usize {
        (key % self.table.len() as u64) as usize
    }

    /// Exact share of keys per backend: its slot count over the table size.
    pub(crate) fn ownership(&self, n: usize) -> Vec<f64> {
        let mut share = vec![0f64; n];
        let len = self.table.len() as f64;
        for &b in self.table.iter() {
            share[b as usize] += 1.0 / len;
        }
        share
    }
}

/// The smallest prime >= max(65537, 100 x backends).
pub fn table_size(backends: usize) -> u64 {
    let mut m = MIN_TABLE_SIZE.max(100 * backends as u64);
    while !is_prime(m) {
        m += 1;
    }
    m
}

fn is_prime(n: u64) -> bool {
    if n < 4 {
        return n >= 2;
    }
    if n % 2 == 0 {
        return false;
    }
    let mut d = 3;
    while d * d <= n {
        if n % d == 0 {
            return false;
        }
        d += 2;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sizes_are_prime_and_large_enough() {
        assert_eq!(table_size(3), 65_537);
        assert_eq!(table_size(1000), 100_003);
        assert!(is_prime(table_size(5000)) && table_size(5000) >= 500_000);
    }

    #[test]
    fn every_slot_is_filled_in_proportion_to_weight() {
        let a = ["a:1", "b:1", "c:1", "d:1"];
        let t = Maglev::new(&a, &[1, 2, 3, 0]);
        assert!(t.owners().iter().all(|&b| b < 3));
        let own = t.ownership(4);
        for (i, want) in [1.0 / 6.0, 2.0 / 6.0, 3.0 / 6.0, 0.0].iter().enumerate() {
            assert!((own[i] - want).abs() < 0.001, "{own:?}");
        }
    }

    #[test]
    fn all_zero_weights_give_an_empty_table() {
        assert!(Maglev::new(&["a:1"], &[0]).owners().is_empty());
    }
}
