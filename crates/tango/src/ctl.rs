//! `tango status` and `tango reload` (with the reload guard's overrides, `--force` and
//! `--allow-shift`): talk to a running instance's admin API; `timeline` and `postmortem`
//! read its journal.

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

#[derive(clap::Args)]
pub(crate) struct CtlArgs {
    /// Admin API base URL.
    #[arg(long, default_value = "http://127.0.0.1:9901", env = "TANGO_ADMIN")]
    admin: String,
    /// Bearer token for the admin API (required by every `/api/v1` call when tango has one).
    #[arg(long, env = "TANGO_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// One request to the admin API; returns the status and the body.
pub(crate) async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, String)> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let mut req = http::Request::builder().method(method).uri(&url);
    if let Some(t) = token {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Full::new(Bytes::new()))
        .context("building the request")?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .with_context(|| format!("{url}: no answer within 30 s"))?
        .with_context(|| {
            format!("cannot reach tango's admin API at {base} (is tango running? set --admin)")
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .context("reading the answer")?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

pub(crate) async fn status(args: CtlArgs) -> anyhow::Result<()> {
    let (code, body) = call(&args.admin, "GET", "/api/v1/status", args.token.as_deref()).await?;
    ensure_ok(code, &body)?;
    let v: serde_json::Value =
        serde_json::from_str(&body).context("the admin API sent something other than JSON")?;
    println!("generation {}", v["generation"]);
    for p in v["pools"].as_array().into_iter().flatten() {
        println!(
            "pool {} ({})",
            p["name"].as_str().unwrap_or("?"),
            p["policy"].as_str().unwrap_or("?")
        );
        println!(
            "  {:<20} {:>8} {:>9} {:>8} {:>10} {:>8}",
            "backend", "weight", "effective", "healthy", "requests", "errors"
        );
        for b in p["backends"].as_array().into_iter().flatten() {
            println!(
                "  {:<20} {:>8} {:>9.2} {:>8} {:>10} {:>8}",
                b["name"].as_str().unwrap_or("?"),
                b["configured_weight"],
                b["effective_weight"].as_f64().unwrap_or(0.0),
                b["healthy"],
                b["requests"],
                b["errors"]
            );
        }
    }
    Ok(())
}

/// A 200, or an error that says what to do about it.
fn ensure_ok(code: u16, body: &str) -> anyhow::Result<()> {
    match code {
        200 => Ok(()),
        401 => anyhow::bail!("the admin API wants a token: pass --token or set TANGO_ADMIN_TOKEN"),
        _ => anyhow::bail!("admin API answered {code}: {body}"),
    }
}

#[derive(clap::Args)]
pub(crate) struct ReloadArgs {
    #[command(flatten)]
    ctl: CtlArgs,
    /// Override the reload guard for this one reload: new checklist warnings and
    /// predicted shifts are let through (errors never are). The canary still watches it.
    #[arg(long)]
    force: bool,
    /// A pool whose predicted shift is intended (repeatable): the guard lets it through
    /// and the watch expects the new split.
    #[arg(long, value_name = "POOL")]
    allow_shift: Vec<String>,
}

pub(crate) async fn reload(args: ReloadArgs) -> anyhow::Result<()> {
    let mut query = Vec::new();
    if args.force {
        query.push("force=true".to_string());
    }
    for p in &args.allow_shift {
        query.push(format!("allow_shift={}", percent_encode(p)));
    }
    let path = match query.is_empty() {
        true => "/api/v1/reload".to_string(),
        false => format!("/api/v1/reload?{}", query.join("&")),
    };
    let (code, body) = call(&args.ctl.admin, "POST", &path, args.ctl.token.as_deref()).await?;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    let lines = |key: &str| strings(&v[key]);
    match code {
        200 => {
            print_applied(&v);
            Ok(())
        }
        401 => anyhow::bail!("the admin API wants a token: pass --token or set TANGO_ADMIN_TOKEN"),
        409 => {
            for e in lines("errors") {
                eprintln!("refused: {e}");
            }
            eprintln!("to proceed:");
            for s in lines("next_steps") {
                eprintln!("  - {s}");
            }
            anyhow::bail!(
                "reload refused by the guard; generation {} keeps serving",
                v["generation"]
            )
        }
        _ => {
            for e in lines("errors") {
                eprintln!("{e}");
            }
            if let Some(e) = v["error"].as_str() {
                eprintln!("{e}");
            }
            anyhow::bail!(
                "reload rejected ({code}); generation {} keeps serving",
                v["generation"]
            )
        }
    }
}

/// An applied reload: the generation, what was overridden, the new findings, and the
/// canary watching it.
fn print_applied(v: &serde_json::Value) {
    println!("applied: generation {}", v["generation"]);
    for l in strings(&v["overrides"]) {
        println!("  {l}");
    }
    for f in v["findings"].as_array().into_iter().flatten() {
        if f["new"] == true {
            println!(
                "  new {} {} at {}: {}",
                f["severity"].as_str().unwrap_or("?"),
                f["rule"].as_str().unwrap_or("?"),
                f["location"].as_str().unwrap_or("?"),
                f["message"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(c) = v["canary"].as_object() {
        let pools: Vec<&str> = c["pools"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["pool"].as_str())
            .collect();
        println!(
            "  canary: watching pool(s) {} until {}; an alert this reload causes rolls it back",
            pools.join(", "),
            tango_core::journal::clock(c["until_ms"].as_u64().unwrap_or(0))
        );
    }
}

/// The strings of a JSON array (nothing for anything else).
fn strings(x: &serde_json::Value) -> Vec<String> {
    x.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Percent-encode a query value (pool names are usually plain; anything else is
/// encoded byte by byte).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Where `timeline` and `postmortem` read events from.
#[derive(clap::Args)]
pub(crate) struct SourceArgs {
    /// Read a journal file (JSON Lines) instead of asking a running instance.
    #[arg(long)]
    journal: Option<std::path::PathBuf>,
    /// Admin API base URL of a running instance.
    #[arg(long, default_value = "http://127.0.0.1:9901", env = "TANGO_ADMIN")]
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
    /// it). Default: the first incident opened in the period.
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
    anyhow::ensure!(from_ms <= to_ms, "--from is after --to");
    Ok(Period { from_ms, to_ms })
}

/// Every event the source holds (a running instance: those it keeps in memory, traffic
/// summaries included; a file: all of it and its rotated predecessor).
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
