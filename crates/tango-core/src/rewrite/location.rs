//! The `Location` of a redirect: the request's URL with the parts the route names
//! replaced (RFC 9110 10.2.2).

use crate::config::Redirect;

/// The URL a request was sent to, as the data plane knows it.
#[derive(Debug, Clone, Copy)]
pub struct RequestUrl<'a> {
    /// The client connection is TLS (the request's scheme is `https`).
    pub tls: bool,
    /// The Host field's value, or the target's authority (HTTP/2's `:authority`).
    pub authority: Option<&'a [u8]>,
    /// The path and query as sent, without a fragment.
    pub target: &'a [u8],
}

/// The request's host is unknown (or not a host), and the redirect names none: there is
/// no absolute URL to send the client to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoHost;

/// Append the `Location` for `req` under redirect `r` to `out`: scheme, host and port
/// as `r` sets them or as the request had them (a port is kept only with its scheme;
/// a scheme's default port is not written), then `r`'s path or the request's, then the
/// request's query. When only the path changes and the request has no usable host, the
/// location is the path and query alone (a relative reference). Nothing is written on
/// `Err`.
pub fn write_location(r: &Redirect, req: &RequestUrl<'_>, out: &mut Vec<u8>) -> Result<(), NoHost> {
    let (path, query) = split_target(req.target);
    let path = r.path.as_deref().map_or(path, str::as_bytes);
    let requested = req.authority.and_then(authority);
    let host = match (r.host.as_deref(), requested) {
        (Some(h), _) => h.as_bytes(),
        (None, Some((h, _))) => h,
        (None, None) if r.scheme.is_none() && r.port.is_none() => {
            write_path(out, path, query);
            return Ok(());
        }
        (None, None) => return Err(NoHost),
    };
    let own = if req.tls { "https" } else { "http" };
    let scheme = r.scheme.as_deref().unwrap_or(own);
    let port = match r.port {
        Some(p) => Some(p),
        None if scheme == own => requested.and_then(|(_, p)| p),
        None => None,
    };
    out.extend_from_slice(scheme.as_bytes());
    out.extend_from_slice(b"://");
    if host.contains(&b':') {
        out.push(b'[');
        out.extend_from_slice(host);
        out.push(b']');
    } else {
        out.extend_from_slice(host);
    }
    let default = if scheme == "https" { 443 } else { 80 };
    if let Some(p) = port.filter(|&p| p != default) {
        out.push(b':');
        out.extend_from_slice(p.to_string().as_bytes());
    }
    write_path(out, path, query);
    Ok(())
}

fn write_path(out: &mut Vec<u8>, path: &[u8], query: Option<&[u8]>) {
    // `*` (OPTIONS) and CONNECT's authority have no path: the root stands for it.
    if path.starts_with(b"/") {
        out.extend_from_slice(path);
    } else {
        out.push(b'/');
    }
    if let Some(q) = query {
        out.push(b'?');
        out.extend_from_slice(q);
    }
}

/// The path and the query (without its `?`) of a target.
fn split_target(t: &[u8]) -> (&[u8], Option<&[u8]>) {
    let t = t.split(|&b| b == b'#').next().unwrap_or(t);
    match t.iter().position(|&b| b == b'?') {
        Some(q) => (&t[..q], Some(&t[q + 1..])),
        None => (t, None),
    }
}

/// Host and port of an authority, when it is one a URL may carry: a registered name or
/// an IPv4 address (letters, digits, `-`, `.`, `_`, `~`), or an IPv6 literal in
/// brackets; a port of digits. Userinfo and anything else: `None`.
fn authority(a: &[u8]) -> Option<(&[u8], Option<u16>)> {
    let (host, port) = if let Some(rest) = a.strip_prefix(b"[") {
        let end = rest.iter().position(|&b| b == b']')?;
        let (host, after) = (&rest[..end], &rest[end + 1..]);
        let ok = |b: &u8| b.is_ascii_hexdigit() || b":.".contains(b);
        if host.is_empty() || !host.iter().all(ok) {
            return None;
        }
        (host, after)
    } else {
        let at = a.iter().position(|&b| b == b':').unwrap_or(a.len());
        let host = &a[..at];
        let ok = |b: &u8| b.is_ascii_alphanumeric() || b"-._~".contains(b);
        if host.is_empty() || !host.iter().all(ok) {
            return None;
        }
        (host, &a[at..])
    };
    let port = match port {
        [] => None,
        [b':'] => None,
        [b':', digits @ ..] if digits.iter().all(u8::is_ascii_digit) => {
            Some(std::str::from_utf8(digits).ok()?.parse().ok()?)
        }
        _ => return None,
    };
    Some((host, port))
}
