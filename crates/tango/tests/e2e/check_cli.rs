//! `tango check`: every mistake at once, with line:col and did-you-mean; exit codes, the
//! same for `check`, `diff` and `simulate`.

use std::process::Command;

fn check(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    crate::support::check_in(dir.path(), "bad.toml", text)
}

#[test]
fn five_mistakes_are_all_printed_with_line_and_column() {
    let text = r#"[[listener]]
listen = "127.0.0.1:99999"
idle_timeout = "forever"

[[route]]
pool = "wbe"

[[pool]]
name = "web"
policy = "fastest"
[[pool.backend]]
address = "10.0.0.1"
weight = 20000
"#;
    let (code, out) = check(text);
    assert_eq!(code, 1, "{out}");
    for at in [
        "bad.toml:2:10",
        "bad.toml:3:16",
        "bad.toml:6:8",
        "bad.toml:10:10",
        "bad.toml:12:11",
        "bad.toml:13:10",
    ] {
        assert!(out.contains(at), "missing {at} in:\n{out}");
    }
    assert!(out.contains("6 errors"), "{out}");
}

#[test]
fn exit_codes() {
    let (code, _) = check("[[listener]\nlisten =");
    assert_eq!(code, 2, "not TOML at all");
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .args(["check", "/nonexistent/tango.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A file that is not UTF-8 cannot be read as TOML (exit 2), and the message says where
/// the first bad byte is: the error was "stream did not contain valid UTF-8", nothing more.
#[test]
fn a_file_that_is_not_utf8_is_refused_at_its_first_bad_byte() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("latin1.toml");
    std::fs::write(&p, b"[[listener]]\nname = \"caf\xe9\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .arg("check")
        .arg(&p)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not UTF-8 at line 2, column 12 (byte 0xe9): save the file as UTF-8"),
        "{err}"
    );
}

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .current_dir(repo())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FIVE: &str = "tests/configs/invalid-five-mistakes.toml";

#[test]
fn the_five_mistakes_file_reports_all_five_with_did_you_mean() {
    let (code, stdout, stderr) = run(&["check", FIVE]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let golden = std::fs::read_to_string(repo().join(FIVE.replace(".toml", ".check.txt"))).unwrap();
    assert_eq!(stdout, golden);
    let headers: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("error") || l.contains("--> "))
        .collect();
    assert_eq!(
        headers,
        [
            "error: route names pool `api`, which is not defined",
            " --> tests/configs/invalid-five-mistakes.toml:7:8",
            "error: unknown value `round_robbin`",
            "  --> tests/configs/invalid-five-mistakes.toml:11:10",
            "error: `30` is not a duration: time unit needed, for example 30sec or 30ms",
            "  --> tests/configs/invalid-five-mistakes.toml:12:11",
            "error: unknown key `max_inflight` in [[pool.backend]]",
            "  --> tests/configs/invalid-five-mistakes.toml:15:1",
            "error: -2 is out of range",
            "  --> tests/configs/invalid-five-mistakes.toml:18:10",
        ]
    );
    let helps: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("did you mean"))
        .collect();
    assert_eq!(
        helps,
        [
            "  = help: did you mean `round_robin`? (use one of: round_robin, random, \
             least_request, peak_ewma, ring_hash, maglev)",
            "  = help: did you mean `max_in_flight`?",
        ]
    );
}

/// The last line of a report: the summary, the same words from every command.
fn summary(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or("")
}

#[test]
fn check_diff_and_simulate_exit_alike_on_the_same_broken_file() {
    let good = "tests/configs/good-web-round-robin.toml";
    for (broken, code, last) in [
        (FIVE, 1, format!("{FIVE}: 5 errors, 0 warnings, 0 infos")),
        (
            "tests/configs/invalid-unknown-key.toml",
            1,
            "tests/configs/invalid-unknown-key.toml: 1 error, 0 warnings, 0 infos".to_string(),
        ),
    ] {
        let (c, stdout, _) = run(&["check", broken]);
        assert_eq!(
            (c, summary(&stdout)),
            (code, last.as_str()),
            "check {broken}"
        );
        let (c, _, stderr) = run(&["diff", good, broken, "--requests", "100"]);
        assert_eq!(
            (c, summary(&stderr)),
            (code, last.as_str()),
            "diff {broken}"
        );
        let (c, _, stderr) = run(&["simulate", broken, "--requests", "100"]);
        assert_eq!(
            (c, summary(&stderr)),
            (code, last.as_str()),
            "simulate {broken}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let not_toml = dir.path().join("not.toml");
    std::fs::write(&not_toml, "[[listener]\nlisten =").unwrap();
    let not_toml = not_toml.to_str().unwrap();
    let (c1, _, _) = run(&["check", not_toml]);
    let (c2, _, _) = run(&["diff", good, not_toml]);
    let (c3, _, _) = run(&["simulate", not_toml]);
    assert_eq!((c1, c2, c3), (2, 2, 2), "not TOML at all");
}

#[test]
fn every_setting_is_served_and_auto_needs_tls_and_no_proxy_header() {
    // Header edits, redirects, `tls`, `send_proxy_protocol` and `protocol = "auto"`
    // over TLS: all served, nothing refused.
    let text = r#"[[listener]]
listen = "127.0.0.1:0"

[[route]]
host = "old.example"
redirect = { host = "new.example" }

[[route]]
pool = "web"
headers = { request = { remove = ["x-debug"] } }

[[pool]]
name = "web"
tls = { server_name = "web.internal", verify = false }
protocol = "auto"
[[pool.backend]]
address = "10.0.0.1:443"

[[pool]]
name = "legacy"
send_proxy_protocol = "v1"
[[pool.backend]]
address = "10.0.0.2:80"
"#;
    let (code, out) = check(text);
    assert!(!out.contains("not served"), "{out}");
    assert_ne!(code, 1, "{out}");
    // `auto` chooses by ALPN: without TLS it is an error at its line:col.
    let text = r#"[[listener]]
listen = "127.0.0.1:0"

[[route]]
pool = "plain"

[[pool]]
name = "plain"
protocol = "auto"
[[pool.backend]]
address = "10.0.0.1:80"
"#;
    let (code, out) = check(text);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bad.toml:9:12"),
        "auto without tls, in:\n{out}"
    );
    assert!(out.contains("needs TLS"), "{out}");
    // With a PROXY header it is refused as on `h2`: the backend may choose HTTP/2.
    let text = r#"[[listener]]
listen = "127.0.0.1:0"

[[route]]
pool = "proxied"

[[pool]]
name = "proxied"
tls = { server_name = "web.internal", verify = false }
protocol = "auto"
send_proxy_protocol = "v2"
[[pool.backend]]
address = "10.0.0.1:443"
"#;
    let (code, out) = check(text);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bad.toml:11:23"),
        "auto with a PROXY header, in:\n{out}"
    );
    assert!(out.contains("1 error"), "{out}");
}

#[test]
fn an_h2_pool_over_plain_tcp_is_served() {
    let text = r#"[[listener]]
listen = "127.0.0.1:0"

[[route]]
pool = "grpc"

[[pool]]
name = "grpc"
protocol = "h2"
[[pool.backend]]
address = "10.0.0.1:50051"
"#;
    let (code, out) = check(text);
    assert!(!out.contains("not served"), "{out}");
    assert_ne!(code, 1, "{out}");
}

#[test]
fn a_proxy_header_on_an_h2_pool_is_refused() {
    let text = r#"[[listener]]
listen = "127.0.0.1:0"

[[route]]
pool = "grpc"

[[pool]]
name = "grpc"
protocol = "h2"
send_proxy_protocol = "v2"
[[pool.backend]]
address = "10.0.0.1:50051"
"#;
    let (code, out) = check(text);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad.toml:10:23"), "{out}");
    assert!(
        out.contains("an HTTP/2 connection carries the requests of many"),
        "{out}"
    );
}
