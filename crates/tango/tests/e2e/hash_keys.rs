//! Hash keys read through the proxy: each source (header, cookie, path, query) takes the
//! same value from a request whatever its form (a repeated field, the cookie among
//! others or in a second `Cookie` field, a repeated parameter, the absolute form) and on
//! every client path (tango's HTTP/1.1 engine and hyper's HTTP/2), so a key lands on one
//! backend; an absent or empty value is missing (`on_missing_key = "reject"`: 400).

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http_body_util::Full;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MISSING: &str = "the request lacks the value the pool hashes on";

/// One request written as `head` (its lines, without the end of the head) over a new
/// connection to tango's engine: status and body.
async fn raw(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{head}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b.trim());
    (status, body.to_string())
}

/// The same over HTTP/2 (hyper's side): `path` and header fields.
async fn h2(t: &Tango, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let mut req = http::Request::get(format!("http://{}{path}", t.addr()));
    for (k, v) in fields {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let mut h2 = h2c(t).await;
    let resp = h2.send_request(req).await.expect("an answer");
    let status = resp.status().as_u16();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8_lossy(&body).trim().to_string())
}

/// A pool of four hashing on `key`, refusing requests without it.
async fn pool(bs: &[Backend], key: &str) -> Tango {
    let spec: Vec<(&str, SocketAddr, u32)> =
        bs.iter().map(|b| (b.name.as_str(), b.addr, 1)).collect();
    Tango::start(&config(
        &format!("policy = \"maglev\"\nhash_key = {key}\non_missing_key = \"reject\""),
        &spec,
    ))
}

/// For 24 values `v`: the backend the first form sends `v` to, and every other form
/// (`{v}` replaced) and the HTTP/2 request must go to the same one.
async fn same_backend(t: &Tango, forms: &[&str], h2_form: (&str, Option<(&str, &str)>)) {
    let mut owners = std::collections::HashSet::new();
    for i in 0..24 {
        let v = format!("value-{i}");
        let (s, home) = raw(t.addr(), &forms[0].replace("{v}", &v)).await;
        assert_eq!(s, 200, "{}: {home}", forms[0]);
        owners.insert(home.clone());
        for f in &forms[1..] {
            let f = f.replace("{v}", &v);
            assert_eq!(raw(t.addr(), &f).await, (200, home.clone()), "{f}");
        }
        let path = h2_form.0.replace("{v}", &v);
        let field = h2_form.1.map(|(k, fv)| (k, fv.replace("{v}", &v)));
        let fields: Vec<(&str, &str)> = field.iter().map(|(k, fv)| (*k, fv.as_str())).collect();
        assert_eq!(
            h2(t, &path, &fields).await,
            (200, home),
            "HTTP/2 {path} {fields:?}"
        );
    }
    assert!(owners.len() >= 2, "24 values all on {owners:?}");
}

async fn missing(t: &Tango, heads: &[&str]) {
    for head in heads {
        assert_eq!(
            raw(t.addr(), head).await,
            (400, MISSING.to_string()),
            "{head}"
        );
    }
}

/// Four backends, a to d.
async fn backends() -> Vec<Backend> {
    let mut bs = Vec::new();
    for n in ["a", "b", "c", "d"] {
        bs.push(Backend::start(n).await);
    }
    bs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_key_is_the_first_field_of_that_name() {
    let bs = backends().await;
    let t = pool(&bs, "{ source = \"header\", name = \"X-User\" }").await;
    same_backend(
        &t,
        &[
            "GET /x HTTP/1.1\r\nHost: h\r\nX-User: {v}",
            // The first of two fields; any case; the value without its spaces.
            "GET /y HTTP/1.1\r\nHost: h\r\nx-user: {v}\r\nX-USER: other",
            "GET /x HTTP/1.1\r\nHost: h\r\nX-User:   {v}  ",
        ],
        ("/x", Some(("x-user", "{v}"))),
    )
    .await;
    missing(
        &t,
        &[
            "GET /x HTTP/1.1\r\nHost: h",
            "GET /x HTTP/1.1\r\nHost: h\r\nX-User:",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_key_is_the_first_cookie_of_that_name() {
    let bs = backends().await;
    let t = pool(&bs, "{ source = \"cookie\", name = \"sid\" }").await;
    same_backend(
        &t,
        &[
            "GET /x HTTP/1.1\r\nHost: h\r\nCookie: sid={v}",
            "GET /x HTTP/1.1\r\nHost: h\r\nCookie: xsid=no; sid={v}; b=2",
            "GET /x HTTP/1.1\r\nHost: h\r\nCookie: a=1\r\nCookie: sid={v}\r\nCookie: sid=later",
        ],
        ("/x", Some(("cookie", "a=1; sid={v}"))),
    )
    .await;
    missing(
        &t,
        &[
            "GET /x HTTP/1.1\r\nHost: h\r\nCookie: xsid=1",
            "GET /x HTTP/1.1\r\nHost: h\r\nCookie: sid=",
            "GET /x HTTP/1.1\r\nHost: h\r\nCookie: sid",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_key_is_the_first_parameter_of_that_name() {
    let bs = backends().await;
    let t = pool(&bs, "{ source = \"query\", name = \"u\" }").await;
    same_backend(
        &t,
        &[
            "GET /x?u={v} HTTP/1.1\r\nHost: h",
            "GET /y?a=1&u={v}&u=later HTTP/1.1\r\nHost: h",
            "GET http://h/x?u={v} HTTP/1.1\r\nHost: h",
        ],
        ("/x?u={v}", None),
    )
    .await;
    missing(
        &t,
        &[
            "GET /x?u= HTTP/1.1\r\nHost: h",
            "GET /x?uu=1 HTTP/1.1\r\nHost: h",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_key_is_the_path_without_its_query() {
    let bs = backends().await;
    let t = pool(&bs, "{ source = \"path\" }").await;
    same_backend(
        &t,
        &[
            "GET /{v} HTTP/1.1\r\nHost: h",
            "GET /{v}?q=1 HTTP/1.1\r\nHost: h",
            "GET http://h/{v} HTTP/1.1\r\nHost: h",
        ],
        ("/{v}?q=2", None),
    )
    .await;
    // An absolute-form target without a path asks for "/" (RFC 9112 3.2.2), as tango
    // forwards it and as HTTP/2 reads it: it is not a request without a path.
    let (s, root) = raw(t.addr(), "GET / HTTP/1.1\r\nHost: h").await;
    assert_eq!(s, 200, "{root}");
    assert_eq!(
        raw(t.addr(), "GET http://h HTTP/1.1\r\nHost: h").await,
        (200, root.clone())
    );
    assert_eq!(
        raw(t.addr(), "GET http://h?q=1 HTTP/1.1\r\nHost: h").await,
        (200, root.clone())
    );
    assert_eq!(h2(&t, "/", &[]).await, (200, root));
}
