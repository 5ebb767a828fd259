//! A backend added far above the share of the backends it joins is the weight typo on a
//! new backend: refused like one on a kept backend, and the split stays as it was.

use super::harness::*;
use crate::backend::Backend;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_added_at_four_times_its_peers_weight_is_refused() {
    let bs = four_backends().await;
    let b5 = Backend::start("b5").await;
    let t = Tango::start(&cfg(&bs, "", 1, ""));
    let load = Load::start(t.url("/"), 200, None);
    load.answered(400).await;
    let (_, failed) = load.stop().await;
    assert_eq!(failed, 0);

    let add = format!(
        "[[pool.backend]]\nname = \"b5\"\naddress = \"{}\"\nweight = 4\n",
        b5.addr
    );
    t.write_config(&cfg(&bs, "", 1, &add));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (409, &1.into()), "{v:#}");
    let r = v["refusals"].as_array().unwrap();
    assert_eq!(r.len(), 1, "only the shift gate refuses: {v:#}");
    assert_eq!(
        (
            &r[0]["gate"],
            &r[0]["backend"],
            &r[0]["joins"],
            &r[0]["to_pct"]
        ),
        (&"shift".into(), &"b5".into(), &true.into(), &50.0.into())
    );
    let sentence = r[0]["sentence"].as_str().unwrap();
    assert!(
        sentence.starts_with(
            "b5 would join pool p taking 50% of it, where the backends it joins take 12"
        ),
        "{sentence}"
    );
    assert!(
        strings(&v["next_steps"])[0].contains("`tango reload --allow-shift p`"),
        "{v:#}"
    );

    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);
    let even = counts(&[("b1", 100), ("b2", 100), ("b3", 100), ("b4", 100)]);
    assert_eq!(split(&t, 400, false).await, even);
}
