//! The access log line of tango's own answer cut in the middle of its write carries
//! the body bytes that went before the cut, not 0: cut by the client leaving, or by the
//! end of the drain's grace period.
//!
//! A client pipelines requests that tango answers itself and reads none, until tango's
//! write of one of them stalls; then it leaves (or tango shuts down). How much tango
//! had handed to the kernel by then is known to the byte (`kernel`). First come
//! redirects with long `Location`s, which fill most of the buffers in few answers, then
//! `404`s (no route), one of which is cut. Where the cut lands in an answer depends on
//! how the kernel's buffers fill, so each try makes its redirects a few bytes longer
//! than the last, until one cut lands inside a `404`'s body.

use super::kernel::{self, answer_len, Lines};
use crate::support::*;
use serde_json::Value;
use tokio::net::TcpStream;

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

/// tango answering redirects under `/r` and `404` to every other request, logging in
/// JSON, with `args`.
fn start(args: &[&str]) -> (Tango, tempfile::TempDir, std::path::PathBuf) {
    let cfg = config("", &[("a", dead_addr(), 1)])
        + "[[route]]\nhost = \"only.example\"\npool = \"p\"\n\n\
           [[route]]\npath_prefix = \"/r\"\nredirect = { scheme = \"https\" }\n";
    start_logged(&cfg, "json", args)
}

/// What is known of the answers tango writes itself.
struct Sizes {
    /// A `404`'s length and its head's.
    len: usize,
    head: usize,
    /// A redirect's length, with [`PATH`].
    big: usize,
}

impl Sizes {
    async fn of(t: &Tango) -> Sizes {
        let (len, head) = answer_len(t, NO_ROUTE).await;
        let (big, _) = answer_len(t, &redirect(PATH)).await;
        Sizes { len, head, big }
    }
}

/// A connection of try `n`, `count` redirects then `404`s, stuck in tango's write of
/// an answer: the connection, its port, and where in which answer the cut falls
/// (`None`: within the redirects).
async fn stuck(t: &Tango, z: &Sizes, n: usize, count: usize) -> (TcpStream, u16, Answers) {
    // The last redirect a few bytes longer each try.
    let last = redirect(PATH + 7 * n);
    let (last_len, _) = answer_len(t, &last).await;
    let first = [redirect(PATH).repeat(count - 1), last].concat();
    let (s, port) = kernel::small_window(t).await;
    let sent = kernel::pipeline_until_stalled(t, &s, first, &NO_ROUTE.repeat(200)).await;
    let a = Answers {
        count,
        redirects: ((count - 1) * z.big + last_len) as u64,
        sent,
    };
    (s, port, a)
}

/// The answers of a stuck connection.
struct Answers {
    /// The redirects, and their bytes.
    count: usize,
    redirects: u64,
    /// The bytes tango had written.
    sent: u64,
}

impl Answers {
    /// Where the cut falls (`None`: within the redirects).
    fn cut(&self, z: &Sizes) -> Option<Cut> {
        self.sent.checked_sub(self.redirects).map(|after| {
            let (whole, cut) = (after / z.len as u64, after % z.len as u64);
            Cut {
                redirects: self.count,
                whole,
                cut,
                body: cut.saturating_sub(z.head as u64),
            }
        })
    }
}

/// Where the cut fell, after the redirects.
struct Cut {
    /// The redirects before the `404`s.
    redirects: usize,
    /// `404`s written whole.
    whole: u64,
    /// The bytes of the cut one written, and of its body.
    cut: u64,
    body: u64,
}

impl Cut {
    /// Check the lines of the connection from `port`: the redirects, the whole `404`s
    /// and the cut one, which says the body bytes it had sent.
    async fn check(&self, t: &Tango, lines: &mut Lines<'_>, port: u16, z: &Sizes) {
        let count = self.redirects + self.whole as usize + 1;
        let got = lines.of(t, port, count).await;
        assert_eq!(got.len(), count);
        let logged: u64 = got.iter().map(|v| v["bytes_out"].as_u64().unwrap()).sum();
        let last: &Value = &got[count - 1];
        let (cut, len) = (self.cut, z.len);
        assert_eq!(last["bytes_out"], self.body, "cut {cut} of {len}: {last}");
        assert_eq!(last["status"], 404, "{last}");
        let body = (z.len - z.head) as u64;
        assert_eq!(logged, self.whole * body + self.body);
    }
}

#[tokio::test]
async fn an_own_answer_cut_mid_body_is_logged_with_the_body_bytes_sent() {
    let (t, _dir, path) = start(&[]);
    let z = Sizes::of(&t).await;
    let mut lines = Lines::new(&path);
    // A try cuts a body about one time in five (32 bytes of a 156-byte answer).
    for n in 0..40 {
        let (s, port, a) = stuck(&t, &z, n, REDIRECTS).await;
        let cut = a.cut(&z);
        kernel::reset(s);
        // Cut within the redirects: no 404 was cut.
        let Some(cut) = cut else { continue };
        cut.check(&t, &mut lines, port, &z).await;
        if cut.body > 0 {
            return;
        }
    }
    panic!("no cut landed inside a body");
}

/// The drain's end drops a connection in the middle of its write: the line it leaves
/// has the status and the body bytes that went, as when the client leaves. Several
/// connections are stuck at once, until one is cut inside a body, so that one
/// shutdown has such a cut.
#[tokio::test]
async fn an_own_answer_cut_by_the_drain_s_end_is_logged_with_the_body_bytes_sent() {
    let (mut t, _dir, path) = start(&["--grace", "300ms"]);
    let z = Sizes::of(&t).await;
    // Connections stuck at once until one is cut inside a body. Each takes as many
    // more redirects as the first held whole 404s, but for some slack: the 404s are
    // the slow part, one request each.
    let mut stuck_conns = Vec::new();
    let mut redirects = REDIRECTS;
    for n in 0..40 {
        let conn = stuck(&t, &z, n, redirects).await;
        let cut = conn.2.cut(&z);
        let in_body = cut.as_ref().is_some_and(|c| c.body > 0);
        if let (0, Some(c)) = (n, &cut) {
            let more = (c.whole * z.len as u64 / z.big as u64) as usize;
            redirects += more.saturating_sub(4);
        }
        stuck_conns.push(conn);
        if in_body {
            break;
        }
    }
    // Looked at again, the last thing before the drain: tango may have found room in
    // an earlier one's socket since (its send buffer grows as acknowledgements come).
    for (_, port, a) in &mut stuck_conns {
        a.sent = kernel::stalled(&t, *port, true, || {}).await;
    }
    t.signal("TERM");
    let status = t.wait_exit(kernel::BOUND).expect("tango exits");
    assert!(status.success(), "{status:?}\n{}", t.log());
    let mut lines = Lines::new(&path);
    let mut in_body = 0;
    // The one cut inside a body first.
    for (_s, port, a) in stuck_conns.iter().rev() {
        let Some(cut) = a.cut(&z) else { continue };
        cut.check(&t, &mut lines, *port, &z).await;
        in_body += usize::from(cut.body > 0);
    }
    assert!(in_body > 0, "no cut landed inside a body");
}
