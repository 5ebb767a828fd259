//! With the worker's io_uring turned off (`TANGO_IO_URING=off`, as on a kernel that
//! has none), every send is its own system call: the same answers arrive.

use super::{big_body, Canned};
use crate::backend::Backend;
use crate::framing::Raw;
use crate::support::*;
use std::time::Duration;

#[tokio::test]
async fn without_io_uring_pipelined_and_large_answers_arrive_the_same() {
    let b = Backend::start("a").await;
    let big = Canned::start().await;
    let cfg = config(
        "try_timeout = \"60s\"\ntimeout = \"60s\"",
        &[("a", b.addr, 1)],
    );
    let t = Tango::start_env(&cfg, &[], &[("TANGO_IO_URING", "off")]);
    let mut c = Raw::connect(t.addr()).await;
    c.send(
        b"GET /source?n=3 HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(c.response().await, Some((200, b"xxx".to_vec())));
    assert_eq!(c.response().await, Some((200, b"5".to_vec())));
    assert_eq!(c.response().await, Some((200, b"a\n".to_vec())));
    assert!(
        t.log().contains("io_uring turned off (TANGO_IO_URING)"),
        "the setting was not honoured: {}",
        t.log()
    );
    drop(c);

    let t = Tango::start_env(
        &config(
            "try_timeout = \"60s\"\ntimeout = \"60s\"",
            &[("b", big.addr, 1)],
        ),
        &[],
        &[("TANGO_IO_URING", "off")],
    );
    let mut c = Raw::connect(t.addr()).await;
    c.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (status, body) = tokio::time::timeout(Duration::from_secs(60), c.response())
        .await
        .expect("in time")
        .expect("a response");
    assert_eq!(status, 200);
    assert!(body == big_body(), "the body differs");
}
