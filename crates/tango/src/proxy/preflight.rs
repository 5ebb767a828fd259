//! What the binary checks of a configuration beyond tango-core's validation, because it
//! reads files or knows what this data plane serves: the listeners' certificates (each
//! problem an error at its key's line:col; the dates handed to the checklist), the
//! pools' TLS files (their client built as it will be served, each problem at its
//! key).
//! `tango check`, `tango run` and every reload load a file through here, so they agree.

use super::tls;
use crate::upstream::tls::{Client, Field};
use std::path::Path;
use tango_core::config::{self, LoadError, Loaded};
use tango_core::diag::{Diagnostic, Span};

/// Read, validate and check a configuration file.
pub(crate) fn load(path: &Path) -> Result<Loaded, LoadError> {
    check(config::load(path)?)
}

/// Check a validated configuration: its certificates and TLS files.
pub(crate) fn check(mut loaded: Loaded) -> Result<Loaded, LoadError> {
    let (mut errors, facts) = tls::check(&loaded, tls::unix_now());
    errors.extend(upstream_tls(&loaded));
    if errors.is_empty() {
        loaded.certificates = facts;
        return Ok(loaded);
    }
    errors.sort_by_key(|d| d.span.map_or(usize::MAX, |s| s.start));
    Err(LoadError::Invalid {
        source: loaded.source,
        diagnostics: errors,
    })
}

/// Fill in the certificates' dates, whatever else is wrong with them: for the
/// configuration in force, whose checklist findings a reload's are compared with.
pub(crate) fn read_dates(loaded: &mut Loaded) {
    loaded.certificates = tls::check(loaded, tls::unix_now()).1;
}

/// Each pool's TLS client, built as a snapshot will build it: a file that cannot be
/// read or is not the PEM it should be is an error at its key (`ca`, `cert`, `key`),
/// each bad file of a pool its own error.
fn upstream_tls(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for p in &loaded.config.pools {
        let Some(t) = &p.tls else {
            continue;
        };
        let Err(problems) = Client::new(t, p.protocol) else {
            continue;
        };
        let file = loaded
            .file
            .pool
            .iter()
            .map(|f| f.get_ref())
            .find(|f| f.name.get_ref() == &p.name)
            .and_then(|f| f.tls.as_ref());
        let at = |s: &Option<toml::Spanned<String>>| s.as_ref().map(|s| Span::from(s.span()));
        for problem in problems.0 {
            let (name, span) = match (problem.field, file.map(|f| f.get_ref())) {
                (Field::Ca, Some(f)) => ("ca", at(&f.ca)),
                (Field::Cert, Some(f)) => ("cert", at(&f.cert)),
                (Field::Key, Some(f)) => ("key", at(&f.key)),
                _ => ("", None),
            };
            let key = match name {
                "" => format!("pool[{}].tls", p.name),
                n => format!("pool[{}].tls.{n}", p.name),
            };
            let mut d = Diagnostic::error(&key, Some(span.unwrap_or(t.span)), problem.message);
            if !problem.hint.is_empty() {
                d = d.with_hint(problem.hint);
            }
            out.push(d);
        }
    }
    out
}
