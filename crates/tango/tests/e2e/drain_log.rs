//! A request cut at the end of the drain (its grace over, or a second signal) still has
//! its access log line: its request id, where it went, and status 0 (`000` in the
//! combined format) since no answer had begun.

use crate::backend::Backend;
use crate::support::*;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Bounds each wait; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// Start tango logging in `format` to a file, with `args`; send it a request the
/// backend holds for 20 s, with request id `id`, and wait until the backend has it.
async fn slow_request_in_flight(
    b: &Backend,
    format: &str,
    args: &[&str],
    id: &str,
) -> (Tango, tempfile::TempDir, std::path::PathBuf, TcpStream) {
    let (t, dir, path) = start_logged(&config("", &[("a", b.addr, 1)]), format, args);
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    let req = format!("GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\nX-Request-Id: {id}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let deadline = Instant::now() + BOUND;
    while b.hits() < 1 {
        assert!(Instant::now() < deadline, "the request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    (t, dir, path, s)
}

/// The line with request id `id` in the access log at `path`, once tango has exited.
fn line_of(t: &mut Tango, path: &std::path::Path, id: &str) -> String {
    let status = t.wait_exit(BOUND).expect("tango exits");
    assert!(status.success(), "{status:?}\n{}", t.log());
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let line = text.lines().find(|l| l.contains(id));
    line.unwrap_or_else(|| panic!("no line for {id} in:\n{text}\n{}", t.log()))
        .to_string()
}

#[tokio::test]
async fn a_request_cut_when_the_grace_runs_out_is_logged() {
    let b = Backend::start("a").await;
    let args = ["--grace", "300ms"];
    let (mut t, _dir, path, _s) = slow_request_in_flight(&b, "json", &args, "cut-by-grace").await;
    t.signal("TERM");
    let line = line_of(&mut t, &path, "cut-by-grace");
    let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(v["request_id"], "cut-by-grace", "{line}");
    assert_eq!(v["status"], 0, "{line}");
    assert_eq!(v["path"], "/slow", "{line}");
    assert_eq!(v["pool"], "p", "{line}");
    assert_eq!(v["backend"], "a", "{line}");
    assert!(v["total_ms"].as_f64().unwrap() >= 300.0, "{line}");
}

#[tokio::test]
async fn a_request_cut_by_a_second_signal_is_logged() {
    let b = Backend::start("a").await;
    let args = ["--grace", "30s"];
    let (mut t, _dir, path, _s) =
        slow_request_in_flight(&b, "combined", &args, "cut-by-signal").await;
    t.signal("TERM");
    let deadline = Instant::now() + BOUND;
    while !t.log().contains("shutting down") {
        assert!(Instant::now() < deadline, "the drain never began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.signal("INT");
    let line = line_of(&mut t, &path, "cut-by-signal");
    assert!(
        line.contains("\"GET /slow?ms=20000 HTTP/1.1\" 000 0 "),
        "{line}"
    );
    assert!(line.contains(" request_id=cut-by-signal "), "{line}");
    assert!(line.contains(" pool=p backend=a "), "{line}");
}
