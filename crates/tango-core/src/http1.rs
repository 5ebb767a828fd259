//! HTTP/1 request framing judged from the bytes alone: the decisions behind tango's
//! framing guard, with no I/O.
//!
//! A [`Framer`] follows one client connection's byte stream the way hyper's HTTP/1 parser
//! will read it: each request head (parsed with httparse, hyper's own parser, once its
//! empty line has arrived), then its body by Content-Length or by chunked framing
//! (hyper's chunked grammar, byte for byte), then the next head. Bytes the framer has
//! judged go to the output in order, each once; bytes it has not judged never do, except
//! after the HTTP/2 preface or a confirmed protocol switch.
//!
//! It refuses, by handing hyper [`POISON`] in place of the head (hyper answers 400 and
//! closes), requests hyper would accept but a load balancer must not forward:
//! Content-Length with Transfer-Encoding, HTTP/1.1 without Host, more than one Host
//! (RFC 9112 3.2, 6.3). Framing hyper refuses itself (differing Content-Lengths, a
//! final coding other than chunked, Transfer-Encoding on HTTP/1.0) is poisoned too, so
//! tango never depends on hyper's leniency staying as it is. A head httparse cannot
//! parse, a head too large or a broken chunked body goes to hyper as it is (hyper
//! refuses it: 400 or 431), and nothing after it. A head whose method has a byte no
//! method may have (a WebSocket frame or TLS record where a request should be) is
//! handed on through that byte as soon as it comes, since no later byte can make it a
//! request: hyper answers it at once instead of waiting for an end that never comes.
//!
//! A request that may switch protocols (an `Upgrade` header, or CONNECT) is followed
//! to its end; then the framer holds what comes next until it is told whether the
//! answer switched (a 101, or a 2xx to CONNECT): a tunnel passes through unjudged, any
//! other answer puts the bytes held back through the framer as the next request.
//!
//! Work is linear in the input: a feed walks its input once with an offset (looking for
//! a head's end, and through a head's method for its first bad byte), copies
//! each byte at most twice (into a held head, then out), parses a head once when it
//! arrives whole (at most twice otherwise), and never recurses. [`Framer::work`] counts
//! that work, so tests can bound it without a clock.

mod chunked;
pub mod codec;
mod head;
#[cfg(test)]
mod tests;

use chunked::{Chunk, Step};
use head::{Judged, Length, MethodSoFar};

/// What hyper is handed in place of a refused head: an invalid method byte. A head
/// reaches hyper only once judged, so this is the next thing hyper parses.
pub const POISON: &[u8] = b"\x00 / HTTP/1.1\r\n\r\n";

/// The HTTP/2 connection preface (RFC 9113 3.4), as hyper-util's server compares it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The preface's first 18 bytes are a whole HTTP/1 head, which httparse rejects
/// (version 2.0).
const H2_PREFACE_HEAD: usize = 18;

/// Whether a head at the start of `buf` may have ended in the bytes from `from` on (an
/// empty line is there, or straddles `from`). A reader that got a head in pieces parses
/// it again only then, so a peer sending it a byte at a time costs work linear in its
/// length, not quadratic.
pub fn head_may_end(buf: &[u8], from: usize) -> bool {
    let from = from.min(buf.len());
    head::find_end(&buf[..from], &buf[from..]).is_some()
}

/// Why the framer refused a request (and poisoned it for hyper).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Content-Length and Transfer-Encoding together (RFC 9112 6.3).
    LengthWithTransferEncoding,
    /// A Content-Length that is not one decimal number, or values that differ.
    BadContentLength,
    /// Transfer-Encoding whose final coding is not chunked, or on an HTTP/1.0 request.
    BadTransferEncoding,
    /// An HTTP/1.1 request without Host (RFC 9112 3.2).
    MissingHost,
    /// More than one Host header (RFC 9112 3.2).
    MultipleHost,
}

impl Refusal {
    /// The refusal in a few words, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::LengthWithTransferEncoding => "Content-Length with Transfer-Encoding",
            Refusal::BadContentLength => "invalid or conflicting Content-Length",
            Refusal::BadTransferEncoding => "Transfer-Encoding not ending in chunked",
            Refusal::MissingHost => "HTTP/1.1 request without Host",
            Refusal::MultipleHost => "more than one Host",
        }
    }
}

