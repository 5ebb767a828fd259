//! The request-target (RFC 9112 3.2): which of the four forms it has, what tango
//! forwards of it, and whether it is accepted at all. hyper's server took a target
//! only if `http::Uri` parsed it (and answered `400` otherwise), so these are that
//! crate's rules (`http` 1.x, `uri/mod.rs`, `authority.rs`, `path.rs`, `scheme.rs`),
//! byte for byte: a fragment is dropped, a path may hold `"`, `{` and `}`, bytes past
//! ASCII must be UTF-8, an authority has at most one port colon outside brackets.

/// The longest target hyper's server took (`MAX_URI_LEN`); longer is `414`.
pub(super) const MAX_TARGET: usize = (u16::MAX - 1) as usize;

/// The longest scheme `http::Uri` takes.
const MAX_SCHEME: usize = 64;

/// Which form a request-target has (RFC 9112 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm {
    /// `/path?query`: what tango forwards.
    Origin,
    /// `scheme://authority/path?query`, as sent to proxies.
    Absolute,
    /// `host:port`, for CONNECT (and taken, as `http::Uri` takes it, with any method).
    Authority,
    /// `*`, for a server-wide OPTIONS.
    Asterisk,
}

impl TargetForm {
    /// Whether a request of method `m` may have a target of this form (RFC 9112
    /// 3.2.3, 3.2.4): the authority form is CONNECT's, and CONNECT's target is nothing
    /// else; the asterisk form is OPTIONS's. nginx and HAProxy answer anything else
    /// `400`; forwarded, `GET x:80` would go on as `GET /`, a target the client never
    /// asked for, and `CONNECT /` as a tunnel request.
    pub fn fits(self, m: super::Method) -> bool {
        use super::Method::{Connect, Options};
        match self {
            TargetForm::Authority => m == Connect,
            _ if m == Connect => false,
            TargetForm::Asterisk => m == Options,
            TargetForm::Origin | TargetForm::Absolute => true,
        }
    }
}

/// What the target holds; offsets are into the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) form: TargetForm,
    /// The authority, for the absolute and authority forms.
    pub(super) authority: Option<(usize, usize)>,
    /// Path and query without the fragment (empty for the authority form; for the
    /// absolute form possibly empty or starting with `?`).
    pub(super) origin: (usize, usize),
    /// Where the path ends (the query, if any, starts there).
    pub(super) path_end: usize,
}

/// Why a target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bad {
    TooLong,
    Invalid,
}

/// Classify and check `t`, as `http::Uri::from_shared` does.
pub(super) fn classify(t: &[u8]) -> Result<Target, Bad> {
    if t.len() > MAX_TARGET {
        return Err(Bad::TooLong);
    }
    match t {
        [] => Err(Bad::Invalid),
        b"*" => Ok(Target {
            form: TargetForm::Asterisk,
            authority: None,
            origin: (0, 1),
            path_end: 1,
        }),
        [b'/', ..] => {
            let (origin, path_end) = path_and_query(t, 0)?;
            Ok(Target {
                form: TargetForm::Origin,
                authority: None,
                origin,
                path_end,
            })
        }
        _ => full(t),
    }
}

/// A target that does not start with `/`: absolute (with a scheme) or authority.
fn full(t: &[u8]) -> Result<Target, Bad> {
    let Some(rest) = scheme_len(t)?.map(|n| n + 3) else {
        // No scheme: the whole target must be an authority.
        if authority_end(t)? != t.len() {
            return Err(Bad::Invalid);
        }
        return Ok(Target {
            form: TargetForm::Authority,
            authority: Some((0, t.len())),
            origin: (t.len(), t.len()),
            path_end: t.len(),
        });
    };
    let end = rest + authority_end(&t[rest..])?;
    if end == rest {
        return Err(Bad::Invalid);
    }
    let (origin, path_end) = if end == t.len() {
        ((end, end), end)
    } else {
        path_and_query(t, end)?
    };
    Ok(Target {
        form: TargetForm::Absolute,
        authority: Some((rest, end)),
        origin,
        path_end,
    })
}

