use super::*;
use crate::config::CertificateFacts;

const DAY: i64 = 86_400;
const NOW: i64 = 1_800_000_000;

/// A TLS listener (its `cert` on line 3) in front of a quiet pool, with `tail` after it.
fn tls_text(tail: &str) -> String {
    pool(&format!("{QUIET}{TWO}{tail}")).replace(
        "listen = \"127.0.0.1:8080\"\n",
        "listen = \"127.0.0.1:8080\"\ntls = { cert = \"c.pem\", key = \"k.pem\" }\n",
    )
}

/// `text` loaded with its certificate's facts as the binary would read them at `NOW`:
/// valid from `from` days to `until` days from now (negative: in the past).
fn loaded_with(text: &str, from: i64, until: i64) -> Loaded {
    let (mut loaded, _) = lint_text(text);
    let tls = loaded.config.listeners[0].tls.clone().unwrap();
    loaded.certificates = vec![CertificateFacts {
        key: tls.certs[0].key_path.clone(),
        span: tls.certs[0].cert_span,
        file: "/etc/tango/c.pem".into(),
        names: vec!["a.example".into(), "*.b.example".into()],
        not_before: NOW + from * DAY,
        not_after: NOW + until * DAY,
        read_at: NOW,
    }];
    loaded
}

/// The checklist on a certificate valid from `from` to `until` days from now.
fn with_cert(from: i64, until: i64) -> (Loaded, Lint) {
    let loaded = loaded_with(&tls_text(""), from, until);
    let l = lint(&loaded);
    (loaded, l)
}

/// The one finding of rule `code`, a warning at the certificate's `cert` (3:16).
fn the(code: &str, (loaded, l): &(Loaded, Lint)) -> Diagnostic {
    let d: Vec<&Diagnostic> = l.problems.iter().filter(|d| d.code == Some(code)).collect();
    assert_eq!(d.len(), 1, "{:#?}", l.problems);
    assert_eq!(d[0].severity, Severity::Warning);
    assert_eq!(d[0].key, "listener[listener-0].tls.cert");
    let lc = loaded.source.line_col(d[0].span.unwrap().start);
    assert_eq!((lc.line, lc.col), (3, 16));
    d[0].clone()
}

#[test]
fn a_certificate_expiring_within_two_weeks_is_a_warning() {
    let d = the("TNG023", &with_cert(-30, 10));
    assert_eq!(
        d.message,
        "the certificate in /etc/tango/c.pem (a.example, *.b.example) expires in 10 days (2027-01-25T08:00:00Z)"
    );
    assert!(d.hint.unwrap().contains("/etc/tango/c.pem"));
    let d = the("TNG023", &with_cert(-30, 0));
    assert!(d.message.contains("in less than a day"), "{d:?}");
    // Two weeks or more: nothing; without the dates (tango-core alone): nothing.
    let (_, l) = with_cert(-30, 14);
    assert!(l.problems.is_empty(), "{:#?}", l.problems);
    let (_, l) = lint_text(&pool(&format!("{QUIET}{TWO}")));
    assert!(l.problems.is_empty());
}

#[test]
fn an_expired_certificate_is_a_warning_with_its_file_names_date_and_fix() {
    let d = the("TNG025", &with_cert(-400, -3));
    assert_eq!(
        d.message,
        "the certificate in /etc/tango/c.pem (a.example, *.b.example) expired on 2027-01-12T08:00:00Z (3 days ago); it is served, and clients that verify it refuse the handshake"
    );
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .starts_with("renew it: replace /etc/tango/c.pem and its key"),
        "{d:?}"
    );
    // Expired is not also "expiring soon".
    let (_, l) = with_cert(-400, -3);
    assert_eq!(l.problems.len(), 1, "{:#?}", l.problems);
}

/// A certificate's names read the same in the checklist as in the listener's warning
/// (`certificate_names`): listed with `, `, or for a certificate without any, as the
/// listener's default it is served as.
#[test]
fn a_certificate_is_named_by_its_server_names_or_as_the_listeners_default() {
    let names = ["a.example".to_string(), "*.b.example".to_string()];
    assert_eq!(
        crate::lint::certificate_names(&names),
        "a.example, *.b.example"
    );
    assert_eq!(
        crate::lint::certificate_names(&[]),
        "the listener's default"
    );
    let mut loaded = loaded_with(&tls_text(""), -30, 10);
    loaded.certificates[0].names.clear();
    let l = lint(&loaded);
    let d = the("TNG023", &(loaded, l));
    assert_eq!(
        d.message,
        "the certificate in /etc/tango/c.pem (the listener's default) expires in 10 days (2027-01-25T08:00:00Z)"
    );
}

#[test]
fn a_certificate_not_valid_yet_is_a_warning_with_its_date() {
    let d = the("TNG026", &with_cert(2, 400));
    assert_eq!(
        d.message,
        "the certificate in /etc/tango/c.pem (a.example, *.b.example) is not valid until 2027-01-17T08:00:00Z; it is served, and clients that verify it refuse the handshake until then"
    );
    assert!(d.hint.unwrap().contains("clock"));
}

/// The reload guard refuses a reload that adds a warning: a certificate that expired
/// while the configuration was in force is expired in both versions, so a reload that
/// changes something else is not refused for it; one that brings an expired certificate
/// in is.
#[test]
fn a_certificate_that_expired_in_force_does_not_refuse_an_unrelated_reload() {
    use crate::guard::{judge, Input, Overrides};
    let live = loaded_with(&tls_text(""), -400, -1);
    let new = loaded_with(
        &tls_text("[[route]]\npath_prefix = \"/\"\npool = \"web\"\n"),
        -400,
        -1,
    );
    let settings = crate::config::Guard::default();
    assert!(settings.enabled);
    let observed = std::collections::HashMap::new();
    let input = Input {
        live: &live,
        new: &new,
        settings: &settings,
        overrides: &Overrides::default(),
        observed: &observed,
    };
    let j = judge(input);
    assert!(!j.refused(), "{:?}", j.reasons());
    let f = j
        .findings
        .iter()
        .find(|f| f.diagnostic.code == Some("TNG025"));
    assert!(f.is_some_and(|f| !f.new), "{:#?}", j.findings);
    // Valid in force, expired in the file offered: the reload adds the warning.
    let valid = loaded_with(&tls_text(""), -400, 100);
    let j = judge(Input {
        live: &valid,
        ..input
    });
    assert!(j.refused(), "{:#?}", j.findings);
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
