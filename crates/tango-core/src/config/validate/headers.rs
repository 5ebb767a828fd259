//! A route's `headers` (names and value templates, each name edited one way) and its
//! `redirect` (a status that is a redirect, and a URL that differs from the request's).

use super::fields::{one_of, span, V};
use super::tls::server_name;
use crate::config::defaults::redirect as default;
use crate::config::file::{HeaderEditsFile, HeadersFile, RedirectFile, S};
use crate::config::{HeaderEdits, HeaderRules, Part, Redirect, Template, Var, MANAGED_HEADERS};
use std::collections::BTreeMap;

/// A route's `headers`.
pub(super) fn headers(v: &mut V<'_>, k: &str, h: Option<&S<HeadersFile>>) -> HeaderRules {
    let Some(h) = h else {
        return HeaderRules::default();
    };
    let hf = h.get_ref();
    let k = format!("{k}.headers");
    let mut side = |name: &str, e: &Option<S<HeaderEditsFile>>| {
        e.as_ref()
            .map(|e| edits(v, &format!("{k}.{name}"), e.get_ref(), name == "request"))
            .unwrap_or_default()
    };
    HeaderRules {
        request: side("request", &hf.request),
        response: side("response", &hf.response),
        span: Some(span(h)),
    }
}

type Values = Option<S<BTreeMap<S<String>, S<String>>>>;

/// One side's edits; a name may be set, appended or removed, not two of them. A
/// request's Host may only be set: HTTP/1.1 needs exactly one (RFC 9112 3.2).
fn edits(v: &mut V<'_>, k: &str, e: &HeaderEditsFile, request: bool) -> HeaderEdits {
    let mut seen: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut out = HeaderEdits::default();
    let mut take = |v: &mut V<'_>, how: &'static str, n: &S<String>| -> Option<String> {
        let key = format!("{k}.{how}.{}", n.get_ref());
        let name = header_name(v, &key, n)?;
        if request && name == "host" && how != "set" {
            let done = if how == "append" {
                "appended"
            } else {
                "removed"
            };
            v.err(
                &key,
                span(n),
                format!("a request's `host` cannot be {done}: it must have exactly one"),
                "set it instead, e.g. set = { host = \"backend.internal\" }",
            );
            return None;
        }
        if let Some(first) = seen.insert(name.clone(), how) {
            v.err(
                &key,
                span(n),
                format!("`{name}` is in `{first}` already"),
                "edit each header one way: set, append or remove",
            );
            return None;
        }
        Some(name)
    };
    let mut values = |v: &mut V<'_>, how: &'static str, m: &Values| {
        let mut got = Vec::new();
        for (n, val) in m.iter().flat_map(|m| m.get_ref()) {
            let name = take(v, how, n);
            let t = template(v, &format!("{k}.{how}.{}", n.get_ref()), val);
            if let (Some(name), Some(t)) = (name, t) {
                got.push((name, t));
            }
        }
        got
    };
    out.set = values(v, "set", &e.set);
    out.append = values(v, "append", &e.append);
    for n in &e.remove {
        if let Some(name) = take(v, "remove", n) {
            out.remove.push(name);
        }
    }
    out
}

/// A header name: a token, lower-cased, not one tango manages.
fn header_name(v: &mut V<'_>, key: &str, n: &S<String>) -> Option<String> {
    let name = n.get_ref().trim().to_ascii_lowercase();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        v.err(
            key,
            span(n),
            format!("`{}` is not a header name", n.get_ref()),
            "header names have letters, digits and `-` (e.g. \"x-request-start\")",
        );
        return None;
    }
    if MANAGED_HEADERS.contains(&name.as_str()) {
        v.err(
            key,
            span(n),
            format!("`{name}` is managed by tango and cannot be edited"),
            "framing and hop-by-hop headers follow the message; edit another header",
        );
        return None;
    }
    Some(name)
}

