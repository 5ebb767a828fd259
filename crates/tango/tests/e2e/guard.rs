//! The reload guard, live: the weight typo is refused by SIGHUP, the API and `tango
//! reload`; allowed, it applies and the watch expects it; forced, its canary rolls it
//! back within seconds; and a hash key change that would collapse the live keys onto
//! one backend is refused from the sampled requests, while a reload a dozen sampled
//! requests cannot judge expects the key-space split; a change to hashing is predicted
//! on the pool's own requests (`hashing`), and a backend added far above its peers'
//! share is refused (`membership`); and `tango diff` on the same two files gives the
//! reload's verdict (`diff_agrees`). Each test ends with the live split.

mod diff_agrees;
mod failed_rollback;
mod harness;
mod hashing;
mod low_traffic;
mod membership;
mod replaced;
mod routes;

use crate::backend::Backend;
use crate::support::*;
use harness::*;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_typo_is_refused_by_the_api_the_cli_and_sighup_and_the_split_stays_even() {
    let bs = four_backends().await;
    let t = Tango::start(&cfg(&bs, "", 1, ""));
    t.write_config(&cfg(&bs, "", 10, ""));
    let finding = format!(
        "new warning TNG001 at {}:18:10: b2 has weight 10, 10x the median of its peers (1): it will get 77% of the pool's traffic",
        t.config.display()
    );
    let shift = "b2 would take 77% of pool p instead of 25% (+51.9 points, limit 10)";

    the_api_refuses_it(&t, &finding, shift).await;
    tango_reload_refuses_it(&t, &finding, shift).await;
    sighup_refuses_it(&t, &finding, shift).await;

    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);
    assert_eq!(
        metric(&t, "tango_config_reloads_total{result=\"refused\"}").await,
        "tango_config_reloads_total{result=\"refused\"} 3"
    );
    let even = counts(&[("b1", 100), ("b2", 100), ("b3", 100), ("b4", 100)]);
    assert_eq!(split(&t, 400, false).await, even);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_weight_change_applies_raises_no_alert_and_survives_its_canary() {
    let bs = four_backends().await;
    let guard = "\n[guard]\ncanary = \"8s\"\n";
    let t = Tango::start(&cfg(&bs, "", 1, guard));
    let load = Load::start(t.url("/"), 300, None);
    load.answered(600).await;

    t.write_config(&cfg(&bs, "", 10, &format!("{ALLOW_TNG001}{guard}")));
    let out = tango_reload(&t, &["--allow-shift", "p"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().next(), Some("applied: generation 2"));
    assert_eq!(
        stdout.lines().nth(1),
        Some("  shift allowed (by the request): b2 moves +51.9 points in pool p")
    );

    let events = wait_journal(&t, Duration::from_secs(20), "the canary to pass", |e| {
        e["type"] == "canary_passed"
    })
    .await;
    let (answered, failed) = load.stop().await;
    // Only config events and share (skew) alerts and incidents count here: a latency
    // outlier on a machine shared with other builds is not the reload's doing, and
    // traffic summaries are data.
    let share = |k: &serde_json::Value| k == "over_share" || k == "under_share";
    let skew = |e: &serde_json::Value| match e["type"].as_str().unwrap() {
        "alert_fired" => share(&e["evidence"]["kind"]),
        t if t.starts_with("incident") => e["incident"]["signals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| share(&s["evidence"]["kind"])),
        _ => false,
    };
    let data = |e: &serde_json::Value| {
        let t = e["type"].as_str().unwrap();
        t.starts_with("alert") || t.starts_with("incident") || t == "traffic"
    };
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| skew(e) || !data(e))
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["config_applied", "config_applied", "canary_passed"],
        "{events:#?}"
    );
    let passed = events
        .iter()
        .find(|e| e["type"] == "canary_passed")
        .unwrap();
    assert_eq!(passed["generation"], 2);
    assert_eq!(passed["pools"], serde_json::json!(["p"]));
    assert_eq!(failed, 0, "of {answered}");
    assert_eq!(
        metric(&t, "tango_config_rollbacks_total").await,
        "tango_config_rollbacks_total 0"
    );
    let typo = counts(&[("b1", 40), ("b2", 400), ("b3", 40), ("b4", 40)]);
    assert_eq!(split(&t, 520, false).await, typo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_typo_is_rolled_back_by_its_canary_and_clients_see_no_errors() {
    let bs = four_backends().await;
    let state = tempfile::tempdir().unwrap();
    let dir = format!("[admin]\nstate_dir = \"{}\"\n", state.path().display());
    let original = cfg(&bs, "", 1, "").replacen("[admin]\n", &dir, 1);
    let t = Tango::start(&original);
    let load = Load::start(t.url("/"), 400, None);
    load.answered(800).await;

    let reloaded = force_the_typo(&t, &cfg(&bs, "", 10, "").replacen("[admin]\n", &dir, 1)).await;

    let events = wait_journal(&t, Duration::from_secs(10), "the rollback", |e| {
        e["type"] == "config_rolled_back"
    })
    .await;
    let took = reloaded.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    let (answered, failed) = load.stop().await;
    assert_eq!(failed, 0, "clients saw errors ({failed} of {answered})");

    the_rollback_follows_the_alert(&events);
    the_journal_file_agrees(&state.path().join("journal.jsonl"));
    the_alert_says_it_was_rolled_back(&t, &original).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_key_change_that_collapses_the_live_keys_is_refused() {
    let bs = four_backends().await;
    let ring = |key: &str| {
        format!("policy = \"ring_hash\"\nhash_key = {{ source = \"header\", name = \"{key}\" }}\non_missing_key = \"random\"")
    };
    let t = Tango::start(&cfg(&bs, &ring("x-user"), 1, ""));
    // Many users, one tenant: hashing on the tenant would send everyone to one backend.
    let load = Load::start(t.url("/"), 400, Some(|i| format!("user-{}", i % 5000)));
    load.answered(2000).await;
    let (_, failed) = load.stop().await;
    assert_eq!(failed, 0);

    t.write_config(&cfg(&bs, &ring("x-tenant"), 1, ""));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (409, &1.into()), "{v:#}");
    let r = v["refusals"].as_array().unwrap();
    assert_eq!(r.len(), 1, "only the shift gate refuses: {v:#}");
    assert_eq!(
        (&r[0]["gate"], &r[0]["pool"], &r[0]["to_pct"]),
        (&"shift".into(), &"p".into(), &100.0.into())
    );
    let from = r[0]["from_pct"].as_f64().unwrap();
    assert!(from < 50.0, "the live keys are spread: {from}");
    // The prediction read the requests tango sampled, not synthetic keys (which a
    // change of key does not move).
    let keys = v["predicted"][0]["keys"].as_str().unwrap();
    assert_eq!(r[0]["keys"], keys, "the refusal states its basis: {v:#}");
    assert!(
        r[0]["sentence"]
            .as_str()
            .unwrap()
            .contains("sampled requests, noise ±"),
        "{v:#}"
    );
    let n: usize = keys
        .strip_suffix(" requests sampled from live traffic")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{keys}"));
    assert!(n > 0 && n <= 2000, "{keys}");

    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);
    let live = split(&t, 400, true).await;
    assert_eq!(live.len(), 4, "{live:?}");
    assert!(live.values().all(|&c| (50..=150).contains(&c)), "{live:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_soon_after_startup_expects_the_key_space_split_and_survives_its_canary() {
    let bs = four_backends().await;
    let ring = |extra: &str| {
        format!("policy = \"ring_hash\"\nhash_key = {{ source = \"header\", name = \"x-user\" }}\non_missing_key = \"random\"\n{extra}")
    };
    let guard = "\n[guard]\ncanary = \"8s\"\n";
    let t = Tango::start(&cfg(&bs, &ring(""), 1, guard));
    // A dozen sampled requests: far too few to tell each backend's share.
    let load = Load::start(t.url("/"), 100, Some(|i| format!("user-{}", i % 5000)));
    load.answered(200).await;

    t.write_config(&cfg(&bs, &ring("try_timeout = \"3s\""), 1, guard));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["generation"]), (200, &2.into()), "{v:#}");
    let keys = v["predicted"][0]["keys"].as_str().unwrap();
    let n: usize = keys
        .strip_prefix("key-space ownership (only ")
        .and_then(|k| k.strip_suffix(" live requests sampled, too few to predict from)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{keys}"));
    assert!(n > 0 && n < 400, "{keys}");
    // The watch expects the key space's even split, not the dozen requests' accidents,
    // so the even traffic that follows passes the canary.
    for b in v["predicted"][0]["backends"].as_array().unwrap() {
        let to = b["new_pct"].as_f64().unwrap();
        assert!((to - 25.0).abs() < 8.0, "{v:#}");
    }
    let events = wait_journal(&t, Duration::from_secs(20), "the canary to pass", |e| {
        e["type"] == "canary_passed" || e["type"] == "config_rolled_back"
    })
    .await;
    let (answered, failed) = load.stop().await;
    assert_eq!(failed, 0, "of {answered}");
    assert!(
        !events.iter().any(|e| e["type"] == "config_rolled_back"),
        "{events:#?}"
    );
    let applied = events
        .iter()
        .find(|e| e["type"] == "config_applied" && e["generation"] == 2)
        .unwrap();
    let predicted = applied["predicted"].as_array().unwrap();
    assert!(!predicted.is_empty() && predicted.iter().all(|p| p["basis"] == keys));
}

