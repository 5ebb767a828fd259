//! The heads tango writes, each into one buffer, so it goes out in one write.
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

use super::fields::{Header, Kind};
use super::request::{RequestFraming, RequestHead, TargetForm};
use super::response::{ResponseFraming, ResponseHead};
use super::{is_text, Version};
use crate::rewrite::{host_of, Apply, Edits, Vars};

/// What tango adds to a forwarded request about where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forwarding<'a> {
    /// The client's address as X-Forwarded-For lists it (an IPv4-mapped IPv6 address
    /// written as IPv4): made once per connection.
    pub peer: &'a [u8],
    /// The client connection is TLS (X-Forwarded-Proto: https).
    pub tls: bool,
    /// The request's id: the client's X-Request-Id, or one tango made.
    pub request_id: &'a [u8],
    /// The route's request header edits, applied after tango's own fields (`None` when
    /// the route has none).
    pub edits: Option<&'a Edits>,
}

/// Append the head tango sends upstream for `req` (parsed from `buf`) to `out`. See
/// the module documentation. The target: origin form as received (without a fragment);
/// from the absolute form, its path and query (`/` when the path is empty); CONNECT's
/// authority as it is; `*` as it is; any other method's authority form becomes `/`.
pub fn write_request_head(out: &mut Vec<u8>, req: &RequestHead, buf: &[u8], fwd: &Forwarding<'_>) {
    out.reserve(req.head_len + 128);
    out.extend_from_slice(req.method_span.of(buf));
    out.push(b' ');
    write_target(out, req, buf);
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let edits = fwd.edits.filter(|e| !e.is_empty());
    // Checked per field only for a route with edits.
    let kept = |name: &[u8]| edits.is_none_or(|e| !e.drops(name));
    // An absolute-form target's host replaces the client's Host (RFC 9112 3.2.2).
    let from_target = req.form == TargetForm::Absolute && req.host.is_some();
    let has_host = req.headers.has(Kind::Host) && !from_target;
    // HTTP/1.1 requires Host, empty when there is no authority to give (RFC 9112 3.2):
    // an HTTP/1.0 request without one goes out as HTTP/1.1 all the same.
    if !has_host && kept(b"host") {
        write_field(out, b"host", req.host.map_or(&b""[..], |h| h.of(buf)));
    }
    // X-Forwarded-Host is set only when the host is known; otherwise the client's stays.
    let replace_xfh = req.host.is_some();
    let mut lines = Lines::new(buf);
    for h in req.headers.iter() {
        let drop = match h.kind() {
            // Host stays even when Connection names it (tango put it back), unless
            // the target's host replaced it.
            Kind::Host => from_target,
            Kind::ContentLength
            | Kind::XForwardedFor
            | Kind::XForwardedProto
            | Kind::XRequestId => true,
            Kind::XForwardedHost => replace_xfh || h.is_hop_by_hop(),
            _ => h.is_hop_by_hop(),
        };
        if !drop && kept(h.name().of(buf)) {
            lines.push(out, h);
        }
    }
    lines.flush(out);
    if req.upgrade.is_some() {
        out.extend_from_slice(b"connection: upgrade\r\n");
    }
    write_forwarding(out, req, buf, fwd, kept);
    if let Some(e) = edits {
        let vars = Vars {
            client_addr: fwd.peer,
            request_id: fwd.request_id,
            host: req.host.map_or(&b""[..], |h| host_of(h.of(buf))),
        };
        e.write_fields(out, &vars);
    }
    match req.framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => length(out, n),
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// X-Forwarded-For, -Proto, -Host and X-Request-Id, each unless the route's edits
/// drop it (`kept`).
fn write_forwarding(
    out: &mut Vec<u8>,
    req: &RequestHead,
    buf: &[u8],
    fwd: &Forwarding<'_>,
    kept: impl Fn(&[u8]) -> bool,
) {
    if kept(b"x-forwarded-for") {
        write_forwarded_for(out, req, buf, fwd.peer);
    }
    if kept(b"x-forwarded-proto") {
        // The whole line is one of two: one copy.
        let line: &[u8] = if fwd.tls {
            b"x-forwarded-proto: https\r\n"
        } else {
            b"x-forwarded-proto: http\r\n"
        };
        out.extend_from_slice(line);
    }
    if let Some(host) = req.host.filter(|_| kept(b"x-forwarded-host")) {
        write_field(out, b"x-forwarded-host", host.of(buf));
    }
    if kept(b"x-request-id") {
        write_field(out, b"x-request-id", fwd.request_id);
    }
}

fn write_target(out: &mut Vec<u8>, req: &RequestHead, buf: &[u8]) {
    let origin = req.origin.of(buf);
    match req.form {
        TargetForm::Origin | TargetForm::Asterisk => out.extend_from_slice(origin),
        TargetForm::Absolute => {
            if !origin.starts_with(b"/") {
                out.push(b'/');
            }
            out.extend_from_slice(origin);
        }
        TargetForm::Authority if req.is_connect() => out.extend_from_slice(req.target.of(buf)),
        TargetForm::Authority => out.push(b'/'),
    }
}

/// `add_forwarded`: the client's X-Forwarded-For values that are text, trimmed, the
/// empty ones left out, joined with `, `, then the peer.
fn write_forwarded_for(out: &mut Vec<u8>, req: &RequestHead, buf: &[u8], peer: &[u8]) {
    out.extend_from_slice(b"x-forwarded-for: ");
    for v in req.x_forwarded_for().map(|s| s.of(buf)) {
        let v = v.trim_ascii();
        if is_text(v) && !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(peer);
    out.extend_from_slice(b"\r\n");
}

/// The client's side of a response: what its request said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientFacts {
    /// The client's request version: the response's status line has it.
    pub version: Version,
    /// The client's request allows another on the connection, and tango means to
    /// read one (false when it will close anyway, say while draining).
    pub keep_alive: bool,
    /// The request was HEAD (the backend's Content-Length is passed on).
    pub is_head: bool,
}

/// How the response body goes to the client, after the head [`write_response_head`]
/// wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyPlan {
    /// No body.
    None,
    /// Exactly this many bytes, as they come.
    Length(u64),
    /// A chunked body, as it comes: a [`super::ChunkedTracker`] finds its end.
    Chunked,
    /// A close-delimited body, framed as chunks ([`super::encode_chunk`] each read,
    /// [`super::LAST_CHUNK`] when the backend closes).
    ChunkEncode,
    /// A chunked body to an HTTP/1.0 client: only its data
    /// ([`super::ChunkedTracker::feed_data`]); the end is told by closing.
    DechunkToClose,
    /// A close-delimited body to an HTTP/1.0 client: as it comes, until the backend
    /// closes; then the client connection closes.
    CloseDelimited,
    /// A protocol switch: after the head, bytes pass both ways unframed.
    Tunnel,
}

