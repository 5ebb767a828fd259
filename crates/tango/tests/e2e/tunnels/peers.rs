//! Both ends of the tunnels under test: a raw backend that opens them (or answers
//! otherwise, as a request asks), and the clients of each path into tango: the engine
//! and TLS HTTP/1.1 (an upgrade or CONNECT written by hand), h2c and TLS HTTP/2
//! (CONNECT with hyper's client).

use crate::support::*;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// An upgrade the backend accepts, and a CONNECT it accepts, over HTTP/1.1.
pub const UPGRADE: &str =
    "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n";
pub const CONNECT: &str = "CONNECT echo.test:443 HTTP/1.1\r\nHost: echo.test:443\r\n\r\n";

/// Bounds each wait; the events awaited come much sooner.
pub const BOUND: Duration = Duration::from_secs(10);

/// A byte stream both ways: a socket, a TLS session or an HTTP/2 stream.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

pub type Io = Box<dyn Duplex>;

/// The backend. On each connection it answers requests until one opens a tunnel:
///
/// - `GET /ws` asking to upgrade, and `GET /unasked` whether asked or not: `101`;
/// - `CONNECT echo.test:443`: `200`;
/// - `GET /refuse`: `200` with the body `not upgrading\n` (an upgrade declined);
/// - anything else: `200` with the body `plain\n`.
///
/// In a tunnel it sends `hello\n` (with the head, in one write), then echoes each read
/// prefixed by `>`; when its peer's side ends (EOF) it sends `eof after N\n` (the
/// bytes it got) and closes. A read of just `fin` is echoed, and then the backend
/// half-closes its own side: it reads on until its peer's end, and tells `heard` how
/// many bytes came after the `fin`.
pub struct Backend {
    pub addr: SocketAddr,
    pub heard: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn backend() -> Backend {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve(s, log.clone()));
        }
    });
    Backend { addr, heard, task }
}

async fn serve(mut s: TcpStream, heard: Arc<Mutex<Vec<String>>>) {
    loop {
        let Some(head) = read_head(&mut s).await else {
            return;
        };
        let line = head.lines().next().unwrap_or_default().to_string();
        let asks = head.to_ascii_lowercase().contains("\r\nupgrade:");
        let answer: &[u8] = if line.starts_with("CONNECT echo.test:443 ") {
            b"HTTP/1.1 200 Connection established\r\n\r\nhello\n"
        } else if line.starts_with("GET /unasked ") || (line.starts_with("GET /ws ") && asks) {
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\nhello\n"
        } else if line.starts_with("GET /refuse ") {
            b"HTTP/1.1 200 OK\r\ncontent-length: 14\r\n\r\nnot upgrading\n"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nplain\n"
        };
        if s.write_all(answer).await.is_err() {
            return;
        }
        if answer.ends_with(b"hello\n") {
            return echo(s, heard).await;
        }
    }
}

/// A request head, byte by byte (no request here has a body); `None` at the end.
async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut b).await.unwrap_or(0) == 0 {
            return None;
        }
        head.push(b[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn echo(mut s: TcpStream, heard: Arc<Mutex<Vec<String>>>) {
    let mut got = 0;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf).await {
            Ok(0) => {
                let bye = format!("eof after {got}\n");
                let _ = s.write_all(bye.as_bytes()).await;
                let _ = s.shutdown().await;
                return;
            }
            Ok(n) => {
                got += n;
                let echo = [&b">"[..], &buf[..n]].concat();
                if s.write_all(&echo).await.is_err() {
                    return;
                }
                if &buf[..n] == b"fin" {
                    return half_closed(s, heard).await;
                }
            }
            Err(_) => return,
        }
    }
}

/// Its own side closed: what still comes, counted until the peer's end.
async fn half_closed(mut s: TcpStream, heard: Arc<Mutex<Vec<String>>>) {
    let _ = s.shutdown().await;
    let mut after = 0;
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = s.read(&mut buf).await {
        after += n;
    }
    heard.lock().unwrap().push(format!("after fin: {after}"));
}

/// The ways into tango.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Plain HTTP/1.1: tango's own engine.
    Engine,
    /// HTTP/1.1 over TLS: hyper's server.
    TlsH1,
    /// HTTP/2 by prior knowledge on the plain listener: hyper's server.
    H2c,
    /// HTTP/2 over TLS: hyper's server.
    TlsH2,
}

impl Path {
    pub const ALL: [Path; 4] = [Path::Engine, Path::TlsH1, Path::H2c, Path::TlsH2];

    pub fn h2(self) -> bool {
        matches!(self, Path::H2c | Path::TlsH2)
    }

    /// It goes to [`Front`]'s TLS instance.
    pub fn tls(self) -> bool {
        matches!(self, Path::TlsH1 | Path::TlsH2)
    }
}