#[tokio::test]
async fn startup_logs_and_journals_its_findings_and_deny_warnings_refuses_to_start() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let text = config("", &[("a", a.addr, 1), ("b", b.addr, 1)]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tango.toml");
    std::fs::write(&path, &text).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["run", "--deny-warnings", "--config"])
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("tango refused to start rather than running")
        .unwrap();
    assert!(!status.success());
    let mut err = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut err)
        .await
        .unwrap();
    assert!(
        err.contains(&format!("--> {}:9:8", path.display())) && err.contains("warning[TNG005]"),
        "{err}"
    );
    assert_eq!(
        err.lines().last(),
        Some("refusing to start with --deny-warnings: 1 checklist finding(s); fix them or allow them with [[allow]] and a reason")
    );

    // Without the flag it starts, and says what the checklist found.
    let t = Tango::start(&text);
    let location = format!("{}:9:8", t.config.display());
    let events = journal(&t).await;
    let findings = events[0]["findings"].as_array().unwrap();
    let rules: Vec<(&str, &str, &str)> = findings
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap(),
                f["severity"].as_str().unwrap(),
                f["location"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            ("TNG005", "warning", location.as_str()),
            ("TNG014", "info", location.as_str())
        ]
    );
    let log = t.log();
    let line = log
        .lines()
        .find(|l| l.contains("checklist: warning TNG005"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains(&format!(
            "checklist: warning TNG005 at {location}: pool `p` has no health checks"
        )),
        "{line}"
    );
    assert_eq!(split(&t, 4, false).await, counts(&[("a", 2), ("b", 2)]));
}

