//! The protocol settings: a listener's certificates and PROXY protocol sources, a pool's
//! TLS, protocol and PROXY protocol towards its backends, a route's header edits and
//! redirect. Each mistake is reported at its line:col with a hint.

use super::*;

/// A listener (lines 1-3, `extra` from line 3), a pool `web` with one backend, and a
/// default route to it.
fn with(listener: &str, pool: &str, routes: &str) -> String {
    format!(
        "[[listener]]\nname = \"web\"\n{listener}listen = \"127.0.0.1:8080\"\n{routes}[[pool]]\nname = \"web\"\n{pool}[[pool.backend]]\naddress = \"10.0.0.1:80\"\n"
    )
}

fn ok(text: &str) -> Config {
    match parse("t.toml", text, Path::new("/etc/tango")) {
        Ok(l) => l.config,
        Err(e) => panic!("{}", e.render()),
    }
}

/// (key, line, col, message, hint) of every problem.
fn problems(text: &str) -> Vec<(String, usize, usize, String, String)> {
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
fn only(text: &str) -> (String, usize, usize, String) {
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
        "tls = { server_name = \"API.internal\" }\nprotocol = \"h2\"\nsend_proxy_protocol = \"v2\"\n",
        "",
    ));
    let p = &c.pools[0];
    let tls = p.tls.as_ref().unwrap();
    assert!(tls.verify);
    assert_eq!(tls.server_name.as_deref(), Some("api.internal"));
    assert_eq!((tls.ca.clone(), tls.client_cert.clone()), (None, None));
    assert_eq!(p.protocol, UpstreamProtocol::H2);
    assert_eq!(p.send_proxy_protocol, Some(ProxyVersion::V2));
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
fn header_edits_with_variables() {
    let c = ok(&with(
        "",
        "",
        "[[route]]\npool = \"web\"\n[route.headers.request]\nset = { \"X-Client\" = \"$client_addr\", x-price = \"$$5 for $host\" }\nappend = { via = \"tango ($request_id)\" }\nremove = [\"X-Secret\"]\n[route.headers.response]\nremove = [\"server\"]\n",
    ));
    let h = &c.routes[0].headers;
    assert_eq!(h.request.remove, ["x-secret"]);
    assert_eq!(h.response.remove, ["server"]);
    let (name, t) = &h.request.set[0];
    assert_eq!(name, "x-client");
    assert_eq!(t.parts, [Part::Var(Var::ClientAddr)]);
    let (_, price) = &h.request.set[1];
    let vars = |v: Var| match v {
        Var::ClientAddr => "192.0.2.1",
        Var::RequestId => "r1",
        Var::Host => "shop.example",
    };
    assert_eq!(price.render(vars), "$5 for shop.example");
    assert_eq!(h.request.append[0].1.render(vars), "tango (r1)");
    assert!(ok(&with("", "", "")).routes[0].headers.is_empty());
}

#[test]
fn header_edit_mistakes() {
    let route = |edits: &str| {
        with(
            "",
            "",
            &format!("[[route]]\npool = \"web\"\nheaders = {{ request = {{ {edits} }} }}\n"),
        )
    };
    let cases = [
        (
            "set = { x-a = \"$client_ip\" }",
            "route[0].headers.request.set.x-a",
            (6, 39),
            "`$client_ip` is not a variable",
        ),
        (
            "set = { content-length = \"0\" }",
            "route[0].headers.request.set.content-length",
            (6, 33),
            "`content-length` is managed by tango and cannot be edited",
        ),
        (
            "set = { x-a = \"1\" }, remove = [\"X-A\"]",
            "route[0].headers.request.remove.X-A",
            (6, 56),
            "`x-a` is in `set` already",
        ),
        (
            "remove = [\"bad name\"]",
            "route[0].headers.request.remove.bad name",
            (6, 35),
            "`bad name` is not a header name",
        ),
        (
            "set = { x-a = \"line\\nbreak\" }",
            "route[0].headers.request.set.x-a",
            (6, 39),
            "the value has a control character (0x0a)",
        ),
        (
            "remove = [\"Host\"]",
            "route[0].headers.request.remove.Host",
            (6, 35),
            "a request's `host` cannot be removed: it must have exactly one",
        ),
        (
            "append = { host = \"b\" }",
            "route[0].headers.request.append.host",
            (6, 36),
            "a request's `host` cannot be appended: it must have exactly one",
        ),
    ];
    for (edits, key, (line, col), msg) in cases {
        let got = only(&route(edits));
        assert_eq!(
            got,
            (key.to_string(), line, col, msg.to_string()),
            "{edits}"
        );
    }
    let p = problems(&route("set = { x-a = \"$hots\" }"));
    assert_eq!(
        p[0].4,
        "did you mean `host`? (use one of: client_addr, request_id, host); write `$$` for a `$`"
    );
    // A value that is not a string is a shape error, and validation still runs.
    let p = problems(&route("set = { x-a = 5 }, remove = [\"te\"]"));
    let got: Vec<(&str, &str)> = p.iter().map(|p| (p.0.as_str(), p.3.as_str())).collect();
    assert_eq!(
        got,
        [
            (
                "route[0].headers.request.set.x-a",
                "the value of `x-a` must be a string, not a whole number"
            ),
            (
                "route[0].headers.request.remove.te",
                "`te` is managed by tango and cannot be edited"
            ),
        ]
    );
}

