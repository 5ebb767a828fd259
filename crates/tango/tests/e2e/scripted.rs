//! A raw HTTP/1.1 backend on loopback whose answers a test writes byte for byte, per
//! request: for probing how tango reads what a backend sends (framing, interim answers,
//! closes in the middle) and when it reuses a backend's connection. It records the
//! request line of every request, with the connection it came on and its place there.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the backend saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The connection's number, from 1, in the order they were accepted.
    pub conn: u64,
    /// The request's place on its connection, from 1.
    pub nth: u64,
    /// Its request line.
    pub line: String,
}

impl Seen {
    /// The request-target.
    pub fn path(&self) -> &str {
        self.line.split(' ').nth(1).unwrap_or("")
    }
}

/// What the backend does in answer to a request, in order.
#[derive(Debug, Clone)]
pub enum Step {
    Send(Vec<u8>),
    Pause(Duration),
    /// Close the connection (a reset when the peer's bytes are left unread).
    Close,
}

/// `Step::Send` of a byte string.
pub fn send(bytes: &[u8]) -> Step {
    Step::Send(bytes.to_vec())
}

type Script = Arc<dyn Fn(&Seen) -> Vec<Step> + Send + Sync>;

pub struct Scripted {
    pub addr: SocketAddr,
    conns: Arc<AtomicU64>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    /// A backend answering each request as `script` says (after the steps, the
    /// connection waits for its next request unless a step closed it).
    pub async fn start(script: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let conns = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script: Script = Arc::new(script);
        let (counted, kept) = (conns.clone(), seen.clone());
        let task = tokio::spawn(async move {
            let mut open = tokio::task::JoinSet::new();
            while let Ok((s, _)) = l.accept().await {
                let conn = counted.fetch_add(1, Ordering::Relaxed) + 1;
                open.spawn(serve(s, conn, script.clone(), kept.clone()));
            }
        });
        Scripted {
            addr,
            conns,
            seen,
            task,
        }
    }

    /// Connections accepted so far.
    pub fn conns(&self) -> u64 {
        self.conns.load(Ordering::Relaxed)
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(mut s: TcpStream, conn: u64, script: Script, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    for nth in 1.. {
        let Some(line) = request(&mut s, &mut buf).await else {
            return;
        };
        let this = Seen { conn, nth, line };
        seen.lock().unwrap().push(this.clone());
        for step in script(&this) {
            match step {
                Step::Send(b) => {
                    if s.write_all(&b).await.is_err() {
                        return;
                    }
                }
                Step::Pause(d) => tokio::time::sleep(d).await,
                Step::Close => return,
            }
        }
    }
}

/// The next request's line; its head and its body (by Content-Length) are taken out
/// of `buf`. `None` when the connection ends first.
async fn request(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let line = format!(
                "{} {} HTTP/1.{}",
                req.method.unwrap_or(""),
                req.path.unwrap_or(""),
                req.version.unwrap_or(1)
            );
            let len: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < n + len {
                fill(s, buf).await?;
            }
            buf.drain(..n + len);
            return Some(line);
        }
        fill(s, buf).await?;
    }
}

async fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match s.read(&mut chunk).await {
        Ok(n) if n > 0 => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
        _ => None,
    }
}

/// Send `request` on a new connection to `addr`, and read until the connection ends
/// (or 10 s pass): everything tango sent back.
pub async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    read_to_end(&mut s).await
}

/// Read from `s` until it ends (or 10 s pass).
pub async fn read_to_end(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 16384];
        while let Ok(n @ 1..) = s.read(&mut chunk).await {
            out.extend_from_slice(&chunk[..n]);
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

/// tango with `config` on one worker, so every client connection meets the same idle
/// connections to a backend.
pub fn one_worker(config: &str) -> crate::support::Tango {
    crate::support::Tango::start_with(config, &["--workers", "1"])
}
