use super::*;
use crate::config::CertificateFacts;

const DAY: i64 = 86_400;

/// A TLS listener (its `cert` on line 2) in front of a quiet pool; the certificate's
/// dates as the binary would read them, `days_left` before it expires.
fn with_cert(days_left: i64) -> (Loaded, Lint) {
    let text = pool(&format!("{QUIET}{TWO}")).replace(
        "listen = \"127.0.0.1:8080\"\n",
        "listen = \"127.0.0.1:8080\"\ntls = { cert = \"c.pem\", key = \"k.pem\" }\n",
    );
    let (mut loaded, _) = lint_text(&text);
    let tls = loaded.config.listeners[0].tls.clone().unwrap();
    let now = 1_800_000_000;
    loaded.certificates = vec![CertificateFacts {
        key: tls.certs[0].key_path.clone(),
        span: tls.certs[0].cert_span,
        not_after: now + days_left * DAY,
        read_at: now,
    }];
    let l = lint(&loaded);
    (loaded, l)
}

#[test]
fn a_certificate_expiring_within_two_weeks_is_a_warning() {
    let (loaded, l) = with_cert(10);
    let d: Vec<&Diagnostic> = l
        .problems
        .iter()
        .filter(|d| d.code == Some("TNG023"))
        .collect();
    assert_eq!(d.len(), 1, "{:#?}", l.problems);
    assert_eq!(d[0].severity, Severity::Warning);
    assert_eq!(d[0].key, "listener[listener-0].tls.cert");
    assert_eq!(
        d[0].message,
        "the certificate expires in 10 days (2027-01-25T08:00:00Z)"
    );
    let lc = loaded.source.line_col(d[0].span.unwrap().start);
    assert_eq!((lc.line, lc.col), (3, 16));
    let (_, l) = with_cert(0);
    assert!(
        l.problems[0].message.contains("in less than a day"),
        "{l:?}"
    );
    // Two weeks or more: nothing; without the dates (tango-core alone): nothing.
    let (_, l) = with_cert(14);
    assert!(l.problems.is_empty(), "{:#?}", l.problems);
    let (_, l) = lint_text(&pool(&format!("{QUIET}{TWO}")));
    assert!(l.problems.is_empty());
}

#[test]
fn unverified_tls_to_backends_is_a_warning() {
    let text = pool(&format!("{QUIET}tls = {{ verify = false }}\n{TWO}"));
    assert_eq!(at(&text, "TNG024"), vec![(7, 18)]);
    assert_eq!(
        one(&text, "TNG024").message,
        "pool `web` sends TLS to its backends without verifying their certificates"
    );
    let verified = pool(&format!(
        "{QUIET}tls = {{ server_name = \"api.internal\" }}\n{TWO}"
    ));
    assert!(at(&verified, "TNG024").is_empty());
}
