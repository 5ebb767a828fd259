//! tango's own answers: an error with a short text body, or a redirect with its
//! Location, framed by their length, with the route's edits; and the reason phrases
//! they are written with.

use super::super::Version;
use super::{length, status_line, write_field};
use crate::rewrite::Apply;

/// Append tango's own complete response: `status`, and `text` (none when empty) as
/// `text/plain`. `close`: the connection closes after it (`Connection: close`);
/// otherwise an HTTP/1.0 client is told `keep-alive`. `version` is the client's (an
/// unreadable request is answered in HTTP/1.1). `date` as for
/// [`write_response_head`](super::write_response_head).
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
