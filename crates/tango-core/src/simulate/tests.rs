use super::*;
use crate::config::{parse, Config};
use std::path::Path;

/// One pool `p` with `extra` pool settings and backends `b0..` of the given weights.
pub(crate) fn config(extra: &str, weights: &[u32]) -> Config {
    let mut s =
        String::from("[[listener]]\nlisten = \"127.0.0.1:8080\"\n\n[[pool]]\nname = \"p\"\n");
    s.push_str(extra);
    s.push('\n');
    for (i, w) in weights.iter().enumerate() {
        s.push_str(&format!(
            "[[pool.backend]]\nname = \"b{i}\"\naddress = \"10.0.0.{}:80\"\nweight = {w}\n",
            i + 1
        ));
    }
    match parse("t.toml", &s, Path::new(".")) {
        Ok(l) => l.config,
        Err(e) => panic!("{}", e.render()),
    }
}

fn run(extra: &str, weights: &[u32], opts: &SimOptions) -> SimReport {
    let c = config(extra, weights);
    simulate(&c.pools[0], opts, &mut |_, _| {}).expect("simulates")
}

fn shares(r: &SimReport) -> Vec<f64> {
    r.backends.iter().map(|b| b.simulated_pct).collect()
}

fn opts(requests: u64) -> SimOptions {
    SimOptions {
        requests,
        ..SimOptions::default()
    }
}

const RING: &str = "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-user\" }";

#[test]
fn round_robin_gives_exact_shares() {
    let r = run("policy = \"round_robin\"", &[1, 2, 3, 4], &opts(10_000));
    let counts: Vec<u64> = r.backends.iter().map(|b| b.requests).collect();
    assert_eq!(counts, [1_000, 2_000, 3_000, 4_000]);
    assert_eq!(r.verdict, Verdict::Ok);
    assert_eq!(r.max_deviation_points, 0.0);
    assert!((r.max_over_mean - 1.6).abs() < 1e-9, "{}", r.max_over_mean);
}

#[test]
fn weighted_random_follows_weights_within_tolerance() {
    let r = run("policy = \"random\"", &[1, 3], &opts(40_000));
    let s = shares(&r);
    assert!((s[0] - 25.0).abs() < 1.0, "{s:?}");
    assert!((s[1] - 75.0).abs() < 1.0, "{s:?}");
    assert_eq!(r.verdict, Verdict::Ok);
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let a = run("policy = \"random\"", &[1, 1, 1], &opts(5_000));
    let b = run("policy = \"random\"", &[1, 1, 1], &opts(5_000));
    assert_eq!(a, b);
    let mut other = opts(5_000);
    other.seed = 2;
    assert_ne!(a, run("policy = \"random\"", &[1, 1, 1], &other));
}

#[test]
fn a_down_backend_gets_nothing_and_the_rest_share_its_traffic() {
    let mut o = opts(9_000);
    o.scenario.down = vec!["b1".into()];
    let r = run("policy = \"round_robin\"", &[1, 1, 1, 1], &o);
    assert_eq!(r.backends[1].requests, 0);
    assert!(r.backends[1].down);
    assert_eq!(r.backends[1].intended_pct, 0.0);
    for i in [0, 2, 3] {
        assert_eq!(r.backends[i].requests, 3_000);
        assert!((r.backends[i].intended_pct - 100.0 / 3.0).abs() < 1e-9);
    }
    assert_eq!(r.verdict, Verdict::Ok);
}

#[test]
fn down_below_the_panic_threshold_balances_over_every_backend() {
    let mut o = opts(4_000);
    o.scenario.down = vec!["b0".into(), "b1".into(), "b2".into()];
    let r = run(
        "policy = \"round_robin\"\npanic_threshold = 0.5",
        &[1, 1, 1, 1],
        &o,
    );
    assert!(r.panic);
    assert!(r.backends.iter().all(|b| b.requests == 1_000));
}

#[test]
fn unknown_backends_in_a_scenario_are_errors() {
    let c = config("", &[1, 1]);
    let mut o = opts(10);
    o.scenario.latency = vec![("nope".into(), Duration::from_millis(5))];
    let e = simulate(&c.pools[0], &o, &mut |_, _| {}).unwrap_err();
    assert_eq!(e.to_string(), "pool `p` has no backend named `nope`");
}

#[test]
fn added_backends_take_the_median_weight_and_their_share() {
    let mut o = opts(12_000);
    o.scenario.add = 2;
    let r = run("policy = \"round_robin\"", &[1, 2, 2, 9], &o);
    let added: Vec<&BackendShare> = r.backends.iter().filter(|b| b.added).collect();
    assert_eq!(added.len(), 2);
    assert_eq!(added[0].name, "new-1");
    assert_eq!(added[0].address, "198.51.100.1:80");
    assert_eq!(added[1].weight, 2);
    assert_eq!(added[1].requests, 12_000 * 2 / 18);
}

