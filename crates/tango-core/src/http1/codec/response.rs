//! An upstream response head (RFC 9112 4, 6.3): parsed with httparse, its body's
//! delimitation decided as hyper's client decided it, in this order:
//! 1. `101`: a protocol switch, no body (only to a request that asked to upgrade);
//! 2. other 1xx: interim, no body, another head follows;
//! 3. `204`, `304`, any answer to HEAD, a 2xx to CONNECT (a tunnel): no body;
//! 4. Transfer-Encoding: chunked if the last field's last coding is `chunked`,
//!    otherwise read until the connection closes (refused on HTTP/1.0, and with
//!    Content-Length: a proxy must not choose between them, RFC 9112 6.3 item 3);
//! 5. Content-Length (every value, comma lists included, the same number);
//! 6. otherwise until the connection closes.
//!
//! Every error here is the backend's: the client gets a `502`.

use super::fields::{Headers, Kind, MAX_HEADERS};
use super::request::MAX_LENGTH;
use super::{digits, items, HeadError, Refusal, Span, Version};
use std::mem::MaybeUninit;

/// What the response answers: the facts of the request that decide its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestFacts {
    /// The request was HEAD: no body, whatever the headers say.
    pub is_head: bool,
    /// The request was CONNECT: a 2xx opens a tunnel.
    pub is_connect: bool,
    /// The request asked to upgrade (tango forwarded its Upgrade): a `101` switches.
    pub upgrade: bool,
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body follows the head.
    NoBody,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked: follow it with a [`super::ChunkedTracker`].
    Chunked,
    /// Everything until the backend closes; the connection is not reused.
    CloseDelimited,
}

/// A parsed response head: facts, and [`Span`]s into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code (100 to 999).
    pub status: u16,
    /// The backend's version.
    pub version: Version,
    /// The reason phrase as sent (possibly empty).
    pub reason: Span,
    /// The head's length: the body (or the next response) starts at this offset.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: ResponseFraming,
    /// The Content-Length, when valid (a HEAD response's is forwarded).
    pub content_length: Option<u64>,
    /// Whether the upstream connection may carry another request once this response
    /// is read: HTTP/1.1 without `Connection: close` (HTTP/1.0 with `keep-alive`),
    /// not close-delimited, not switching, and no body may follow an answer that has
    /// none (see `body_may_follow`).
    pub keep_alive: bool,
    /// A 1xx other than 101: forward it (to an HTTP/1.1 client) and read the next head.
    pub interim: bool,
    /// A `101` to an upgrade, or a 2xx to CONNECT: after the head, a tunnel.
    pub switching: bool,
    /// The body has a transfer coding other than `chunked` (`gzip, chunked`, or a
    /// close-delimited `gzip`): tango passes its bytes on as they are, so the client
    /// must be told of the coding, which only an HTTP/1.1 response can do.
    pub coded: bool,
    /// The fields in order, the hop-by-hop ones marked.
    pub headers: Headers,
}

impl Default for ResponseHead {
    /// An empty head, to parse into ([`parse_response_into`]).
    fn default() -> ResponseHead {
        ResponseHead {
            status: 200,
            version: Version::Http11,
            reason: Span::EMPTY,
            head_len: 0,
            framing: ResponseFraming::NoBody,
            content_length: None,
            keep_alive: false,
            interim: false,
            switching: false,
            coded: false,
            headers: Headers::default(),
        }
    }
}

impl ResponseHead {
    /// Whether the backend sent a Date (tango adds one otherwise, as hyper did).
    pub fn has_date(&self) -> bool {
        self.headers.has(Kind::Date)
    }
}

/// Parse the response head at the start of `buf`, the answer to a request described
/// by `req`. `Ok(None)`: not complete yet. [`HeadError::TooLarge`] once `buf` holds
/// `max_head` bytes without a complete head. See the module documentation.
///
/// This makes a new head; [`parse_response_into`] parses into one the caller keeps,
/// which is what the engine does.
pub fn parse_response(
    buf: &[u8],
    max_head: usize,
    req: RequestFacts,
) -> Result<Option<ResponseHead>, HeadError> {
    let mut head = ResponseHead::default();
    Ok(parse_response_into(buf, max_head, req, &mut head)?.then_some(head))
}

