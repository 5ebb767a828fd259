//! What the reload guard costs a reload: the time `guard::judge` takes (the whole
//! checklist on both files, and the predicted split of the changed pool under both
//! versions) for one pool of 100 backends, with a 10,000-request live sample for the
//! hash policies. Also the cost of building one sampled request, which the proxy pays
//! for 1 request in 16 of a hash pool.
//!
//! `cargo run --release -p tango-core --example guard_cost`

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tango_core::config::{parse, Loaded};
use tango_core::guard::{judge, Input, Overrides, PoolObservation};
use tango_core::policy::RequestView;
use tango_core::simulate::SampledRequest;

const BACKENDS: usize = 100;
const SAMPLE: usize = 10_000;
const RUNS: usize = 15;

fn file(policy: &str, w7: u32) -> Loaded {
    let mut s = format!(
        "[[listener]]\nlisten = \"127.0.0.1:8080\"\n[[route]]\npool = \"big\"\n[[pool]]\nname = \"big\"\npolicy = \"{policy}\"\n"
    );
    if policy == "ring_hash" || policy == "maglev" {
        s.push_str(
            "hash_key = { source = \"header\", name = \"x-user\" }\non_missing_key = \"random\"\nmax_load_factor = 1.25\n",
        );
    }
    s.push_str("[pool.health]\npath = \"/healthz\"\n");
    for i in 0..BACKENDS {
        let w = if i == 7 { w7 } else { 1 };
        s.push_str(&format!(
            "[[pool.backend]]\nname = \"b{i}\"\naddress = \"10.0.{}.{}:80\"\nweight = {w}\nmax_in_flight = 100\n",
            i / 250,
            i % 250 + 1
        ));
    }
    parse("bench.toml", &s, Path::new(".")).unwrap_or_else(|e| panic!("{}", e.render()))
}

/// Requests as a browser sends them: a dozen headers, the key among them.
fn sample() -> Arc<[SampledRequest]> {
    (0..SAMPLE)
        .map(|i| request(&format!("user-{}", i % 7000)))
        .collect()
}

fn request(user: &str) -> SampledRequest {
    let headers: [(&str, &[u8]); 12] = [
        ("host", b"shop.example.com"),
        (
            "user-agent",
            b"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        (
            "accept",
            b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", b"en-GB,en;q=0.5"),
        ("accept-encoding", b"gzip, deflate, br"),
        ("x-user", user.as_bytes()),
        (
            "cookie",
            b"session=0d9f8a7b6c5d4e3f2a1b; theme=dark; consent=yes",
        ),
        ("x-forwarded-for", b"203.0.113.7"),
        ("x-request-id", b"4f1c2d3e-5a6b-7c8d-9e0f-1a2b3c4d5e6f"),
        ("referer", b"https://shop.example.com/basket"),
        ("sec-fetch-mode", b"navigate"),
        ("connection", b"keep-alive"),
    ];
    SampledRequest::new(
        "203.0.113.7"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        "/items/42",
        Some("page=2"),
        headers.into_iter(),
    )
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    println!("| policy | keys | median | slowest of {RUNS} |");
    println!("|---|---|---|---|");
    for policy in ["round_robin", "least_request", "ring_hash", "maglev"] {
        let live = file(policy, 1);
        let new = file(policy, 2);
        let hash = policy == "ring_hash" || policy == "maglev";
        let mut observed = HashMap::new();
        observed.insert(
            "big".to_string(),
            PoolObservation {
                rate_rps: 2000.0,
                latency: Some(Duration::from_millis(5)),
                sample: hash.then(sample),
            },
        );
        let overrides = Overrides::default();
        let mut times = Vec::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let j = judge(Input {
                live: &live,
                new: &new,
                settings: &live.config.guard,
                overrides: &overrides,
                observed: &observed,
            });
            times.push(t.elapsed());
            assert_eq!(j.pools.len(), 1, "the changed pool is predicted");
        }
        let keys = if hash { "10,000 sampled requests" } else { "-" };
        let slowest = times.iter().max().copied().unwrap_or_default();
        println!(
            "| {policy} | {keys} | {:.1} ms | {:.1} ms |",
            median(times).as_secs_f64() * 1e3,
            slowest.as_secs_f64() * 1e3
        );
    }
    let n = 100_000;
    let t = Instant::now();
    let mut keep = 0usize;
    for i in 0..n {
        keep += std::hint::black_box(request(if i % 2 == 0 { "alice" } else { "bob" }))
            .path()
            .len();
    }
    let per = t.elapsed() / n;
    println!(
        "\nbuilding one sampled request (12 headers): {} ns; 1 request in 16 is sampled, so {:.0} ns per request on average ({keep})",
        per.as_nanos(),
        per.as_nanos() as f64 / 16.0
    );
}
