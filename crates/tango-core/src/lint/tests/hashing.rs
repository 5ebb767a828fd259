use super::*;

/// A hashing pool: `key` is the inline hash_key table, on line 6.
fn hashed(policy: &str, key: &str, extra: &str) -> String {
    pool(&format!(
        "{QUIET}policy = \"{policy}\"\nhash_key = {key}\n{extra}{TWO}"
    ))
}

const BOUNDED: &str = "max_load_factor = 1.25\non_missing_key = \"random\"\n";

#[test]
fn missing_key_without_fallback() {
    let text = hashed(
        "maglev",
        "{ source = \"header\", name = \"x-user\" }",
        "max_load_factor = 1.25\n",
    );
    assert_eq!(at(&text, "TNG007"), vec![(8, 12)]);
    // What the selector does with keyless requests when on_missing_key is unset (see
    // policy::tests::missing_key_follows_on_missing_key): spread at random, not piled up.
    assert_eq!(
        one(&text, "TNG007").message,
        "requests without header x-user lose their affinity: pool `web` sends each to a random backend (on_missing_key is unset and defaults to random)"
    );
    assert!(at(
        &hashed(
            "maglev",
            "{ source = \"header\", name = \"x-user\" }",
            BOUNDED
        ),
        "TNG007"
    )
    .is_empty());
    // The path is always there.
    assert!(at(
        &hashed(
            "maglev",
            "{ source = \"path\" }",
            "max_load_factor = 1.25\n"
        ),
        "TNG007"
    )
    .is_empty());
}

#[test]
fn client_address_hashing_without_trusted_proxies_is_info() {
    let text = hashed("maglev", "{ source = \"client_address\" }", BOUNDED);
    assert_eq!(at(&text, "TNG008"), vec![(8, 12)]);
    assert_eq!(one(&text, "TNG008").severity, Severity::Info);
    let trusted = text.replacen(
        "listen = \"127.0.0.1:8080\"\n",
        "listen = \"127.0.0.1:8080\"\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
        1,
    );
    assert!(at(&trusted, "TNG008").is_empty());
}

#[test]
fn low_cardinality_header_points_at_the_name() {
    let text = hashed(
        "maglev",
        "{ source = \"header\", name = \"User-Agent\" }",
        BOUNDED,
    );
    assert_eq!(at(&text, "TNG009"), vec![(8, 40)]);
    assert!(at(
        &hashed(
            "maglev",
            "{ source = \"header\", name = \"x-session\" }",
            BOUNDED
        ),
        "TNG009"
    )
    .is_empty());
}

#[test]
fn too_few_ring_points_gives_the_number_needed() {
    let text = super::split::many(160);
    let d = one(&text, "TNG010");
    assert!(
        d.message.contains("with ring_points = 160"),
        "{}",
        d.message
    );
    let needed: u32 = d
        .hint
        .as_deref()
        .unwrap()
        .trim_start_matches("set ring_points = ")
        .trim_end_matches(" or more")
        .parse()
        .unwrap();
    assert!(needed > 160 && needed < 2000, "{needed}");
    assert_eq!(at(&text, "TNG010"), vec![(8, 15)]);
    assert!(at(&super::split::many(needed), "TNG010").is_empty());
    // Maglev has no ring.
    let text = hashed(
        "maglev",
        "{ source = \"path\" }",
        "max_load_factor = 1.25\n",
    );
    assert!(at(&text, "TNG010").is_empty());
}

#[test]
fn hashing_without_a_load_bound() {
    let text = hashed("maglev", "{ source = \"path\" }", "");
    assert_eq!(at(&text, "TNG011"), vec![(7, 10)]);
    assert!(at(
        &hashed("maglev", "{ source = \"path\" }", "max_load_factor = 2.0\n"),
        "TNG011"
    )
    .is_empty());
}
