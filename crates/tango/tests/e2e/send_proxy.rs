//! The PROXY protocol sent to backends: each new upstream connection begins with a
//! header carrying the client's address (parsed here with tango-core's parser), before
//! TLS for a TLS pool; a connection that carries one client's address serves only that
//! client's requests.

use crate::support::*;
use crate::upstream_tls::{server_config, Ca};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tango_core::proxy_protocol::{parse, Header, Parsed, MAX_HEADER};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A backend on a raw TCP listener that reads a PROXY header off each connection, then
/// serves HTTP/1.1 (over TLS when given a configuration) answering with the header's
/// source address. It keeps each connection's header.
struct ProxyBackend {
    addr: SocketAddr,
    headers: Arc<Mutex<Vec<Header>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ProxyBackend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Read exactly one PROXY header off `s` (peeking, so nothing after it is taken).
async fn read_header(s: &mut TcpStream) -> Header {
    let mut buf = vec![0u8; MAX_HEADER];
    loop {
        let n = s.peek(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a PROXY header");
        match parse(&buf[..n]).expect("a valid PROXY header") {
            Parsed::Complete(h, used) => {
                let mut taken = vec![0u8; used];
                s.read_exact(&mut taken).await.unwrap();
                return h;
            }
            Parsed::Incomplete => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

impl ProxyBackend {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> ProxyBackend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let headers = Arc::new(Mutex::new(Vec::new()));
        let seen = headers.clone();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, tls) = (seen.clone(), tls.clone());
                conns.spawn(async move {
                    let h = read_header(&mut tcp).await;
                    seen.lock().unwrap().push(h);
                    let source = h.source.map(|a| a.to_string()).unwrap_or_default();
                    let svc = hyper::service::service_fn(move |_req| {
                        let body = Bytes::from(source.clone());
                        async move {
                            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(body)))
                        }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                        }
                        Some(cfg) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                            if let Ok(s) = acceptor.accept(tcp).await {
                                let _ = http.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                    }
                });
            }
        });
        ProxyBackend {
            addr,
            headers,
            task,
        }
    }

    fn headers(&self) -> Vec<Header> {
        self.headers.lock().unwrap().clone()
    }
}

/// A client connection to tango, and the address tango sees it from.
struct Client1 {
    local: SocketAddr,
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Client1 {
    async fn connect(t: &Tango) -> Client1 {
        let tcp = TcpStream::connect(t.addr()).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        Client1 { local, send }
    }

    /// GET / on this connection: what the backend said the header's source was.
    async fn get(&mut self) -> String {
        let req = http::Request::get("/")
            .header("host", "x")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(20), self.send.send_request(req))
            .await
            .expect("in time")
            .expect("an answer");
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&body).into_owned()
    }
}

/// Two clients of the engine, then one over h2c: each backend connection is one
/// client's, and a client's later requests reuse its own.
async fn each_client_gets_its_own_connections(version: &str) {
    let b = ProxyBackend::start(None).await;
    let pool = format!("send_proxy_protocol = \"{version}\"");
    let t = Tango::start(&config(&pool, &[("b", b.addr, 1)]));
    let mut one = Client1::connect(&t).await;
    assert_eq!(one.get().await, one.local.to_string());
    assert_eq!(one.get().await, one.local.to_string());
    assert_eq!(
        b.headers().len(),
        1,
        "the first client's requests share a connection"
    );
    let mut two = Client1::connect(&t).await;
    assert_eq!(two.get().await, two.local.to_string());
    assert_eq!(one.get().await, one.local.to_string());
    assert_eq!(two.get().await, two.local.to_string());
    let headers = b.headers();
    assert_eq!(headers.len(), 2, "one connection per client: {headers:?}");
    for (h, c) in headers.iter().zip([&one, &two]) {
        assert_eq!(h.source, Some(c.local));
        assert_eq!(h.destination, Some(t.addr()));
        assert_eq!(format!("{:?}", h.version).to_lowercase(), version);
    }

    // An HTTP/2 client goes through hyper's server and the same exchange.
    let tcp = TcpStream::connect(t.addr()).await.unwrap();
    let local = tcp.local_addr().unwrap();
    let (mut h2, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    for _ in 0..2 {
        let req = http::Request::get(format!("http://{}/", t.addr()))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let resp = h2.send_request(req).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, local.to_string());
    }
    let headers = b.headers();
    assert_eq!(headers.len(), 3, "{headers:?}");
    assert_eq!(headers[2].source, Some(local));
}

#[tokio::test]
async fn v1_headers_carry_each_clients_address() {
    each_client_gets_its_own_connections("v1").await;
}

#[tokio::test]
async fn v2_headers_carry_each_clients_address() {
    each_client_gets_its_own_connections("v2").await;
}

#[tokio::test]
async fn the_header_goes_before_the_tls_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let b = ProxyBackend::start(Some(server_config(
        &ca.issue(&["backend.test"], false),
        None,
    )))
    .await;
    let pool = format!(
        "send_proxy_protocol = \"v2\"\ntls = {{ ca = \"{}\", server_name = \"backend.test\" }}",
        ca.write(dir.path(), "ca")
    );
    let t = Tango::start(&config(&pool, &[("b", b.addr, 1)]));
    let mut one = Client1::connect(&t).await;
    assert_eq!(one.get().await, one.local.to_string());
    assert_eq!(one.get().await, one.local.to_string());
    let mut two = Client1::connect(&t).await;
    assert_eq!(two.get().await, two.local.to_string());
    assert_eq!(b.headers().len(), 2);
}
