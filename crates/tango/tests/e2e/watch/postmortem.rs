//! A post-mortem whose numbers are true: a backend answers 500 for a while (no retry
//! can hide a 500), the test counts every answer with the time it came, and the draft's
//! impact over the incident's window agrees with that count within 10%, drafted from the
//! running instance and from the journal file alike, in Markdown that parses.

use super::harness::*;
use crate::backend::Backend;
use crate::support::*;
use pulldown_cmark::{Event as Md, Options, Parser, Tag, TagEnd};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// The number after `prefix` on the draft's line that starts with it.
fn figure(md: &str, prefix: &str) -> u64 {
    let line = md
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in:\n{md}"));
    line[prefix.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number in `{line}`"))
}

/// Headings, and whether anything but plain text, code and lists appears.
fn markdown(md: &str) -> (Vec<String>, Vec<String>) {
    let (mut headings, mut odd) = (Vec::new(), Vec::new());
    let mut heading: Option<String> = None;
    for ev in Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        match ev {
            Md::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Md::End(TagEnd::Heading(_)) => headings.extend(heading.take()),
            Md::Text(t) | Md::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Md::Start(
                t @ (Tag::Table(_)
                | Tag::Emphasis
                | Tag::Strong
                | Tag::Strikethrough
                | Tag::Link { .. }
                | Tag::CodeBlock(_)
                | Tag::BlockQuote(_)),
            ) => odd.push(format!("{t:?}")),
            Md::Html(h) | Md::InlineHtml(h) => odd.push(h.to_string()),
            _ => {}
        }
    }
    (headings, odd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postmortem_counts_the_incident_window_as_the_clients_did() {
    let bs = four_backends().await;
    let state = tempfile::tempdir().unwrap();
    let text = cfg(
        &bs,
        &[1, 1, 1, 1],
        "max_attempts = 1\n",
        Some(state.path()),
        NO_GUARD,
    );
    let t = Tango::start(&text);
    let load = Load::start(t.url("/"), 400, None);
    // Twelve seconds of normal traffic: a journaled summary knows the pool's normal p99.
    load.wait_answered(4800).await;
    let done = b3_fails_for_a_while(&t, &bs, &load).await;
    // Traffic goes on until a summary past the resolution is journaled.
    let (onset, end) = (
        done["onset_ms"].as_u64().unwrap(),
        done["resolved_ms"].as_u64().unwrap(),
    );
    load.wait_answered(load.answered() + 4400).await;
    let answers = load.stop().await;
    let inside: Vec<_> = answers
        .iter()
        .filter(|(at, _)| *at >= onset && *at <= end)
        .collect();
    let failed = inside.iter().filter(|(_, s)| *s != 200).count() as u64;
    let counted = inside.len() as u64;
    assert!(failed > 500 && counted > 5000, "{failed} of {counted}");
    assert!(
        counted * 10 < answers.len() as u64 * 8,
        "the window is not the whole run"
    );

    let id = done["id"].as_str().unwrap();
    let md = drafts(&t, state.path(), onset, end, id);
    the_draft_counts_as_the_clients_did(&md, counted, failed);
    eprintln!("{md}");
}

/// b3 answers 500 for about 25 s in all, then recovers; returns its incident once
/// resolved.
async fn b3_fails_for_a_while(t: &Tango, bs: &[Backend], load: &Load) -> serde_json::Value {
    bs[2].state.fail_status.store(500, Relaxed);
    let i = wait_incident(
        t,
        Duration::from_secs(15),
        "an incident on b3",
        open_on("b3", "errors"),
    )
    .await;
    load.wait_answered(load.answered() + 9000).await;
    bs[2].state.fail_status.store(0, Relaxed);
    let id = i["id"].as_str().unwrap().to_string();
    let done = wait_incident(t, Duration::from_secs(30), "the incident to resolve", |x| {
        x["id"] == id.as_str() && !x["resolved_ms"].is_null()
    })
    .await;
    done
}

/// The draft for the incident's period, from the running instance and from the journal
/// file (in `state`), which must be the same.
fn drafts(t: &Tango, state: &std::path::Path, onset: u64, end: u64, id: &str) -> String {
    let period = [
        "--from".to_string(),
        (onset - 60_000).to_string(),
        "--to".to_string(),
        (end + 5_000).to_string(),
        "--incident".to_string(),
        id.to_string(),
    ];
    let config = t.config.to_str().unwrap().to_string();
    let admin = format!("http://{}", t.admin);
    let mut live_args = vec!["postmortem", "--admin", &admin, "--config", &config];
    live_args.extend(period.iter().map(String::as_str));
    let live = tango(&live_args);
    let journal = state.join("journal.jsonl");
    let mut file_args = vec![
        "postmortem",
        "--journal",
        journal.to_str().unwrap(),
        "--config",
        &config,
    ];
    file_args.extend(period.iter().map(String::as_str));
    let from_file = tango(&file_args);
    assert_eq!(
        live, from_file,
        "the same draft from the API and from the file"
    );
    from_file
}

/// The draft's impact over the window agrees with what the clients counted (`counted`
/// answers, `failed` of them failures) within 10%, and it is plain Markdown with the
/// review's headings.
fn the_draft_counts_as_the_clients_did(md: &str, counted: u64, failed: u64) {
    let requests = figure(md, "- Requests answered to pool p's clients: ");
    let errors = figure(md, "  - failed as clients saw them: ");
    let near = |got: u64, want: u64| got.abs_diff(want) * 10 <= want;
    assert!(
        near(requests, counted),
        "requests {requests} vs {counted} counted:\n{md}"
    );
    assert!(
        near(errors, failed),
        "errors {errors} vs {failed} counted:\n{md}"
    );
    // Affected: the failures and the answers slower than the pool's normal p99.
    assert!(figure(md, "- Requests affected: ") >= errors, "{md}");
    assert_eq!(
        md.lines()
            .filter(|l| l.starts_with("  - answered slower than the pool's normal p99 ("))
            .count(),
        1,
        "a normal p99 was journaled before the onset:\n{md}"
    );
    let (headings, odd) = markdown(md);
    assert_eq!(
        headings,
        [
            "Post-mortem draft: b3 errors in pool p",
            "Issue Summary",
            "Timeline",
            "Root Cause",
            "Resolution",
            "Corrective measures",
        ],
        "{md}"
    );
    assert_eq!(odd, Vec::<String>::new(), "{md}");
}
