//! The checks every table's fields share: a duration, a number in its range, a socket
//! address, an address block, one of a set of names. Each problem is reported with its key path, span and
//! a hint, and the field falls back to its default so that validation goes on and one
//! run reports every mistake.

use crate::config::file::S;
use crate::config::Cidr;
use crate::diag::{Diagnostic, Span};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest duration accepted anywhere: deadlines are computed by adding durations
/// to the clock, which must not overflow.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A validation in progress: where relative paths start, and the problems so far.
pub(super) struct V<'a> {
    pub(super) base: &'a Path,
    pub(super) diags: Vec<Diagnostic>,
}

pub(super) fn span<T>(s: &S<T>) -> Span {
    s.span().into()
}

impl<'a> V<'a> {
    pub(super) fn err(
        &mut self,
        key: &str,
        s: Span,
        msg: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::error(key, Some(s), msg).with_hint(hint));
    }

    /// The fields of one table, whose key paths start with `prefix`.
    pub(super) fn table<'v>(&'v mut self, prefix: &'v str) -> Table<'v, 'a> {
        Table { v: self, prefix }
    }

    fn parse_duration(&mut self, key: &str, v: &S<String>) -> Option<Duration> {
        let (msg, hint) = match humantime::parse_duration(v.get_ref().trim()) {
            Ok(d) if d.is_zero() => (
                "duration must be greater than zero".to_string(),
                "write e.g. \"2s\", \"500ms\" or \"1m\"",
            ),
            Ok(d) if d > MAX_DURATION => (
                format!("`{}` is longer than a week", v.get_ref()),
                "no timeout or interval here needs more than a week; write e.g. \"30s\"",
            ),
            Ok(d) => return Some(d),
            Err(e) => (
                format!("`{}` is not a duration: {e}", v.get_ref()),
                "write a number with a unit, e.g. \"2s\", \"500ms\" or \"1m\"",
            ),
        };
        self.err(key, span(v), msg, hint);
        None
    }

    fn parse_int(&mut self, key: &str, v: &S<i64>, range: &RangeInclusive<i64>) -> Option<i64> {
        let n = *v.get_ref();
        if range.contains(&n) {
            return Some(n);
        }
        let (min, max) = (range.start(), range.end());
        self.err(
            key,
            span(v),
            format!("{n} is out of range"),
            format!("use a whole number from {min} to {max}"),
        );
        None
    }

    fn parse_float(&mut self, key: &str, v: &S<f64>, range: &RangeInclusive<f64>) -> Option<f64> {
        let n = *v.get_ref();
        // `contains` is false for NaN, which is refused like any value out of range.
        if range.contains(&n) {
            return Some(n);
        }
        let (min, max) = (range.start(), range.end());
        self.err(
            key,
            span(v),
            format!("{n} is out of range"),
            format!("use a number from {min} to {max}"),
        );
        None
    }

    pub(super) fn socket(&mut self, key: &str, v: &S<String>) -> Option<SocketAddr> {
        match v.get_ref().parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.err(
                    key,
                    span(v),
                    format!("`{}` is not an IP address with a port", v.get_ref()),
                    "write e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
                );
                None
            }
        }
    }

    /// A path from the file, relative to the file's directory unless absolute.
    pub(super) fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn choice<T: Copy>(&mut self, key: &str, v: &S<String>, options: &[(&str, T)]) -> Option<T> {
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == v.get_ref()) {
            return Some(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.err(
            key,
            span(v),
            format!("unknown value `{}`", v.get_ref()),
            one_of(v.get_ref(), &names),
        );
        None
    }
}

/// The fields of one table: each check takes the field's name, its value from the file
/// and, for a field with a default, the default (see `config::defaults`).
pub(super) struct Table<'v, 'a> {
    pub(super) v: &'v mut V<'a>,
    prefix: &'v str,
}

impl Table<'_, '_> {
    /// The key path of field `name`, as problems name it.
    pub(super) fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    pub(super) fn duration(
        &mut self,
        name: &str,
        v: &Option<S<String>>,
        default: Duration,
    ) -> Duration {
        self.optional_duration(name, v).unwrap_or(default)
    }

    /// A setting that is off unless given.
    pub(super) fn optional_duration(
        &mut self,
        name: &str,
        v: &Option<S<String>>,
    ) -> Option<Duration> {
        let key = self.key(name);
        self.v.parse_duration(&key, v.as_ref()?)
    }

    pub(super) fn int<T: TryFrom<i64>>(
        &mut self,
        name: &str,
        v: &Option<S<i64>>,
        range: RangeInclusive<i64>,
        default: T,
    ) -> T {
        self.optional_int(name, v, range).unwrap_or(default)
    }

    /// A limit that is off unless given.
    pub(super) fn optional_int<T: TryFrom<i64>>(
        &mut self,
        name: &str,
        v: &Option<S<i64>>,
        range: RangeInclusive<i64>,
    ) -> Option<T> {
        let key = self.key(name);
        let n = self.v.parse_int(&key, v.as_ref()?, &range)?;
        T::try_from(n).ok()
    }

    pub(super) fn float(
        &mut self,
        name: &str,
        v: &Option<S<f64>>,
        range: RangeInclusive<f64>,
        default: f64,
    ) -> f64 {
        self.optional_float(name, v, range).unwrap_or(default)
    }

    /// A setting that is off unless given.
    pub(super) fn optional_float(
        &mut self,
        name: &str,
        v: &Option<S<f64>>,
        range: RangeInclusive<f64>,
    ) -> Option<f64> {
        let key = self.key(name);
        self.v.parse_float(&key, v.as_ref()?, &range)
    }

    /// One of `options` by name; unset (or unknown, reported) is `None`.
    pub(super) fn optional_choice<T: Copy>(
        &mut self,
        name: &str,
        v: &Option<S<String>>,
        options: &[(&str, T)],
    ) -> Option<T> {
        let key = self.key(name);
        self.v.choice(&key, v.as_ref()?, options)
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        name: &str,
        v: &Option<S<String>>,
        options: &[(&str, T)],
        default: T,
    ) -> T {
        self.optional_choice(name, v, options).unwrap_or(default)
    }
}

/// "use one of: ...", led by a did-you-mean when one of them is close to `word`.
/// Each name is listed once: a file that defines a pool twice is already told so, and
/// "use one of: web, web" would read as two choices.
pub(super) fn one_of(word: &str, names: &[&str]) -> String {
    let mut seen = std::collections::HashSet::new();
    let names: Vec<&str> = names.iter().copied().filter(|n| seen.insert(*n)).collect();
    match crate::diag::did_you_mean(word, names.iter().copied()) {
        Some(close) => format!("did you mean `{close}`? (use one of: {})", names.join(", ")),
        None => format!("use one of: {}", names.join(", ")),
    }
}

/// An address block (`10.0.0.0/8`) or a single address (`192.0.2.7`).
pub(crate) fn parse_cidr(s: &str) -> Option<Cidr> {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some(Cidr { addr, prefix })
}
