//! The protocol settings of listeners and pools: a listener's certificates (one, or
//! several picked by SNI) and its PROXY protocol sources; a pool's TLS, HTTP version and
//! PROXY protocol towards its backends. Only the file's own coherence is checked here:
//! reading the certificates is the binary's (it reports with these spans).

use super::fields::{parse_cidr, span, V};
use crate::config::defaults::{pool as pool_default, pool_tls as default};
use crate::config::file::{CertFile, PoolFile, PoolTlsFile, ProxyProtocolFile, TlsFile, S};
use crate::config::{CertEntry, ProxyProtocol, ProxyVersion, Tls, UpstreamProtocol, UpstreamTls};
use std::collections::HashMap;

/// A listener's `tls`: `cert` and `key`, or `certs`.
pub(super) fn listener_tls(v: &mut V<'_>, k: &str, t: &S<TlsFile>) -> Option<Tls> {
    let tf = t.get_ref();
    let k = format!("{k}.tls");
    if !tf.certs.is_empty() {
        if let Some(c) = tf.cert.as_ref().or(tf.key.as_ref()) {
            let which = if tf.cert.is_some() { "cert" } else { "key" };
            v.err(
                &format!("{k}.{which}"),
                span(c),
                "tls has both a single cert/key and a certs list",
                "move cert and key into certs as one more entry",
            );
        }
        return cert_list(v, &k, &tf.certs);
    }
    match (&tf.cert, &tf.key) {
        (Some(cert), Some(key)) => {
            let entry = entry(v, &k, cert, key, None)?;
            Some(Tls {
                certs: vec![entry],
                default: 0,
            })
        }
        (Some(one), None) | (None, Some(one)) => {
            let (has, needs) = if tf.cert.is_some() {
                ("cert", "key")
            } else {
                ("key", "cert")
            };
            v.err(
                &format!("{k}.{has}"),
                span(one),
                format!("tls has `{has}` without `{needs}`"),
                format!("add `{needs} = \"...\"`: a certificate is served with its private key"),
            );
            None
        }
        (None, None) => {
            v.err(
                &k,
                span(t),
                "tls names no certificate",
                "write tls = { cert = \"cert.pem\", key = \"key.pem\" }, or certs = [{ cert = \"...\", key = \"...\" }, ...]",
            );
            None
        }
    }
}

/// `certs = [...]`: each entry, names unique across entries, at most one default.
fn cert_list(v: &mut V<'_>, k: &str, certs: &[S<CertFile>]) -> Option<Tls> {
    let mut out = Vec::new();
    let mut default = None;
    let mut owners: HashMap<String, usize> = HashMap::new();
    let mut ok = true;
    for (i, c) in certs.iter().enumerate() {
        let cf = c.get_ref();
        let ek = format!("{k}.certs[{i}]");
        if let Some(d) = cf.default.as_ref().filter(|d| *d.get_ref()) {
            if let Some(first) = default {
                v.err(
                    &format!("{ek}.default"),
                    span(d),
                    format!("certs[{first}] is the default already"),
                    "mark one certificate `default = true`",
                );
            }
            default.get_or_insert(i);
        }
        let Some(e) = entry(v, &ek, &cf.cert, &cf.key, cf.names.as_ref()) else {
            ok = false;
            continue;
        };
        for (n, name) in e.names.iter().enumerate() {
            if let Some(other) = owners.insert(name.clone(), i) {
                let s = cf.names.as_ref().map(|ns| span(&ns.get_ref()[n]));
                v.err(
                    &format!("{ek}.names[{n}]"),
                    s.unwrap_or_else(|| span(c)),
                    format!("`{name}` is a name of certs[{other}] too"),
                    "give each server name to one certificate",
                );
            }
        }
        out.push(e);
    }
    ok.then_some(Tls {
        certs: out,
        default: default.unwrap_or(0),
    })
}

