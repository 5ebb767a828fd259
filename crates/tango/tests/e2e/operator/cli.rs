//! The CLI's helpers: `--version`, completions, man pages, `tango status` aimed by
//! `host:port` or by the configuration file, and `simulate`'s progress bar.

use super::*;
use crate::backend::Backend;
use std::process::{Command, Output};
use std::sync::atomic::Ordering::Relaxed;

fn tango(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tango"));
    c.args(args)
        .env_remove("TANGO_ADMIN")
        .env_remove("TANGO_ADMIN_TOKEN");
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

#[test]
fn version_is_the_package_version() {
    let out = ok(tango(&["--version"]).output().unwrap());
    assert_eq!(out, format!("tango {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn bash_loads_the_completions() {
    let script = ok(tango(&["completions", "bash"]).output().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tango.bash");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p tango", path.display()))
        .output()
        .unwrap();
    assert_eq!(
        ok(out),
        "complete -o bashdefault -o default -o nosort -F _tango tango\n"
    );
    let zsh = ok(tango(&["completions", "zsh"]).output().unwrap());
    assert_eq!(zsh.lines().next(), Some("#compdef tango"));
    let fish = ok(tango(&["completions", "fish"]).output().unwrap());
    assert!(
        fish.lines().any(|l| l.starts_with("complete -c tango ")),
        "{fish}"
    );
}

#[test]
fn man_pages_render_without_warnings_one_per_command() {
    let page = ok(tango(&["man"]).output().unwrap());
    assert!(
        page.lines().any(
            |l| l.trim_end() == format!(".TH tango 1  \"tango {}\"", env!("CARGO_PKG_VERSION"))
        ),
        "{page}"
    );
    let mut groff = Command::new("groff")
        .args(["-man", "-Tutf8", "-ww"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("groff is installed");
    use std::io::Write as _;
    groff
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = groff.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "groff warnings");
    let text = stdout(&out);
    assert!(text.contains("tango-status(1)"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    ok(tango(&["man", "--dir", dir.path().to_str().unwrap()])
        .output()
        .unwrap());
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let commands = [
        "check",
        "completions",
        "demo",
        "demo-backend",
        "diff",
        "man",
        "postmortem",
        "reload",
        "run",
        "simulate",
        "status",
        "timeline",
    ];
    let mut expected: Vec<String> = commands.iter().map(|c| format!("tango-{c}.1")).collect();
    expected.push("tango.1".to_string());
    expected.sort();
    assert_eq!(pages, expected);
}

/// The status tables for tango `t` with one backend `a` that served `requests`: every
/// column lined up, the connection count whatever it is.
fn assert_status(out: &str, t: &Tango, a: &Backend, requests: u64) {
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("generation 1, applied "), "{out}");
    let listener = t.addr().to_string();
    assert_eq!(
        lines[1..=6],
        [
            "",
            "listener  address",
            &format!("main      {listener}"),
            "",
            "pool p (round_robin)",
            &format!(
                "backend  {:<w2$}  weight  effective  healthy  ejected  in flight  requests  errors  connections",
                "address",
                w2 = a.addr.to_string().len()
            ),
        ],
        "{out}"
    );
    let row = lines[7];
    let header = lines[6];
    assert_eq!(row.len(), header.len(), "the last column lines up:\n{out}");
    let prefix = format!(
        "a        {}       1       1.00  yes      no               0  {requests:>8}       0",
        a.addr
    );
    assert!(row.starts_with(&prefix), "{row:?}\n{prefix:?}");
    row[prefix.len()..]
        .trim()
        .parse::<u64>()
        .expect("a connection count");
    assert_eq!(lines.len(), 8, "{out}");
}

/// `tango status` with `args` once its backend's in-flight column reads 0 (within 5 s):
/// the client has its answer a moment before tango counts the request over, and the
/// API behind a token cannot be polled without it.
fn settled_status(args: &[&str]) -> String {
    let end = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = ok(tango(args).output().unwrap());
        let in_flight = out.lines().nth(7).and_then(|r| r.split_whitespace().nth(6));
        if in_flight == Some("0") || std::time::Instant::now() > end {
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn status_takes_a_host_port_without_a_scheme() {
    let a = Backend::start("a").await;
    let t = Tango::start(&config("", &[("a", a.addr, 1)]));
    let c = client();
    for _ in 0..2 {
        assert_eq!(get(&c, &t.url("/")).await.0, 200);
    }
    // The client has its answer a moment before tango counts the request over.
    assert!(in_flight_becomes(&t, 0, Duration::from_secs(5)).await);
    let out = tango(&["status"])
        .env("TANGO_ADMIN", t.admin.to_string())
        .output()
        .unwrap();
    assert_status(&ok(out), &t, &a, 2);
    let out = tango(&["status", "--admin", &format!("http://{}/", t.admin)])
        .output()
        .unwrap();
    assert_status(&ok(out), &t, &a, 2);
}

#[tokio::test]
async fn status_finds_the_admin_api_and_its_token_in_the_config() {
    let a = Backend::start("a").await;
    let admin = dead_addr();
    let token = "0123456789abcdef0123";
    let cfg = config("", &[("a", a.addr, 1)]).replacen(
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\nlisten = \"{admin}\"\ntoken = \"{token}\""),
        1,
    );
    let t = Tango::start(&cfg);
    assert_eq!(t.admin, admin);
    assert_eq!(get(&client(), &t.url("/")).await.0, 200);
    let out = settled_status(&["status", "--config", t.config.to_str().unwrap()]);
    assert_status(&out, &t, &a, 1);
    // The address alone is not enough: the API wants the token.
    let out = tango(&["status", "--admin", &admin.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: the admin API wants a token: pass --token or set TANGO_ADMIN_TOKEN\n"
    );
}

#[test]
fn simulate_draws_a_progress_bar_only_on_a_terminal() {
    let cfg =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/configs/good-web-round-robin.toml");
    let args = ["simulate", cfg.to_str().unwrap(), "--requests", "1000000"];
    let piped = tango(&args).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&piped.stderr), "");
    assert!(ok(piped).starts_with("pool web (round_robin), 1000000 requests"));
    let cmd = format!("{} {}", env!("CARGO_BIN_EXE_tango"), args.join(" "));
    let term = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let shown = ok(term);
    assert!(shown.contains("  simulating ["), "{shown:?}");
    assert!(
        shown.contains("pool web (round_robin), 1000000 requests"),
        "{shown:?}"
    );
}

#[tokio::test]
async fn status_says_why_a_backend_is_down() {
    let good = Backend::start("good").await;
    let sick = Backend::start("sick").await;
    sick.state.health_status.store(503, Relaxed);
    let t = Tango::start(&config(
        "[pool.health]\npath = \"/health\"\ninterval = \"50ms\"\ntimeout = \"1s\"\nfall = 1\nrise = 1\njitter = 0.0\n",
        &[("good", good.addr, 1), ("sick", sick.addr, 1)],
    ));
    let s = wait_status(&t, "sick unhealthy", Duration::from_secs(10), |s| {
        backend_entry(s, "sick")["healthy"] == false
    })
    .await;
    let why = "status 503 (expected 200-399)";
    assert_eq!(backend_entry(&s, "sick")["down_reason"], why, "{s}");
    assert_eq!(
        backend_entry(&s, "good")["down_reason"],
        serde_json::Value::Null,
        "{s}"
    );
    let out = ok(tango(&["status", "--admin", &t.admin.to_string()])
        .output()
        .unwrap());
    let lines: Vec<&str> = out.lines().collect();
    let header = lines
        .iter()
        .find(|l| l.starts_with("backend "))
        .expect(&out);
    assert!(header.ends_with("  connections  why"), "{out}");
    let sick_row = lines.iter().find(|l| l.starts_with("sick ")).expect(&out);
    assert!(sick_row.ends_with(&format!("  {why}")), "{out}");
    assert_eq!(
        sick_row.find(why),
        header.find("why"),
        "the reason sits in its column:\n{out}"
    );
    let good_row = lines.iter().find(|l| l.starts_with("good ")).expect(&out);
    assert!(!good_row.contains("status"), "{out}");
}
