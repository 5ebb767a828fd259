//! A request as a running instance sampled it, compact enough to keep thousands: the
//! client's address (already resolved through the listener's trusted proxies), the path,
//! the query and the headers, packed into one buffer. It is a [`RequestView`], so a
//! pool's hash key is read from it by the very code the proxy uses, whatever key the
//! pool hashes on now or after a reload.

use crate::policy::RequestView;
use std::net::IpAddr;

/// Bytes of header names and values kept per request; headers past it are dropped (a
/// key in one of them reads as missing).
pub const SAMPLE_HEADER_BUDGET: usize = 1024;

/// A request as the live instance sampled it: what any hash key may be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampledRequest {
    client: IpAddr,
    /// Path, query, then each header's name and value, back to back.
    buf: Box<[u8]>,
    path_len: u32,
    /// `None`: the request had no query string.
    query_len: Option<u32>,
    /// Per header: the name's and the value's length, in `buf` order.
    headers: Box<[(u16, u16)]>,
}

impl SampledRequest {
    /// `headers` are (lower-case name, value) pairs in the order the request had them.
    pub fn new<'a>(
        client: IpAddr,
        path: &str,
        query: Option<&str>,
        headers: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Self {
        let mut buf = Vec::with_capacity(path.len() + query.map_or(0, str::len) + 256);
        buf.extend_from_slice(path.as_bytes());
        if let Some(q) = query {
            buf.extend_from_slice(q.as_bytes());
        }
        let fixed = buf.len();
        let mut lens = Vec::new();
        for (name, value) in headers {
            let used = buf.len() - fixed;
            let (Ok(n), Ok(v)) = (u16::try_from(name.len()), u16::try_from(value.len())) else {
                continue;
            };
            if used + name.len() + value.len() > SAMPLE_HEADER_BUDGET {
                break;
            }
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(value);
            lens.push((n, v));
        }
        SampledRequest {
            client,
            buf: buf.into_boxed_slice(),
            path_len: path.len() as u32,
            query_len: query.map(|q| q.len() as u32),
            headers: lens.into_boxed_slice(),
        }
    }

    fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let start = self.path_len as usize + self.query_len.unwrap_or(0) as usize;
        self.headers.iter().scan(start, |at, &(n, v)| {
            let (n, v) = (usize::from(n), usize::from(v));
            let name = &self.buf[*at..*at + n];
            let value = &self.buf[*at + n..*at + n + v];
            *at += n + v;
            Some((name, value))
        })
    }
}

impl RequestView for SampledRequest {
    fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        let name = name.as_bytes().to_vec();
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v)
    }

    fn path(&self) -> &str {
        // Built from `&str`s, so the slice is valid UTF-8; an empty path otherwise.
        std::str::from_utf8(&self.buf[..self.path_len as usize]).unwrap_or("")
    }

    fn query(&self) -> Option<&str> {
        let len = self.query_len? as usize;
        let start = self.path_len as usize;
        std::str::from_utf8(&self.buf[start..start + len]).ok()
    }

    /// The client as the listener resolved it: hashing with no trusted proxies reads it
    /// as is.
    fn peer(&self) -> IpAddr {
        self.client
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HashKey;
    use crate::policy::{hash_bytes, hash_ip, key_hash};

    fn req() -> SampledRequest {
        let headers: Vec<(&str, &[u8])> = vec![
            ("host", b"example.com"),
            ("x-user", b"alice"),
            ("cookie", b"a=1; session=s-42"),
            ("x-user", b"bob"),
        ];
        SampledRequest::new(
            "10.0.0.7".parse().unwrap(),
            "/items/9",
            Some("tenant=acme&x=1"),
            headers.into_iter(),
        )
    }

    #[test]
    fn every_hash_key_reads_as_the_proxy_reads_it() {
        let r = req();
        let h = |k: HashKey| key_hash(&k, &r, &[]);
        assert_eq!(
            h(HashKey::Header("X-User".into())),
            Some(hash_bytes(b"alice"))
        );
        assert_eq!(
            h(HashKey::Cookie("session".into())),
            Some(hash_bytes(b"s-42"))
        );
        assert_eq!(h(HashKey::Path), Some(hash_bytes(b"/items/9")));
        assert_eq!(
            h(HashKey::Query("tenant".into())),
            Some(hash_bytes(b"acme"))
        );
        assert_eq!(
            h(HashKey::ClientAddress),
            Some(hash_ip("10.0.0.7".parse().unwrap()))
        );
        assert_eq!(h(HashKey::Header("x-missing".into())), None);
    }

    #[test]
    fn headers_past_the_budget_are_dropped() {
        let big = vec![b'v'; SAMPLE_HEADER_BUDGET - 10];
        let headers: Vec<(&str, &[u8])> = vec![("x-big", &big), ("x-user", b"alice")];
        let r = SampledRequest::new("::1".parse().unwrap(), "/", None, headers.into_iter());
        assert_eq!(r.header_values("x-big").count(), 1);
        assert_eq!(r.header_values("x-user").count(), 0);
        assert_eq!(r.query(), None);
        assert_eq!(r.path(), "/");
    }
}
