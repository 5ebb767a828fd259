//! The request head a backend gets: the request line with the target in origin form
//! (CONNECT's authority as it is), the client's fields minus the hop-by-hop ones,
//! Host, the forwarding fields tango adds, the route's edits and the framing field.

use super::super::fields::Kind;
use super::super::is_text;
use super::super::request::{RequestFraming, RequestHead, TargetForm};
use super::{length, write_field, Lines};
use crate::rewrite::{host_of, Edits, Vars};

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
