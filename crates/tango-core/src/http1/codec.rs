//! The sans-I/O core of tango's HTTP/1.1 proxy engine: message heads parsed into ranges
//! of the caller's buffer, bodies followed without copying, and the heads tango writes,
//! each into one buffer. No socket, no clock, no task: the connection loop owns the
//! bytes and asks these functions what they mean.
//!
//! - [`parse_request`] reads a client's request head (RFC 9112 2-3, 5, 6) and applies
//!   every framing refusal of the framing guard ([`super::Framer`]): it is the only
//!   place the engine frames requests. It rejects what hyper's server rejected
//!   (httparse's grammar, more than [`MAX_HEADERS`] fields, a request-target the
//!   `http` crate does not take, a target over 65,534 bytes).
//! - [`parse_response`] reads an upstream response head and decides how its body is
//!   delimited, as hyper's client did (RFC 9112 6.3), refusing what a proxy must not
//!   guess about (differing Content-Length values, Content-Length with
//!   Transfer-Encoding).
//! - [`ChunkedTracker`] follows a chunked body (RFC 9112 7.1) through any splits of
//!   the input, so it is forwarded as it is; [`encode_chunk`] and [`LAST_CHUNK`] frame
//!   a close-delimited body as chunks.
//! - [`write_request_head`], [`write_response_head`] and [`write_error_response`]
//!   produce what goes on the wire, with the hop-by-hop rules of RFC 9110 7.6.1 and the
//!   headers tango adds (X-Forwarded-*, X-Request-Id, Date).
//!
//! A parsed head is a few facts and [`Span`]s into the buffer it came from; the caller
//! keeps that buffer until it has written the head on. Parsing allocates nothing for a
//! head of up to [`INLINE_HEADERS`] fields (the field list lives inline in the head);
//! longer heads allocate once. [`parse_request_into`] and [`parse_response_into`] parse
//! into a head the caller keeps (the engine's pooled boxes): a head is a few hundred
//! bytes, and is so never copied whole.

mod body;
mod fields;
mod request;
mod response;
mod target;
#[cfg(test)]
mod tests;
mod write;

pub use body::{
    encode_chunk, trailer_fields, ChunkError, ChunkPrefix, ChunkedTracker, Feed, LAST_CHUNK,
};
pub use fields::{Header, Headers, INLINE_HEADERS, MAX_HEADERS};
pub use request::{
    is_host_value, parse_request, parse_request_into, Method, RequestFraming, RequestHead,
    TargetForm,
};
pub use response::{
    parse_response, parse_response_into, RequestFacts, ResponseFraming, ResponseHead,
};
pub use write::{
    reason_phrase, write_error_response, write_field, write_own_response, write_request_head,
    write_response_head, write_response_head_edited, BodyPlan, ClientFacts, Forwarding,
    OwnResponse, ResponsePlan,
};

pub use super::Refusal;
// The framing guard (`http1::head`) reads lengths and codings by the same rules.
pub(in crate::http1) use request::ends_in_chunked;
use std::ops::Range;

/// A range of the buffer a head was parsed from. Offsets are `u32`: a head never
/// comes near 4 GiB (parsing looks at no more than its `max_head` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    /// Offset of the first byte.
    pub start: u32,
    /// Offset just past the last byte.
    pub end: u32,
}

impl Span {
    /// The empty span at offset 0.
    pub const EMPTY: Span = Span { start: 0, end: 0 };

    /// The bytes of `buf` this span covers. `buf` must be the buffer the head was
    /// parsed from (or one that starts with the same bytes).
    pub fn of(self, buf: &[u8]) -> &[u8] {
        &buf[self.range()]
    }

    /// The span as a `usize` range.
    pub fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }

    /// Its length in bytes.
    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether it covers no bytes.
    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    /// Where `part`, a slice of `buf` (httparse hands out such slices), lies in it. An
    /// empty `part` may point anywhere (httparse returns `""` for a missing reason).
    fn within(buf: &[u8], part: &[u8]) -> Span {
        let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        match start.checked_add(part.len()) {
            Some(end) if start <= buf.len() && end <= buf.len() => Span::new(start, end),
            _ => Span::EMPTY,
        }
    }

    /// The part of this span that `sub` (a slice of `buf[self]`) covers.
    fn sub(self, buf: &[u8], sub: &[u8]) -> Span {
        let s = Span::within(buf, sub);
        debug_assert!(s.is_empty() || (s.start >= self.start && s.end <= self.end));
        s
    }
}

/// The protocol version of a message: the two that HTTP/1 has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// HTTP/1.0: no chunked framing, no Host requirement, close by default.
    Http10,
    /// HTTP/1.1: persistent by default (RFC 9112 9.3).
    Http11,
}

impl Version {
    /// The version as it appears on a start line.
    pub fn as_bytes(self) -> &'static [u8] {
        match self {
            Version::Http10 => b"HTTP/1.0",
            Version::Http11 => b"HTTP/1.1",
        }
    }

    fn from_minor(minor: u8) -> Version {
        if minor == 1 {
            Version::Http11
        } else {
            Version::Http10
        }
    }
}

/// Why a head cannot be taken. For a request, [`HeadError::status`] is the answer the
/// client gets (as hyper's server answered); for a response, each is a `502`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// No complete head within the limit, more than [`MAX_HEADERS`] fields, or a field
    /// name of 64 KiB or more: `431`.
    TooLarge,
    /// A request-target longer than 65,534 bytes: `414`.
    UriTooLong,
    /// Bytes httparse does not accept as a head, a request-target the `http` crate
    /// does not accept, or a status code under 100: `400`.
    Malformed,
    /// A framing refusal of the framing guard (see [`Refusal`]): `400`.
    Refused(Refusal),
    /// Transfer-Encoding other than exactly `chunked` (say `gzip, chunked`): tango
    /// decodes only chunked and drops Transfer-Encoding as hop-by-hop, so a backend
    /// would get a coded body it was not told about: `400`.
    UnsupportedCoding,
    /// A response only: a `101` to a request that did not ask to upgrade, or
    /// Transfer-Encoding on an HTTP/1.0 response.
    UnexpectedResponse,
}

impl HeadError {
    /// The status a client gets for a request refused with this error.
    pub fn status(self) -> u16 {
        match self {
            HeadError::TooLarge => 431,
            HeadError::UriTooLong => 414,
            HeadError::UnexpectedResponse => 502,
            HeadError::Malformed | HeadError::Refused(_) | HeadError::UnsupportedCoding => 400,
        }
    }

    /// The body text of that answer. hyper answered its own parse errors with no body;
    /// a coding tango cannot forward was answered by tango with this text.
    pub fn text(self) -> &'static str {
        match self {
            HeadError::UnsupportedCoding => "bad request: unsupported transfer coding\n",
            _ => "",
        }
    }
}

/// A Content-Length value as hyper reads it: decimal digits only (no sign, no list),
/// not overflowing.
pub(in crate::http1) fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Whether `http::HeaderValue::to_str` accepts the value: visible ASCII, space and tab.
/// Comma-separated lists (Connection, Transfer-Encoding, X-Forwarded-For) are read by
/// tango and hyper only when it does.
fn is_text(v: &[u8]) -> bool {
    v.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\t')
}

/// The trimmed items of a comma-separated field value (an empty value is one empty
/// item, as `str::split` gives). A value that is not text is one item, `"\0"`, which
/// equals no token: that is how tango and hyper read it.
fn items(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let v: &[u8] = if is_text(v) { v } else { b"\0" };
    v.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}
