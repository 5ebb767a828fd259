use super::*;

#[test]
fn no_health_check_is_a_warning_or_info_with_outlier_ejection() {
    let text = pool(&format!("slow_start = \"5s\"\n{TWO}"));
    assert_eq!(at(&text, "TNG005"), vec![(4, 8)]);
    assert_eq!(one(&text, "TNG005").severity, Severity::Warning);
    let text = pool(&format!("slow_start = \"5s\"\noutlier = {{ consecutive_failures = 5 }}\n{TWO}[[pool.backend]]\naddress = \"10.0.0.3:80\"\n"));
    assert_eq!(one(&text, "TNG005").severity, Severity::Info);
    assert!(at(&pool(&format!("{QUIET}{TWO}")), "TNG005").is_empty());
}

#[test]
fn slow_health_check_points_at_the_interval() {
    let text = pool(&format!(
        "slow_start = \"5s\"\n[pool.health]\ninterval = \"10s\"\nfall = 4\n{TWO}"
    ));
    let d = one(&text, "TNG006");
    assert!(
        d.message.contains("after 40s (interval 10s x fall 4)"),
        "{}",
        d.message
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("with interval 10s, use fall = 3 or less; or shorten the interval")
    );
    assert_eq!(at(&text, "TNG006"), vec![(7, 12)]);
    // Only fall set: point at fall. 5s x 7 = 35s.
    let text = pool(&format!(
        "slow_start = \"5s\"\n[pool.health]\nfall = 7\n{TWO}"
    ));
    assert_eq!(at(&text, "TNG006"), vec![(7, 8)]);
    // 10s x 3 = 30s is fast enough.
    let text = pool(&format!(
        "slow_start = \"5s\"\n[pool.health]\ninterval = \"10s\"\nfall = 3\n{TWO}"
    ));
    assert!(at(&text, "TNG006").is_empty());
}

#[test]
fn no_slow_start_warns_for_load_aware_policies_and_informs_for_health_checked_pools() {
    let text = pool(&format!(
        "policy = \"least_request\"\nhealth = {{ path = \"/\" }}\n{TWO}"
    ));
    assert_eq!(at(&text, "TNG013"), vec![(5, 10)]);
    assert_eq!(one(&text, "TNG013").severity, Severity::Warning);
    let text = pool(&format!("health = {{ path = \"/\" }}\n{TWO}"));
    assert_eq!(at(&text, "TNG013"), vec![(4, 8)]);
    assert_eq!(one(&text, "TNG013").severity, Severity::Info);
    assert!(at(&pool(&format!("{QUIET}{TWO}")), "TNG013").is_empty());
}

#[test]
fn ejection_that_can_remove_half_a_small_pool() {
    let text = pool(&format!(
        "{QUIET}[pool.outlier]\nmax_ejected_percent = 70.0\n{TWO}[[pool.backend]]\naddress = \"10.0.0.3:80\"\nmax_in_flight = 1\n"
    ));
    let d = one(&text, "TNG017");
    assert!(
        d.message.contains("remove 2 of the 3 backends"),
        "{}",
        d.message
    );
    assert_eq!(at(&text, "TNG017"), vec![(8, 23)]);
    // Of three at 50%, one can go: fine. Of four at 70%, not a small pool.
    let text = pool(&format!(
        "{QUIET}[pool.outlier]\nmax_ejected_percent = 50.0\n{TWO}[[pool.backend]]\naddress = \"10.0.0.3:80\"\nmax_in_flight = 1\n"
    ));
    assert!(at(&text, "TNG017").is_empty());
    // Of two, any ejection leaves one; the table itself is pointed at when the percent is defaulted.
    let text = pool(&format!(
        "{QUIET}[pool.outlier]\nconsecutive_failures = 3\n{TWO}"
    ));
    assert_eq!(at(&text, "TNG017"), vec![(7, 1)]);
}