#[test]
fn ring_hash_simulated_shares_match_ownership_over_uniform_keys() {
    let mut o = opts(200_000);
    o.keys = KeySource::Uniform { distinct: 100_000 };
    let r = run(RING, &[1, 1, 2, 1, 3], &o);
    for b in &r.backends {
        let own = b.ownership_pct.expect("hash pools report ownership");
        assert!(
            (b.simulated_pct - own).abs() < 2.0,
            "{}: simulated {:.2} owned {own:.2}",
            b.name,
            b.simulated_pct
        );
    }
    assert_eq!(r.verdict, Verdict::Ok);
}

#[test]
fn a_down_ring_backend_s_keys_go_where_its_rebuilt_ownership_says() {
    let mut o = opts(100_000);
    o.scenario.down = vec!["b2".into()];
    let r = run(RING, &[1, 1, 1, 1], &o);
    assert_eq!(r.backends[2].requests, 0);
    for b in &r.backends {
        let own = b.ownership_pct.unwrap();
        assert!((b.simulated_pct - own).abs() < 1.0, "{b:?}");
    }
}

#[test]
fn zipf_keys_make_a_hot_key_visible() {
    let mut o = opts(50_000);
    o.keys = KeySource::Zipf {
        s: 1.2,
        distinct: 1_000,
    };
    let r = run(RING, &[1, 1, 1, 1], &o);
    assert_eq!(r.verdict, Verdict::Deviates, "{r:?}");
    assert!(r.max_deviation_points > 10.0, "{}", r.max_deviation_points);
    // The same pool with uniform keys is fine.
    o.keys = KeySource::Uniform { distinct: 1_000 };
    assert!(run(RING, &[1, 1, 1, 1], &o).max_deviation_points < 5.0);
}

#[test]
fn a_key_list_sends_each_key_where_the_proxy_would() {
    // The same key always lands on the same backend: three lines of one key, one backend.
    let mut o = opts(3);
    o.keys = KeySource::List(parse_key_list("user-7\nuser-7\r\nuser-7\n"));
    let r = run(RING, &[1, 1, 1], &o);
    assert_eq!(r.backends.iter().filter(|b| b.requests == 3).count(), 1);
}

#[test]
fn requests_without_a_key_follow_on_missing_key() {
    let mut o = opts(100);
    o.keys = KeySource::List(vec![String::new()]);
    let reject = format!("{RING}\non_missing_key = \"reject\"");
    let r = run(&reject, &[1, 1], &o);
    assert_eq!(r.rejected, 100);
    let rr = format!("{RING}\non_missing_key = \"round_robin\"");
    let r = run(&rr, &[1, 1], &o);
    assert_eq!(r.rejected, 0);
    assert_eq!(r.backends[0].requests, 50);
}

#[test]
fn least_request_sends_less_to_a_slow_backend() {
    let mut o = opts(50_000);
    o.scenario.latency = vec![("b0".into(), Duration::from_millis(50))];
    let r = run("policy = \"least_request\"", &[1, 1, 1, 1], &o);
    assert!(r.backends[0].simulated_pct < 20.0, "{r:?}");
    let even = run("policy = \"least_request\"", &[1, 1, 1, 1], &opts(50_000));
    assert!(even.max_deviation_points < 2.0, "{even:?}");
}

#[test]
fn peak_ewma_avoids_a_slow_backend() {
    let mut o = opts(50_000);
    o.scenario.latency = vec![("b3".into(), Duration::from_millis(100))];
    let r = run("policy = \"peak_ewma\"", &[1, 1, 1, 1], &o);
    assert!(r.backends[3].simulated_pct < 15.0, "{r:?}");
}

#[test]
fn progress_is_reported_up_to_the_total() {
    let c = config("", &[1, 1]);
    let mut last = (0, 0);
    let mut calls = 0;
    simulate(&c.pools[0], &opts(200_000), &mut |d, t| {
        last = (d, t);
        calls += 1;
    })
    .unwrap();
    assert_eq!(last, (200_000, 200_000));
    assert!(calls >= 3);
}

#[test]
fn access_log_lines_in_common_and_combined_format() {
    let log = concat!(
        "203.0.113.9 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif?user=u1&x=2 HTTP/1.0\" 200 2326\n",
        "\n",
        "2001:db8::7 - - [10/Oct/2000:13:55:37 -0700] \"POST http://example.com/api/v1?x=1 HTTP/1.1\" 201 12 \"http://ref/\" \"curl/8.0\"\n",
        "198.51.100.4 - - [10/Oct/2000:13:55:38 -0700] \"-\" 408 0\n",
        "198.51.100.5 - - [10/Oct/2000:13:55:38 -0700] \"GET /a\\\"b HTTP/1.1\" 200 1\n",
    );
    let recs = parse_access_log(log).unwrap();
    assert_eq!(recs.len(), 4);
    assert_eq!(recs[0].client, "203.0.113.9");
    assert_eq!(
        recs[0].target.as_deref(),
        Some("/apache_pb.gif?user=u1&x=2")
    );
    assert_eq!(recs[1].line, 3);
    assert_eq!(recs[1].client, "2001:db8::7");
    assert_eq!(recs[1].target.as_deref(), Some("/api/v1?x=1"));
    assert_eq!(recs[2].target, None);
    assert_eq!(recs[3].target.as_deref(), Some("/a\\\"b"));

    let e = parse_access_log("203.0.113.9 - - 10/Oct/2000 \"GET / HTTP/1.1\" 200 1").unwrap_err();
    assert!(matches!(e, KeyError::BadLogLine { line: 1, .. }), "{e}");
}

