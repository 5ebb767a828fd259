//! Hash keys from a request: the client address (believing `Forwarded` /
//! `X-Forwarded-For` only from trusted proxies), a header, a cookie, the path or a query
//! parameter. The request is read through `RequestView`, so the proxy can lend its
//! `http::Request` without copying anything.

use super::hash::hash_bytes;
use crate::config::{Cidr, HashKey};
use std::net::IpAddr;

/// What key extraction needs from a request.
pub trait RequestView {
    /// Every value of the header `name` (lower-case), in the order they appear.
    fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]>;
    /// The path, without the query string.
    fn path(&self) -> &str;
    /// The query string without the leading `?`, if any.
    fn query(&self) -> Option<&str>;
    /// The address of the directly connected peer.
    fn peer(&self) -> IpAddr;
}

/// The hash of the request's key, or `None` when the key is absent (or empty: an empty
/// value would send every such request to one backend).
pub fn key_hash(key: &HashKey, req: &impl RequestView, trusted: &[Cidr]) -> Option<u64> {
    match key {
        HashKey::ClientAddress => Some(hash_ip(client_address(req, trusted))),
        HashKey::Header(name) => req.header_values(name).next().and_then(non_empty),
        HashKey::Cookie(name) => cookie(req, name).and_then(non_empty),
        HashKey::Path => non_empty(req.path().as_bytes()),
        HashKey::Query(name) => query_param(req.query()?, name).and_then(non_empty),
    }
}

fn non_empty(v: &[u8]) -> Option<u64> {
    (!v.is_empty()).then(|| hash_bytes(v))
}

/// Hash an address by its octets, IPv4-mapped IPv6 counted as the IPv4 address.
pub fn hash_ip(ip: IpAddr) -> u64 {
    match canonical(ip) {
        IpAddr::V4(v4) => hash_bytes(&v4.octets()),
        IpAddr::V6(v6) => hash_bytes(&v6.octets()),
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address. Forwarding headers are read only when the peer is a trusted
/// proxy; then the hops are walked from the right (the most recent), skipping trusted
/// proxies, and the first untrusted hop is the client. `Forwarded` (RFC 7239) is preferred
/// to `X-Forwarded-For` when both are present. A hop that does not parse as an address
/// ("unknown", an obfuscated name, garbage) stops the walk at the last trusted hop, since
/// whatever lies to its left could have been written by anyone.
pub fn client_address(req: &impl RequestView, trusted: &[Cidr]) -> IpAddr {
    let peer = canonical(req.peer());
    if !is_trusted(peer, trusted) {
        return peer;
    }
    // The walk from the right is computed left to right, without collecting the hops:
    // `found` is the answer for the hops seen so far, `None` meaning "the hop to their
    // right" (reached when the rightmost hop so far does not parse).
    let mut found: Option<IpAddr> = None;
    let mut step = |hop: &[u8]| {
        found = match parse_hop(hop) {
            None => None,
            Some(ip) if !is_trusted(ip, trusted) => Some(ip),
            Some(ip) => Some(found.unwrap_or(ip)),
        }
    };
    if req.header_values("forwarded").next().is_some() {
        for v in req.header_values("forwarded") {
            v.split(|&c| c == b',').for_each(|e| step(forwarded_for(e)));
        }
    } else {
        for v in req.header_values("x-forwarded-for") {
            v.split(|&c| c == b',').for_each(&mut step);
        }
    }
    found.unwrap_or(peer)
}

fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// The `for=` parameter of one `Forwarded` element (empty if none).
fn forwarded_for(element: &[u8]) -> &[u8] {
    for pair in element.split(|&c| c == b';') {
        let pair = pair.trim_ascii();
        if let Some(eq) = pair.iter().position(|&c| c == b'=') {
            if pair[..eq].trim_ascii().eq_ignore_ascii_case(b"for") {
                return pair[eq + 1..].trim_ascii();
            }
        }
    }
    &[]
}

/// Parse `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:80`, optionally quoted.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(hop).ok()?.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let host = if let Some(rest) = s.strip_prefix('[') {
        &rest[..rest.find(']')?]
    } else {
        s.rsplit_once(':')?.0
    };
    host.parse::<IpAddr>().ok().map(canonical)
}

/// The first cookie called `name` across every `Cookie` header.
fn cookie<'a>(req: &'a impl RequestView, name: &str) -> Option<&'a [u8]> {
    req.header_values("cookie")
        .flat_map(|v| v.split(|&c| c == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&c| c == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
}

/// The raw (not percent-decoded) value of the first query parameter called `name`.
fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a [u8]> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v.as_bytes())
    })
}

#[cfg(test)]
mod tests;