/// One certificate and key, with the names it answers.
fn entry(
    v: &mut V<'_>,
    k: &str,
    cert: &S<String>,
    key: &S<String>,
    names: Option<&S<Vec<S<String>>>>,
) -> Option<CertEntry> {
    let mut ok = path(v, &format!("{k}.cert"), cert) & path(v, &format!("{k}.key"), key);
    let mut out = Vec::new();
    if let Some(ns) = names {
        if ns.get_ref().is_empty() {
            v.err(
                &format!("{k}.names"),
                span(ns),
                "names is empty",
                "list the server names, or leave names out to take them from the certificate",
            );
            ok = false;
        }
        for (j, n) in ns.get_ref().iter().enumerate() {
            match server_name(n.get_ref(), true) {
                Ok(name) => out.push(name),
                Err(why) => {
                    v.err(
                        &format!("{k}.names[{j}]"),
                        span(n),
                        format!("`{}` is not a server name: {why}", n.get_ref()),
                        "write a DNS name such as \"a.example\" or \"*.b.example\"",
                    );
                    ok = false;
                }
            }
        }
    }
    ok.then(|| CertEntry {
        cert: v.path(cert.get_ref()),
        key: v.path(key.get_ref()),
        names: out,
        key_path: format!("{k}.cert"),
        cert_span: span(cert),
        key_span: span(key),
    })
}

/// A path that is not empty.
fn path(v: &mut V<'_>, key: &str, p: &S<String>) -> bool {
    if p.get_ref().trim().is_empty() {
        v.err(
            key,
            span(p),
            "the path is empty",
            "write the PEM file's path",
        );
        return false;
    }
    true
}

/// A DNS name, lower case; with `wildcard`, `*.` may lead it. The reason when it is not.
pub(crate) fn server_name(s: &str, wildcard: bool) -> Result<String, &'static str> {
    let name = s.trim().trim_end_matches('.').to_ascii_lowercase();
    let rest = match name.strip_prefix("*.") {
        Some(_) if !wildcard => return Err("a wildcard is not allowed here"),
        Some(rest) => rest,
        None => name.as_str(),
    };
    if rest.is_empty() {
        return Err("it is empty");
    }
    if rest.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    for label in rest.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label has 1 to 63 characters");
        }
        if label.contains('*') {
            return Err("a wildcard is only a whole first label (`*.b.example`)");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("labels have letters, digits and `-` only");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label neither starts nor ends with `-`");
        }
    }
    Ok(name)
}

/// A listener's `proxy_protocol = { trusted = [...] }`.
pub(super) fn proxy_protocol(
    v: &mut V<'_>,
    k: &str,
    p: &S<ProxyProtocolFile>,
) -> Option<ProxyProtocol> {
    let k = format!("{k}.proxy_protocol");
    let pf = p.get_ref();
    if pf.trusted.is_empty() {
        v.err(
            &format!("{k}.trusted"),
            span(p),
            "proxy_protocol trusts no address: every connection would be refused",
            "list the proxies in front of tango, e.g. trusted = [\"10.0.0.0/8\"]",
        );
        return None;
    }
    let mut trusted = Vec::new();
    for (j, c) in pf.trusted.iter().enumerate() {
        match parse_cidr(c.get_ref()) {
            Some(cidr) => trusted.push(cidr),
            None => v.err(
                &format!("{k}.trusted[{j}]"),
                span(c),
                format!("`{}` is not an address or CIDR block", c.get_ref()),
                "write e.g. \"10.0.0.0/8\" or \"192.0.2.7\"",
            ),
        }
    }
    (trusted.len() == pf.trusted.len()).then(|| ProxyProtocol {
        trusted,
        span: span(p),
    })
}

