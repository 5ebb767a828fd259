//! The access log line of tango's own answer cut in the middle of its write carries
//! the body bytes that went before the cut, not 0.
//!
//! A client pipelines requests that tango answers itself and reads none, until tango's
//! write of one of them stalls; then it leaves. How much tango had handed to the
//! kernel by then is what its end's send queue and the client's receive queue hold
//! (`/proc/net/tcp`: the client read nothing), so where the cut answer was cut is
//! known to the byte. First come redirects with long `Location`s, which fill most of
//! the buffers in few answers, then `404`s (no route), one of which is cut. Where the
//! cut lands in an answer depends on how the kernel's buffers fill, so each try makes
//! its redirects a few bytes longer than the last, until one cut lands inside a
//! `404`'s body.

use crate::support::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const BOUND: Duration = Duration::from_secs(20);

/// The request answered `404` by tango itself: no route is for its host.
const NO_ROUTE: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

/// Redirects before the `404`s: with [`PATH`], about 2.4 MB of answers, less than the
/// buffers of a loopback connection whose client does not read hold.
const REDIRECTS: usize = 75;
/// The path length of all but the last redirect of a try.
const PATH: usize = 32_000;

/// A redirect request whose path is `len` bytes long: its answer's `Location` has it.
fn redirect(len: usize) -> Vec<u8> {
    let pad = "a".repeat(len - 2);
    format!("GET /r{pad} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()
}

/// The answer to `req` on a connection of its own: its length, and its head's.
async fn answer_len(t: &Tango, req: &[u8]) -> (usize, usize) {
    let mut s = TcpStream::connect(t.addr()).await.unwrap();
    s.write_all(req).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(h) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&got[..h]).to_ascii_lowercase();
                let body: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .expect("a length")
                    .parse()
                    .unwrap();
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

/// Pipeline `first` and then `404`s on a new connection, reading nothing, until tango
/// is stuck writing with requests still unread; then leave at once (a reset). Returns
/// the client's port and the bytes of answers tango had sent by then.
async fn stall_and_leave(t: &Tango, first: Vec<u8>) -> (u16, u64) {
    let sock = TcpSocket::new_v4().unwrap();
    // A small window, so the client's side holds little.
    sock.set_recv_buffer_size(4096).unwrap();
    let s = sock.connect(t.addr()).await.unwrap();
    let port = s.local_addr().unwrap().port();
    let mut pending = first;
    let flood: Vec<u8> = NO_ROUTE.repeat(200);
    let (mut last, mut same) = (None, 0);
    let deadline = Instant::now() + BOUND;
    // Polled: that a write makes no more progress shows nowhere but in the queues.
    let sent = loop {
        assert!(Instant::now() < deadline, "tango's writes never stalled");
        while let Ok(k) = s.try_write(&pending) {
            pending.drain(..k);
            if pending.is_empty() {
                pending.clone_from(&flood);
            }
        }
        let q = queues(t.addr().port(), port).expect("the connection in /proc/net/tcp");
        let (tx, rx, client_rx) = q;
        same = if last == Some(q) && tx > 0 && rx > 0 {
            same + 1
        } else {
            0
        };
        last = Some(q);
        if same == 2 {
            break tx + client_rx;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    s.set_zero_linger().unwrap();
    drop(s);
    (port, sent)
}

/// The access log's JSON lines, by client port, read as they are written.
struct Lines<'a> {
    path: &'a Path,
    /// The bytes of the file read so far (whole lines only).
    read: u64,
    by_port: HashMap<u64, Vec<Value>>,
}

impl Lines<'_> {
    /// The lines from client port `port`, once there are `count`.
    async fn of(&mut self, t: &Tango, port: u16, count: usize) -> &[Value] {
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

#[tokio::test]
async fn an_own_answer_cut_mid_body_is_logged_with_the_body_bytes_sent() {
    let cfg = config("", &[("a", dead_addr(), 1)])
        + "[[route]]\nhost = \"only.example\"\npool = \"p\"\n\n\
           [[route]]\npath_prefix = \"/r\"\nredirect = { scheme = \"https\" }\n";
    let (t, _dir, path) = start_logged(&cfg, "json", &[]);
    let (len, head) = answer_len(&t, NO_ROUTE).await;
    let body = (len - head) as u64;
    let (big, _) = answer_len(&t, &redirect(PATH)).await;
    let mut lines = Lines {
        path: &path,
        read: 0,
        by_port: HashMap::new(),
    };
    // A try cuts a body about one time in five (32 bytes of a 156-byte answer).
    for n in 0..40 {
        // The last redirect a few bytes longer each try.
        let last = redirect(PATH + 7 * n);
        let (last_len, _) = answer_len(&t, &last).await;
        let first = [redirect(PATH).repeat(REDIRECTS - 1), last].concat();
        let redirects = ((REDIRECTS - 1) * big + last_len) as u64;
        let (port, sent) = stall_and_leave(&t, first).await;
        // Cut within the redirects: no 404 was cut.
        let Some(after) = sent.checked_sub(redirects) else {
            continue;
        };
        let (whole, cut) = (after / len as u64, after % len as u64);
        let cut_body = cut.saturating_sub(head as u64);
        // The redirects, the whole 404s, the cut one.
        let count = REDIRECTS + whole as usize + 1;
        let got = lines.of(&t, port, count).await;
        assert_eq!(got.len(), count);
        let logged: u64 = got.iter().map(|v| v["bytes_out"].as_u64().unwrap()).sum();
        let last = &got[count - 1];
        assert_eq!(last["status"], 404, "{last}");
        assert_eq!(last["bytes_out"], cut_body, "cut {cut} of {len}: {last}");
        assert_eq!(logged, whole * body + cut_body);
        if cut_body > 0 {
            return;
        }
    }
    panic!("no cut landed inside a body");
}
