//! A parsed request head seen the ways the rest of tango looks at a request: through
//! tango-core's `RequestView` (hash keys, trusted-proxy client address), as the access
//! log's fields, and as a sampled request for the reload guard. Nothing here copies on
//! the common path; the access log and the sample (1 hash-pool request in 16) copy what
//! they keep.

use super::super::access::HeadParts;
use http::uri::PathAndQuery;
use http::HeaderValue;
use std::net::IpAddr;
use tango_core::http1::codec::{RequestFraming, RequestHead, TargetForm, Version};
use tango_core::policy::RequestView;
use tango_core::simulate::SampledRequest;

/// A request head and the buffer it was parsed from.
pub(super) struct Raw<'a> {
    pub(super) head: &'a RequestHead,
    pub(super) buf: &'a [u8],
    pub(super) peer: IpAddr,
}

impl Raw<'_> {
    /// The path as text (httparse and the codec took only visible ASCII). An
    /// absolute-form target without one (`GET http://h HTTP/1.1`) asks for `/` (RFC 9112
    /// 3.2.2): it is forwarded so, and hyper's `Uri::path` reads it so, so routes and
    /// hash keys see `/` on every client path rather than a request without a path.
    pub(super) fn path(&self) -> &str {
        match std::str::from_utf8(self.head.path.of(self.buf)).unwrap_or("") {
            "" if self.head.form == TargetForm::Absolute => "/",
            p => p,
        }
    }

    /// The query of the forwarded target, if any.
    fn query_str(&self) -> Option<&str> {
        let origin = self.head.origin.of(self.buf);
        let q = origin.iter().position(|&b| b == b'?')?;
        std::str::from_utf8(&origin[q + 1..]).ok()
    }

    /// The host routes match: Host (or the target's authority) without its port.
    pub(super) fn host(&self) -> Option<&str> {
        let h = std::str::from_utf8(self.head.host?.of(self.buf)).ok()?;
        Some(crate::proxy::service::strip_port(h))
    }

    fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.head
            .headers
            .values(self.buf, name)
            .next()
            .map(|s| s.of(self.buf))
    }

    /// What the access log keeps of this head.
    pub(super) fn parts(&self, request_id: &[u8]) -> HeadParts {
        let value = |b: &[u8]| HeaderValue::from_bytes(b).ok();
        let method = self.head.method_span.of(self.buf);
        HeadParts {
            method: http::Method::from_bytes(method).unwrap_or_default(),
            target: PathAndQuery::try_from(self.head.origin.of(self.buf)).ok(),
            version: match self.head.version {
                Version::Http10 => http::Version::HTTP_10,
                Version::Http11 => http::Version::HTTP_11,
            },
            host: self.head.host.and_then(|h| value(h.of(self.buf))),
            user_agent: self.header(b"user-agent").and_then(value),
            referer: self.header(b"referer").and_then(value),
            request_id: value(request_id).unwrap_or(HeaderValue::from_static("-")),
            has_body: !matches!(
                self.head.framing,
                RequestFraming::None | RequestFraming::Length(0)
            ),
        }
    }

    /// The request as the reload guard samples it (header names in lower case).
    pub(super) fn sample(&self, client: IpAddr) -> SampledRequest {
        let names: Vec<String> = self
            .head
            .headers
            .iter()
            .map(|h| String::from_utf8_lossy(h.name().of(self.buf)).to_ascii_lowercase())
            .collect();
        let headers = names
            .iter()
            .zip(self.head.headers.iter())
            .map(|(n, h)| (n.as_str(), h.value().of(self.buf)));
        SampledRequest::new(client, self.path(), self.query_str(), headers)
    }
}

impl RequestView for Raw<'_> {
    fn header_values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a [u8]> {
        let buf = self.buf;
        self.head
            .headers
            .iter()
            .filter(move |h| h.name().of(buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(move |h| h.value().of(buf))
    }

    fn path(&self) -> &str {
        Raw::path(self)
    }

    fn query(&self) -> Option<&str> {
        self.query_str()
    }

    fn peer(&self) -> IpAddr {
        self.peer
    }
}
