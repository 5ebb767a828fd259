//! `tango check`: every mistake at once, with line:col; exit codes.

use std::process::Command;

fn check(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tango"))
        .arg("check")
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
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
