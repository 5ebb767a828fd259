use super::*;

#[test]
fn least_request_behind_a_long_lived_listener_is_info() {
    let body = format!("{QUIET}policy = \"least_request\"\n{TWO}");
    let text = pool(&body).replacen(
        "listen = \"127.0.0.1:8080\"\n",
        "listen = \"127.0.0.1:8080\"\nidle_timeout = \"10m\"\n",
        1,
    );
    // One line added above: the policy is on line 8.
    assert_eq!(at(&text, "TNG012"), vec![(8, 10)]);
    assert_eq!(one(&text, "TNG012").severity, Severity::Info);
    assert!(at(&pool(&body), "TNG012").is_empty());
}

#[test]
fn no_connection_cap() {
    let text = pool(&format!(
        "{QUIET}[[pool.backend]]\naddress = \"10.0.0.1:80\"\n[[pool.backend]]\naddress = \"10.0.0.2:80\"\n"
    ));
    assert_eq!(at(&text, "TNG014"), vec![(4, 8)]);
    assert_eq!(one(&text, "TNG014").severity, Severity::Info);
    assert!(at(&pool(&format!("{QUIET}{TWO}")), "TNG014").is_empty());
}

#[test]
fn retries_that_do_not_fit_the_timeout() {
    let text = pool(&format!(
        "{QUIET}max_attempts = 3\ntry_timeout = \"15s\"\ntimeout = \"30s\"\n{TWO}"
    ));
    let d = one(&text, "TNG015");
    assert!(
        d.message.contains("max_attempts 3 x try_timeout 15s = 45s"),
        "{}",
        d.message
    );
    assert_eq!(
        d.hint.as_deref(),
        Some("set try_timeout to 10s or less, or timeout to 45s or more")
    );
    assert_eq!(at(&text, "TNG015"), vec![(8, 15)]);
    let text = pool(&format!(
        "{QUIET}max_attempts = 3\ntry_timeout = \"10s\"\ntimeout = \"30s\"\n{TWO}"
    ));
    assert!(at(&text, "TNG015").is_empty());
}

#[test]
fn pool_timeout_longer_than_the_listener_allows() {
    let text = pool(&format!(
        "{QUIET}timeout = \"90s\"\ntry_timeout = \"30s\"\n{TWO}"
    ));
    let d = one(&text, "TNG016");
    assert!(
        d.message.contains("ends every request after 1m"),
        "{}",
        d.message
    );
    assert_eq!(at(&text, "TNG016"), vec![(7, 11)]);
    let text = pool(&format!("{QUIET}timeout = \"50s\"\n{TWO}"));
    assert!(at(&text, "TNG016").is_empty());
}