/// The length of the scheme before `://`, if the target starts with one.
fn scheme_len(t: &[u8]) -> Result<Option<usize>, Bad> {
    if t.len() >= 7 && t[..7].eq_ignore_ascii_case(b"http://") {
        return Ok(Some(4));
    }
    if t.len() >= 8 && t[..8].eq_ignore_ascii_case(b"https://") {
        return Ok(Some(5));
    }
    if t.len() <= 3 {
        return Ok(None);
    }
    for (i, &b) in t.iter().enumerate() {
        match b {
            b':' => {
                if t.len() < i + 3 || &t[i + 1..i + 3] != b"//" {
                    return Ok(None);
                }
                if i > MAX_SCHEME {
                    return Err(Bad::Invalid);
                }
                return Ok(Some(i));
            }
            // `http`'s SCHEME_CHARS, which has `~` too.
            b'+' | b'-' | b'.' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'~' => {}
            _ => return Ok(None),
        }
    }
    Ok(None)
}

/// Bytes `http` takes in an authority (its `URI_CHARS`), `%` aside.
fn uri_char(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'&'..=b';' | b'=' | b'?'..=b'[' | b']' | b'_' | b'a'..=b'z' | b'~')
}

/// Where the authority at the start of `s` ends (at `/`, `?`, `#` or the end), checked
/// as `http`'s `validate_authority_bytes` checks it.
fn authority_end(s: &[u8]) -> Result<usize, Bad> {
    if s.is_empty() {
        return Err(Bad::Invalid);
    }
    let (mut colons, mut open, mut close, mut percent) = (0u32, false, false, false);
    let (mut end, mut at) = (s.len(), s.len());
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'/' | b'?' | b'#' => {
                end = i;
                break;
            }
            b'%' => percent = true,
            _ if !uri_char(b) => return Err(Bad::Invalid),
            b':' if colons >= 8 => return Err(Bad::Invalid),
            b':' => colons += 1,
            b'[' if percent || open => return Err(Bad::Invalid),
            b'[' => open = true,
            b']' if !open || close => return Err(Bad::Invalid),
            b']' => {
                close = true;
                colons = 0;
                percent = false;
            }
            b'@' => {
                at = i;
                colons = 0;
                percent = false;
            }
            _ => {}
        }
    }
    let bad = open != close || colons > 1 || (end > 0 && at == end - 1) || percent;
    if bad {
        Err(Bad::Invalid)
    } else {
        Ok(end)
    }
}

/// Path and query starting at `t[from]` (which is `/`, `?` or `#`), as `http`'s
/// `scan_path_and_query`: returns the range without a fragment and where the path ends.
fn path_and_query(t: &[u8], from: usize) -> Result<((usize, usize), usize), Bad> {
    if !matches!(t[from], b'/' | b'?' | b'#') {
        return Err(Bad::Invalid);
    }
    let mut i = from;
    let mut path_end = None;
    let mut high = false;
    while i < t.len() {
        let b = t[i];
        let ok = match (path_end.is_some(), b) {
            (_, b'#') => break,
            (false, b'?') => {
                path_end = Some(i);
                true
            }
            (_, 0x80..=0xff) => {
                high = true;
                true
            }
            // The path: RFC 3986 pchar and `/`, plus `"`, `{`, `|` and `}` as sent raw.
            (false, _) => matches!(b,
                b'!' | b'"' | b'$'..=b';' | b'=' | b'@'..=b'_' | b'a'..=b'~'),
            // The query: also `?`, `` ` ``, `^` and the rest of visible ASCII but `"`, `<`, `>`.
            (true, _) => matches!(b, b'!' | b'$'..=b';' | b'=' | b'?'..=b'~'),
        };
        if !ok {
            return Err(Bad::Invalid);
        }
        i += 1;
    }
    if high && std::str::from_utf8(&t[from..i]).is_err() {
        return Err(Bad::Invalid);
    }
    Ok(((from, i), path_end.unwrap_or(i)))
}
