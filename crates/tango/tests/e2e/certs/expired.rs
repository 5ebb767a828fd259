//! A certificate past its date among a listener's certificates: served, as nginx,
//! HAProxy and Envoy do, so that it costs its own names only; said at start and at each
//! reload in the log, the checklist, the journal and `/metrics`; and no reason to refuse
//! a reload that changes something else.

use super::{cert_files, connect, presented, tls_get, FAR_AHEAD, LONG_AGO};
use crate::backend::Backend;
use crate::support::*;
use serde_json::Value;

/// 2001-01-01T00:00:00Z, the expired certificate's notAfter.
const EXPIRED_AT: i64 = 978_307_200;
/// 2099-01-01T00:00:00Z, the valid one's.
const VALID_UNTIL: i64 = 4_070_908_800;

/// A TLS listener serving `certs` (the inline array) in front of `backends`.
fn tls_config(backends: &[(&str, std::net::SocketAddr, u32)], certs: &str) -> String {
    config("", backends).replacen(
        "listen = \"127.0.0.1:0\"\n\n[[pool]]",
        &format!("listen = \"127.0.0.1:0\"\ntls = {{ certs = {certs} }}\n\n[[pool]]"),
        1,
    )
}

/// Two certificates written to `d`: `a.example`'s, valid until 2099, and
/// `old.example`'s, expired in 2001; their DER, and the inline `certs` array serving both.
fn valid_and_expired(
    d: &std::path::Path,
) -> (
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::CertificateDer<'static>,
    String,
) {
    let valid = cert_files(d, "a", &["a.example"], LONG_AGO, FAR_AHEAD);
    let expired = cert_files(d, "old", &["old.example"], LONG_AGO, (2001, 1, 1));
    let certs = format!(
        "[{{ cert = \"{0}/a.pem\", key = \"{0}/a.key\" }}, \
         {{ cert = \"{0}/old.pem\", key = \"{0}/old.key\" }}]",
        d.display()
    );
    (valid, expired, certs)
}

/// Line 7 of `text`: where `value` starts, `tango.toml:7:COL`.
fn on_line_7(text: &str, value: &str) -> String {
    let line = text.lines().nth(6).unwrap();
    format!("tango.toml:7:{}", line.find(value).unwrap() + 1)
}

/// tango's JSON log lines (`--log-format json`) with `message`.
fn logged(t: &Tango, message: &str) -> Vec<Value> {
    (t.log().lines())
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"].as_str().is_some_and(|m| m.contains(message)))
        .collect()
}

/// The value of the `/metrics` series `series` (name and labels, exactly).
async fn series(t: &Tango, series: &str) -> Option<String> {
    let (status, text) = get(&client(), &t.admin_url("/metrics")).await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .map(str::to_string)
}

/// The TNG025 finding of the latest `config_applied` event from `source`.
async fn journaled_finding(t: &Tango, source: &str) -> Value {
    let events = admin_get(t, "/api/v1/journal").await["events"].clone();
    let applied = (events.as_array().unwrap().iter())
        .rfind(|e| e["type"] == "config_applied" && e["source"] == source)
        .unwrap_or_else(|| panic!("no config_applied from {source}: {events}"))
        .clone();
    (applied["findings"].as_array().unwrap().iter())
        .find(|f| f["rule"] == "TNG025")
        .unwrap_or_else(|| panic!("no TNG025 in {applied}"))
        .clone()
}

/// The notAfter of a DER certificate, in seconds since the Unix epoch.
fn not_after(der: &[u8]) -> i64 {
    let (_, cert) = x509_parser::parse_x509_certificate(der).unwrap();
    cert.validity().not_after.timestamp()
}

#[tokio::test]
async fn an_expired_certificate_is_served_beside_a_valid_one_and_said_everywhere() {
    let b = Backend::start("a").await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (valid, expired, certs) = valid_and_expired(d);
    // Starts: before, the expired certificate refused the whole file.
    let text = tls_config(&[("a", b.addr, 1)], &certs);
    let t = Tango::start_with(&text, &["--log-format", "json"]);

    // The valid name handshakes and is proxied.
    let mut tls = connect(&t, "a.example").await;
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], valid);
    assert_eq!(tls_get(&mut tls).await, "HTTP/1.1 200 OK");
    assert_eq!(b.hits(), 1);
    // The expired one is served to its name: a client that does not verify sees it.
    let served = presented(&t, "old.example").await;
    assert_eq!(served, expired);
    assert_eq!(not_after(&served), EXPIRED_AT);

    // The log's warning names the listener, file, names and date.
    let old_pem = d.join("old.pem").display().to_string();
    let warned = logged(&t, "serving an expired certificate");
    assert_eq!(warned.len(), 1, "{}", t.log());
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(warned[0]["listener"], "main");
    assert_eq!(warned[0]["file"], old_pem.as_str());
    assert_eq!(warned[0]["server_names"], "old.example");
    assert_eq!(warned[0]["not_after"], "2001-01-01T00:00:00Z");
    // The checklist's warning, in the log and the startup's journal event.
    let at = on_line_7(&text, &format!("\"{old_pem}\""));
    let checklist = logged(&t, "checklist: ");
    assert!(
        checklist.iter().any(|l| l["rule"] == "TNG025"
            && l["level"] == "WARN"
            && l["location"].as_str().unwrap().ends_with(&at)),
        "{at}: {checklist:#?}"
    );
    let f = journaled_finding(&t, "startup").await;
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["key"], "listener[main].tls.certs[1].cert");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "the certificate in {old_pem} (old.example) expired on 2001-01-01T00:00:00Z ("
        )),
        "{message}"
    );
    // `/metrics`: each name's notAfter.
    for (name, at) in [("a.example", VALID_UNTIL), ("old.example", EXPIRED_AT)] {
        let s = format!(
            "tango_tls_certificate_not_after_seconds{{listener=\"main\",server_name=\"{name}\"}}"
        );
        assert_eq!(series(&t, &s).await, Some(at.to_string()), "{s}");
    }
}

/// Taking a backend out while an expired certificate is in force: the reload is
/// applied (the configuration in force has the same finding, so the reload adds none),
/// the warning is said again, and both names are served as before.
#[tokio::test]
async fn a_reload_of_something_else_goes_ahead_with_an_expired_certificate() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (valid, expired, certs) = valid_and_expired(d);
    let three = [("a", a.addr, 1), ("b", b.addr, 1), ("c", dead_addr(), 1)];
    let t = Tango::start_with(&tls_config(&three, &certs), &["--log-format", "json"]);
    assert_eq!(admin_get(&t, "/api/v1/status").await["generation"], 1);

    // Backend c is broken: it goes.
    t.write_config(&tls_config(&three[..2], &certs));
    let (s, v) = admin_post(&t, "/api/v1/reload").await;
    assert_eq!((s, &v["result"]), (200, &"applied".into()), "{v}");
    assert_eq!(v["generation"], 2, "{v}");
    let f = journaled_finding(&t, "api").await;
    assert_eq!(
        (&f["severity"], &f["new"]),
        (&"warning".into(), &false.into()),
        "{f}"
    );
    assert_eq!(
        logged(&t, "serving an expired certificate").len(),
        2,
        "{}",
        t.log()
    );

    assert_eq!(presented(&t, "old.example").await, expired);
    let mut tls = connect(&t, "a.example").await;
    assert_eq!(tls.get_ref().1.peer_certificates().unwrap()[0], valid);
    assert_eq!(tls_get(&mut tls).await, "HTTP/1.1 200 OK");
}