/// What [`write_response_head`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePlan {
    /// How the body is sent.
    pub body: BodyPlan,
    /// Whether the client connection takes another request after this response.
    pub keep_alive: bool,
}

/// Append the head of `resp` (parsed from `buf`) for the client to `out`, and say how
/// its body is sent. `date` is the Date value to add when the backend sent none (an
/// IMF-fixdate, formatted once a second by the caller). An interim (1xx) response
/// goes only to an HTTP/1.1 client (RFC 9110 15.2): for HTTP/1.0 nothing is written.
pub fn write_response_head(
    out: &mut Vec<u8>,
    resp: &ResponseHead,
    buf: &[u8],
    client: ClientFacts,
    date: &[u8],
) -> ResponsePlan {
    write_response_head_edited(out, resp, buf, client, date, None)
}

/// [`write_response_head`], with the route's response edits applied to a final
/// response after tango's own fields (Date included); framing fields are tango's.
pub fn write_response_head_edited(
    out: &mut Vec<u8>,
    resp: &ResponseHead,
    buf: &[u8],
    client: ClientFacts,
    date: &[u8],
    edits: Option<&Apply<'_>>,
) -> ResponsePlan {
    let plan = plan(resp, client);
    if resp.interim && client.version == Version::Http10 {
        return plan;
    }
    let edits = edits.filter(|a| !resp.interim && !a.edits.is_empty());
    let kept = |name: &[u8]| edits.is_none_or(|a| !a.edits.drops(name));
    out.reserve(resp.head_len + 64);
    status_line(out, client.version, resp.status, resp.reason.of(buf));
    let mut lines = Lines::new(buf);
    for h in resp.headers.iter() {
        if !(h.is_hop_by_hop() || h.kind() == Kind::ContentLength) && kept(h.name().of(buf)) {
            lines.push(out, h);
        }
    }
    lines.flush(out);
    if resp.interim {
        out.extend_from_slice(b"\r\n");
        return plan;
    }
    match (plan.body, client.version, plan.keep_alive) {
        (BodyPlan::Tunnel, _, _) if resp.status == 101 => {
            out.extend_from_slice(b"connection: upgrade\r\n");
        }
        (BodyPlan::Tunnel, _, _) => {}
        (_, Version::Http11, false) => out.extend_from_slice(b"connection: close\r\n"),
        (_, Version::Http10, true) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        _ => {}
    }
    match plan.body {
        BodyPlan::Length(n) => length(out, n),
        BodyPlan::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        BodyPlan::ChunkEncode => chunk_encoded(out, resp, buf),
        BodyPlan::None if client.is_head => {
            if let Some(n) = resp.content_length {
                length(out, n);
            }
        }
        _ => {}
    }
    if !resp.has_date() && kept(b"date") {
        write_field(out, b"date", date);
    }
    if let Some(a) = edits {
        a.edits.write_fields(out, &a.vars);
    }
    out.extend_from_slice(b"\r\n");
    plan
}

