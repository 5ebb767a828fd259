//! The protocol settings: a listener's certificates and PROXY protocol sources, a pool's
//! TLS, protocol and PROXY protocol towards its backends, a gRPC health check. Each
//! mistake is reported at its line:col with a hint. A route's header edits and redirect
//! are in `tests_routes.rs`, which shares the helpers here.

use super::*;

/// A listener (lines 1-3, `extra` from line 3), a pool `web` with one backend, and a
/// default route to it.
pub(super) fn with(listener: &str, pool: &str, routes: &str) -> String {
    format!(
        "[[listener]]\nname = \"web\"\n{listener}listen = \"127.0.0.1:8080\"\n{routes}[[pool]]\nname = \"web\"\n{pool}[[pool.backend]]\naddress = \"10.0.0.1:80\"\n"
    )
}

pub(super) fn ok(text: &str) -> Config {
    match parse("t.toml", text, Path::new("/etc/tango")) {
        Ok(l) => l.config,
        Err(e) => panic!("{}", e.render()),
    }
}

/// (key, line, col, message, hint) of every problem.
pub(super) fn problems(text: &str) -> Vec<(String, usize, usize, String, String)> {
    let e = match parse("t.toml", text, Path::new("/etc/tango")) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e,
    };
    let src = e.source().expect("readable");
    e.diagnostics()
        .iter()
        .map(|d| {
            let lc = src.line_col(d.span.map_or(0, |s| s.start));
            (
                d.key.clone(),
                lc.line,
                lc.col,
                d.message.clone(),
                d.hint.clone().unwrap_or_default(),
            )
        })
        .collect()
}

/// The only problem: (key, line, col, message).
pub(super) fn only(text: &str) -> (String, usize, usize, String) {
    let p = problems(text);
    assert_eq!(p.len(), 1, "{p:#?}");
    let (k, l, c, m, h) = p.into_iter().next().unwrap();
    assert!(!h.is_empty(), "every problem has a hint: {m}");
    (k, l, c, m)
}

#[test]
fn one_certificate_is_the_only_and_default_entry() {
    let c = ok(&with(
        "tls = { cert = \"c.pem\", key = \"k.pem\" }\n",
        "",
        "",
    ));
    let tls = c.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.default, 0);
    assert_eq!(tls.certs.len(), 1);
    assert_eq!(tls.certs[0].cert, Path::new("/etc/tango/c.pem"));
    assert_eq!(tls.certs[0].key, Path::new("/etc/tango/k.pem"));
    assert!(tls.certs[0].names.is_empty());
    assert_eq!(tls.certs[0].key_path, "listener[web].tls.cert");
}

#[test]
fn several_certificates_with_names_and_a_default() {
    let c = ok(&with(
        "tls = { certs = [\n  { cert = \"a.pem\", key = \"a.key\", names = [\"A.example\"] },\n  { cert = \"b.pem\", key = \"b.key\", names = [\"*.b.example\", \"b.example\"], default = true },\n] }\n",
        "",
        "",
    ));
    let tls = c.listeners[0].tls.as_ref().unwrap();
    assert_eq!(tls.default, 1);
    assert_eq!(tls.certs[0].names, ["a.example"]);
    assert_eq!(tls.certs[1].names, ["*.b.example", "b.example"]);
    assert_eq!(tls.certs[1].key_path, "listener[web].tls.certs[1].cert");
    // Without a marked default the first entry is.
    let c = ok(&with(
        "tls = { certs = [{ cert = \"a.pem\", key = \"a.key\" }, { cert = \"b.pem\", key = \"b.key\" }] }\n",
        "",
        "",
    ));
    assert_eq!(c.listeners[0].tls.as_ref().unwrap().default, 0);
}

