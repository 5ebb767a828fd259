//! What operators run tango with: metrics a scraper and `promtool` accept, logs that
//! read well in journald and files, an access log with the usual fields, the CLI's
//! helpers, the demo, and the files in deploy/.

mod access_log;
mod cli;
mod demo;
mod deploy;
mod logs;
mod metrics;

use crate::support::*;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send `request` as is on a new connection and read until the server closes it.
/// Returns the response and the client's port.
pub async fn raw(addr: std::net::SocketAddr, request: &str) -> (String, u16) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let port = s.local_addr().unwrap().port();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
        .await
        .expect("response in time")
        .expect("read");
    (String::from_utf8_lossy(&out).into_owned(), port)
}

/// The lines of `path` once it has at least `n`; panics after 10 s (a bound only: the
/// access log is flushed four times a second).
pub fn wait_lines(path: &Path, n: usize) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < end,
            "{} has {} lines, expected {n}:\n{text}",
            path.display(),
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until tango's log has a line containing `needle`; panics after 10 s.
pub fn wait_log(t: &Tango, needle: &str) {
    let end = Instant::now() + Duration::from_secs(10);
    while !t.log().contains(needle) {
        assert!(
            Instant::now() < end,
            "no `{needle}` in the log:\n{}",
            t.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
