//! A newer reload replaces the canary of the one before it, even a reload that arms
//! none of its own; and one on top of a forced typo does not make the watch expect it.

use super::harness::*;
use crate::support::*;
use std::time::Duration;

/// The typo forced as generation 2, then at once a reload that changes no pool
/// (generation 3): generation 2's canary is gone with it. The alert the typo causes
/// still names generation 2, and nothing is rolled back, nor said to have failed to be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_no_pool_replaces_the_canary_before_it() {
    let bs = four_backends().await;
    let t = Tango::start(&cfg(&bs, "", 1, ""));
    let load = Load::start(t.url("/"), 400, None);
    load.answered(800).await;
    let typo = cfg(&bs, "", 10, "");
    t.write_config(&typo);
    let (s, v) = admin_post(&t, "/api/v1/reload?force=true").await;
    assert_eq!((s, &v["canary"]["generation"]), (200, &2.into()), "{v:#}");
    // Only the listener changes.
    let listener = "name = \"main\"\n";
    t.write_config(&typo.replacen(listener, &format!("{listener}header_timeout = \"9s\"\n"), 1));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (200, &3.into()), "{v:#}");
    assert!(v.get("canary").is_none_or(|c| c.is_null()), "{v:#}");

    wait_journal(&t, Duration::from_secs(10), "the typo's alert", |e| {
        e["type"] == "alert_fired"
    })
    .await;
    // Time for a rollback the old canary would have tried.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = journal(&t).await;
    assert!(
        !events.iter().any(|e| e["type"] == "config_rolled_back"),
        "{events:#?}"
    );
    let alerts = admin_get(&t, "/api/v1/alerts").await.to_string();
    assert!(!alerts.contains("rolling back"), "{alerts}");
    assert!(
        alerts.contains("likely cause: config generation 2"),
        "{alerts}"
    );
    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 3);
    let (answered, failed) = load.stop().await;
    assert_eq!(failed, 0, "clients saw errors ({failed} of {answered})");
}

/// The typo forced as generation 2, then at once a reload that changes the same pool's
/// try_timeout and leaves the typo as it is (generation 3: judged against the typo, it
/// moves nothing and passes the gate). The watch must still see the typo as the shift
/// it is, not take generation 3's prediction of it as the intended split.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_on_top_of_a_forced_typo_does_not_make_the_watch_expect_it() {
    let bs = four_backends().await;
    let t = Tango::start(&cfg(&bs, "", 1, ""));
    let load = Load::start(t.url("/"), 400, None);
    load.answered(800).await;
    t.write_config(&cfg(&bs, "", 10, ""));
    let (s, v) = admin_post(&t, "/api/v1/reload?force=true").await;
    assert_eq!((s, &v["generation"]), (200, &2.into()), "{v:#}");
    t.write_config(&cfg(&bs, "try_timeout = \"4s\"", 10, ""));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (200, &3.into()), "{v:#}");

    let events = wait_journal(&t, Duration::from_secs(15), "the typo's alert", |e| {
        e["type"] == "alert_fired" && e["evidence"]["backend"] == "b2"
    })
    .await;
    let (answered, failed) = load.stop().await;
    assert_eq!(failed, 0, "clients saw errors ({failed} of {answered})");
    let fired = events
        .iter()
        .find(|e| e["type"] == "alert_fired" && e["evidence"]["backend"] == "b2")
        .unwrap();
    assert_eq!(fired["evidence"]["kind"], "over_share", "{fired:#}");
    let said = fired["evidence"]["detail"].as_str().unwrap_or_default();
    assert!(
        said.contains("likely cause: config generation 2"),
        "{fired:#}"
    );
}
