//! Edits compiled and written, variables rendered, and redirect locations built.

use super::*;
use crate::config::parse_template;
use crate::config::{HeaderEdits, Redirect, Template};
use crate::diag::Span;
use proptest::prelude::*;

fn t(s: &str) -> Template {
    parse_template(s).expect("a template")
}

fn edits(set: &[(&str, &str)], append: &[(&str, &str)], remove: &[&str]) -> HeaderEdits {
    let pairs = |p: &[(&str, &str)]| p.iter().map(|(n, v)| (n.to_string(), t(v))).collect();
    HeaderEdits {
        set: pairs(set),
        append: pairs(append),
        remove: remove.iter().map(|n| n.to_string()).collect(),
    }
}

const VARS: Vars<'static> = Vars {
    client_addr: b"10.0.0.9",
    request_id: b"abc123",
    host: b"example.com",
};

fn written(e: &Edits, vars: &Vars<'_>) -> String {
    let mut out = Vec::new();
    e.write_fields(&mut out, vars);
    String::from_utf8(out).expect("text")
}

#[test]
fn sets_drop_and_add_appends_add_removes_drop() {
    let e = Edits::compile(
        &edits(
            &[("x-client", "$client_addr"), ("x-id", "id=$request_id")],
            &[("via", "tango at $host, $$5")],
            &["server"],
        ),
        Side::Response,
    );
    assert!(e.drops(b"X-Client") && e.drops(b"x-id") && e.drops(b"SERVER"));
    assert!(!e.drops(b"via") && !e.drops(b"x-other"));
    assert_eq!(
        written(&e, &VARS),
        "x-client: 10.0.0.9\r\nx-id: id=abc123\r\nvia: tango at example.com, $5\r\n"
    );
    assert!(e.uses_request());
    assert!(
        !Edits::compile(&edits(&[("a", "$client_addr")], &[], &[]), Side::Request).uses_request()
    );
}

#[test]
fn managed_names_are_never_edited_and_host_stays_single() {
    let e = Edits::compile(
        &edits(
            &[("content-length", "0"), ("x-a", "1")],
            &[("transfer-encoding", "gzip"), ("host", "b.example")],
            &["connection", "host"],
        ),
        Side::Request,
    );
    assert_eq!(
        e.drop.iter().map(|n| &**n).collect::<Vec<_>>(),
        ["x-a", "host"]
    );
    assert_eq!(written(&e, &VARS), "x-a: 1\r\nhost: b.example\r\n");
    // On a response, Host is a header like any other.
    let r = Edits::compile(&edits(&[], &[], &["host"]), Side::Response);
    assert!(r.drops(b"host"));
}

#[test]
fn a_value_that_could_break_a_head_is_left_out() {
    let e = Edits::compile(
        &edits(&[("x-id", "$request_id"), ("x-b", "b")], &[], &[]),
        Side::Request,
    );
    let bad = Vars {
        request_id: b"a\r\nx-evil: 1",
        ..VARS
    };
    assert_eq!(written(&e, &bad), "x-b: b\r\n");
}

#[test]
fn names_map_once() {
    let e = Edits::compile(
        &edits(&[("x-a", "1")], &[("x-b", "2")], &["x-c"]),
        Side::Request,
    );
    let m = e.map_names(|n| (n != "x-b").then_some(n.len()));
    assert_eq!(m.drop, [3, 3]);
    assert_eq!(m.add.len(), 1);
}

#[test]
fn hosts_lose_their_ports() {
    assert_eq!(host_of(b"Example.com:8080"), b"Example.com");
    assert_eq!(host_of(b"example.com"), b"example.com");
    assert_eq!(host_of(b"[::1]:80"), b"::1");
    assert_eq!(host_of(b"[::1]"), b"::1");
    assert_eq!(host_of(b"a:b"), b"a:b");
}

fn redirect(
    scheme: Option<&str>,
    host: Option<&str>,
    port: Option<u16>,
    path: Option<&str>,
) -> Redirect {
    Redirect {
        status: 301,
        scheme: scheme.map(str::to_string),
        host: host.map(str::to_string),
        port,
        path: path.map(str::to_string),
        span: Span::default(),
    }
}