#[test]
fn access_log_keys_are_hashed_like_the_proxy_hashes_them() {
    use crate::config::HashKey;
    use crate::policy::{hash_bytes, hash_ip};
    let recs = parse_access_log(concat!(
        "203.0.113.9 - - [d] \"GET /p/q?user=u1 HTTP/1.1\" 200 1\n",
        "203.0.113.9 - - [d] \"GET /p HTTP/1.1\" 200 1\n",
    ))
    .unwrap();
    let hashes = |key: &HashKey| keys::hash_log(&recs, key, "p").unwrap();
    let ip = hash_ip("203.0.113.9".parse().unwrap());
    assert_eq!(hashes(&HashKey::ClientAddress), [Some(ip), Some(ip)]);
    assert_eq!(
        hashes(&HashKey::Path),
        [Some(hash_bytes(b"/p/q")), Some(hash_bytes(b"/p"))]
    );
    assert_eq!(
        hashes(&HashKey::Query("user".into())),
        [Some(hash_bytes(b"u1")), None]
    );
    let e = keys::hash_log(&recs, &HashKey::Header("x-user".into()), "p").unwrap_err();
    assert!(e.to_string().contains("--keys"), "{e}");
}

#[test]
fn client_address_key_lists_must_hold_addresses() {
    let mut o = opts(10);
    o.keys = KeySource::List(vec!["10.1.2.3".into(), "not-an-ip".into()]);
    let c = config(
        "policy = \"maglev\"\nhash_key = { source = \"client_address\" }",
        &[1, 1],
    );
    let e = simulate(&c.pools[0], &o, &mut |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
}

/// `cargo test --release -p tango-core -- --ignored ten_million` (the budget is for
/// release builds: well under 10 s on two cores).
#[test]
#[ignore]
fn ten_million_requests_are_fast() {
    let started = std::time::Instant::now();
    let r = run(
        "policy = \"peak_ewma\"",
        &[1, 2, 3, 4, 5, 6, 7, 8],
        &opts(10_000_000),
    );
    let took = started.elapsed();
    assert_eq!(
        r.backends.iter().map(|b| b.requests).sum::<u64>(),
        10_000_000
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn clients_stay_within_the_pools_in_flight_caps() {
    // 3 backends capped at 8 in flight each: the default 32 clients would mostly be
    // refused; the model runs 24 and none is.
    let c = config("policy = \"least_request\"", &[1, 1, 1]);
    let mut pool = c.pools[0].clone();
    for b in &mut pool.backends {
        b.max_in_flight = Some(8);
    }
    let r = simulate(&pool, &opts(30_000), &mut |_, _| {}).expect("simulates");
    assert_eq!(r.unserved, 0, "{r:?}");
    assert_eq!(r.verdict, Verdict::Ok, "{r:?}");
}

#[test]
fn synthetic_keys_cannot_judge_a_low_cardinality_hash_key() {
    let extra = "policy = \"maglev\"\nhash_key = { source = \"header\", name = \"Host\" }";
    let r = run(extra, &[1, 1, 1], &opts_with(KeySource::Random));
    assert_eq!(r.verdict, Verdict::CannotJudge, "{r:?}");
    assert_eq!(
        r.caveat.as_deref(),
        Some(
            "synthetic keys cannot judge this hash key: header `host` has few distinct values \
             (TNG009), so real traffic maps to a few backends whatever the split below; \
             simulate real keys with --keys FILE or --access-log FILE"
        )
    );
    // Real keys can judge it; and a key with many values is judged by synthetic keys.
    let real = KeySource::List(vec!["a.example".into(), "b.example".into()]);
    assert_eq!(run(extra, &[1, 1, 1], &opts_with(real)).caveat, None);
    let user = "policy = \"maglev\"\nhash_key = { source = \"header\", name = \"x-user\" }";
    let r = run(user, &[1, 1, 1], &opts_with(KeySource::Random));
    assert_eq!((r.verdict, r.caveat), (Verdict::Ok, None));
}

fn opts_with(keys: KeySource) -> SimOptions {
    SimOptions {
        requests: 3_000,
        keys,
        ..SimOptions::default()
    }
}
