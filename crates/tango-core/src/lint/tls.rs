//! Rules about TLS: a listener certificate that has expired (TNG025), is not valid yet
//! (TNG026) or expires soon (TNG023), from the file, names and dates the binary read
//! (`Loaded::certificates`); and a pool whose TLS to its backends does not verify them
//! (TNG024).
//!
//! An expired certificate is a warning, not an error: tango serves it, as nginx, HAProxy
//! and Envoy do, so one certificate past its date never keeps a file from starting or
//! reloading. The reload guard compares findings by rule and key with the configuration
//! in force read at the same moment, so a certificate that expired since the last reload
//! is in both and refuses nothing; a reload that brings in an expired one adds it.

use super::rules::*;
use super::Cx;
use crate::config::CertificateFacts;

/// A certificate expiring within this many days is reported.
pub(crate) const EXPIRY_WARNING_DAYS: i64 = 14;

const DAY: i64 = 86_400;

/// A length of `secs` in whole days: "less than a day", "1 day", "12 days".
fn days(secs: i64) -> String {
    match secs / DAY {
        0 => "less than a day".to_string(),
        1 => "1 day".to_string(),
        d => format!("{d} days"),
    }
}

pub(super) fn check(cx: &mut Cx<'_>) {
    let loaded = cx.loaded;
    for c in &loaded.certificates {
        let (rule, message, hint) = if c.read_at > c.not_after {
            let ago = format!("{} ago", days(c.read_at - c.not_after));
            (
                &CERTIFICATE_EXPIRED,
                format!(
                    "{} expired on {} ({ago}); it is served, and clients that verify it refuse the handshake",
                    described(c),
                    date(c.not_after)
                ),
                format!("renew it: replace {} and its key with the new certificate and key (or point `cert` and `key` at new files), then reload", c.file),
            )
        } else if c.read_at < c.not_before {
            (
                &CERTIFICATE_NOT_YET_VALID,
                format!(
                    "{} is not valid until {}; it is served, and clients that verify it refuse the handshake until then",
                    described(c),
                    date(c.not_before)
                ),
                "check this machine's clock, or serve a certificate whose notBefore has passed, then reload".to_string(),
            )
        } else if c.not_after - c.read_at < EXPIRY_WARNING_DAYS * DAY {
            let when = format!("in {}", days(c.not_after - c.read_at));
            (
                &CERTIFICATE_EXPIRES_SOON,
                format!("{} expires {when} ({})", described(c), date(c.not_after)),
                format!("renew it before then: replace {} and its key with the new certificate and key (or point `cert` and `key` at new files), then reload", c.file),
            )
        } else {
            continue;
        };
        cx.report(rule, None, c.key.clone(), Some(c.span), message, Some(hint));
    }
    for p in &loaded.config.pools {
        let Some(tls) = p.tls.as_ref().filter(|t| !t.verify) else {
            continue;
        };
        cx.report(
            &UPSTREAM_TLS_UNVERIFIED,
            Some(&p.name),
            format!("pool[{}].tls.verify", p.name),
            Some(tls.verify_span.unwrap_or(tls.span)),
            format!(
                "pool `{}` sends TLS to its backends without verifying their certificates",
                p.name
            ),
            None,
        );
    }
}

/// `the certificate in certs/a.pem (a.example, *.b.example)`.
fn described(c: &CertificateFacts) -> String {
    format!("the certificate in {} ({})", c.file, server_names(&c.names))
}

/// A certificate's server names: `a.example, *.b.example`, or `the listener's default`
/// for one without any (served only as its listener's default). Also how the
/// listeners' warnings write them, so the log and the checklist name a certificate
/// alike.
pub fn server_names(names: &[String]) -> String {
    match names.is_empty() {
        true => "the listener's default".to_string(),
        false => names.join(", "),
    }
}

/// `2026-11-29T21:59:46Z`; the number itself for a date before 1970. Also how the
/// listeners' warnings write a certificate's dates, so the log and the checklist agree.
pub fn date(unix: i64) -> String {
    u64::try_from(unix)
        .ok()
        .and_then(|s| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s)))
        .map_or_else(
            || unix.to_string(),
            |t| humantime::format_rfc3339_seconds(t).to_string(),
        )
}
