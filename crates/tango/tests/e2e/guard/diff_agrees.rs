//! `tango diff OLD NEW` gives the verdict a reload from OLD to NEW gets from the live
//! guard, for the same reason: a backend added at its peers' weight passes both, one
//! added at four times it is refused by both with the same sentence, and so are a
//! backend removed (passes) and a weight change (refused). The findings gate too: a new
//! checklist warning the file does not allow fails both, naming the same rule, and one
//! the file allows passes both, both naming it as allowed.

use super::harness::*;
use crate::backend::Backend;
use crate::support::*;
use std::net::SocketAddr;

/// `tango diff` on the two files: whether it passes, and its verdict line.
fn diff_verdict(old: &std::path::Path, new: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tango"))
        .arg("diff")
        .args([old, new])
        .output()
        .expect("run tango diff");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let verdict = text
        .lines()
        .find(|l| l.starts_with("verdict: "))
        .unwrap_or_else(|| panic!("no verdict in:\n{text}"))
        .to_string();
    match out.status.code() {
        Some(0) => (true, verdict),
        Some(1) => (false, verdict),
        c => panic!(
            "tango diff exited {c:?}:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// A tango running `old` reloads `new` through the admin API after `tango diff` has
/// reviewed the same two files, and the two verdicts are asserted equal: whether the
/// reload was applied (200; 409 refused, anything else fails the test), the review's
/// verdict line, and the reload's answer.
async fn review_and_reload(old: &str, new: &str) -> (bool, String, serde_json::Value) {
    let t = Tango::start(old);
    let dir = tempfile::tempdir().unwrap();
    let old_path = dir.path().join("old.toml");
    std::fs::write(&old_path, old).unwrap();
    t.write_config(new);
    let (reviewed, verdict) = diff_verdict(&old_path, &t.config);
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    let applied = match s {
        200 => true,
        409 => false,
        s => panic!("reload answered {s}: {v:#}"),
    };
    assert_eq!(
        reviewed, applied,
        "tango diff: {verdict}\nthe reload: {v:#}"
    );
    (applied, verdict, v)
}

/// A tango running `old` is asked (through the admin API) to reload `new`, and `tango
/// diff` reviews the same two files: both verdicts must agree, and a refusal's reason
/// must be the one the review gives. Returns whether the reload was applied.
async fn agree(old: &str, new: &str) -> bool {
    let (applied, verdict, v) = review_and_reload(old, new).await;
    if !applied {
        let r = v["refusals"].as_array().unwrap();
        assert!(r.iter().all(|r| r["gate"] == "shift"), "{v:#}");
        for r in r {
            let sentence = r["sentence"].as_str().unwrap();
            assert!(
                verdict.contains(sentence),
                "the review's reason is not the reload's:\n{verdict}\n{sentence}"
            );
        }
    }
    applied
}

/// As [`agree`], and the rule ids each names: those of the reload's refusals (or, when
/// applied, of its findings the file allows), and those the review's verdict line names.
async fn agree_on_rules(old: &str, new: &str) -> (bool, Vec<String>, String) {
    let (applied, verdict, v) = review_and_reload(old, new).await;
    let rules: Vec<String> = match applied {
        false => v["refusals"].as_array().unwrap().iter(),
        true => v["findings"].as_array().unwrap().iter(),
    }
    .filter(|f| !applied || !f["allowed"].is_null())
    .filter_map(|f| f["rule"].as_str().map(String::from))
    .collect();
    (applied, rules, verdict)
}

/// A pool timeout the retries do not fit in: `max_attempts` 2 x `try_timeout` 20s is
/// longer than the default 30s `timeout` (TNG015), a change that moves no traffic.
const RETRIES_OVER_TIMEOUT: &str = "try_timeout = \"20s\"\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_checklist_warning_the_file_does_not_allow_fails_diff_and_the_reload() {
    let (_, backends, _, _bs) = pool().await;
    let spec: Vec<(&str, SocketAddr, u32)> = (backends.iter())
        .map(|(n, a, w)| (n.as_str(), *a, *w))
        .collect();
    let (old, new) = (config("", &spec), config(RETRIES_OVER_TIMEOUT, &spec));
    let (applied, rules, verdict) = agree_on_rules(&old, &new).await;
    assert!(!applied, "{verdict}");
    assert_eq!(rules, ["TNG015"], "{verdict}");
    assert!(
        verdict.starts_with("verdict: FAIL: new warning TNG015 at "),
        "{verdict}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_checklist_warning_the_file_allows_passes_diff_and_the_reload() {
    let (_, backends, _, _bs) = pool().await;
    let spec: Vec<(&str, SocketAddr, u32)> = (backends.iter())
        .map(|(n, a, w)| (n.as_str(), *a, *w))
        .collect();
    let allow = "\n[[allow]]\nrule = \"TNG015\"\npool = \"p\"\nreason = \"the backends answer in a second or never\"\n";
    let (old, new) = (
        config("", &spec),
        config(RETRIES_OVER_TIMEOUT, &spec) + allow,
    );
    let (applied, rules, verdict) = agree_on_rules(&old, &new).await;
    assert!(applied, "{verdict}");
    assert_eq!(rules, ["TNG015"], "{verdict}");
    assert!(
        verdict.contains("warning TNG015 at ")
            && verdict.contains("allowed by the file (the backends answer in a second or never)"),
        "{verdict}"
    );
}

/// Four backends at weight 1 and a fifth, b5, not in the pool yet: (the old file, the
/// four as (name, address, weight), b5's address). The backends serve while they live.
async fn pool() -> (
    String,
    Vec<(String, SocketAddr, u32)>,
    SocketAddr,
    Vec<Backend>,
) {
    let mut bs: Vec<Backend> = four_backends().await.into_iter().collect();
    bs.push(Backend::start("b5").await);
    let four: Vec<(String, SocketAddr, u32)> = bs[..4]
        .iter()
        .map(|b| (b.name.clone(), b.addr, 1))
        .collect();
    let b5 = bs[4].addr;
    (file_of(&four), four, b5, bs)
}

/// Pool `p` over these (name, address, weight).
fn file_of(backends: &[(String, SocketAddr, u32)]) -> String {
    let v: Vec<(&str, SocketAddr, u32)> = backends
        .iter()
        .map(|(n, a, w)| (n.as_str(), *a, *w))
        .collect();
    config("", &v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_added_at_its_peers_weight_passes_diff_and_the_reload() {
    let (old, mut backends, b5, _bs) = pool().await;
    // b5 takes 20% as each of the others does.
    backends.push(("b5".into(), b5, 1));
    assert!(agree(&old, &file_of(&backends)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_added_at_four_times_its_peers_weight_fails_both_for_one_reason() {
    let (old, mut backends, b5, _bs) = pool().await;
    // b5 takes 50% where each of the others takes 12.5%.
    backends.push(("b5".into(), b5, 4));
    assert!(!agree(&old, &file_of(&backends)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_removed_passes_diff_and_the_reload() {
    let (old, mut backends, _, _bs) = pool().await;
    // The others keep their split among themselves.
    backends.pop();
    assert!(agree(&old, &file_of(&backends)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_change_over_the_limit_fails_both_for_one_reason() {
    let (old, mut backends, _, _bs) = pool().await;
    // b2 from 25% to 40%.
    backends[1].2 = 2;
    assert!(!agree(&old, &file_of(&backends)).await);
}