/// What opens a tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opener {
    /// `GET /ws` with `Upgrade` (a WebSocket's way; HTTP/1.1 only).
    Upgrade,
    Connect,
}

/// Every path with every opener it can carry.
pub fn every_tunnel() -> Vec<(Path, Opener)> {
    let mut v = Vec::new();
    for p in Path::ALL {
        if !p.h2() {
            v.push((p, Opener::Upgrade));
        }
        v.push((p, Opener::Connect));
    }
    v
}

/// tango in front of the backend twice: with a plain listener (the engine, h2c) and
/// with a TLS one (HTTP/1.1 and HTTP/2 by ALPN). Two processes, since listeners on
/// port 0 are told apart by their configured address.
pub struct Front {
    pub plain: Tango,
    pub tls: Tango,
    pub ck: rcgen::CertifiedKey,
    _dir: tempfile::TempDir,
    /// Where the access logs are, when they are on.
    _logs: Option<tempfile::TempDir>,
}

/// The configuration of one of [`Front`]'s instances: its listener with
/// `listener_extra` (and `tls`, when given), its pool with `pool_extra`. The reload
/// guard is off: a reload test adds a backend, which moves the split.
pub fn front_config(
    backend: SocketAddr,
    tls: Option<(&std::path::Path, &std::path::Path)>,
    listener_extra: &str,
    pool_extra: &str,
) -> String {
    let tls = tls.map_or(String::new(), |(cert, key)| {
        format!(
            "tls = {{ cert = \"{}\", key = \"{}\" }}\n",
            cert.display(),
            key.display()
        )
    });
    format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n\
         [[listener]]\nname = \"main\"\nlisten = \"127.0.0.1:0\"\n{tls}{listener_extra}\n\n\
         [[pool]]\nname = \"p\"\nmax_attempts = 1\n{pool_extra}\n\n\
         [[pool.backend]]\nname = \"b\"\naddress = \"{backend}\"\n\n\
         [guard]\nenabled = false\n"
    )
}

impl Front {
    pub fn start(backend: SocketAddr, listener_extra: &str, pool_extra: &str) -> Front {
        Self::start_with(backend, listener_extra, pool_extra, &[])
    }

    pub fn start_with(
        backend: SocketAddr,
        listener_extra: &str,
        pool_extra: &str,
        args: &[&str],
    ) -> Front {
        Self::start_each(backend, listener_extra, pool_extra, [args, args])
    }

    /// [`Front::start`], each instance writing its access log as JSON to a file of its
    /// own: the plain instance's, then the TLS one's.
    pub fn start_logged(backend: SocketAddr) -> (Front, [std::path::PathBuf; 2]) {
        let dir = tempfile::tempdir().unwrap();
        let logs = ["plain.log", "tls.log"].map(|n| dir.path().join(n));
        let args = logs.each_ref().map(|p| {
            [
                "--access-log",
                p.to_str().unwrap(),
                "--access-log-format",
                "json",
            ]
        });
        let mut f = Self::start_each(backend, "", "", [&args[0], &args[1]]);
        f._logs = Some(dir);
        (f, logs)
    }

    /// The two instances, each with its own extra arguments.
    fn start_each(
        backend: SocketAddr,
        listener_extra: &str,
        pool_extra: &str,
        [plain_args, tls_args]: [&[&str]; 2],
    ) -> Front {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let plain = front_config(backend, None, listener_extra, pool_extra);
        let tls = front_config(backend, Some((&cert, &key)), listener_extra, pool_extra);
        Front {
            plain: Tango::start_with(&plain, plain_args),
            tls: Tango::start_with(&tls, tls_args),
            ck,
            _dir: dir,
            _logs: None,
        }
    }

    /// Both instances.
    pub fn both(&mut self) -> [&mut Tango; 2] {
        [&mut self.plain, &mut self.tls]
    }

    /// A new connection by `path` (for HTTP/2, before the client's preface).
    pub async fn connect(&self, path: Path) -> Io {
        let alpn: &[u8] = if path.h2() { b"h2" } else { b"http/1.1" };
        match path {
            Path::Engine | Path::H2c => {
                Box::new(TcpStream::connect(self.plain.addr()).await.unwrap())
            }
            Path::TlsH1 | Path::TlsH2 => {
                let addr = self.tls.addr();
                Box::new(crate::protocols::tls_connect_to(addr, &self.ck, alpn).await)
            }
        }
    }