/// [`parse_response`] into `head`, which is overwritten whole: `Ok(true)` when the
/// head is complete and taken. On `Ok(false)` or an error, `head` holds nothing of use.
pub fn parse_response_into(
    buf: &[u8],
    max_head: usize,
    req: RequestFacts,
    head: &mut ResponseHead,
) -> Result<bool, HeadError> {
    let max_head = max_head.min(u32::MAX as usize);
    let window = &buf[..buf.len().min(max_head)];
    let mut raw = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, window, &mut raw);
    let head_len = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max_head => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(false),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    let (Some(status @ 100..), Some(minor)) = (resp.code, resp.version) else {
        return Err(HeadError::Malformed);
    };
    let version = Version::from_minor(minor);
    head.headers
        .fill(buf, resp.headers)
        .ok_or(HeadError::TooLarge)?;
    let fields = Fields::of(buf, &head.headers, version);
    let (framing, switching) = decide(status, version, req, &fields)?;
    head.headers.mark_hop_by_hop(buf, status == 101);
    head.status = status;
    head.version = version;
    head.reason = Span::within(buf, resp.reason.unwrap_or("").as_bytes());
    head.head_len = head_len;
    head.framing = framing;
    head.content_length = fields.content_length.flatten();
    head.keep_alive = fields.keep_alive
        && !switching
        && framing != ResponseFraming::CloseDelimited
        && !body_may_follow(status, &fields);
    head.interim = (100..200).contains(&status) && status != 101;
    head.switching = switching;
    head.coded = fields.coded
        && matches!(
            framing,
            ResponseFraming::Chunked | ResponseFraming::CloseDelimited
        );
    Ok(true)
}

/// Framing and whether the connection switches, in hyper's client's order.
fn decide(
    status: u16,
    version: Version,
    req: RequestFacts,
    f: &Fields,
) -> Result<(ResponseFraming, bool), HeadError> {
    match status {
        101 if req.upgrade => return Ok((ResponseFraming::NoBody, true)),
        101 => return Err(HeadError::UnexpectedResponse),
        100..=199 | 204 | 304 => return Ok((ResponseFraming::NoBody, false)),
        _ if req.is_head => return Ok((ResponseFraming::NoBody, false)),
        200..=299 if req.is_connect => return Ok((ResponseFraming::NoBody, true)),
        _ => {}
    }
    let framing = match (f.chunked, f.content_length) {
        (Some(_), _) if version == Version::Http10 => return Err(HeadError::UnexpectedResponse),
        (Some(_), Some(_)) => return Err(HeadError::Refused(Refusal::LengthWithTransferEncoding)),
        (Some(true), None) => ResponseFraming::Chunked,
        (Some(false), None) => ResponseFraming::CloseDelimited,
        (None, Some(Some(n))) if n <= MAX_LENGTH => ResponseFraming::Length(n),
        (None, Some(Some(_))) => return Err(HeadError::TooLarge),
        (None, Some(None)) => return Err(HeadError::Refused(Refusal::BadContentLength)),
        (None, None) => ResponseFraming::CloseDelimited,
    };
    Ok((framing, false))
}

/// Whether a body may come after this head though the answer has none: a `204` whose
/// head announces one (a length over zero, or a transfer coding), which RFC 9110 8.6 and
/// 15.3.5 forbid. Such a backend sends that body after the head, maybe later than the
/// head; a connection used again would take it for the next request's answer (a desync
/// that could hand one client's answer to another), so it is not used again. An answer
/// to HEAD, or a `304`, keeps its connection: their length is the representation's,
/// which RFC 9110 lets them announce, and they are common enough (health checkers,
/// caches revalidating) for a new connection each to cost; nginx and HAProxy reuse them
/// too. A body that such a backend sends with the head still ends reuse (the bytes past
/// the head are seen).
fn body_may_follow(status: u16, f: &Fields) -> bool {
    let announced = f.chunked.is_some() || matches!(f.content_length, Some(n) if n != Some(0));
    announced && status == 204
}

/// What one pass over a response's fields finds.
struct Fields {
    /// `Some(None)`: a value that is not a number, or numbers that differ.
    content_length: Option<Option<u64>>,
    /// Whether the last Transfer-Encoding field ends in chunked.
    chunked: Option<bool>,
    /// Some Transfer-Encoding item is a coding other than `chunked`.
    coded: bool,
    keep_alive: bool,
}

impl Fields {
    fn of(buf: &[u8], headers: &Headers, version: Version) -> Fields {
        // hyper: a close anywhere wins; otherwise HTTP/1.1, or a keep-alive, keeps.
        let conn = headers.connection();
        let mut f = Fields {
            content_length: None,
            chunked: None,
            coded: false,
            keep_alive: !conn.close && (version == Version::Http11 || conn.keep_alive),
        };
        for h in headers.iter() {
            let v = h.value().of(buf);
            match h.kind() {
                // hyper's `content_length_parse_all`: each value may be a list.
                Kind::ContentLength => {
                    for n in items(v).map(digits) {
                        f.content_length = match f.content_length {
                            None => Some(n),
                            Some(prev) if prev == n => Some(n),
                            Some(_) => Some(None),
                        };
                    }
                }
                Kind::TransferEncoding => {
                    f.chunked = Some(super::request::ends_in_chunked(v));
                    f.coded |= !v.eq_ignore_ascii_case(b"chunked")
                        && items(v).any(|c| !c.is_empty() && !c.eq_ignore_ascii_case(b"chunked"));
                }
                _ => {}
            }
        }
        f
    }
}
