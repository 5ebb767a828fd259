//! A reload asked for during the drain is refused and binds nothing: the admin API
//! answers 503 saying tango is shutting down, `tango reload` prints that and fails, and
//! SIGHUP is logged as ignored; the request in flight is still answered.

use crate::backend::Backend;
use crate::support::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds each wait; the events awaited come much sooner.
const BOUND: Duration = Duration::from_secs(15);

/// One listener, or two when `second` names an address for listener `b`.
fn listeners(backend: std::net::SocketAddr, second: Option<std::net::SocketAddr>) -> String {
    let b = second.map_or(String::new(), |a| {
        format!("[[listener]]\nname = \"b\"\nlisten = \"{a}\"\n")
    });
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n[[listener]]\nname = \"a\"\nlisten = \"127.0.0.1:0\"\n{b}\
         [[pool]]\nname = \"p\"\n[[pool.backend]]\naddress = \"{backend}\"\n\
         [guard]\nenabled = false\nrollback = false\n"
    )
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {BOUND:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_reload_during_the_drain_is_refused_and_binds_nothing() {
    let b = Backend::start("a").await;
    let mut t = Tango::start_with(&listeners(b.addr, None), &["--grace", "30s"]);
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"GET /slow?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    wait_for("the request reaches the backend", || b.hits() >= 1).await;
    t.signal("TERM");
    wait_for("the drain begins", || t.log().contains("shutting down")).await;

    // The file now adds a listener on a fixed port; nothing may bind it.
    let new = dead_addr();
    t.write_config(&listeners(b.addr, Some(new)));
    let (status, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["result"], "shutting_down", "{v}");
    let error = v["error"].as_str().unwrap_or_default();
    assert!(error.contains("tango is shutting down"), "{v}");

    let admin = t.admin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tango"))
            .args(["reload", "--admin", &admin])
            .env_remove("TANGO_ADMIN_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("tango is shutting down"), "{stderr}");

    t.signal("HUP");
    wait_for("SIGHUP is logged as ignored", || {
        t.log().contains("SIGHUP ignored: tango is shutting down")
    })
    .await;

    assert!(
        TcpStream::connect(new).await.is_err(),
        "the new listener was bound"
    );
    let log = t.log();
    assert!(!log.contains("listener=b"), "{log}");
    assert!(!log.contains("configuration applied"), "{log}");

    // The drain goes on: the request is answered, then tango exits.
    let mut got = Vec::new();
    tokio::time::timeout(BOUND, s.read_to_end(&mut got))
        .await
        .expect("the answer in time")
        .unwrap();
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    let status = t.wait_exit(BOUND).expect("tango exits");
    assert!(status.success(), "{status:?}\n{}", t.log());
}