/// The API answers 409 with the finding and the shift, each refusal's details and the
/// next steps.
async fn the_api_refuses_it(t: &Tango, finding: &str, shift: &str) {
    let (s, v) = admin_post(t, "/api/v1/reload").await;
    assert_eq!(
        (s, &v["result"], &v["generation"]),
        (409, &"refused".into(), &1.into()),
        "{v:#}"
    );
    assert_eq!(
        strings(&v["errors"]),
        vec![finding.to_string(), shift.to_string()]
    );
    let r = &v["refusals"];
    assert_eq!(
        (&r[0]["gate"], &r[0]["rule"], &r[0]["key"]),
        (
            &"findings".into(),
            &"TNG001".into(),
            &"pool[p].backend[1].weight".into()
        )
    );
    assert_eq!(
        (
            &r[1]["gate"],
            &r[1]["pool"],
            &r[1]["backend"],
            &r[1]["from_pct"]
        ),
        (&"shift".into(), &"p".into(), &"b2".into(), &25.0.into())
    );
    assert!(
        (r[1]["to_pct"].as_f64().unwrap() - 1000.0 / 13.0).abs() < 0.1,
        "{r:#}"
    );
    let steps = strings(&v["next_steps"]);
    assert_eq!(steps.len(), 2);
    assert!(
        steps[1].contains("`tango reload --allow-shift p`"),
        "{steps:?}"
    );
}

/// `tango reload` says the same and exits non-zero.
async fn tango_reload_refuses_it(t: &Tango, finding: &str, shift: &str) {
    let out = tango_reload(t, &[]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let refused: Vec<&str> = err.lines().filter(|l| l.starts_with("refused: ")).collect();
    assert_eq!(
        refused,
        vec![format!("refused: {finding}"), format!("refused: {shift}")]
    );
    assert_eq!(
        err.lines().last(),
        Some("error: reload refused by the guard; generation 1 keeps serving")
    );
}

/// SIGHUP has no override: refused and journaled with the reasons.
async fn sighup_refuses_it(t: &Tango, finding: &str, shift: &str) {
    t.signal("HUP");
    let events = wait_journal(t, Duration::from_secs(10), "the SIGHUP refusal", |e| {
        e["type"] == "config_rejected" && e["source"] == "sighup"
    })
    .await;
    let e = events.iter().find(|e| e["source"] == "sighup").unwrap();
    assert_eq!(
        strings(&e["errors"]),
        vec![finding.to_string(), shift.to_string()]
    );
    let new: Vec<&serde_json::Value> = e["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["new"] == true)
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0]["rule"], "TNG001");
    assert!(t
        .log()
        .contains("reload refused by the guard; generation 1 keeps serving"));
}

