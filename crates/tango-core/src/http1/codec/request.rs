//! A client's request head (RFC 9112 3, 5, 6): parsed with httparse (hyper's parser,
//! same settings), judged by the framing guard's rules, and described by the facts the
//! engine acts on.
//!
//! Refused, in this order (the order hyper's server and the guard in front of it
//! answered in):
//! - bytes httparse rejects, more than [`MAX_HEADERS`] fields, or no head within
//!   `max_head` bytes ([`HeadError::Malformed`], [`HeadError::TooLarge`]);
//! - Content-Length with Transfer-Encoding (RFC 9112 6.3), a Content-Length that is
//!   not plain digits or two that differ, Transfer-Encoding whose last coding is not
//!   `chunked` or on HTTP/1.0, HTTP/1.1 without Host, two Hosts (RFC 9112 3.2): the
//!   guard's [`Refusal`]s, decided exactly as `http1::Framer` decides them;
//! - a target over 65,534 bytes, or one `http::Uri` does not take (hyper's checks);
//! - a target whose form does not fit the method (RFC 9112 3.2.3, 3.2.4): CONNECT
//!   takes the authority form and nothing else takes it; only OPTIONS takes `*`;
//! - userinfo in the target's authority, or a Host that is no host and port
//!   ([`is_host_value`]; userinfo among them);
//! - Transfer-Encoding other than exactly `chunked` (`proxy/headers.rs`).
//!
//! Keep-alive is hyper's rule (RFC 9112 9.3): HTTP/1.1 unless a Connection field says
//! `close`; HTTP/1.0 only when one says `keep-alive` (and none `close`).

use super::fields::{Headers, Kind, MAX_HEADERS};
use super::target::{self, Bad};
use super::{digits, items, HeadError, Refusal, Span, Version};
use std::mem::MaybeUninit;

pub use super::target::TargetForm;

/// The request method. Common ones are named; any other token is [`Method::Other`]
/// (its bytes are at [`RequestHead::method_span`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD: the response has no body, whatever its headers say.
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// TRACE
    Trace,
    /// PATCH
    Patch,
    /// CONNECT: a 2xx answer turns the connection into a tunnel.
    Connect,
    /// Any other method token (methods are case-sensitive: `get` is one of these).
    Other,
}

impl Method {
    fn of(m: &[u8]) -> Method {
        match m {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"TRACE" => Method::Trace,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            _ => Method::Other,
        }
    }

    /// GET, HEAD, OPTIONS, TRACE, PUT and DELETE (RFC 9110 9.2.2): what tango may send
    /// again after a backend reset, when there is no body.
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            Method::Get
                | Method::Head
                | Method::Options
                | Method::Trace
                | Method::Put
                | Method::Delete
        )
    }
}

/// How a request's body is delimited (RFC 9112 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body: neither Content-Length nor Transfer-Encoding.
    None,
    /// `Content-Length: n` (0 included: it is forwarded as sent).
    Length(u64),
    /// `Transfer-Encoding: chunked`: follow it with a [`super::ChunkedTracker`].
    Chunked,
}

/// The largest Content-Length hyper takes (`DecodedLength::MAX_LEN`); more is `431`
/// from hyper's server, and a bad upstream response from its client.
pub(super) const MAX_LENGTH: u64 = u64::MAX - 2;

/// A parsed request head: facts, and [`Span`]s into the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The method's bytes.
    pub method_span: Span,
    /// The request-target as sent.
    pub target: Span,
    /// Which form the target has.
    pub form: TargetForm,
    /// The path (no query, no fragment): what routes match. Empty for the authority
    /// form, `*` for the asterisk form.
    pub path: Span,
    /// Path and query without the fragment: what is forwarded (see
    /// [`super::write_request_head`] for the absolute and authority forms).
    pub origin: Span,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The head's length, leading empty lines included: the body (or the next
    /// request) starts at this offset.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: RequestFraming,
    /// Whether the client's connection may carry another request after this one.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request (the last Expect field decides).
    pub expect_continue: bool,
    /// The protocol tango tunnels if the backend agrees (the first Upgrade field,
    /// trimmed), as `proxy/headers.rs` decides: HTTP/1.1, `Connection: upgrade`, and
    /// nothing starting with `h2c` (tango speaks h2c itself). `None`: Upgrade, if any,
    /// is dropped as hop-by-hop.
    pub upgrade: Option<Span>,
    /// An absolute-form target's authority, whatever Host says (RFC 9112 3.2.2: a
    /// server ignores Host then, and a proxy sends the target's host on); otherwise the
    /// Host field's value, or without one the authority form's: what routes match, what
    /// the backend's Host and X-Forwarded-Host say.
    pub host: Option<Span>,
    /// The first X-Request-Id field's value.
    pub request_id: Option<Span>,
    /// The fields in order, the hop-by-hop ones marked.
    pub headers: Headers,
}

