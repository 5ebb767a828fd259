//! What the binary checks of a configuration beyond tango-core's validation, because it
//! reads files or knows what this data plane serves: the listeners' certificates (each
//! problem an error at its key's line:col; the dates handed to the checklist), and the
//! settings the data plane does not serve yet (refused, never silently ignored).
//! `tango check`, `tango run` and every reload load a file through here, so they agree.

use super::tls;
use std::path::Path;
use tango_core::config::{self, Config, LoadError, Loaded, UpstreamProtocol};
use tango_core::diag::{Diagnostic, Span};

/// Read, validate and check a configuration file.
pub(crate) fn load(path: &Path) -> Result<Loaded, LoadError> {
    check(config::load(path)?)
}

/// Check a validated configuration: its certificates, and what is not served yet.
pub(crate) fn check(mut loaded: Loaded) -> Result<Loaded, LoadError> {
    let (mut errors, facts) = tls::check(&loaded, tls::unix_now());
    errors.extend(unsupported(&loaded.config));
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

/// The settings this version validates but does not serve yet, each an error: serving
/// plain HTTP/1.1 where the file asks for TLS would do something other than what the
/// file says.
fn unsupported(c: &Config) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut refuse = |key: String, span: Span, what: &str| {
        out.push(
            Diagnostic::error(
                &key,
                Some(span),
                format!("{what} is not served by this version of tango yet"),
            )
            .with_hint("remove it: tango refuses a setting it cannot honour rather than ignore it"),
        );
    };
    for p in &c.pools {
        let k = format!("pool[{}]", p.name);
        if let Some(t) = &p.tls {
            refuse(format!("{k}.tls"), t.span, "TLS to backends");
        }
        if let (UpstreamProtocol::H2 | UpstreamProtocol::Auto, Some(s)) =
            (p.protocol, p.protocol_span)
        {
            refuse(format!("{k}.protocol"), s, "HTTP/2 to backends");
        }
        if let (Some(_), Some(s)) = (p.send_proxy_protocol, p.send_proxy_protocol_span) {
            refuse(
                format!("{k}.send_proxy_protocol"),
                s,
                "the PROXY protocol to backends",
            );
        }
    }
    out
}
