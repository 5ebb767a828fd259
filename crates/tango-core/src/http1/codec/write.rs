//! The heads tango writes, each into one buffer, so it goes out in one write: the
//! request head a backend gets (`request`), a backend's response head as its client
//! gets it (`response`) and tango's own answers (`own`); the field-writing helpers
//! they share are here.
//!
//! Upstream ([`write_request_head`]): what hyper's client sent for tango's service
//! (`proxy/service.rs`, `proxy/headers.rs`): an HTTP/1.1 request line with an
//! origin-form target (RFC 9112 3.2.1); the client's fields in their order and case
//! minus the hop-by-hop ones (RFC 9110 7.6.1); Host kept, or added from the target's
//! authority (replaced by it for an absolute-form target, RFC 9112 3.2.2);
//! X-Forwarded-For with the peer appended; X-Forwarded-Proto and X-Forwarded-Host set;
//! X-Request-Id set; then the framing field. hyper's client
//! added nothing else (no `Connection: keep-alive`: HTTP/1.1 is persistent anyway).
//! Forwarded fields keep the case they were sent in, where hyper lowercased every name
//! (names are case-insensitive, RFC 9110 5.1); the fields tango writes are lowercase.
//!
//! To the client ([`write_response_head`]): what hyper's server sent: a status line
//! with the client's version, the backend's fields minus the hop-by-hop ones, the
//! framing decided anew for this client (RFC 9112 6.1, 6.3), `Connection: close` to an
//! HTTP/1.1 client when tango will close, `Connection: keep-alive` to an HTTP/1.0
//! client it keeps, and a Date when the backend sent none (RFC 9110 6.6.1).
//!
//! [`write_error_response`] is tango's own answer: a short text body, as
//! `service::error_response` made it and hyper framed it; [`write_own_response`] the
//! same with a redirect's Location.
//!
//! A route's header edits (`crate::rewrite`) apply to the request head after tango's
//! own fields, and to final response heads and tango's own answers after Date: a field
//! they set or remove is left out where it would have been written, and what they add
//! comes last, before the framing field of a request. Framing and hop-by-hop fields
//! are never edited.

mod own;
mod request;
mod response;

pub use own::{reason_phrase, write_error_response, write_own_response, OwnResponse};
pub use request::{write_request_head, Forwarding};
pub use response::{
    write_response_head, write_response_head_edited, BodyPlan, ClientFacts, ResponsePlan,
};

use super::fields::Header;
use super::Version;

fn status_line(out: &mut Vec<u8>, version: Version, status: u16, reason: &[u8]) {
    out.extend_from_slice(version.as_bytes());
    out.push(b' ');
    // A status is three digits (100 to 999).
    let s = status.min(999);
    out.extend_from_slice(&[
        b'0' + (s / 100) as u8,
        b'0' + (s / 10 % 10) as u8,
        b'0' + (s % 10) as u8,
    ]);
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

/// Append one header field, `name: value` and CRLF.
pub fn write_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Append `content-length: n` and CRLF, made on the stack and appended at once.
fn length(out: &mut Vec<u8>, n: u64) {
    const NAME: &[u8] = b"content-length: ";
    // The name, then up to 20 digits ending before the CRLF, right-aligned.
    let mut line = [0u8; NAME.len() + 20 + 2];
    let end = line.len() - 2;
    line[end..].copy_from_slice(b"\r\n");
    let mut i = end;
    let mut n = n;
    loop {
        i -= 1;
        line[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let start = i - NAME.len();
    line[start..i].copy_from_slice(NAME);
    out.extend_from_slice(&line[start..]);
}

/// Forwarded field lines, copied from the head they came in. A field whose line there
/// is exactly what [`write_field`] would write (`name: value` and CRLF, the usual form)
/// is copied as it is, and a run of such lines one after another as one copy: a few
/// copies per head instead of four per field.
struct Lines<'a> {
    buf: &'a [u8],
    /// The run of lines not yet appended.
    run: std::ops::Range<usize>,
}

impl<'a> Lines<'a> {
    fn new(buf: &'a [u8]) -> Lines<'a> {
        Lines { buf, run: 0..0 }
    }

    /// Append field `h` (or keep it in the run, to append with the next ones).
    fn push(&mut self, out: &mut Vec<u8>, h: &Header) {
        let (name, value) = (h.name().range(), h.value().range());
        let end = value.end + 2;
        let as_written = self.buf.get(name.end..value.start) == Some(b": ")
            && self.buf.get(value.end..end) == Some(b"\r\n");
        if !as_written {
            self.flush(out);
            write_field(out, &self.buf[name], &self.buf[value]);
        } else if !self.run.is_empty() && self.run.end == name.start {
            self.run.end = end;
        } else {
            self.flush(out);
            self.run = name.start..end;
        }
    }

    /// Append the run held.
    fn flush(&mut self, out: &mut Vec<u8>) {
        if !self.run.is_empty() {
            out.extend_from_slice(&self.buf[self.run.clone()]);
            self.run = 0..0;
        }
    }
}
