//! The journal read back: a line torn inside a multi-byte character costs that line
//! only, for `tango run` and `tango timeline` alike; generations continue across restarts,
//! and a start that cannot bind its addresses journals none.

use super::*;
use crate::backend::Backend;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

fn health_event(i: u64, backend: &str) -> Value {
    json!({
        "ts_ms": 1_700_000_000_000u64 + i * 1000,
        "generation": 1,
        "type": "health_transition",
        "pool": "p",
        "backend": backend,
        "healthy": i % 2 == 0,
        "reason": format!("probe {i}"),
    })
}

fn config_with_state(addr: std::net::SocketAddr, state: &std::path::Path) -> String {
    with_admin(
        &config("", &[("a", addr, 1)]),
        &format!("state_dir = \"{}\"", state.display()),
    )
}

#[tokio::test]
async fn a_line_torn_inside_a_character_loses_that_line_only() {
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("journal.jsonl");
    let before = [health_event(0, "bäckend-α"), health_event(1, "bäckend-β")];
    let after = [health_event(3, "bäckend-γ"), health_event(4, "bäckend-δ")];
    let mut bytes = Vec::new();
    for e in &before {
        bytes.extend_from_slice(format!("{e}\n").as_bytes());
    }
    // A line cut after the first byte of 'ä' (0xC3 0xA4): invalid UTF-8.
    let torn = health_event(2, "bäckend-torn").to_string();
    let cut = torn.find('ä').unwrap() + 1;
    bytes.extend_from_slice(&torn.as_bytes()[..cut]);
    bytes.push(b'\n');
    for e in &after {
        bytes.extend_from_slice(format!("{e}\n").as_bytes());
    }
    // And the file ends without its last newline.
    bytes.pop();
    std::fs::write(&path, &bytes).unwrap();

    let a = Backend::start("a").await;
    let mut t = Tango::start_with(
        &config_with_state(a.addr, state.path()),
        &["--log-format", "json"],
    );
    let events = admin_get(&t, "/api/v1/journal").await["events"].clone();
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 5, "{events:#?}");
    assert_eq!(&events[..4], [&before[..], &after[..]].concat().as_slice());
    assert_eq!(events[4]["type"], "config_applied");
    assert_eq!(events[4]["generation"], 2);
    let skipped: Vec<Value> = json_log(&t)
        .into_iter()
        .filter(|l| l["level"] == "WARN" && l.get("skipped").is_some())
        .collect();
    assert_eq!(skipped.len(), 1, "one warning:\n{}", t.log());
    assert_eq!(skipped[0]["skipped"], 1);
    assert_eq!(skipped[0]["journal"], path.display().to_string());
    t.signal("TERM");
    t.wait_exit(Duration::from_secs(10)).expect("tango exits");

    // The startup event went on a line of its own, not onto the unterminated tail.
    let text = std::fs::read(&path).unwrap();
    let last: Value = serde_json::from_slice(
        text.trim_ascii_end()
            .rsplit(|&b| b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last, events[4]);

    let out = timeline(&path, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let parsed: Vec<tango_core::journal::Event> =
        serde_json::from_value(Value::Array(events.clone())).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        tango_core::journal::render_timeline(&parsed),
        "every event before and after the torn line"
    );
    let warning: Vec<&str> = stderr.lines().collect();
    assert_eq!(warning.len(), 1, "{stderr}");
    assert!(
        warning[0].starts_with(&format!(
            "warning: {}: skipped 1 journal line(s) that are not events",
            path.display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn generations_continue_across_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let a = Backend::start("a").await;
    let cfg = config_with_state(a.addr, state.path());
    let mut t = Tango::start(&cfg);
    for g in [2, 3] {
        let (s, v) = admin_post(&t, "/api/v1/reload").await;
        assert_eq!((s, &v["generation"]), (200, &json!(g)), "{v}");
    }
    t.signal("TERM");
    let st = t.wait_exit(Duration::from_secs(10)).expect("tango exits");
    assert!(st.success());
    drop(t);

    let t = Tango::start(&cfg);
    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 4);
    let metrics = get(&client(), &t.admin_url("/metrics")).await.1;
    assert!(metrics.contains("tango_config_generation 4\n"), "{metrics}");
    let events = admin_get(&t, "/api/v1/journal").await["events"].clone();
    let applied: Vec<(Value, Value)> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "config_applied")
        .map(|e| (e["generation"].clone(), e["source"].clone()))
        .collect();
    assert_eq!(
        applied,
        [(1, "startup"), (2, "api"), (3, "api"), (4, "startup")].map(|(g, s)| (json!(g), json!(s)))
    );
}

/// A start that fails to bind its listener (or its admin address) served nothing: it
/// journals no `config_applied`, and the next start is generation 1.
#[tokio::test]
async fn a_start_that_cannot_bind_journals_no_generation() {
    let state = tempfile::tempdir().unwrap();
    let a = Backend::start("a").await;
    let cfg = config_with_state(a.addr, state.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    let file = state.path().join("taken.toml");
    for (from, what) in [("[[listener]]", "listener"), ("[admin]", "admin")] {
        let at = cfg.find(from).unwrap();
        let text = format!(
            "{}{}",
            &cfg[..at],
            cfg[at..].replacen("127.0.0.1:0", &taken_addr, 1)
        );
        std::fs::write(&file, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_tango"))
            .args(["run", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: {stderr}");
        assert!(
            stderr.contains("Address already in use"),
            "{what}: {stderr}"
        );
        let journal = std::fs::read_to_string(state.path().join("journal.jsonl"));
        let journal = journal.unwrap_or_default();
        assert!(!journal.contains("config_applied"), "{what}: {journal}");
    }
    // A listener that cannot be bound is told at its line, key and fix, at start...
    let listener_taken = cfg.replacen(
        "name = \"main\"\nlisten = \"127.0.0.1:0\"",
        &format!("name = \"main\"\nlisten = \"{taken_addr}\""),
        1,
    );
    std::fs::write(&file, &listener_taken).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["run", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let at = listener_taken
        .find(&format!("listen = \"{taken_addr}"))
        .unwrap();
    let line = listener_taken[..at].lines().count() + 1;
    assert!(
        stderr.contains(&format!("taken.toml:{line}:10")),
        "{stderr}"
    );
    assert!(stderr.contains("listener[main].listen"), "{stderr}");
    assert!(
        stderr.contains("help: another process holds this address"),
        "{stderr}"
    );
    let t = Tango::start(&cfg);
    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);
    // ... and on reload, which changes nothing.
    t.write_config(&format!(
        "{cfg}\n[[listener]]\nname = \"second\"\nlisten = \"{taken_addr}\"\n"
    ));
    let (status, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(status, 422, "{v}");
    let error = v["errors"][0].as_str().unwrap_or_default();
    assert!(error.contains("listener[second].listen"), "{v}");
    assert!(
        error.contains("help: another process holds this address"),
        "{v}"
    );
    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);
    drop(taken);
}

/// `tango timeline --journal path args...`, run to its end.
fn timeline(path: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["timeline", "--journal"])
        .arg(path)
        .args(args)
        .output()
        .unwrap()
}

/// `tango timeline --journal` on `path`: its stdout, asserting success.
fn timeline_of(path: &std::path::Path) -> String {
    let out = timeline(path, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_events(path: &std::path::Path, events: &[Value]) {
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(path, text).unwrap();
}

/// The rotated file read on its own (an incident of yesterday) shows its events once;
/// the current file brings its predecessor along, and a copy under another name reads
/// no unrelated `journal.1.jsonl` that happens to be beside it.
#[test]
fn the_rotated_journal_read_on_its_own_has_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let older = [health_event(0, "a"), health_event(1, "a")];
    let newer = [health_event(2, "a"), health_event(3, "a")];
    write_events(&dir.path().join("journal.1.jsonl"), &older);
    write_events(&dir.path().join("journal.jsonl"), &newer);
    write_events(&dir.path().join("saved.jsonl"), &newer);
    let render = |events: &[Value]| {
        let parsed: Vec<tango_core::journal::Event> =
            serde_json::from_value(Value::Array(events.to_vec())).unwrap();
        tango_core::journal::render_timeline(&parsed)
    };
    assert_eq!(
        timeline_of(&dir.path().join("journal.1.jsonl")),
        render(&older)
    );
    assert_eq!(
        timeline_of(&dir.path().join("journal.jsonl")),
        render(&[&older[..], &newer[..]].concat())
    );
    assert_eq!(timeline_of(&dir.path().join("saved.jsonl")), render(&newer));
}

/// A period that ends before it starts is refused (exit 1) naming both bounds, and
/// with no --to, saying that the period ends now rather than blaming a --to never given.
#[test]
fn a_period_that_ends_before_it_starts_names_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    write_events(&path, &[health_event(0, "a")]);
    let run = |args: &[&str]| {
        let out = timeline(&path, args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--from", "2999-01-01T00:00:00Z"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with(
            "error: --from (2999-01-01 00:00:00Z) is in the future: the period ends now ("
        ),
        "{err}"
    );
    let (code, err) = run(&["--from", "2000", "--to", "1000"]);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "error: --from (1970-01-01 00:00:02Z) is after --to (1970-01-01 00:00:01Z)\n"
    );
}

/// Each line skipped is named by its number, the torn last one too, so an operator can
/// look at every one (the warning gave the first only).
#[test]
fn every_skipped_line_is_named_by_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let good = |i| format!("{}\n", health_event(i, "a"));
    let text = [
        good(0),
        "not an event\n".to_string(),
        good(1),
        "{\"ts_ms\": 1}\n".to_string(),
        good(2),
        "{\"ts_ms\":17000".to_string(),
    ]
    .concat();
    std::fs::write(&path, text).unwrap();
    let out = timeline(&path, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
    assert!(
        stderr.contains("skipped 3 journal line(s) that are not events (a torn write or corruption), at line(s) 2, 4, 6; the rest is read; first: line 2: "),
        "{stderr}"
    );
}