/// A pool's `tls`: verification on unless turned off, `cert` and `key` together.
pub(super) fn pool_tls(v: &mut V<'_>, k: &str, t: &S<PoolTlsFile>) -> Option<UpstreamTls> {
    let tf = t.get_ref();
    let k = format!("{k}.tls");
    let verify = tf.verify.as_ref().map_or(default::VERIFY, |b| *b.get_ref());
    let mut ok = true;
    for (name, p) in [("ca", &tf.ca), ("cert", &tf.cert), ("key", &tf.key)] {
        if let Some(p) = p {
            ok &= path(v, &format!("{k}.{name}"), p);
        }
    }
    if let (Some(ca), false) = (&tf.ca, verify) {
        v.err(
            &format!("{k}.ca"),
            span(ca),
            "`ca` is not used with verify = false",
            "remove ca, or remove verify = false so the backends' certificates are checked against it",
        );
        ok = false;
    }
    let client_cert = match (&tf.cert, &tf.key) {
        (Some(c), Some(key)) => Some((v.path(c.get_ref()), v.path(key.get_ref()))),
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => {
            let (has, needs) = if tf.cert.is_some() {
                ("cert", "key")
            } else {
                ("key", "cert")
            };
            v.err(
                &format!("{k}.{has}"),
                span(one),
                format!("a client certificate needs both `cert` and `key`; `{needs}` is missing"),
                format!("add `{needs} = \"...\"`, or remove `{has}`"),
            );
            ok = false;
            None
        }
    };
    let server_name = tf.server_name.as_ref().and_then(|n| {
        let s = n.get_ref().trim();
        if s.parse::<std::net::IpAddr>().is_ok() {
            return Some(s.to_string());
        }
        match server_name(s, false) {
            Ok(name) => Some(name),
            Err(why) => {
                v.err(
                    &format!("{k}.server_name"),
                    span(n),
                    format!("`{s}` is not a server name: {why}"),
                    "write the DNS name the backends' certificates carry, e.g. \"api.internal\"",
                );
                ok = false;
                None
            }
        }
    });
    ok.then(|| UpstreamTls {
        ca: tf.ca.as_ref().map(|p| v.path(p.get_ref())),
        server_name,
        client_cert,
        verify,
        span: span(t),
        verify_span: tf.verify.as_ref().map(span),
    })
}

/// A pool's `protocol` and `send_proxy_protocol`. `auto` picks by ALPN, so it needs TLS;
/// a PROXY header cannot go on connections HTTP/2 may share between clients.
pub(super) fn pool_protocols(
    v: &mut V<'_>,
    k: &str,
    pf: &PoolFile,
) -> (UpstreamProtocol, Option<ProxyVersion>) {
    let mut t = v.table(k);
    let protocol = t.choice(
        "protocol",
        &pf.protocol,
        &UpstreamProtocol::ALL,
        pool_default::PROTOCOL,
    );
    let proxy = t.optional_choice(
        "send_proxy_protocol",
        &pf.send_proxy_protocol,
        &[("v1", ProxyVersion::V1), ("v2", ProxyVersion::V2)],
    );
    if let (UpstreamProtocol::Auto, None, Some(p)) = (protocol, &pf.tls, &pf.protocol) {
        v.err(
            &format!("{k}.protocol"),
            span(p),
            "protocol = \"auto\" chooses by ALPN, which needs TLS to the backends",
            "add tls = { ... } to the pool, or choose \"http1\" or \"h2\" (h2 in plain text is prior knowledge, as gRPC uses)",
        );
    }
    // A PROXY header names one client, and a connection that carries one serves only
    // that client; an HTTP/2 connection carries every client's streams (and `auto`'s
    // backends may choose HTTP/2), so the two cannot go together.
    if let (UpstreamProtocol::H2 | UpstreamProtocol::Auto, Some(_), Some(s)) =
        (protocol, proxy, &pf.send_proxy_protocol)
    {
        v.err(
            &format!("{k}.send_proxy_protocol"),
            span(s),
            "a PROXY header names one client, but an HTTP/2 connection carries the requests of many",
            "remove send_proxy_protocol, or set protocol = \"http1\" for this pool",
        );
    }
    (protocol, proxy)
}
