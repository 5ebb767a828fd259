//! A route's header edits and redirect for requests hyper's server parsed (TLS and
//! HTTP/2 clients): the edits applied to a header map, and the redirect answered
//! without touching a pool. The engine applies the same edits as it writes its heads
//! (`h1/`); what the edits and the redirect mean is tango-core's (`rewrite`).

use super::body::ProxyBody;
use super::error::ProxyError;
use http::header::{HeaderName, HeaderValue, LOCATION};
use http::{HeaderMap, Request, Response, StatusCode};
use tango_core::config::Redirect;
use tango_core::rewrite::{render, write_location, Edits, RequestUrl, Vars};

/// Apply `edits` to `h`: the fields they set or remove go, then the fields they add
/// come, rendered from `vars`. A value that is not a field value is left out.
pub(crate) fn apply(h: &mut HeaderMap, edits: &Edits<HeaderName>, vars: &Vars<'_>) {
    for n in &edits.drop {
        h.remove(n);
    }
    let mut value = Vec::new();
    for (n, t) in &edits.add {
        value.clear();
        if !render(t, vars, &mut value) {
            continue;
        }
        if let Ok(v) = HeaderValue::from_bytes(&value) {
            h.append(n.clone(), v);
        }
    }
}

/// The redirect for `req` under `r`: its status and Location, no body. `Err` when the
/// request's host is needed and unknown.
pub(crate) fn redirect<B>(
    r: &Redirect,
    tls: bool,
    authority: Option<&str>,
    req: &Request<B>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let url = RequestUrl {
        tls,
        authority: authority.map(str::as_bytes),
        target: target.as_bytes(),
    };
    let mut location = Vec::with_capacity(64 + target.len());
    write_location(r, &url, &mut location)
        .map_err(|_| ProxyError::BadRequest("no host to redirect to"))?;
    let location = HeaderValue::from_bytes(&location)
        .map_err(|_| ProxyError::BadRequest("no host to redirect to"))?;
    let mut resp = Response::new(ProxyBody::empty());
    *resp.status_mut() = StatusCode::from_u16(r.status).unwrap_or(StatusCode::FOUND);
    resp.headers_mut().insert(LOCATION, location);
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tango_core::config::HeaderEdits;
    use tango_core::rewrite::Side;

    #[test]
    fn edits_on_a_map() {
        let t = |s: &str| tango_core::config::Template {
            parts: vec![tango_core::config::Part::Text(s.into())],
        };
        let e = HeaderEdits {
            set: vec![("x-a".into(), t("2"))],
            append: vec![("x-b".into(), t("3"))],
            remove: vec!["server".into()],
        };
        let edits = Edits::compile(&e, Side::Response)
            .map_names(|n| HeaderName::from_bytes(n.as_bytes()).ok());
        let mut h = HeaderMap::new();
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("1b"));
        h.append("x-b", HeaderValue::from_static("1"));
        h.append("server", HeaderValue::from_static("s"));
        apply(&mut h, &edits, &Vars::default());
        assert_eq!(h.get_all("x-a").iter().collect::<Vec<_>>(), ["2"]);
        assert_eq!(h.get_all("x-b").iter().collect::<Vec<_>>(), ["1", "3"]);
        assert!(h.get("server").is_none());
    }

    #[test]
    fn a_redirect_keeps_path_and_query() {
        let r = Redirect {
            status: 308,
            scheme: Some("https".into()),
            host: None,
            port: None,
            path: None,
            span: Default::default(),
        };
        let req = Request::get("/a/b?c=d").body(()).unwrap();
        let resp = redirect(&r, false, Some("x.example:8080"), &req).unwrap();
        assert_eq!(resp.status(), 308);
        assert_eq!(resp.headers()[LOCATION], "https://x.example/a/b?c=d");
        assert!(redirect(&r, false, None, &req).is_err());
    }
}
