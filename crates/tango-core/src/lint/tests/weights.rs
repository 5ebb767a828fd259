use super::*;

fn backends(weights: &[u32]) -> String {
    weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            format!("[[pool.backend]]\nname = \"web-{}\"\naddress = \"10.0.0.{}:80\"\nweight = {w}\nmax_in_flight = 9\n", i + 1, i + 1)
        })
        .collect()
}

#[test]
fn weight_typo_is_a_warning_naming_backend_weight_median_and_share() {
    // The postmortem's mistake: web-2 at 10 among weight-1 peers.
    let text = pool(&format!("{QUIET}{}", backends(&[1, 10, 1, 1])));
    let d = one(&text, "TNG001");
    assert_eq!(d.severity, Severity::Warning);
    assert_eq!(
        d.message,
        "web-2 has weight 10, 10x the median of its peers (1): it will get 77% of the pool's traffic"
    );
    // Backend 2's weight: lines 7 + 5 * 1 + 3 = 15 (`weight = 10`), value at col 10.
    assert_eq!(at(&text, "TNG001"), vec![(15, 10)]);
    assert_eq!(d.key, "pool[web].backend[1].weight");
}

#[test]
fn moderate_weights_are_not_outliers() {
    let text = pool(&format!("{QUIET}{}", backends(&[1, 3, 1, 1])));
    assert!(at(&text, "TNG001").is_empty());
    // Drained peers are not the baseline: 2 vs [1, 0] is not an outlier.
    let text = pool(&format!("{QUIET}{}", backends(&[2, 1, 0])));
    assert!(at(&text, "TNG001").is_empty());
}

#[test]
fn more_than_half_of_the_weight_in_a_pool_of_three() {
    let text = pool(&format!("{QUIET}{}", backends(&[4, 2, 1])));
    let d = one(&text, "TNG001");
    assert!(d.message.contains("57% of the traffic"), "{}", d.message);
    assert_eq!(at(&text, "TNG001"), vec![(10, 10)]);
    // Half exactly is fine; so is a pool of two at 3:2.
    assert!(at(&pool(&format!("{QUIET}{}", backends(&[2, 1, 1]))), "TNG001").is_empty());
    assert!(at(&pool(&format!("{QUIET}{}", backends(&[3, 2]))), "TNG001").is_empty());
}

#[test]
fn duplicate_address_is_found_at_the_second_entry() {
    let text = pool(&format!(
        "{QUIET}{TWO}[[pool.backend]]\nname = \"again\"\naddress = \"10.0.0.1:80\"\nmax_in_flight = 1\n"
    ));
    assert_eq!(at(&text, "TNG002"), vec![(15, 11)]);
    assert!(at(&pool(&format!("{QUIET}{TWO}")), "TNG002").is_empty());
}

#[test]
fn single_backend_pool() {
    let text = pool(&format!(
        "{QUIET}[[pool.backend]]\naddress = \"10.0.0.1:80\"\nmax_in_flight = 1\n"
    ));
    assert_eq!(at(&text, "TNG003"), vec![(4, 8)]);
    assert!(at(&pool(&format!("{QUIET}{TWO}")), "TNG003").is_empty());
}

#[test]
fn zero_total_weight_is_an_error() {
    let text = pool(&format!("{QUIET}{}", backends(&[0, 0])));
    let d = one(&text, "TNG004");
    assert_eq!(d.severity, Severity::Error);
    assert_eq!(at(&text, "TNG004"), vec![(4, 8)]);
    assert!(at(&pool(&format!("{QUIET}{}", backends(&[0, 1]))), "TNG004").is_empty());
}