/// A header value with `$variables`; `$$` is a literal `$`.
fn template(v: &mut V<'_>, key: &str, val: &S<String>) -> Option<Template> {
    match parse_template(val.get_ref()) {
        Ok(t) => Some(t),
        Err((msg, hint)) => {
            v.err(key, span(val), msg, hint);
            None
        }
    }
}

/// `Template` from the text, or (message, hint).
pub(crate) fn parse_template(s: &str) -> Result<Template, (String, String)> {
    if let Some(b) = s.bytes().find(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err((
            format!("the value has a control character (0x{b:02x})"),
            "header values are one line of visible characters".into(),
        ));
    }
    let mut parts = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            text.push('$');
            rest = r;
            continue;
        }
        let len = rest
            .bytes()
            .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
            .count();
        let (word, r) = rest.split_at(len);
        let names: Vec<&str> = Var::ALL.iter().map(|(n, _)| *n).collect();
        let Some((_, var)) = Var::ALL.iter().find(|(n, _)| *n == word) else {
            return Err((
                format!("`${word}` is not a variable"),
                format!("{}; write `$$` for a `$`", one_of(word, &names)),
            ));
        };
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(&mut text)));
        }
        parts.push(Part::Var(*var));
        rest = r;
    }
    text.push_str(rest);
    if !text.is_empty() {
        parts.push(Part::Text(text));
    }
    Ok(Template { parts })
}

/// A route's `redirect`: a redirect status, and at least one part of the URL changed.
pub(super) fn redirect(v: &mut V<'_>, k: &str, r: &S<RedirectFile>) -> Option<Redirect> {
    let rf = r.get_ref();
    let k = format!("{k}.redirect");
    let before = v.diags.len();
    let status = match &rf.status {
        Some(s) if ![301, 302, 303, 307, 308].contains(s.get_ref()) => {
            v.err(
                &format!("{k}.status"),
                span(s),
                format!("{} is not a redirect status", s.get_ref()),
                "use 301 or 308 (permanent), 302, 303 or 307 (temporary); 307 and 308 keep the method and body",
            );
            default::STATUS
        }
        Some(s) => *s.get_ref() as u16,
        None => default::STATUS,
    };
    let mut t = v.table(&k);
    let scheme = t.optional_choice(
        "scheme",
        &rf.scheme,
        &[("http", "http"), ("https", "https")],
    );
    let port: Option<u16> = t.optional_int("port", &rf.port, 1..=65535);
    let host = rf.host.as_ref().and_then(|h| {
        server_name(h.get_ref(), false)
            .map_err(|why| {
                v.err(
                    &format!("{k}.host"),
                    span(h),
                    format!("`{}` is not a host name: {why}", h.get_ref()),
                    "write a host without scheme, port or path, e.g. \"www.example.com\"",
                )
            })
            .ok()
    });
    if let Some(p) = rf.path.as_ref().filter(|p| !p.get_ref().starts_with('/')) {
        v.err(
            &format!("{k}.path"),
            span(p),
            "a redirect's path must start with '/'",
            format!("write \"/{}\"", p.get_ref()),
        );
    } else if let Some(p) = rf.path.as_ref().filter(|p| !is_path(p.get_ref())) {
        v.err(
            &format!("{k}.path"),
            span(p),
            format!("`{}` is not a URL path", p.get_ref()),
            "use letters, digits and `/-._~%!$&'()*+,;=:@` (percent-encode others); the request's query is kept, so write none",
        );
    }
    if rf.scheme.is_none() && rf.host.is_none() && rf.port.is_none() && rf.path.is_none() {
        v.err(
            &k,
            span(r),
            "the redirect changes nothing: clients would be sent back to the same URL",
            "set scheme, host, port or path, e.g. redirect = { scheme = \"https\" }",
        );
    }
    (v.diags.len() == before).then(|| Redirect {
        status,
        scheme: scheme.map(str::to_string),
        host,
        port,
        path: rf.path.as_ref().map(|p| p.get_ref().clone()),
        span: span(r),
    })
}

/// A path as a URL carries it (RFC 3986 3.3): no query, fragment, space or control.
fn is_path(p: &str) -> bool {
    p.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:@".contains(&b))
}