impl Default for RequestHead {
    /// An empty head, to parse into ([`parse_request_into`]).
    fn default() -> RequestHead {
        RequestHead {
            method: Method::Get,
            method_span: Span::EMPTY,
            target: Span::EMPTY,
            form: TargetForm::Origin,
            path: Span::EMPTY,
            origin: Span::EMPTY,
            version: Version::Http11,
            head_len: 0,
            framing: RequestFraming::None,
            keep_alive: false,
            expect_continue: false,
            upgrade: None,
            host: None,
            request_id: None,
            headers: Headers::default(),
        }
    }
}

impl RequestHead {
    /// CONNECT.
    pub fn is_connect(&self) -> bool {
        self.method == Method::Connect
    }

    /// The X-Forwarded-For values that survive hop-by-hop removal, in order: what
    /// tango appends the peer to, and what trusted-proxy key extraction reads.
    pub fn x_forwarded_for(&self) -> impl Iterator<Item = Span> + '_ {
        self.headers
            .of_kind(Kind::XForwardedFor)
            .filter(|h| !h.is_hop_by_hop())
            .map(|h| h.value())
    }
}

/// Parse the request head at the start of `buf`. `Ok(None)`: the head is not complete
/// yet (read more and call again with the longer buffer). `max_head` is the largest
/// head taken ([`HeadError::TooLarge`] once `buf` holds that many bytes without a
/// complete head). See the module documentation for what is refused.
///
/// This makes a new head; [`parse_request_into`] parses into one the caller keeps,
/// which is what the engine does (a head is a few hundred bytes: not copied about).
pub fn parse_request(buf: &[u8], max_head: usize) -> Result<Option<RequestHead>, HeadError> {
    let mut head = RequestHead::default();
    Ok(parse_request_into(buf, max_head, &mut head)?.then_some(head))
}

/// [`parse_request`] into `head`, which is overwritten whole: `Ok(true)` when the head
/// is complete and taken. On `Ok(false)` or an error, `head` holds nothing of use.
pub fn parse_request_into(
    buf: &[u8],
    max_head: usize,
    head: &mut RequestHead,
) -> Result<bool, HeadError> {
    let max_head = max_head.min(u32::MAX as usize);
    let window = &buf[..buf.len().min(max_head)];
    let mut raw = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(window, &mut raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= max_head => return Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => return Ok(false),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    // httparse fills these in on a complete parse.
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed);
    };
    let version = Version::from_minor(minor);
    head.headers
        .fill(buf, req.headers)
        .ok_or(HeadError::TooLarge)?;
    let scan = Scan::of(buf, &head.headers, version);
    if let Some(why) = scan.refusal(version) {
        return Err(HeadError::Refused(why));
    }
    let target_span = Span::within(buf, path.as_bytes());
    let t = target::classify(path.as_bytes()).map_err(|b| match b {
        Bad::TooLong => HeadError::UriTooLong,
        Bad::Invalid => HeadError::Malformed,
    })?;
    let method_kind = Method::of(method.as_bytes());
    if !t.form.fits(method_kind) {
        return Err(HeadError::Malformed);
    }
    // Userinfo (`user@host`) in the authority is an error (RFC 9110 4.2.4): it is how a
    // link hides the host it goes to, and no backend's Host may carry it. A Host that
    // is no host and port at all is refused too (RFC 9112 3.2: `400`); its `@` is
    // among the bytes it may not have.
    let target_userinfo = t
        .authority
        .is_some_and(|(s, e)| path.as_bytes()[s..e].contains(&b'@'));
    if target_userinfo || scan.bad_host {
        return Err(HeadError::Malformed);
    }
    if !scan.coding_ok() {
        return Err(HeadError::UnsupportedCoding);
    }
    let framing = scan.framing();
    if let RequestFraming::Length(n) = framing {
        if n > MAX_LENGTH {
            return Err(HeadError::TooLarge);
        }
    }
    let at = |(s, e): (usize, usize)| {
        Span::new(
            target_span.start as usize + s,
            target_span.start as usize + e,
        )
    };
    head.method = method_kind;
    head.method_span = Span::within(buf, method.as_bytes());
    head.target = target_span;
    head.form = t.form;
    head.path = at((t.origin.0, t.path_end));
    head.origin = at(t.origin);
    head.version = version;
    head.head_len = head_len;
    head.framing = framing;
    head.keep_alive = scan.keep_alive;
    head.expect_continue = scan.expect_continue && version == Version::Http11;
    head.upgrade = scan.upgrade(buf, version);
    head.host = match t.form {
        TargetForm::Absolute => t.authority.map(at).or(scan.host),
        _ => scan.host.or(t.authority.map(at)),
    };
    head.request_id = scan.request_id;
    head.headers.mark_hop_by_hop(buf, head.upgrade.is_some());
    Ok(true)
}

