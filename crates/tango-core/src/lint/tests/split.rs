use super::*;

/// `n` equal backends on a ring of `points` per backend, or a maglev table.
fn hashed(policy: &str, points: u32, n: u32) -> String {
    let backends: String = (1..=n)
        .map(|i| format!("[[pool.backend]]\naddress = \"10.0.0.{i}:80\"\nmax_in_flight = 9\n"))
        .collect();
    pool(&format!(
        "{QUIET}policy = \"{policy}\"\nring_points = {points}\nhash_key = {{ source = \"path\" }}\nmax_load_factor = 1.25\n{backends}"
    ))
}

#[test]
fn a_ring_whose_exact_split_deviates_from_the_weights() {
    // Sixty backends at 160 points each: the built ring is uneven.
    let text = hashed("ring_hash", 160, 60);
    let (_, l) = lint_text(&text);
    let d: Vec<&Diagnostic> = l
        .problems
        .iter()
        .filter(|d| d.code == Some("TNG020"))
        .collect();
    assert_eq!(d.len(), 1, "{:#?}", l.problems);
    assert!(
        d[0].message
            .contains("of pool `web`'s key space but its weight gives it 1.7%"),
        "{}",
        d[0].message
    );
    // No weight key in the file: the finding points at the policy (line 7).
    assert_eq!(at(&text, "TNG020"), vec![(7, 10)]);
}

/// Ring points that TNG010 finds too few are also the ones whose exact split deviates.
pub(super) fn many(points: u32) -> String {
    hashed("ring_hash", points, 60)
}

#[test]
fn maglev_and_dense_rings_follow_the_weights() {
    assert!(at(&hashed("maglev", 160, 10), "TNG020").is_empty());
    assert!(at(&hashed("ring_hash", 1000, 10), "TNG020").is_empty());
}
