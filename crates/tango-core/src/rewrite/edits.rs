//! Header edits compiled for the data plane, and their values rendered per request.

use crate::config::{HeaderEdits, HeaderRules, Part, Template, Var, MANAGED_HEADERS};

/// Which message a set of edits is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The request forwarded to a backend.
    Request,
    /// The response returned to the client.
    Response,
}

/// One side's edits as the data plane applies them: the fields dropped (every name set
/// or removed), then the fields added (sets, then appends, in the file's order). `N` is
/// how a name is held: lower-case text, or the data plane's own header name type
/// ([`Edits::map_names`]), made once per configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edits<N = Box<str>> {
    /// Names whose fields go, whatever their case on the wire.
    pub drop: Vec<N>,
    /// Fields added, each with its value's template.
    pub add: Vec<(N, Template)>,
}

impl<N> Default for Edits<N> {
    fn default() -> Self {
        Edits {
            drop: Vec::new(),
            add: Vec::new(),
        }
    }
}

impl Edits {
    /// The edits of one side, as validated. A managed name is left out; on the request
    /// side Host is never removed and never doubled (an append sets it): a request
    /// without exactly one Host is refused by HTTP/1.1 backends.
    pub fn compile(e: &HeaderEdits, side: Side) -> Edits {
        let managed = |n: &str| MANAGED_HEADERS.contains(&n);
        let host = |n: &str| side == Side::Request && n == "host";
        let mut out = Edits::default();
        for (n, t) in &e.set {
            if !managed(n) {
                out.drop.push(n.as_str().into());
                out.add.push((n.as_str().into(), t.clone()));
            }
        }
        for n in e.remove.iter().filter(|n| !managed(n) && !host(n)) {
            out.drop.push(n.as_str().into());
        }
        for (n, t) in &e.append {
            if managed(n) {
                continue;
            }
            if host(n) {
                out.drop.push(n.as_str().into());
            }
            out.add.push((n.as_str().into(), t.clone()));
        }
        out
    }

    /// Whether a field named `name` (any case) is dropped.
    pub fn drops(&self, name: &[u8]) -> bool {
        self.drop
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n.as_bytes()))
    }

    /// Append the added fields as HTTP/1.1 field lines, their values rendered from
    /// `vars`. A field whose value could not be a field value is left out.
    pub fn write_fields(&self, out: &mut Vec<u8>, vars: &Vars<'_>) {
        for (name, t) in &self.add {
            let mark = out.len();
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            if render(t, vars, out) {
                out.extend_from_slice(b"\r\n");
            } else {
                out.truncate(mark);
            }
        }
    }

    /// The same edits with each name as `f` makes it; a name `f` refuses is left out.
    pub fn map_names<M>(&self, mut f: impl FnMut(&str) -> Option<M>) -> Edits<M> {
        Edits {
            drop: self.drop.iter().filter_map(|n| f(n)).collect(),
            add: (self.add.iter())
                .filter_map(|(n, t)| Some((f(n)?, t.clone())))
                .collect(),
        }
    }
}

impl<N> Edits<N> {
    /// Whether nothing is edited.
    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.add.is_empty()
    }

    /// Whether a value uses a variable of the request (`$host`, `$request_id`): the data
    /// plane keeps their values for the response only then.
    pub fn uses_request(&self) -> bool {
        let of_request = |p: &Part| matches!(p, Part::Var(Var::Host | Var::RequestId));
        self.add.iter().any(|(_, t)| t.parts.iter().any(of_request))
    }
}

/// A route's request and response edits, compiled.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    /// Applied to the request forwarded.
    pub request: Edits,
    /// Applied to every response the route answers with (tango's own too).
    pub response: Edits,
}

impl Rules {
    /// Compile a route's header rules.
    pub fn compile(h: &HeaderRules) -> Rules {
        Rules {
            request: Edits::compile(&h.request, Side::Request),
            response: Edits::compile(&h.response, Side::Response),
        }
    }

    /// Whether the route edits nothing.
    pub fn is_empty(&self) -> bool {
        self.request.is_empty() && self.response.is_empty()
    }
}

/// The values of the variables for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Vars<'a> {
    /// `$client_addr`: the client's address as X-Forwarded-For lists it.
    pub client_addr: &'a [u8],
    /// `$request_id`: the request's X-Request-Id (the client's or tango's).
    pub request_id: &'a [u8],
    /// `$host`: the request's host without its port ([`host_of`]); empty when unknown.
    pub host: &'a [u8],
}

impl Vars<'_> {
    fn get(&self, v: Var) -> &[u8] {
        match v {
            Var::ClientAddr => self.client_addr,
            Var::RequestId => self.request_id,
            Var::Host => self.host,
        }
    }
}

/// Edits with the values of their variables: what a head writer applies.
#[derive(Debug, Clone, Copy)]
pub struct Apply<'a> {
    /// The edits.
    pub edits: &'a Edits,
    /// The request's variables.
    pub vars: Vars<'a>,
}

/// Append the value of `t` for a request to `out`. `false` when a variable's value has
/// a byte no field value may have (a control character other than tab): values tango
/// parsed never do, but the caller then leaves the field out rather than break a head.
pub fn render(t: &Template, vars: &Vars<'_>, out: &mut Vec<u8>) -> bool {
    for p in &t.parts {
        match p {
            Part::Text(s) => out.extend_from_slice(s.as_bytes()),
            Part::Var(v) => {
                let val = vars.get(*v);
                if val.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                    return false;
                }
                out.extend_from_slice(val);
            }
        }
    }
    true
}

/// A Host value (or an authority) without its port, and an IPv6 literal without its
/// brackets: `Example.com:8080` is `Example.com`, `[::1]:80` is `::1`.
pub fn host_of(authority: &[u8]) -> &[u8] {
    if let Some(rest) = authority.strip_prefix(b"[") {
        return match rest.iter().position(|&b| b == b']') {
            Some(end) => &rest[..end],
            None => authority,
        };
    }
    match authority.iter().rposition(|&b| b == b':') {
        Some(at) if authority[at + 1..].iter().all(u8::is_ascii_digit) => &authority[..at],
        _ => authority,
    }
}
