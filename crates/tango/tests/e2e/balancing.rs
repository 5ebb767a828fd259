//! Traffic follows the weights.

use crate::backend::Backend;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_round_robin_follows_weights_within_two_points() {
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
        Backend::start("d").await,
    ];
    let weights = [1u32, 2, 3, 4];
    let spec: Vec<(&str, _, u32)> = bs
        .iter()
        .zip(weights)
        .map(|(b, w)| (b.name.as_str(), b.addr, w))
        .collect();
    let t = Tango::start(&config("policy = \"round_robin\"", &spec));
    let c = client();
    let total = 10_000u64;
    // 8 concurrent loops, 1,250 requests each: bounded in count.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        let url = t.url("/");
        tasks.push(tokio::spawn(async move {
            for _ in 0..total / 8 {
                let (s, _) = get(&c, &url).await;
                assert_eq!(s, 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let wsum: u32 = weights.iter().sum();
    for (b, w) in bs.iter().zip(weights) {
        let share = b.hits() as f64 / total as f64;
        let want = f64::from(w) / f64::from(wsum);
        assert!(
            (share - want).abs() <= 0.02,
            "{}: share {share:.4}, want {want:.4}",
            b.name
        );
    }
    // The status API agrees with what the backends saw.
    let status = admin_get(&t, "/api/v1/status").await;
    let seen: u64 = status["pools"][0]["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(seen, total);
}
