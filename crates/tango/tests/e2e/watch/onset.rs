//! A backend slow from its very first request (b2 at 300 ms, the others at once): the
//! latency alert dates it from when its traffic began, not from when the detector had
//! enough ticks to tell, and the post-mortem does not take that slow traffic as the
//! pool's normal.

use super::harness::*;
use crate::backend::Backend;
use crate::support::*;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_slow_from_its_first_request_is_dated_from_when_its_traffic_began() {
    let bs = [
        Backend::start("b1").await,
        Backend::start("b2").await,
        Backend::start("b3").await,
    ];
    bs[1].state.delay_ms.store(300, Relaxed);
    let state = tempfile::tempdir().unwrap();
    let t = Tango::start(&cfg(&bs, &[1, 1, 1], "", Some(state.path()), NO_GUARD));
    let began = unix_ms();
    let load = Load::start(t.url("/"), 150, None);
    let i = wait_incident(
        &t,
        Duration::from_secs(15),
        "a latency incident on b2",
        open_on("b2", "latency"),
    )
    .await;
    let (onset, fired) = (
        i["onset_ms"].as_u64().unwrap(),
        i["signals"][0]["evidence"]["at_ms"].as_u64().unwrap(),
    );
    // The tick b2's first answers came in began at most a tick before the traffic did;
    // the alert itself needed a window of several ticks.
    assert!(
        onset + 1500 >= began && onset <= began + 1000,
        "onset {onset}, traffic from {began}, fired at {fired}: {i:#}"
    );
    // A traffic summary covering part of the incident, for its impact.
    let mut summary = false;
    while !summary {
        let j = admin_get(&t, "/api/v1/journal").await;
        summary = j["events"].as_array().unwrap().iter().any(|e| {
            e["type"] == "traffic" && e["summary"]["to_ms"].as_u64().is_some_and(|to| to > onset)
        });
        if !summary {
            assert!(unix_ms() < began + 20_000, "no traffic summary journaled");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    load.stop().await;
    let admin = format!("http://{}", t.admin);
    let md = tango(&[
        "postmortem",
        "--admin",
        &admin,
        "--config",
        t.config.to_str().unwrap(),
        "--from",
        &(onset - 60_000).to_string(),
        "--to",
        &unix_ms().to_string(),
        "--incident",
        i["id"].as_str().unwrap(),
    ]);
    // Nothing before the onset was normal traffic: b2 was slow from the start.
    assert!(
        md.lines()
            .any(|l| l.starts_with("  - answered slower than normal: unknown (")),
        "{md}"
    );
    assert!(!md.contains("normal p99 ("), "{md}");
}
