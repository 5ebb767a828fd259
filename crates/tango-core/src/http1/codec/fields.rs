//! A head's field lines as ranges of its buffer (RFC 9112 5), each classified once
//! by name, and which of them are hop-by-hop (RFC 9110 7.6.1): the fixed list
//! `proxy/headers.rs` strips (Connection, Keep-Alive, Proxy-Connection,
//! Proxy-Authenticate, Proxy-Authorization, TE, Transfer-Encoding, and Upgrade unless
//! the message upgrades) and every field the Connection header names. `Trailer` is not
//! among them (RFC 2616 listed "Trailers"; RFC 9110 does not): it announces the
//! trailer fields, which go end to end with a chunked body, so it goes with them.
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
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    XRequestId,
    Date,
}

impl Kind {
    /// The kind of a field name (or of a Connection token naming one). This runs for
    /// every field of every head, so it compares words, not bytes: the length picks
    /// at most two candidates, and a candidate is compared as up to three 8-byte
    /// words (see [`Pat`]).
    pub(super) fn of(name: &[u8]) -> Kind {
        const fn p(lower: &[u8], kind: Kind) -> (Pat, Kind) {
            (Pat::new(lower), kind)
        }
        const L2: [(Pat, Kind); 1] = [p(b"te", Kind::Te)];
        const L4: [(Pat, Kind); 2] = [p(b"host", Kind::Host), p(b"date", Kind::Date)];
        const L6: [(Pat, Kind); 1] = [p(b"expect", Kind::Expect)];
        const L7: [(Pat, Kind); 1] = [p(b"upgrade", Kind::Upgrade)];
        const L10: [(Pat, Kind); 2] = [
            p(b"connection", Kind::Connection),
            p(b"keep-alive", Kind::KeepAlive),
        ];
        const L12: [(Pat, Kind); 1] = [p(b"x-request-id", Kind::XRequestId)];
        const L14: [(Pat, Kind); 1] = [p(b"content-length", Kind::ContentLength)];
        const L15: [(Pat, Kind); 1] = [p(b"x-forwarded-for", Kind::XForwardedFor)];
        const L16: [(Pat, Kind); 2] = [
            p(b"proxy-connection", Kind::ProxyConnection),
            p(b"x-forwarded-host", Kind::XForwardedHost),
        ];
        const L17: [(Pat, Kind); 2] = [
            p(b"transfer-encoding", Kind::TransferEncoding),
            p(b"x-forwarded-proto", Kind::XForwardedProto),
        ];
        const L18: [(Pat, Kind); 1] = [p(b"proxy-authenticate", Kind::ProxyAuthenticate)];
        const L19: [(Pat, Kind); 1] = [p(b"proxy-authorization", Kind::ProxyAuthorization)];
        let candidates: &[(Pat, Kind)] = match name.len() {
            2 => &L2,
            4 => &L4,
            6 => &L6,
            7 => &L7,
            10 => &L10,
            12 => &L12,
            14 => &L14,
            15 => &L15,
            16 => &L16,
            17 => &L17,
            18 => &L18,
            19 => &L19,
            _ => return Kind::Other,
        };
        let w = Words::of(name);
        candidates
            .iter()
            .find(|(pat, _)| pat.is(&w))
            .map_or(Kind::Other, |&(_, kind)| kind)
    }

    /// This kind's bit in [`Headers::kinds`].
    fn bit(self) -> u32 {
        1 << self as u32
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
                | Kind::TransferEncoding
        )
    }
}

/// A name of up to 24 bytes as three little-endian words: for 8 bytes or more, the
/// words at 0, at 8 (or the last 8) and the last 8, overlapping as the length needs;
/// for 4 to 7 bytes, the first and last 4; below that, the bytes. A name and a
/// [`Pat`] of the same length are so cut at the same offsets.
struct Words([u64; 3]);