/// Why a connection's bytes stopped passing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Refused: [`POISON`] was handed on in place of the head.
    Refused(Refusal),
    /// A head httparse rejects: handed on as it is (up to its end, or through the
    /// first byte of its method that no method may have), for hyper to refuse.
    Malformed,
    /// A head not ending within the limit: its first `max_head` bytes are handed on,
    /// for hyper (whose buffer is as large) to answer 431.
    HeadTooLarge,
    /// Chunked framing hyper's decoder rejects: the body ends there.
    BadChunk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between requests, or inside a head (then `head` holds it).
    Head,
    /// Content-Length body bytes left.
    Body(u64),
    Chunked(Chunk),
    /// After a request that may switch protocols: bytes are parked until the verdict.
    AwaitingSwitch,
    /// HTTP/2, or a switched protocol: nothing is judged any more.
    Pass,
    Closed(Closed),
}

/// The framing state of one client connection. See the module documentation.
#[derive(Debug)]
pub struct Framer {
    state: State,
    /// An incomplete request head, carried from one feed to the next.
    head: Vec<u8>,
    /// Bytes after a request that may switch protocols, until the verdict.
    parked: Vec<u8>,
    /// The current request may switch protocols: wait for the verdict after its body.
    switch_after_body: bool,
    /// No byte of the connection judged yet: it may be the HTTP/2 preface.
    at_start: bool,
    /// The head held so far is all method: the next bytes are checked as method bytes.
    in_method: bool,
    max_head: usize,
    work: u64,
}

