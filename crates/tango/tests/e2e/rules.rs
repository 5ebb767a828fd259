//! Route header edits and redirects, over a plain HTTP/1.1 client (tango's engine) and
//! an HTTP/2 client by prior knowledge (hyper's server): the same answers on both, to
//! a pool of HTTP/1.1 backends and to one of HTTP/2 backends.

use crate::backend::Backend;
use crate::support::*;
use bytes::Bytes;
use http::response::Parts;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Which client a request goes over.
#[derive(Debug, Clone, Copy)]
enum Over {
    H1,
    H2c,
}

/// Send `GET path` with `host` and `headers` to tango over `over`; the response's
/// head and body.
async fn fetch(
    t: &Tango,
    over: Over,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (Parts, String) {
    let s = TcpStream::connect(t.addr()).await.unwrap();
    let uri = match over {
        Over::H1 => path.to_string(),
        Over::H2c => format!("http://{host}{path}"),
    };
    let mut req = http::Request::get(uri).header("host", host);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let resp = match over {
        Over::H1 => {
            let (mut c, conn) = hyper::client::conn::http1::handshake(TokioIo::new(s))
                .await
                .unwrap();
            tokio::spawn(conn);
            c.send_request(req).await
        }
        Over::H2c => {
            let (mut c, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(s))
                    .await
                    .unwrap();
            tokio::spawn(conn);
            c.send_request(req).await
        }
    };
    let (parts, body) = resp.expect("an answer").into_parts();
    let body = tokio::time::timeout(Duration::from_secs(20), body.collect())
        .await
        .expect("in time")
        .expect("a body")
        .to_bytes();
    (parts, String::from_utf8_lossy(&body).into_owned())
}

fn header<'a>(p: &'a Parts, name: &str) -> Option<&'a str> {
    p.headers.get(name).map(|v| v.to_str().unwrap())
}

const EDITS: &str = r#"
[[route]]
path_prefix = "/headers"
pool = "p"
[route.headers.request]
set = { x-forwarded-proto = "https", x-client = "$client_addr", x-id = "$request_id", x-host = "at $host" }
append = { x-tag = "tango" }
remove = ["x-debug"]
[route.headers.response]
set = { x-served-for = "$host", x-rid = "$request_id" }

[[route]]
path_prefix = "/dead"
pool = "dead"
headers = { response = { set = { x-edited = "yes" }, remove = ["content-type"] } }

[[route]]
pool = "p"
"#;

fn edits_config(b: &Backend) -> String {
    config("", &[("b", b.addr, 1)])
        + &format!(
            "\n[[pool]]\nname = \"dead\"\n[[pool.backend]]\naddress = \"{}\"\n",
            dead_addr()
        )
        + EDITS
}

#[tokio::test]
async fn header_edits_reach_the_backend_and_the_client() {
    let b = Backend::start("b").await;
    let t = Tango::start(&edits_config(&b));
    edits_apply(&t).await;
}

/// An HTTP/2 backend (prior knowledge): the request's fields as JSON, as
/// [`Backend`]'s `/headers`.
pub async fn h2_echo() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let svc = hyper::service::service_fn(|req| async move {
                let json = crate::backend::headers_json(&req);
                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from(json))))
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(s), svc),
            );
        }
    });
    (addr, task)
}

#[tokio::test]
async fn header_edits_apply_on_a_pool_of_http2_backends() {
    let (addr, _task) = h2_echo().await;
    let cfg = config("protocol = \"h2\"\n", &[("b", addr, 1)])
        + &format!(
            "\n[[pool]]\nname = \"dead\"\nprotocol = \"h2\"\n[[pool.backend]]\naddress = \"{}\"\n",
            dead_addr()
        )
        + EDITS;
    let t = Tango::start(&cfg);
    edits_apply(&t).await;
}

/// The edits of [`EDITS`] seen at the backend and by the client, over both clients.
async fn edits_apply(t: &Tango) {
    for over in [Over::H1, Over::H2c] {
        let sent = [("x-debug", "1"), ("x-tag", "client")];
        let (p, body) = fetch(t, over, "app.example:8080", "/headers", &sent).await;
        assert_eq!(p.status, 200, "{over:?}: {body}");
        let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
        let h = |n: &str| seen[n].as_str().map(str::to_string);
        assert_eq!(h("x-debug"), None, "{over:?}: {seen}");
        assert_eq!(h("x-tag").as_deref(), Some("client, tango"), "{over:?}");
        assert_eq!(h("x-forwarded-proto").as_deref(), Some("https"), "{over:?}");
        assert_eq!(h("x-client").as_deref(), Some("127.0.0.1"), "{over:?}");
        assert_eq!(h("x-host").as_deref(), Some("at app.example"), "{over:?}");
        let id = h("x-request-id").expect("an id");
        assert_eq!(id.len(), 32, "{over:?}: tango's own id");
        assert_eq!(h("x-id"), Some(id.clone()), "{over:?}");
        // And back to the client.
        assert_eq!(header(&p, "x-served-for"), Some("app.example"), "{over:?}");
        assert_eq!(header(&p, "x-rid"), Some(id.as_str()), "{over:?}");
        // A route without edits is untouched.
        let (p, _) = fetch(t, over, "app.example", "/", &sent).await;
        assert!(header(&p, "x-served-for").is_none(), "{over:?}");
        // tango's own answers take the route's response edits.
        let (p, _) = fetch(t, over, "app.example", "/dead", &[]).await;
        assert_eq!(p.status, 502, "{over:?}");
        assert_eq!(header(&p, "x-edited"), Some("yes"), "{over:?}");
        assert_eq!(header(&p, "content-type"), None, "{over:?}");
    }
    // A client's id is the id.
    let (p, body) = fetch(t, Over::H1, "a", "/headers", &[("x-request-id", "rid-7")]).await;
    assert!(body.contains("\"x-id\":\"rid-7\""), "{body}");
    assert_eq!(header(&p, "x-rid"), Some("rid-7"));
}

