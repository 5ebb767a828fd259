//! docs/configuration.md states every default the code applies: for each constant in
//! `tango_core::config::defaults`, the key's row in its table's section must give the
//! same value, written as the reference writes it.

use std::time::Duration;
use tango_core::config::defaults::{
    admin, backend, guard, health, listener, outlier, pool, pool_tls, redirect,
};
use tango_core::config::HealthKind;

const DOC: &str = include_str!("../../../docs/configuration.md");

/// `"10s"`: durations are quoted strings with a unit.
fn secs(d: Duration) -> String {
    assert_eq!(d.subsec_nanos(), 0, "a default in whole seconds");
    format!("\"{}s\"", d.as_secs())
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

/// `64 KiB`, `16 MiB`.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n % 1024 == 0 => format!("{} KiB", n >> 10),
        n => n.to_string(),
    }
}

fn kind(k: HealthKind) -> &'static str {
    match k {
        HealthKind::Http => "http",
        HealthKind::Tcp => "tcp",
        HealthKind::Grpc => "grpc",
    }
}

/// (the table's heading, the key, the default as the reference writes it).
// One row per default, in the reference's order: split up, it would no longer read
// side by side with docs/configuration.md.
#[allow(clippy::too_many_lines)]
fn table() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("[admin]", "listen", quoted(admin::LISTEN)),
        (
            "[admin]",
            "journal_max_bytes",
            bytes(admin::JOURNAL_MAX_BYTES),
        ),
        (
            "[[listener]]",
            "header_timeout",
            secs(listener::HEADER_TIMEOUT),
        ),
        ("[[listener]]", "idle_timeout", secs(listener::IDLE_TIMEOUT)),
        (
            "[[listener]]",
            "request_timeout",
            secs(listener::REQUEST_TIMEOUT),
        ),
        ("[[listener]]", "send_timeout", secs(listener::SEND_TIMEOUT)),
        (
            "[[listener]]",
            "max_connections",
            listener::MAX_CONNECTIONS.to_string(),
        ),
        (
            "[[listener]]",
            "max_header_bytes",
            bytes(listener::MAX_HEADER_BYTES as u64),
        ),
        ("[[pool]]", "policy", quoted(pool::POLICY.name())),
        ("[[pool]]", "ring_points", pool::RING_POINTS.to_string()),
        ("[[pool]]", "ewma_decay", secs(pool::EWMA_DECAY)),
        ("[[pool]]", "connect_timeout", secs(pool::CONNECT_TIMEOUT)),
        ("[[pool]]", "try_timeout", secs(pool::TRY_TIMEOUT)),
        ("[[pool]]", "timeout", secs(pool::TIMEOUT)),
        ("[[pool]]", "idle_timeout", secs(pool::IDLE_TIMEOUT)),
        ("[[pool]]", "max_attempts", pool::MAX_ATTEMPTS.to_string()),
        ("[[pool]]", "retry_budget", pool::RETRY_BUDGET.to_string()),
        (
            "[[pool]]",
            "panic_threshold",
            pool::PANIC_THRESHOLD.to_string(),
        ),
        ("[[pool]]", "protocol", quoted(pool::PROTOCOL.name())),
        ("[pool.tls]", "verify", pool_tls::VERIFY.to_string()),
        ("[route.redirect]", "status", redirect::STATUS.to_string()),
        ("[pool.health]", "kind", quoted(kind(health::KIND))),
        ("[pool.health]", "service", quoted(health::SERVICE)),
        ("[pool.health]", "path", quoted(health::PATH)),
        ("[pool.health]", "method", health::METHOD.to_string()),
        ("[pool.health]", "expect", {
            let (lo, hi) = health::EXPECT;
            format!("[\"{lo}-{hi}\"]")
        }),
        ("[pool.health]", "interval", secs(health::INTERVAL)),
        ("[pool.health]", "timeout", secs(health::TIMEOUT)),
        ("[pool.health]", "jitter", health::JITTER.to_string()),
        ("[pool.health]", "rise", health::RISE.to_string()),
        ("[pool.health]", "fall", health::FALL.to_string()),
        (
            "[pool.outlier]",
            "consecutive_failures",
            outlier::CONSECUTIVE_FAILURES.to_string(),
        ),
        (
            "[pool.outlier]",
            "base_ejection",
            secs(outlier::BASE_EJECTION),
        ),
        (
            "[pool.outlier]",
            "max_ejection",
            secs(outlier::MAX_EJECTION),
        ),
        (
            "[pool.outlier]",
            "max_ejected_percent",
            outlier::MAX_EJECTED_PERCENT.to_string(),
        ),
        ("[[pool.backend]]", "weight", backend::WEIGHT.to_string()),
        ("[guard]", "enabled", guard::ENABLED.to_string()),
        (
            "[guard]",
            "max_shift",
            format!("{:.1}", guard::MAX_SHIFT_POINTS),
        ),
        ("[guard]", "canary", secs(guard::CANARY)),
        ("[guard]", "rollback", guard::ROLLBACK.to_string()),
        (
            "[guard]",
            "noise_sigmas",
            format!("{:.1}", guard::NOISE_SIGMAS),
        ),
        ("[guard]", "min_sample", guard::MIN_SAMPLE.to_string()),
    ]
}

/// The lines of the section whose heading names `table` (e.g. "## `[[pool]]`"), up to
/// the next heading.
fn section(table: &str) -> Vec<&'static str> {
    let heading = format!("`{table}`");
    DOC.lines()
        .skip_while(|l| !(l.starts_with('#') && l.contains(&heading)))
        .skip(1)
        .take_while(|l| !l.starts_with('#'))
        .collect()
}

/// The default the reference states for `key` in `table`: the row's second cell. A row
/// may give several keys and their defaults in order (`interval`, `timeout` | `"5s"`,
/// `"2s"`).
fn documented(table: &str, key: &str) -> Option<String> {
    let unquote = |s: &str| s.trim().trim_matches('`').trim().to_string();
    section(table).into_iter().find_map(|line| {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, keys, default, ..] = cells.as_slice() else {
            return None;
        };
        let at = keys.split(',').map(unquote).position(|k| k == key)?;
        default.split(", ").nth(at).map(unquote)
    })
}

#[test]
fn the_reference_states_every_default_the_code_applies() {
    let wrong: Vec<String> = table()
        .into_iter()
        .filter_map(|(table, key, code)| match documented(table, key) {
            Some(doc) if doc == code => None,
            Some(doc) => Some(format!(
                "{table} {key}: the docs say {doc}, the code {code}"
            )),
            None => Some(format!("{table} {key}: no row states its default ({code})")),
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "docs/configuration.md:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_reads_the_tables() {
    assert_eq!(
        documented("[[pool]]", "timeout").as_deref(),
        Some("\"30s\"")
    );
    assert_eq!(
        documented("[pool.health]", "timeout").as_deref(),
        Some("\"2s\"")
    );
    assert_eq!(
        documented("[pool.health]", "method").as_deref(),
        Some("GET")
    );
    assert_eq!(documented("[[pool]]", "no_such_key"), None);
}