/// The framing field of a close-delimited body sent as chunks: `chunked` after the
/// codings the backend applied, if any (`Transfer-Encoding: gzip` without `chunked`
/// ends at the close), since the bytes stay coded and the client must know it.
fn chunk_encoded(out: &mut Vec<u8>, resp: &ResponseHead, buf: &[u8]) {
    out.extend_from_slice(b"transfer-encoding: ");
    for h in resp.headers.of_kind(Kind::TransferEncoding) {
        let v = h.value().of(buf);
        if !v.is_empty() {
            out.extend_from_slice(v);
            out.extend_from_slice(b", ");
        }
    }
    out.extend_from_slice(b"chunked\r\n");
}

/// The body plan and the client connection's fate, as hyper's server decided them.
fn plan(resp: &ResponseHead, client: ClientFacts) -> ResponsePlan {
    let http11 = client.version == Version::Http11;
    let (body, closes) = match resp.framing {
        _ if resp.switching => (BodyPlan::Tunnel, true),
        ResponseFraming::NoBody => (BodyPlan::None, false),
        ResponseFraming::Length(n) => (BodyPlan::Length(n), false),
        ResponseFraming::Chunked if http11 => (BodyPlan::Chunked, false),
        ResponseFraming::Chunked => (BodyPlan::DechunkToClose, true),
        ResponseFraming::CloseDelimited if http11 => (BodyPlan::ChunkEncode, false),
        ResponseFraming::CloseDelimited => (BodyPlan::CloseDelimited, true),
    };
    ResponsePlan {
        body,
        keep_alive: client.keep_alive && !closes,
    }
}

/// Append tango's own complete response: `status`, and `text` (none when empty) as
/// `text/plain`. `close`: the connection closes after it (`Connection: close`);
/// otherwise an HTTP/1.0 client is told `keep-alive`. `version` is the client's (an
/// unreadable request is answered in HTTP/1.1). `date` as for [`write_response_head`].
/// hyper's own answers to bad requests had no body: pass `""`.
pub fn write_error_response(
    out: &mut Vec<u8>,
    version: Version,
    status: u16,
    text: &str,
    close: bool,
    date: &[u8],
) {
    let own = OwnResponse {
        version,
        status,
        location: None,
        text,
        close,
        date,
    };
    write_own_response(out, &own, None);
}

/// An answer tango makes itself: an error, or a redirect.
#[derive(Debug, Clone, Copy)]
pub struct OwnResponse<'a> {
    /// The client's version.
    pub version: Version,
    /// The status.
    pub status: u16,
    /// A redirect's `Location`.
    pub location: Option<&'a [u8]>,
    /// A `text/plain` body; none when empty.
    pub text: &'a str,
    /// The connection closes after it.
    pub close: bool,
    /// The Date value.
    pub date: &'a [u8],
}

/// Append tango's own answer `r` (see [`write_error_response`]), with the route's
/// response edits applied after tango's fields.
pub fn write_own_response(out: &mut Vec<u8>, r: &OwnResponse<'_>, edits: Option<&Apply<'_>>) {
    let edits = edits.filter(|a| !a.edits.is_empty());
    let kept = |name: &[u8]| edits.is_none_or(|a| !a.edits.drops(name));
    out.reserve(128 + r.text.len());
    status_line(out, r.version, r.status, reason_phrase(r.status).as_bytes());
    if let Some(l) = r.location.filter(|_| kept(b"location")) {
        write_field(out, b"location", l);
    }
    if !r.text.is_empty() && kept(b"content-type") {
        out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\n");
    }
    match (r.close, r.version) {
        (true, _) => out.extend_from_slice(b"connection: close\r\n"),
        (false, Version::Http10) => out.extend_from_slice(b"connection: keep-alive\r\n"),
        (false, Version::Http11) => {}
    }
    length(out, r.text.len() as u64);
    if kept(b"date") {
        write_field(out, b"date", r.date);
    }
    if let Some(a) = edits {
        a.edits.write_fields(out, &a.vars);
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(r.text.as_bytes());
}

/// The reason phrase tango writes for a status it answers with itself (the `http`
/// crate's canonical phrases); `"<none>"` for others, as hyper wrote.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "<none>",
    }
}

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
