//! One request head: where it ends, and what its headers say about the body and
//! about the request itself. The rules for the body are hyper's (`proto/h1/role.rs`),
//! so tango and hyper always agree on where a request ends.

use super::codec::{digits, ends_in_chunked};
use super::Refusal;

/// More headers than hyper takes (100), so a head with too many reaches hyper whole.
const MAX_HEADERS: usize = 128;

/// How a request's body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Length {
    None,
    Bytes(u64),
    Chunked,
}

/// What a look at the start of a request head found; `len` is the head's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Judged {
    /// The head does not end in these bytes.
    Partial,
    /// httparse rejects it (as hyper, which uses httparse the same way, will).
    Malformed,
    Refused {
        len: usize,
        why: Refusal,
    },
    Request {
        len: usize,
        length: Length,
        may_switch: bool,
    },
}

/// Where the head that starts `prev` (already held) and goes on in `data` ends: the
/// index in `data` just past its empty line. `prev ++ data` starts with the request
/// line (empty lines before it were skipped), so an end is a line feed that follows a
/// line feed, with at most a carriage return between: the first such is where httparse
/// ends the head too, when it accepts it.
pub(super) fn find_end(prev: &[u8], data: &[u8]) -> Option<usize> {
    // The byte `back` places before data[i], reaching into `prev`.
    let before = |i: usize, back: usize| -> Option<u8> {
        if back <= i {
            Some(data[i - back])
        } else {
            let from_end = back - i;
            prev.len().checked_sub(from_end).map(|j| prev[j])
        }
    };
    memchr::memchr_iter(b'\n', data)
        .find(|&i| match before(i, 1) {
            Some(b'\n') => true,
            Some(b'\r') => before(i, 2) == Some(b'\n'),
            _ => false,
        })
        .map(|i| i + 1)
}

/// How far a request line's method goes in the next bytes of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MethodSoFar {
    /// Method characters all through: it goes on.
    Open,
    /// A space after method characters: the method is whole.
    Ended,
    /// The byte at this index cannot be in a method here.
    Bad(usize),
}

/// Follow a method through `bytes`, the next bytes of a head whose bytes so far (none
/// when `first`) are all method characters. httparse's rule: token characters ended by
/// a space; anything else, or a space first, is refused at that byte whatever follows.
pub(super) fn method_in(bytes: &[u8], first: bool) -> MethodSoFar {
    for (i, &b) in bytes.iter().enumerate() {
        if !is_token(b) {
            return if b == b' ' && (i > 0 || !first) {
                MethodSoFar::Ended
            } else {
                MethodSoFar::Bad(i)
            };
        }
    }
    MethodSoFar::Open
}

/// RFC 9110's `tchar`, httparse's method characters.
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Judge the request head at the start of `buf` (which may go on past it).
pub(super) fn judge(buf: &[u8]) -> Judged {
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Judged::Partial,
        Err(_) => return Judged::Malformed,
    };
    let http11 = req.version == Some(1);
    let connect = req.method == Some("CONNECT");
    let mut content_length: Option<Option<u64>> = None;
    // hyper: each Transfer-Encoding field decides anew whether the body is chunked.
    let mut chunked: Option<bool> = None;
    let mut upgrade = false;
    let mut hosts = 0u32;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        // Most headers are none of these; their lengths differ, so compare that first.
        if !matches!(name.len(), 4 | 7 | 14 | 17) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let v = digits(h.value);
            content_length = match content_length {
                None => Some(v),
                Some(prev) if prev == v => Some(v),
                Some(_) => Some(None),
            };
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = Some(ends_in_chunked(h.value));
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade = true;
        }
    }
    let refusal = match (content_length, chunked) {
        (Some(_), Some(_)) => Some(Refusal::LengthWithTransferEncoding),
        (Some(None), None) => Some(Refusal::BadContentLength),
        (None, Some(false)) => Some(Refusal::BadTransferEncoding),
        (None, Some(true)) if !http11 => Some(Refusal::BadTransferEncoding),
        _ if hosts > 1 => Some(Refusal::MultipleHost),
        _ if hosts == 0 && http11 => Some(Refusal::MissingHost),
        _ => None,
    };
    if let Some(why) = refusal {
        return Judged::Refused { len, why };
    }
    let length = match (content_length, chunked) {
        (_, Some(_)) => Length::Chunked,
        (Some(Some(0)), _) | (None, None) => Length::None,
        (Some(Some(n)), _) => Length::Bytes(n),
        // Refused above.
        (Some(None), None) => Length::None,
    };
    Judged::Request {
        len,
        length,
        may_switch: super::may_switch_protocols(connect, upgrade),
    }
}