    /// Open a tunnel by `path` with `opener`, and see it through: the backend's
    /// `hello`, and an echo.
    pub async fn open(&self, path: Path, opener: Opener) -> Io {
        let io = self.connect(path).await;
        let mut io = if path.h2() {
            assert_eq!(opener, Opener::Connect, "HTTP/2 carries no upgrade");
            let (status, up) = crate::connect::hyper_connect(io, true, "echo.test:443").await;
            assert_eq!(status, 200, "{path:?}");
            Box::new(hyper_util::rt::TokioIo::new(up.unwrap())) as Io
        } else {
            let mut io = io;
            let req = match opener {
                Opener::Upgrade => UPGRADE,
                Opener::Connect => CONNECT,
            };
            let (status, _) = h1_request(&mut io, req).await;
            let want = if opener == Opener::Upgrade { 101 } else { 200 };
            assert_eq!(status, want, "{path:?} {opener:?}");
            io
        };
        expect(&mut io, b"hello\n").await;
        ping(&mut io, "ping").await;
        io
    }

    /// An HTTP/1.1 connection by `path` (the engine's or TLS), for requests written
    /// by hand.
    pub async fn h1(&self, path: Path) -> Io {
        assert!(!path.h2());
        self.connect(path).await
    }

    /// GET `target` over a new HTTP/2 connection by `path`: the status and the body.
    pub async fn h2_get(&self, path: Path, target: &str) -> (u16, String) {
        use http_body_util::BodyExt;
        assert!(path.h2());
        let io = hyper_util::rt::TokioIo::new(self.connect(path).await);
        let exec = hyper_util::rt::TokioExecutor::new();
        let (mut tx, conn) = hyper::client::conn::http2::handshake(exec, io)
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get(format!("http://localhost{target}"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let resp = tokio::time::timeout(BOUND, tx.send_request(req))
            .await
            .expect("an answer in time")
            .expect("an answer");
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Write `req` and read the response head: its status and the head.
pub async fn h1_request(io: &mut Io, req: &str) -> (u16, String) {
    io.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(BOUND, io.read(&mut b))
            .await
            .expect("a response head in time")
            .unwrap();
        assert_eq!(
            n,
            1,
            "closed in the head: {}",
            String::from_utf8_lossy(&head)
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head[9..12].parse().unwrap();
    (status, head)
}

/// The body of the response whose `head` was read, by its content-length.
pub async fn h1_body(io: &mut Io, head: &str) -> String {
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    let mut body = vec![0u8; len];
    tokio::time::timeout(BOUND, io.read_exact(&mut body))
        .await
        .expect("the body in time")
        .unwrap();
    String::from_utf8(body).unwrap()
}

/// Read exactly `want`.
pub async fn expect(io: &mut Io, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    tokio::time::timeout(BOUND, io.read_exact(&mut got))
        .await
        .expect("bytes through the tunnel in time")
        .expect("the tunnel open");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

/// Send `text` and read its echo.
pub async fn ping(io: &mut Io, text: &str) {
    io.write_all(text.as_bytes()).await.unwrap();
    io.flush().await.unwrap();
    expect(io, format!(">{text}").as_bytes()).await;
}

/// Whether the tunnel ends (the end of the stream, or an error) within `within`, with
/// nothing more to read before that.
pub async fn ends_within(io: &mut Io, within: Duration) -> bool {
    let mut rest = Vec::new();
    match tokio::time::timeout(within, io.read_to_end(&mut rest)).await {
        Ok(_) => {
            assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
            true
        }
        Err(_) => false,
    }
}

/// A tunnel kept in use by its own task: a ping (and its echo) every `every` from the
/// moment it is handed over, whatever the test does meanwhile. Opening the next tunnels
/// takes the test hundreds of milliseconds on a loaded machine (TLS and HTTP/2
/// handshakes), longer than a short idle timeout: pings made between those steps would
/// leave a tunnel opened early idle for that long.
pub struct Busy {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<Result<Io, String>>,
}

impl Busy {
    pub fn start(mut io: Io, every: Duration, what: String) -> Busy {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let mut pings = 0;
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(every).await;
                let mut echo = [0u8; 11];
                let r = async {
                    io.write_all(b"still here").await?;
                    io.flush().await?;
                    io.read_exact(&mut echo).await
                };
                match tokio::time::timeout(BOUND, r).await {
                    Ok(Ok(_)) if &echo == b">still here" => pings += 1,
                    Ok(Ok(_)) => return Err(format!("{what}: echoed {echo:?}")),
                    Ok(Err(e)) => {
                        return Err(format!("{what}: closed in use, after {pings} pings: {e}"))
                    }
                    Err(_) => return Err(format!("{what}: no echo within {BOUND:?}")),
                }
            }
            Ok(io)
        });
        Busy { stop, task }
    }

    /// Stop pinging; the tunnel, still open, or why it is not.
    pub async fn stop(self) -> Result<Io, String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.task.await.unwrap()
    }
}
