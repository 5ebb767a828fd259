//! An HTTP/2 client that writes frames as a test says, valid or not: the `h2` crate and
//! hyper refuse to send a malformed request (a connection-specific field, DATA beyond
//! the content-length), and a test of how tango meets one needs to send it.
//!
//! Header blocks are written as HPACK literals without indexing (no Huffman coding, no
//! table), which every decoder takes. Of a response's header block only `:status` is
//! read: it comes first, and on a connection's first response it is an indexed static
//! entry or a literal with the `:status` name, its value perhaps Huffman-coded digits.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A byte stream both ways: a socket or a TLS session.
pub trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

pub type Io = Box<dyn Duplex>;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

pub const PROTOCOL_ERROR: u32 = 0x1;
pub const CANCEL: u32 = 0x8;

/// A frame as read.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

/// How tango met a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response head, with its status (0: one this client cannot read).
    Status(u16),
    /// The stream was reset, with this error code.
    Reset(u32),
    /// The connection was ended, with this error code.
    GoAway(u32),
    /// The connection closed.
    Closed,
    /// Nothing of the kind within the time given.
    Silent,
}

pub struct Raw {
    io: Io,
}

impl Raw {
    /// HTTP/2 on `io`: the preface and empty SETTINGS.
    pub async fn start(mut io: Io) -> Raw {
        io.write_all(PREFACE).await.unwrap();
        let mut raw = Raw { io };
        raw.send(SETTINGS, 0, 0, &[]).await;
        raw
    }

    /// Write one frame.
    pub async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.write(&frame(kind, flags, stream, payload)).await;
    }

    /// Write `bytes` (frames, [`frame`]) in one write, so that they arrive together.
    pub async fn write(&mut self, bytes: &[u8]) {
        // The peer may have closed already: what it said is read next.
        let _ = self.io.write_all(bytes).await;
        let _ = self.io.flush().await;
    }

    /// A HEADERS frame with `fields` (pseudo-fields first, as given), END_HEADERS set.
    pub async fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end_stream: bool) {
        let flags = END_HEADERS | if end_stream { END_STREAM } else { 0 };
        self.send(HEADERS, flags, stream, &block(fields)).await;
    }

    pub async fn data(&mut self, stream: u32, bytes: &[u8], end_stream: bool) {
        let flags = if end_stream { END_STREAM } else { 0 };
        self.send(DATA, flags, stream, bytes).await;
    }

    pub async fn reset(&mut self, stream: u32, code: u32) {
        self.send(RST_STREAM, 0, stream, &code.to_be_bytes()).await;
    }

    /// The next frame within `within` (SETTINGS acknowledged and PINGs answered on the
    /// way, as a client must); `None` at the end of the connection or the time.
    pub async fn next(&mut self, within: Duration) -> Option<Frame> {
        let f = tokio::time::timeout(within, self.read_frame())
            .await
            .ok()??;
        if f.kind == SETTINGS && f.flags & ACK == 0 {
            self.send(SETTINGS, ACK, 0, &[]).await;
        }
        if f.kind == PING && f.flags & ACK == 0 {
            self.send(PING, ACK, 0, &f.payload).await;
        }
        Some(f)
    }

    async fn read_frame(&mut self) -> Option<Frame> {
        let mut head = [0u8; 9];
        self.io.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; len];
        self.io.read_exact(&mut payload).await.ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff,
            payload,
        })
    }

    /// What becomes of `stream` within `within`: its response head, its reset, or the
    /// connection's end. Other frames are passed over.
    pub async fn outcome(&mut self, stream: u32, within: Duration) -> Outcome {
        let end = tokio::time::Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let Some(f) = self.next(left).await else {
                return if tokio::time::Instant::now() >= end {
                    Outcome::Silent
                } else {
                    Outcome::Closed
                };
            };
            match f.kind {
                HEADERS if f.stream == stream => return Outcome::Status(status(&f.payload)),
                RST_STREAM if f.stream == stream => return Outcome::Reset(code(&f.payload, 0)),
                GOAWAY => return Outcome::GoAway(code(&f.payload, 4)),
                _ => {}
            }
        }
    }
}

/// One frame's bytes.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The error code at `at` in a frame's payload.
fn code(payload: &[u8], at: usize) -> u32 {
    payload
        .get(at..at + 4)
        .map_or(u32::MAX, |c| u32::from_be_bytes(c.try_into().unwrap()))
}

/// A header block of literals without indexing, new names, no Huffman coding.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        int(&mut out, name.len(), 7, 0);
        out.extend_from_slice(name.as_bytes());
        int(&mut out, value.len(), 7, 0);
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// An HPACK integer with an `n`-bit prefix, `high` the bits above it (RFC 7541 5.1).
fn int(out: &mut Vec<u8>, mut v: usize, n: u32, high: u8) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(high | v as u8);
        return;
    }
    out.push(high | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// `:status` from the start of a response's header block (0 when not readable here).
fn status(block: &[u8]) -> u16 {
    const STATIC: [(u8, u16); 7] = [
        (8, 200),
        (9, 204),
        (10, 206),
        (11, 304),
        (12, 400),
        (13, 404),
        (14, 500),
    ];
    let Some(&first) = block.first() else {
        return 0;
    };
    if first & 0x80 != 0 {
        return STATIC
            .iter()
            .find(|(i, _)| *i == first & 0x7f)
            .map_or(0, |(_, s)| *s);
    }
    // A literal whose name is static entry 8, `:status`: incremental indexing (0x48),
    // without indexing (0x08) or never indexed (0x18).
    if !matches!(first, 0x48 | 0x08 | 0x18) || block.len() < 2 {
        return 0;
    }
    let (huffman, len) = (block[1] & 0x80 != 0, usize::from(block[1] & 0x7f));
    let Some(value) = block.get(2..2 + len) else {
        return 0;
    };
    let digits = if huffman {
        huffman_digits(value)
    } else {
        String::from_utf8_lossy(value).into_owned()
    };
    digits.parse().unwrap_or(0)
}

/// Huffman-coded digits (RFC 7541 Appendix B): 0-2 are 5-bit codes 0-2, 3-9 6-bit
/// codes 0x19-0x1f; the padding is ones.
fn huffman_digits(bytes: &[u8]) -> String {
    let bits: Vec<u8> = bytes
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    let take = |at: usize, n: usize| -> Option<u8> {
        let s = bits.get(at..at + n)?;
        Some(s.iter().fold(0, |v, b| v << 1 | b))
    };
    let (mut out, mut at) = (String::new(), 0);
    while let Some(five) = take(at, 5) {
        if five <= 2 {
            out.push(char::from(b'0' + five));
            at += 5;
            continue;
        }
        match take(at, 6) {
            Some(six @ 0x19..=0x1f) => {
                out.push(char::from(b'3' + (six - 0x19)));
                at += 6;
            }
            _ => break,
        }
    }
    out
}

#[test]
fn huffman_coded_statuses_read() {
    // "502": 011011 00000 00010; "431": 011010 011001 00001, then ones.
    assert_eq!(huffman_digits(&[0b0110_1100, 0b0000_0010]), "502");
    assert_eq!(status(&[0x48, 0x82, 0b0110_1100, 0b0000_0010]), 502);
    assert_eq!(
        huffman_digits(&[0b0110_1001, 0b1001_0000, 0b1111_1111]),
        "431"
    );
    assert_eq!(status(&[0x88]), 200);
    assert_eq!(status(&[0x48, 0x03, b'4', b'3', b'1']), 431);
}