const REDIRECTS: &str = r#"
[[route]]
host = "old.example"
redirect = { host = "new.example", status = 301 }

[[route]]
path_prefix = "/secure"
redirect = { scheme = "https", status = 308 }
headers = { response = { set = { cache-control = "no-store" } } }

[[route]]
pool = "p"
"#;

#[tokio::test]
async fn redirects_are_answered_without_a_pool() {
    let b = Backend::start("b").await;
    let cfg = config("", &[("b", b.addr, 1)]) + REDIRECTS;
    let (t, _dir, log) = start_logged(&cfg, "json", &[]);
    for over in [Over::H1, Over::H2c] {
        let (p, _) = fetch(&t, over, "old.example:8080", "/a/b?c=d&e", &[]).await;
        assert_eq!(p.status, 301, "{over:?}");
        assert_eq!(
            header(&p, "location"),
            Some("http://new.example:8080/a/b?c=d&e"),
            "{over:?}"
        );
        let (p, body) = fetch(&t, over, "shop.example", "/secure/cart?id=9", &[]).await;
        assert_eq!(p.status, 308, "{over:?}");
        assert_eq!(
            header(&p, "location"),
            Some("https://shop.example/secure/cart?id=9"),
            "{over:?}"
        );
        assert_eq!(header(&p, "cache-control"), Some("no-store"), "{over:?}");
        assert_eq!(body, "", "{over:?}");
    }
    assert_eq!(b.hits(), 0, "a redirect touches no pool");
    // Counted apart from every pool.
    let metrics = get(&client(), &t.admin_url("/metrics")).await.1;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("tango_redirects_total"));
    assert_eq!(line, Some("tango_redirects_total 4"), "{metrics}");
    let (p, _) = fetch(&t, Over::H1, "shop.example", "/", &[]).await;
    assert_eq!(p.status, 200);
    assert_eq!(b.hits(), 1);
    // Logged with their status, in no pool.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if lines.len() >= 5 || std::time::Instant::now() > deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Sorted: connections on different workers may write their lines in either order.
    let mut got: Vec<(u64, Option<&str>)> = (lines.iter())
        .map(|v| (v["status"].as_u64().unwrap(), v["pool"].as_str()))
        .collect();
    got.sort();
    let want = [
        (200, Some("p")),
        (301, None),
        (301, None),
        (308, None),
        (308, None),
    ];
    assert_eq!(got, want, "{lines:?}");
}

/// A request with a body is redirected at once, without waiting for the body; the
/// connection then closes.
#[tokio::test]
async fn a_redirect_does_not_wait_for_a_body() {
    let b = Backend::start("b").await;
    let t = Tango::start(&(config("", &[("b", b.addr, 1)]) + REDIRECTS));
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(b"POST /secure/form HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 100000\r\n\r\nfirst bytes")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("an answer before the body")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(
        head.starts_with("http/1.1 308 permanent redirect\r\n"),
        "{head}"
    );
    assert!(
        head.contains("location: https://shop.example/secure/form\r\n"),
        "{head}"
    );
    assert!(head.contains("connection: close\r\n"), "{head}");
}

#[tokio::test]
async fn a_reload_changes_the_edits() {
    let b = Backend::start("b").await;
    let cfg = |v: &str| {
        config("", &[("b", b.addr, 1)])
            + &format!("\n[[route]]\npool = \"p\"\nheaders = {{ request = {{ set = {{ x-v = \"{v}\" }} }}, response = {{ set = {{ x-v = \"{v}\" }} }} }}\n")
    };
    let t = Tango::start(&cfg("1"));
    for (v, over) in [("1", Over::H1), ("1", Over::H2c)] {
        let (p, body) = fetch(&t, over, "a", "/headers", &[]).await;
        assert!(
            body.contains(&format!("\"x-v\":\"{v}\"")),
            "{over:?}: {body}"
        );
        assert_eq!(header(&p, "x-v"), Some(v));
    }
    t.write_config(&cfg("2"));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!(s, 200, "{v}");
    for over in [Over::H1, Over::H2c] {
        let (p, body) = fetch(&t, over, "a", "/headers", &[]).await;
        assert!(body.contains("\"x-v\":\"2\""), "{over:?}: {body}");
        assert_eq!(header(&p, "x-v"), Some("2"));
    }
}