#[test]
fn listener_certificate_mistakes() {
    let cases = [
        (
            "tls = { cert = \"c.pem\" }\n",
            "listener[web].tls.cert",
            (3, 16),
            "tls has `cert` without `key`",
        ),
        (
            "tls = { cert = \"c.pem\", key = \"k.pem\", certs = [{ cert = \"a\", key = \"b\" }] }\n",
            "listener[web].tls.cert",
            (3, 16),
            "tls has both a single cert/key and a certs list",
        ),
        (
            "tls = {}\n",
            "listener[web].tls",
            (3, 7),
            "tls names no certificate",
        ),
        (
            "tls = { certs = [{ cert = \"a\", key = \"b\", names = [] }] }\n",
            "listener[web].tls.certs[0].names",
            (3, 51),
            "names is empty",
        ),
        (
            "tls = { certs = [{ cert = \"a\", key = \"b\", names = [\"a..example\"] }] }\n",
            "listener[web].tls.certs[0].names[0]",
            (3, 52),
            "`a..example` is not a server name: each dot-separated label has 1 to 63 characters",
        ),
        (
            "tls = { certs = [{ cert = \"a\", key = \"b\", names = [\"x.*.example\"] }] }\n",
            "listener[web].tls.certs[0].names[0]",
            (3, 52),
            "`x.*.example` is not a server name: a wildcard is only a whole first label (`*.b.example`)",
        ),
        (
            "tls = { certs = [{ cert = \"a\", key = \"b\", default = true }, { cert = \"c\", key = \"d\", default = true }] }\n",
            "listener[web].tls.certs[1].default",
            (3, 96),
            "certs[0] is the default already",
        ),
        (
            "tls = { certs = [{ cert = \"a\", key = \"b\", names = [\"a.example\"] }, { cert = \"c\", key = \"d\", names = [\"A.example\"] }] }\n",
            "listener[web].tls.certs[1].names[0]",
            (3, 102),
            "`a.example` is a name of certs[0] too",
        ),
        (
            "tls = { cert = \"\", key = \"k.pem\" }\n",
            "listener[web].tls.cert",
            (3, 16),
            "the path is empty",
        ),
    ];
    for (listener, key, (line, col), msg) in cases {
        let got = only(&with(listener, "", ""));
        assert_eq!(
            got,
            (key.to_string(), line, col, msg.to_string()),
            "{listener}"
        );
    }
}

#[test]
fn a_misspelt_certificate_key_is_named() {
    let p = problems(&with(
        "tls = { certs = [{ cert = \"a\", key = \"b\", name = [\"a.example\"] }] }\n",
        "",
        "",
    ));
    assert_eq!(p[0].0, "listener[0].tls.certs[0].name");
    assert_eq!(p[0].3, "unknown key `name` in [[listener.tls.certs]]");
    assert_eq!(p[0].4, "did you mean `names`?");
}

#[test]
fn proxy_protocol_sources() {
    let c = ok(&with(
        "proxy_protocol = { trusted = [\"10.0.0.0/8\", \"192.0.2.7\"] }\n",
        "",
        "",
    ));
    let pp = c.listeners[0].proxy_protocol.as_ref().unwrap();
    assert!(pp.trusts("10.1.2.3".parse().unwrap()));
    assert!(pp.trusts("192.0.2.7".parse().unwrap()));
    assert!(!pp.trusts("127.0.0.1".parse().unwrap()));
    assert_eq!(
        only(&with("proxy_protocol = { trusted = [] }\n", "", "")),
        (
            "listener[web].proxy_protocol.trusted".into(),
            3,
            18,
            "proxy_protocol trusts no address: every connection would be refused".into()
        )
    );
    assert_eq!(
        only(&with(
            "proxy_protocol = { trusted = [\"10.0.0.0/40\"] }\n",
            "",
            ""
        )),
        (
            "listener[web].proxy_protocol.trusted[0]".into(),
            3,
            31,
            "`10.0.0.0/40` is not an address or CIDR block".into()
        )
    );
}

#[test]
fn pool_tls_defaults_to_verifying() {
    let c = ok(&with(
        "",
        "tls = { server_name = \"API.internal\" }\nprotocol = \"h2\"\n",
        "",
    ));
    let p = &c.pools[0];
    let tls = p.tls.as_ref().unwrap();
    assert!(tls.verify);
    assert_eq!(tls.server_name.as_deref(), Some("api.internal"));
    assert_eq!((tls.ca.clone(), tls.client_cert.clone()), (None, None));
    assert_eq!(p.protocol, UpstreamProtocol::H2);
    // A PROXY header goes on HTTP/1.1 connections (not with h2: see the mistakes).
    let c = ok(&with("", "tls = {}\nsend_proxy_protocol = \"v2\"\n", ""));
    assert_eq!(c.pools[0].send_proxy_protocol, Some(ProxyVersion::V2));
    let c = ok(&with(
        "",
        "tls = { ca = \"ca.pem\", cert = \"c.pem\", key = \"k.pem\", server_name = \"10.0.0.1\" }\nprotocol = \"auto\"\n",
        "",
    ));
    let tls = c.pools[0].tls.as_ref().unwrap();
    assert_eq!(tls.ca.as_deref(), Some(Path::new("/etc/tango/ca.pem")));
    assert_eq!(
        tls.client_cert,
        Some(("/etc/tango/c.pem".into(), "/etc/tango/k.pem".into()))
    );
    assert_eq!(c.pools[0].protocol, UpstreamProtocol::Auto);
    // Without the keys: HTTP/1.1 in plain text, no PROXY header.
    let c = ok(&with("", "", ""));
    assert_eq!(c.pools[0].protocol, defaults::pool::PROTOCOL);
    assert_eq!(
        (c.pools[0].tls.clone(), c.pools[0].send_proxy_protocol),
        (None, None)
    );
}

