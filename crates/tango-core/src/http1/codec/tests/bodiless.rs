//! Answers that have no body, and when their connection may carry another request: not
//! when a body may follow anyway (a `204` that announces one, which it must not); an
//! answer to HEAD or a `304` announcing the representation's length does.

use super::*;

#[test]
fn a_204_that_announces_a_body_ends_its_connection_and_head_and_304_keep_theirs() {
    let plain = RequestFacts::default();
    let head = RequestFacts {
        is_head: true,
        ..plain
    };
    let ka = |raw: &[u8], facts| resp(raw, facts).unwrap().unwrap().keep_alive;
    let cases: [(&[u8], RequestFacts, bool); 9] = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", head, true),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            head,
            true,
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", head, true),
        (b"HTTP/1.1 200 OK\r\n\r\n", head, true),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            plain,
            false,
        ),
        (
            b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n",
            head,
            false,
        ),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            plain,
            true,
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            plain,
            true,
        ),
        (
            b"HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n",
            head,
            true,
        ),
    ];
    for (raw, facts, want) in cases {
        assert_eq!(ka(raw, facts), want, "{}", String::from_utf8_lossy(raw));
    }
}
