//! A route's header edits (with their variables) and its redirect: what parses, and
//! each mistake at its line:col with a hint.

use super::tests_protocols::{ok, only, problems, with};
use super::*;

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
fn an_empty_route_host_is_refused_at_its_value() {
    let (key, line, col, msg) = only(&with("", "", "[[route]]\nhost = \" \"\npool = \"web\"\n"));
    assert_eq!((key.as_str(), line, col), ("route[0].host", 5, 8));
    assert_eq!(msg, "an empty host matches no request");
}

#[test]
fn a_route_to_a_missing_pool_lists_each_pool_once() {
    let text = with(
        "",
        "",
        "[[route]]\npool = \"nope\"\n[[pool]]\nname = \"web\"\n[[pool.backend]]\naddress = \"10.0.0.2:80\"\n",
    );
    let p = problems(&text);
    let route = p
        .iter()
        .find(|p| p.0 == "route[0].pool")
        .expect("the route is refused");
    assert_eq!(route.4, "use one of: web", "{p:#?}");
}