impl Words {
    fn of(b: &[u8]) -> Words {
        let n = b.len();
        let w64 = |at: usize| {
            b.get(at..at + 8)
                .map_or(0, |s| u64::from_le_bytes(s.try_into().unwrap_or_default()))
        };
        let w32 = |at: usize| {
            b.get(at..at + 4).map_or(0, |s| {
                u64::from(u32::from_le_bytes(s.try_into().unwrap_or_default()))
            })
        };
        if n >= 8 {
            Words([w64(0), w64(8.min(n - 8)), w64(n - 8)])
        } else if n >= 4 {
            Words([w32(0), w32(n - 4), 0])
        } else {
            Words([b.iter().rev().fold(0, |w, &c| w << 8 | u64::from(c)), 0, 0])
        }
    }
}

/// A lowercase name (letters, digits, `-`) to compare names with in any case: its
/// [`Words`], and a mask with 0x20 at each letter. A name matches when its words, with
/// the mask set, equal these: setting 0x20 maps exactly a letter's two cases to the
/// lowercase one, and other bytes must be equal, which is `eq_ignore_ascii_case`.
struct Pat {
    words: [u64; 3],
    masks: [u64; 3],
}

impl Pat {
    const fn new(lower: &[u8]) -> Pat {
        let n = lower.len();
        assert!(n <= 24);
        let (offsets, width, count) = if n >= 8 {
            ([0, if n >= 16 { 8 } else { n - 8 }, n - 8], 8, 3)
        } else if n >= 4 {
            ([0, n - 4, 0], 4, 2)
        } else {
            ([0, 0, 0], n, 1)
        };
        let mut words = [0u64; 3];
        let mut masks = [0u64; 3];
        let mut k = 0;
        while k < count {
            let mut i = 0;
            while i < width {
                let c = lower[offsets[k] + i];
                words[k] |= (c as u64) << (8 * i);
                if c.is_ascii_lowercase() {
                    masks[k] |= 0x20 << (8 * i);
                }
                i += 1;
            }
            k += 1;
        }
        Pat { words, masks }
    }

    /// Whether `w`, the words of a name of this pattern's length, match.
    fn is(&self, w: &Words) -> bool {
        (w.0[0] | self.masks[0]) == self.words[0]
            && (w.0[1] | self.masks[1]) == self.words[1]
            && (w.0[2] | self.masks[2]) == self.words[2]
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
///
/// A head is parsed into one that is reused (a pooled box), so entries past `len` may
/// be a former head's: they are never read, and equality and `Debug` see only the
/// fields.
#[derive(Clone, Default)]
pub struct Headers {
    inline: [Header; INLINE_HEADERS],
    len: usize,
    /// The kinds present, a bit each ([`Kind::bit`]): lookups of a kind and the
    /// hop-by-hop marking skip their walk when there is nothing to find.
    kinds: u32,
    /// The lengths of the field names, a bit each ([`len_bit`]): a Connection token
    /// can name a field only of its own length.
    name_lens: u64,
    /// What the Connection fields say, read once here for every rule that asks.
    conn: ConnectionTokens,
    pub(super) more: Vec<Header>,
}

/// What a head's Connection fields say, over all of them: the rules that read them
/// (keep-alive, upgrade, hop-by-hop) do not depend on which field says what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct ConnectionTokens {
    /// A token `close`.
    pub(super) close: bool,
    /// A token `keep-alive`.
    pub(super) keep_alive: bool,
    /// A token `upgrade`.
    pub(super) upgrade: bool,
    /// The lengths ([`len_bit`]) of the tokens that may name a field not hop-by-hop
    /// already: only a field of such a length needs comparing with them.
    named: u64,
}

impl ConnectionTokens {
    /// Add one Connection field's value, its tokens compared in any case (a value
    /// that is not text is the one token `"\0"`, see `items`).
    fn add(&mut self, v: &[u8]) {
        // The usual values, one token (so text, no comma, nothing to trim), read as
        // the loop below reads them, without splitting.
        if v.len() == 10 && Kind::of(v) == Kind::KeepAlive {
            self.keep_alive = true;
            return;
        }
        if v.eq_ignore_ascii_case(b"close") {
            self.close = true;
            self.named |= len_bit(5);
            return;
        }
        for t in items(v) {
            let k = Kind::of(t);
            self.close |= t.eq_ignore_ascii_case(b"close");
            self.keep_alive |= k == Kind::KeepAlive;
            self.upgrade |= k == Kind::Upgrade;
            if !(k.always_hop() || k == Kind::Upgrade) {
                self.named |= len_bit(t.len());
            }
        }
    }
}

/// A length's bit in a set of lengths; every length of 63 or more shares bit 63 (such a
/// set may say a length is there when only a longer one of them is: that costs a
/// search, never a wrong answer).
fn len_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl PartialEq for Headers {
    fn eq(&self, other: &Headers) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for Headers {}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
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

    /// What the Connection fields say.
    pub(super) fn connection(&self) -> ConnectionTokens {
        self.conn
    }

    /// Whether a field of this kind is present.
    pub(super) fn has(&self, kind: Kind) -> bool {
        self.kinds & kind.bit() != 0
    }

    pub(super) fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Header> + '_ {
        // No walk at all for a kind the head lacks (most lack most kinds).
        let n = if self.has(kind) { self.len } else { 0 };
        self.iter().take(n).filter(move |h| h.kind == kind)
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut Header> + '_ {
        self.inline[..self.len.min(INLINE_HEADERS)]
            .iter_mut()
            .chain(self.more.iter_mut())
    }

