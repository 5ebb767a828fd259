//! What tango handed to the kernel on a client connection whose client stopped
//! reading, to the byte, and the access log's lines by client port: the ground truth
//! the cut-answer tests compare the log's `bytes_out` with.
//!
//! A client that stops reading leaves what tango wrote in two queues, tango's send
//! queue and the client's receive queue (`/proc/net/tcp`). Once neither moves and
//! tango's socket is full (not writable as the kernel judges it for `poll`: the space
//! left in its send buffer is less than half of what it holds, which `ss` of iproute2
//! tells), tango is stuck in a write that nothing but the client can move on, and what
//! it has written is what the client read plus the two queues. Stable queues alone do
//! not show it: tango may be waiting for its backend then, and write more between the
//! look and the client's reset. Nor, quite, does a full socket: a write may end with
//! the socket full but for a little, and tango wait for its backend then; so the queues
//! must also stand still a while longer (`SETTLE`).

use crate::support::Tango;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

pub(super) const BOUND: Duration = Duration::from_secs(20);

/// How long queues that stood still stand still again before tango is taken for stuck.
const SETTLE: Duration = Duration::from_millis(250);

/// A connection to tango whose client side holds little (a 4 KiB receive buffer, so
/// a small window), and its port.
pub(super) async fn small_window(t: &Tango) -> (TcpStream, u16) {
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let s = sock.connect(t.addr()).await.unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

/// Leave at once: a reset, which fails tango's write in progress.
pub(super) fn reset(s: TcpStream) {
    s.set_zero_linger().unwrap();
    drop(s);
}

/// The answer to `req` on a connection of its own: its length, and its head's.
pub(super) async fn answer_len(t: &Tango, req: &[u8]) -> (usize, usize) {
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(req).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(h) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let body = content_length(&got[..h]);
                if got.len() >= h + 4 + body {
                    return (h + 4 + body, h + 4);
                }
            }
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0, "the answer ended early");
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(BOUND, read).await.expect("an answer")
}

/// The `content-length` of a response head.
pub(super) fn content_length(head: &[u8]) -> usize {
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("a length")
        .parse()
        .unwrap()
}

/// Of the connection between tango's `server` port and the client's `client` port:
/// tango's send queue, tango's receive queue and the client's receive queue.
fn queues(server: u16, client: u16) -> Option<(u64, u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let (mut ours, mut theirs) = (None, None);
    for line in table.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = |a: &str| u16::from_str_radix(a.rsplit(':').next().unwrap(), 16).unwrap();
        let (local, remote) = (port(f[1]), port(f[2]));
        let (tx, rx) = f[4].split_once(':').unwrap();
        let tx = u64::from_str_radix(tx, 16).unwrap();
        let rx = u64::from_str_radix(rx, 16).unwrap();
        if (local, remote) == (server, client) {
            ours = Some((tx, rx));
        } else if (local, remote) == (client, server) {
            theirs = Some(rx);
        }
    }
    let ((tx, rx), client_rx) = (ours?, theirs?);
    Some((tx, rx, client_rx))
}

/// Whether tango's socket to client port `client` is full: the room left in its send
/// buffer (`skmem`'s `tb` less `w`, the bytes it holds) is less than half of what it
/// holds (the kernel's `sk_stream_wspace` against `sk_stream_min_wspace`), so a write
/// waiting for room waits on. (The buffer may grow after the write stopped: its size
/// alone is not the mark.)
fn full(server: u16, client: u16) -> bool {
    let filter = format!("( sport = :{server} and dport = :{client} )");
    let out = std::process::Command::new("ss")
        .args(["-tmnH", "state", "established", &filter])
        .output()
        .expect("`ss` (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> Option<u64> {
        let skmem = text.split("skmem:(").nth(1)?.split(')').next()?;
        let v = skmem.split(',').find_map(|f| f.strip_prefix(name))?;
        v.parse().ok()
    };
    matches!((field("w"), field("tb")), (Some(w), Some(tb)) if tb.saturating_sub(w) < w / 2)
}

/// Wait until tango is stuck writing to client port `client` (with requests of the
/// client's still unread, when `unread`), calling `feed` before each look (to keep a
/// pipeline full). Returns the bytes tango had written and the client not read: its
/// send queue and the client's receive queue.
pub(super) async fn stalled(t: &Tango, client: u16, unread: bool, mut feed: impl FnMut()) -> u64 {
    let (mut last, mut same) = (None, 0);
    let deadline = Instant::now() + BOUND;
    // Polled: that a write makes no more progress shows nowhere but in the queues.
    loop {
        assert!(Instant::now() < deadline, "tango's writes never stalled");
        feed();
        let q = queues(t.addr().port(), client).expect("the connection in /proc/net/tcp");
        let (tx, rx, client_rx) = q;
        same = if last == Some(q) && tx > 0 && (rx > 0 || !unread) {
            same + 1
        } else {
            0
        };
        last = Some(q);
        if same >= 2 && full(t.addr().port(), client) {
            // A pause of the backend's (an HTTP/2 window update late on a busy
            // machine) can still both, after a write that left the socket full but for
            // a little: the queues must stand still a while longer.
            tokio::time::sleep(SETTLE).await;
            if queues(t.addr().port(), client) == Some(q) {
                return tx + client_rx;
            }
            same = 0;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Pipeline `first` and then `then` over and over on `s`, reading nothing, until
/// tango is stuck writing with requests still unread. Returns the bytes of answers
/// tango had written by then.
pub(super) async fn pipeline_until_stalled(
    t: &Tango,
    s: &TcpStream,
    first: Vec<u8>,
    then: &[u8],
) -> u64 {
    let port = s.local_addr().unwrap().port();
    let mut pending = first;
    let feed = || {
        while let Ok(k) = s.try_write(&pending) {
            pending.drain(..k);
            if pending.is_empty() {
                pending.extend_from_slice(then);
            }
        }
    };
    stalled(t, port, true, feed).await
}

/// The access log's JSON lines, by client port, read as they are written.
pub(super) struct Lines<'a> {
    path: &'a Path,
    /// The bytes of the file read so far (whole lines only).
    read: u64,
    by_port: HashMap<u64, Vec<Value>>,
}

impl<'a> Lines<'a> {
    pub(super) fn new(path: &'a Path) -> Self {
        Lines {
            path,
            read: 0,
            by_port: HashMap::new(),
        }
    }

    /// The lines from client port `port`, once there are `count`.
    pub(super) async fn of(&mut self, t: &Tango, port: u16, count: usize) -> &[Value] {
        let deadline = Instant::now() + BOUND;
        let port = u64::from(port);
        while self.by_port.get(&port).map_or(0, Vec::len) < count {
            assert!(Instant::now() < deadline, "lines missing\n{}", t.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut f = std::fs::File::open(self.path).unwrap();
            f.seek(SeekFrom::Start(self.read)).unwrap();
            let mut text = Vec::new();
            f.read_to_end(&mut text).unwrap();
            let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            self.read += whole as u64;
            for l in text[..whole]
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
            {
                let v: Value = serde_json::from_slice(l).expect("a JSON line");
                let p = v["client_port"].as_u64().unwrap();
                self.by_port.entry(p).or_default().push(v);
            }
        }
        &self.by_port[&port]
    }
}
