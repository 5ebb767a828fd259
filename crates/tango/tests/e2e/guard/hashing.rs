//! A reload that makes a round-robin pool hash is predicted on the requests the pool
//! served, as a change of hash key is: hashing on a header every live request shares
//! sends them all to one backend, and the guard refuses it before it ships.

use super::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_to_hashing_on_a_key_every_live_request_shares_is_refused() {
    let bs = four_backends().await;
    let t = Tango::start(&cfg(&bs, "", 1, ""));
    // Many users, one tenant, balanced round robin.
    let load = Load::start(t.url("/"), 400, Some(|i| format!("user-{}", i % 5000)));
    // A pool that does not hash keeps 1 request in 64: a few dozen here.
    load.answered(3000).await;
    let (_, failed) = load.stop().await;
    assert_eq!(failed, 0);

    let ring = "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-tenant\" }\non_missing_key = \"random\"\nmax_load_factor = 1.25";
    t.write_config(&cfg(&bs, ring, 1, ""));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (409, &1.into()), "{v:#}");
    let r = v["refusals"].as_array().unwrap();
    assert_eq!(r.len(), 1, "only the shift gate refuses: {v:#}");
    assert_eq!(
        (&r[0]["gate"], &r[0]["pool"]),
        (&"shift".into(), &"p".into())
    );
    // Round robin over the sampled requests, then one key: its backend takes all but
    // what bounded load turns away.
    let (from, to) = (
        r[0]["from_pct"].as_f64().unwrap(),
        r[0]["to_pct"].as_f64().unwrap(),
    );
    assert!((from - 25.0).abs() < 2.0 && to > 50.0, "{v:#}");
    let keys = r[0]["keys"].as_str().unwrap();
    assert!(
        keys.ends_with(" requests sampled from live traffic"),
        "the prediction read the pool's own requests: {v:#}"
    );

    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);
    let even = counts(&[("b1", 100), ("b2", 100), ("b3", 100), ("b4", 100)]);
    assert_eq!(split(&t, 400, false).await, even);
}
