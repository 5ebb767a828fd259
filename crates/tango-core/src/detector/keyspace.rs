//! A hash pool's expected split while some of its backends are out of rotation or
//! ramping up in slow start.
//!
//! A hash pool does not pick by weight: each key goes to the owner of its arc, and a
//! backend out of rotation, or ramping and failing the key's slow-start coin, passes the
//! key on along the ring (or table) to the next owner that takes it. So a backend at
//! part `f` of its rotation takes `f` of its own keys, and the keys it turns away go to
//! the others. Rescaling the owned shares by the parts and renormalising, as for
//! weights, gives the ramping backend a share of its own turned-away keys: the coin is
//! per key and backend, so it never takes them, and at a tenth of its ramp a backend
//! owning a third of the keys was expected 4.7% where it takes 3.3%, read as an
//! under-share while it ramps (and the canary rolled back the reload that added it).

/// Each backend's expected share of a hash pool: `owned` is each backend's share of the
/// key space (or a split standing for it, such as a learned baseline) and `parts` the
/// part of its keys it takes (0 out of rotation, under 1 in slow start, 1 at full
/// weight). Keys a backend turns away are spread over the others in proportion to what
/// they take of their own, which is where walks along a ring of many points end up.
/// When no other backend takes any, the one turning them away keeps them, as the walk
/// falls back to a ramping owner rather than to nothing. The result sums to 1, or is all
/// zeros when no backend is in rotation.
pub fn key_space_split(owned: &[f64], parts: &[f64]) -> Vec<f64> {
    let kept: Vec<f64> = owned
        .iter()
        .zip(parts)
        .map(|(o, p)| o.max(0.0) * p.clamp(0.0, 1.0))
        .collect();
    let total: f64 = kept.iter().sum();
    let mut split = kept.clone();
    for (y, (o, k)) in owned.iter().zip(&kept).enumerate() {
        let turned = o.max(0.0) - k;
        if turned <= 0.0 {
            continue;
        }
        let others = total - k;
        if others > 0.0 {
            for (x, kx) in kept.iter().enumerate().filter(|(x, _)| *x != y) {
                split[x] += turned * kx / others;
            }
        } else if *k > 0.0 {
            split[y] += turned;
        }
    }
    let sum: f64 = split.iter().sum();
    if sum > 0.0 {
        split.iter_mut().for_each(|s| *s /= sum);
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: &[f64], want: &[f64]) -> bool {
        got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9)
    }

    #[test]
    fn a_ramping_backend_takes_its_part_of_its_own_keys_and_no_more() {
        // As the picker does (policy tests: 0.25 of a half is 12.5%), not 0.25 x 0.5
        // renormalised (20%).
        let s = key_space_split(&[0.5, 0.5], &[1.0, 0.25]);
        assert!(close(&s, &[0.875, 0.125]), "{s:?}");
        let s = key_space_split(&[0.4, 0.3, 0.3], &[1.0, 1.0, 0.1]);
        assert!((s[2] - 0.03).abs() < 1e-9, "{s:?}");
        // The 27% it turns away goes to a and b by what they own: 4 : 3.
        assert!(
            close(&s, &[0.4 + 0.27 * 4.0 / 7.0, 0.3 + 0.27 * 3.0 / 7.0, 0.03]),
            "{s:?}"
        );
    }

    #[test]
    fn a_backend_out_of_rotation_leaves_its_keys_to_the_rest_by_what_they_own() {
        let s = key_space_split(&[0.5, 0.3, 0.2], &[1.0, 0.0, 1.0]);
        assert!(close(&s, &[0.5 / 0.7, 0.0, 0.2 / 0.7]), "{s:?}");
        assert!(close(
            &key_space_split(&[0.5, 0.5], &[1.0, 1.0]),
            &[0.5, 0.5]
        ));
    }

    #[test]
    fn with_no_one_else_in_rotation_a_ramping_backend_takes_every_key() {
        let s = key_space_split(&[0.5, 0.5], &[0.0, 0.3]);
        assert!(close(&s, &[0.0, 1.0]), "{s:?}");
        assert!(close(
            &key_space_split(&[0.5, 0.5], &[0.0, 0.0]),
            &[0.0, 0.0]
        ));
    }
}
