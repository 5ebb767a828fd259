//! The hash every hash policy uses: `hash_bytes` for request keys and backend addresses,
//! and the mixers that derive ring points and slow-start coins from it.
//!
//! The output must be the same on every run and every platform, because two tango
//! instances (or `tango simulate` and a live instance) must map a key to the same backend.
//! So the input is read little-endian explicitly and no per-process seed is involved.

const K0: u64 = 0x9E37_79B9_7F4A_7C15;
const K1: u64 = 0xBF58_476D_1CE4_E5B9;
const K2: u64 = 0x94D0_49BB_1331_11EB;

/// A fast non-cryptographic 64-bit hash, stable across runs, versions and platforms.
///
/// Eight bytes at a time go through a folded 128-bit multiply; the result is finished with
/// the MurmurHash3 `fmix64` avalanche, so every input bit affects every output bit.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = K0 ^ (bytes.len() as u64).wrapping_mul(K1);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        h = fold_mul(h ^ u64::from_le_bytes(word), K1).rotate_left(23);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = fold_mul(h ^ u64::from_le_bytes(word), K2).rotate_left(23);
    }
    fmix64(h)
}

/// Combine a base hash with a small integer (a point index, a backend salt): a bijection
/// in `n` for a fixed `base`, so distinct indices never collide on purpose.
pub(crate) fn mix2(base: u64, n: u64) -> u64 {
    fmix64(base ^ n.wrapping_add(1).wrapping_mul(K0))
}

/// A uniform number in [0, 1) from the top 53 bits of `x`.
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn fold_mul(a: u64, b: u64) -> u64 {
    let m = u128::from(a) * u128::from(b);
    (m as u64) ^ ((m >> 64) as u64)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    k ^= k >> 33;
    k = k.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_pinned() {
        // Changing these moves every hashed key in every deployment: do it on purpose only.
        assert_eq!(hash_bytes(b""), PINNED[0]);
        assert_eq!(hash_bytes(b"a"), PINNED[1]);
        assert_eq!(hash_bytes(b"10.0.0.1:8080"), PINNED[2]);
    }

    const PINNED: [u64; 3] = [
        11286133854226296554,
        4230931559739435324,
        17878416832485467921,
    ];

    #[test]
    fn every_byte_and_the_length_matter() {
        let base = hash_bytes(b"user-12345678");
        assert_ne!(base, hash_bytes(b"user-12345679"));
        assert_ne!(base, hash_bytes(b"User-12345678"));
        assert_ne!(hash_bytes(b"ab"), hash_bytes(b"ab\0"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }

    #[test]
    fn top_bits_spread_evenly() {
        // Ring and table positions come from the hash, so it must fill the space evenly
        // even for keys that differ in one character.
        let mut buckets = [0u32; 16];
        for i in 0..16_000u32 {
            buckets[(hash_bytes(format!("key{i}").as_bytes()) >> 60) as usize] += 1;
        }
        for b in buckets {
            assert!((850..1150).contains(&b), "{buckets:?}");
        }
    }
}
