//! `[[listener]]`: the addresses tango serves on, their timeouts and limits.

use super::fields::{parse_cidr, span, V};
use super::tls::{listener_tls, proxy_protocol};
use crate::config::defaults::listener as default;
use crate::config::file::{ListenerFile, S};
use crate::config::{Cidr, Listener};
use crate::diag::Diagnostic;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Names and addresses already taken, for telling one listener from another.
#[derive(Default)]
struct Taken {
    addresses: HashMap<SocketAddr, usize>,
    names: HashMap<String, usize>,
}

pub(super) fn listeners(v: &mut V<'_>, ls: &[S<ListenerFile>], admin: SocketAddr) -> Vec<Listener> {
    let mut taken = Taken::default();
    let out = ls
        .iter()
        .enumerate()
        .filter_map(|(i, l)| listener(v, i, l, admin, &mut taken))
        .collect();
    if ls.is_empty() {
        v.diags.push(
            Diagnostic::error("listener", None, "no [[listener]] is configured")
                .with_hint("add a [[listener]] with `listen = \"127.0.0.1:8080\"`"),
        );
    }
    out
}

fn listener(
    v: &mut V<'_>,
    i: usize,
    l: &S<ListenerFile>,
    admin: SocketAddr,
    taken: &mut Taken,
) -> Option<Listener> {
    let lf = l.get_ref();
    let name = lf
        .name
        .as_ref()
        .map(|n| n.get_ref().clone())
        .unwrap_or_else(|| format!("listener-{i}"));
    let k = format!("listener[{name}]");
    // A listener is known by its name, on reload too, so a default name must not be
    // another listener's either.
    let written = lf.name.as_ref();
    if let Some(n) = written.filter(|_| name.trim().is_empty()) {
        v.err(
            &format!("{k}.name"),
            span(n),
            "listener name is empty",
            format!("write a name, or leave `name` out for the default (`listener-{i}`)"),
        );
    } else if taken.names.insert(name.clone(), i).is_some() {
        match written {
            Some(n) => v.err(
                &format!("{k}.name"),
                span(n),
                format!("listener name `{name}` is used twice"),
                "give each listener its own name",
            ),
            None => v.err(
                &k,
                span(l),
                format!("this listener's default name, `{name}`, is another listener's name"),
                "give this listener a `name` of its own",
            ),
        }
    }
    let listen = listen(v, &k, lf, i, admin, taken);
    let tls = lf.tls.as_ref().and_then(|t| listener_tls(v, &k, t));
    let proxy_protocol = lf
        .proxy_protocol
        .as_ref()
        .and_then(|p| proxy_protocol(v, &k, p));
    let mut t = v.table(&k);
    let header_timeout = t.duration(
        "header_timeout",
        &lf.header_timeout,
        default::HEADER_TIMEOUT,
    );
    // A silent new connection gets as long as a slow request head by default: both are
    // the time a client has to start and finish asking. The lock-out a pile of silent
    // connections could cause is prevented by closing idle connections at
    // `max_connections`, not by a short timeout, so none is imposed here.
    let first_byte_timeout =
        t.duration("first_byte_timeout", &lf.first_byte_timeout, header_timeout);
    let idle_timeout = t.duration("idle_timeout", &lf.idle_timeout, default::IDLE_TIMEOUT);
    let request_timeout = t.duration(
        "request_timeout",
        &lf.request_timeout,
        default::REQUEST_TIMEOUT,
    );
    let send_timeout = t.duration("send_timeout", &lf.send_timeout, default::SEND_TIMEOUT);
    let max_connections = t.int(
        "max_connections",
        &lf.max_connections,
        1..=1_000_000,
        default::MAX_CONNECTIONS,
    );
    let max_header_bytes = t.int(
        "max_header_bytes",
        &lf.max_header_bytes,
        1024..=1 << 20,
        default::MAX_HEADER_BYTES,
    );
    let trusted_proxies = trusted_proxies(v, &k, lf);
    Some(Listener {
        name,
        listen: listen?,
        tls,
        proxy_protocol,
        header_timeout,
        first_byte_timeout,
        idle_timeout,
        request_timeout,
        send_timeout,
        max_connections,
        max_header_bytes,
        trusted_proxies,
        span: span(l),
    })
}

/// The listener's address, which no other listener nor the admin API may have.
fn listen(
    v: &mut V<'_>,
    k: &str,
    lf: &ListenerFile,
    i: usize,
    admin: SocketAddr,
    taken: &mut Taken,
) -> Option<SocketAddr> {
    let listen = v.socket(&format!("{k}.listen"), &lf.listen)?;
    // Port 0 asks the kernel for any free port: never a clash.
    if listen.port() == 0 {
        return Some(listen);
    }
    let other = taken.addresses.keys().find(|a| clash(**a, listen)).copied();
    let (by, hint) = match other {
        Some(a) => (
            format!("another listener ({a})"),
            "give each listener its own address",
        ),
        None if clash(admin, listen) => (
            format!("the admin API ({admin})"),
            "give the listener another port, or move [admin] listen",
        ),
        None => {
            taken.addresses.insert(listen, i);
            return Some(listen);
        }
    };
    v.err(
        &format!("{k}.listen"),
        span(&lf.listen),
        format!("address {listen} is already taken by {by}"),
        hint,
    );
    Some(listen)
}

/// Two addresses one process cannot both bind: the same port on the same address, or on
/// an address of the same family where one is the wildcard (`0.0.0.0:80` takes
/// `127.0.0.1:80`). `[::]` takes IPv4 addresses too: listening sockets are dual-stack
/// (tango does not set `IPV6_V6ONLY`, and Linux's default is off).
fn clash(a: SocketAddr, b: SocketAddr) -> bool {
    let wide = |x: SocketAddr, y: SocketAddr| {
        x.ip().is_unspecified() && (x.is_ipv4() == y.is_ipv4() || x.is_ipv6())
    };
    a.port() == b.port() && (a.ip() == b.ip() || wide(a, b) || wide(b, a))
}

fn trusted_proxies(v: &mut V<'_>, k: &str, lf: &ListenerFile) -> Vec<Cidr> {
    let mut out = Vec::new();
    for (j, c) in lf.trusted_proxies.iter().enumerate() {
        match parse_cidr(c.get_ref()) {
            Some(cidr) => out.push(cidr),
            None => v.err(
                &format!("{k}.trusted_proxies[{j}]"),
                span(c),
                format!("`{}` is not an address or CIDR block", c.get_ref()),
                "write e.g. \"10.0.0.0/8\" or \"192.0.2.7\"",
            ),
        }
    }
    out
}
