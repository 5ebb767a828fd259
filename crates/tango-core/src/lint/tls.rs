//! Rules about TLS: a listener certificate close to its expiry (TNG023), from the dates
//! the binary read (`Loaded::certificates`), and a pool whose TLS to its backends does
//! not verify them (TNG024).

use super::rules::*;
use super::Cx;

/// A certificate expiring within this many days is reported.
pub(crate) const EXPIRY_WARNING_DAYS: i64 = 14;

pub(super) fn check(cx: &mut Cx<'_>) {
    let loaded = cx.loaded;
    for c in &loaded.certificates {
        let left = c.not_after - c.read_at;
        if left >= EXPIRY_WARNING_DAYS * 86_400 {
            continue;
        }
        let when = match left / 86_400 {
            0 => "in less than a day".to_string(),
            1 => "in 1 day".to_string(),
            d => format!("in {d} days"),
        };
        let on = u64::try_from(c.not_after)
            .ok()
            .and_then(|s| std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(s)))
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_default();
        cx.report(
            &CERTIFICATE_EXPIRES_SOON,
            None,
            c.key.clone(),
            Some(c.span),
            format!("the certificate expires {when} ({on})"),
            None,
        );
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