#[test]
fn a_redirect_route_needs_no_pool() {
    let c = ok(&with(
        "",
        "",
        "[[route]]\nhost = \"old.example\"\nredirect = { host = \"new.example\", scheme = \"https\" }\n[[route]]\npool = \"web\"\n",
    ));
    let Target::Redirect(r) = &c.routes[0].target else {
        panic!("{:?}", c.routes[0].target)
    };
    assert_eq!(r.status, defaults::redirect::STATUS);
    assert_eq!(r.host.as_deref(), Some("new.example"));
    assert_eq!(r.scheme.as_deref(), Some("https"));
    assert_eq!((r.port, r.path.as_deref()), (None, None));
    assert_eq!(c.routes[0].pool(), None);
    assert_eq!(c.routes[1].pool(), Some(0));
    let c = ok(&with(
        "",
        "",
        "[[route]]\nredirect = { status = 308, port = 8443, path = \"/new\" }\n",
    ));
    let Target::Redirect(r) = &c.routes[0].target else {
        panic!()
    };
    assert_eq!(
        (r.status, r.port, r.path.as_deref()),
        (308, Some(8443), Some("/new"))
    );
}

#[test]
fn redirect_mistakes() {
    let cases = [
        (
            "redirect = { status = 200, scheme = \"https\" }\n",
            "route[0].redirect.status",
            (5, 23),
            "200 is not a redirect status",
        ),
        (
            "redirect = {}\n",
            "route[0].redirect",
            (5, 12),
            "the redirect changes nothing: clients would be sent back to the same URL",
        ),
        (
            "redirect = { path = \"new\" }\n",
            "route[0].redirect.path",
            (5, 21),
            "a redirect's path must start with '/'",
        ),
        (
            "redirect = { path = \"/a b?c\" }\n",
            "route[0].redirect.path",
            (5, 21),
            "`/a b?c` is not a URL path",
        ),
        (
            "redirect = { scheme = \"https\" }\nheaders = { request = { remove = [\"x-a\"] } }\n",
            "route[0].headers.request",
            (6, 11),
            "a redirect route forwards nothing: its request edits would never apply",
        ),
        (
            "redirect = { port = 70000 }\n",
            "route[0].redirect.port",
            (5, 21),
            "70000 is out of range",
        ),
        (
            "redirect = { host = \"https://x.example\" }\n",
            "route[0].redirect.host",
            (5, 21),
            "`https://x.example` is not a host name: labels have letters, digits and `-` only",
        ),
        (
            "redirect = { scheme = \"ftp\" }\n",
            "route[0].redirect.scheme",
            (5, 23),
            "unknown value `ftp`",
        ),
        (
            "pool = \"web\"\nredirect = { scheme = \"https\" }\n",
            "route[0].redirect",
            (6, 12),
            "a route with a pool cannot redirect too",
        ),
        (
            "host = \"a.example\"\n",
            "route[0]",
            (4, 1),
            "the route names no pool and no redirect",
        ),
    ];
    for (route, key, (line, col), msg) in cases {
        let got = only(&with("", "", &format!("[[route]]\n{route}")));
        assert_eq!(
            got,
            (key.to_string(), line, col, msg.to_string()),
            "{route}"
        );
    }
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
