//! A dead backend under load: one log line per second at most, each carrying the count
//! of failures it stands for, and no failure left uncounted.

use super::*;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The WARN lines about failed connects to backend `dead`.
fn connect_failures(t: &Tango) -> Vec<Value> {
    json_log(t)
        .into_iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["backend"] == "dead"
                && l["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("upstream connect failed"))
        })
        .collect()
}

/// Failures a line stands for: itself (when it carries an error) and those it reports
/// as left out.
fn failures_reported(lines: &[Value]) -> u64 {
    lines
        .iter()
        .map(|l| u64::from(l.get("error").is_some()) + l["suppressed"].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_backend_is_logged_once_a_second_with_the_count_left_out() {
    let t = Tango::start_with(
        &config("max_attempts = 1", &[("dead", dead_addr(), 1)]),
        &["--log-format", "json"],
    );
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..4)
        .map(|_| tokio::spawn(requests(t.url("/"), sent.clone(), stop.clone())))
        .collect();
    // The event awaited: a line that reports failures left out (a second has passed
    // since the first line). 15 s bounds the test only.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !connect_failures(&t)
        .iter()
        .any(|l| l["suppressed"].as_u64() > Some(0))
    {
        assert!(
            Instant::now() < deadline,
            "no line with a count:\n{}",
            t.log()
        );
        assert!(
            !load.iter().all(|l| l.is_finished()),
            "the load ended first"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let sent = sent.load(Relaxed);
    // Each request was one refused connect. Once the load stops, the upkeep reports
    // the rest: the log accounts for every one.
    let deadline = Instant::now() + Duration::from_secs(10);
    while failures_reported(&connect_failures(&t)) < sent {
        assert!(
            Instant::now() < deadline,
            "{sent} failures, log:\n{}",
            t.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = connect_failures(&t);
    // Lines are at least a second apart, so n lines span n - 1 seconds or more.
    let elapsed = started.elapsed().as_secs_f64().ceil() as u64;
    assert_eq!(failures_reported(&lines), sent, "{}", t.log());
    assert!(
        lines.len() as u64 <= elapsed + 1,
        "{} lines in {elapsed} s for {sent} failures",
        lines.len()
    );
    assert!(sent > lines.len() as u64 * 10, "the load ran: {sent}");
    every_line_after_the_first_carries_its_count(&t, &lines);
}

/// Requests to the dead backend, each answered 502, counted in `sent`: 20,000 at most,
/// or until `stop`.
async fn requests(url: String, sent: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    let c = client();
    for _ in 0..20_000 {
        if stop.load(Relaxed) {
            break;
        }
        let (s, _) = get(&c, &url).await;
        assert_eq!(s, 502);
        sent.fetch_add(1, Relaxed);
    }
}

/// The first line is a plain failure; every later line carries its count: a failure
/// line (with its error) or, when the upkeep got there first, a report of the count
/// alone.
fn every_line_after_the_first_carries_its_count(t: &Tango, lines: &[Value]) {
    let first = &lines[0];
    assert_eq!(first["message"], "upstream connect failed");
    assert_eq!(first["suppressed"], 0);
    assert_eq!(first["pool"], "p");
    let counted: Vec<&Value> = lines
        .iter()
        .filter(|l| l["suppressed"].as_u64() > Some(0))
        .collect();
    assert!(!counted.is_empty(), "{}", t.log());
    for l in counted {
        let n = l["suppressed"].as_u64().unwrap();
        let message = l["message"].as_str().unwrap();
        let prefix = if l.get("error").is_some() {
            format!("upstream connect failed; {n} more in the last ")
        } else {
            format!("upstream connect failed {n} more times in the last ")
        };
        assert!(message.starts_with(&prefix), "{message}");
        assert_eq!(l["pool"], "p");
    }
}
