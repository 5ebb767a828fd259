//! A real HTTP/1.1 backend on loopback, port 0, whose behaviour tests can change:
//!   /            its name
//!   /headers     the request headers as JSON
//!   /sink        reads the body, answers with its length
//!   /source?n=N  streams N bytes
//!   /slow?ms=M   waits M ms, then its name
//!   /health      `health_status`
//!   /ws          WebSocket echo
//! Any path answers `fail_status` instead when that is non-zero, and every answer but
//! /health waits `delay_ms` first. `kill` closes the listener and every connection (a
//! crashed process); `start_at` brings a backend up again on the same address.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    pub state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
pub struct State {
    pub hits: AtomicU64,
    /// Connections accepted.
    pub conns: AtomicU64,
    pub health_hits: AtomicU64,
    pub fail_status: AtomicU16,
    pub health_status: AtomicU16,
    pub delay_ms: AtomicU64,
    /// Requests being answered now (health checks aside), and the most at once.
    pub active: AtomicU64,
    pub max_active: AtomicU64,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        Self::start_at(name, "127.0.0.1:0".parse().unwrap()).await
    }

    /// Start on `addr` (port 0: any free port).
    pub async fn start_at(name: &str, addr: SocketAddr) -> Backend {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state.health_status.store(200, Relaxed);
        let st = state.clone();
        let n = name.to_string();
        let task = tokio::spawn(async move {
            // Connections live in the accept task's set: aborting the task (kill, drop)
            // closes them all.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                while conns.try_join_next().is_some() {}
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                st.conns.fetch_add(1, Relaxed);
                let st = st.clone();
                let n = n.clone();
                conns.spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req| handle(req, n.clone(), st.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Backend {
            name: name.to_string(),
            addr,
            state,
            task,
        }
    }

    pub fn hits(&self) -> u64 {
        self.state.hits.load(Relaxed)
    }

    /// Crash: the listener and every open connection close at once.
    pub async fn kill(&mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

/// Counts a request out of `State::active` when its answer is made (or dropped).
struct Active<'a>(&'a AtomicU64);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed()
}

fn query(req: &Request<Incoming>, key: &str) -> Option<u64> {
    req.uri()
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{key}="))?.parse().ok())
}

async fn handle(
    mut req: Request<Incoming>,
    name: String,
    st: Arc<State>,
) -> Result<Response<Body>, Infallible> {
    if req.uri().path() == "/health" {
        st.health_hits.fetch_add(1, Relaxed);
        let mut r = Response::new(full("health\n"));
        *r.status_mut() = http::StatusCode::from_u16(st.health_status.load(Relaxed)).unwrap();
        return Ok(r);
    }
    st.hits.fetch_add(1, Relaxed);
    let now = st.active.fetch_add(1, Relaxed) + 1;
    st.max_active.fetch_max(now, Relaxed);
    let _active = Active(&st.active);
    let delay = st.delay_ms.load(Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let fail = st.fail_status.load(Relaxed);
    if fail != 0 {
        let mut r = Response::new(full(format!("{name} failing\n")));
        *r.status_mut() = http::StatusCode::from_u16(fail).unwrap();
        return Ok(r);
    }
    let r = match req.uri().path() {
        "/headers" => Response::new(full(headers_json(&req))),
        "/sink" => Response::new(full(drain(req.into_body()).await.to_string())),
        "/source" => source(query(&req, "n").unwrap_or(0)),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(query(&req, "ms").unwrap_or(1000))).await;
            Response::new(full(format!("{name}\n")))
        }
        "/ws" => websocket_echo(&mut req),
        _ => Response::new(full(format!("{name}\n"))),
    };
    Ok(r)
}

/// `/headers`: every request header as JSON, repeated ones joined by ", ".
pub fn headers_json(req: &Request<Incoming>) -> String {
    let map: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .keys()
        .map(|k| {
            let all: Vec<String> = req
                .headers()
                .get_all(k)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            (
                k.as_str().to_string(),
                serde_json::Value::String(all.join(", ")),
            )
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// `/sink`: read the whole request body; its length in bytes.
async fn drain(mut body: Incoming) -> u64 {
    let mut n = 0u64;
    while let Some(f) = body.frame().await {
        match f {
            Ok(f) => n += f.data_ref().map(|d| d.len() as u64).unwrap_or(0),
            Err(_) => break,
        }
    }
    n
}

/// `/source?n=`: a body of `n` bytes, streamed in 64 KiB frames.
fn source(n: u64) -> Response<Body> {
    let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
    let stream = futures_util::stream::unfold(n, move |left| {
        let chunk = chunk.clone();
        async move {
            if left == 0 {
                return None;
            }
            let take = left.min(chunk.len() as u64);
            Some((
                Ok::<_, Infallible>(Frame::data(chunk.slice(..take as usize))),
                left - take,
            ))
        }
    });
    Response::new(BodyExt::boxed(StreamBody::new(stream)))
}

/// `/ws`: accept the WebSocket upgrade and echo every text or binary message.
fn websocket_echo(req: &mut Request<Incoming>) -> Response<Body> {
    let key = req.headers().get("sec-websocket-key").cloned();
    let on = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(up) = on.await else { return };
        let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(up),
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            None,
        )
        .await;
        let (mut tx, mut rx) = ws.split();
        while let Some(Ok(m)) = rx.next().await {
            if (m.is_text() || m.is_binary()) && tx.send(m).await.is_err() {
                break;
            }
        }
    });
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(
        key.as_ref().map(|k| k.as_bytes()).unwrap_or(b""),
    );
    Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .body(full(Bytes::new()))
        .unwrap()
}