#[test]
fn pool_protocol_mistakes() {
    let cases = [
        (
            "tls = { key = \"k.pem\" }\n",
            "pool[web].tls.key",
            (6, 15),
            "a client certificate needs both `cert` and `key`; `cert` is missing",
        ),
        (
            "tls = { ca = \"ca.pem\", verify = false }\n",
            "pool[web].tls.ca",
            (6, 14),
            "`ca` is not used with verify = false",
        ),
        (
            "tls = { server_name = \"api_internal\" }\n",
            "pool[web].tls.server_name",
            (6, 23),
            "`api_internal` is not a server name: labels have letters, digits and `-` only",
        ),
        (
            "protocol = \"auto\"\n",
            "pool[web].protocol",
            (6, 12),
            "protocol = \"auto\" chooses by ALPN, which needs TLS to the backends",
        ),
        (
            "protocol = \"http2\"\n",
            "pool[web].protocol",
            (6, 12),
            "unknown value `http2`",
        ),
        (
            "send_proxy_protocol = \"v3\"\n",
            "pool[web].send_proxy_protocol",
            (6, 23),
            "unknown value `v3`",
        ),        (
            "protocol = \"h2\"\nsend_proxy_protocol = \"v2\"\n",
            "pool[web].send_proxy_protocol",
            (7, 23),
            "a PROXY header names one client, but an HTTP/2 connection carries the requests of many",
        ),
    ];
    for (pool, key, (line, col), msg) in cases {
        let got = only(&with("", pool, ""));
        assert_eq!(got, (key.to_string(), line, col, msg.to_string()), "{pool}");
    }
    let p = problems(&with("", "protocol = \"h3\"\n", ""));
    assert_eq!(p[0].4, "did you mean `h2`? (use one of: http1, h2, auto)");
}

#[test]
fn a_grpc_health_check_needs_h2_and_service_is_only_for_grpc() {
    let c = ok(&with(
        "",
        "protocol = \"h2\"\n[pool.health]\nkind = \"grpc\"\nservice = \"api.Users\"\n",
        "",
    ));
    let h = c.pools[0].health.as_ref().unwrap();
    assert_eq!(
        (h.kind, h.service.as_str()),
        (HealthKind::Grpc, "api.Users")
    );
    let (key, line, col, msg) = only(&with("", "[pool.health]\nkind = \"grpc\"\n", ""));
    assert_eq!((key.as_str(), line, col), ("pool[web].health.kind", 7, 8));
    assert!(msg.contains("needs a pool that speaks HTTP/2"), "{msg}");
    let (key, line, col, msg) = only(&with("", "[pool.health]\nservice = \"api\"\n", ""));
    assert_eq!(
        (key.as_str(), line, col),
        ("pool[web].health.service", 7, 11)
    );
    assert!(msg.contains("only for kind = \"grpc\""), "{msg}");
}

/// A probe request that could not be built would fail every probe and take every
/// backend down: its method, path and host are checked with the file.
#[test]
fn a_health_check_request_that_cannot_be_built_is_refused() {
    let c = ok(&with(
        "",
        "[pool.health]\nmethod = \"head\"\npath = \"/h?x=1\"\nhost = \"app_1.internal:8080\"\n",
        "",
    ));
    assert_eq!(c.pools[0].health.as_ref().unwrap().method, "HEAD");
    for (line, key, msg) in [
        ("method = \"\"", "method", "is not an HTTP method"),
        ("method = \"GE T\"", "method", "is not an HTTP method"),
        ("path = \"/a b\"", "path", "is not a request path"),
        ("host = \"a\\r\\nx: y\"", "host", "is not a host name"),
        ("host = \"\"", "host", "is not a host name"),
    ] {
        let (k, l, _, m) = only(&with("", &format!("[pool.health]\n{line}\n"), ""));
        assert_eq!(
            (k.as_str(), l),
            (&*format!("pool[web].health.{key}"), 7),
            "{line}"
        );
        assert!(m.contains(msg), "{line}: {m}");
    }
}