impl Framer {
    /// A framer for a new connection. `max_head` must be hyper's `max_buf_size`: a head
    /// that does not end within it is handed to hyper to refuse (431).
    pub fn new(max_head: usize) -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            parked: Vec::new(),
            switch_after_body: false,
            at_start: true,
            in_method: false,
            max_head,
            work: 0,
        }
    }

    /// Judge `data`, the next bytes from the client, appending what may pass to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut at = 0;
        while at < data.len() {
            let rest = &data[at..];
            let used = match self.state {
                State::Closed(_) => return,
                State::Pass => {
                    out.extend_from_slice(rest);
                    rest.len()
                }
                State::AwaitingSwitch => {
                    self.parked.extend_from_slice(rest);
                    rest.len()
                }
                State::Body(left) => {
                    let take = left.min(rest.len() as u64) as usize;
                    out.extend_from_slice(&rest[..take]);
                    self.advance_direct(take);
                    take
                }
                State::Chunked(c) => self.chunked(c, rest, out),
                State::Head => self.head(rest, out),
            };
            self.work += used as u64;
            at += used;
        }
    }

    /// How many bytes may go from the socket to hyper without being looked at, when
    /// nothing is held: the rest of a body or chunk, or everything once in pass-through.
    pub fn direct_len(&self) -> Option<u64> {
        match self.state {
            State::Pass => Some(u64::MAX),
            State::Body(n) | State::Chunked(Chunk::Data(n)) => Some(n),
            _ => None,
        }
    }

    /// `n` bytes (at most [`Framer::direct_len`]) went to hyper directly.
    pub fn advance_direct(&mut self, n: usize) {
        let n = n as u64;
        match self.state {
            State::Body(left) if n >= left => self.message_done(),
            State::Body(left) => self.state = State::Body(left - n),
            State::Chunked(Chunk::Data(left)) => {
                self.state = State::Chunked(if n >= left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - n)
                })
            }
            _ => {}
        }
    }

    /// A request head has begun and not yet ended (the header timeout runs).
    pub fn head_in_progress(&self) -> bool {
        self.state == State::Head && !self.head.is_empty()
    }

    /// Bytes are held until [`Framer::resolve_switch`] says how the last request was
    /// answered.
    pub fn awaiting_switch(&self) -> bool {
        self.state == State::AwaitingSwitch
    }

    /// The request that may have switched protocols was answered: `switched` when the
    /// answer was a 101 or a 2xx to CONNECT. Parked bytes pass through (a tunnel) or are
    /// judged as the next request.
    pub fn resolve_switch(&mut self, switched: bool, out: &mut Vec<u8>) {
        if self.state != State::AwaitingSwitch {
            return;
        }
        self.state = if switched { State::Pass } else { State::Head };
        let parked = std::mem::take(&mut self.parked);
        self.feed(&parked, out);
        // Keep the allocation, unless judging parked new bytes (a further upgrade).
        if self.parked.is_empty() {
            self.parked = parked;
            self.parked.clear();
        }
    }

    /// Why nothing passes any more, once that is so.
    pub fn closed(&self) -> Option<Closed> {
        match self.state {
            State::Closed(c) => Some(c),
            _ => None,
        }
    }

    /// Nothing is judged any more: HTTP/2 or a switched protocol.
    pub fn passing_through(&self) -> bool {
        self.state == State::Pass
    }

    /// Bytes looked at so far: each byte walked, plus each byte handed to httparse.
    /// At most four times the input (bytes held for a verdict are walked again).
    pub fn work(&self) -> u64 {
        self.work
    }

    /// A request (head and body) is complete.
    fn message_done(&mut self) {
        self.state = if std::mem::take(&mut self.switch_after_body) {
            State::AwaitingSwitch
        } else {
            State::Head
        };
    }

    fn close(&mut self, why: Closed) {
        self.head.clear();
        self.state = State::Closed(why);
    }

    /// Follow chunked framing through `rest`; returns the bytes used (at least one).
    fn chunked(&mut self, c: Chunk, rest: &[u8], out: &mut Vec<u8>) -> usize {
        if let Chunk::Data(left) = c {
            let take = left.min(rest.len() as u64) as usize;
            out.extend_from_slice(&rest[..take]);
            self.advance_direct(take);
            return take;
        }
        let mut c = c;
        for (i, &b) in rest.iter().enumerate() {
            match c.step(b) {
                Step::Next(n @ Chunk::Data(_)) => {
                    out.extend_from_slice(&rest[..=i]);
                    self.state = State::Chunked(n);
                    return i + 1;
                }
                Step::Next(n) => c = n,
                Step::End => {
                    out.extend_from_slice(&rest[..=i]);
                    self.message_done();
                    return i + 1;
                }
                Step::Invalid => {
                    // hyper's decoder stops at this byte too; it sees the body end here.
                    out.extend_from_slice(&rest[..i]);
                    self.close(Closed::BadChunk);
                    return rest.len();
                }
            }
        }
        out.extend_from_slice(rest);
        self.state = State::Chunked(c);
        rest.len()
    }

    /// Gather and judge a request head from `rest`; returns the bytes used (at least one).
    fn head(&mut self, rest: &[u8], out: &mut Vec<u8>) -> usize {
        if self.at_start {
            if let Some(used) = self.preface(rest, out) {
                return used;
            }
        }
        if self.head.is_empty() {
            // Empty lines before a request line are allowed (RFC 9112 2.2); httparse
            // skips them too.
            let skip = rest
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if skip > 0 {
                out.extend_from_slice(&rest[..skip]);
                return skip;
            }
            // The usual case: the whole head in this read, parsed once where it lies.
            // (httparse ends a head where `find_end` does, so this agrees with the
            // held path below; the fuzz target checks that.)
            match head::judge(rest) {
                j @ (Judged::Request { len, .. } | Judged::Refused { len, .. })
                    if len <= self.max_head =>
                {
                    self.work += len as u64;
                    return if self.act(j, &rest[..len], out) {
                        len
                    } else {
                        rest.len()
                    };
                }
                // Partial, too large or malformed: decided below, as if held.
                _ => self.work += rest.len() as u64,
            }
            // A new head: its method is followed from its first byte.
            self.in_method = true;
        }
        if self.in_method {
            if let Some(used) = self.method(rest, out) {
                return used;
            }
        }
        // A head must end within `max_head` bytes, wherever the reads split it.
        let room = self.max_head.saturating_sub(self.head.len());
        let end = match head::find_end(&self.head, rest) {
            Some(end) if end <= room => end,
            found => {
                if found.is_some() || rest.len() > room {
                    // Too large. hyper is handed exactly its buffer's worth, without the
                    // head's end, so it cannot take it for a request: it answers 431.
                    let held = self.head.len().min(self.max_head);
                    out.extend_from_slice(&self.head[..held]);
                    out.extend_from_slice(&rest[..room]);
                    self.close(Closed::HeadTooLarge);
                } else {
                    self.head.extend_from_slice(rest);
                }
                return rest.len();
            }
        };
        if self.head.is_empty() {
            let j = head::judge(&rest[..end]);
            self.work += end as u64;
            return if self.act(j, &rest[..end], out) {
                end
            } else {
                rest.len()
            };
        }
        self.head.extend_from_slice(&rest[..end]);
        // Judge the held head; taking it out lends it to `act` without a copy.
        let held = std::mem::take(&mut self.head);
        self.work += held.len() as u64;
        let passed = self.act(head::judge(&held), &held, out);
        self.head = held;
        self.head.clear();
        if passed {
            end
        } else {
            rest.len()
        }
    }

    /// Follow the method of the head being gathered through `rest`. httparse refuses a
    /// head at the first byte its method cannot have, whatever follows: such a head
    /// (non-HTTP bytes, say a WebSocket frame sent behind an upgrade the backend
    /// declined) is handed on through that byte at once, for hyper to answer 400, rather
    /// than held for an end that may never come until the header timeout ends the
    /// connection unanswered. Where the byte is makes no difference to how the reads
    /// split the head. Returns the bytes used when the head was refused.
    fn method(&mut self, rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        match head::method_in(rest, self.head.is_empty()) {
            MethodSoFar::Open => None,
            MethodSoFar::Ended => {
                self.in_method = false;
                None
            }
            MethodSoFar::Bad(i) if self.head.len() + i < self.max_head => {
                out.extend_from_slice(&self.head);
                out.extend_from_slice(&rest[..=i]);
                self.close(Closed::Malformed);
                Some(rest.len())
            }
            // Past the size limit: a head too large, as judged below.
            MethodSoFar::Bad(_) => None,
        }
    }

    /// Act on the judgement of the complete head `whole`. True when the request goes
    /// on (what follows is its body or the next request); false when nothing more
    /// passes.
    #[inline]
    fn act(&mut self, j: Judged, whole: &[u8], out: &mut Vec<u8>) -> bool {
        match j {
            Judged::Request {
                length, may_switch, ..
            } => {
                out.extend_from_slice(whole);
                self.switch_after_body = may_switch;
                match length {
                    Length::None => self.message_done(),
                    Length::Bytes(n) => self.state = State::Body(n),
                    Length::Chunked => self.state = State::Chunked(Chunk::Start),
                }
                true
            }
            Judged::Refused { why, .. } => {
                out.extend_from_slice(POISON);
                self.close(Closed::Refused(why));
                false
            }
            // A whole head httparse does not finish is malformed to it.
            Judged::Partial | Judged::Malformed => {
                out.extend_from_slice(whole);
                self.close(Closed::Malformed);
                false
            }
        }
    }

    /// At the connection's start: hold what may be the HTTP/2 preface. `None` once it
    /// is not (the bytes held are then the start of a request head).
    fn preface(&mut self, rest: &[u8], out: &mut Vec<u8>) -> Option<usize> {
        let have = self.head.len();
        let n = (H2_PREFACE.len() - have).min(rest.len());
        if rest[..n] == H2_PREFACE[have..have + n] {
            self.head.extend_from_slice(&rest[..n]);
            if self.head.len() == H2_PREFACE.len() {
                out.extend_from_slice(&self.head);
                self.head.clear();
                self.at_start = false;
                self.state = State::Pass;
            }
            return Some(n);
        }
        self.at_start = false;
        if have >= H2_PREFACE_HEAD {
            // "PRI * HTTP/2.0" and an empty line, then not the rest of the preface: a
            // whole head, which httparse rejects (version 2.0). As if read at once:
            if H2_PREFACE_HEAD > self.max_head {
                out.extend_from_slice(&self.head[..self.max_head]);
                self.close(Closed::HeadTooLarge);
            } else {
                out.extend_from_slice(&self.head[..H2_PREFACE_HEAD]);
                self.close(Closed::Malformed);
            }
            return Some(rest.len());
        }
        // Fewer bytes held hold no end of a head: they begin the one judged next, a
        // method still, unless they reach the preface's first space.
        self.in_method = !self.head.contains(&b' ');
        None
    }
}

/// Whether a request may switch protocols, so that the framing guard waits for its
/// answer: an `Upgrade` header (any version; hyper ignores it on HTTP/1.0, and the
/// answer then says so), or CONNECT. The service and the framer must agree on this.
pub fn may_switch_protocols(connect: bool, has_upgrade_header: bool) -> bool {
    connect || has_upgrade_header
}

/// Whether an answer switches the connection away from HTTP/1: after a 101, or a 2xx to
/// CONNECT, hyper reads no further request from it.
pub fn switches_protocols(connect: bool, status: u16) -> bool {
    status == 101 || (connect && (200..300).contains(&status))
}
