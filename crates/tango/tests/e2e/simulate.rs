//! `tango simulate` predicts what the running proxy does: the same keys through both
//! give the same per-backend shares.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use std::process::Command;

const POOL: &str = "policy = \"ring_hash\"\nhash_key = { source = \"header\", name = \"x-user\" }";

/// 2,000 key lines over 700 users, some repeated many times (a skewed, Zipf-like mix).
fn key_lines() -> Vec<String> {
    (0..2_000u64)
        .map(|i| {
            let user = match i % 4 {
                0 => i % 7,
                _ => (i * 7_919) % 700,
            };
            format!("user-{user}")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_predicts_the_proxy_s_ring_hash_shares_within_two_points() {
    let bs = [
        Backend::start("a").await,
        Backend::start("b").await,
        Backend::start("c").await,
        Backend::start("d").await,
    ];
    let spec: Vec<(&str, _, u32)> = bs
        .iter()
        .zip([1u32, 2, 1, 1])
        .map(|(b, w)| (b.name.as_str(), b.addr, w))
        .collect();
    let t = Tango::start(&config(POOL, &spec));
    let keys = key_lines();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("keys.txt");
    std::fs::write(&key_file, keys.join("\n") + "\n").unwrap();

    // One request per key line, 8 concurrent loops over disjoint slices.
    let c = client();
    let mut tasks = Vec::new();
    for chunk in keys.chunks(250) {
        let (c, url, chunk) = (c.clone(), t.url("/"), chunk.to_vec());
        tasks.push(tokio::spawn(async move {
            for key in chunk {
                let req = http::Request::get(&url)
                    .header("x-user", key)
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let (s, _) = send(&c, req).await;
                assert_eq!(s, 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total: u64 = bs.iter().map(|b| b.hits()).sum();
    assert_eq!(total, keys.len() as u64);

    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .arg("simulate")
        .arg(&t.config)
        .arg("--keys")
        .arg(&key_file)
        .args(["--format", "json"])
        .output()
        .expect("run tango simulate");
    assert_ne!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let pool = &report["pools"][0];
    assert_eq!(pool["requests"].as_u64(), Some(keys.len() as u64));
    for b in &bs {
        let measured = b.hits() as f64 * 100.0 / total as f64;
        let predicted = pool["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == b.name.as_str())
            .and_then(|x| x["simulated_pct"].as_f64())
            .expect("backend in the report");
        assert!(
            (measured - predicted).abs() <= 2.0,
            "{}: proxy {measured:.2}%, simulate {predicted:.2}%",
            b.name
        );
    }
}

#[test]
fn diff_fails_on_the_postmortem_weight_typo_and_explains_it() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, weight: u32| {
        let mut s =
            String::from("[[listener]]\nlisten = \"127.0.0.1:0\"\n\n[[pool]]\nname = \"web\"\n");
        for (i, w) in [1, 1, weight, 1].iter().enumerate() {
            s.push_str(&format!(
                "[[pool.backend]]\nname = \"web-{i}\"\naddress = \"10.0.0.{i}:80\"\nweight = {w}\n"
            ));
        }
        let p = dir.path().join(name);
        std::fs::write(&p, s).unwrap();
        p
    };
    let (old, new) = (write("old.toml", 1), write("new.toml", 10));
    let diff = |new: &std::path::Path, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tango"))
            .arg("diff")
            .arg(&old)
            .arg(new)
            .args(extra)
            .output()
            .expect("run tango diff");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out, text)
    };
    let (out, text) = diff(&new, &[]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("changed web-2's weight from 1 to 10"),
        "{text}"
    );
    let row: Vec<&str> = text
        .lines()
        .find(|l| l.trim_start().starts_with("web-2 "))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    assert_eq!(
        row.join(" "),
        "web-2 10.0.0.2:80 25.0% 76.9% ↑ +51.9 points over the limit",
        "{text}"
    );
    assert!(text.contains("verdict: FAIL"), "{text}");
    // An intended shift still leaves the weight-outlier warning (TNG001) the reload
    // refuses: --allow-shift concerns the split only.
    let (out, text) = diff(&new, &["--allow-shift", "web"]);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let verdict = text.lines().last().unwrap_or_default();
    assert!(
        verdict.starts_with("verdict: FAIL: new warning TNG001 at ") && !verdict.contains("+51.9"),
        "{text}"
    );
    // The review passes when the file allows the weight too.
    let allowed = dir.path().join("allowed.toml");
    let allow =
        "\n[[allow]]\nrule = \"TNG001\"\npool = \"web\"\nreason = \"web-2 is the big machine\"\n";
    std::fs::write(&allowed, std::fs::read_to_string(&new).unwrap() + allow).unwrap();
    let (out, text) = diff(&allowed, &["--allow-shift", "web"]);
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn simulate_exits_2_on_a_missing_file_and_1_when_a_split_deviates() {
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["simulate", "/nonexistent/tango.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("t.toml");
    // Nothing listens there; simulate never connects.
    let (a, b) = (
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
    );
    std::fs::write(&cfg, config(POOL, &[("a", a, 1), ("b", b, 1)])).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .arg("simulate")
        .arg(&cfg)
        .args(["--zipf", "1.3", "--distinct", "100", "--requests", "20000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("DEVIATES"), "{text}");
}

/// Limits that cannot be used are refused on the command line (exit 2): no requests
/// predicted a 100-point deviation (simulate) or a pass (diff), 2^64 of them overflowed
/// the progress count (a panic), a NaN limit passed a change moving 40 points, and an
/// empty key file predicted nothing.
#[test]
fn simulate_and_diff_refuse_unusable_requests_and_limits() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.toml"), dir.path().join("new.toml"));
    let two = [("a", "127.0.0.1:1"), ("b", "127.0.0.1:2")];
    std::fs::write(&old, rr_pool(&two)).unwrap();
    let heavy = rr_pool(&two).replacen(
        "address = \"127.0.0.1:1\"",
        "address = \"127.0.0.1:1\"\nweight = 10",
        1,
    );
    std::fs::write(&new, heavy).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tango"))
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), text)
    };
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());
    for args in [
        &["simulate", old, "--requests", "0"][..],
        &["simulate", old, "--requests", "18446744073709551615"],
        &["simulate", old, "--threshold", "NaN"],
        &["simulate", old, "--threshold=-5"],
        &["diff", old, new, "--requests", "0"],
        &["diff", old, new, "--max-shift", "NaN"],
        &["diff", old, new, "--max-shift", "101"],
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("expected a"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    // Valid values are taken (the file allows its weight, TNG001, which would fail the
    // review on its own).
    let allowed = dir.path().join("allowed.toml");
    let allow = "\n[[allow]]\nrule = \"TNG001\"\nreason = \"a is the big machine\"\n";
    std::fs::write(&allowed, std::fs::read_to_string(new).unwrap() + allow).unwrap();
    let allowed = allowed.to_str().unwrap();
    let (code, err) = run(&[
        "diff",
        old,
        allowed,
        "--requests",
        "1000",
        "--max-shift",
        "50",
    ]);
    assert_eq!(code, Some(0), "{err}");
    // An empty key file or access log gives no requests: `diff` passed the typo on it.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    for args in [
        &["simulate", old, "--keys", empty][..],
        &["simulate", old, "--access-log", empty],
        &["diff", old, new, "--keys", empty],
    ] {
        let (code, err) = run(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("holds no"), "{args:?}: {err}");
    }
}

/// A pool of round-robin backends, each `(name, address)`.
fn rr_pool(backends: &[(&str, &str)]) -> String {
    let mut s = String::from(
        "[[listener]]\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"web\"\n\
         policy = \"round_robin\"\nhealth = { path = \"/healthz\" }\n",
    );
    for (name, address) in backends {
        s += &format!("[[pool.backend]]\nname = \"{name}\"\naddress = \"{address}\"\n");
    }
    s
}

#[test]
fn diff_shows_an_address_change_and_a_rename_as_one_row_each() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.toml"), dir.path().join("new.toml"));
    let b = |n: u16| format!("127.0.0.1:{}", 9000 + n);
    std::fs::write(
        &old,
        rr_pool(&[("b1", &b(1)), ("b2", &b(2)), ("b3", &b(3))]),
    )
    .unwrap();
    std::fs::write(
        &new,
        rr_pool(&[("b1", &b(1)), ("b-two", &b(2)), ("b3", &b(33))]),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["diff", "--requests", "3000"])
        .args([&old, &new])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let rows: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("pool web"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        rows,
        [
            "backend address old new change note",
            "b1 127.0.0.1:9001 33.3% 33.3% = +0.0 points",
            "b-two 127.0.0.1:9002 33.3% 33.3% = +0.0 points renamed from b2",
            "b3 127.0.0.1:9033 33.3% 33.3% = +0.0 points address was 127.0.0.1:9003",
        ],
        "{text}"
    );
}

#[test]
fn simulate_says_synthetic_keys_cannot_judge_a_low_cardinality_hash_key() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let file = repo.join("tests/configs/hazard-low-cardinality-key.toml");
    let run = |extra: &[&std::ffi::OsStr]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tango"))
            .arg("simulate")
            .arg(&file)
            .args(["--requests", "3000"])
            .args(extra)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), text)
    };
    let (code, text) = run(&[]);
    assert_eq!(code, Some(0), "{text}");
    let caveats: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  caveat:"))
        .collect();
    assert_eq!(
        caveats,
        [
            "  caveat: synthetic keys cannot judge this hash key: header `host` has few distinct \
          values (TNG009), so real traffic maps to a few backends whatever the split below; \
          simulate real keys with --keys FILE or --access-log FILE"
        ],
        "{text}"
    );
    let verdict = |text: &str| {
        let last = text.trim_end().lines().last().unwrap_or("").to_string();
        last.split_once(" points: ")
            .map(|(_, v)| v.to_string())
            .unwrap_or(last)
    };
    assert_eq!(
        verdict(&text),
        "CANNOT JUDGE with synthetic keys (see the caveat)"
    );
    // Real keys judge it: no caveat, and the verdict is the split's.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("hosts.txt");
    std::fs::write(&keys, "shop.example\nshop.example\nshop.example\n").unwrap();
    let (code, text) = run(&["--keys".as_ref(), keys.as_os_str()]);
    assert!(!text.contains("caveat"), "{text}");
    assert!(verdict(&text).starts_with("DEVIATES: "), "{text}");
    assert_eq!(code, Some(1), "{text}");
}

/// A route that turns into a redirect takes its requests from the pool: `diff` says
/// so as a split change, and `simulate` lists the redirect as served by no pool; header
/// edits and a pool's protocol towards its backends are configuration changes.
#[test]
fn redirect_routes_leave_the_split_and_edits_are_configuration_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old.toml"), dir.path().join("new.toml"));
    let pool = rr_pool(&[("b1", "127.0.0.1:9001"), ("b2", "127.0.0.1:9002")]);
    let route = |target: &str| {
        format!("[[route]]\nhost = \"old.example\"\n{target}\n[[route]]\npool = \"web\"\n")
    };
    std::fs::write(&old, pool.clone() + &route("pool = \"web\"")).unwrap();
    let redirect = "redirect = { scheme = \"https\", status = 308 }\nheaders = { response = { set = { x-a = \"1\" } } }";
    std::fs::write(&new, pool + &route(redirect)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["diff", "--requests", "3000"])
        .args([&old, &new])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("split changes (requests leave or join a pool whole):\n  - route host old.example path /: its requests leave pool web for a redirect 308 to scheme https\n"),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["simulate", "--requests", "3000"])
        .arg(&new)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("route host old.example path /: redirect 308 to scheme https: answered by tango, served by no pool\n"),
        "{text}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["simulate", "--requests", "3000", "--format", "json"])
        .arg(&new)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["redirected"][0],
        "route host old.example path /: redirect 308 to scheme https"
    );
}

