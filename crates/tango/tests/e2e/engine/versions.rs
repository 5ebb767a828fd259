//! HTTP/1.0 clients of the engine: a keep-alive one keeps its connection (told so,
//! with a length), one that does not ask has it closed after the answer, and neither
//! gets a backend's interim (1xx) answers, which HTTP/1.1 clients get as they came.

use crate::scripted::{exchange, send, Scripted};
use crate::support::*;

/// A backend that answers every request with `103 Early Hints`, then `200` and `ok`.
async fn hinting() -> Scripted {
    Scripted::start(|_| {
        vec![send(
            b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
              HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        )]
    })
    .await
}

#[tokio::test]
async fn an_http_1_0_client_keeps_its_connection_only_when_it_asks() {
    let b = hinting().await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    // Two requests on one connection: the first asks to keep it, the second does not.
    let got = exchange(
        t.addr(),
        b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
    )
    .await
    .to_ascii_lowercase();
    let answers: Vec<&str> = got.split("http/1.0 200 ok\r\n").skip(1).collect();
    assert_eq!(answers.len(), 2, "{got}");
    assert!(answers[0].contains("connection: keep-alive\r\n"), "{got}");
    assert!(answers[0].contains("content-length: 2\r\n"), "{got}");
    assert!(!answers[1].contains("keep-alive"), "{got}");
    // The connection closed after the second (`exchange` reads to the end), and no
    // interim answer went to either.
    assert!(!got.contains(" 103 "), "{got}");
    assert_eq!(b.seen().len(), 2);
}

#[tokio::test]
async fn an_http_1_1_client_gets_the_interim_answers_first() {
    let b = hinting().await;
    let t = Tango::start(&config("", &[("a", b.addr, 1)]));
    let got = exchange(
        t.addr(),
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        got.starts_with("HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{got}"
    );
    assert!(got.ends_with("\r\n\r\nok"), "{got}");
}