/// Whether `v` may be a Host field's value (RFC 9112 3.2, RFC 3986 3.2.2 and 3.2.3):
/// `uri-host [ ":" port ]`, judged by its bytes, which is what a backend, the routes
/// and X-Forwarded-Host must be able to take it as. The bytes are those of a
/// registered name (unreserved, percent-encoded, sub-delims), an IP literal's brackets
/// and colons, and the port's colon and digits: no space, `/`, `?`, `#`, `@`
/// (userinfo), `\`, quote or byte past ASCII. An empty value is one (a target without
/// an authority, RFC 9112 3.2). The bytes are checked against a table, about what
/// finding an `@` in them costs.
pub fn is_host_value(v: &[u8]) -> bool {
    const fn table() -> [bool; 256] {
        let mut t = [false; 256];
        let ok =
            b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=:[]";
        let mut i = 0;
        while i < ok.len() {
            t[ok[i] as usize] = true;
            i += 1;
        }
        t
    }
    static HOST: [bool; 256] = table();
    v.iter().all(|&b| HOST[usize::from(b)])
}

/// What one pass over a request's fields finds.
#[derive(Default)]
struct Scan {
    /// `Some(None)`: a value that is not digits, or two that differ.
    content_length: Option<Option<u64>>,
    /// Whether the last Transfer-Encoding field ends in chunked (hyper's rule).
    chunked: Option<bool>,
    /// Transfer codings over all fields, and whether the last was `chunked`.
    codings: u32,
    last_coding_chunked: bool,
    hosts: u32,
    host: Option<Span>,
    /// A Host value holds a byte no host or port has (an `@`: userinfo).
    bad_host: bool,
    keep_alive: bool,
    expect_continue: bool,
    first_upgrade: Option<Span>,
    connection_upgrade: bool,
    request_id: Option<Span>,
}

impl Scan {
    fn of(buf: &[u8], headers: &Headers, version: Version) -> Scan {
        // hyper: a close anywhere wins; otherwise HTTP/1.1, or a keep-alive, keeps.
        let conn = headers.connection();
        let mut s = Scan {
            keep_alive: !conn.close && (version == Version::Http11 || conn.keep_alive),
            connection_upgrade: conn.upgrade,
            ..Scan::default()
        };
        for h in headers.iter() {
            let v = h.value().of(buf);
            match h.kind() {
                Kind::ContentLength => {
                    let n = digits(v);
                    s.content_length = match s.content_length {
                        None => Some(n),
                        Some(prev) if prev == n => Some(n),
                        Some(_) => Some(None),
                    };
                }
                Kind::TransferEncoding => {
                    s.chunked = Some(ends_in_chunked(v));
                    for item in items(v) {
                        s.codings += 1;
                        s.last_coding_chunked = item.eq_ignore_ascii_case(b"chunked");
                    }
                }
                Kind::Host => {
                    s.hosts += 1;
                    s.host = Some(h.value());
                    s.bad_host |= !is_host_value(v);
                }
                Kind::Expect => s.expect_continue = v.eq_ignore_ascii_case(b"100-continue"),
                Kind::Upgrade if s.first_upgrade.is_none() => s.first_upgrade = Some(h.value()),
                Kind::XRequestId if s.request_id.is_none() => s.request_id = Some(h.value()),
                _ => {}
            }
        }
        s
    }

    /// The framing guard's refusals, in `http1::head::judge`'s order.
    fn refusal(&self, version: Version) -> Option<Refusal> {
        let http11 = version == Version::Http11;
        match (self.content_length, self.chunked) {
            (Some(_), Some(_)) => Some(Refusal::LengthWithTransferEncoding),
            (Some(None), None) => Some(Refusal::BadContentLength),
            (None, Some(false)) => Some(Refusal::BadTransferEncoding),
            (None, Some(true)) if !http11 => Some(Refusal::BadTransferEncoding),
            _ if self.hosts > 1 => Some(Refusal::MultipleHost),
            _ if self.hosts == 0 && http11 => Some(Refusal::MissingHost),
            _ => None,
        }
    }

    /// `proxy/headers.rs`'s `check_framing`: no coding, or exactly one, `chunked`.
    fn coding_ok(&self) -> bool {
        self.codings == 0 || (self.codings == 1 && self.last_coding_chunked)
    }

    fn framing(&self) -> RequestFraming {
        match (self.content_length, self.chunked) {
            (_, Some(_)) => RequestFraming::Chunked,
            (Some(Some(n)), _) => RequestFraming::Length(n),
            _ => RequestFraming::None,
        }
    }

    /// `proxy/headers.rs`'s `upgrade_protocol`.
    fn upgrade(&self, buf: &[u8], version: Version) -> Option<Span> {
        let up = self.first_upgrade?;
        let v = up.of(buf);
        if version != Version::Http11 || !self.connection_upgrade || !super::is_text(v) {
            return None;
        }
        let trimmed = v.trim_ascii();
        let h2c = items(trimmed).any(|p| p.len() >= 3 && p[..3].eq_ignore_ascii_case(b"h2c"));
        (!trimmed.is_empty() && !h2c).then(|| up.sub(buf, trimmed))
    }
}

/// Whether a Transfer-Encoding value's last coding is chunked, as hyper decides it (and
/// the framing guard with it): the value must be text, and its last comma-separated
/// item, trimmed, is `chunked` in any case.
pub(in crate::http1) fn ends_in_chunked(v: &[u8]) -> bool {
    super::is_text(v)
        && v.rsplit(|&b| b == b',')
            .next()
            .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}