#[test]
fn diff_reads_the_guard_settings_a_reload_reads_and_says_what_only_the_live_guard_knows() {
    let dir = tempfile::tempdir().unwrap();
    let b = |n: u16| format!("127.0.0.1:{}", 9000 + n);
    let four = rr_pool(&[("b1", &b(1)), ("b2", &b(2)), ("b3", &b(3)), ("b4", &b(4))]);
    // b2 from 25% to 40%: +15 points.
    let heavier = four.replacen(
        &format!("address = \"{}\"\n", b(2)),
        &format!("address = \"{}\"\nweight = 2\n", b(2)),
        1,
    );
    let run = |old: &str, new: &str| {
        let (o, n) = (dir.path().join("old.toml"), dir.path().join("new.toml"));
        std::fs::write(&o, old).unwrap();
        std::fs::write(&n, new).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tango"))
            .args(["diff", "--requests", "3000"])
            .args([&o, &n])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), text)
    };
    let (code, text) = run(&four, &heavier);
    assert_eq!(code, Some(1), "{text}");
    // The limit is the old file's, as the configuration in force judges a reload.
    let lenient = "\n[guard]\nmax_shift = 20\n";
    let (code, text) = run(&(four.clone() + lenient), &heavier);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("moves more than 20 points"), "{text}");
    // A pool the new file adds to [guard] allow_shift may shift, as on SIGHUP.
    let allowed = heavier.clone() + "\n[guard]\nallow_shift = [\"web\"]\n";
    let (code, text) = run(&four, &allowed);
    assert_eq!(code, Some(0), "{text}");
    // A hash pool: the live guard predicts from sampled requests, and diff says so.
    let ring = |s: &str| s.replace("policy = \"round_robin\"", POOL);
    let (_, text) = run(&ring(&four), &ring(&heavier));
    assert!(
        text.contains("what a reload's guard weighs beyond this review:\n  - pool web hashes: a reload predicts it from the requests tango sampled from live traffic"),
        "{text}"
    );
}
