//! Chunked bodies (RFC 9112 7.1), followed and made.
//!
//! [`ChunkedTracker`] follows a chunked body through successive input slices and says
//! how much of each belongs to the body and where it ends (last chunk, trailer
//! section, final CRLF), without copying, so a proxy forwards a body it has validated
//! as it came and knows where the next message starts. The grammar is hyper's decoder's,
//! byte for byte (the framing guard's `Chunk` state machine: hex size with an overflow
//! check, optional whitespace and extensions, CR required before every LF), with
//! hyper's limits: 16 KiB of extension bytes per body, a trailer section under 16 KiB
//! and at most 100 trailer lines. Trailer lines must be fields as httparse reads them
//! (a token, a colon, a value of visible bytes); a bare LF in a trailer is refused where
//! hyper would have split the line there, since the next hop might not. Chunk data is
//! skipped a run at a time; every other byte costs a constant amount of work, and
//! nothing recurses.
//!
//! [`encode_chunk`], [`ChunkPrefix`] and [`LAST_CHUNK`] frame a body whose length is
//! not known (a close-delimited response to an HTTP/1.1 client) as chunks.

use super::super::chunked::{Chunk, Step};
use std::ops::Range;

/// Extension bytes a body may carry in all (hyper's `CHUNKED_EXTENSIONS_LIMIT`).
const EXTENSIONS_LIMIT: u64 = 16 * 1024;
/// Trailer section bytes (hyper's `TRAILER_LIMIT`): refused when it reaches this.
const TRAILER_LIMIT: usize = 16 * 1024;
/// Trailer lines (hyper's default `h1_max_headers`).
const TRAILER_LINES: usize = 100;

/// Where a trailer line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    Name,
    Value,
}

/// Follows one chunked body. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkedTracker {
    state: Chunk,
    extension_bytes: u64,
    /// Bytes of the trailer section so far (0: none yet).
    trailer_bytes: usize,
    trailer_lines: usize,
    line: Line,
    done: bool,
    failed: bool,
}

impl Default for ChunkedTracker {
    fn default() -> Self {
        Self::new()
    }
}

/// What a feed found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feed {
    /// Bytes at the start of the input that belong to the body: all of it, unless the
    /// body ended inside it (then the next message starts at `used`).
    pub used: usize,
    /// The body has ended (at `used`).
    pub done: bool,
}

/// Bad chunked framing: the input's bytes before `at` belong to the body; the byte at
/// `at` is where it broke. Nothing more can be read from the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError {
    /// Offset of the offending byte in the input of the feed that failed.
    pub at: usize,
}

impl ChunkedTracker {
    /// A tracker at the start of a chunked body.
    pub fn new() -> Self {
        Self {
            state: Chunk::Start,
            extension_bytes: 0,
            trailer_bytes: 0,
            trailer_lines: 0,
            line: Line::Name,
            done: false,
            failed: false,
        }
    }

    /// Follow the body through `input`, the next bytes after what was fed before.
    /// After the end, feeds use nothing; after an error, each feed fails at 0.
    pub fn feed(&mut self, input: &[u8]) -> Result<Feed, ChunkError> {
        self.feed_data(input, |_| {})
    }

