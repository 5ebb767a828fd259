//! tango's own log: colour only on a terminal and never with `NO_COLOR`; one line per
//! event, a rejected reload included.

use super::*;
use crate::backend::Backend;
use std::process::Command;

#[tokio::test]
async fn a_redirected_stderr_gets_no_colour_codes() {
    let a = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", a.addr, 1)]));
    wait_log(&t, "tango is running");
    let log = t.log();
    assert!(!log.contains('\u{1b}'), "escape codes in a file:\n{log:?}");
}

/// tango on a pseudo-terminal (`script`), failing at start after its first log lines
/// (the checklist's findings): the admin address is taken, so no listener starts.
/// Returns what the terminal showed.
fn on_a_terminal(no_color: Option<&str>) -> String {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tango.toml");
    let cfg = config("", &[("a", dead_addr(), 1)]).replacen(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{}\"", taken.local_addr().unwrap()),
        1,
    );
    std::fs::write(&path, cfg).unwrap();
    let cmd = format!(
        "{} run --config {}",
        env!("CARGO_BIN_EXE_tango"),
        path.display()
    );
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR");
    if let Some(v) = no_color {
        c.env("NO_COLOR", v);
    }
    let out = c.output().expect("script (util-linux) runs");
    assert!(
        !out.status.success(),
        "tango should fail: the admin address is taken"
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_terminal_gets_colour_unless_no_color_is_set() {
    let coloured = on_a_terminal(None);
    let logged = |s: &str| {
        s.lines()
            .any(|l| l.contains("checklist: warning") && l.contains("TNG003"))
    };
    assert!(logged(&coloured), "{coloured:?}");
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = on_a_terminal(Some("1"));
    assert!(logged(&plain), "{plain:?}");
    assert!(
        !plain.contains('\u{1b}'),
        "colour despite NO_COLOR: {plain:?}"
    );
}

#[tokio::test]
async fn a_rejected_reload_is_one_log_line_with_every_problem() {
    let a = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", a.addr, 1)]));
    wait_log(&t, "tango is running");
    t.write_config(&config(
        "max_attempts = 0\nretry_budget = -1.0",
        &[("a", a.addr, 1)],
    ));
    let (s, _) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 422);
    wait_log(&t, "configuration rejected");
    let log = t.log();
    // Every line is an event: a timestamp first, no continuation lines.
    for l in log.lines() {
        assert!(
            l.len() > 4 && l.as_bytes()[..4].iter().all(u8::is_ascii_digit),
            "not an event line: {l:?}\n{log}"
        );
    }
    let rejected: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("configuration rejected"))
        .collect();
    assert_eq!(rejected.len(), 1, "{log}");
    let name = t.config.display().to_string();
    let errors = rejected[0]
        .split_once(" errors=")
        .map(|(_, e)| e)
        .unwrap_or_default();
    assert_eq!(
        errors,
        format!(
            "{name}:10:16: error: 0 is out of range (help: use a whole number from 1 to 10); \
             {name}:11:16: error: -1 is out of range (help: use a number from 0 to 1)"
        ),
        "{}",
        rejected[0]
    );
}