fn location(
    r: &Redirect,
    tls: bool,
    authority: Option<&str>,
    target: &str,
) -> Result<String, NoHost> {
    let mut out = Vec::new();
    let req = RequestUrl {
        tls,
        authority: authority.map(str::as_bytes),
        target: target.as_bytes(),
    };
    write_location(r, &req, &mut out).map(|()| String::from_utf8(out).expect("text"))
}

#[test]
fn locations() {
    let https = redirect(Some("https"), None, None, None);
    assert_eq!(
        location(&https, false, Some("a.example"), "/p?q=1").unwrap(),
        "https://a.example/p?q=1"
    );
    // A port goes with its scheme: the new scheme's default is left out.
    assert_eq!(
        location(&https, false, Some("a.example:8080"), "/p").unwrap(),
        "https://a.example/p"
    );
    let https_port = redirect(Some("https"), None, Some(8443), None);
    assert_eq!(
        location(&https_port, false, Some("a.example:8080"), "/").unwrap(),
        "https://a.example:8443/"
    );
    let moved = redirect(None, Some("new.example"), None, None);
    assert_eq!(
        location(&moved, false, Some("old.example:8080"), "/x?y").unwrap(),
        "http://new.example:8080/x?y"
    );
    assert_eq!(
        location(&moved, true, Some("old.example"), "/").unwrap(),
        "https://new.example/"
    );
    let path = redirect(None, None, None, Some("/new"));
    assert_eq!(
        location(&path, false, Some("[::1]:9000"), "/old?a=b").unwrap(),
        "http://[::1]:9000/new?a=b"
    );
    // No host to go on: a path-only redirect is relative, others cannot be made.
    assert_eq!(location(&path, false, None, "/old?a").unwrap(), "/new?a");
    assert_eq!(location(&https, false, None, "/"), Err(NoHost));
    assert_eq!(
        location(&https, false, Some("user@evil:80"), "/"),
        Err(NoHost)
    );
    assert_eq!(
        location(&https, false, Some("a.example:+80"), "/"),
        Err(NoHost)
    );
    assert_eq!(
        location(&moved, false, Some("user@evil"), "*").unwrap(),
        "http://new.example/"
    );
    // An explicit default port is not written.
    assert_eq!(
        location(
            &redirect(None, None, Some(80), None),
            false,
            Some("a:81"),
            "/"
        )
        .unwrap(),
        "http://a/"
    );
}

proptest! {
    /// Any redirect of any request whose host is usable is an absolute URL that
    /// `http::Uri` takes, with the configured parts and the request's query.
    #[test]
    fn locations_are_urls(
        scheme in proptest::option::of(prop_oneof![Just("http"), Just("https")]),
        host in proptest::option::of("[a-z][a-z0-9-]{0,10}(\\.[a-z]{2,5})?"),
        port in proptest::option::of(1u16..),
        path in proptest::option::of("/[a-zA-Z0-9/._~%-]{0,20}"),
        tls in any::<bool>(),
        req_host in "[a-z0-9.-]{1,12}|\\[[0-9a-f:]{2,10}\\]",
        req_port in proptest::option::of(1u16..),
        req_path in "/[a-zA-Z0-9/._~%-]{0,20}",
        query in proptest::option::of("[a-zA-Z0-9=&%]{0,20}"),
    ) {
        let r = redirect(scheme, host.as_deref(), port, path.as_deref());
        let authority = match req_port {
            Some(p) => format!("{req_host}:{p}"),
            None => req_host.clone(),
        };
        let target = match &query {
            Some(q) => format!("{req_path}?{q}"),
            None => req_path.clone(),
        };
        let loc = location(&r, tls, Some(&authority), &target).expect("a host");
        let uri: http::Uri = loc.parse().expect("a URI");
        let want_scheme = scheme.unwrap_or(if tls { "https" } else { "http" });
        prop_assert_eq!(uri.scheme_str(), Some(want_scheme));
        prop_assert_eq!(uri.path(), path.as_deref().unwrap_or(&req_path));
        prop_assert_eq!(uri.query(), query.as_deref());
        if let Some(h) = &host {
            prop_assert_eq!(uri.host(), Some(h.as_str()));
        }
        if let Some(p) = port {
            let default = if want_scheme == "https" { 443 } else { 80 };
            prop_assert_eq!(uri.port_u16(), (p != default).then_some(p));
        }
    }
}