    /// Take httparse's fields in place of those held. `None` when a name is 64 KiB or
    /// longer (hyper: 431). Fields hop-by-hop by their name alone are marked here;
    /// [`Headers::mark_hop_by_hop`] does the rest.
    pub(super) fn fill(&mut self, buf: &[u8], parsed: &[httparse::Header<'_>]) -> Option<()> {
        self.len = 0;
        self.kinds = 0;
        self.name_lens = 0;
        self.conn = ConnectionTokens::default();
        self.more.clear();
        for h in parsed {
            let name = h.name.as_bytes();
            let kind = Kind::of(name);
            let header = Header {
                name_start: Span::within(buf, name).start,
                name_len: u16::try_from(name.len()).ok()?,
                kind,
                hop: kind.always_hop(),
                value: Span::within(buf, h.value),
            };
            if self.len < INLINE_HEADERS {
                self.inline[self.len] = header;
            } else {
                self.more.push(header);
            }
            self.len += 1;
            self.kinds |= kind.bit();
            self.name_lens |= len_bit(name.len());
            if kind == Kind::Connection {
                self.conn.add(h.value);
            }
        }
        Some(())
    }

    /// Mark the hop-by-hop fields, as `strip_hop_by_hop` in `proxy/headers.rs` removes
    /// them. With `keep_upgrade` (the message upgrades), Upgrade stays, and so does a
    /// field Connection names `upgrade`.
    pub(super) fn mark_hop_by_hop(&mut self, buf: &[u8], keep_upgrade: bool) {
        if !keep_upgrade && self.has(Kind::Upgrade) {
            for h in self.iter_mut().filter(|h| h.kind == Kind::Upgrade) {
                h.hop = true;
            }
        }
        // Only a field whose name is as long as a token Connection lists, one that is
        // not hop-by-hop anyway (the usual `keep-alive`, `upgrade`), may be named by it:
        // without one, no search (the usual `Connection: keep-alive` or `close`).
        if self.conn.named & self.name_lens == 0 {
            return;
        }
        // Every other field Connection names goes. A field is compared only with the
        // tokens of its name's length, so the work is the Connection values' length
        // times the number of fields (both bounded by the head's size and MAX_HEADERS).
        for i in 0..self.len {
            let h = self.get(i);
            if h.hop || h.kind == Kind::Upgrade || self.conn.named & len_bit(h.name_len.into()) == 0
            {
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
