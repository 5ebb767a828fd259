//! A head's field lines as ranges of its buffer (RFC 9112 5), each classified once
//! by name, and which of them are hop-by-hop (RFC 9110 7.6.1): the fixed list
//! `proxy/headers.rs` strips (Connection, Keep-Alive, Proxy-Connection,
//! Proxy-Authenticate, Proxy-Authorization, TE, Trailer, Transfer-Encoding, and Upgrade
//! unless the message upgrades) and every field the Connection header names.
//!
//! The list holds [`INLINE_HEADERS`] fields inline and the rest (up to
//! [`MAX_HEADERS`]) in a vector, so an ordinary head costs no allocation.

use super::{items, Span};

/// The most fields a head may have, as hyper: more is `431` for a request.
pub const MAX_HEADERS: usize = 100;

/// Fields kept inline in a parsed head; a head with more allocates once for the rest.
/// Browsers send about twenty.
pub const INLINE_HEADERS: usize = 24;

/// The field names the codec acts on. Names are compared without regard to case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Kind {
    #[default]
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    ProxyAuthenticate,
    ProxyAuthorization,
    Te,
    Trailer,
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XRequestId,
    Date,
}

impl Kind {
    fn of(name: &[u8]) -> Kind {
        // The length picks at most two candidates, so a name is compared at most twice
        // (most names are none of these, and their lengths say so at once).
        let is = |n: &[u8]| name.eq_ignore_ascii_case(n);
        match name.len() {
            2 if is(b"te") => Kind::Te,
            4 if is(b"host") => Kind::Host,
            4 if is(b"date") => Kind::Date,
            6 if is(b"expect") => Kind::Expect,
            7 if is(b"upgrade") => Kind::Upgrade,
            7 if is(b"trailer") => Kind::Trailer,
            10 if is(b"connection") => Kind::Connection,
            10 if is(b"keep-alive") => Kind::KeepAlive,
            12 if is(b"x-request-id") => Kind::XRequestId,
            14 if is(b"content-length") => Kind::ContentLength,
            15 if is(b"x-forwarded-for") => Kind::XForwardedFor,
            16 if is(b"proxy-connection") => Kind::ProxyConnection,
            16 if is(b"x-forwarded-host") => Kind::XForwardedHost,
            17 if is(b"transfer-encoding") => Kind::TransferEncoding,
            17 if is(b"x-forwarded-proto") => Kind::XForwardedProto,
            18 if is(b"proxy-authenticate") => Kind::ProxyAuthenticate,
            19 if is(b"proxy-authorization") => Kind::ProxyAuthorization,
            _ => Kind::Other,
        }
    }

    /// Hop-by-hop whatever the Connection header says (Upgrade is decided apart).
    fn always_hop(self) -> bool {
        matches!(
            self,
            Kind::Connection
                | Kind::KeepAlive
                | Kind::ProxyConnection
                | Kind::ProxyAuthenticate
                | Kind::ProxyAuthorization
                | Kind::Te
                | Kind::Trailer
                | Kind::TransferEncoding
        )
    }
}

/// One field line: where its name and value lie in the head's buffer (the value
/// without surrounding whitespace, as httparse gives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    name_start: u32,
    name_len: u16,
    kind: Kind,
    hop: bool,
    value: Span,
}

impl Header {
    /// The field name's range.
    pub fn name(&self) -> Span {
        Span {
            start: self.name_start,
            end: self.name_start + u32::from(self.name_len),
        }
    }

    /// The field value's range.
    pub fn value(&self) -> Span {
        self.value
    }

    /// Whether the field is hop-by-hop: a proxy does not forward it.
    pub fn is_hop_by_hop(&self) -> bool {
        self.hop
    }

    pub(super) fn kind(&self) -> Kind {
        self.kind
    }
}

/// A head's fields in the order they came. See the module documentation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    inline: [Header; INLINE_HEADERS],
    len: usize,
    pub(super) more: Vec<Header>,
}

impl Headers {
    /// How many fields the head has.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the head has no fields.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> + '_ {
        self.inline[..self.len.min(INLINE_HEADERS)]
            .iter()
            .chain(self.more.iter())
    }

    /// The values of the fields named `name` (any case), in order.
    pub fn values<'a>(&'a self, buf: &'a [u8], name: &'a [u8]) -> impl Iterator<Item = Span> + 'a {
        self.iter()
            .filter(move |h| h.name().of(buf).eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    pub(super) fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Header> + '_ {
        self.iter().filter(move |h| h.kind == kind)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Header> + '_ {
        self.inline[..self.len.min(INLINE_HEADERS)]
            .iter_mut()
            .chain(self.more.iter_mut())
    }

    /// Take httparse's fields. `None` when a name is 64 KiB or longer (hyper: 431).
    pub(super) fn from_parsed(buf: &[u8], parsed: &[httparse::Header<'_>]) -> Option<Headers> {
        let mut list = Headers::default();
        for h in parsed {
            let name = Span::within(buf, h.name.as_bytes());
            let header = Header {
                name_start: name.start,
                name_len: u16::try_from(name.len()).ok()?,
                kind: Kind::of(h.name.as_bytes()),
                hop: false,
                value: Span::within(buf, h.value),
            };
            if list.len < INLINE_HEADERS {
                list.inline[list.len] = header;
            } else {
                list.more.push(header);
            }
            list.len += 1;
        }
        Some(list)
    }

    /// Mark the hop-by-hop fields, as `strip_hop_by_hop` in `proxy/headers.rs` removes
    /// them. With `keep_upgrade` (the message upgrades), Upgrade stays, and so does a
    /// field Connection names `upgrade`.
    pub(super) fn mark_hop_by_hop(&mut self, buf: &[u8], keep_upgrade: bool) {
        for h in self.iter_mut() {
            h.hop = h.kind.always_hop() || (h.kind == Kind::Upgrade && !keep_upgrade);
        }
        // Tokens naming fields hop-by-hop already (the usual `keep-alive`, `upgrade`)
        // need no search.
        let search = self.of_kind(Kind::Connection).any(|c| {
            items(c.value.of(buf)).any(|t| {
                let k = Kind::of(t);
                !(k.always_hop() || k == Kind::Upgrade)
            })
        });
        if !search {
            return;
        }
        // Every other field Connection names goes. A field is compared only with the
        // tokens of its name's length, so the work is the Connection values' length
        // times the number of fields (both bounded by the head's size and MAX_HEADERS).
        for i in 0..self.len {
            let h = self.get(i);
            if h.hop || h.kind == Kind::Upgrade {
                continue;
            }
            let name = h.name().of(buf);
            let named = self.of_kind(Kind::Connection).any(|c| {
                items(c.value.of(buf))
                    .any(|t| t.len() == name.len() && t.eq_ignore_ascii_case(name))
            });
            if named {
                self.get_mut(i).hop = true;
            }
        }
    }

    fn get(&self, i: usize) -> Header {
        if i < INLINE_HEADERS {
            self.inline[i]
        } else {
            self.more[i - INLINE_HEADERS]
        }
    }

    fn get_mut(&mut self, i: usize) -> &mut Header {
        if i < INLINE_HEADERS {
            &mut self.inline[i]
        } else {
            &mut self.more[i - INLINE_HEADERS]
        }
    }
}