/// Ship the typo (`typo`, the whole file) with `?force=true`: applied as generation 2
/// with both overrides and an armed canary. Returns when it was applied.
async fn force_the_typo(t: &Tango, typo: &str) -> Instant {
    t.write_config(typo);
    let (s, v) = admin_post(t, "/api/v1/reload?force=true").await;
    let reloaded = Instant::now();
    assert_eq!((s, &v["generation"]), (200, &2.into()), "{v:#}");
    let overrides = strings(&v["overrides"]);
    assert_eq!(overrides.len(), 2, "{overrides:?}");
    assert!(overrides[0].starts_with("forced: new warning TNG001 at "));
    let (head, tail) = (
        "forced: b2 would take 77% of pool p instead of 25% (+51.9 points, limit 10; about ",
        " requests/s)",
    );
    assert!(
        overrides[1].starts_with(head) && overrides[1].ends_with(tail),
        "{overrides:?}"
    );
    assert_eq!(v["canary"]["generation"], 2);
    reloaded
}

/// The rollback comes after an alert of generation 2, which comes after the reload, and
/// names a share alert in pool p caused by the weight change.
fn the_rollback_follows_the_alert(events: &[serde_json::Value]) {
    let pos = |f: &dyn Fn(&serde_json::Value) -> bool| {
        events
            .iter()
            .position(f)
            .unwrap_or_else(|| panic!("{events:#?}"))
    };
    let back = pos(&|e| e["type"] == "config_rolled_back");
    let rb = &events[back];
    let why = &rb["evidence"][0];
    let applied = pos(&|e| e["type"] == "config_applied" && e["generation"] == 2);
    let fired = pos(&|e| {
        e["type"] == "alert_fired"
            && e["generation"] == 2
            && e["evidence"]["backend"] == why["backend"]
            && e["evidence"]["kind"] == why["kind"]
    });
    assert!(applied < fired && fired < back, "{events:#?}");
    assert!(
        why["kind"] == "over_share" || why["kind"] == "under_share",
        "{why:#}"
    );
    assert_eq!(
        (
            &rb["generation"],
            &rb["from_generation"],
            &rb["to_generation"]
        ),
        (&3.into(), &2.into(), &1.into())
    );
    assert_eq!(rb["evidence"][0]["pool"], "p");
    assert_eq!(rb["evidence"][0]["cause"], "config");
    assert_eq!(rb["changes"][0]["change"], "weight");
}

/// The journal file says the same, in the same order.
fn the_journal_file_agrees(path: &std::path::Path) {
    let file = std::fs::read_to_string(path).unwrap();
    let lines: Vec<serde_json::Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at = |kind: &str, g: u64| {
        lines
            .iter()
            .position(|e| e["type"] == kind && e["generation"] == g)
            .unwrap_or_else(|| panic!("no {kind} at generation {g} in {file}"))
    };
    let first_alert = at("alert_fired", 2);
    assert!(
        at("config_applied", 2) < first_alert && first_alert < at("config_rolled_back", 3),
        "{file}"
    );
}

/// The alert says what happened; generation 3 is the original configuration, and the
/// split is even again.
async fn the_alert_says_it_was_rolled_back(t: &Tango, original: &str) {
    let alerts = admin_get(t, "/api/v1/alerts").await;
    let told: Vec<&str> = alerts["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["cause"]["sentence"].as_str())
        .filter(|s| s.ends_with("; rolled back to generation 1 (now generation 3)"))
        .collect();
    assert_eq!(told.len(), 1, "{alerts:#}");
    assert!(
        told[0].contains("likely cause: config generation 2"),
        "{}",
        told[0]
    );
    assert_eq!(
        metric(t, "tango_config_rollbacks_total").await,
        "tango_config_rollbacks_total 1"
    );
    assert_eq!(admin_get(t, "/api/v1/status").await["generation"], 3);
    let (_, live) = get(&client(), &t.admin_url("/api/v1/config")).await;
    assert_eq!(live, original);
    let even = counts(&[("b1", 100), ("b2", 100), ("b3", 100), ("b4", 100)]);
    assert_eq!(split(t, 400, false).await, even);
}
