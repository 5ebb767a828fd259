//! `tango timeline` and `tango postmortem`: the journal's events for a period, read
//! from a running instance's admin API (`--admin`) or from the journal file
//! (`--journal`), rendered as a timeline or drafted into a postmortem.

use super::{call, ensure_ok, DEFAULT_ADMIN};
use anyhow::Context as _;

/// Where `timeline` and `postmortem` read events from.
#[derive(clap::Args)]
pub(crate) struct SourceArgs {
    /// Read a journal file (JSON Lines) instead of asking a running instance; a
    /// `journal.jsonl` is read with its rotated predecessor, `journal.1.jsonl` beside it.
    #[arg(long)]
    journal: Option<std::path::PathBuf>,
    /// Admin API address of a running instance: `host:port` or `http://host:port`.
    #[arg(long, default_value = DEFAULT_ADMIN, env = "TANGO_ADMIN")]
    admin: String,
    /// Bearer token for the admin API.
    #[arg(long, env = "TANGO_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Start of the period: RFC 3339 time, unix milliseconds, or a duration ago ("30m").
    #[arg(long)]
    from: Option<String>,
    /// End of the period (same forms); default now.
    #[arg(long)]
    to: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct PostmortemArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The configuration that was live, for the corrective measures (its lint findings).
    /// Default: the running instance's live configuration, when reading from the API.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// The incident to write about, by id (as the log, the API and the timeline show
    /// it); an id the journal lacks is an error. Default: the first incident opened in
    /// the period.
    #[arg(long)]
    incident: Option<String>,
}

fn parse_time(s: &str, now_ms: u64) -> anyhow::Result<u64> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0));
    }
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    if let Ok(d) = humantime::parse_duration(s.trim_end_matches(" ago")) {
        return Ok(now_ms.saturating_sub(d.as_millis() as u64));
    }
    anyhow::bail!("`{s}` is not a time: use RFC 3339 (2026-11-24T14:29:00Z), unix milliseconds, or a duration ago (30m)")
}

struct Period {
    from_ms: u64,
    to_ms: u64,
}

fn period(a: &SourceArgs) -> anyhow::Result<Period> {
    let now = crate::journal::unix_ms();
    let from_ms = match &a.from {
        Some(f) => parse_time(f, now)?,
        None => 0,
    };
    let to_ms = match &a.to {
        Some(t) => parse_time(t, now)?,
        None => now,
    };
    let at = tango_core::journal::date_time;
    match &a.to {
        Some(_) => anyhow::ensure!(
            from_ms <= to_ms,
            "--from ({}) is after --to ({})",
            at(from_ms),
            at(to_ms)
        ),
        // The reader never wrote a --to: say the period ends now.
        None => anyhow::ensure!(
            from_ms <= to_ms,
            "--from ({}) is in the future: the period ends now ({}) without --to",
            at(from_ms),
            at(to_ms)
        ),
    }
    Ok(Period { from_ms, to_ms })
}

/// Every event the source holds (a running instance: those it keeps in memory, traffic
/// summaries included; a file: all of it, and a `journal.jsonl`'s rotated predecessor).
async fn all_events(a: &SourceArgs) -> anyhow::Result<Vec<tango_core::journal::Event>> {
    Ok(match &a.journal {
        Some(path) => {
            anyhow::ensure!(
                path.exists(),
                "cannot read the journal {}: no such file",
                path.display()
            );
            // The rotated file, beside it, holds the older events.
            crate::journal::read_history(path, |damage| {
                eprintln!("warning: {}: {}", damage.path.display(), damage.describe());
            })
            .with_context(|| format!("cannot read the journal {}", path.display()))?
            .events
        }
        None => {
            let (code, body) = call(&a.admin, "GET", "/api/v1/journal", a.token.as_deref()).await?;
            ensure_ok(code, &body)?;
            let v: serde_json::Value = serde_json::from_str(&body)
                .context("the admin API sent something other than JSON")?;
            serde_json::from_value(v["events"].clone()).context("unexpected journal format")?
        }
    })
}

async fn events(a: &SourceArgs, p: &Period) -> anyhow::Result<Vec<tango_core::journal::Event>> {
    Ok(all_events(a)
        .await?
        .into_iter()
        .filter(|e| e.ts_ms >= p.from_ms && e.ts_ms <= p.to_ms)
        .collect())
}

pub(crate) async fn timeline(args: SourceArgs) -> anyhow::Result<()> {
    let p = period(&args)?;
    let evs = events(&args, &p).await?;
    if evs.is_empty() {
        println!("no journal events in that period");
        return Ok(());
    }
    print!("{}", tango_core::journal::render_timeline(&evs));
    Ok(())
}

/// The draft is computed from journal events alone (the impact from the journaled
/// traffic summaries), so a running instance and its journal file give the same one.
pub(crate) async fn postmortem(args: PostmortemArgs) -> anyhow::Result<()> {
    let p = period(&args.source)?;
    // All of it: attribution reads the history before the period, and the impact the
    // traffic before the onset.
    let evs = all_events(&args.source).await?;
    if let Some(id) = &args.incident {
        anyhow::ensure!(
            tango_core::journal::has_incident(&evs, id),
            "no incident {id} in the journal; `tango timeline` lists the incidents with their ids"
        );
    }
    let mut config_text: Option<(String, String)> = None;
    if args.source.journal.is_none() {
        let token = args.source.token.as_deref();
        if args.config.is_none() {
            let (code, body) = call(&args.source.admin, "GET", "/api/v1/config", token).await?;
            if code == 200 {
                config_text = Some(("live configuration".to_string(), body));
            }
        }
    }
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        config_text = Some((path.display().to_string(), text));
    }
    let corrective = match config_text {
        Some((name, text)) => {
            match tango_core::config::parse(&name, &text, std::path::Path::new(".")) {
                Ok(loaded) => tango_core::lint::check(&loaded)
                    .iter()
                    .map(|d| {
                        format!(
                            "{} {}: {} ({})",
                            d.code.unwrap_or("TNG000"),
                            d.severity.as_str(),
                            d.message,
                            d.hint.as_deref().unwrap_or("")
                        )
                    })
                    .collect(),
                Err(e) => vec![format!(
                    "the configuration does not validate: {} problem(s)",
                    e.diagnostics().len()
                )],
            }
        }
        None => Vec::new(),
    };
    let input = tango_core::journal::PostmortemInput {
        from_ms: p.from_ms,
        to_ms: p.to_ms,
        incident: args.incident,
        corrective,
    };
    print!("{}", tango_core::journal::render_postmortem(&evs, &input));
    Ok(())
}