    /// As [`ChunkedTracker::feed`], also handing `on_data` each range of `input` that
    /// is chunk data, in order: what an HTTP/1.0 client is sent of a chunked body.
    pub fn feed_data(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<Feed, ChunkError> {
        if self.failed {
            return Err(ChunkError { at: 0 });
        }
        if self.done {
            return Ok(Feed {
                used: 0,
                done: true,
            });
        }
        let mut i = 0;
        while i < input.len() {
            if let Chunk::Data(left) = self.state {
                let take = left.min((input.len() - i) as u64) as usize;
                on_data(i..i + take);
                i += take;
                self.state = if take as u64 == left {
                    Chunk::DataCr
                } else {
                    Chunk::Data(left - take as u64)
                };
                continue;
            }
            let b = input[i];
            let step = self.state.step(b);
            if !self.within_limits(b, &step) {
                self.failed = true;
                return Err(ChunkError { at: i });
            }
            match step {
                Step::Next(next) => self.state = next,
                Step::End => {
                    self.done = true;
                    return Ok(Feed {
                        used: i + 1,
                        done: true,
                    });
                }
                Step::Invalid => {
                    self.failed = true;
                    return Err(ChunkError { at: i });
                }
            }
            i += 1;
        }
        Ok(Feed {
            used: input.len(),
            done: false,
        })
    }

    /// As [`ChunkedTracker::feed_data`], also handing `on_trailers` the range of
    /// `input` that belongs to the trailer section (its field lines and the final
    /// CRLF), when there is one: what a proxy that re-frames the body needs to hand its
    /// trailers on. A section split across feeds comes a range per feed, in order; it
    /// is never longer than the trailer limit, past which the feed fails.
    pub fn feed_split(
        &mut self,
        input: &[u8],
        on_data: impl FnMut(Range<usize>),
        mut on_trailers: impl FnMut(Range<usize>),
    ) -> Result<Feed, ChunkError> {
        let before = self.trailer_bytes;
        let feed = self.feed_data(input, on_data)?;
        // The trailer section is the body's last bytes: those counted by this feed are
        // the last of what it used.
        let n = self.trailer_bytes - before;
        if n > 0 {
            on_trailers(feed.used - n..feed.used);
        }
        Ok(feed)
    }

    /// Chunk data bytes that follow before any framing byte: the caller may pass that
    /// many on without feeding them, then report them with [`ChunkedTracker::skip`].
    pub fn data_left(&self) -> u64 {
        match self.state {
            Chunk::Data(n) if !self.failed => n,
            _ => 0,
        }
    }

    /// `n` bytes (at most [`ChunkedTracker::data_left`]) of chunk data went by unfed.
    pub fn skip(&mut self, n: u64) {
        if let Chunk::Data(left) = self.state {
            let n = n.min(left);
            self.state = if n == left {
                Chunk::DataCr
            } else {
                Chunk::Data(left - n)
            };
        }
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// hyper's limits, and the trailer grammar, for byte `b` taking the step `step`.
    fn within_limits(&mut self, b: u8, step: &Step) -> bool {
        if matches!(step, Step::Invalid) {
            return true;
        }
        match self.state {
            Chunk::Extension(_) if b != b'\r' => {
                self.extension_bytes += 1;
                return self.extension_bytes < EXTENSIONS_LIMIT;
            }
            // The first byte of a trailer line (or the final CR).
            Chunk::EndCr if b != b'\r' => {
                self.line = Line::Name;
                if !is_token(b) {
                    return false;
                }
            }
            Chunk::Trailer => {
                let ok = match (self.line, b) {
                    (Line::Name, b':') => {
                        self.line = Line::Value;
                        true
                    }
                    (Line::Name, _) => is_token(b),
                    (Line::Value, b'\r') => true,
                    (Line::Value, _) => is_field_byte(b),
                };
                if !ok {
                    return false;
                }
            }
            Chunk::TrailerLf => {
                if self.trailer_lines >= TRAILER_LINES {
                    return false;
                }
                self.trailer_lines += 1;
            }
            _ => {}
        }
        let in_trailers = self.trailer_bytes > 0 || (self.state == Chunk::EndCr && b != b'\r');
        if in_trailers {
            self.trailer_bytes += 1;
            return self.trailer_bytes < TRAILER_LIMIT;
        }
        true
    }
}

/// Hand `each` the name and value of every field line of a trailer section as
/// [`ChunkedTracker::feed_split`] hands it on (its field lines and the final CRLF),
/// in order; `None`, and nothing handed, when it is not one whole section. A section
/// the tracker let through has at most [`TRAILER_LINES`] lines, each a field.
pub fn trailer_fields(section: &[u8], mut each: impl FnMut(&[u8], &[u8])) -> Option<()> {
    let mut raw = [httparse::EMPTY_HEADER; TRAILER_LINES];
    let Ok(httparse::Status::Complete((_, fields))) = httparse::parse_headers(section, &mut raw)
    else {
        return None;
    };
    for f in fields.iter() {
        each(f.name.as_bytes(), f.value);
    }
    Some(())
}

/// A field-name byte (RFC 9110 5.6.2 tchar), as httparse takes it.
fn is_token(b: u8) -> bool {
    matches!(b,
        b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z'
        | b'^'..=b'z' | b'|' | b'~')
}

/// A field-value byte as httparse and `http::HeaderValue` take it: tab, visible ASCII,
/// space, and obs-text.
fn is_field_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// The last chunk and the empty trailer section: what ends a chunked body tango frames.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A chunk's size line, `{len:x}\r\n`, without allocating. The chunk's data and then
/// `\r\n` follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPrefix {
    buf: [u8; 18],
    len: u8,
}

impl ChunkPrefix {
    /// The size line for a chunk of `len` bytes (`len` must not be 0: a zero-size
    /// chunk is the last chunk).
    pub fn new(len: u64) -> Self {
        debug_assert!(len > 0, "a zero-size chunk ends the body");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digits = (64 - len.leading_zeros()).div_ceil(4).max(1) as usize;
        let mut buf = [0u8; 18];
        for (i, slot) in buf[..digits].iter_mut().enumerate() {
            *slot = HEX[((len >> (4 * (digits - 1 - i))) & 0xf) as usize];
        }
        buf[digits..digits + 2].copy_from_slice(b"\r\n");
        Self {
            buf,
            len: (digits + 2) as u8,
        }
    }

    /// The size line's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// Append `data` to `out` as one chunk: size line, data, CRLF. Nothing for empty data
/// (an empty chunk would end the body; end it with [`LAST_CHUNK`]).
pub fn encode_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(ChunkPrefix::new(data.len() as u64).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}
